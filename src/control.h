/*
 * control.h: the control socket, the master's side.  A Unix stream socket
 * on which an operator sends one command a connection (ctlcmd.h), gets
 * the answer, and is closed: "ok..." or a table, or one line starting
 * with "error: ".  Reads the statistics (status_view), sets backends'
 * operator state (health_admin, health_weight) and asks for synchronous
 * reloads (reload_request); it changes nothing else of the master.
 *
 * Never blocks the master's loop: reads and writes are non-blocking, under
 * libev watchers.  Bounds: CONTROL_MAX_CLIENTS at once (one more is told
 * so and closed), a line of CTL_LINE_MAX bytes, CONTROL_READ_SECS to send
 * it, CONTROL_WRITE_SECS for each part of the answer to be read,
 * CONTROL_ANSWER_MAX bytes of answer, CONTROL_RELOAD_SECS for a reload to
 * end.
 */
#ifndef PREFORKD_CONTROL_H
#define PREFORKD_CONTROL_H

#include <sys/types.h>

#include <stddef.h>

#include "mstate.h"

#define CONTROL_MAX_CLIENTS	16
#define CONTROL_READ_SECS	10.0	/* from connect to the end of the line */
#define CONTROL_WRITE_SECS	10.0	/* without the client reading any of the answer */
#define CONTROL_RELOAD_SECS	120.0	/* for the new generation to be ready */
#define CONTROL_LINGER_SECS	2.0	/* after the answer, for the client's EOF */
#define CONTROL_ANSWER_MAX	(16u << 20)

/*
 * Create the socket at path for m, before privileges are dropped: mode
 * 0600, and owned by uid:gid when own is set.  A file already at path is
 * replaced only when it is a socket nobody listens on (connect(2) is
 * refused); a live socket or another kind of file is refused.  Returns
 * the server, not watching yet, or NULL with a message in err.
 */
struct control *control_open(struct master *m, const char *path, int own, uid_t uid,
	    gid_t gid, char *err, size_t errlen);
/* Start accepting on m->loop. */
void	control_start(struct control *c);
/*
 * Close every client (a reload waited for is forgotten), the socket, and
 * remove its file if it is still ours; free c.  NULL is a no-op.
 */
void	control_close(struct control *c);
/*
 * In a forked worker: close the descriptors (the socket and the clients')
 * without touching the file, the watchers or the clients' state.
 */
void	control_forget(struct control *c);
/* The path it listens on. */
const char *control_path(const struct control *c);

#endif
