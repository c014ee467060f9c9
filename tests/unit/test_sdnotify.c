/*
 * test_sdnotify.c: unit tests for src/sdnotify.c: datagrams to a path and
 * to an abstract socket, nothing when unset, and the LISTEN_* and
 * WATCHDOG_* environment parsers.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sdnotify.h"
#include "tap.h"

static int
bind_dgram(const char *name, int abstract)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd;

	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) == -1)
		bail_out("socket: %s", strerror(errno));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (abstract) {
		memcpy(sun.sun_path + 1, name, strlen(name));
		len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
	} else {
		strcpy(sun.sun_path, name);
		len = sizeof(sun);
	}
	if (bind(fd, (struct sockaddr *)&sun, len) == -1)
		bail_out("bind %s: %s", name, strerror(errno));
	return fd;
}

static void
expect(int fd, const char *want, const char *what)
{
	char buf[2048];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = '\0';
	is_str(buf, want, "%s", what);
}

static void
test_notify(void)
{
	char path[] = "/tmp/preforkd-test-notify-XXXXXX", sock[128], abs_name[64];
	int fd;

	unsetenv("NOTIFY_SOCKET");
	is_int(sdnotify("READY=1"), 0, "unset: nothing sent");

	if (mkdtemp(path) == NULL)
		bail_out("mkdtemp: %s", strerror(errno));
	snprintf(sock, sizeof(sock), "%s/n.sock", path);
	fd = bind_dgram(sock, 0);
	setenv("NOTIFY_SOCKET", sock, 1);
	is_int(sdnotify("READY=1\nSTATUS=%s %d", "gen", 1), 1, "path: sent");
	expect(fd, "READY=1\nSTATUS=gen 1", "path: one datagram, formatted");
	close(fd);
	unlink(sock);
	rmdir(path);

	snprintf(abs_name, sizeof(abs_name), "preforkd-test-%d", (int)getpid());
	fd = bind_dgram(abs_name, 1);
	snprintf(sock, sizeof(sock), "@%s", abs_name);
	setenv("NOTIFY_SOCKET", sock, 1);
	is_int(sdnotify("WATCHDOG=1"), 1, "abstract: sent");
	expect(fd, "WATCHDOG=1", "abstract: received");
	close(fd);

	setenv("NOTIFY_SOCKET", "relative/path", 1);
	ok(sdnotify("READY=1") == -1 && errno == EINVAL, "relative path refused");
	setenv("NOTIFY_SOCKET", "/nonexistent/socket", 1);
	is_int(sdnotify("READY=1"), -1, "missing socket: -1");
	unsetenv("NOTIFY_SOCKET");
}

static void
test_listen_fds(void)
{
	struct sd_socket *v;
	char pid[32];
	int n, a, b;

	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	is_int(sd_listen_collect(&v), 0, "not socket-activated");
	ok(v == NULL, "no list");

	/* Make fds 3 and 4 exist for the test. */
	a = dup2(STDERR_FILENO, 3);
	b = dup2(STDERR_FILENO, 4);
	ok(a == 3 && b == 4, "fds 3 and 4");
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "2", 1);
	setenv("LISTEN_FDNAMES", "alpha:beta", 1);
	n = sd_listen_collect(&v);
	is_int(n, 2, "two sockets");
	if (n == 2) {
		is_int(v[0].fd, 3, "first is fd 3");
		is_str(v[0].name, "alpha", "first name");
		is_int(v[1].fd, 4, "second is fd 4");
		is_str(v[1].name, "beta", "second name");
		ok(fcntl(3, F_GETFD) & FD_CLOEXEC, "marked close-on-exec");
	}
	free(v);
	ok(getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL &&
	    getenv("LISTEN_FDNAMES") == NULL, "variables unset after use");

	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "2", 1);
	n = sd_listen_collect(&v);
	ok(n == 2 && v[0].name[0] == '\0' && v[1].name[0] == '\0', "no names: empty");
	free(v);

	setenv("LISTEN_PID", "1", 1);
	setenv("LISTEN_FDS", "2", 1);
	is_int(sd_listen_collect(&v), 0, "another pid's sockets are not ours");
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "x", 1);
	is_int(sd_listen_collect(&v), 0, "malformed LISTEN_FDS");
	close(3);
	close(4);
}

static void
test_watchdog(void)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	is_uint(sd_watchdog_usec(), 0, "unset");
	setenv("WATCHDOG_USEC", "400000", 1);
	is_uint(sd_watchdog_usec(), 400000, "usec, no pid");
	ok(getenv("WATCHDOG_USEC") == NULL, "unset after use");
	setenv("WATCHDOG_USEC", "400000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	is_uint(sd_watchdog_usec(), 400000, "our pid");
	setenv("WATCHDOG_USEC", "400000", 1);
	setenv("WATCHDOG_PID", "1", 1);
	is_uint(sd_watchdog_usec(), 0, "another pid");
	setenv("WATCHDOG_USEC", "0", 1);
	is_uint(sd_watchdog_usec(), 0, "zero");
	setenv("WATCHDOG_USEC", "abc", 1);
	is_uint(sd_watchdog_usec(), 0, "malformed");
}

int
main(void)
{
	test_notify();
	test_listen_fds();
	test_watchdog();
	return done_testing();
}
