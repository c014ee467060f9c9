/*
 * ctlclient.c: the control socket's command-line client (ctlclient.h).
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctlclient.h"

#define ERROR_PREFIX	"error: "

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd has events, by the deadline.  1, 0 at the deadline, -1. */
static int
wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	long long left;
	int rc;

	for (;;) {
		if ((left = deadline - now_ms()) <= 0)
			return 0;
		if ((rc = poll(&p, 1, left > 60000 ? 60000 : (int)left)) > 0)
			return 1;
		if (rc == -1 && errno != EINTR)
			return -1;
	}
}

/* Send all of buf by the deadline.  0, or -1 with err. */
static int
send_all(int fd, const char *buf, size_t len, long long deadline, char *err, size_t errlen)
{
	ssize_t n;

	while (len > 0) {
		if ((n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT)) > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline) == 1)
			continue;
		snprintf(err, errlen, "sending the command: %s",
		    n == -1 && errno != EAGAIN ? strerror(errno) : "timed out");
		return -1;
	}
	return 0;
}

int
ctlclient_run(const char *path, const char *cmd, FILE *out, int timeout_secs, char *err,
    size_t errlen)
{
	char buf[8192], head[sizeof(ERROR_PREFIX)];
	long long deadline = now_ms() + (long long)timeout_secs * 1000;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_secs };
	size_t got = 0, hlen = 0;
	int fd, rc = CTLCLIENT_UNREACHABLE, w;
	ssize_t n;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return CTLCLIENT_UNREACHABLE;
	}
	strcpy(sun.sun_path, path);
	/* A connect waits while the master's backlog is full: bound it. */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return CTLCLIENT_UNREACHABLE;
	}
	if (send_all(fd, cmd, strlen(cmd), deadline, err, errlen) == -1 ||
	    send_all(fd, "\n", 1, deadline, err, errlen) == -1)
		goto out;
	for (;;) {
		if ((w = wait_fd(fd, POLLIN, deadline)) != 1) {
			snprintf(err, errlen, "%s: %s", path, w == 0 ?
			    "no complete answer in time" : strerror(errno));
			rc = CTLCLIENT_UNREACHABLE;
			goto out;
		}
		if ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) == -1 &&
		    (errno == EAGAIN || errno == EINTR))
			continue;
		/* A reset after the answer (the master's close) ends it too. */
		if (n == 0 || (n == -1 && got > 0))
			break;
		if (n == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (hlen < sizeof(head) - 1) {
			size_t k = (size_t)n < sizeof(head) - 1 - hlen ? (size_t)n :
			    sizeof(head) - 1 - hlen;

			memcpy(head + hlen, buf, k);
			hlen += k;
		}
		fwrite(buf, 1, (size_t)n, out);
		got += (size_t)n;
	}
	if (got == 0) {
		snprintf(err, errlen, "%s: the connection closed without an answer", path);
		goto out;
	}
	rc = hlen == sizeof(head) - 1 && memcmp(head, ERROR_PREFIX, hlen) == 0 ?
	    CTLCLIENT_ERROR : CTLCLIENT_OK;
out:
	fflush(out);
	close(fd);
	return rc;
}
