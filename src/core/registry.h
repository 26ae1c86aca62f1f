/*
 * The process-local handler registry: channel name -> the handlers this
 * process runs for it (the seed event bus's registerHandler map).
 *
 * Built on liburcu's lock-free hash table (rculfhash) with the urcu-memb
 * flavour: dispatch looks handlers up without a lock, inside a read-side
 * critical section per poll, which takes the channel's handler set once
 * (every record of the poll sees the same handlers; with none, the poll
 * delivers nothing and the cursor stays); updates copy the handler set,
 * publish the new one with rcu_assign_pointer, wait for a grace period
 * (synchronize_rcu) and free the old one. The table has a fixed size and
 * nodes are never removed while the registry lives, so no call_rcu worker or
 * resize thread is ever started (and fork needs no urcu hooks).
 *
 * Threads that dispatch or update are registered with urcu on first use and
 * unregistered when they exit. A handler must not add or remove handlers
 * (a grace period cannot end inside the read-side section that runs it).
 */
#ifndef SHMBUS_REGISTRY_H
#define SHMBUS_REGISTRY_H

#include "shmbus/shmbus.h"

struct registry;
struct registry_node;

int registry_new(struct registry **out);
void registry_free(struct registry *r);
/* Bind every SHMBUS_HANDLER registration of the process. */
int registry_bind_static(struct registry *r);
int registry_add(struct registry *r, const char *channel, shmbus_handler_fn fn,
		 void *ctx);
int registry_remove(struct registry *r, const char *channel,
		    shmbus_handler_fn fn, void *ctx);
/* The channel's node, created empty if needed (stable until free). */
int registry_node(struct registry *r, const char *channel,
		  struct registry_node **out);

/* Handlers of the node's channel now (a hint outside a read section). */
uint32_t registry_count(const struct registry_node *n);
/* "'A', 'B'": the channels that have handlers, or "none" (for errors). */
void registry_names(struct registry *r, char *buf, size_t len);

/* Dispatch path: a read-side section around each poll. */
void registry_read_lock(void);
void registry_read_unlock(void);
/* Inside a read-side section: the channel's handler set as it is now,
 * valid until the section ends, or NULL if it has no handler. */
void *registry_handlers(struct registry_node *n);
/* A shmbus_handler_fn whose ctx is a registry_handlers() set: runs every
 * handler of it; returns the first failure. */
int registry_dispatch(const shmbus_record_t *rec, void *handlers);

#endif /* SHMBUS_REGISTRY_H */
