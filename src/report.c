/*
 * report.c: a struct stats_view rendered as text and JSON (report.h).
 *
 * A table is built in two passes: every cell formatted into a grid, then
 * each column padded to its widest cell.  The grid is one allocation;
 * cells longer than CELL_MAX - 1 bytes are cut (names and addresses are
 * far shorter).
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "report.h"

#define CELL_MAX	96
#define COLS_MAX	12

static const char *const state_names[] = {
	[BACKEND_UP] = "up", [BACKEND_DOWN] = "down", [BACKEND_DRAIN] = "drain",
	[BACKEND_MAINT] = "maint",
};

const char *
report_state_name(enum backend_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

/* A table being built: ncols columns, a header row and nrows rows. */
struct table {
	int		 ncols;
	size_t		 nrows, maxrows;
	char		(*cell)[CELL_MAX];	/* owned; (maxrows + 1) * ncols */
	unsigned	 right;			/* bit i: column i right-aligned */
};

static int
table_init(struct table *t, size_t rows, unsigned right, const char *const *head, int ncols)
{
	t->ncols = ncols;
	t->nrows = 0;
	t->maxrows = rows;
	t->right = right;
	if ((t->cell = calloc((rows + 1) * ncols, CELL_MAX)) == NULL)
		return -1;
	for (int i = 0; i < ncols; i++)
		snprintf(t->cell[i], CELL_MAX, "%s", head[i]);
	return 0;
}

/* Cell col of the row being filled (row nrows + 1 of the grid). */
static char *
table_cell(struct table *t, int col)
{
	return t->cell[(t->nrows + 1) * t->ncols + col];
}

static void
table_set(struct table *t, int col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Set a cell; a byte that is not printable ASCII shows as '?'. */
static void
table_set(struct table *t, int col, const char *fmt, ...)
{
	char *p = table_cell(t, col);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p, CELL_MAX, fmt, ap);
	va_end(ap);
	for (; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

/* Append the grid, padded, and free it. */
static void
table_out(struct table *t, struct strbuf *sb)
{
	size_t w[COLS_MAX] = { 0 }, r, len;
	int c;

	for (r = 0; r <= t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			if ((len = strlen(t->cell[r * t->ncols + c])) > w[c])
				w[c] = len;
	for (r = 0; r <= t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *s = t->cell[r * t->ncols + c];
			int last = c == t->ncols - 1;

			if (t->right & (1u << c))
				strbuf_printf(sb, "%*s%s", (int)w[c], s, last ? "" : "  ");
			else if (last)
				strbuf_printf(sb, "%s", s);
			else
				strbuf_printf(sb, "%-*s  ", (int)w[c], s);
		}
		strbuf_append(sb, "\n", 1);
	}
	free(t->cell);
	t->cell = NULL;
}

static uint64_t
closed_sum(const struct stats_lcount *c)
{
	uint64_t n = 0;

	for (int i = 0; i < STATS_NREASONS; i++)
		n += c->closed[i];
	return n;
}

static uint64_t
refused_sum(const struct stats_lcount *c)
{
	uint64_t n = 0;

	for (int i = 0; i < REFUSE_N; i++)
		n += c->refused[i];
	return n;
}

static uint64_t
hist_count(const struct stats_bcount *c)
{
	uint64_t n = 0;

	for (int i = 0; i < STATS_HIST_N; i++)
		n += c->connect_hist[i];
	return n;
}

static const char *
mode_name(int mode)
{
	return mode == MODE_PROXY ? "proxy" : "echo";
}

/* A duration in seconds as "3d4h", "2h5m", "4m10s" or "12s". */
static void
ago(char *buf, size_t len, double secs)
{
	unsigned long long s = secs > 0 && secs < 1e12 ? (unsigned long long)secs : 0;

	if (s >= 86400)
		snprintf(buf, len, "%llud%lluh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%lluh%llum", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%llum%llus", s / 60, s % 60);
	else
		snprintf(buf, len, "%llus", s);
}

int
report_info(struct strbuf *sb, const struct stats_view *v)
{
	char up[32];

	ago(up, sizeof(up), v->now - v->started);
	strbuf_printf(sb, "pid: %d\n", (int)v->pid);
	strbuf_printf(sb, "version: %s\n", v->version != NULL ? v->version : "");
	strbuf_printf(sb, "uptime: %s\n", up);
	strbuf_printf(sb, "started: %.0f\n", v->started);
	strbuf_printf(sb, "generation: %u\n", v->gen);
	strbuf_printf(sb, "workers: %d\n", v->workers);
	strbuf_printf(sb, "worker processes: %zu\n", v->nw);
	strbuf_printf(sb, "listeners: %zu\n", v->nl);
	strbuf_printf(sb, "backends: %zu\n", v->nb);
	strbuf_printf(sb, "reloads ok: %llu\n", (unsigned long long)v->reloads_ok);
	strbuf_printf(sb, "reloads failed: %llu\n", (unsigned long long)v->reloads_failed);
	strbuf_printf(sb, "last reload: %s\n",
	    v->last_reload != NULL && v->last_reload[0] != '\0' ? v->last_reload : "none");
	strbuf_printf(sb, "respawns: %llu\n", (unsigned long long)v->respawns);
	return sb->failed ? -1 : 0;
}

static int
report_listeners_table(struct strbuf *sb, const struct stats_view *v)
{
	static const char *const head[] = {
		"LISTENER", "MODE", "LISTEN", "ACCEPTED", "ACTIVE", "CLOSED", "BYTES_IN",
		"BYTES_OUT", "PROXY_REJECTED", "REFUSED", "UNTRACKED",
	};
	struct table t;

	if (table_init(&t, v->nl, 0x7f8, head, 11) == -1)
		return -1;
	for (size_t i = 0; i < v->nl; i++, t.nrows++) {
		const struct stats_lview *l = &v->l[i];

		table_set(&t, 0, "%s", l->name);
		table_set(&t, 1, "%s", mode_name(l->mode));
		table_set(&t, 2, "%s", l->listen);
		table_set(&t, 3, "%llu", (unsigned long long)l->c.accepted);
		table_set(&t, 4, "%llu", (unsigned long long)l->c.active);
		table_set(&t, 5, "%llu", (unsigned long long)closed_sum(&l->c));
		table_set(&t, 6, "%llu", (unsigned long long)l->c.bytes_in);
		table_set(&t, 7, "%llu", (unsigned long long)l->c.bytes_out);
		table_set(&t, 8, "%llu", (unsigned long long)l->c.proxy_rejected);
		table_set(&t, 9, "%llu", (unsigned long long)refused_sum(&l->c));
		table_set(&t, 10, "%llu", (unsigned long long)l->c.untracked);
	}
	table_out(&t, sb);
	return 0;
}

static int
report_backends_stats(struct strbuf *sb, const struct stats_view *v)
{
	static const char *const head[] = {
		"LISTENER", "BACKEND", "STATE", "WEIGHT", "ACTIVE", "TOTAL", "CONNECT_FAILURES",
		"RETRIES", "CONNECT_MEAN_MS",
	};
	struct table t;

	if (table_init(&t, v->nb, 0x1f8, head, 9) == -1)
		return -1;
	for (size_t i = 0; i < v->nb; i++, t.nrows++) {
		const struct stats_bview *b = &v->b[i];
		uint64_t n = hist_count(&b->c);

		table_set(&t, 0, "%s", b->li < v->nl ? v->l[b->li].name : "?");
		table_set(&t, 1, "%s%s", b->addr, b->backup ? " (backup)" : "");
		table_set(&t, 2, "%s", report_state_name(b->state));
		table_set(&t, 3, "%u", b->weight);
		table_set(&t, 4, "%llu", (unsigned long long)b->c.active);
		table_set(&t, 5, "%llu", (unsigned long long)b->c.total);
		table_set(&t, 6, "%llu", (unsigned long long)b->c.connect_failures);
		table_set(&t, 7, "%llu", (unsigned long long)b->c.retries);
		if (n > 0)
			table_set(&t, 8, "%.3f", b->c.connect_usec / 1000.0 / n);
		else
			table_set(&t, 8, "-");
	}
	table_out(&t, sb);
	return 0;
}

/* Every listener's refusals, every reason, zeros included: a row each. */
static int
report_refusals(struct strbuf *sb, const struct stats_view *v)
{
	static const char *const head[] = { "LISTENER", "REASON", "REFUSED" };
	struct table t;

	if (table_init(&t, v->nl * REFUSE_N, 0x4, head, 3) == -1)
		return -1;
	for (size_t i = 0; i < v->nl; i++)
		for (int r = 0; r < REFUSE_N; r++, t.nrows++) {
			table_set(&t, 0, "%s", v->l[i].name);
			table_set(&t, 1, "%s", refuse_name(r));
			table_set(&t, 2, "%llu", (unsigned long long)v->l[i].c.refused[r]);
		}
	table_out(&t, sb);
	return 0;
}

int
report_stats(struct strbuf *sb, const struct stats_view *v)
{
	static const char *const head[] = { "LISTENER", "REASON", "CLOSED" };
	struct table t;
	size_t rows = 0;

	if (report_listeners_table(sb, v) == -1)
		return -1;
	if (v->nb > 0) {
		strbuf_append(sb, "\n", 1);
		if (report_backends_stats(sb, v) == -1)
			return -1;
	}
	for (size_t i = 0; i < v->nl; i++)
		for (int r = 0; r < STATS_NREASONS; r++)
			rows += v->l[i].c.closed[r] > 0;
	if (rows > 0) {
		strbuf_append(sb, "\n", 1);
		if (table_init(&t, rows, 0x4, head, 3) == -1)
			return -1;
		for (size_t i = 0; i < v->nl; i++)
			for (int r = 0; r < STATS_NREASONS; r++) {
				if (v->l[i].c.closed[r] == 0)
					continue;
				table_set(&t, 0, "%s", v->l[i].name);
				table_set(&t, 1, "%s", reason_name(r));
				table_set(&t, 2, "%llu", (unsigned long long)v->l[i].c.closed[r]);
				t.nrows++;
			}
		table_out(&t, sb);
	}
	if (v->nl > 0) {
		strbuf_append(sb, "\n", 1);
		if (report_refusals(sb, v) == -1)
			return -1;
	}
	return sb->failed ? -1 : 0;
}

static void
last_check(char *buf, size_t len, const struct stats_bview *b, double now)
{
	char a[32];

	if (b->check_last < 0 || b->check_at <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	ago(a, sizeof(a), now - b->check_at);
	snprintf(buf, len, "%s %s ago", b->check_last ? "passed" : "failed", a);
}

int
report_backends(struct strbuf *sb, const struct stats_view *v)
{
	static const char *const head[] = {
		"LISTENER", "BACKEND", "STATE", "WHY", "WEIGHT", "BACKUP", "ACTIVE", "TOTAL",
		"LAST_CHECK",
	};
	struct table t;

	if (table_init(&t, v->nb, 0xd0, head, 9) == -1)
		return -1;
	for (size_t i = 0; i < v->nb; i++, t.nrows++) {
		const struct stats_bview *b = &v->b[i];

		table_set(&t, 0, "%s", b->li < v->nl ? v->l[b->li].name : "?");
		table_set(&t, 1, "%s", b->addr);
		table_set(&t, 2, "%s", report_state_name(b->state));
		table_set(&t, 3, "%s", b->why != NULL && b->why[0] != '\0' ? b->why : "-");
		table_set(&t, 4, "%u", b->weight);
		table_set(&t, 5, "%s", b->backup ? "yes" : "no");
		table_set(&t, 6, "%llu", (unsigned long long)b->c.active);
		table_set(&t, 7, "%llu", (unsigned long long)b->c.total);
		last_check(table_cell(&t, 8), CELL_MAX, b, v->now);	/* ASCII */
	}
	table_out(&t, sb);
	return sb->failed ? -1 : 0;
}

int
report_workers(struct strbuf *sb, const struct stats_view *v)
{
	static const char *const head[] = {
		"SLOT", "PID", "GEN", "STATE", "CONNECTIONS", "ACCEPTS",
	};
	struct table t;

	if (table_init(&t, v->nw, 0x37, head, 6) == -1)
		return -1;
	for (size_t i = 0; i < v->nw; i++, t.nrows++) {
		const struct stats_wview *w = &v->w[i];

		table_set(&t, 0, "%d", w->slot);
		table_set(&t, 1, "%d", (int)w->pid);
		table_set(&t, 2, "%u", w->gen);
		table_set(&t, 3, "%s", w->state != NULL ? w->state : "?");
		table_set(&t, 4, "%llu", (unsigned long long)w->c.conns);
		table_set(&t, 5, "%llu", (unsigned long long)w->c.accepts);
	}
	table_out(&t, sb);
	return sb->failed ? -1 : 0;
}

int
report_clients(struct strbuf *sb, const struct clients_row *rows, size_t n)
{
	static const char *const head[] = { "LISTENER", "CLIENT", "OPEN", "RECENT" };
	struct table t;

	if (table_init(&t, n, 0xc, head, 4) == -1)
		return -1;
	for (size_t i = 0; i < n; i++, t.nrows++) {
		table_set(&t, 0, "%s", rows[i].listener != NULL ? rows[i].listener : "?");
		table_set(&t, 1, "%.*s", (int)sizeof(rows[i].client), rows[i].client);
		table_set(&t, 2, "%u", rows[i].open);
		table_set(&t, 3, "%u", rows[i].recent);
	}
	table_out(&t, sb);
	return sb->failed ? -1 : 0;
}

/* --- JSON --- */

/* s as a JSON string, quoted; NULL as null. */
static void
json_str(struct strbuf *sb, const char *s)
{
	const unsigned char *p;

	if (s == NULL) {
		strbuf_append(sb, "null", 4);
		return;
	}
	strbuf_append(sb, "\"", 1);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			strbuf_printf(sb, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			strbuf_printf(sb, "\\u%04x", *p);
		else
			strbuf_append(sb, (const char *)p, 1);
	}
	strbuf_append(sb, "\"", 1);
}

/* "key": first, then ",\"key\":" */
static void
json_key(struct strbuf *sb, int *first, const char *key)
{
	strbuf_printf(sb, "%s\"%s\":", *first ? "" : ",", key);
	*first = 0;
}

static void
json_u64(struct strbuf *sb, int *first, const char *key, uint64_t n)
{
	json_key(sb, first, key);
	strbuf_printf(sb, "%llu", (unsigned long long)n);
}

static void
json_num(struct strbuf *sb, int *first, const char *key, double d)
{
	json_key(sb, first, key);
	if (isfinite(d))
		strbuf_printf(sb, "%.6f", d);
	else
		strbuf_append(sb, "null", 4);
}

static void
json_listener(struct strbuf *sb, const struct stats_lview *l)
{
	int first = 1, f2 = 1;

	strbuf_append(sb, "{", 1);
	json_key(sb, &first, "name");
	json_str(sb, l->name);
	json_key(sb, &first, "listen");
	json_str(sb, l->listen);
	json_key(sb, &first, "mode");
	json_str(sb, mode_name(l->mode));
	json_u64(sb, &first, "accepted", l->c.accepted);
	json_u64(sb, &first, "active", l->c.active);
	json_u64(sb, &first, "closed_total", closed_sum(&l->c));
	json_key(sb, &first, "closed");
	strbuf_append(sb, "{", 1);
	for (int r = 0; r < STATS_NREASONS; r++)
		json_u64(sb, &f2, reason_name(r), l->c.closed[r]);
	strbuf_append(sb, "}", 1);
	json_u64(sb, &first, "bytes_in", l->c.bytes_in);
	json_u64(sb, &first, "bytes_out", l->c.bytes_out);
	json_u64(sb, &first, "proxy_rejected", l->c.proxy_rejected);
	json_u64(sb, &first, "refused_total", refused_sum(&l->c));
	json_key(sb, &first, "refused");
	strbuf_append(sb, "{", 1);
	f2 = 1;
	for (int r = 0; r < REFUSE_N; r++)
		json_u64(sb, &f2, refuse_name(r), l->c.refused[r]);
	strbuf_append(sb, "}", 1);
	json_u64(sb, &first, "untracked", l->c.untracked);
	strbuf_append(sb, "}", 1);
}

static void
json_backend(struct strbuf *sb, const struct stats_view *v, const struct stats_bview *b)
{
	int first = 1, f2 = 1;
	uint64_t cum = 0;

	strbuf_append(sb, "{", 1);
	json_key(sb, &first, "listener");
	json_str(sb, b->li < v->nl ? v->l[b->li].name : NULL);
	json_key(sb, &first, "address");
	json_str(sb, b->addr);
	json_key(sb, &first, "backup");
	strbuf_printf(sb, "%s", b->backup ? "true" : "false");
	json_u64(sb, &first, "weight", b->weight);
	json_key(sb, &first, "state");
	json_str(sb, report_state_name(b->state));
	json_key(sb, &first, "why");
	json_str(sb, b->why != NULL ? b->why : "");
	json_key(sb, &first, "check");
	strbuf_append(sb, "{", 1);
	json_key(sb, &f2, "last");
	json_str(sb, b->check_last < 0 ? NULL : b->check_last ? "passed" : "failed");
	if (b->check_at > 0)
		json_num(sb, &f2, "at", b->check_at);
	else {
		json_key(sb, &f2, "at");
		strbuf_append(sb, "null", 4);
	}
	strbuf_append(sb, "}", 1);
	json_u64(sb, &first, "active", b->c.active);
	json_u64(sb, &first, "total", b->c.total);
	json_u64(sb, &first, "connect_failures", b->c.connect_failures);
	json_u64(sb, &first, "retries", b->c.retries);
	json_u64(sb, &first, "passive_down", b->c.passive_down);
	/* Cumulative, as Prometheus has it: count of connects at most le seconds. */
	json_key(sb, &first, "connect_seconds");
	strbuf_append(sb, "{\"buckets\":[", 12);
	for (int i = 0; i < STATS_HIST_N; i++) {
		cum += b->c.connect_hist[i];
		if (i < STATS_HIST_N - 1)
			strbuf_printf(sb, "%s{\"le\":%g,\"count\":%llu}", i ? "," : "",
			    stats_hist_le[i], (unsigned long long)cum);
		else
			strbuf_printf(sb, "%s{\"le\":\"+Inf\",\"count\":%llu}", i ? "," : "",
			    (unsigned long long)cum);
	}
	strbuf_printf(sb, "],\"sum\":%.6f,\"count\":%llu}", b->c.connect_usec / 1e6,
	    (unsigned long long)cum);
	strbuf_append(sb, "}", 1);
}

static void
json_worker(struct strbuf *sb, const struct stats_wview *w)
{
	int first = 1;

	strbuf_append(sb, "{", 1);
	json_u64(sb, &first, "slot", (uint64_t)w->slot);
	json_u64(sb, &first, "pid", (uint64_t)w->pid);
	json_u64(sb, &first, "generation", w->gen);
	json_key(sb, &first, "state");
	json_str(sb, w->state);
	json_u64(sb, &first, "connections", w->c.conns);
	json_u64(sb, &first, "accepts", w->c.accepts);
	strbuf_append(sb, "}", 1);
}

int
report_stats_json(struct strbuf *sb, const struct stats_view *v)
{
	int first = 1;

	strbuf_append(sb, "{", 1);
	json_u64(sb, &first, "pid", (uint64_t)v->pid);
	json_key(sb, &first, "version");
	json_str(sb, v->version);
	json_num(sb, &first, "started", v->started);
	json_num(sb, &first, "now", v->now);
	json_u64(sb, &first, "generation", v->gen);
	json_u64(sb, &first, "workers_configured", (uint64_t)(v->workers > 0 ? v->workers : 0));
	json_u64(sb, &first, "reloads_ok", v->reloads_ok);
	json_u64(sb, &first, "reloads_failed", v->reloads_failed);
	json_key(sb, &first, "last_reload");
	json_str(sb, v->last_reload != NULL ? v->last_reload : "");
	json_u64(sb, &first, "respawns", v->respawns);
	json_key(sb, &first, "listeners");
	strbuf_append(sb, "[", 1);
	for (size_t i = 0; i < v->nl; i++) {
		if (i > 0)
			strbuf_append(sb, ",", 1);
		json_listener(sb, &v->l[i]);
	}
	strbuf_append(sb, "]", 1);
	json_key(sb, &first, "backends");
	strbuf_append(sb, "[", 1);
	for (size_t i = 0; i < v->nb; i++) {
		if (i > 0)
			strbuf_append(sb, ",", 1);
		json_backend(sb, v, &v->b[i]);
	}
	strbuf_append(sb, "]", 1);
	json_key(sb, &first, "workers");
	strbuf_append(sb, "[", 1);
	for (size_t i = 0; i < v->nw; i++) {
		if (i > 0)
			strbuf_append(sb, ",", 1);
		json_worker(sb, &v->w[i]);
	}
	strbuf_append(sb, "]}\n", 3);
	return sb->failed ? -1 : 0;
}
