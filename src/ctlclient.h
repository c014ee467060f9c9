/*
 * ctlclient.h: the command-line client of the control socket (preforkd
 * -x, and -s reload when the configuration names a control socket).
 * Blocking, for a short-lived process; never used by the daemon.
 */
#ifndef PREFORKD_CTLCLIENT_H
#define PREFORKD_CTLCLIENT_H

#include <stddef.h>
#include <stdio.h>

#define CTLCLIENT_OK		0	/* an answer, not an error */
#define CTLCLIENT_ERROR		1	/* an answer starting with "error: " */
#define CTLCLIENT_UNREACHABLE	2	/* no connection, or no answer */

/* How long to wait for the whole answer: beyond the master's reload wait. */
#define CTLCLIENT_TIMEOUT_SECS	130

/*
 * Send cmd (one line, without its newline) to the control socket at path
 * and copy the answer to out as it comes.  Returns CTLCLIENT_OK,
 * CTLCLIENT_ERROR, or CTLCLIENT_UNREACHABLE with a message in err (errlen
 * bytes) when the socket cannot be reached, the connection fails before
 * any answer, or no answer ends within timeout_secs.
 */
int	ctlclient_run(const char *path, const char *cmd, FILE *out, int timeout_secs,
	    char *err, size_t errlen);

#endif
