/*
 * fuzz_control.c: libFuzzer harness for src/ctlcmd.c, the control
 * socket's command parser.
 *
 * Invariants checked on every input (a crash, a sanitizer report or a
 * leak is a failure too):
 *  - a refusal comes with a message of one line of printable ASCII, shorter
 *    than 200 bytes whatever the input;
 *  - an accepted command's arguments are non-empty words of printable
 *    ASCII inside the line, as its command needs them: a state of ready,
 *    drain or maint, a weight from 1 to CTL_WEIGHT_MAX, a count of
 *    show clients from 1 to CTL_CLIENTS_MAX (its listener optional);
 *  - written back in its canonical form, an accepted command parses again
 *    to the same command.
 * The line is parsed from a copy of exactly its size plus the byte the
 * parser may write its NUL into, so that ASan catches a read past it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlcmd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_control: %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

static void
check_word(const char *w, const char *line, size_t size, const char *what)
{
	CHECK(w != NULL && w >= line && w < line + size, "%s outside the line", what);
	CHECK(*w != '\0', "%s empty", what);
	for (; *w != '\0'; w++)
		CHECK(*w > 0x20 && *w < 0x7f, "%s holds byte 0x%02x", what, (unsigned char)*w);
}

/* cmd written back as a line into buf. */
static size_t
canonical(const struct ctl_cmd *cmd, char *buf, size_t len)
{
	static const char *const names[] = {
		[CTL_HELP] = "help", [CTL_SHOW_INFO] = "show info",
		[CTL_SHOW_STATS] = "show stats", [CTL_SHOW_STATS_JSON] = "show stats json",
		[CTL_SHOW_BACKENDS] = "show backends", [CTL_SHOW_WORKERS] = "show workers",
		[CTL_SHOW_CLIENTS] = "show clients", [CTL_RELOAD] = "reload",
	};
	int n;

	if (cmd->op == CTL_SET_BACKEND)
		n = snprintf(buf, len, "set backend %s %s %s", cmd->listener, cmd->addr,
		    cmd->state);
	else if (cmd->op == CTL_SET_WEIGHT)
		n = snprintf(buf, len, "set weight %s %s %u", cmd->listener, cmd->addr,
		    cmd->weight);
	else if (cmd->op == CTL_SHOW_CLIENTS && cmd->listener != NULL)
		n = snprintf(buf, len, "show clients %s %u", cmd->listener, cmd->count);
	else if (cmd->op == CTL_SHOW_CLIENTS)
		n = snprintf(buf, len, "show clients %u", cmd->count);
	else
		n = snprintf(buf, len, "%s", names[cmd->op]);
	CHECK(n > 0 && (size_t)n < len, "canonical form does not fit");
	return (size_t)n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_cmd cmd, again;
	char err[256], buf[3 * CTL_LINE_MAX], *line;
	size_t n;

	if (size > CTL_LINE_MAX)
		return 0;	/* the server refuses longer lines unread */
	if ((line = malloc(size + 1)) == NULL)
		return 0;
	memcpy(line, data, size);
	memset(err, 0, sizeof(err));
	if (ctlcmd_parse(line, size, &cmd, err, sizeof(err)) == -1) {
		n = strlen(err);
		CHECK(n > 0 && n < 200, "error message of %zu bytes", n);
		for (size_t i = 0; i < n; i++)
			CHECK(err[i] >= 0x20 && err[i] < 0x7f, "error message holds 0x%02x",
			    (unsigned char)err[i]);
		free(line);
		return 0;
	}
	CHECK(cmd.op >= CTL_HELP && cmd.op <= CTL_RELOAD, "op %d", (int)cmd.op);
	if (cmd.op == CTL_SET_BACKEND || cmd.op == CTL_SET_WEIGHT) {
		check_word(cmd.listener, line, size, "listener");
		check_word(cmd.addr, line, size, "addr");
	} else if (cmd.op == CTL_SHOW_CLIENTS) {
		if (cmd.listener != NULL)
			check_word(cmd.listener, line, size, "listener");
		CHECK(cmd.addr == NULL, "an address on show clients");
	} else
		CHECK(cmd.listener == NULL && cmd.addr == NULL, "arguments on op %d", (int)cmd.op);
	if (cmd.op == CTL_SET_BACKEND) {
		check_word(cmd.state, line, size, "state");
		CHECK(strcmp(cmd.state, "ready") == 0 || strcmp(cmd.state, "drain") == 0 ||
		    strcmp(cmd.state, "maint") == 0, "state %s", cmd.state);
	} else
		CHECK(cmd.state == NULL, "a state on op %d", (int)cmd.op);
	CHECK(cmd.op == CTL_SET_WEIGHT ? cmd.weight >= 1 && cmd.weight <= CTL_WEIGHT_MAX :
	    cmd.weight == 0, "weight %u on op %d", cmd.weight, (int)cmd.op);
	CHECK(cmd.op == CTL_SHOW_CLIENTS ? cmd.count >= 1 && cmd.count <= CTL_CLIENTS_MAX :
	    cmd.count == 0, "count %u on op %d", cmd.count, (int)cmd.op);

	n = canonical(&cmd, buf, sizeof(buf));
	CHECK(ctlcmd_parse(buf, n, &again, err, sizeof(err)) == 0, "canonical form refused: %s",
	    err);
	CHECK(again.op == cmd.op && again.weight == cmd.weight && again.count == cmd.count,
	    "canonical form differs");
	if (cmd.op == CTL_SET_BACKEND || cmd.op == CTL_SET_WEIGHT)
		CHECK(strcmp(again.listener, cmd.listener) == 0 &&
		    strcmp(again.addr, cmd.addr) == 0, "canonical arguments differ");
	if (cmd.op == CTL_SHOW_CLIENTS)
		CHECK((again.listener == NULL) == (cmd.listener == NULL) &&
		    (cmd.listener == NULL || strcmp(again.listener, cmd.listener) == 0),
		    "canonical listener differs");
	free(line);
	return 0;
}
