/*
 * selfpipe.h: turns signals into bytes on a non-blocking pipe.
 *
 * The handler writes the signal number into the pipe (saving errno) and
 * does nothing else; the master's loop reads the pipe and does the work.
 */
#ifndef PREFORKD_SELFPIPE_H
#define PREFORKD_SELFPIPE_H

/* Create the pipe.  Returns the read end, or -1 with errno set. */
int	selfpipe_open(void);
/* Catch signo through the pipe.  0 or -1 with errno set. */
int	selfpipe_catch(int signo);
/* Next caught signal, or 0 when none is pending. */
int	selfpipe_next(void);
/* Close both ends (in a forked child). */
void	selfpipe_close(void);

#endif
