/*
 * ctlcmd.c: the control socket's command parser (ctlcmd.h).
 */
#include <stdio.h>
#include <string.h>

#include "ctlcmd.h"

#define CTL_MAX_WORDS	8	/* more than any command takes, to say "extra" */

const char ctlcmd_help[] =
    "help                                   this list\n"
    "show info                              the master: pid, version, uptime, generation, reloads\n"
    "show stats                             per listener and backend counters, a table\n"
    "show stats json                        the same and more, as one JSON object\n"
    "show backends                          each backend's state, why, weight, connections, last check\n"
    "show workers                           each worker: slot, pid, generation, state, connections\n"
    "show clients [LISTENER] [N]            the N clients (20; at most 1000) with the most\n"
    "                                       connections open, of a listener or of all\n"
    "set backend LISTENER ADDR ready|drain|maint\n"
    "                                       operator state of a backend, kept across reloads\n"
    "set weight LISTENER ADDR N             the backend's weight, 1-256, kept across reloads\n"
    "reload                                 reload the configuration; answers when the new\n"
    "                                       generation is ready, or with the errors\n";

/*
 * Split line into at most max words (NUL-terminated in place); the count,
 * or -1 with err set when a byte is not printable ASCII or there are more
 * than max words.
 */
static int
ctlcmd_words(char *line, size_t len, char **w, int max, char *err, size_t errlen)
{
	int n = 0;
	size_t i;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == ' ' || c == '\t') {
			line[i] = '\0';
			continue;
		}
		if (c < 0x20 || c > 0x7e) {
			snprintf(err, errlen, "byte 0x%02x at column %zu: commands are "
			    "printable ASCII", c, i + 1);
			return -1;
		}
		if (i > 0 && line[i - 1] != '\0')
			continue;
		if (n == max) {
			snprintf(err, errlen, "too many words");
			return -1;
		}
		w[n++] = &line[i];
	}
	return n;
}

/* A number from min to max, digits only.  0 or -1. */
static int
ctlcmd_uint(const char *s, unsigned min, unsigned max, unsigned *v)
{
	unsigned long n = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (unsigned)(*s - '0');
		if (n > max)
			return -1;
	}
	if (n < min)
		return -1;
	*v = (unsigned)n;
	return 0;
}

/* Only digits (and at least one)? */
static int
ctlcmd_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/*
 * "show clients [LISTENER] [N]": words w[2..n-1].  A lone word of digits
 * is N, so a listener whose name is a number is given with its N.
 */
static int
ctlcmd_clients(char **w, int n, struct ctl_cmd *cmd, char *err, size_t errlen)
{
	const char *count = NULL;

	if (n > 4) {
		snprintf(err, errlen, "usage: show clients [LISTENER] [N]");
		return -1;
	}
	if (n == 4) {
		cmd->listener = w[2];
		count = w[3];
	} else if (n == 3 && ctlcmd_digits(w[2]))
		count = w[2];
	else if (n == 3)
		cmd->listener = w[2];
	cmd->count = CTL_CLIENTS_DEFAULT;
	if (count != NULL && ctlcmd_uint(count, 1, CTL_CLIENTS_MAX, &cmd->count) == -1) {
		snprintf(err, errlen, "show clients: \"%.64s\": expected a number from 1 to %d",
		    count, CTL_CLIENTS_MAX);
		return -1;
	}
	cmd->op = CTL_SHOW_CLIENTS;
	return 0;
}

/* "show ...": words w[1..n-1]. */
static int
ctlcmd_show(char **w, int n, struct ctl_cmd *cmd, char *err, size_t errlen)
{
	if (n >= 2 && strcmp(w[1], "clients") == 0)
		return ctlcmd_clients(w, n, cmd, err, errlen);
	if (n == 2 && strcmp(w[1], "info") == 0)
		cmd->op = CTL_SHOW_INFO;
	else if (n == 2 && strcmp(w[1], "stats") == 0)
		cmd->op = CTL_SHOW_STATS;
	else if (n == 3 && strcmp(w[1], "stats") == 0 && strcmp(w[2], "json") == 0)
		cmd->op = CTL_SHOW_STATS_JSON;
	else if (n == 2 && strcmp(w[1], "backends") == 0)
		cmd->op = CTL_SHOW_BACKENDS;
	else if (n == 2 && strcmp(w[1], "workers") == 0)
		cmd->op = CTL_SHOW_WORKERS;
	else if (n >= 2 && strcmp(w[1], "stats") == 0) {
		snprintf(err, errlen, "show stats: unexpected \"%.64s\" (expected json or "
		    "nothing)", w[2]);
		return -1;
	} else if (n > 2 && (strcmp(w[1], "info") == 0 || strcmp(w[1], "backends") == 0 ||
	    strcmp(w[1], "workers") == 0)) {
		snprintf(err, errlen, "show %s: unexpected \"%.64s\"", w[1], w[2]);
		return -1;
	} else {
		snprintf(err, errlen, "show: expected info, stats, stats json, backends, "
		    "workers or clients");
		return -1;
	}
	return 0;
}

/* "set backend|weight LISTENER ADDR VALUE". */
static int
ctlcmd_set(char **w, int n, struct ctl_cmd *cmd, char *err, size_t errlen)
{
	int backend;

	if (n < 2 || (strcmp(w[1], "backend") != 0 && strcmp(w[1], "weight") != 0)) {
		snprintf(err, errlen, "set: expected backend or weight");
		return -1;
	}
	backend = strcmp(w[1], "backend") == 0;
	if (n != 5) {
		snprintf(err, errlen, "usage: set %s LISTENER ADDR %s", w[1],
		    backend ? "ready|drain|maint" : "N");
		return -1;
	}
	cmd->listener = w[2];
	cmd->addr = w[3];
	if (backend) {
		if (strcmp(w[4], "ready") != 0 && strcmp(w[4], "drain") != 0 &&
		    strcmp(w[4], "maint") != 0) {
			snprintf(err, errlen, "set backend: state \"%.64s\": expected ready, "
			    "drain or maint", w[4]);
			return -1;
		}
		cmd->op = CTL_SET_BACKEND;
		cmd->state = w[4];
		return 0;
	}
	if (ctlcmd_uint(w[4], 1, CTL_WEIGHT_MAX, &cmd->weight) == -1) {
		snprintf(err, errlen, "set weight: \"%.64s\": expected a number from 1 to %d",
		    w[4], CTL_WEIGHT_MAX);
		return -1;
	}
	cmd->op = CTL_SET_WEIGHT;
	return 0;
}

int
ctlcmd_parse(char *line, size_t len, struct ctl_cmd *cmd, char *err, size_t errlen)
{
	char *w[CTL_MAX_WORDS];
	int n;

	memset(cmd, 0, sizeof(*cmd));
	if ((n = ctlcmd_words(line, len, w, CTL_MAX_WORDS, err, errlen)) == -1)
		return -1;
	if (n == 0) {
		snprintf(err, errlen, "empty command (try help)");
		return -1;
	}
	if (strcmp(w[0], "show") == 0)
		return ctlcmd_show(w, n, cmd, err, errlen);
	if (strcmp(w[0], "set") == 0)
		return ctlcmd_set(w, n, cmd, err, errlen);
	if (strcmp(w[0], "help") == 0 || strcmp(w[0], "reload") == 0) {
		if (n > 1) {
			snprintf(err, errlen, "%s: takes no argument", w[0]);
			return -1;
		}
		cmd->op = w[0][0] == 'h' ? CTL_HELP : CTL_RELOAD;
		return 0;
	}
	/* The word may be long: the line is at most CTL_LINE_MAX. */
	snprintf(err, errlen, "unknown command \"%.64s\" (try help)", w[0]);
	return -1;
}
