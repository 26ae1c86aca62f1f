/*
 * The Unix-socket peer: a SOCK_SEQPACKET socketpair made before fork, so
 * message boundaries are kept and no name or connect is needed. The kernel
 * copies each message twice (in and out) and wakes the receiver: the
 * classic baseline for local IPC.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"

static int sv[2] = {-1, -1};

static int uds_prepare(struct run *r)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
		return child_fail(r, 0, "socketpair: %s", strerror(errno));
	return 0;
}

static int uds_open(struct run *r, int idx, void **h)
{
	(void)r;
	close(sv[1 - idx]); /* so that a dead peer reads as EOF */
	*h = (void *)(intptr_t)sv[idx];
	return 0;
}

static int uds_send(void *h, const void *buf, size_t len, bool nonblock)
{
	ssize_t n = send((int)(intptr_t)h, buf, len,
			 nonblock ? MSG_DONTWAIT : 0);
	if (n >= 0)
		return 0;
	return errno == EAGAIN || errno == EWOULDBLOCK ? PEER_AGAIN : -errno;
}

static long uds_recv(void *h, void *buf, size_t cap, bool nonblock)
{
	ssize_t n = recv((int)(intptr_t)h, buf, cap,
			 nonblock ? MSG_DONTWAIT : 0);
	if (n > 0)
		return n;
	if (n == 0)
		return -EPIPE; /* the peer closed */
	return errno == EAGAIN || errno == EWOULDBLOCK ? -PEER_AGAIN : -errno;
}

static void uds_close(void *h)
{
	close((int)(intptr_t)h);
}

static void uds_finish(struct run *r)
{
	(void)r;
	for (int i = 0; i < 2; i++)
		if (sv[i] >= 0)
			close(sv[i]);
	sv[0] = sv[1] = -1;
}

static const char *uds_errstr(int code)
{
	return strerror(-code);
}

const struct transport transport_uds = {
	.pingpong_name = "uds-pingpong",
	.throughput_name = "uds-throughput",
	.note = "AF_UNIX SOCK_SEQPACKET socketpair",
	.prepare = uds_prepare,
	.open = uds_open,
	.send = uds_send,
	.recv = uds_recv,
	.close = uds_close,
	.finish = uds_finish,
	.errstr = uds_errstr,
};
