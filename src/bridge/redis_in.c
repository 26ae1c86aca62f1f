/*
 * from-redis: a Redis consumer group per stream feeds the bus.
 *
 *   XGROUP CREATE s g 0 MKSTREAM     once per connection (BUSYGROUP: fine)
 *   XREADGROUP ... STREAMS s 0       first, this consumer's own pending
 *                                    entries: read before a crash or a lost
 *                                    connection, maybe never published
 *   XAUTOCLAIM s g c idle ...        entries a dead bridge (another consumer
 *                                    name) left pending longer than
 *                                    redis.claim_idle_ms
 *   XREADGROUP ... STREAMS s >       new entries, `batch` at a time
 *   XACK s g id...                   after shmbus accepted them; written
 *                                    together with the next read (one round
 *                                    trip per batch)
 *
 * An entry is acknowledged only after its publish returned, so a crash in
 * between leaves it pending, and it is read again: at-least-once.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"

static const char *group(const struct shmbus_bridge *b)
{
	return b->cfg.redis_group[0] ? b->cfg.redis_group : b->cfg.name;
}

static const char *consumer(const struct shmbus_bridge *b)
{
	return b->cfg.redis_consumer[0] ? b->cfg.redis_consumer : b->cfg.name;
}

static int in_open(struct shmbus_bridge *b)
{
	struct rd_state *rs = br_remote_state(b, sizeof(*rs));
	if (rs == NULL)
		return SHMBUS_ENOMEM;
	if (rd_args(rs, b->cfg.batch + 2 * BR_MAX_CHANNELS + 16))
		return br_seterr(SHMBUS_ENOMEM, "out of memory");
	return 0;
}

/* The XACK replies written with earlier commands. */
static int read_acks(struct shmbus_bridge *b, struct rd_state *rs)
{
	while (rs->ctx && rs->unread_acks) {
		redisReply *r = NULL;
		if (redisGetReply(rs->ctx, (void **)&r) != REDIS_OK) {
			rd_drop(b, rs, "XACK");
			return -1;
		}
		rs->unread_acks--;
		if (r->type == REDIS_REPLY_INTEGER)
			br_count(&b->n.acked, (uint64_t)r->integer);
		else
			br_remote_error(b, "redis XACK: %s",
					r->type == REDIS_REPLY_ERROR
						? r->str
						: "unexpected reply");
		freeReplyObject(r);
	}
	return rs->ctx ? 0 : -1;
}

/* Write a command (after any XACKs appended), read its reply. */
static redisReply *command(struct shmbus_bridge *b, struct rd_state *rs,
			   int argc, const char **argv, const size_t *argl,
			   const char *what)
{
	if (redisAppendCommandArgv(rs->ctx, argc, argv, argl) != REDIS_OK) {
		rd_drop(b, rs, what);
		return NULL;
	}
	if (read_acks(b, rs))
		return NULL;
	redisReply *r = NULL;
	if (redisGetReply(rs->ctx, (void **)&r) != REDIS_OK) {
		rd_drop(b, rs, what);
		return NULL;
	}
	return r;
}

static bool is_str(const redisReply *r)
{
	return r && (r->type == REDIS_REPLY_STRING ||
		     r->type == REDIS_REPLY_STATUS);
}

static bool field_is(const redisReply *f, const char *name)
{
	return is_str(f) && f->len == strlen(name) &&
	       memcmp(f->str, name, f->len) == 0;
}

/* Publish one entry's data: 0 published, 1 acknowledged without it (gone
 * or unusable, counted), < 0 stop (left pending). */
static int take_entry(struct shmbus_bridge *b, struct br_chan *c,
		      const redisReply *fields)
{
	if (fields == NULL || fields->type != REDIS_REPLY_ARRAY) {
		/* a pending entry deleted from the stream (trimmed) */
		br_count(&b->n.lost, 1);
		return 1;
	}
	const redisReply *data = NULL, *key = NULL;
	for (size_t j = 0; j + 1 < fields->elements; j += 2) {
		if (field_is(fields->element[j], "data"))
			data = fields->element[j + 1];
		else if (field_is(fields->element[j], "key"))
			key = fields->element[j + 1];
	}
	if (!is_str(data)) {
		br_count(&b->n.read, 1); /* read = sent + rejected */
		br_rejected(b, "stream '%s': an entry without a 'data' field",
			    c->target);
		return 1;
	}
	uint64_t k = is_str(key) ? br_key_parse(key->str, key->len) : 0;
	return br_in_publish(b, c, data->str, data->len, k);
}

/*
 * Entries ([id, fields] each) of one stream: publish, then append one
 * XACK for those done. last, if given, gets the last id taken. Returns
 * records published, or -1 to stop.
 */
static int take_entries(struct shmbus_bridge *b, struct rd_state *rs,
			struct br_chan *c, const redisReply *entries,
			char *last, size_t last_n)
{
	if (entries == NULL || entries->type != REDIS_REPLY_ARRAY)
		return 0;
	if (rd_args(rs, (uint32_t)entries->elements + 3))
		return br_seterr(SHMBUS_ENOMEM, "out of memory"), -1;
	const char **a = rs->argv;
	size_t *l = rs->argl;
	a[0] = "XACK", l[0] = 4;
	a[1] = c->target, l[1] = strlen(c->target);
	a[2] = group(b), l[2] = strlen(a[2]);
	int n = 3, moved = 0, rc = 0;
	for (size_t i = 0; i < entries->elements; i++) {
		const redisReply *e = entries->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
		    !is_str(e->element[0]))
			continue; /* not an entry: nothing to acknowledge */
		rc = take_entry(b, c, e->element[1]);
		if (rc < 0)
			break;
		const redisReply *id = e->element[0];
		if (last && id->len < last_n)
			snprintf(last, last_n, "%.*s", (int)id->len, id->str);
		a[n] = id->str, l[n++] = id->len;
		moved += rc == 0;
	}
	if (n > 3) {
		if (redisAppendCommandArgv(rs->ctx, n, a, l) != REDIS_OK) {
			rd_drop(b, rs, "XACK");
			return -1;
		}
		rs->unread_acks++;
	}
	return rc < 0 ? -1 : moved;
}

/* A reply that is an error: logged; NOGROUP (the stream or the group is
 * gone: Redis lost its data, or someone deleted it) sets up again. */
static bool reply_failed(struct shmbus_bridge *b, struct rd_state *rs,
			 redisReply *r, const char *what)
{
	if (r == NULL)
		return true;
	if (r->type != REDIS_REPLY_ERROR)
		return false;
	br_remote_error(b, "redis %s: %s", what, r->str);
	if (strncmp(r->str, "NOGROUP", 7) == 0)
		rd_drop(b, rs, what); /* reconnecting creates the group */
	else
		br_backoff(b);
	freeReplyObject(r);
	return true;
}

static int setup(struct shmbus_bridge *b, struct rd_state *rs)
{
	for (uint32_t i = 0; i < b->n_chan; i++) {
		const char *a[] = {"XGROUP", "CREATE", b->chans[i].target,
				   group(b), "0", "MKSTREAM"};
		size_t l[6];
		for (int k = 0; k < 6; k++)
			l[k] = strlen(a[k]);
		redisReply *r = command(b, rs, 6, a, l, "XGROUP CREATE");
		if (r && r->type == REDIS_REPLY_ERROR &&
		    strncmp(r->str, "BUSYGROUP", 9) == 0)
			r->type = REDIS_REPLY_STATUS; /* it exists: fine */
		if (reply_failed(b, rs, r, "XGROUP CREATE")) {
			/* e.g. LOADING after a restart: set up again on the
			 * next connection, pending entries included */
			if (rs->ctx)
				rd_drop(b, rs, "XGROUP CREATE failed, reconnecting");
			return -1;
		}
		freeReplyObject(r);
		rs->reread[i] = true;
		snprintf(rs->reread_from[i], sizeof(rs->reread_from[i]), "0");
		snprintf(rs->claim_from[i], sizeof(rs->claim_from[i]), "0-0");
	}
	rs->next_claim_ns = 0;
	return 0;
}

/* XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS s... id... */
static redisReply *xreadgroup(struct shmbus_bridge *b, struct rd_state *rs,
			      uint32_t first, uint32_t count, const char *id,
			      uint32_t block_ms)
{
	char cnt[16], blk[16];
	const char **a = rs->argv;
	size_t *l = rs->argl;
	int n = 0;
	a[n++] = "XREADGROUP", a[n++] = "GROUP", a[n++] = group(b);
	a[n++] = consumer(b), a[n++] = "COUNT";
	snprintf(cnt, sizeof(cnt), "%u", b->cfg.batch);
	a[n++] = cnt;
	if (block_ms) {
		snprintf(blk, sizeof(blk), "%u", block_ms);
		a[n++] = "BLOCK", a[n++] = blk;
	}
	a[n++] = "STREAMS";
	for (uint32_t i = first; i < first + count; i++)
		a[n++] = b->chans[i].target;
	for (uint32_t i = first; i < first + count; i++)
		a[n++] = id ? id : rs->reread_from[i];
	for (int k = 0; k < n; k++)
		l[k] = strlen(a[k]);
	return command(b, rs, n, a, l, "XREADGROUP");
}

/* Entries of a XREADGROUP reply ([[stream, entries], ...]). */
static int take_streams(struct shmbus_bridge *b, struct rd_state *rs,
			redisReply *r, char *last, size_t last_n, size_t *got)
{
	int moved = 0;
	*got = 0;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *s = r->element[i];
		if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 ||
		    !is_str(s->element[0]))
			continue;
		struct br_chan *c = br_chan_by_target(b, s->element[0]->str,
						      s->element[0]->len);
		if (c == NULL)
			continue;
		if (s->element[1]->type == REDIS_REPLY_ARRAY)
			*got += s->element[1]->elements;
		int m = take_entries(b, rs, c, s->element[1], last, last_n);
		if (m < 0)
			return -1;
		moved += m;
	}
	return moved;
}

/* This consumer's own pending entries, from the start, once per
 * connection: what was read and not acknowledged before. */
static int reread_pending(struct shmbus_bridge *b, struct rd_state *rs)
{
	int moved = 0;
	for (uint32_t i = 0; i < b->n_chan && rs->ctx; i++) {
		if (!rs->reread[i])
			continue;
		redisReply *r = xreadgroup(b, rs, i, 1, NULL, 0);
		if (reply_failed(b, rs, r, "XREADGROUP"))
			return moved;
		size_t got;
		int m = take_streams(b, rs, r, rs->reread_from[i],
				     sizeof(rs->reread_from[i]), &got);
		freeReplyObject(r);
		if (m < 0)
			return -1;
		moved += m;
		if (got == 0)
			rs->reread[i] = false;
	}
	return moved;
}

/* XAUTOCLAIM s g c min-idle start COUNT n: [next, entries, deleted] */
static int autoclaim_one(struct shmbus_bridge *b, struct rd_state *rs,
			 struct br_chan *c, bool *more)
{
	char idle[16], cnt[16];
	snprintf(idle, sizeof(idle), "%u", b->cfg.redis_claim_idle_ms);
	snprintf(cnt, sizeof(cnt), "%u", b->cfg.batch);
	char *from = rs->claim_from[c->index];
	const char *a[] = {"XAUTOCLAIM", c->target, group(b), consumer(b),
			   idle, from, "COUNT", cnt};
	size_t l[8];
	for (int k = 0; k < 8; k++)
		l[k] = strlen(a[k]);
	redisReply *r = command(b, rs, 8, a, l, "XAUTOCLAIM");
	if (reply_failed(b, rs, r, "XAUTOCLAIM"))
		return 0;
	int moved = 0;
	*more = false;
	if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
	    is_str(r->element[0])) {
		moved = take_entries(b, rs, c, r->element[1], NULL, 0);
		if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY)
			br_count(&b->n.lost, r->element[2]->elements);
		snprintf(from, sizeof(rs->claim_from[0]), "%.*s",
			 (int)r->element[0]->len, r->element[0]->str);
		*more = strcmp(from, "0-0") != 0;
	}
	freeReplyObject(r);
	return moved;
}

/* Entries dead consumers left pending, every claim_idle_ms / 2. */
static int autoclaim(struct shmbus_bridge *b, struct rd_state *rs)
{
	if (shmbus_now_ns() < rs->next_claim_ns)
		return 0;
	int moved = 0;
	bool any_more = false;
	for (uint32_t i = 0; i < b->n_chan && rs->ctx; i++) {
		bool more = false;
		int m = autoclaim_one(b, rs, &b->chans[i], &more);
		if (m < 0)
			return -1;
		moved += m;
		any_more |= more;
	}
	if (!any_more)
		rs->next_claim_ns = shmbus_now_ns() +
				    b->cfg.redis_claim_idle_ms * 500000ull;
	return moved;
}

static int read_new(struct shmbus_bridge *b, struct rd_state *rs,
		    uint32_t wait_ms)
{
	/* the socket time-out must outlast the server's BLOCK */
	uint32_t block = wait_ms < b->cfg.redis_timeout_ms / 2
				 ? wait_ms
				 : b->cfg.redis_timeout_ms / 2;
	redisReply *r = xreadgroup(b, rs, 0, b->n_chan, ">", block);
	if (reply_failed(b, rs, r, "XREADGROUP"))
		return 0;
	size_t got;
	int moved = take_streams(b, rs, r, NULL, 0, &got);
	freeReplyObject(r);
	return moved;
}

static int in_service(struct shmbus_bridge *b, uint32_t wait_ms)
{
	struct rd_state *rs = b->rs;
	if (rs->ctx == NULL && (rd_connect(b, rs) || setup(b, rs))) {
		br_sleep_ms(wait_ms < 10 ? wait_ms : 10);
		return 0;
	}
	if (br_paused(b)) {
		br_sleep_ms(wait_ms < 10 ? wait_ms : 10);
		return 0;
	}
	int moved = reread_pending(b, rs);
	if (moved == 0 && rs->ctx)
		moved = autoclaim(b, rs);
	if (moved == 0 && rs->ctx)
		moved = read_new(b, rs, wait_ms);
	if (moved > 0 && b->backoff_ms)
		br_backoff_reset(b);
	/* stopping: the XACKs of what was published go out now */
	if (br_stopping(b))
		read_acks(b, rs);
	return moved < 0 ? 0 : moved;
}

static void in_close(struct shmbus_bridge *b)
{
	struct rd_state *rs = b->rs;
	if (rs && rs->ctx)
		read_acks(b, rs);
	rd_close(b);
}

const struct br_remote br_redis_in = {"redis", in_open, in_close, NULL,
				       NULL, in_service};
