/*
 * to-redis: each record becomes one XADD entry (fields type, seq, origin,
 * time, key, data), pipelined: up to redis.pipeline XADDs are written
 * before the bridge waits for a reply. Replies come back in order, so a
 * FIFO of (channel, sequence) says which record each one acknowledges. A
 * reply is the entry's id; under `appendfsync always` Redis replies after
 * the write reached its append-only file, so an acknowledged record is
 * durable. A lost connection fails every XADD still in the FIFO: whether
 * Redis applied them is unknown, so they are sent again (duplicates are
 * possible, losses are not).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "redis.h"

static struct timeval tv_ms(uint32_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	return tv;
}

static int auth(struct shmbus_bridge *b, struct rd_state *rs)
{
	if (b->cfg.redis_password[0] == '\0')
		return 0;
	redisReply *r = redisCommand(rs->ctx, "AUTH %s", b->cfg.redis_password);
	bool ok = r && r->type != REDIS_REPLY_ERROR;
	if (r && !ok)
		br_remote_error(b, "redis AUTH: %s (check redis.password)",
				r->str);
	if (r == NULL)
		rd_drop(b, rs, "AUTH");
	freeReplyObject(r);
	return ok ? 0 : -1;
}

int rd_connect(struct shmbus_bridge *b, struct rd_state *rs)
{
	if (rs->ctx)
		return 0;
	if (br_paused(b))
		return -1;
	const shmbus_bridge_config_t *cfg = &b->cfg;
	uint32_t ct = cfg->redis_timeout_ms < 2000 ? cfg->redis_timeout_ms : 2000;
	redisContext *ctx = redisConnectWithTimeout(cfg->redis_host,
						    (int)cfg->redis_port,
						    tv_ms(ct));
	if (ctx == NULL || ctx->err) {
		br_remote_error(b, "redis %s:%u: %s", cfg->redis_host,
				cfg->redis_port,
				ctx ? ctx->errstr : "out of memory");
		redisFree(ctx);
		br_connected(b, false);
		br_backoff(b);
		return -1;
	}
	/* a reply slower than this means a dead server or network */
	redisSetTimeout(ctx, tv_ms(cfg->redis_timeout_ms));
	redisEnableKeepAlive(ctx);
	rs->ctx = ctx;
	if (auth(b, rs)) {
		if (rs->ctx)
			rd_drop(b, rs, "AUTH");
		return -1;
	}
	br_connected(b, true);
	return 0;
}

static void fail_in_flight(struct shmbus_bridge *b, struct rd_state *rs)
{
	for (; rs->count; rs->count--) {
		struct rd_pending *p = &rs->fifo[rs->head];
		rs->head = (rs->head + 1) % rs->cap;
		br_out_failed(b, &b->chans[p->chan], p->seq);
	}
	rs->head = 0;
}

void rd_drop(struct shmbus_bridge *b, struct rd_state *rs, const char *what)
{
	if (rs->ctx)
		br_remote_error(b, "redis %s:%u: %s: %s", b->cfg.redis_host,
				b->cfg.redis_port, what,
				rs->ctx->errstr[0] ? rs->ctx->errstr
						   : "connection lost");
	redisFree(rs->ctx);
	rs->ctx = NULL;
	rs->unread_acks = 0;
	if (rs->fifo)
		fail_in_flight(b, rs);
	br_connected(b, false);
	br_backoff(b);
}

int rd_args(struct rd_state *rs, uint32_t n)
{
	if (n <= rs->argmax)
		return 0;
	const char **a = realloc(rs->argv, n * sizeof(*a));
	if (a == NULL)
		return SHMBUS_ENOMEM;
	rs->argv = a;
	size_t *l = realloc(rs->argl, n * sizeof(*l));
	if (l == NULL)
		return SHMBUS_ENOMEM;
	rs->argl = l;
	rs->argmax = n;
	return 0;
}

static int out_open(struct shmbus_bridge *b)
{
	struct rd_state *rs = br_remote_state(b, sizeof(*rs));
	if (rs == NULL)
		return SHMBUS_ENOMEM;
	rs->cap = b->cfg.redis_pipeline;
	rs->fifo = calloc(rs->cap, sizeof(*rs->fifo));
	if (rs->fifo == NULL || rd_args(rs, 20))
		return br_seterr(SHMBUS_ENOMEM, "out of memory");
	return 0;
}

void rd_close(struct shmbus_bridge *b)
{
	struct rd_state *rs = b->rs;
	if (rs == NULL)
		return;
	redisFree(rs->ctx);
	void *owned[] = {rs->fifo, rs->cmd, rs->argv, rs->argl, rs};
	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
		free(owned[i]);
	b->rs = NULL;
}

static bool out_ready(struct shmbus_bridge *b)
{
	return rd_connect(b, b->rs) == 0;
}

/* Read one XADD reply: blocking (flushes what was appended), or only one
 * already received. 1 if a reply was taken, 0 if none, -1 if dropped. */
static int take_reply(struct shmbus_bridge *b, struct rd_state *rs, bool block)
{
	redisReply *r = NULL;
	int rc = block ? redisGetReply(rs->ctx, (void **)&r)
		       : redisGetReplyFromReader(rs->ctx, (void **)&r);
	if (rc != REDIS_OK) {
		rd_drop(b, rs, "XADD");
		return -1;
	}
	if (r == NULL)
		return 0;
	struct rd_pending p = rs->fifo[rs->head];
	rs->head = (rs->head + 1) % rs->cap;
	rs->count--;
	struct br_chan *c = &b->chans[p.chan];
	if (r->type == REDIS_REPLY_STRING) {
		br_out_acked(b, c, p.seq);
		if (b->backoff_ms)
			br_backoff_reset(b);
	} else {
		br_remote_error(b, "redis XADD to '%s': %s", c->target,
				r->type == REDIS_REPLY_ERROR ? r->str
							     : "unexpected reply");
		br_out_failed(b, c, p.seq);
		br_backoff(b);
	}
	freeReplyObject(r);
	return 1;
}

/* RESP, written by hand into rs->cmd: hiredis's own formatter (sdscatfmt,
 * a buffer per command) cost more than the rest of a send. */
static int resp_room(struct rd_state *rs, size_t more)
{
	if (rs->cmd_len + more <= rs->cmd_cap)
		return 0;
	size_t cap = rs->cmd_cap ? rs->cmd_cap : 1024;
	while (cap < rs->cmd_len + more)
		cap *= 2;
	char *p = realloc(rs->cmd, cap);
	if (p == NULL)
		return -1;
	rs->cmd = p;
	rs->cmd_cap = cap;
	return 0;
}

static int resp_head(struct rd_state *rs, char kind, uint64_t n)
{
	if (resp_room(rs, 24))
		return -1;
	rs->cmd[rs->cmd_len++] = kind;
	rs->cmd_len += br_u64_text(n, rs->cmd + rs->cmd_len);
	rs->cmd[rs->cmd_len++] = '\r';
	rs->cmd[rs->cmd_len++] = '\n';
	return 0;
}

static int resp_arg(struct rd_state *rs, const void *p, size_t n)
{
	if (resp_head(rs, '$', n) || resp_room(rs, n + 2))
		return -1;
	memcpy(rs->cmd + rs->cmd_len, p, n);
	rs->cmd_len += n;
	rs->cmd[rs->cmd_len++] = '\r';
	rs->cmd[rs->cmd_len++] = '\n';
	return 0;
}

static int resp_str(struct rd_state *rs, const char *s)
{
	return resp_arg(rs, s, strlen(s));
}

/* XADD target [MAXLEN ~ n] * type T seq S origin O time T key K data D */
static int format_xadd(struct shmbus_bridge *b, struct rd_state *rs,
		       const struct br_chan *c, const shmbus_record_t *r,
		       const void *val, size_t len)
{
	char num[24], origin[64];
	uint64_t maxlen = b->cfg.redis_maxlen;
	int bad = 0;
	rs->cmd_len = 0;
	bad |= resp_head(rs, '*', maxlen ? 18 : 15);
	bad |= resp_str(rs, "XADD") | resp_str(rs, c->target);
	if (maxlen) {
		bad |= resp_str(rs, "MAXLEN") | resp_str(rs, "~");
		bad |= resp_arg(rs, num, br_u64_text(maxlen, num));
	}
	bad |= resp_str(rs, "*") | resp_str(rs, "type") | resp_str(rs, c->name);
	bad |= resp_str(rs, "seq") | resp_arg(rs, num, br_u64_text(r->seq, num));
	bad |= resp_str(rs, "origin") |
	       resp_arg(rs, origin, (size_t)br_origin_id(b, r, origin,
							  sizeof(origin)));
	bad |= resp_str(rs, "time") |
	       resp_arg(rs, num,
			br_u64_text(br_realtime_ns(b, r->timestamp), num));
	bad |= resp_str(rs, "key") | resp_arg(rs, num, br_u64_text(r->key, num));
	bad |= resp_str(rs, "data") | resp_arg(rs, val, len);
	return bad ? -1 : 0;
}

static int out_send(struct shmbus_bridge *b, struct br_chan *c,
		    const shmbus_record_t *r, const void *val, size_t len)
{
	struct rd_state *rs = b->rs;
	if (rs->ctx == NULL) {
		br_out_failed(b, c, r->seq);
		return 0;
	}
	if (format_xadd(b, rs, c, r, val, len))
		return br_seterr(SHMBUS_ENOMEM, "out of memory");
	if (redisAppendFormattedCommand(rs->ctx, rs->cmd, rs->cmd_len) !=
	    REDIS_OK) {
		br_out_failed(b, c, r->seq);
		rd_drop(b, rs, "XADD");
		return 0;
	}
	rs->fifo[(rs->head + rs->count) % rs->cap] =
		(struct rd_pending){c->index, r->seq};
	rs->count++;
	/* the pipeline is full: wait for the oldest reply */
	while (rs->ctx && rs->count >= rs->cap)
		if (take_reply(b, rs, true) < 0)
			break;
	return 0;
}

static int out_service(struct shmbus_bridge *b, uint32_t wait_ms)
{
	struct rd_state *rs = b->rs;
	int n = 0, r;
	while (rs->ctx && rs->count && (r = take_reply(b, rs, false)) > 0)
		n++;
	/* nothing received yet: flush what was appended and wait */
	if (n == 0 && wait_ms && rs->ctx && rs->count &&
	    take_reply(b, rs, true) > 0) {
		n++;
		while (rs->ctx && rs->count &&
		       (r = take_reply(b, rs, false)) > 0)
			n++;
	}
	return n;
}

const struct br_remote br_redis_out = {"redis", out_open, rd_close, out_ready,
					out_send, out_service};

