/*
 * report.h: a struct stats_view rendered as text for the control socket:
 * the info lines, the stats table, the same as JSON, the backends table
 * and the workers table; and the top clients (clients_top()) as a table.
 * Pure: they only read the view (or the rows) and append to a strbuf; no
 * I/O, no clock (the view's now is the time they use).
 *
 * Each returns 0, or -1 when the strbuf stopped growing (its limit, or
 * out of memory); what fitted is kept.  Tables have one header line and
 * one line a row, columns aligned with blanks, numbers right-aligned;
 * a table without rows is its header alone.
 */
#ifndef PREFORKD_REPORT_H
#define PREFORKD_REPORT_H

#include "clients.h"
#include "stats.h"
#include "strbuf.h"

/* "key: value" lines: pid, version, uptime, generation, workers, reloads... */
int	report_info(struct strbuf *sb, const struct stats_view *v);
/*
 * Tables, a blank line between: the listeners (accepted, active, closed,
 * bytes each way, PROXY headers rejected, refused, admitted untracked)
 * and the backends (state, weight, active, total, connect failures,
 * retries, mean connect time); then the closes by reason, one line per
 * listener and reason counted; last the refusals by reason, one line per
 * listener and reason, every reason of reason.h, zeros included.
 */
int	report_stats(struct strbuf *sb, const struct stats_view *v);
/*
 * One JSON object, and a newline: the view whole (master, listeners with
 * closes and refusals by reason and the untracked admissions, backends
 * with their state and connect-time histogram, workers).  Strings are
 * escaped; numbers that are not finite are null.
 */
int	report_stats_json(struct strbuf *sb, const struct stats_view *v);
/* Each backend: listener, address, state, why, weight, connections, last check. */
int	report_backends(struct strbuf *sb, const struct stats_view *v);
/* Each worker: slot, pid, generation, state, connections, accepts. */
int	report_workers(struct strbuf *sb, const struct stats_view *v);
/*
 * The n rows of "show clients", in their order: listener, client,
 * connections open, connections counted against the rate now.
 */
int	report_clients(struct strbuf *sb, const struct clients_row *rows, size_t n);

/* The name of a backend state: "up", "down", "drain" or "maint". */
const char *report_state_name(enum backend_state s);

#endif
