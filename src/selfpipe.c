/*
 * selfpipe.c: signals become bytes on a non-blocking pipe.
 *
 * The two pipe ends are the only globals: a signal handler has nowhere
 * else to find them.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "selfpipe.h"

static int pfd[2] = { -1, -1 };

static void
selfpipe_handler(int signo)
{
	int saved = errno;
	unsigned char c = signo;

	/* A full pipe drops the byte: the loop is already behind on signals. */
	if (write(pfd[1], &c, 1) == -1) {
		/* nothing to do in a handler */
	}
	errno = saved;
}

int
selfpipe_open(void)
{
	if (pipe2(pfd, O_NONBLOCK | O_CLOEXEC) == -1)
		return -1;
	return pfd[0];
}

int
selfpipe_catch(int signo)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = selfpipe_handler;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	return sigaction(signo, &sa, NULL);
}

int
selfpipe_next(void)
{
	unsigned char c;

	if (read(pfd[0], &c, 1) == 1)
		return c;
	return 0;
}

void
selfpipe_close(void)
{
	close(pfd[0]);
	close(pfd[1]);
	pfd[0] = pfd[1] = -1;
}
