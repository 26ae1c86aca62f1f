/*
 * The libzmq peer: ZMQ_PAIR sockets over ipc:// (a Unix socket underneath,
 * plus libzmq's I/O thread in each process). Default high-water marks
 * (1000 messages) give the back-pressure. Compiled only with
 * SHMBUS_BENCH_HAVE_ZMQ; otherwise the workloads say they are skipped.
 */
#define _GNU_SOURCE
#include "peer.h"

#ifdef SHMBUS_BENCH_HAVE_ZMQ
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <zmq.h>

static char path[108];
static char endpoint[128];

struct zpeer {
	void *ctx, *sock;
};

static int zmq_prepare(struct run *r)
{
	snprintf(path, sizeof(path), "/tmp/shmbus-bench.%d.%s.zmq",
		 (int)getpid(), r->chan);
	snprintf(endpoint, sizeof(endpoint), "ipc://%s", path);
	unlink(path);
	return 0;
}

static int zmq_open_end(struct run *r, int idx, void **h)
{
	struct zpeer *z = calloc(1, sizeof(*z));
	if (z == NULL)
		return child_fail(r, idx, "out of memory");
	z->ctx = zmq_ctx_new();
	z->sock = z->ctx ? zmq_socket(z->ctx, ZMQ_PAIR) : NULL;
	if (z->sock == NULL)
		return child_fail(r, idx, "zmq_socket: %s",
				  zmq_strerror(zmq_errno()));
	/* connect may come first: libzmq retries until the bind exists */
	int rc = idx == 0 ? zmq_bind(z->sock, endpoint)
			  : zmq_connect(z->sock, endpoint);
	if (rc != 0)
		return child_fail(r, idx, "zmq_%s(%s): %s",
				  idx == 0 ? "bind" : "connect", endpoint,
				  zmq_strerror(zmq_errno()));
	*h = z;
	return 0;
}

static int zmq_send_msg(void *h, const void *buf, size_t len, bool nonblock)
{
	struct zpeer *z = h;
	if (zmq_send(z->sock, buf, len, nonblock ? ZMQ_DONTWAIT : 0) >= 0)
		return 0;
	int e = zmq_errno();
	return e == EAGAIN ? PEER_AGAIN : -e;
}

static long zmq_recv_msg(void *h, void *buf, size_t cap, bool nonblock)
{
	struct zpeer *z = h;
	int n = zmq_recv(z->sock, buf, cap, nonblock ? ZMQ_DONTWAIT : 0);
	if (n >= 0)
		return n;
	int e = zmq_errno();
	return e == EAGAIN ? -PEER_AGAIN : -e;
}

static void zmq_close_end(void *h)
{
	struct zpeer *z = h;
	zmq_close(z->sock);
	zmq_ctx_term(z->ctx);
	free(z);
}

static void zmq_finish(struct run *r)
{
	(void)r;
	unlink(path);
}

static const char *zmq_err(int code)
{
	return zmq_strerror(-code);
}

const struct transport transport_zmq = {
	.pingpong_name = "zmq-pingpong",
	.throughput_name = "zmq-throughput",
	.note = "libzmq ZMQ_PAIR over ipc://",
	.io_threads = true,
	.prepare = zmq_prepare,
	.open = zmq_open_end,
	.send = zmq_send_msg,
	.recv = zmq_recv_msg,
	.close = zmq_close_end,
	.finish = zmq_finish,
	.errstr = zmq_err,
};
#else
const struct transport transport_zmq = {
	.pingpong_name = "zmq-pingpong",
	.throughput_name = "zmq-throughput",
	.skip = "built without libzmq (apt-get install libzmq3-dev, "
		"then reconfigure)",
};
#endif
