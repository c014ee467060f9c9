/*
 * acl.c: who may connect to a listener (acl.h).
 *
 * The order of the checks is the order of their cost, and each refusal
 * holds nothing once it is made:
 *
 *	accept_proxy_from	the peer; a binary search (cidr.h)
 *	deny, then allow	the client; a binary search each
 *	max_connections		a compare-and-swap on the listener's counter
 *	conn_rate_per_client	the client's entry in the shared table ...
 *	max_conn_per_client	... and a compare-and-swap or two on it
 *
 * A listener with no rule and no limit costs a test of three lines and a
 * flag.  With a trusted PROXY sender the client is known only once its
 * header is read, so the rules and the per-client limits wait for
 * acl_client(); max_connections is counted at accept all the same, since
 * the connection is open from then on.
 */
#include <time.h>

#include "acl.h"
#include "net.h"

void
acl_init(struct acl *a, const struct listener_conf *conf,
    struct clients_gen *cg, size_t li, struct stats_lcount *st)
{
	a->conf = conf;
	a->cg = cg;
	a->li = li;
	a->st = st;
	a->log.next = 0;
	a->log.held = 0;
}

/* Count and log a refusal of client. */
static void
acl_refused(struct acl *a, const struct sockaddr *client, enum refuse_reason why,
    double now)
{
	char addr[NET_ADDRSTRLEN], more[LOG_HELD_MAX];
	unsigned long held;

	stats_add(&a->st->refused[why], 1);
	if (log_verbosity > LOGL_NOTICE ||
	    !log_rate_ok(&a->log, now, 1.0, &held))
		return;
	log_notice("listener %s: refused %s: %s%s", a->conf->name,
	    net_addr_str(client, addr, sizeof(addr)), refuse_name(why),
	    log_held(held, more, sizeof(more)));
}

/* The address rules for client: 0, or -1 with *why set. */
static int
acl_rules(const struct listener_conf *lc, const struct sockaddr *client,
    enum refuse_reason *why)
{
	if (lc->deny.n > 0 && cidr_set_match(&lc->deny, client)) {
		*why = REFUSE_DENY;
		return -1;
	}
	if (lc->allow_line != 0 && !cidr_set_match(&lc->allow, client)) {
		*why = REFUSE_NOT_ALLOWED;
		return -1;
	}
	return 0;
}

static uint64_t
acl_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The per-client limits for client, on what hold counts: 0, or -1. */
static int
acl_limits(struct acl *a, const struct sockaddr *client, uint32_t hold,
    enum refuse_reason *why)
{
	if (!clients_per_client(a->cg, a->li))
		return 0;
	switch (clients_client(a->cg, a->li, hold, client, acl_now_us())) {
	case CLIENTS_OK:
		return 0;
	case CLIENTS_UNTRACKED:
		stats_add(&a->st->untracked, 1);
		return 0;
	case CLIENTS_RATE:
		*why = REFUSE_CLIENT_RATE;
		return -1;
	default:
		*why = REFUSE_CLIENT_LIMIT;
		return -1;
	}
}

enum acl_step
acl_accept(struct acl *a, const struct sockaddr *peer, uint32_t *hold,
    double now)
{
	const struct listener_conf *lc = a->conf;
	enum refuse_reason why;
	int header = lc->accept_proxy;

	*hold = CLIENTS_NOHOLD;
	if (header && lc->proxy_from_line != 0 &&
	    !cidr_set_match(&lc->proxy_from, peer)) {
		if (lc->untrusted_proxy == UNTRUSTED_REFUSE) {
			acl_refused(a, peer, REFUSE_UNTRUSTED_PROXY, now);
			return ACL_REFUSED;
		}
		header = 0;	/* a direct client: its own address is the client */
	}
	if (!header && acl_rules(lc, peer, &why) == -1) {
		acl_refused(a, peer, why, now);
		return ACL_REFUSED;
	}
	if (clients_counts(a->cg, a->li) &&
	    clients_enter(a->cg, a->li, hold) != CLIENTS_OK) {
		acl_refused(a, peer, REFUSE_LISTENER_FULL, now);
		return ACL_REFUSED;
	}
	if (!header && acl_limits(a, peer, *hold, &why) == -1) {
		acl_leave(a, *hold);
		*hold = CLIENTS_NOHOLD;
		acl_refused(a, peer, why, now);
		return ACL_REFUSED;
	}
	return header ? ACL_HEADER : ACL_SERVE;
}

int
acl_client(struct acl *a, const struct sockaddr *client, uint32_t hold,
    double now)
{
	enum refuse_reason why;

	if (acl_rules(a->conf, client, &why) == -1 ||
	    acl_limits(a, client, hold, &why) == -1) {
		acl_refused(a, client, why, now);
		return -1;
	}
	return 0;
}

void
acl_leave(struct acl *a, uint32_t hold)
{
	if (hold != CLIENTS_NOHOLD)
		clients_leave(a->cg, hold);
}
