/*
 * daemon.c: the locked pid file and -s, detaching, privilege drop, signal
 * names.
 */
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

static int ready_fd = -1;	/* write end of the detach pipe, in the child */

/* The whole file, for fcntl(2) locks. */
static void
whole(struct flock *fl, short type)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = 0;
	fl->l_len = 0;
}

/* The message for a failed open of path. */
static void
open_error(const char *path, int error, char *err, size_t errlen)
{
	struct stat st;

	if (error == ELOOP && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		snprintf(err, errlen, "pidfile %s: a symbolic link; refusing to follow it",
		    path);
	else
		snprintf(err, errlen, "pidfile %s: %s", path, strerror(error));
}

/* A regular file of ours with one link, or -1 with a message. */
static int
plain_file(const char *path, const struct stat *st, char *err, size_t errlen)
{
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "pidfile %s: not a regular file", path);
		return -1;
	}
	if (st->st_uid != geteuid()) {
		snprintf(err, errlen, "pidfile %s: owned by uid %lu, not by us; refusing to "
		    "write to it", path, (unsigned long)st->st_uid);
		return -1;
	}
	if (st->st_nlink > 1) {
		snprintf(err, errlen, "pidfile %s: has %lu hard links; refusing to write to it",
		    path, (unsigned long)st->st_nlink);
		return -1;
	}
	return 0;
}

/*
 * Open path with flags (O_CREAT makes it 0644), never through a symbolic
 * link nor blocking on a FIFO, and stat it into *st.  The descriptor, or
 * -1 with a message and errno kept.
 */
static int
open_stat(const char *path, int flags, struct stat *st, char *err, size_t errlen)
{
	int fd, saved;

	if ((fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644)) == -1) {
		saved = errno;
		open_error(path, saved, err, errlen);
		errno = saved;
		return -1;
	}
	if (fstat(fd, st) == -1) {
		saved = errno;
		snprintf(err, errlen, "pidfile %s: %s", path, strerror(saved));
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* The pid at the start of fd's file: "PID\n"; 0 if there is none. */
static pid_t
pid_in(int fd)
{
	char buf[32], *end;
	ssize_t n;
	long pid;

	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || buf[0] == '-' || buf[0] == '+' ||
	    (*end != '\n' && *end != '\0') || pid <= 0 || pid > INT_MAX)
		return 0;
	return (pid_t)pid;
}

int
pidfile_open(const char *path, char *err, size_t errlen)
{
	struct stat st, now;
	struct flock fl;
	char buf[32];
	int fd, n;

	/*
	 * A few tries: the file we opened may be unlocked and removed by the
	 * instance that is exiting, or be replaced, before our lock is on it.
	 */
	for (int tries = 0; tries < 5; tries++) {
		if ((fd = open_stat(path, O_RDWR | O_CREAT, &st, err, errlen)) == -1)
			return -1;
		if (plain_file(path, &st, err, errlen) == -1) {
			close(fd);
			return -1;
		}
		whole(&fl, F_WRLCK);
		if (fcntl(fd, F_SETLK, &fl) == -1) {
			if (errno != EAGAIN && errno != EACCES) {
				snprintf(err, errlen, "pidfile %s: locking: %s", path,
				    strerror(errno));
				close(fd);
				return -1;
			}
			whole(&fl, F_WRLCK);
			if (fcntl(fd, F_GETLK, &fl) == -1) {
				snprintf(err, errlen, "pidfile %s: testing its lock: %s", path,
				    strerror(errno));
				close(fd);
				return -1;
			}
			if (fl.l_type == F_RDLCK) {
				/*
				 * Any reader of a 0644 file can hold a read lock;
				 * a master holds a write lock.  Put a new file in
				 * its place rather than let a reader stop a start.
				 */
				close(fd);
				fd = -1;
				/* Only the file we looked at: a racing start may own the name now. */
				if (lstat(path, &now) == 0 && now.st_dev == st.st_dev &&
				    now.st_ino == st.st_ino && unlink(path) == -1 &&
				    errno != ENOENT) {
					snprintf(err, errlen, "pidfile %s: read-locked by pid %d "
					    "and cannot be replaced: %s", path, (int)fl.l_pid,
					    strerror(errno));
					return -1;
				}
				continue;
			}
			if (fl.l_type != F_UNLCK) {
				if (fl.l_pid > 0)
					snprintf(err, errlen, "already running as pid %d (pidfile %s)",
					    (int)fl.l_pid, path);
				else
					snprintf(err, errlen, "already running (pidfile %s is locked "
					    "by a process in another pid namespace)", path);
				close(fd);
				return -1;
			}
			close(fd);	/* its holder just let go: again */
			fd = -1;
			continue;
		}
		/* Locked: is it still the file named path? */
		if (lstat(path, &now) == 0 && now.st_dev == st.st_dev &&
		    now.st_ino == st.st_ino)
			break;
		close(fd);
		fd = -1;
	}
	if (fd == -1) {
		snprintf(err, errlen, "pidfile %s: replaced again and again while locking it",
		    path);
		return -1;
	}
	/* Write, then cut: the file is never seen empty. */
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	errno = 0;
	if (pwrite(fd, buf, n, 0) != n || ftruncate(fd, n) == -1) {
		snprintf(err, errlen, "pidfile %s: %s", path,
		    errno != 0 ? strerror(errno) : "short write");
		close(fd);
		return -1;
	}
	return fd;
}

pid_t
pidfile_running(const char *path, char *err, size_t errlen)
{
	struct stat st;
	struct flock fl;
	pid_t named;
	int fd;

	if ((fd = open_stat(path, O_RDONLY, &st, err, errlen)) == -1) {
		if (errno != ENOENT)
			return -1;
		snprintf(err, errlen, "pidfile %s: not running (no such file)", path);
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "pidfile %s: not a regular file", path);
		close(fd);
		return -1;
	}
	whole(&fl, F_WRLCK);
	if (fcntl(fd, F_GETLK, &fl) == -1) {
		snprintf(err, errlen, "pidfile %s: testing its lock: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	named = pid_in(fd);
	close(fd);
	if (fl.l_type == F_UNLCK) {
		if (named > 0)
			snprintf(err, errlen, "pidfile %s: not running (stale: no process holds "
			    "its lock; pid %d in it is left alone)", path, (int)named);
		else
			snprintf(err, errlen, "pidfile %s: not running (no process holds its lock)",
			    path);
		return 0;
	}
	if (fl.l_type != F_WRLCK || fl.l_pid <= 0) {
		/* A master holds a write lock, and is in our pid namespace. */
		snprintf(err, errlen, "pidfile %s: locked by %s, not by a master we can signal",
		    path, fl.l_pid > 0 ? "a reader" : "a process in another pid namespace");
		return -1;
	}
	if (named != fl.l_pid) {
		snprintf(err, errlen, "pidfile %s: locked by pid %d but names %s%d; not signalled",
		    path, (int)fl.l_pid, named > 0 ? "pid " : "no pid, ", (int)named);
		return -1;
	}
	return named;
}

pid_t
pidfile_signal(const char *path, int signo, char *err, size_t errlen)
{
	pid_t pid, again;
	int pfd;

	if ((pid = pidfile_running(path, err, errlen)) <= 0)
		return pid;
	if ((pfd = pidfd_open(pid, 0)) == -1) {
		if (errno == ESRCH) {
			snprintf(err, errlen, "pidfile %s: not running (pid %d has exited)", path,
			    (int)pid);
			return 0;
		}
		if (errno != ENOSYS && errno != EPERM) {
			snprintf(err, errlen, "pid %d: %s", (int)pid, strerror(errno));
			return -1;
		}
		/* No pidfds (old kernel, seccomp): a plain kill, racy by a hair. */
		if (kill(pid, signo) == -1) {
			snprintf(err, errlen, "pid %d: %s", (int)pid, strerror(errno));
			return -1;
		}
		return pid;
	}
	/* pfd is now this very process: if it still holds the lock, it is the master. */
	if ((again = pidfile_running(path, err, errlen)) != pid) {
		close(pfd);
		if (again > 0) {
			snprintf(err, errlen, "pidfile %s: now held by pid %d, not %d; not signalled",
			    path, (int)again, (int)pid);
			return -1;
		}
		return again;
	}
	if (pidfd_send_signal(pfd, signo, NULL, 0) == -1) {
		snprintf(err, errlen, "pid %d: %s", (int)pid, strerror(errno));
		close(pfd);
		return -1;
	}
	close(pfd);
	return pid;
}

int
pidfile_close(const char *path, int fd)
{
	struct stat st, now;
	int rc = 0, saved;

	if (fd == -1)
		return 0;
	if (fstat(fd, &st) == -1)
		rc = -1;
	else if (lstat(path, &now) == -1) {
		/* Gone is fine; unreachable (a directory we may no longer search) is not. */
		if (errno != ENOENT)
			rc = 1;
	} else if (now.st_dev == st.st_dev && now.st_ino == st.st_ino &&
	    unlink(path) == -1)
		rc = 1;
	/* else: the name is another file's now, and it is left alone */
	saved = errno;
	if (rc == 1 && ftruncate(fd, 0) == -1) {
		saved = errno;
		rc = -1;
	}
	close(fd);	/* releases the lock */
	errno = saved;
	return rc;
}

int
daemon_detach(char *err, size_t errlen)
{
	int p[2], st, fd;
	char c;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		snprintf(err, errlen, "detaching: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		/* The parent: wait for word of a successful start. */
		close(p[1]);
		if (read(p[0], &c, 1) == 1)
			_exit(0);
		if (waitpid(pid, &st, 0) == pid && WIFEXITED(st))
			_exit(WEXITSTATUS(st) != 0 ? WEXITSTATUS(st) : 1);
		_exit(1);
	}
	close(p[0]);
	ready_fd = p[1];
	if (setsid() == -1 || chdir("/") == -1 ||
	    (fd = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "detaching: %s", strerror(errno));
		return -1;
	}
	/* stderr stays until start-up is over, for its error messages. */
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	return 0;
}

void
daemon_ready(void)
{
	int fd;

	if (ready_fd == -1)
		return;
	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) != -1) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	if (write(ready_fd, "r", 1) == -1) {
		/* the parent is gone; nothing to tell */
	}
	close(ready_fd);
	ready_fd = -1;
}

void
daemon_forget(void)
{
	int fd;

	if (ready_fd == -1)
		return;
	/* Detaching, not ready yet: stderr is still the launcher's. */
	close(ready_fd);
	ready_fd = -1;
	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) != -1) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
}

int
daemon_drop(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	if (getuid() == uid && geteuid() == uid && getgid() == gid &&
	    getegid() == gid)
		return 0;
	if (geteuid() != 0) {
		snprintf(err, errlen, "cannot switch to uid %u gid %u: not running as root",
		    (unsigned)uid, (unsigned)gid);
		return -1;
	}
	if (setgroups(0, NULL) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		snprintf(err, errlen, "switching to uid %u gid %u: %s",
		    (unsigned)uid, (unsigned)gid, strerror(errno));
		return -1;
	}
	if (uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		snprintf(err, errlen, "root privileges could be regained after the switch");
		return -1;
	}
	return 0;
}

int
daemon_signal_parse(const char *name)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{ "reload", SIGHUP }, { "stop", SIGTERM }, { "quit", SIGQUIT },
		{ "reopen", SIGUSR1 },
	};

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcmp(name, sigs[i].name) == 0)
			return sigs[i].sig;
	return -1;
}
