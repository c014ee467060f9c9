/*
 * echo.h: echo mode, which sends every byte back in order.  Owns what an
 * echo connection does from its start to its end; the connection itself,
 * its timers and its close belong to conn.c, which reaches this file only
 * through echo_ops.  May not touch the worker or the listen sockets.
 */
#ifndef PREFORKD_ECHO_H
#define PREFORKD_ECHO_H

#include "conn.h"

/* Echo mode's operations, for a listener with mode = echo. */
extern const struct mode_ops echo_ops;

#endif
