/*
 * prom.h: the Prometheus text exposition format, version 0.0.4, of a
 * struct stats_view (stats.h): what GET /metrics answers.  Pure: no I/O,
 * no clock; the view is the only input.
 *
 * Every name has the preforkd_ prefix; per-listener series carry a
 * listener label (the section name), per-backend ones listener and
 * backend (the address as configured).  Label values are escaped as the
 * format asks (\\, \" and \n).  Every family has its HELP and TYPE
 * lines; a family with no series (no backends, no workers) is left out.
 * preforkd.8 lists the families.
 */
#ifndef PREFORKD_PROM_H
#define PREFORKD_PROM_H

#include "stats.h"
#include "strbuf.h"

#define PROM_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

/*
 * Append v, rendered, to sb.  Returns 0, or -1 when sb failed (its limit
 * or memory): what it holds then is cut short and must not be served.
 */
int	prom_render(const struct stats_view *v, struct strbuf *sb);

#endif
