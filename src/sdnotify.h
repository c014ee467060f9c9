/*
 * sdnotify.h: the sd_notify(3) protocol, written for this project.
 *
 * One datagram to the AF_UNIX socket named by $NOTIFY_SOCKET ("@" at the
 * start selects the abstract namespace).  Nothing is sent when the
 * variable is unset.  Only the master speaks it.
 */
#ifndef PREFORKD_SDNOTIFY_H
#define PREFORKD_SDNOTIFY_H

/*
 * Send the formatted state ("READY=1\nSTATUS=...").  Returns 1 when sent,
 * 0 when $NOTIFY_SOCKET is unset, -1 with errno set on failure.
 */
int	sdnotify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A socket passed by systemd (socket activation). */
struct sd_socket {
	int	 fd;
	char	 name[256];	/* from $LISTEN_FDNAMES; "" when unnamed */
	int	 used;		/* taken by a listener */
};

/*
 * Collect the sockets passed through $LISTEN_PID, $LISTEN_FDS and
 * $LISTEN_FDNAMES (only when LISTEN_PID is our pid), mark them
 * close-on-exec and unset the variables.  Returns how many (0 when not
 * socket-activated) with *out allocated (free() it), or -1 with errno set.
 */
int	sd_listen_collect(struct sd_socket **out);

/*
 * $WATCHDOG_USEC when it is set for us ($WATCHDOG_PID unset or ours), else
 * 0.  Unsets both, so children never see them.
 */
unsigned long long sd_watchdog_usec(void);

#endif
