/*
 * main.c: the command line, usage and start-up.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "master.h"

#define PREFORKD_VERSION	"0.1.0"

static const struct option longopts[] = {
	{ "config",	required_argument,	NULL, 'c' },
	{ "test",	no_argument,		NULL, 't' },
	{ "listen",	required_argument,	NULL, 'l' },
	{ "workers",	required_argument,	NULL, 'w' },
	{ "log-level",	required_argument,	NULL, 'L' },
	{ "version",	no_argument,		NULL, 'V' },
	{ "help",	no_argument,		NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: preforkd [-tVh] [-c file] [-l addr]... [-w n|auto] [-L level]\n"
	    "  -c, --config FILE      configuration file (default " CONFIG_DEFAULT_FILE ";\n"
	    "                         not read when -l is given without -c)\n"
	    "  -t, --test             check the configuration and exit (0 valid, 1 not)\n"
	    "  -l, --listen ADDR      add an echo listener: host:port, [v6addr]:port or :port\n"
	    "                         (repeatable)\n"
	    "  -w, --workers N|auto   worker processes, overriding the file\n"
	    "  -L, --log-level LEVEL  debug, info, notice, warning or error, overriding the file\n"
	    "  -V, --version          print the version and exit\n"
	    "  -h, --help             print this help and exit\n"
	    "signals: HUP reload, TERM/INT graceful stop, QUIT immediate stop,\n"
	    "         USR1 reopen log file, TTIN/TTOU one worker more/fewer\n");
}

static void
bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "preforkd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	usage(stderr);
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct config_overrides ov = { .workers = 0, .log_level = -1 };
	struct config_errors errs = { NULL, 0 };
	const char **listen = NULL;
	const char *file = NULL;
	struct config *cfg;
	int ch, test = 0, rc;

	if ((listen = calloc(argc, sizeof(*listen))) == NULL)
		return 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:tl:w:L:Vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'l':
			listen[ov.nlisten++] = optarg;
			break;
		case 'w':
			if (strcmp(optarg, "auto") == 0)
				ov.workers = -1;
			else if ((ov.workers = config_parse_workers(optarg)) == -1)
				bad_usage("-w %s: expected auto or 1-256", optarg);
			break;
		case 'L':
			if ((ov.log_level = log_level_parse(optarg)) == -1)
				bad_usage("-L %s: expected debug, info, notice, warning or error",
				    optarg);
			break;
		case 'V':
			printf("preforkd " PREFORKD_VERSION "\n");
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			bad_usage("%s: missing argument", argv[optind - 1]);
			break;
		default:
			bad_usage("%s: unknown option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		bad_usage("%s: unexpected argument", argv[optind]);
	ov.listen = listen;
	if (file == NULL && ov.nlisten == 0)
		file = CONFIG_DEFAULT_FILE;

	cfg = config_load(file, &ov, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msg[i]);
	config_errors_fini(&errs);
	if (test) {
		if (cfg != NULL)
			printf("%s: configuration ok\n", file != NULL ? file : "(command line)");
		config_free(cfg);
		free(listen);
		return cfg != NULL ? 0 : 1;
	}
	if (cfg == NULL) {
		free(listen);
		return 1;
	}
	rc = master_run(cfg, file, &ov);
	free(listen);
	return rc;
}
