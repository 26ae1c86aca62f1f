#define _GNU_SOURCE
#include "registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#include "error.h"
#include "layout.h"

#define REGISTRY_BUCKETS 64 /* fixed: no resize thread */

struct handler_set {
	uint32_t n;
	struct {
		shmbus_handler_fn fn;
		void *ctx;
	} h[];
};

struct registry_node {
	struct cds_lfht_node node;
	struct registry_node *next_free; /* registry_free only */
	struct handler_set *set; /* RCU-protected */
	_Atomic uint32_t count;	 /* set->n, for a look without RCU */
	char channel[SHMBUS_NAME_BYTES];
};

struct registry {
	struct cds_lfht *ht;
	pthread_mutex_t update; /* serialises writers; readers take none */
};

/* --------------------------------------- urcu thread registration */

static pthread_key_t thread_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static _Thread_local int thread_registered;

static void thread_exit(void *unused)
{
	(void)unused;
	if (thread_registered) {
		urcu_memb_unregister_thread();
		thread_registered = 0;
	}
}

static void make_key(void)
{
	pthread_key_create(&thread_key, thread_exit);
}

static void thread_enter(void)
{
	if (thread_registered)
		return;
	pthread_once(&key_once, make_key);
	urcu_memb_register_thread();
	thread_registered = 1;
	/* any non-NULL value makes the destructor run at thread exit */
	pthread_setspecific(thread_key, &thread_registered);
}

void registry_read_lock(void)
{
	thread_enter();
	urcu_memb_read_lock();
}

void registry_read_unlock(void)
{
	urcu_memb_read_unlock();
}

/* ------------------------------------------- static registrations */

static shmbus_handler_reg_t *static_regs;
static pthread_mutex_t static_lock = PTHREAD_MUTEX_INITIALIZER;

void shmbus_handler_static_add(shmbus_handler_reg_t *reg)
{
	pthread_mutex_lock(&static_lock);
	reg->next = static_regs;
	static_regs = reg;
	pthread_mutex_unlock(&static_lock);
}

/* ------------------------------------------------------- the table */

static unsigned long hash_name(const char *s)
{
	unsigned long h = 1469598103934665603ul; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ul;
	return h;
}

static int match_name(struct cds_lfht_node *node, const void *key)
{
	const struct registry_node *n =
		caa_container_of(node, struct registry_node, node);
	return strcmp(n->channel, key) == 0;
}

int registry_new(struct registry **out)
{
	struct registry *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "handler registry");
	r->ht = cds_lfht_new_flavor(REGISTRY_BUCKETS, REGISTRY_BUCKETS,
				    REGISTRY_BUCKETS, 0, &urcu_memb_flavor,
				    NULL);
	if (r->ht == NULL) {
		free(r);
		return shmbus_seterr(SHMBUS_ENOMEM, "rculfhash table");
	}
	pthread_mutex_init(&r->update, NULL);
	*out = r;
	return 0;
}

void registry_free(struct registry *r)
{
	if (r == NULL)
		return;
	thread_enter();
	struct cds_lfht_iter it;
	struct registry_node *n, *dead = NULL;
	urcu_memb_read_lock();
	cds_lfht_for_each_entry(r->ht, &it, n, node) {
		cds_lfht_del(r->ht, &n->node);
		n->next_free = dead;
		dead = n;
	}
	urcu_memb_read_unlock();
	urcu_memb_synchronize_rcu(); /* no reader holds a node now */
	while (dead) {
		n = dead;
		dead = n->next_free;
		free(n->set);
		free(n);
	}
	cds_lfht_destroy(r->ht, NULL);
	pthread_mutex_destroy(&r->update);
	free(r);
}

/* Under r->update and a read-side section: find or insert. */
static struct registry_node *get_node(struct registry *r, const char *channel)
{
	unsigned long h = hash_name(channel);
	struct cds_lfht_iter it;
	cds_lfht_lookup(r->ht, h, match_name, channel, &it);
	struct cds_lfht_node *found = cds_lfht_iter_get_node(&it);
	if (found)
		return caa_container_of(found, struct registry_node, node);
	struct registry_node *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	snprintf(n->channel, sizeof(n->channel), "%s", channel);
	cds_lfht_node_init(&n->node);
	cds_lfht_add(r->ht, h, &n->node);
	return n;
}

int registry_node(struct registry *r, const char *channel,
		  struct registry_node **out)
{
	thread_enter();
	pthread_mutex_lock(&r->update);
	urcu_memb_read_lock();
	*out = get_node(r, channel);
	urcu_memb_read_unlock();
	pthread_mutex_unlock(&r->update);
	return *out ? 0 : shmbus_seterr(SHMBUS_ENOMEM, "registry node");
}

/* Replace a node's set with a copy plus (fn, ctx), or minus it. */
static int update(struct registry *r, const char *channel,
		  shmbus_handler_fn fn, void *ctx, int add)
{
	int rc = 0;
	thread_enter();
	pthread_mutex_lock(&r->update);
	urcu_memb_read_lock();
	struct registry_node *n = get_node(r, channel);
	urcu_memb_read_unlock();
	struct handler_set *old = n ? n->set : NULL, *set = NULL;
	uint32_t have = old ? old->n : 0, found = have;
	for (uint32_t i = 0; i < have; i++)
		if (old->h[i].fn == fn && old->h[i].ctx == ctx)
			found = i;
	if (n == NULL) {
		rc = shmbus_seterr(SHMBUS_ENOMEM, "registry node");
	} else if (add && found != have) {
		rc = shmbus_seterr(SHMBUS_EEXIST,
				   "this handler is already registered for "
				   "channel '%s'",
				   channel);
	} else if (!add && found == have) {
		rc = shmbus_seterr(SHMBUS_ENOENT,
				   "no such handler for channel '%s'", channel);
	} else {
		uint32_t n_new = add ? have + 1 : have - 1;
		set = malloc(sizeof(*set) + n_new * sizeof(set->h[0]));
		if (set == NULL) {
			rc = shmbus_seterr(SHMBUS_ENOMEM, "handler set");
		} else {
			uint32_t k = 0;
			for (uint32_t i = 0; i < have; i++)
				if (i != found)
					set->h[k++] = old->h[i];
			if (add) {
				set->h[k].fn = fn;
				set->h[k].ctx = ctx;
			}
			set->n = n_new;
			/* publish: pairs with rcu_dereference in dispatch */
			rcu_assign_pointer(n->set, set);
			/* relaxed: a hint for waits; dispatch reads the set */
			atomic_store_explicit(&n->count, n_new,
					      memory_order_relaxed);
		}
	}
	pthread_mutex_unlock(&r->update);
	if (rc == 0) {
		urcu_memb_synchronize_rcu(); /* no dispatcher sees old now */
		free(old);
	}
	return rc;
}

int registry_add(struct registry *r, const char *channel, shmbus_handler_fn fn,
		 void *ctx)
{
	return update(r, channel, fn, ctx, 1);
}

int registry_remove(struct registry *r, const char *channel,
		    shmbus_handler_fn fn, void *ctx)
{
	return update(r, channel, fn, ctx, 0);
}

int registry_bind_static(struct registry *r)
{
	pthread_mutex_lock(&static_lock);
	shmbus_handler_reg_t *list = static_regs;
	pthread_mutex_unlock(&static_lock);
	for (shmbus_handler_reg_t *g = list; g; g = g->next) {
		int rc = registry_add(r, g->channel, g->fn, g->ctx);
		if (rc)
			return shmbus_adderr(rc, "binding handler %s",
					     g->name ? g->name : "?");
	}
	return 0;
}

uint32_t registry_count(const struct registry_node *n)
{
	/* relaxed: pairs with nothing; update() stores it after publishing
	 * the set, and a stale count costs a wait one look */
	return atomic_load_explicit(&n->count, memory_order_relaxed);
}

void *registry_handlers(struct registry_node *n)
{
	/* inside the caller's read-side section */
	struct handler_set *set = rcu_dereference(n->set);
	return set && set->n ? set : NULL;
}

void registry_names(struct registry *r, char *buf, size_t len)
{
	struct cds_lfht_iter it;
	struct registry_node *n;
	size_t at = 0;
	buf[0] = '\0';
	thread_enter();
	urcu_memb_read_lock();
	cds_lfht_for_each_entry(r->ht, &it, n, node) {
		if (registry_count(n) == 0 || at >= len)
			continue;
		int w = snprintf(buf + at, len - at, "%s'%s'", at ? ", " : "",
				 n->channel);
		at += w > 0 ? (size_t)w : 0;
	}
	urcu_memb_read_unlock();
	if (at == 0)
		snprintf(buf, len, "none");
}

int registry_dispatch(const shmbus_record_t *rec, void *handlers)
{
	const struct handler_set *set = handlers;
	int rc = 0;
	for (uint32_t i = 0; i < set->n; i++) {
		int r = set->h[i].fn(rec, set->h[i].ctx);
		if (r < 0 && rc == 0)
			rc = r;
	}
	return rc;
}
