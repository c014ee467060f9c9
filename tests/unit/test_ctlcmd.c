/*
 * test_ctlcmd.c: unit tests for src/ctlcmd.c, the control socket's
 * command parser: every command, every argument error, the bytes a line
 * may not hold; show clients and its optional listener and count.
 */
#include <string.h>

#include "ctlcmd.h"
#include "tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static const struct {
	const char	*line;
	int		 op;		/* -1: an error */
	const char	*listener, *addr, *state;
	unsigned	 weight;
	const char	*err;		/* a part of the message */
} cases[] = {
	{ "help",			CTL_HELP, NULL, NULL, NULL, 0, NULL },
	{ "help\r",			CTL_HELP, NULL, NULL, NULL, 0, NULL },
	{ "  help \t",			CTL_HELP, NULL, NULL, NULL, 0, NULL },
	{ "show info",			CTL_SHOW_INFO, NULL, NULL, NULL, 0, NULL },
	{ "show stats",			CTL_SHOW_STATS, NULL, NULL, NULL, 0, NULL },
	{ "show  stats\tjson",		CTL_SHOW_STATS_JSON, NULL, NULL, NULL, 0, NULL },
	{ "show backends",		CTL_SHOW_BACKENDS, NULL, NULL, NULL, 0, NULL },
	{ "show workers",		CTL_SHOW_WORKERS, NULL, NULL, NULL, 0, NULL },
	{ "reload",			CTL_RELOAD, NULL, NULL, NULL, 0, NULL },
	{ "set backend web 127.0.0.1:80 drain", CTL_SET_BACKEND, "web", "127.0.0.1:80",
	  "drain", 0, NULL },
	{ "set backend web [::1]:80 maint", CTL_SET_BACKEND, "web", "[::1]:80", "maint", 0, NULL },
	{ "set backend web b:80 ready",	CTL_SET_BACKEND, "web", "b:80", "ready", 0, NULL },
	{ "set weight web 127.0.0.1:80 1", CTL_SET_WEIGHT, "web", "127.0.0.1:80", NULL, 1, NULL },
	{ "set weight web 127.0.0.1:80 256", CTL_SET_WEIGHT, "web", "127.0.0.1:80", NULL, 256, NULL },
	{ "set weight w a:1 007",	CTL_SET_WEIGHT, "w", "a:1", NULL, 7, NULL },

	{ "",				-1, NULL, NULL, NULL, 0, "empty command" },
	{ " \t \r",			-1, NULL, NULL, NULL, 0, "empty command" },
	{ "HELP",			-1, NULL, NULL, NULL, 0, "unknown command \"HELP\" (try help)" },
	{ "stats",			-1, NULL, NULL, NULL, 0, "unknown command \"stats\"" },
	{ "help me",			-1, NULL, NULL, NULL, 0, "help: takes no argument" },
	{ "reload now",			-1, NULL, NULL, NULL, 0, "reload: takes no argument" },
	{ "show",			-1, NULL, NULL, NULL, 0, "show: expected info, stats" },
	{ "show me",			-1, NULL, NULL, NULL, 0, "show: expected info, stats" },
	{ "show stats xml",		-1, NULL, NULL, NULL, 0, "show stats: unexpected \"xml\"" },
	{ "show stats json more",	-1, NULL, NULL, NULL, 0, "show stats: unexpected \"json\"" },
	{ "show info now",		-1, NULL, NULL, NULL, 0, "show info: unexpected \"now\"" },
	{ "show workers all",		-1, NULL, NULL, NULL, 0, "show workers: unexpected \"all\"" },
	{ "set",			-1, NULL, NULL, NULL, 0, "set: expected backend or weight" },
	{ "set server a b drain",	-1, NULL, NULL, NULL, 0, "set: expected backend or weight" },
	{ "set backend web 127.0.0.1:80", -1, NULL, NULL, NULL, 0,
	  "usage: set backend LISTENER ADDR ready|drain|maint" },
	{ "set backend web a:1 drain now", -1, NULL, NULL, NULL, 0, "usage: set backend" },
	{ "set backend web a:1 up",	-1, NULL, NULL, NULL, 0,
	  "set backend: state \"up\": expected ready, drain or maint" },
	{ "set weight web a:1",		-1, NULL, NULL, NULL, 0, "usage: set weight LISTENER ADDR N" },
	{ "set weight web a:1 257",	-1, NULL, NULL, NULL, 0,
	  "set weight: \"257\": expected a number from 1 to 256" },
	{ "set weight web a:1 0",	-1, NULL, NULL, NULL, 0, "expected a number from 1 to 256" },
	{ "set weight web a:1 000",	-1, NULL, NULL, NULL, 0, "expected a number from 1 to 256" },
	{ "set weight web a:1 -1",	-1, NULL, NULL, NULL, 0, "expected a number from 1 to 256" },
	{ "set weight web a:1 1x",	-1, NULL, NULL, NULL, 0, "expected a number" },
	{ "set weight web a:1 99999999999999999999", -1, NULL, NULL, NULL, 0,
	  "expected a number" },
	{ "show\x01stats",		-1, NULL, NULL, NULL, 0, "byte 0x01 at column 5" },
	{ "help\n",			-1, NULL, NULL, NULL, 0, "byte 0x0a at column 5" },
	{ "show info\xc3\xa9",		-1, NULL, NULL, NULL, 0, "byte 0xc3 at column 10" },
	{ "a b c d e f g h i",		-1, NULL, NULL, NULL, 0, "too many words" },
};

static void
test_cases(void)
{
	char line[CTL_LINE_MAX + 1], err[256] = "";
	struct ctl_cmd cmd;
	size_t i, len;
	int rc;

	for (i = 0; i < NELEM(cases); i++) {
		const char *l = cases[i].line;

		len = strlen(l);
		memcpy(line, l, len);
		line[len] = 'X';	/* the parser terminates it */
		err[0] = '\0';
		rc = ctlcmd_parse(line, len, &cmd, err, sizeof(err));
		if (cases[i].op == -1) {
			ok(rc == -1 && strstr(err, cases[i].err) != NULL,
			    "\"%s\": error containing \"%s\" (got %d, \"%s\")", l,
			    cases[i].err, rc, err);
			ok(strchr(err, '\n') == NULL, "  one line");
			continue;
		}
		if (!ok(rc == 0, "\"%s\" parses", l)) {
			diag("error: %s", err);
			continue;
		}
		is_int(cmd.op, cases[i].op, "  op");
		is_str(cmd.listener, cases[i].listener, "  listener");
		is_str(cmd.addr, cases[i].addr, "  addr");
		is_str(cmd.state, cases[i].state, "  state");
		is_int(cmd.weight, cases[i].weight, "  weight");
		is_int(cmd.count, 0, "  no count");
	}
}

/* show clients [LISTENER] [N]: count -1 is an error, err a part of its message. */
static const struct {
	const char	*line;
	const char	*listener;
	int		 count;
	const char	*err;
} clients_cases[] = {
	{ "show clients",		NULL, CTL_CLIENTS_DEFAULT, NULL },
	{ "show clients\r",		NULL, CTL_CLIENTS_DEFAULT, NULL },
	{ "show clients web",		"web", CTL_CLIENTS_DEFAULT, NULL },
	{ "show clients 5",		NULL, 5, NULL },
	{ "show clients 1",		NULL, 1, NULL },
	{ "show clients 1000",		NULL, 1000, NULL },
	{ "show clients 0007",		NULL, 7, NULL },
	{ "show\tclients  web  50 ",	"web", 50, NULL },
	{ "show clients 80 3",		"80", 3, NULL },	/* a listener named 80 */
	{ "show clients web-1.a_b 1000", "web-1.a_b", 1000, NULL },
	{ "show clients -1",		"-1", CTL_CLIENTS_DEFAULT, NULL },	/* a name */
	{ "show clients 1x",		"1x", CTL_CLIENTS_DEFAULT, NULL },	/* a name */

	{ "show clients 0",		NULL, -1, "show clients: \"0\": expected a number from 1 to 1000" },
	{ "show clients 000",		NULL, -1, "expected a number from 1 to 1000" },
	{ "show clients 1001",		NULL, -1, "show clients: \"1001\": expected a number from 1 to 1000" },
	{ "show clients 99999999999999999999", NULL, -1, "expected a number from 1 to 1000" },
	{ "show clients web 0",		NULL, -1, "show clients: \"0\": expected a number" },
	{ "show clients web 1001",	NULL, -1, "expected a number from 1 to 1000" },
	{ "show clients web x",		NULL, -1, "show clients: \"x\": expected a number" },
	{ "show clients web -5",	NULL, -1, "show clients: \"-5\": expected a number" },
	{ "show clients web 5 more",	NULL, -1, "usage: show clients [LISTENER] [N]" },
	{ "show clients a b c d e",	NULL, -1, "usage: show clients [LISTENER] [N]" },
	{ "show client",		NULL, -1, "show: expected info, stats, stats json, backends, "
	  "workers or clients" },
	{ "show clients\x7f",		NULL, -1, "byte 0x7f at column 13" },
};

static void
test_clients(void)
{
	char line[CTL_LINE_MAX + 1], err[256] = "";
	struct ctl_cmd cmd;
	size_t i, len;
	int rc;

	for (i = 0; i < NELEM(clients_cases); i++) {
		const char *l = clients_cases[i].line;

		len = strlen(l);
		memcpy(line, l, len);
		line[len] = 'X';
		err[0] = '\0';
		rc = ctlcmd_parse(line, len, &cmd, err, sizeof(err));
		if (clients_cases[i].count == -1) {
			ok(rc == -1 && strstr(err, clients_cases[i].err) != NULL &&
			    strchr(err, '\n') == NULL,
			    "\"%s\": one line containing \"%s\" (got %d, \"%s\")", l,
			    clients_cases[i].err, rc, err);
			continue;
		}
		if (!ok(rc == 0, "\"%s\" parses", l)) {
			diag("error: %s", err);
			continue;
		}
		ok(cmd.op == CTL_SHOW_CLIENTS && cmd.addr == NULL && cmd.state == NULL &&
		    cmd.weight == 0, "  show clients, no other argument");
		is_str(cmd.listener, clients_cases[i].listener, "  listener");
		is_int(cmd.count, clients_cases[i].count, "  count");
	}
	ok(CTL_CLIENTS_DEFAULT >= 1 && CTL_CLIENTS_DEFAULT <= CTL_CLIENTS_MAX,
	    "the default count is one N may be");
}

/* A NUL inside the line is a byte like another, not its end. */
static void
test_nul(void)
{
	char line[] = "help\0 extra", err[256] = "";
	struct ctl_cmd cmd;

	ok(ctlcmd_parse(line, sizeof(line) - 1, &cmd, err, sizeof(err)) == -1 &&
	    strstr(err, "byte 0x00 at column 5") != NULL, "a NUL is refused (%s)", err);
}

/* A long unknown word is cut in the message, which stays short. */
static void
test_long_word(void)
{
	char line[CTL_LINE_MAX + 1], err[256] = "";
	struct ctl_cmd cmd;

	memset(line, 'x', CTL_LINE_MAX);
	ok(ctlcmd_parse(line, CTL_LINE_MAX, &cmd, err, sizeof(err)) == -1 &&
	    strlen(err) < 120 && strstr(err, "unknown command \"xxxx") != NULL,
	    "a 1024-byte word: a short message (%zu bytes)", strlen(err));
}

static void
test_help(void)
{
	static const char *const cmds[] = {
		"help", "show info", "show stats", "show stats json", "show backends",
		"show workers", "show clients [LISTENER] [N]", "set backend LISTENER ADDR ready|drain|maint",
		"set weight LISTENER ADDR N", "reload",
	};
	size_t i;

	for (i = 0; i < NELEM(cmds); i++)
		ok(strstr(ctlcmd_help, cmds[i]) != NULL, "help names \"%s\"", cmds[i]);
	ok(ctlcmd_help[strlen(ctlcmd_help) - 1] == '\n', "help ends with a newline");
}

int
main(void)
{
	test_cases();
	test_clients();
	test_nul();
	test_long_word();
	test_help();
	return done_testing();
}
