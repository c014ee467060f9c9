/*
 * ctlcmd.h: the control socket's commands: one line of text parsed into a
 * command and its arguments.  Pure: no I/O, no allocation, no state; the
 * server (control.c) reads the line and runs what it says.
 *
 * The grammar, words separated by blanks (spaces or tabs):
 *	help
 *	show info | show stats [json] | show backends | show workers
 *	show clients [LISTENER] [N]		(N from 1 to CTL_CLIENTS_MAX,
 *						 CTL_CLIENTS_DEFAULT without it;
 *						 a lone word of digits is N)
 *	set backend LISTENER ADDR ready|drain|maint
 *	set weight LISTENER ADDR N		(N from 1 to CTL_WEIGHT_MAX, as
 *						 a backend's weight in the file)
 *	reload
 */
#ifndef PREFORKD_CTLCMD_H
#define PREFORKD_CTLCMD_H

#include <stddef.h>

#define CTL_LINE_MAX	1024	/* bytes in a command line, its newline excluded */
#define CTL_WEIGHT_MAX	256	/* CONFIG's backend weight=: 1..256 */
#define CTL_CLIENTS_DEFAULT 20	/* show clients: rows without N */
#define CTL_CLIENTS_MAX	1000	/* show clients: N at most */

enum ctl_op {
	CTL_HELP,
	CTL_SHOW_INFO,
	CTL_SHOW_STATS,
	CTL_SHOW_STATS_JSON,
	CTL_SHOW_BACKENDS,
	CTL_SHOW_WORKERS,
	CTL_SHOW_CLIENTS,
	CTL_SET_BACKEND,
	CTL_SET_WEIGHT,
	CTL_RELOAD
};

struct ctl_cmd {
	enum ctl_op	 op;
	const char	*listener;	/* set, show clients (NULL: every listener):
					   borrowed from the line */
	const char	*addr;		/* set: borrowed from the line */
	const char	*state;		/* set backend: "ready", "drain" or "maint" */
	unsigned	 weight;	/* set weight */
	unsigned	 count;		/* show clients: rows at most */
};

/*
 * Parse line (len bytes, not NUL-terminated necessarily; a trailing "\r"
 * is allowed) into cmd.  The words are NUL-terminated in place, so cmd
 * points into line, which must have room for len + 1 bytes.  Returns 0, or
 * -1 with a one-line message in err (errlen bytes, without the "error: "
 * the server puts before it): an empty line, a control character or a
 * byte that is not printable ASCII, an unknown command, a missing or extra
 * argument, a bad state, weight or count.
 */
int	ctlcmd_parse(char *line, size_t len, struct ctl_cmd *cmd, char *err,
	    size_t errlen);

/* The help text: one line per command, each ending in "\n". */
extern const char ctlcmd_help[];

#endif
