/*
 * main.c: the command line, usage and start-up: parse the flags, then
 * signal a running master (-s), check the configuration (-t) or detach
 * and hand the configuration to the master (master_run).  It prints the
 * configuration's errors but builds nothing itself (config.c does) and
 * keeps no state once the master runs.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "master.h"
#include "version.h"

static const struct option longopts[] = {
	{ "config",	required_argument,	NULL, 'c' },
	{ "test",	no_argument,		NULL, 't' },
	{ "listen",	required_argument,	NULL, 'l' },
	{ "mode",	required_argument,	NULL, 'm' },
	{ "backend",	required_argument,	NULL, 'b' },
	{ "workers",	required_argument,	NULL, 'w' },
	{ "log-level",	required_argument,	NULL, 'L' },
	{ "daemonize",	no_argument,		NULL, 'd' },
	{ "pidfile",	required_argument,	NULL, 'p' },
	{ "signal",	required_argument,	NULL, 's' },
	{ "version",	no_argument,		NULL, 'V' },
	{ "help",	no_argument,		NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: preforkd [-dtVh] [-c file] [-l addr]... [-m echo|proxy] [-b addr]...\n"
	    "                [-w n|auto] [-L level] [-p pidfile] [-s reload|stop|quit|reopen]\n"
	    "  -c, --config FILE      configuration file (default " CONFIG_DEFAULT_FILE ";\n"
	    "                         not read when -l is given without -c)\n"
	    "  -t, --test             check the configuration and exit (0 valid, 1 not)\n"
	    "  -l, --listen ADDR      add a listener: host:port, [v6addr]:port or :port\n"
	    "                         (repeatable)\n"
	    "  -m, --mode echo|proxy  mode of the -l listeners (default echo; proxy with -b)\n"
	    "  -b, --backend ADDR     a backend of the -l listeners, \"host:port [weight=N]\n"
	    "                         [backup]\" (repeatable)\n"
	    "  -w, --workers N|auto   worker processes, overriding the file\n"
	    "  -L, --log-level LEVEL  debug, info, notice, warning or error, overriding the file\n"
	    "  -d, --daemonize        detach from the terminal (log to syslog unless\n"
	    "                         log_target names a file)\n"
	    "  -p, --pidfile FILE     write the master's pid to FILE (overrides pidfile)\n"
	    "  -s, --signal SIGNAL    send reload, stop, quit or reopen to the running\n"
	    "                         master that holds the pid file's lock, then exit\n"
	    "  -V, --version          print the version and exit\n"
	    "  -h, --help             print this help and exit\n"
	    "signals: HUP reload, TERM/INT graceful stop, QUIT immediate stop,\n"
	    "         USR1 reopen log file, TTIN/TTOU one worker more/fewer\n");
}

/*
 * The config errors on stderr: "FILE:LINE: key: message" as it is, any
 * other (a file that cannot be read, an error in -l or -b) as
 * "preforkd: ...", the two forms the manual documents.
 */
static void
config_errors_print(const struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		if (errs->line[i] >= 0)
			fprintf(stderr, "%s\n", errs->msg[i]);
		else
			fprintf(stderr, "preforkd: %s\n", errs->msg[i]);
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

/*
 * -s: signal the master that holds the pid file's lock.  A file that no
 * process locks is stale, whatever pid it names: nothing is signalled.
 */
static int
send_signal(const char *pidfile, int signo, const char *name)
{
	char err[512];

	if (pidfile == NULL) {
		fprintf(stderr, "preforkd: -s %s: no pid file (use -p or the pidfile key)\n", name);
		return 1;
	}
	if (pidfile_signal(pidfile, signo, err, sizeof(err)) <= 0) {
		fprintf(stderr, "preforkd: -s %s: %s\n", name, err);
		return 1;
	}
	return 0;
}

/* The command line, parsed. */
struct cli {
	struct config_overrides ov;	/* ov.listen and ov.backends: below */
	const char	**listen;	/* owned array; the strings are argv's */
	const char	**backends;	/* owned array; the strings are argv's */
	const char	*file;		/* -c, or the default file; NULL: -l alone */
	int		 file_given;	/* -c was given */
	const char	*signame;	/* -s, as written; NULL: not given */
	int		 signo;
	int		 test;		/* -t */
};

#define CLI_GO_ON	(-1)		/* cli_parse: start, no exit status yet */

/*
 * Parse argv into cl.  Returns CLI_GO_ON, or the exit status when there is
 * nothing more to do (-V, -h, out of memory); bad usage exits with 2.
 */
static int
cli_parse(struct cli *cl, int argc, char *argv[])
{
	struct config_overrides *ov = &cl->ov;
	int ch;

	if ((cl->listen = calloc(argc, sizeof(*cl->listen))) == NULL ||
	    (cl->backends = calloc(argc, sizeof(*cl->backends))) == NULL)
		return 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:tl:m:b:w:L:dp:s:Vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cl->file = optarg;
			cl->file_given = 1;
			break;
		case 't':
			cl->test = 1;
			break;
		case 'l':
			cl->listen[ov->nlisten++] = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "echo") == 0)
				ov->mode = MODE_ECHO;
			else if (strcmp(optarg, "proxy") == 0)
				ov->mode = MODE_PROXY;
			else
				bad_usage("-m %s: expected echo or proxy", optarg);
			break;
		case 'b':
			cl->backends[ov->nbackends++] = optarg;
			break;
		case 'w':
			if (strcmp(optarg, "auto") == 0)
				ov->workers = -1;
			else if ((ov->workers = config_parse_workers(optarg)) == -1)
				bad_usage("-w %s: expected auto or 1-256", optarg);
			break;
		case 'L':
			if ((ov->log_level = log_level_parse(optarg)) == -1)
				bad_usage("-L %s: expected debug, info, notice, warning or error",
				    optarg);
			break;
		case 'd':
			ov->daemonize = 1;
			break;
		case 'p':
			if (optarg[0] != '/')
				bad_usage("-p %s: expected an absolute path", optarg);
			ov->pidfile = optarg;
			break;
		case 's':
			if ((cl->signo = daemon_signal_parse(optarg)) == -1)
				bad_usage("-s %s: expected reload, stop, quit or reopen", optarg);
			cl->signame = optarg;
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
	ov->listen = cl->listen;
	ov->backends = cl->backends;
	if ((ov->mode != -1 || ov->nbackends > 0) && ov->nlisten == 0)
		bad_usage("%s: -m and -b apply to listeners given with -l", ov->mode != -1 ? "-m" : "-b");
	if (cl->file == NULL && ov->nlisten == 0)
		cl->file = CONFIG_DEFAULT_FILE;
	return CLI_GO_ON;
}

/* -t: say whether the configuration (cfg, NULL if bad) is valid. */
static int
test_report(const struct cli *cl, const struct config *cfg)
{
	if (cfg == NULL)
		return 1;
	printf("%s: configuration ok\n", cl->file != NULL ? cl->file : "(command line)");
	return 0;
}

/* Detach if asked, then run the master on cfg, which it takes. */
static int
run(const struct cli *cl, struct config *cfg)
{
	const char *file = cl->file;
	char *abs_file = NULL, err[256];
	int rc = 1;

	if (cl->ov.daemonize) {
		/* Detaching moves to "/": reloads must still find the file. */
		if (file != NULL && file[0] != '/' &&
		    (file = abs_file = realpath(file, NULL)) == NULL) {
			fprintf(stderr, "preforkd: %s: %s\n", cfg->file, strerror(errno));
			goto out;
		}
		if (daemon_detach(err, sizeof(err)) == -1) {
			fprintf(stderr, "preforkd: %s\n", err);
			goto out;
		}
	}
	rc = master_run(cfg, file, &cl->ov);
	cfg = NULL;		/* master_run took it */
out:
	config_free(cfg);
	free(abs_file);
	return rc;
}

/* Load the configuration, then signal, test or run as the flags say. */
static int
start(const struct cli *cl)
{
	struct config_errors errs = { NULL, 0, NULL };
	struct config *cfg;
	int rc = 1;

	if (cl->signame != NULL && cl->ov.pidfile != NULL && !cl->file_given) {
		/* -s with -p needs no configuration file. */
		return send_signal(cl->ov.pidfile, cl->signo, cl->signame);
	}
	cfg = config_load(cl->file, &cl->ov, &errs);
	config_errors_print(&errs);
	config_errors_fini(&errs);
	if (cl->signame != NULL) {
		if (cfg != NULL)
			rc = send_signal(cfg->pidfile, cl->signo, cl->signame);
	} else if (cl->test)
		rc = test_report(cl, cfg);
	else if (cfg != NULL)
		return run(cl, cfg);
	config_free(cfg);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct cli cl = { .ov = { .workers = 0, .log_level = -1, .mode = -1 } };
	int rc;

	if ((rc = cli_parse(&cl, argc, argv)) == CLI_GO_ON)
		rc = start(&cl);
	free(cl.listen);
	free(cl.backends);
	return rc;
}
