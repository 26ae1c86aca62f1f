/*
 * Peers: other transports measured with the same pingpong and throughput
 * loops as shmbus (peer_msg.c), each behind this small interface, one file
 * per transport. A transport that the build lacks keeps its name and says
 * why it is skipped.
 */
#ifndef SHMBUS_BENCH_PEER_H
#define SHMBUS_BENCH_PEER_H

#include <stdbool.h>
#include <stddef.h>

#include "bench.h"

#define PEER_AGAIN 1 /* would block (non-blocking mode only) */

struct transport {
	const char *pingpong_name; /* "uds-pingpong" */
	const char *throughput_name;
	const char *skip; /* non-NULL: not built, and why */
	/* built, but missing something at run time: why, or NULL */
	const char *(*unavailable)(void);
	const char *note; /* how it is set up, for the report */
	/* the library moves messages on threads of its own, pinned with us:
	 * a spinner must yield the core to them, not just pause */
	bool io_threads;
	/* parent, before fork: what both children must inherit */
	int (*prepare)(struct run *r);
	/* child: its end; idx 0 is ping or the producer */
	int (*open)(struct run *r, int idx, void **h);
	/* 0, PEER_AGAIN, or a negative code for errstr */
	int (*send)(void *h, const void *buf, size_t len, bool nonblock);
	/* length received, -PEER_AGAIN, or another negative code */
	long (*recv)(void *h, void *buf, size_t cap, bool nonblock);
	void (*close)(void *h);
	/* parent, after the children are reaped */
	void (*finish)(struct run *r);
	const char *(*errstr)(int code);
};

extern const struct transport transport_uds, transport_zmq, transport_nng,
	transport_iox;

/* Why t cannot run here (not built, or missing at run time), or NULL. */
const char *peer_skip_reason(const struct transport *t);

int peer_pingpong(const struct bench_opts *o, const struct transport *t);
int peer_throughput(const struct bench_opts *o, const struct transport *t);

#endif /* SHMBUS_BENCH_PEER_H */
