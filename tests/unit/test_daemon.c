/*
 * test_daemon.c: unit tests for src/daemon.c: signal names and the locked
 * pid file (taken, held, refused, stale, signalled; links and other files
 * planted at its path).
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "tap.h"

static char dir[] = "/tmp/preforkd-test-daemon-XXXXXX";
static char path[256];

/* Write text to file f, replacing it. */
static void
put_in(const char *f, const char *text)
{
	FILE *fp = fopen(f, "w");

	if (fp == NULL)
		bail_out("%s: %s", f, strerror(errno));
	fputs(text, fp);
	fclose(fp);
}

static void
put(const char *text)
{
	put_in(path, text);
}

/* The first line of file f ("" when there is none). */
static const char *
got_in(const char *f)
{
	static char buf[64];
	FILE *fp;

	buf[0] = '\0';
	if ((fp = fopen(f, "r")) != NULL) {
		if (fgets(buf, sizeof(buf), fp) == NULL)
			buf[0] = '\0';
		fclose(fp);
	}
	return buf;
}

/* A child that does nothing until killed. */
static pid_t
idler(void)
{
	pid_t pid;

	if ((pid = fork()) == -1)
		bail_out("fork: %s", strerror(errno));
	if (pid == 0)
		for (;;)
			pause();
	return pid;
}

static void
reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int
alive(pid_t pid)
{
	return waitpid(pid, NULL, WNOHANG) == 0;
}

enum { HOLD_MASTER, HOLD_READER };

/*
 * A child that holds the lock on path as a master does (pidfile_open), or
 * holds a read lock on it, and waits to be killed.  -1 if it could not.
 */
static pid_t
holder(int how)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	char err[256], c;
	int p[2], fd;
	pid_t pid;

	if (pipe(p) == -1 || (pid = fork()) == -1)
		bail_out("pipe/fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		if (how == HOLD_MASTER)
			fd = pidfile_open(path, err, sizeof(err));
		else if ((fd = open(path, O_RDONLY)) != -1 && fcntl(fd, F_SETLK, &fl) == -1)
			fd = -1;
		if (fd == -1)
			_exit(1);
		if (write(p[1], "l", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		waitpid(pid, NULL, 0);
		pid = -1;
	}
	close(p[0]);
	return pid;
}

/*
 * pidfile_open (what 'o') or pidfile_running (what 'r') on path, run in a
 * child so that no lock of ours is involved; its result, message in msg.
 */
static long
in_child(int what, char *msg, size_t len)
{
	struct { long rc; char err[256]; } r;
	int p[2];
	pid_t pid;

	memset(&r, 0, sizeof(r));
	if (pipe(p) == -1 || (pid = fork()) == -1)
		bail_out("pipe/fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		if (what == 'o')
			r.rc = pidfile_open(path, r.err, sizeof(r.err));
		else
			r.rc = pidfile_running(path, r.err, sizeof(r.err));
		_exit(write(p[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
		r.rc = -99;
		snprintf(r.err, sizeof(r.err), "no answer from the child");
	}
	close(p[0]);
	waitpid(pid, NULL, 0);
	snprintf(msg, len, "%s", r.err);
	return r.rc;
}

static void
test_signals(void)
{
	static const struct { const char *name; int sig; } cases[] = {
		{ "reload", SIGHUP }, { "stop", SIGTERM }, { "quit", SIGQUIT },
		{ "reopen", SIGUSR1 }, { "", -1 }, { "RELOAD", -1 }, { "hup", -1 },
		{ "stop ", -1 }, { "kill", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_int(daemon_signal_parse(cases[i].name), cases[i].sig,
		    "signal name \"%s\"", cases[i].name);
}

/* Files no one locks: nothing runs, whatever pid they hold. */
static void
test_not_running(void)
{
	static const char *texts[] = { "", "12abc\n", "1\n", "-5\n", "999999999\n" };
	char err[256], buf[64];
	pid_t other;

	snprintf(path, sizeof(path), "%s/p.pid", dir);
	is_int(pidfile_running(path, err, sizeof(err)), 0, "missing file: not running");
	ok(strstr(err, "not running") != NULL && strstr(err, path) != NULL,
	    "the message names the file and says so (%s)", err);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		put(texts[i]);
		is_int(pidfile_running(path, err, sizeof(err)), 0,
		    "unlocked file holding \"%.*s\": not running", (int)strcspn(texts[i], "\n"),
		    texts[i]);
	}

	/* A leftover naming a live process that is no master: never signalled. */
	other = idler();
	snprintf(buf, sizeof(buf), "%d\n", (int)other);
	put(buf);
	is_int(pidfile_running(path, err, sizeof(err)), 0, "stale file naming a live pid");
	ok(strstr(err, "stale") != NULL, "said to be stale (%s)", err);
	is_int(pidfile_signal(path, SIGTERM, err, sizeof(err)), 0,
	    "pidfile_signal refuses a stale file");
	ok(alive(other), "the process it names was not signalled");
	reap(other);
	unlink(path);
}

static void
test_lock(void)
{
	char err[256], buf[512];
	struct stat before, after;
	pid_t other, child;
	int fd, st;
	long rc;

	snprintf(path, sizeof(path), "%s/p.pid", dir);
	/* A stale file naming a live process is taken over. */
	other = idler();
	snprintf(buf, sizeof(buf), "%d\n", (int)other);
	put(buf);
	fd = pidfile_open(path, err, sizeof(err));
	ok(fd >= 0, "pidfile_open takes over a stale file (%s)", fd >= 0 ? "ok" : err);
	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	is_str(got_in(path), buf, "the file holds our pid and a newline");
	ok(alive(other), "the pid the stale file named was left alone");
	reap(other);
	/* (got_in() opened and closed the file: our lock is gone; take it again.) */
	close(fd);

	fd = pidfile_open(path, err, sizeof(err));
	ok(fd >= 0, "pidfile_open on our own unlocked file");
	is_int(in_child('r', err, sizeof(err)), getpid(),
	    "pidfile_running in another process: the lock holder, us");
	is_int(in_child('o', err, sizeof(err)), -1, "a second pidfile_open fails");
	snprintf(buf, sizeof(buf), "already running as pid %d (pidfile %s)", (int)getpid(), path);
	is_str(err, buf, "saying who holds it");

	/* fcntl locks do not pass to a child: only the process that locked holds it. */
	child = idler();
	close(fd);
	is_int(in_child('r', err, sizeof(err)), 0,
	    "with only a forked child holding the descriptor, nothing runs");
	reap(child);

	fd = pidfile_open(path, err, sizeof(err));
	ok(fd >= 0, "pidfile_open again");
	is_int(pidfile_close(path, fd), 0, "pidfile_close");
	ok(access(path, F_OK) == -1 && errno == ENOENT, "removes the file");
	is_int(in_child('r', err, sizeof(err)), 0, "and nothing runs");

	/* The name replaced under a running master: the other file is not removed. */
	fd = pidfile_open(path, err, sizeof(err));
	snprintf(buf, sizeof(buf), "%s.new", path);
	put_in(buf, "12345\n");
	rename(buf, path);
	pidfile_close(path, fd);
	is_str(got_in(path), "12345\n", "pidfile_close leaves a file that is not ours");
	unlink(path);

	/* A master in another process. */
	if ((child = holder(HOLD_MASTER)) == -1)
		bail_out("a child could not take the pid file");
	is_int(pidfile_running(path, err, sizeof(err)), child, "the child holds it");
	is_int(pidfile_signal(path, SIGTERM, err, sizeof(err)), child,
	    "pidfile_signal sends to the lock holder");
	waitpid(child, &st, 0);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "which gets SIGTERM");
	is_int(pidfile_running(path, err, sizeof(err)), 0, "once it is gone, nothing runs");
	ok(strstr(err, "stale") != NULL, "and its leftover file is stale (%s)", err);

	/* Locked, but the file names someone else: not signalled. */
	if ((child = holder(HOLD_MASTER)) == -1)
		bail_out("a child could not take the pid file");
	other = idler();
	snprintf(buf, sizeof(buf), "%d\n", (int)other);
	put(buf);
	is_int(pidfile_running(path, err, sizeof(err)), -1,
	    "lock holder and pid in the file differ: refused");
	is_int(pidfile_signal(path, SIGTERM, err, sizeof(err)), -1, "pidfile_signal refuses too");
	ok(strstr(err, "locked by pid") != NULL, "saying so (%s)", err);
	ok(alive(child) && alive(other), "neither process was signalled");
	reap(child);
	reap(other);

	/* A read lock is no master. */
	if ((child = holder(HOLD_READER)) == -1)
		bail_out("a child could not read-lock the pid file");
	snprintf(buf, sizeof(buf), "%d\n", (int)child);
	put(buf);
	is_int(pidfile_running(path, err, sizeof(err)), -1, "a reader's lock: refused");
	ok(alive(child), "the reader was not signalled");
	if (lstat(path, &before) == -1)
		bail_out("lstat %s: %s", path, strerror(errno));
	rc = in_child('o', err, sizeof(err));
	ok(rc >= 0, "nor does it stop a start (%s)", rc >= 0 ? "started" : err);
	ok(lstat(path, &after) == 0 && after.st_ino != before.st_ino,
	    "which put a new file in place of the read-locked one");
	ok(alive(child), "the reader was not signalled");
	reap(child);
	unlink(path);
}

/* Nothing but a plain file of our own is written to. */
static void
test_planted(void)
{
	char err[256], target[256], fifo[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/p.pid", dir);
	snprintf(target, sizeof(target), "%s/target", dir);

	put_in(target, "precious\n");
	if (symlink(target, path) == -1)
		bail_out("symlink: %s", strerror(errno));
	is_int(pidfile_open(path, err, sizeof(err)), -1, "a symlink at the pid file is refused");
	ok(strstr(err, "symbolic link") != NULL && strstr(err, path) != NULL,
	    "naming it (%s)", err);
	is_str(got_in(target), "precious\n", "its target is untouched");
	is_int(pidfile_running(path, err, sizeof(err)), -1, "pidfile_running refuses it too");
	unlink(path);
	unlink(target);

	if (symlink(target, path) == -1)
		bail_out("symlink: %s", strerror(errno));
	is_int(pidfile_open(path, err, sizeof(err)), -1, "a dangling symlink is refused");
	ok(lstat(target, &st) == -1 && errno == ENOENT, "its target is not created");
	unlink(path);

	put_in(target, "precious\n");
	if (link(target, path) == -1)
		bail_out("link: %s", strerror(errno));
	is_int(pidfile_open(path, err, sizeof(err)), -1, "a hard link is refused");
	ok(strstr(err, "hard links") != NULL, "saying so (%s)", err);
	is_str(got_in(target), "precious\n", "the other name's content is untouched");
	unlink(path);
	unlink(target);

	snprintf(fifo, sizeof(fifo), "%s/p.pid", dir);
	if (mkfifo(fifo, 0600) == -1)
		bail_out("mkfifo: %s", strerror(errno));
	is_int(pidfile_open(path, err, sizeof(err)), -1, "a FIFO is refused, without hanging");
	ok(strstr(err, "not a regular file") != NULL, "saying so (%s)", err);
	unlink(path);

	snprintf(path, sizeof(path), "%s/no/such/dir/p.pid", dir);
	ok(pidfile_open(path, err, sizeof(err)) == -1 && strstr(err, "p.pid") != NULL,
	    "open in a missing directory fails naming the file (%s)", err);

	/* Root writing into another user's file (planted in a shared directory). */
	snprintf(path, sizeof(path), "%s/p.pid", dir);
	if (geteuid() != 0) {
		skip(3, "a file of another user's needs root to make");
		return;
	}
	put("precious\n");
	if (chown(path, 65534, 65534) == -1)
		bail_out("chown: %s", strerror(errno));
	is_int(pidfile_open(path, err, sizeof(err)), -1, "another user's file is refused");
	ok(strstr(err, "owned by uid 65534") != NULL, "saying so (%s)", err);
	is_str(got_in(path), "precious\n", "and left as it was");
	unlink(path);
}

/*
 * A master that dropped privileges may not even search the directory of
 * its pid file any more: it empties the file it holds open instead.
 */
static void
test_close_unreachable(void)
{
	char err[256], sub[128], buf[32];
	int fd, st, p[2];
	pid_t pid;

	if (geteuid() != 0) {
		skip(3, "dropping privileges needs root");
		return;
	}
	snprintf(sub, sizeof(sub), "%s/private", dir);
	if (mkdir(sub, 0700) == -1)
		bail_out("mkdir: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/p.pid", sub);
	if ((fd = pidfile_open(path, err, sizeof(err))) == -1)
		bail_out("pidfile_open: %s", err);
	if (pipe(p) == -1 || (pid = fork()) == -1)
		bail_out("pipe/fork: %s", strerror(errno));
	if (pid == 0) {
		/* The lock is not inherited: this child only tries the exit path. */
		close(p[0]);
		if (setgid(65534) == -1 || setuid(65534) == -1)
			_exit(9);
		st = pidfile_close(path, fd);
		_exit(write(p[1], &st, sizeof(st)) == (ssize_t)sizeof(st) ? 0 : 9);
	}
	close(p[1]);
	if (read(p[0], &st, sizeof(st)) != (ssize_t)sizeof(st))
		st = -99;
	close(p[0]);
	waitpid(pid, NULL, 0);
	is_int(st, 1, "pidfile_close in a directory it cannot search: emptied");
	snprintf(buf, sizeof(buf), "%s", got_in(path));
	is_str(buf, "", "the file names no process");
	is_int(pidfile_close(path, fd), 0, "and root then removes it");
	rmdir(sub);
}

static void
test_drop_noop(void)
{
	char err[256];

	is_int(daemon_drop(getuid(), getgid(), err, sizeof(err)), 0,
	    "dropping to who we are is a no-op");
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		bail_out("mkdtemp: %s", strerror(errno));
	test_signals();
	test_not_running();
	test_lock();
	test_planted();
	test_close_unreachable();
	test_drop_noop();
	rmdir(dir);
	return done_testing();
}
