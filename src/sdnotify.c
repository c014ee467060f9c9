/*
 * sdnotify.c: the sd_notify(3) protocol, one datagram per call.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sdnotify.h"

int
sdnotify(const char *fmt, ...)
{
	struct sockaddr_un sun;
	const char *path = getenv("NOTIFY_SOCKET");
	char msg[1024];
	size_t plen;
	socklen_t slen;
	va_list ap;
	int fd, n, saved;

	if (path == NULL || path[0] == '\0')
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';	/* abstract namespace: no trailing NUL */
	slen = offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/');

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		errno = EMSGSIZE;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	/* Never block the master: a notification nobody reads is dropped. */
	n = sendto(fd, msg, n, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sun, slen);
	saved = errno;
	close(fd);
	errno = saved;
	return n == -1 ? -1 : 1;
}

/* A decimal number in $name, or -1 when unset or malformed. */
static long long
env_number(const char *name)
{
	const char *v = getenv(name);
	char *end;
	long long n;

	if (v == NULL || *v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : n;
}

int
sd_listen_collect(struct sd_socket **out)
{
	long long pid = env_number("LISTEN_PID"), n = env_number("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	struct sd_socket *v;

	*out = NULL;
	if (pid != getpid() || n <= 0) {
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
		return 0;
	}
	if (n > 1024 || (v = calloc(n, sizeof(*v))) == NULL) {
		errno = n > 1024 ? EINVAL : errno;
		return -1;
	}
	for (long long i = 0; i < n; i++) {
		size_t len = 0;

		v[i].fd = 3 + i;		/* SD_LISTEN_FDS_START */
		fcntl(v[i].fd, F_SETFD, FD_CLOEXEC);
		if (names != NULL) {
			len = strcspn(names, ":");
			if (len >= sizeof(v[i].name))
				len = sizeof(v[i].name) - 1;
			memcpy(v[i].name, names, len);
			names += strcspn(names, ":");
			if (*names == ':')
				names++;
		}
		v[i].name[len] = '\0';
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	*out = v;
	return (int)n;
}

unsigned long long
sd_watchdog_usec(void)
{
	long long usec = env_number("WATCHDOG_USEC"), pid = env_number("WATCHDOG_PID");

	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (usec <= 0 || (pid != -1 && pid != getpid()))
		return 0;
	return (unsigned long long)usec;
}
