/*
 * tool.h: what the benchmark tools (pfload, refecho) share: dying with a
 * message and noting a stop signal.  Header-only, so that each tool stays
 * one source file; a tool defines TOOL_NAME (its name, for messages) before
 * including it.  Nothing here knows what a tool measures or serves.
 */
#ifndef TOOL_H
#define TOOL_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef TOOL_NAME
#error "define TOOL_NAME before including tool.h"
#endif

/* The signal that asked the tool to stop, or 0; set by on_signal(). */
static volatile sig_atomic_t stop_signal;

/*
 * Print "TOOL_NAME: " and the printf-style message on stderr, then exit with
 * status 1.
 */
static inline void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;

	fputs(TOOL_NAME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A signal handler that records signo in stop_signal and nothing else. */
static inline void
on_signal(int signo)
{
	stop_signal = signo;
}

#endif /* TOOL_H */
