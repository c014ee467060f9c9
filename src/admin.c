/*
 * admin.c: the operator's settings of backends, kept by the master by
 * listener name and backend address across reloads (admin.h).  Owns the
 * table and the strings in it.
 *
 * Lookups are O(n) over the entries: n is the number of backends an
 * operator has set by hand, a handful, and each lookup follows a command
 * typed on the control socket or a reload, never a connection.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

static const char *const state_names[] = {
	[ADMIN_READY] = "ready", [ADMIN_DRAIN] = "drain", [ADMIN_MAINT] = "maint",
};

void
admin_init(struct admin *a)
{
	a->v = NULL;
	a->n = 0;
}

static void
entry_free(struct admin_entry *e)
{
	free(e->listener);
	free(e->addr);
}

void
admin_fini(struct admin *a)
{
	for (size_t i = 0; i < a->n; i++)
		entry_free(&a->v[i]);
	free(a->v);
	admin_init(a);
}

int
admin_state_parse(const char *s)
{
	for (int i = ADMIN_READY; i <= ADMIN_MAINT; i++)
		if (strcmp(s, state_names[i]) == 0)
			return i;
	return -1;
}

const char *
admin_state_name(int state)
{
	if (state < ADMIN_READY || state > ADMIN_MAINT)
		return "?";
	return state_names[state];
}

int
admin_backend(const struct listener_conf *lc, const char *addr)
{
	for (size_t i = 0; i < lc->nbackends; i++)
		if (strcmp(lc->backends[i].spec, addr) == 0)
			return (int)i;
	return -1;
}

static struct admin_entry *
entry_find(const struct admin *a, const char *listener, const char *addr)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].listener, listener) == 0 &&
		    strcmp(a->v[i].addr, addr) == 0)
			return &a->v[i];
	return NULL;
}

const struct admin_entry *
admin_find(const struct admin *a, const char *listener, const char *addr)
{
	return entry_find(a, listener, addr);
}

/* Remove v[i], keeping the order of the others. */
static void
entry_remove(struct admin *a, size_t i)
{
	entry_free(&a->v[i]);
	memmove(&a->v[i], &a->v[i + 1], (a->n - i - 1) * sizeof(a->v[0]));
	a->n--;
}

/* The entry of listener/addr, made ready with the config's weight if new. */
static struct admin_entry *
entry_get(struct admin *a, const char *listener, const char *addr)
{
	struct admin_entry *e, *v;

	if ((e = entry_find(a, listener, addr)) != NULL)
		return e;
	if ((v = realloc(a->v, (a->n + 1) * sizeof(*v))) == NULL)
		return NULL;
	a->v = v;
	e = &a->v[a->n];
	memset(e, 0, sizeof(*e));
	if ((e->listener = strdup(listener)) == NULL ||
	    (e->addr = strdup(addr)) == NULL) {
		entry_free(e);
		return NULL;
	}
	e->state = ADMIN_READY;
	a->n++;
	return e;
}

/* An entry that says nothing the config does not say goes. */
static void
entry_settle(struct admin *a, struct admin_entry *e)
{
	if (e->state == ADMIN_READY && e->weight == 0)
		entry_remove(a, (size_t)(e - a->v));
}

int
admin_set_state(struct admin *a, const char *listener, const char *addr, int state)
{
	struct admin_entry *e;

	if (state < ADMIN_READY || state > ADMIN_MAINT) {
		errno = EINVAL;
		return -1;
	}
	if ((e = entry_find(a, listener, addr)) == NULL && state == ADMIN_READY)
		return 0;
	if (e == NULL && (e = entry_get(a, listener, addr)) == NULL)
		return -1;
	e->state = state;
	entry_settle(a, e);
	return 0;
}

int
admin_set_weight(struct admin *a, const char *listener, const char *addr,
    unsigned weight)
{
	struct admin_entry *e;

	if (weight > ADMIN_WEIGHT_MAX) {
		errno = EINVAL;
		return -1;
	}
	if ((e = entry_find(a, listener, addr)) == NULL && weight == 0)
		return 0;
	if (e == NULL && (e = entry_get(a, listener, addr)) == NULL)
		return -1;
	e->weight = weight;
	entry_settle(a, e);
	return 0;
}

size_t
admin_prune(struct admin *a, const struct config *cfg,
    void (*dropped)(void *arg, const struct admin_entry *e), void *arg)
{
	const struct listener_conf *lc;
	size_t i = 0, n = 0;

	while (i < a->n) {
		lc = config_listener(cfg, a->v[i].listener);
		if (lc != NULL && admin_backend(lc, a->v[i].addr) != -1) {
			i++;
			continue;
		}
		if (dropped != NULL)
			dropped(arg, &a->v[i]);
		entry_remove(a, i);
		n++;
	}
	return n;
}
