/*
 * Bridges to and from Redis Streams against a real redis-server (append-
 * only file fsynced on every write): round trips with every record
 * checked, a bridge SIGKILLed mid-stream, Redis killed and restarted
 * mid-stream, a dead Redis that comes back. Nothing may be lost;
 * duplicates are allowed and counted.
 */
#define SHMBUS_TEST_REDIS
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdarg.h>
#include <criterion/logging.h>
#include <pthread.h>
#include <shmbus/bridge.h>

#include "bridge_helpers.h"

static struct redis_srv srv;
static char bus_name[48];

static void start(void)
{
	memset(&srv, 0, sizeof(srv));
	redis_start(&srv);
}

static void finish(void)
{
	redis_stop(&srv);
	if (bus_name[0])
		shmbus_unlink(bus_name);
}

TestSuite(bridge_redis, .init = start, .fini = finish, .timeout = 120);

static shmbus_channel_t *channel(shmbus_t *bus, const char *name)
{
	shmbus_channel_opts_t o = {.record_size = REC_SIZE,
				   .capacity = 4096,
				   .flags = SHMBUS_CH_MULTI_PRODUCER};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_channel_open(bus, name, &o, &ch), 0, "%s",
		     shmbus_errmsg());
	return ch;
}

static shmbus_t *open_bus(const char *tag)
{
	snprintf(bus_name, sizeof(bus_name), "%s", test_bus(tag));
	shmbus_t *bus;
	cr_assert_eq(shmbus_open(bus_name, NULL, &bus), 0);
	return bus;
}

/* `shmbus bridge DIR BUS CHAN:STREAM --redis ...` plus up to 4 args. */
static pid_t bridge(const char *dir, const char *chan,
		    const char *const *extra)
{
	char redis[32];
	snprintf(redis, sizeof(redis), "127.0.0.1:%d", srv.port);
	const char *args[16] = {dir,	  bus_name, chan,  "--redis", redis,
				"--stats", "0",	    "--set",
				"backoff_max_ms=200"};
	for (int i = 0; extra && extra[i] && i < 4; i++)
		args[9 + i] = extra[i];
	return bridge_spawn(args);
}

/* Publish [from, to); every 256 records (and whenever the ring is full)
 * call tick, which may kill and restart things. */
static void publish(shmbus_producer_t *p, uint64_t from, uint64_t to,
		    void (*tick)(uint64_t v, void *ctx), void *ctx)
{
	struct rec r;
	for (uint64_t v = from; v < to;) {
		rec_make(&r, v);
		int rc = shmbus_try_publish(p, &r, sizeof(r), v);
		if (rc == SHMBUS_EAGAIN) {
			if (tick)
				tick(v, ctx);
			sleep_ms(1);
			continue;
		}
		cr_assert_eq(rc, 0);
		if (tick && v % 256 == 0)
			tick(v, ctx);
		v++;
	}
}

/* Every entry of a stream into a tally; fields checked on the way. */
static void read_stream(redisContext *c, const char *key, struct tally *t,
			const char *type)
{
	char from[64] = "-";
	for (;;) {
		redisReply *r = redisCommand(c, "XRANGE %s %s + COUNT 10000",
					     key, from);
		cr_assert(r && r->type == REDIS_REPLY_ARRAY);
		if (r->elements == 0) {
			freeReplyObject(r);
			return;
		}
		for (size_t i = 0; i < r->elements; i++) {
			redisReply *e = r->element[i], *f = e->element[1];
			const redisReply *data = NULL;
			uint64_t seq = UINT64_MAX;
			for (size_t j = 0; j + 1 < f->elements; j += 2) {
				const char *name = f->element[j]->str;
				redisReply *v = f->element[j + 1];
				if (!strcmp(name, "data"))
					data = v;
				else if (!strcmp(name, "seq"))
					seq = strtoull(v->str, NULL, 10);
				else if (!strcmp(name, "type"))
					cr_assert_str_eq(v->str, type);
			}
			cr_assert_not_null(data);
			tally_add(t, data->str, data->len);
			uint64_t v;
			/* a fresh channel: record v has sequence v */
			if (rec_ok(data->str, data->len, &v))
				cr_assert_eq(seq, v);
		}
		snprintf(from, sizeof(from), "(%s",
			 r->element[r->elements - 1]->element[0]->str);
		freeReplyObject(r);
	}
}

static uint64_t xlen(redisContext *c, const char *key)
{
	redisReply *r = redisCommand(c, "XLEN %s", key);
	uint64_t n = r && r->type == REDIS_REPLY_INTEGER ? (uint64_t)r->integer
							 : 0;
	freeReplyObject(r);
	return n;
}

/* Every record arrived, none damaged; duplicates only if allowed. */
static void check_tally(const struct tally *t, const char *what,
			bool dups_allowed)
{
	cr_log_info("%s: %llu records, %llu duplicates", what,
		    (unsigned long long)t->n, (unsigned long long)t->dups);
	cr_expect_eq(t->bad, 0);
	cr_expect_eq(t->distinct, t->n, "%s: first missing: %llu", what,
		     (unsigned long long)tally_first_missing(t));
	if (!dups_allowed)
		cr_expect_eq(t->dups, 0, "%s", what);
}

/* Wait until the bridge's durable name has nothing unacknowledged. */
static void wait_drained(shmbus_channel_t *ch, const char *name)
{
	uint64_t lag = UINT64_MAX;
	for (int i = 0; i < 3000 && lag != 0; i++) {
		lag = sub_lag(ch, name);
		if (lag)
			sleep_ms(10);
	}
	cr_assert_eq(lag, 0, "the bridge still lags by %llu",
		     (unsigned long long)lag);
}

struct kill_plan {
	redisContext *rc;
	const char *stream;
	uint64_t at;
	pid_t *bridge;
	bool done;
};

/* to-redis: SIGKILL the bridge once a third is in Redis, start it again */
static void kill_bridge_once(uint64_t v, void *ctx)
{
	(void)v;
	struct kill_plan *k = ctx;
	if (k->done || xlen(k->rc, k->stream) < k->at)
		return;
	bridge_kill(*k->bridge);
	*k->bridge = bridge("to-redis", "A:sa", NULL);
	k->done = true;
}

static void to_redis(const char *tag, bool kill_midway)
{
	uint64_t n = scaled(100000);
	shmbus_t *bus = open_bus(tag);
	shmbus_channel_t *ch = channel(bus, "A");
	cr_assert_eq(make_name(ch, "bridge-to-redis"), 0);
	pid_t br = bridge("to-redis", "A:sa", NULL);
	redisContext *rc = redis_conn(&srv);
	cr_assert_not_null(rc);
	shmbus_producer_t *p;
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BLOCK};
	cr_assert_eq(shmbus_producer_open(ch, &po, &p), 0);
	struct kill_plan k = {rc, "sa", n / 3, &br, false};
	publish(p, 0, n, kill_midway ? kill_bridge_once : NULL, &k);
	wait_drained(ch, "bridge-to-redis");
	cr_expect_eq(bridge_stop(br), 0);
	struct tally t;
	tally_init(&t, n);
	read_stream(rc, "sa", &t, "A");
	check_tally(&t, kill_midway ? "to-redis, bridge killed" : "to-redis",
		    kill_midway);
	cr_expect(k.done || !kill_midway);
	free(t.seen);
	redisFree(rc);
	shmbus_close(bus);
}

Test(bridge_redis, to_redis_every_record)
{
	to_redis("rto", false);
}

Test(bridge_redis, to_redis_bridge_killed_mid_stream)
{
	to_redis("rtk", true);
}

/* XADD [from, to) as the bridge writes them (data and key), pipelined. */
static void xadd_range(redisContext *c, const char *key, uint64_t from,
		       uint64_t to)
{
	struct rec r;
	for (uint64_t v = from; v < to; v += 1000) {
		uint64_t end = v + 1000 < to ? v + 1000 : to;
		for (uint64_t i = v; i < end; i++) {
			rec_make(&r, i);
			redisAppendCommand(c, "XADD %s * key %llu data %b", key,
					   (unsigned long long)i, &r,
					   sizeof(r));
		}
		for (uint64_t i = v; i < end; i++) {
			redisReply *x = NULL;
			cr_assert_eq(redisGetReply(c, (void **)&x), REDIS_OK);
			cr_assert_eq(x->type, REDIS_REPLY_STRING);
			freeReplyObject(x);
		}
	}
}

/* Poll s until every record arrived, calling tick on the way; 30 s. */
static void receive_all(shmbus_sub_t *s, struct tally *t,
			void (*tick)(struct tally *t, void *ctx), void *ctx)
{
	uint64_t end = shmbus_now_ns() + 30000000000ull;
	while (t->distinct < t->n && shmbus_now_ns() < end) {
		if (shmbus_poll(s, 1024) == 0)
			shmbus_sub_wait(s, 2000000);
		if (tick)
			tick(t, ctx);
	}
}

static uint64_t pending(redisContext *c, const char *key, const char *group)
{
	redisReply *r = redisCommand(c, "XPENDING %s %s", key, group);
	uint64_t n = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0
			     ? (uint64_t)r->element[0]->integer
			     : UINT64_MAX;
	freeReplyObject(r);
	return n;
}

static const char *const as_c1[] = {"--set", "redis.consumer=c1", NULL};
/* c2 claims what c1 left pending once it idled 300 ms (XAUTOCLAIM) */
static const char *const as_c2[] = {"--set", "redis.consumer=c2", "--set",
				    "redis.claim_idle_ms=300", NULL};

struct restart_plan {
	pid_t *bridge;
	uint64_t n;
	int kills;
};

/* from-redis: SIGKILL the bridge at a third and at two thirds; the next
 * one is consumer c2 both times: first it must claim c1's pending entries,
 * then read its own pending entries again */
static void kill_reader(struct tally *t, void *ctx)
{
	struct restart_plan *k = ctx;
	if (k->kills == 2 || t->distinct < k->n * (uint64_t)(k->kills + 1) / 3)
		return;
	bridge_kill(*k->bridge);
	*k->bridge = bridge("from-redis", "B:sb", as_c2);
	k->kills++;
}

static void from_redis(const char *tag, bool kill_midway)
{
	uint64_t n = scaled(100000);
	shmbus_t *bus = open_bus(tag);
	shmbus_channel_t *ch = channel(bus, "B");
	struct tally t;
	tally_init(&t, n);
	shmbus_sub_opts_t so = {.name = "check", .wait = SHMBUS_WAIT_BLOCK};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, tally_handler, &t, &so, &s), 0);
	redisContext *rc = redis_conn(&srv);
	cr_assert_not_null(rc);
	xadd_range(rc, "sb", 0, n);
	shmbus_watchdog_t *wd = bridge_watchdog(bus);
	pid_t br = bridge("from-redis", "B:sb", as_c1);
	struct restart_plan k = {&br, n, 0};
	receive_all(s, &t, kill_midway ? kill_reader : NULL, &k);
	check_tally(&t,
		    kill_midway ? "from-redis, bridge killed twice"
				: "from-redis",
		    kill_midway);
	cr_expect_eq(k.kills, kill_midway ? 2 : 0);
	/* everything acknowledged in the end */
	uint64_t left = UINT64_MAX;
	for (int i = 0; i < 500 && left; i++, sleep_ms(10))
		left = pending(rc, "sb", "bridge-from-redis");
	cr_expect_eq(left, 0, "%llu entries left pending",
		     (unsigned long long)left);
	cr_expect_eq(bridge_stop(br), 0);
	uint64_t holes = bridge_watchdog_close(wd);
	cr_log_info("holes of killed bridges repaired: %llu",
		    (unsigned long long)holes);
	cr_expect_leq(holes, (uint64_t)k.kills);
	free(t.seen);
	redisFree(rc);
	shmbus_close(bus);
}

Test(bridge_redis, from_redis_every_record)
{
	from_redis("rfo", false);
}

Test(bridge_redis, from_redis_bridge_killed_and_claimed)
{
	from_redis("rfk", true);
}

struct round_trip {
	shmbus_sub_t *check;
	struct tally *t;
	bool restarted;
};

/* bus -> Redis -> bus: kill redis-server (SIGKILL) once a third arrived
 * at the far channel, start it again on its port and files */
static void kill_redis_once(uint64_t v, void *ctx)
{
	(void)v;
	struct round_trip *rt = ctx;
	shmbus_poll(rt->check, 1024);
	if (rt->restarted || rt->t->distinct < rt->t->n / 3)
		return;
	redis_kill(&srv, SIGKILL);
	sleep_ms(300);
	redis_start(&srv);
	rt->restarted = true;
}

Test(bridge_redis, round_trip_through_a_redis_restart)
{
	uint64_t n = scaled(100000);
	shmbus_t *bus = open_bus("rrr");
	shmbus_channel_t *a = channel(bus, "A"), *b = channel(bus, "B");
	cr_assert_eq(make_name(a, "bridge-to-redis"), 0);
	struct tally t;
	tally_init(&t, n);
	shmbus_sub_opts_t so = {.name = "check", .wait = SHMBUS_WAIT_BLOCK};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(b, tally_handler, &t, &so, &s), 0);
	pid_t out = bridge("to-redis", "A:orders", NULL);
	pid_t in = bridge("from-redis", "B:orders", as_c1);
	shmbus_producer_t *p;
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BLOCK};
	cr_assert_eq(shmbus_producer_open(a, &po, &p), 0);
	struct round_trip rt = {s, &t, false};
	publish(p, 0, n, kill_redis_once, &rt);
	receive_all(s, &t, NULL, NULL);
	check_tally(&t, "round trip through a Redis restart", true);
	cr_expect(rt.restarted);
	wait_drained(a, "bridge-to-redis");
	cr_expect_eq(bridge_stop(out), 0);
	cr_expect_eq(bridge_stop(in), 0);
	free(t.seen);
	shmbus_close(bus);
}

static int count_handler(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(*(uint64_t *)ctx)++;
	return 0;
}

static void poll_other(uint64_t v, void *ctx)
{
	(void)v;
	while (shmbus_poll(ctx, 4096) > 0)
		;
}

/* Redis down: the bridge holds the records (its lag shows them), gates
 * producers a ring ahead like any durable subscriber, holds up no other
 * subscriber, and delivers everything once Redis is back. */
Test(bridge_redis, dead_redis_holds_records_without_blocking_others)
{
	redis_kill(&srv, SIGKILL);
	shmbus_t *bus = open_bus("rdd");
	shmbus_channel_t *ch = channel(bus, "A");
	cr_assert_eq(make_name(ch, "bridge-to-redis"), 0);
	uint64_t other_n = 0;
	shmbus_sub_opts_t so = {.name = "other"};
	shmbus_sub_t *other;
	cr_assert_eq(shmbus_subscribe(ch, count_handler, &other_n, &so, &other),
		     0);
	pid_t br = bridge("to-redis", "A:sa", NULL);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	/* a full ring is accepted while the other subscriber keeps up */
	struct rec r;
	uint64_t v = 0;
	for (;; v++) {
		while (shmbus_poll(other, 4096) > 0)
			;
		rec_make(&r, v);
		if (shmbus_try_publish(p, &r, sizeof(r), v) != 0)
			break;
	}
	cr_expect_eq(v, 4096, "the bridge gates at one ring");
	cr_expect_eq(other_n, 4096);
	sleep_ms(500);
	cr_expect_eq(sub_lag(ch, "bridge-to-redis"), 4096);
	redis_start(&srv);
	redisContext *rc = redis_conn(&srv);
	cr_assert_not_null(rc);
	uint64_t n = 3 * 4096;
	publish(p, v, n, poll_other, other);
	poll_other(0, other);
	cr_expect_eq(other_n, n);
	wait_drained(ch, "bridge-to-redis");
	cr_expect_eq(bridge_stop(br), 0);
	struct tally t;
	tally_init(&t, n);
	read_stream(rc, "sa", &t, "A");
	check_tally(&t, "to-redis after Redis came up", true);
	free(t.seen);
	redisFree(rc);
	shmbus_close(bus);
}

/* The codec hook: records go out as text "v=N"; odd numbers are refused
 * (counted in rejected, never held up). */
static int encode_text(void *ctx, const char *channel,
		       const shmbus_record_t *rec, void *buf, size_t cap,
		       const void **out, size_t *len)
{
	(void)ctx;
	(void)channel;
	uint64_t v;
	memcpy(&v, rec->data, sizeof(v));
	if (v % 2)
		return SHMBUS_EPERMANENT;
	*len = (size_t)snprintf(buf, cap, "v=%llu", (unsigned long long)v);
	*out = buf;
	return 0;
}

static void *run_bridge(void *b)
{
	return (void *)(intptr_t)shmbus_bridge_run(b);
}

/* An application embeds a bridge: open, run on a thread, stats, stop. */
Test(bridge_redis, embedded_bridge_with_a_codec)
{
	shmbus_t *bus = open_bus("rem");
	shmbus_channel_t *ch = channel(bus, "A");
	shmbus_bridge_config_t *c;
	char port[16];
	snprintf(port, sizeof(port), "%d", srv.port);
	cr_assert_eq(shmbus_bridge_config_new(&c), 0);
	cr_assert_eq(shmbus_bridge_config_set(c, "bus", bus_name), 0);
	cr_assert_eq(shmbus_bridge_config_set(c, "direction", "to-redis"), 0);
	cr_assert_eq(shmbus_bridge_config_set(c, "channel", "A:sc"), 0);
	cr_assert_eq(shmbus_bridge_config_set(c, "name", "embedded"), 0);
	cr_assert_eq(shmbus_bridge_config_set(c, "redis.port", port), 0);
	shmbus_bridge_codec_t codec = {.encode = encode_text};
	cr_assert_eq(shmbus_bridge_config_codec(c, &codec), 0);
	shmbus_bridge_t *b;
	cr_assert_eq(shmbus_bridge_open(c, &b), 0, "%s", shmbus_bridge_errmsg());
	shmbus_bridge_config_free(c);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, run_bridge, b), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	publish(p, 0, 1000, NULL, NULL);
	wait_drained(ch, "embedded");
	/* the bridge's own gauge follows within a round */
	shmbus_bridge_stats_t st;
	shmbus_bridge_get_stats(b, &st);
	for (int i = 0; i < 100 && st.lag; i++, sleep_ms(10))
		shmbus_bridge_get_stats(b, &st);
	/* half refused by the codec, the other half sent and acknowledged */
	uint64_t got[] = {st.read, st.sent, st.acked, st.rejected, st.lag,
			  st.connected};
	uint64_t want[] = {1000, 500, 500, 500, 0, 1};
	for (int i = 0; i < 6; i++)
		cr_expect_eq(got[i], want[i], "counter %d: %llu", i,
			     (unsigned long long)got[i]);
	shmbus_bridge_stop(b);
	void *rc;
	pthread_join(th, &rc);
	cr_expect_eq((intptr_t)rc, 0);
	shmbus_bridge_close(b);
	redisContext *r = redis_conn(&srv);
	cr_assert_not_null(r);
	cr_expect_eq(xlen(r, "sc"), 500);
	redisReply *x = redisCommand(r, "XRANGE sc - + COUNT 1");
	cr_assert(x && x->type == REDIS_REPLY_ARRAY && x->elements == 1);
	redisReply *f = x->element[0]->element[1];
	cr_expect_str_eq(f->element[f->elements - 1]->str, "v=0");
	freeReplyObject(x);
	redisFree(r);
	shmbus_close(bus);
}

/* --value json: out as the JSON of the record's fields, back in by the
 * same schema, every record intact. */
static const shmbus_field_t rec_fields[] = {
	SHMBUS_FIELD(struct rec, v, SHMBUS_F_U64),
	SHMBUS_FIELD(struct rec, fill, SHMBUS_F_BYTES),
};
static const shmbus_schema_t rec_schema = SHMBUS_SCHEMA(struct rec, rec_fields);

static shmbus_channel_t *schema_channel(shmbus_t *bus, const char *name)
{
	shmbus_channel_opts_t o = {.record_size = REC_SIZE,
				   .capacity = 4096,
				   .flags = SHMBUS_CH_MULTI_PRODUCER,
				   .schema = &rec_schema};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_channel_open(bus, name, &o, &ch), 0, "%s",
		     shmbus_errmsg());
	return ch;
}

Test(bridge_redis, json_values_by_the_schema_both_ways)
{
	shmbus_t *bus = open_bus("rjs");
	shmbus_channel_t *out = schema_channel(bus, "J");
	shmbus_channel_t *in = schema_channel(bus, "K");
	static const char *const json[] = {"--value", "json", NULL};
	cr_assert_eq(make_name(out, "bridge-to-redis"), 0);
	pid_t tx = bridge("to-redis", "J:js", json);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(out, NULL, &p), 0);
	uint64_t n = scaled(2000);
	publish(p, 0, n, NULL, NULL);
	wait_drained(out, "bridge-to-redis");
	cr_expect_eq(bridge_stop(tx), 0);
	redisContext *r = redis_conn(&srv);
	cr_assert_not_null(r);
	redisReply *x = redisCommand(r, "XRANGE js - + COUNT 1");
	cr_assert(x && x->type == REDIS_REPLY_ARRAY && x->elements == 1);
	redisReply *f = x->element[0]->element[1];
	const char *v = f->element[f->elements - 1]->str;
	cr_expect(strncmp(v, "{\"v\":0,\"fill\":\"", 15) == 0, "%s", v);
	freeReplyObject(x);
	redisFree(r);
	/* back into K by the same schema */
	struct tally t;
	tally_init(&t, n);
	shmbus_sub_opts_t so = {.name = "check"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(in, tally_handler, &t, &so, &s), 0);
	pid_t rx = bridge("from-redis", "K:js", json);
	receive_all(s, &t, NULL, NULL);
	cr_expect_eq(bridge_stop(rx), 0);
	check_tally(&t, "json round trip", false);
	shmbus_close(bus);
}

/* bridge(), its stdout and stderr into log. */
static pid_t bridge_logged(const char *log, const char *dir, const char *chan,
			   const char *const *extra)
{
	char redis[32];
	snprintf(redis, sizeof(redis), "127.0.0.1:%d", srv.port);
	const char *args[16] = {dir, bus_name, chan, "--redis", redis,
				"--stats", "0"};
	for (int i = 0; extra && extra[i] && i < 4; i++)
		args[7 + i] = extra[i];
	return bridge_spawn_logged(log, args);
}

/* redis-cli, as a Redis user feeds a stream; 0 if it ran */
static int redis_cli(const char *fmt, ...)
{
	char args[512], cmd[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "redis-cli -p %d %s >/dev/null", srv.port,
		 args);
	return system(cmd);
}

/* Wait until the group has nothing pending on the stream (all read and
 * acknowledged) and s got `want` records; 20 s. */
static void wait_taken(shmbus_sub_t *s, uint64_t *got, uint64_t want,
		       const char *stream, const char *group)
{
	redisContext *r = redis_conn(&srv);
	cr_assert_not_null(r);
	uint64_t end = shmbus_now_ns() + 20000000000ull, pend = 1;
	while (shmbus_now_ns() < end && (*got < want || pend != 0)) {
		shmbus_poll(s, 64);
		pend = pending(r, stream, group);
		sleep_ms(50);
	}
	sleep_ms(200);
	shmbus_poll(s, 64);
	redisFree(r);
	cr_expect_eq(*got, want, "got %llu records, not %llu",
		     (unsigned long long)*got, (unsigned long long)want);
}

/*
 * What a Redis user sends with redis-cli into a channel with a schema: by
 * default the bridge reads JSON (as it writes it); a value that does not
 * decode (an unknown field, not JSON, no `data`; raw bytes that are not a
 * whole record) is refused, named, acknowledged and counted, and the
 * counters add up: read = sent + rejected, acked = read.
 */
Test(bridge_redis, from_redis_refuses_what_does_not_decode)
{
	shmbus_t *bus = open_bus("rrf");
	shmbus_channel_t *in = schema_channel(bus, "K");
	uint64_t got = 0;
	shmbus_sub_opts_t so = {.name = "check"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(in, count_handler, &got, &so, &s), 0);
	char log[64], text[8192];
	snprintf(log, sizeof(log), "/tmp/shmbus-rrf.%d.log", (int)getpid());
	redisFree(redis_conn(&srv)); /* once it answers */
	cr_assert_eq(redis_cli("XADD ins '*' data '{\"v\":7}'"), 0);
	cr_assert_eq(redis_cli("XADD ins '*' data '{\"v\":8,\"qty\":1}'"), 0);
	cr_assert_eq(redis_cli("XADD ins '*' data hello"), 0);
	cr_assert_eq(redis_cli("XADD ins '*' other x"), 0);
	pid_t rx = bridge_logged(log, "from-redis", "K:ins", NULL);
	wait_taken(s, &got, 1, "ins", "bridge-from-redis");
	cr_expect_eq(bridge_stop(rx), 0);
	slurp(log, text, sizeof(text));
	cr_expect(strstr(text, "no field 'qty'") != NULL,
		  "the unknown field is not named:\n%s", text);
	cr_expect(strstr(text, "not a JSON object") != NULL, "%s", text);
	cr_expect(strstr(text, "read 4 sent 1 acked 4") != NULL &&
			  strstr(text, "rejected 3") != NULL,
		  "counters that do not add up:\n%s", text);

	/* --value raw: the bytes as they are, but only a whole record */
	static const char *const raw[] = {"--value", "raw", "--set",
					  "name=rawin", NULL};
	cr_assert_eq(redis_cli("XADD raws '*' data hello"), 0);
	rx = bridge_logged(log, "from-redis", "K:raws", raw);
	wait_taken(s, &got, 1, "raws", "rawin");
	cr_expect_eq(bridge_stop(rx), 0);
	slurp(log, text, sizeof(text));
	cr_expect(strstr(text, "5 bytes") != NULL &&
			  strstr(text, "64 bytes") != NULL,
		  "a 5-byte value into 64-byte records:\n%s", text);
	cr_expect(strstr(text, "read 1 sent 0 acked 1") != NULL &&
			  strstr(text, "rejected 1") != NULL,
		  "%s", text);
	unlink(log);
	shmbus_close(bus);
}

/* To Redis by default: the JSON of the record's fields, readable with
 * redis-cli, not the C struct's bytes. */
Test(bridge_redis, to_redis_writes_json_by_default)
{
	shmbus_t *bus = open_bus("rtj");
	shmbus_channel_t *out = schema_channel(bus, "J");
	cr_assert_eq(make_name(out, "bridge-to-redis"), 0);
	pid_t tx = bridge("to-redis", "J:jd", NULL);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(out, NULL, &p), 0);
	publish(p, 0, 3, NULL, NULL);
	wait_drained(out, "bridge-to-redis");
	cr_expect_eq(bridge_stop(tx), 0);
	char cmd[160], buf[512] = "";
	snprintf(cmd, sizeof(cmd), "redis-cli -p %d --raw XRANGE jd - + COUNT 1",
		 srv.port);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	pclose(f);
	cr_expect(strstr(buf, "{\"v\":0,\"fill\":\"") != NULL,
		  "redis-cli shows:\n%s", buf);
	shmbus_close(bus);
}
