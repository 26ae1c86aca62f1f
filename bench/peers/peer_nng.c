/*
 * The nng peer: pair1 sockets over ipc://. Send and receive buffers are set
 * to 1000 messages, as libzmq's default high-water marks, so that both
 * peers queue alike. Compiled only with SHMBUS_BENCH_HAVE_NNG.
 */
#define _GNU_SOURCE
#include "peer.h"

#ifdef SHMBUS_BENCH_HAVE_NNG
#include <stdio.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#define NNG_QUEUE 1000

static char path[108];
static char url[128];

static int nng_prepare(struct run *r)
{
	snprintf(path, sizeof(path), "/tmp/shmbus-bench.%d.%s.nng",
		 (int)getpid(), r->chan);
	snprintf(url, sizeof(url), "ipc://%s", path);
	unlink(path);
	return 0;
}

static int nng_open_end(struct run *r, int idx, void **h)
{
	nng_socket s;
	int rc = nng_pair1_open(&s);
	if (rc == 0)
		rc = nng_socket_set_int(s, NNG_OPT_SENDBUF, NNG_QUEUE);
	if (rc == 0)
		rc = nng_socket_set_int(s, NNG_OPT_RECVBUF, NNG_QUEUE);
	if (rc)
		return child_fail(r, idx, "nng_pair1_open: %s",
				  nng_strerror(rc));
	/* a non-blocking dial retries in the background until the
	 * listener exists */
	rc = idx == 0 ? nng_listen(s, url, NULL, 0)
		      : nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK);
	if (rc)
		return child_fail(r, idx, "nng_%s(%s): %s",
				  idx == 0 ? "listen" : "dial", url,
				  nng_strerror(rc));
	*h = (void *)(uintptr_t)nng_socket_id(s);
	return 0;
}

static nng_socket sock_of(void *h)
{
	nng_socket s = NNG_SOCKET_INITIALIZER;
	s.id = (uint32_t)(uintptr_t)h;
	return s;
}

static int nng_send_msg(void *h, const void *buf, size_t len, bool nonblock)
{
	int rc = nng_send(sock_of(h), (void *)buf, len,
			  nonblock ? NNG_FLAG_NONBLOCK : 0);
	if (rc == 0)
		return 0;
	return rc == NNG_EAGAIN ? PEER_AGAIN : -rc;
}

static long nng_recv_msg(void *h, void *buf, size_t cap, bool nonblock)
{
	size_t n = cap;
	int rc = nng_recv(sock_of(h), buf, &n,
			  nonblock ? NNG_FLAG_NONBLOCK : 0);
	if (rc == 0)
		return (long)n;
	return rc == NNG_EAGAIN ? -PEER_AGAIN : -rc;
}

static void nng_close_end(void *h)
{
	nng_close(sock_of(h));
}

static void nng_finish(struct run *r)
{
	(void)r;
	unlink(path);
}

static const char *nng_err(int code)
{
	return nng_strerror(-code);
}

const struct transport transport_nng = {
	.pingpong_name = "nng-pingpong",
	.throughput_name = "nng-throughput",
	.note = "nng pair1 over ipc://, queues of 1000",
	.io_threads = true,
	.prepare = nng_prepare,
	.open = nng_open_end,
	.send = nng_send_msg,
	.recv = nng_recv_msg,
	.close = nng_close_end,
	.finish = nng_finish,
	.errstr = nng_err,
};
#else
const struct transport transport_nng = {
	.pingpong_name = "nng-pingpong",
	.throughput_name = "nng-throughput",
	.skip = "built without nng (apt-get install libnng-dev, then "
		"reconfigure)",
};
#endif
