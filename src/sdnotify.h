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

#endif
