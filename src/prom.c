/*
 * prom.c: a stats view in the Prometheus text format (prom.h).
 *
 * One function per group of families (the master's, the listeners', the
 * backends', the workers'), each family written whole: HELP, TYPE, then
 * one line per series.  Counters are printed as integers; seconds with
 * the precision they were counted in (microseconds for connect times,
 * milliseconds for timestamps).
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "prom.h"


/* enum backend_state's label values. */
static const char *const prom_states[] = {
	[BACKEND_UP] = "up", [BACKEND_DOWN] = "down", [BACKEND_DRAIN] = "drain",
	[BACKEND_MAINT] = "maint",
};

/* One series being written: its name, then labels, then the value. */
struct series {
	struct strbuf	*sb;
	int		 nlabels;
};

static void
family(struct strbuf *sb, const char *name, const char *type, const char *help)
{
	/* The help texts are ours: no backslash or newline to escape. */
	strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
series_start(struct series *s, struct strbuf *sb, const char *name)
{
	s->sb = sb;
	s->nlabels = 0;
	strbuf_append(sb, name, strlen(name));
}

/* A label; its value escaped: backslash, double quote and newline. */
static void
series_label(struct series *s, const char *k, const char *v)
{
	const char *p;

	strbuf_printf(s->sb, "%c%s=\"", s->nlabels++ ? ',' : '{', k);
	for (p = v; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"')
			strbuf_printf(s->sb, "\\%c", *p);
		else if (*p == '\n')
			strbuf_append(s->sb, "\\n", 2);
		else
			strbuf_append(s->sb, p, 1);
	}
	strbuf_append(s->sb, "\"", 1);
}

static void
series_close(struct series *s)
{
	if (s->nlabels > 0)
		strbuf_append(s->sb, "}", 1);
}

static void
series_u64(struct series *s, uint64_t v)
{
	series_close(s);
	strbuf_printf(s->sb, " %" PRIu64 "\n", v);
}

/* A number of microseconds, in seconds, exactly. */
static void
series_usec(struct series *s, uint64_t usec)
{
	series_close(s);
	strbuf_printf(s->sb, " %" PRIu64 ".%06" PRIu64 "\n", usec / 1000000,
	    usec % 1000000);
}

/* A unix time, to the millisecond. */
static void
series_time(struct series *s, double t)
{
	series_close(s);
	strbuf_printf(s->sb, " %.3f\n", t);
}

/* A series with no labels, or one: the common cases in one call. */
static void
one_u64(struct strbuf *sb, const char *name, const char *k, const char *v,
    uint64_t val)
{
	struct series s;

	series_start(&s, sb, name);
	if (k != NULL)
		series_label(&s, k, v);
	series_u64(&s, val);
}

static void
prom_master(const struct stats_view *v, struct strbuf *sb)
{
	struct series s;

	family(sb, "preforkd_build_info", "gauge", "Always 1; the version in a label.");
	series_start(&s, sb, "preforkd_build_info");
	series_label(&s, "version", v->version != NULL ? v->version : "");
	series_u64(&s, 1);
	family(sb, "preforkd_start_time_seconds", "gauge",
	    "When the master started, in seconds since the epoch.");
	series_start(&s, sb, "preforkd_start_time_seconds");
	series_time(&s, v->started);
	family(sb, "preforkd_generation", "gauge",
	    "The current generation: 1 at start, one more per successful reload.");
	one_u64(sb, "preforkd_generation", NULL, NULL, v->gen);
	family(sb, "preforkd_workers", "gauge", "Worker processes configured.");
	one_u64(sb, "preforkd_workers", NULL, NULL, (uint64_t)v->workers);
	family(sb, "preforkd_reloads_total", "counter", "Reloads, by result.");
	one_u64(sb, "preforkd_reloads_total", "result", "ok", v->reloads_ok);
	one_u64(sb, "preforkd_reloads_total", "result", "failed", v->reloads_failed);
	family(sb, "preforkd_worker_respawns_total", "counter",
	    "Workers started again after one died.");
	one_u64(sb, "preforkd_worker_respawns_total", NULL, NULL, v->respawns);
}

/* One counter or gauge per listener: the field at offset off of its counts. */
static void
prom_per_listener(const struct stats_view *v, struct strbuf *sb, const char *name,
    const char *type, const char *help, size_t off)
{
	family(sb, name, type, help);
	for (size_t i = 0; i < v->nl; i++)
		one_u64(sb, name, "listener", v->l[i].name,
		    *(const uint64_t *)((const char *)&v->l[i].c + off));
}

#define LC(f)	offsetof(struct stats_lcount, f)

static void
prom_listeners(const struct stats_view *v, struct strbuf *sb)
{
	struct series s;

	if (v->nl == 0)
		return;
	prom_per_listener(v, sb, "preforkd_connections_total", "counter",
	    "Client connections accepted.", LC(accepted));
	prom_per_listener(v, sb, "preforkd_connections_active", "gauge",
	    "Client connections open now.", LC(active));
	family(sb, "preforkd_connection_closes_total", "counter",
	    "Client connections closed, by why they ended (the connection log's reason).");
	for (size_t i = 0; i < v->nl; i++)
		for (int r = 0; r < STATS_NREASONS; r++) {
			series_start(&s, sb, "preforkd_connection_closes_total");
			series_label(&s, "listener", v->l[i].name);
			series_label(&s, "reason", reason_name(r));
			series_u64(&s, v->l[i].c.closed[r]);
		}
	prom_per_listener(v, sb, "preforkd_bytes_received_total", "counter",
	    "Bytes received from clients.", LC(bytes_in));
	prom_per_listener(v, sb, "preforkd_bytes_sent_total", "counter",
	    "Bytes sent to clients.", LC(bytes_out));
	prom_per_listener(v, sb, "preforkd_proxy_headers_rejected_total", "counter",
	    "Connections closed for a bad or late PROXY protocol header.",
	    LC(proxy_rejected));
	/* Every reason, zeros included: a rate() has its series from the start. */
	family(sb, "preforkd_connections_refused_total", "counter",
	    "Client connections refused by the address rules and limits, by reason.");
	for (size_t i = 0; i < v->nl; i++)
		for (int r = 0; r < REFUSE_N; r++) {
			series_start(&s, sb, "preforkd_connections_refused_total");
			series_label(&s, "listener", v->l[i].name);
			series_label(&s, "reason", refuse_name(r));
			series_u64(&s, v->l[i].c.refused[r]);
		}
	prom_per_listener(v, sb, "preforkd_clients_untracked_total", "counter",
	    "Client connections admitted uncounted: the per-client table had no room.",
	    LC(untracked));
}

/* A series of backend b: listener and backend labels, more to come. */
static void
backend_series(struct series *s, struct strbuf *sb, const char *name,
    const struct stats_view *v, const struct stats_bview *b)
{
	series_start(s, sb, name);
	series_label(s, "listener", b->li < v->nl ? v->l[b->li].name : "");
	series_label(s, "backend", b->addr);
}

static void
prom_per_backend(const struct stats_view *v, struct strbuf *sb, const char *name,
    const char *type, const char *help, size_t off)
{
	struct series s;

	family(sb, name, type, help);
	for (size_t i = 0; i < v->nb; i++) {
		backend_series(&s, sb, name, v, &v->b[i]);
		series_u64(&s, *(const uint64_t *)((const char *)&v->b[i].c + off));
	}
}

#define BC(f)	offsetof(struct stats_bcount, f)

static void
prom_backend_state(const struct stats_view *v, struct strbuf *sb)
{
	struct series s;
	int any;

	family(sb, "preforkd_backend_up", "gauge",
	    "1 while the backend takes new connections (state up), else 0.");
	for (size_t i = 0; i < v->nb; i++) {
		backend_series(&s, sb, "preforkd_backend_up", v, &v->b[i]);
		series_u64(&s, v->b[i].state == BACKEND_UP);
	}
	family(sb, "preforkd_backend_state", "gauge",
	    "1 for the backend's state (up, down, drain or maint), 0 for the others.");
	for (size_t i = 0; i < v->nb; i++)
		for (size_t st = 0; st < sizeof(prom_states) / sizeof(prom_states[0]); st++) {
			backend_series(&s, sb, "preforkd_backend_state", v, &v->b[i]);
			series_label(&s, "state", prom_states[st]);
			series_u64(&s, (size_t)v->b[i].state == st);
		}
	family(sb, "preforkd_backend_weight", "gauge",
	    "The backend's weight in effect (the operator's or the configured one).");
	for (size_t i = 0; i < v->nb; i++) {
		backend_series(&s, sb, "preforkd_backend_weight", v, &v->b[i]);
		series_u64(&s, v->b[i].weight);
	}
	for (size_t i = any = 0; i < v->nb; i++)
		any |= v->b[i].check_last >= 0;
	if (!any)
		return;
	family(sb, "preforkd_backend_check_success", "gauge",
	    "The last active health check: 1 passed, 0 failed (absent: never checked).");
	for (size_t i = 0; i < v->nb; i++)
		if (v->b[i].check_last >= 0) {
			backend_series(&s, sb, "preforkd_backend_check_success", v, &v->b[i]);
			series_u64(&s, v->b[i].check_last);
		}
	family(sb, "preforkd_backend_check_timestamp_seconds", "gauge",
	    "When the last active health check ended, in seconds since the epoch.");
	for (size_t i = 0; i < v->nb; i++)
		if (v->b[i].check_last >= 0) {
			backend_series(&s, sb, "preforkd_backend_check_timestamp_seconds",
			    v, &v->b[i]);
			series_time(&s, v->b[i].check_at);
		}
}

/* The connect-time histogram: cumulative buckets, +Inf, sum and count. */
static void
prom_backend_hist(const struct stats_view *v, struct strbuf *sb)
{
	struct series s;
	char le[32];

	family(sb, "preforkd_backend_connect_seconds", "histogram",
	    "Time to connect to the backend, of the connects that succeeded.");
	for (size_t i = 0; i < v->nb; i++) {
		const struct stats_bcount *c = &v->b[i].c;
		uint64_t cum = 0;

		for (int k = 0; k < STATS_HIST_N; k++) {
			cum += c->connect_hist[k];
			if (k < STATS_HIST_N - 1)
				snprintf(le, sizeof(le), "%g", stats_hist_le[k]);
			else
				snprintf(le, sizeof(le), "+Inf");
			backend_series(&s, sb, "preforkd_backend_connect_seconds_bucket", v,
			    &v->b[i]);
			series_label(&s, "le", le);
			series_u64(&s, cum);
		}
		backend_series(&s, sb, "preforkd_backend_connect_seconds_sum", v, &v->b[i]);
		series_usec(&s, c->connect_usec);
		backend_series(&s, sb, "preforkd_backend_connect_seconds_count", v, &v->b[i]);
		series_u64(&s, cum);
	}
}

static void
prom_backends(const struct stats_view *v, struct strbuf *sb)
{
	if (v->nb == 0)
		return;
	prom_backend_state(v, sb);
	prom_per_backend(v, sb, "preforkd_backend_connections_active", "gauge",
	    "Connections open to the backend now.", BC(active));
	prom_per_backend(v, sb, "preforkd_backend_connections_total", "counter",
	    "Connections established to the backend.", BC(total));
	prom_per_backend(v, sb, "preforkd_backend_connect_failures_total", "counter",
	    "Connects to the backend that failed or timed out.", BC(connect_failures));
	prom_per_backend(v, sb, "preforkd_backend_retries_total", "counter",
	    "Connects tried on another backend after this one failed.", BC(retries));
	prom_backend_hist(v, sb);
}

static void
prom_workers(const struct stats_view *v, struct strbuf *sb)
{
	struct series s;
	char slot[16], gen[16], pid[16];

	if (v->nw == 0)
		return;
	family(sb, "preforkd_worker_connections_active", "gauge",
	    "Connections a worker process holds now, by slot, generation and process.");
	for (size_t i = 0; i < v->nw; i++) {
		snprintf(slot, sizeof(slot), "%d", v->w[i].slot);
		snprintf(gen, sizeof(gen), "%u", v->w[i].gen);
		snprintf(pid, sizeof(pid), "%d", (int)v->w[i].pid);
		series_start(&s, sb, "preforkd_worker_connections_active");
		series_label(&s, "slot", slot);
		series_label(&s, "generation", gen);
		series_label(&s, "pid", pid);
		series_u64(&s, v->w[i].c.conns);
	}
	family(sb, "preforkd_worker_accepts_total", "counter",
	    "Connections accepted in a worker slot, by slot, generation and process.");
	for (size_t i = 0; i < v->nw; i++) {
		snprintf(slot, sizeof(slot), "%d", v->w[i].slot);
		snprintf(gen, sizeof(gen), "%u", v->w[i].gen);
		snprintf(pid, sizeof(pid), "%d", (int)v->w[i].pid);
		series_start(&s, sb, "preforkd_worker_accepts_total");
		series_label(&s, "slot", slot);
		series_label(&s, "generation", gen);
		series_label(&s, "pid", pid);
		series_u64(&s, v->w[i].c.accepts);
	}
}

int
prom_render(const struct stats_view *v, struct strbuf *sb)
{
	prom_master(v, sb);
	prom_listeners(v, sb);
	prom_backends(v, sb);
	prom_workers(v, sb);
	return sb->failed ? -1 : 0;
}
