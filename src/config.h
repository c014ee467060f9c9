/*
 * config.h: the configuration, built from an INI file and the command line.
 *
 * A struct config is immutable once built: the master builds a new one on
 * reload beside the old one and swaps only after it validated completely;
 * workers inherit theirs at fork.  One key table (config_keys()) drives the
 * parsing, the defaults, the bounds and the documentation check.
 */
#ifndef PREFORKD_CONFIG_H
#define PREFORKD_CONFIG_H

#include <sys/types.h>
#include <stddef.h>

#include "cidr.h"
#include "net.h"

#define CONFIG_DEFAULT_FILE	"/etc/preforkd/preforkd.conf"

enum listen_mode {
	MODE_ECHO,
	MODE_PROXY
};

enum balance {
	BAL_ROUNDROBIN,
	BAL_LEASTCONN,
	BAL_SOURCE,
	BAL_RANDOM
};

/* Who calls accept(): see master.c. */
enum dispatch {
	DISPATCH_NOTIFY,	/* workers, when the master says so */
	DISPATCH_REUSEPORT,	/* workers, each on its own SO_REUSEPORT socket */
	DISPATCH_HANDOFF	/* the master, passing the fd to a worker */
};

enum send_proxy {
	SEND_PROXY_OFF,
	SEND_PROXY_V1,
	SEND_PROXY_V2
};

/* accept_proxy_from: what a sender outside it gets. */
enum untrusted_proxy {
	UNTRUSTED_REFUSE,	/* refused at accept */
	UNTRUSTED_DIRECT	/* served as a direct client: no header read */
};

enum splice_mode {
	SPLICE_AUTO,		/* once a direction reads a full buffer_size */
	SPLICE_ON,
	SPLICE_OFF
};

struct backend_conf {
	char		*spec;		/* owned; "host:port" as written */
	struct addr	 addr;		/* resolved when the config was built */
	unsigned	 weight;	/* 1..256 */
	int		 backup;	/* used only when no other backend is up */
	int		 line;		/* 0 for -b */
};

struct listener_conf {
	char		*name;		/* owned; section name, or "cli-N" for -l */
	char		*listen;	/* owned; the address as written */
	struct addr	 addr;		/* resolved when the config was built */
	int		 mode;		/* enum listen_mode */
	unsigned	 backlog;
	unsigned	 idle_ms;	/* 0 = off */
	size_t		 buffer_size;	/* bytes held per direction at most */
	int		 line;		/* line of the section header; 0 for -l */
	int		 listen_line;	/* line of the listen key; 0 for -l */
	/* mode = proxy */
	struct backend_conf *backends;	/* owned, nbackends of them */
	size_t		 nbackends;
	unsigned	 backend_keys;	/* backend lines seen, valid or not */
	int		 balance;	/* enum balance */
	unsigned	 connect_ms;
	unsigned	 retries;	/* further backends tried after a failed connect */
	unsigned	 halfclose_ms;	/* one direction open after the other closed; 0 = off */
	unsigned	 max_fails;	/* passive marking: 0 = off */
	unsigned	 fail_ms;
	unsigned	 check_interval_ms; /* active checks: 0 = off */
	unsigned	 check_timeout_ms;
	unsigned	 rise, fall;
	char		*check_send;	/* owned, escapes decoded; NULL: none */
	size_t		 check_send_len;
	char		*check_expect;	/* owned, escapes decoded; NULL: none */
	size_t		 check_expect_len;
	int		 send_proxy;	/* enum send_proxy */
	int		 accept_proxy;	/* expect a PROXY header first */
	unsigned	 proxy_timeout_ms; /* to read that header */
	struct addr	*source;	/* owned, nsource of them, port 0; NULL: none */
	size_t		 nsource;	/* CONFIG_MAX_SOURCES at most */
	int		 source_line;	/* line of the source key; 0: none */
	int		 splice;	/* enum splice_mode */
	int		 tcp_nodelay;	/* TCP_NODELAY on client and backend sockets */
	/* access control (acl.c, clients.c) */
	struct cidr_set	 allow;		/* built; sources admitted (allow_line != 0) */
	struct cidr_set	 deny;		/* built; sources refused */
	struct cidr_set	 proxy_from;	/* built; accept_proxy_from (proxy_from_line != 0) */
	int		 allow_line;	/* first allow key's line; 0: no allow rule */
	int		 deny_line;
	int		 proxy_from_line;
	int		 untrusted_line; /* untrusted_proxy key's line; 0: none */
	int		 untrusted_proxy; /* enum untrusted_proxy */
	unsigned	 max_conn;	/* max_connections across all workers; 0 = off */
	unsigned	 client_max_conn; /* max_conn_per_client; 0 = off */
	unsigned	 client_rate;	/* conn_rate_per_client: connections ... */
	unsigned	 client_rate_ms; /* ... per this window (1000 or 60000); 0 = off */
	unsigned	 client_prefix6; /* client_ipv6_prefix: 1..64 */
	unsigned	 client_table_size; /* entries in the per-client table */
	int		 client_line;	/* first per-client key's line; 0: none */
};

struct config {
	char		*file;		/* owned; NULL when built from flags alone */
	int		 workers;	/* resolved: "auto" is the CPU count */
	unsigned	 max_connections; /* per worker */
	int		 log_level;	/* enum log_level */
	char		*log_target;	/* owned; "stderr", "syslog" or a path */
	int		 log_format;	/* enum log_format */
	unsigned	 shutdown_ms;	/* graceful stop deadline */
	unsigned	 drain_ms;	/* old generation's deadline on reload */
	unsigned	 max_draining;	/* draining generations kept at most */
	int		 dispatch;	/* enum dispatch */
	char		*user;		/* owned; NULL: stay who we are */
	char		*group;		/* owned; NULL: the user's primary group */
	uid_t		 uid;		/* resolved from user */
	gid_t		 gid;		/* resolved from group, or user's group */
	char		*pidfile;	/* owned; NULL: none */
	char		*control;	/* owned; the control socket's path
					   ("auto" resolved); NULL: off */
	char		*metrics;	/* owned; the address as written; NULL: off */
	struct addr	 metrics_addr;	/* resolved when the config was built */
	struct listener_conf *listeners; /* owned, nlisteners of them */
	size_t		 nlisteners;
};

/* Command-line settings; they override the file and survive reloads. */
struct config_overrides {
	int		 workers;	/* 0 = unset, -1 = "auto" */
	int		 log_level;	/* -1 = unset */
	const char	*const *listen;	/* listeners added with -l */
	size_t		 nlisten;
	int		 mode;		/* -m for the -l listeners; -1 = unset */
	const char	*const *backends; /* -b for the -l listeners */
	size_t		 nbackends;
	const char	*pidfile;	/* -p; NULL = unset */
	int		 daemonize;	/* -d: log_target stderr means syslog */
};

/*
 * Errors found while building a config: "FILE:LINE: key: message" for a
 * problem on a line of the file, "FILE: message" or "-l ADDR: message"
 * (and the like) for others.
 */
struct config_errors {
	char		**msg;		/* owned, n of them */
	size_t		  n;
	int		 *line;		/* owned, n of them: the file's line that
					   msg[i] begins with, or -1 for none */
};

/*
 * Build a config from file (or from the overrides alone when file is
 * NULL).  Returns the config, or NULL with every problem appended to errs
 * (and nothing else changed anywhere).
 */
struct config *config_load(const char *file, const struct config_overrides *ov,
	    struct config_errors *errs);
/*
 * As config_load(), from text in memory; name is used in the messages.
 */
struct config *config_parse_string(const char *name, const char *text,
	    const struct config_overrides *ov, struct config_errors *errs);
void	config_free(struct config *c);
void	config_errors_fini(struct config_errors *errs);

/* Find a listener by name; NULL when absent. */
const struct listener_conf *config_listener(const struct config *c,
	    const char *name);

/*
 * The value parsers that the command line shares with the file; they live
 * in confkey.c beside the others.
 *
 * "250ms", "30s", "5m", "1h", or a bare number of seconds, into
 * milliseconds.  0 or -1 (bad syntax or overflow past UINT_MAX ms).
 */
int	config_parse_duration(const char *s, unsigned *ms);
/* "4096", "16k", "1m" (powers of 1024) into bytes.  0 or -1. */
int	config_parse_size(const char *s, size_t *bytes);
/* "auto" (returns the CPU count) or 1..CONFIG_MAX_WORKERS.  -1 if bad. */
int	config_parse_workers(const char *s);

#define CONFIG_MAX_WORKERS	256
#define CONFIG_MAX_SOURCES	256	/* source addresses per listener */
#define CONFIG_CONTROL_MAX	108	/* sizeof(sun_path): the path and its NUL */

/* One entry of the key table, for the documentation check and --help. */
struct config_key {
	const char	*section;	/* "daemon" or "listener" */
	const char	*name;
	const char	*type;		/* "integer", "duration", "size", ... */
	const char	*def;		/* default as written in the file */
	const char	*doc;		/* one line */
};

/* The key table; *n gets the number of entries. */
const struct config_key *config_keys(size_t *n);

#endif
