/*
 * bridge-redis: what the to-redis bridge costs over Redis itself.
 *
 * A redis-server of its own (loopback, a free port, no persistence, a
 * temporary directory) serves both measurements, in turn:
 *   - raw: redis-benchmark, one connection, pipelining depth -P, sending
 *     the very XADD the bridge sends (the same fields, the payload of
 *     --size bytes): what Redis and the loopback allow;
 *   - bridge: a producer process publishes --count records of --size
 *     bytes into a channel; the bridge (libshmbus_bridge, in this process)
 *     sends them with the same pipelining depth; timed from the start
 *     signal to the last acknowledgement.
 * The goal is at least 0.7 of raw. Rounds alternate (raw, bridge, raw,
 * bridge); each result line is one round, the note gives the ratio of
 * the medians.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#ifndef SHMBUS_HAVE_BRIDGE
int wl_bridge_redis(const struct bench_opts *o)
{
	report_skip(o, "bridge-redis",
		    "built without the bridge library (apt-get install "
		    "librdkafka-dev libhiredis-dev, then re-run cmake)");
	return 0;
}
#else
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <shmbus/bridge.h>
#include <sys/socket.h>

#define DEPTH 128 /* the bridge's default redis.pipeline */
#define ROUNDS 2

struct server {
	pid_t pid;
	int port;
	char dir[64];
};

/* A loopback port: bind port 0 and ask the kernel which it gave. */
static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
	if (fd < 0)
		return -1;
	if (!bind(fd, (struct sockaddr *)&a, l) &&
	    !getsockname(fd, (struct sockaddr *)&a, &l))
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* The server answers PING (it may still be starting): 5 s at most. */
static redisContext *connect_when_up(int port)
{
	redisContext *c = NULL;
	redisReply *pong = NULL;
	for (int i = 0; i < 500 && pong == NULL; i++) {
		if (c)
			redisFree(c), sb_idle_ns(10000000);
		c = redisConnect("127.0.0.1", port);
		pong = c && !c->err ? redisCommand(c, "PING") : NULL;
		if (pong && pong->type != REDIS_REPLY_STATUS)
			freeReplyObject(pong), pong = NULL;
	}
	if (pong == NULL) {
		redisFree(c);
		return NULL;
	}
	freeReplyObject(pong);
	return c;
}

static int server_start(struct server *s)
{
	snprintf(s->dir, sizeof(s->dir), "/tmp/shmbus-bench-redis.XXXXXX");
	if (mkdtemp(s->dir) == NULL || (s->port = free_port()) < 0)
		return -1;
	char port[16], log[96];
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(log, sizeof(log), "%s/redis.log", s->dir);
	/* no persistence: both measurements see the same bare server */
	const char *argv[] = {"redis-server", "--port",	   port,
			      "--bind",	      "127.0.0.1", "--dir",
			      s->dir,	      "--save",	   "",
			      "--appendonly", "no",	   "--logfile",
			      log,	      NULL};
	s->pid = fork();
	if (s->pid == 0) {
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return s->pid > 0 ? 0 : -1;
}

static void server_stop(struct server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "shmbus_bench: could not remove %s\n", s->dir);
}

/* redis-benchmark with the bridge's XADD; its requests per second. */
static double raw_xadd(const struct server *s, uint32_t size, uint64_t count)
{
	char *payload = malloc(size + 1);
	memset(payload, 'x', size);
	payload[size] = '\0';
	char *cmd;
	if (asprintf(&cmd,
		     "redis-benchmark -h 127.0.0.1 -p %d -c 1 -P %d -n %llu "
		     "-q XADD bench.raw '*' type bench.channel seq 123456 "
		     "origin 0123456789abcdef:1:123456 time "
		     "1700000000000000000 key 123456 data %s 2>&1",
		     s->port, DEPTH, (unsigned long long)count, payload) < 0) {
		free(payload);
		return 0;
	}
	free(payload);
	FILE *f = popen(cmd, "r");
	free(cmd);
	double rps = 0;
	char line[8192];
	while (f && fgets(line, sizeof(line), f)) {
		/* "...: 123456.78 requests per second, p50=..." (the last
		 * progress line is overwritten with \r) */
		char *end = strstr(line, " requests per second");
		if (end == NULL)
			continue;
		char *start = end;
		while (start > line && start[-1] != ' ')
			start--;
		rps = strtod(start, NULL);
	}
	if (f)
		pclose(f);
	return rps;
}

/* The producer process: count records of size bytes, then exit. */
static void producer(const struct bench_opts *o, const char *chan,
		     uint32_t size, uint64_t count, int go_fd)
{
	shmbus_t *bus;
	shmbus_channel_t *ch;
	shmbus_producer_t *p;
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BLOCK};
	if (shmbus_open(o->bus, NULL, &bus) ||
	    shmbus_channel_open(bus, chan, NULL, &ch) ||
	    shmbus_producer_open(ch, &po, &p))
		_exit(2);
	char c;
	if (read(go_fd, &c, 1) != 1)
		_exit(3);
	for (uint64_t v = 0; v < count;) {
		uint32_t k = count - v < BENCH_BATCH ? (uint32_t)(count - v)
						     : BENCH_BATCH;
		shmbus_claim_t cl;
		if (shmbus_claim(p, k, &cl))
			_exit(4);
		for (uint32_t i = 0; i < k; i++, v++) {
			uint8_t *pl = shmbus_claim_at(&cl, i);
			memset(pl, 'x', size);
			memcpy(pl, &v, 8);
			shmbus_claim_set(p, &cl, i, size, v);
		}
		shmbus_commit(p, &cl);
	}
	shmbus_close(bus);
	_exit(0);
}

/* Errors only: the bridge says "connected" at every run otherwise. */
static void log_errors(void *ctx, int level, const char *msg)
{
	(void)ctx;
	if (level == SHMBUS_BRIDGE_LOG_ERROR)
		fprintf(stderr, "shmbus_bench: bridge: %s\n", msg);
}

static shmbus_bridge_t *open_bridge(const struct bench_opts *o,
				    const char *chan, int port)
{
	shmbus_bridge_config_t *c;
	char ch[128], p[16], depth[16];
	snprintf(ch, sizeof(ch), "%s:bench.bridge", chan);
	snprintf(p, sizeof(p), "%d", port);
	snprintf(depth, sizeof(depth), "%d", DEPTH);
	shmbus_bridge_t *b = NULL;
	if (shmbus_bridge_config_new(&c))
		return NULL;
	shmbus_bridge_config_log(c, log_errors, NULL);
	if (shmbus_bridge_config_set(c, "bus", o->bus) ||
	    shmbus_bridge_config_set(c, "direction", "to-redis") ||
	    shmbus_bridge_config_set(c, "channel", ch) ||
	    shmbus_bridge_config_set(c, "redis.port", p) ||
	    shmbus_bridge_config_set(c, "redis.pipeline", depth) ||
	    shmbus_bridge_open(c, &b))
		fprintf(stderr, "shmbus_bench: bridge: %s\n",
			shmbus_bridge_errmsg());
	shmbus_bridge_config_free(c);
	return b;
}

/* One bridged run: records per second, 0 on failure. */
static double bridged(const struct bench_opts *o, const struct server *s,
		      uint32_t size, uint64_t count, int round)
{
	char chan[SHMBUS_NAME_MAX + 1];
	snprintf(chan, sizeof(chan), "bridge.%u.%d", size, round);
	shmbus_t *bus;
	shmbus_channel_t *ch;
	shmbus_channel_opts_t co = {.record_size = size, .capacity = 4096};
	if (shmbus_open(o->bus, NULL, &bus) ||
	    shmbus_channel_open(bus, chan, &co, &ch)) {
		fprintf(stderr, "shmbus_bench: %s\n", shmbus_errmsg());
		return 0;
	}
	shmbus_bridge_t *b = open_bridge(o, chan, s->port);
	int go[2];
	double rate = 0;
	if (b == NULL || pipe(go)) {
		shmbus_close(bus);
		return 0;
	}
	pid_t pid = fork();
	if (pid == 0)
		producer(o, chan, size, count, go[0]);
	shmbus_bridge_step(b, 1); /* connect before the clock starts */
	uint64_t t0 = shmbus_now_ns();
	if (write(go[1], "g", 1) != 1)
		kill(pid, SIGKILL);
	shmbus_bridge_stats_t st = {0};
	uint64_t limit = t0 + (uint64_t)o->timeout_s * 1000000000ull;
	while (st.acked < count && shmbus_now_ns() < limit && !interrupted()) {
		if (shmbus_bridge_step(b, 10) < 0)
			break;
		shmbus_bridge_get_stats(b, &st);
	}
	uint64_t t1 = shmbus_now_ns();
	if (st.acked >= count)
		rate = (double)count / ((double)(t1 - t0) / 1e9);
	else
		fprintf(stderr, "shmbus_bench: bridge-redis: %llu of %llu "
				"acknowledged (%s)\n",
			(unsigned long long)st.acked, (unsigned long long)count,
			st.last_error);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(go[0]);
	close(go[1]);
	shmbus_bridge_close(b);
	shmbus_close(bus);
	return rate;
}

static void report_rate(const struct bench_opts *o, const char *variant,
			uint32_t size, uint64_t count, double rate)
{
	struct result res = {.workload = "bridge-redis", .size = size,
			     .count = count, .wait = "block"};
	snprintf(res.variant, sizeof(res.variant), "%s", variant);
	uint64_t ns = rate > 0 ? (uint64_t)((double)count / rate * 1e9) : 0;
	result_from_tp(&res, count, ns, size);
	report_result(o, &res);
}

static double median2(const double *v)
{
	return (v[0] + v[1]) / 2;
}

int wl_bridge_redis(const struct bench_opts *o)
{
	if (system("command -v redis-server >/dev/null && "
		   "command -v redis-benchmark >/dev/null") != 0) {
		report_skip(o, "bridge-redis",
			    "needs redis-server and redis-benchmark (apt-get "
			    "install redis-server redis-tools)");
		return 0;
	}
	uint32_t size = o->size ? o->size : 64;
	uint64_t count = o->count ? o->count : 200000;
	struct server s = {0};
	redisContext *c = NULL;
	if (server_start(&s) || (c = connect_when_up(s.port)) == NULL) {
		fprintf(stderr, "shmbus_bench: bridge-redis: redis-server did "
				"not start\n");
		server_stop(&s);
		return 1;
	}
	double raw[ROUNDS], br[ROUNDS];
	int failed = 0;
	for (int i = 0; i < ROUNDS && !interrupted(); i++) {
		raw[i] = raw_xadd(&s, size, count);
		freeReplyObject(redisCommand(c, "DEL bench.raw"));
		report_rate(o, "redis-benchmark -P 128", size, count, raw[i]);
		br[i] = bridged(o, &s, size, count, i);
		freeReplyObject(redisCommand(c, "DEL bench.bridge"));
		report_rate(o, "bridge, pipeline 128", size, count, br[i]);
		failed |= raw[i] <= 0 || br[i] <= 0;
	}
	if (!failed && !interrupted())
		report_note(o,
			    "bridge-redis: bridge / raw XADD = %.2f (goal >= "
			    "0.70), %u-byte payloads, one connection, "
			    "pipelining depth %d, redis-server without "
			    "persistence",
			    median2(br) / median2(raw), size, DEPTH);
	redisFree(c);
	server_stop(&s);
	return failed;
}
#endif
