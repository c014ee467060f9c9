/*
 * daemon.h: classic daemon chores: the pid file, detaching from the
 * terminal, dropping privileges, and signalling a running instance.
 * Functions return -1 with a message in the caller's buffer; they never
 * log (the log may not be open yet).
 */
#ifndef PREFORKD_DAEMON_H
#define PREFORKD_DAEMON_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Read the pid in path.  Returns the pid when it names a live process,
 * 0 when the file is missing, empty, stale or not ours to judge, and -1
 * with a message when it cannot be read.
 */
pid_t	pidfile_check(const char *path, char *err, size_t errlen);
/* Write our pid to path (atomically, through a temporary file).  0 or -1. */
int	pidfile_write(const char *path, char *err, size_t errlen);
/* Remove path if it still holds our pid. */
void	pidfile_remove(const char *path);

/*
 * Detach: fork, setsid, chdir("/"), stdio to /dev/null.  The parent waits
 * until the child calls daemon_ready() (exit 0) or exits without calling
 * it (the parent exits with the child's status), so `preforkd -d` reports
 * start-up failures.  Returns 0 in the child, -1 with a message on error.
 */
int	daemon_detach(char *err, size_t errlen);
/* Tell the waiting parent that start-up succeeded.  Safe to call twice. */
void	daemon_ready(void);
/*
 * In a forked worker: close our copy of the parent's pipe, saying nothing,
 * and let go of the launcher's stderr too.
 */
void	daemon_forget(void);

/*
 * Switch to uid/gid with no supplementary groups.  A no-op when they are
 * already ours.  Verifies that root cannot be regained.  0 or -1.
 */
int	daemon_drop(uid_t uid, gid_t gid, char *err, size_t errlen);

/*
 * Map "reload", "stop", "quit" or "reopen" to a signal; -1 if unknown.
 */
int	daemon_signal_parse(const char *name);

#endif
