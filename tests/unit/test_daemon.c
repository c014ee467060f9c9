/*
 * test_daemon.c: unit tests for src/daemon.c: signal names and the pid
 * file (check, write, remove; stale, live, foreign and malformed files).
 */
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

static void
put(const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		bail_out("%s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
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

static void
test_pidfile(void)
{
	char err[256], buf[64];
	pid_t child, got;
	int st;

	snprintf(path, sizeof(path), "%s/p.pid", dir);
	is_int(pidfile_check(path, err, sizeof(err)), 0, "missing file: not running");

	/* A live process other than us. */
	if ((child = fork()) == 0) {
		pause();
		_exit(0);
	}
	snprintf(buf, sizeof(buf), "%d\n", (int)child);
	put(buf);
	is_int(pidfile_check(path, err, sizeof(err)), child, "live pid is reported");
	/* Killed but not reaped: a zombie is not running. */
	kill(child, SIGKILL);
	for (int i = 0; i < 200; i++) {
		char p[64], stat[256];
		FILE *f;

		snprintf(p, sizeof(p), "/proc/%d/stat", (int)child);
		if ((f = fopen(p, "r")) == NULL)
			break;
		stat[0] = '\0';
		if (fgets(stat, sizeof(stat), f) == NULL)
			stat[0] = '\0';
		fclose(f);
		if (strstr(stat, ") Z ") != NULL)
			break;
		usleep(5000);
	}
	is_int(pidfile_check(path, err, sizeof(err)), 0, "zombie pid is stale");
	waitpid(child, &st, 0);
	is_int(pidfile_check(path, err, sizeof(err)), 0, "dead pid is stale");

	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	put(buf);
	is_int(pidfile_check(path, err, sizeof(err)), 0, "our own pid is not another instance");

	put("");
	is_int(pidfile_check(path, err, sizeof(err)), 0, "empty file");
	put("12abc\n");
	is_int(pidfile_check(path, err, sizeof(err)), 0, "garbage");
	put("1\n");
	is_int(pidfile_check(path, err, sizeof(err)), 0, "pid 1 is never ours to judge");
	put("-5\n");
	is_int(pidfile_check(path, err, sizeof(err)), 0, "negative pid");

	/* Write, read back, remove. */
	ok(pidfile_write(path, err, sizeof(err)) == 0, "pidfile_write");
	{
		FILE *f = fopen(path, "r");

		buf[0] = '\0';
		if (f != NULL) {
			if (fgets(buf, sizeof(buf), f) == NULL)
				buf[0] = '\0';
			fclose(f);
		}
	}
	is_int(atoi(buf), getpid(), "file holds our pid");
	ok(strchr(buf, '\n') != NULL, "newline-terminated");
	got = pidfile_check(path, err, sizeof(err));
	is_int(got, 0, "our own file does not block us");
	pidfile_remove(path);
	ok(access(path, F_OK) == -1 && errno == ENOENT, "removed when it holds our pid");

	put("999999\n");
	pidfile_remove(path);
	ok(access(path, F_OK) == 0, "not removed when it holds another pid");
	unlink(path);

	snprintf(path, sizeof(path), "%s/no/such/dir/p.pid", dir);
	ok(pidfile_write(path, err, sizeof(err)) == -1 && strstr(err, "p.pid") != NULL,
	    "write into a missing directory fails naming the file (%s)", err);
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
	test_pidfile();
	test_drop_noop();
	rmdir(dir);
	return done_testing();
}
