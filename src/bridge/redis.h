/* The Redis side of the bridge, both directions (redis.c, redis_in.c). */
#ifndef SHMBUS_BRIDGE_REDIS_H
#define SHMBUS_BRIDGE_REDIS_H

#include <hiredis/hiredis.h>

#include "internal.h"

/* An XADD whose reply is due: replies come back in order. */
struct rd_pending {
	uint32_t chan;
	uint64_t seq;
};

struct rd_state {
	redisContext *ctx;
	/* to-redis: the XADDs in flight, a ring of `cap` */
	struct rd_pending *fifo;
	uint32_t head, count, cap;
	/* from-redis */
	uint32_t unread_acks;	/* XACK replies to read before the next */
	bool reread[BR_MAX_CHANNELS]; /* own pending entries to read again */
	char reread_from[BR_MAX_CHANNELS][48];
	char claim_from[BR_MAX_CHANNELS][48];
	uint64_t next_claim_ns;
	char *cmd; /* to-redis: one command in RESP */
	size_t cmd_len, cmd_cap;
	const char **argv; /* scratch for commands with many ids */
	size_t *argl;
	uint32_t argmax;
};

/* Connect (and authenticate) unless connected or backing off: 0 if
 * connected. */
int rd_connect(struct shmbus_bridge *b, struct rd_state *rs);
/* The connection failed: count, log, free it, back off. */
void rd_drop(struct shmbus_bridge *b, struct rd_state *rs, const char *what);
/* Free the connection and the state (both directions). */
void rd_close(struct shmbus_bridge *b);
/* Scratch argv for n arguments. */
int rd_args(struct rd_state *rs, uint32_t n);

#endif
