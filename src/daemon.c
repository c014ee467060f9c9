/*
 * daemon.c: pid file, detaching, privilege drop, signal names.
 */
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

/* A process that exited but was not reaped yet is not running. */
static int
zombie(pid_t pid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')'. */
	return (p = strrchr(buf, ')')) != NULL && p[1] == ' ' && p[2] == 'Z';
}

pid_t
pidfile_check(const char *path, char *err, size_t errlen)
{
	char buf[32], *end;
	ssize_t n;
	long pid;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') ||
	    pid <= 1 || pid > INT_MAX)
		return 0;
	if (pid == getpid())
		return 0;
	if ((kill((pid_t)pid, 0) == 0 || errno == EPERM) && !zombie((pid_t)pid))
		return (pid_t)pid;
	return 0;		/* stale */
}

int
pidfile_write(const char *path, char *err, size_t errlen)
{
	char tmp[PATH_MAX], buf[32];
	int fd, n;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "pidfile %s: name too long", path);
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1 ||
	    write(fd, buf, n) != n || close(fd) == -1 || rename(tmp, path) == -1) {
		snprintf(err, errlen, "pidfile %s: %s", path, strerror(errno));
		if (fd != -1)
			unlink(tmp);
		return -1;
	}
	return 0;
}

void
pidfile_remove(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (atoi(buf) == getpid())
		unlink(path);
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
