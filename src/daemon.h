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
 * The pid file.  The master opens it, takes an fcntl(2) write lock on the
 * whole file, writes its pid into it and keeps it open until it exits: the
 * lock, not the pid written in the file, says that an instance runs.  A file
 * that no process locks is stale whatever pid it holds, and is taken over.
 * The kernel drops the lock when the master exits, however it exits.  fcntl
 * locks are not inherited across fork(2), so workers never hold it; but a
 * process loses its locks on a file when it closes any descriptor of that
 * file, so the master must not open the pid file anywhere else.  There is
 * no temporary file renamed into place: a rename would put a new, unlocked
 * file under the name.
 */

/*
 * Open path, creating it with mode 0644 (less the umask), lock it and write
 * our pid and a newline into it.  A symbolic link at path is never followed
 * and anything other than a regular file with one link is refused, so a
 * link planted there cannot make us write to another file.  Returns the
 * descriptor, which holds the lock until pidfile_close(); -1 with a message
 * when path cannot be used or another process holds its write lock
 * ("already running as pid N (pidfile path)").  A file only read-locked (any
 * reader of it may do that; a master never does) is replaced by a new one.
 */
int	pidfile_open(const char *path, char *err, size_t errlen);
/*
 * The pid of the running master of path: the process that holds the write
 * lock on the file and whose pid the file holds.  0 with a message when no
 * process holds the lock (no file, or a stale one, whatever pid it names);
 * -1 with a message when the file cannot be used or the lock holder is not
 * the process the file names.  Not for the process holding the lock: to it
 * the file looks unlocked, and closing a descriptor would drop its lock.
 */
pid_t	pidfile_running(const char *path, char *err, size_t errlen);
/*
 * Send signo to the running master of path, as pidfile_running() finds it.
 * The process is pinned with pidfd_open(2) and the lock checked again
 * before the signal goes, so a pid that is reused in between is never
 * signalled.  Returns the pid signalled, or 0 or -1 with a message as
 * pidfile_running() does, or -1 with a message when the signal fails.
 */
pid_t	pidfile_signal(const char *path, int signo, char *err, size_t errlen);
/*
 * At exit: remove path if it is still the file open on fd, then close fd,
 * which releases the lock.  When the name cannot be removed or checked (its
 * directory is not writable, or not searchable, after a privilege drop),
 * the file is emptied instead, so what is left names no process.  Returns
 * 0 when it is removed or the name is another file's now, 1 with errno
 * saying why when it was emptied instead, -1 with errno when not even that.
 */
int	pidfile_close(const char *path, int fd);

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
