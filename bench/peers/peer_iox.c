/*
 * The iceoryx peer (Eclipse iceoryx 2.0, C binding): zero-copy shared
 * memory with a central broker, RouDi, which this peer starts for the run
 * and stops after it. Each side publishes on one service and subscribes to
 * the other's; messages are copied into a loaned chunk and out of a taken
 * one, as shmbus_publish and the benchmark's handlers copy. Back-pressure:
 * the publisher waits for a full subscriber queue (WAIT_FOR_CONSUMER /
 * BLOCK_PRODUCER). Blocking receives wait on a WaitSet.
 * Compiled only with SHMBUS_BENCH_HAVE_IOX.
 */
#define _GNU_SOURCE
#include "peer.h"

#ifdef SHMBUS_BENCH_HAVE_IOX
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iceoryx_binding_c/chunk.h>
#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/types.h>
#include <iceoryx_binding_c/wait_set.h>

#define IOX_QUEUE 256 /* the largest subscriber queue iceoryx allows */
#define ROUDI_READY_MS 10000

static pid_t roudi = -1;
static char roudi_log[128];

struct iox_end {
	iox_pub_storage_t pst;
	iox_sub_storage_t sst;
	iox_ws_storage_t wst;
	iox_pub_t pub;
	iox_sub_t sub;
	iox_ws_t ws;
};

/* The runtime leaves its socket and lock file in /tmp under this name, so
 * the parent must be able to name them to remove them. */
static void runtime_name(char *buf, size_t len, pid_t parent, int idx)
{
	snprintf(buf, len, "shmbus-bench-%d-%d", (int)parent, idx);
}

static bool log_says_ready(void)
{
	char buf[8192];
	int fd = open(roudi_log, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return strstr(buf, "RouDi is ready") != NULL;
}

/* The C binding's package does not bring the broker with it. */
static const char *iox_unavailable(void)
{
	const char *path = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/bin:/bin");
	for (char *save, *d = strtok_r(buf, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		char exe[4200];
		snprintf(exe, sizeof(exe), "%s/iox-roudi", d);
		if (access(exe, X_OK) == 0)
			return NULL;
	}
	return "iox-roudi not found in PATH (apt-get install iceoryx)";
}

static int iox_prepare(struct run *r)
{
	snprintf(roudi_log, sizeof(roudi_log), "/tmp/shmbus-bench.%d.roudi.log",
		 (int)getpid());
	fflush(stdout);
	fflush(stderr);
	roudi = fork();
	if (roudi < 0)
		return child_fail(r, 0, "fork: %s", strerror(errno));
	if (roudi == 0) {
		int fd = open(roudi_log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		/* no process monitoring: on two busy cores a client's heartbeat
		 * thread can starve, and RouDi would then tear down the ports of
		 * a live process; ours deregister at exit and RouDi lives only
		 * for this run */
		execlp("iox-roudi", "iox-roudi", "-l", "info", "-m", "off",
		       (char *)NULL);
		_exit(127);
	}
	for (int ms = 0; ms < ROUDI_READY_MS; ms += 10) {
		if (log_says_ready())
			return 0;
		int st;
		if (waitpid(roudi, &st, WNOHANG) == roudi) {
			roudi = -1;
			return child_fail(r, 0,
					  "iox-roudi exited before it was "
					  "ready (another RouDi running? not "
					  "installed?); see %s",
					  roudi_log);
		}
		usleep(10000);
	}
	return child_fail(r, 0, "iox-roudi not ready after %d ms; see %s",
			  ROUDI_READY_MS, roudi_log);
}

static void iox_finish(struct run *r)
{
	(void)r;
	if (roudi > 0) {
		kill(roudi, SIGTERM); /* RouDi removes its shared memory */
		waitpid(roudi, NULL, 0);
	}
	roudi = -1;
	unlink(roudi_log);
	for (int i = 0; i < 2; i++) {
		char name[64], path[128];
		runtime_name(name, sizeof(name), getpid(), i);
		snprintf(path, sizeof(path), "/tmp/%s", name);
		unlink(path);
		snprintf(path, sizeof(path), "/tmp/%s.lock", name);
		unlink(path);
	}
}

static int iox_open_end(struct run *r, int idx, void **h)
{
	char name[64];
	runtime_name(name, sizeof(name), getppid(), idx);
	iox_set_loglevel(Iceoryx_LogLevel_Warn); /* not its debug chatter */
	iox_runtime_init(name);
	struct iox_end *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return child_fail(r, idx, "out of memory");
	/* iceoryx ids are at most 100 characters; ours are short */
	const char *mine = idx == 0 ? "ping" : "pong";
	const char *theirs = idx == 0 ? "pong" : "ping";
	iox_pub_options_t po;
	iox_pub_options_init(&po);
	po.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	e->pub = iox_pub_init(&e->pst, "shmbus-bench", r->chan, mine, &po);
	iox_sub_options_t so;
	iox_sub_options_init(&so);
	so.queueCapacity = IOX_QUEUE;
	so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	e->sub = iox_sub_init(&e->sst, "shmbus-bench", r->chan, theirs, &so);
	/* only blocking runs wait on a WaitSet: an attached one makes every
	 * publish signal it */
	if (r->wait != SHMBUS_WAIT_SPIN) {
		e->ws = iox_ws_init(&e->wst);
		if (iox_ws_attach_subscriber_state(e->ws, e->sub,
						   SubscriberState_HAS_DATA, 0,
						   NULL) != WaitSetResult_SUCCESS)
			return child_fail(r, idx,
					  "iox_ws_attach_subscriber_state");
	}
	/* a message published before the peer subscribed is dropped, not
	 * queued: wait for both connections (discovery runs in RouDi) */
	while (!iox_pub_has_subscribers(e->pub) ||
	       iox_sub_get_subscription_state(e->sub) !=
		       SubscribeState_SUBSCRIBED)
		usleep(1000);
	*h = e;
	return 0;
}

static int iox_send(void *h, const void *buf, size_t len, bool nonblock)
{
	struct iox_end *e = h;
	void *chunk;
	/* the C binding shows no payload size: carry it in a user header */
	enum iox_AllocationResult rc =
		iox_pub_loan_aligned_chunk_with_user_header(
			e->pub, &chunk, (uint32_t)len, 8, sizeof(uint64_t), 8);
	if (rc != AllocationResult_SUCCESS)
		return nonblock && rc == AllocationResult_RUNNING_OUT_OF_CHUNKS
			       ? PEER_AGAIN
			       : -(int)rc - 1;
	memcpy(chunk, buf, len);
	uint64_t n = len;
	memcpy(iox_chunk_header_to_user_header(
		       iox_chunk_header_from_user_payload(chunk)),
	       &n, sizeof(n));
	iox_pub_publish_chunk(e->pub, chunk); /* waits on a full queue */
	return 0;
}

static long iox_recv(void *h, void *buf, size_t cap, bool nonblock)
{
	struct iox_end *e = h;
	const void *chunk;
	for (;;) {
		enum iox_ChunkReceiveResult rc =
			iox_sub_take_chunk(e->sub, &chunk);
		if (rc == ChunkReceiveResult_SUCCESS)
			break;
		if (rc != ChunkReceiveResult_NO_CHUNK_AVAILABLE)
			return -1000 - (long)rc;
		if (nonblock)
			return -PEER_AGAIN;
		iox_notification_info_t info[1];
		uint64_t missed;
		iox_ws_wait(e->ws, info, 1, &missed);
	}
	uint64_t len;
	memcpy(&len,
	       iox_chunk_header_to_user_header_const(
		       iox_chunk_header_from_user_payload_const(chunk)),
	       sizeof(len));
	if (len > cap)
		len = cap;
	memcpy(buf, chunk, len);
	iox_sub_release_chunk(e->sub, chunk);
	return (long)len;
}

static void iox_close_end(void *h)
{
	struct iox_end *e = h;
	if (e->ws)
		iox_ws_deinit(e->ws);
	iox_sub_deinit(e->sub);
	iox_pub_deinit(e->pub);
	free(e);
	/* no iox_runtime_shutdown(): the runtime's destructor deregisters at
	 * exit(); calling both raced RouDi's termination handshake and could
	 * hang a process */
}

static const char *iox_err(int code)
{
	static char buf[64];
	if (code <= -1000)
		snprintf(buf, sizeof(buf), "iox_sub_take_chunk result %d",
			 -code - 1000);
	else
		snprintf(buf, sizeof(buf), "iox_pub_loan_chunk result %d",
			 -code - 1);
	return buf;
}

const struct transport transport_iox = {
	.pingpong_name = "iox-pingpong",
	.throughput_name = "iox-throughput",
	.note = "iceoryx 2.0 pub/sub (RouDi started for the run)",
	.unavailable = iox_unavailable,
	.prepare = iox_prepare,
	.open = iox_open_end,
	.send = iox_send,
	.recv = iox_recv,
	.close = iox_close_end,
	.finish = iox_finish,
	.errstr = iox_err,
};
#else
const struct transport transport_iox = {
	.pingpong_name = "iox-pingpong",
	.throughput_name = "iox-throughput",
	.skip = "built without iceoryx (apt-get install iceoryx "
		"libiceoryx-binding-c-dev, then reconfigure)",
};
#endif
