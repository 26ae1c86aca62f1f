/*
 * Outbound (to-kafka, to-redis): bus records to a remote, at-least-once.
 *
 * A durable subscriber's cursor moves after its handler returned for a
 * batch; a remote acknowledges records later, out of order across Kafka
 * partitions. So the bridge splits reading from confirming:
 *
 *   - a spy (shmbus_spy_*) reads ahead of the cursor and hands records to
 *     the remote, up to `window` per channel in flight. It neither gates
 *     producers nor writes to shared memory; the slots it reads cannot be
 *     reused while the durable cursor below them gates producers
 *     (back-pressure channels), so it is never lapped there;
 *   - acknowledgements set bits in a window bitmap; `floor` is the lowest
 *     sequence not yet acknowledged;
 *   - the durable subscriber then polls exactly floor - cursor records,
 *     with a handler that only returns 0: its cursor, the one producers
 *     gate on and the one a restart resumes from, is stored past
 *     acknowledged records only.
 *
 * A crash therefore resends [cursor, ..) and never skips a record. A
 * failed delivery rewinds: once nothing is in flight, reading starts
 * again at the lowest failed sequence (records after it that had been
 * acknowledged go again: counted in `resent`). The subscriber's lag, as
 * shmbus_sub_list shows it, is the records not yet acknowledged.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The cursor-holding subscriber never fails a first delivery. Anything
 * else is a redelivery from its retry segment (an operator's `dlq replay
 * --to` of the bridge's name): the bridge cannot send it in order, so it
 * goes to the dead-letter queue, visibly, instead of vanishing. */
static int hold_cursor(const shmbus_record_t *r, void *ctx)
{
	(void)ctx;
	if (r->attempt > 1) {
		shmbus_fail_note("bridge: replay it into the channel instead "
				 "(shmbus dlq ... replay ID)");
		return SHMBUS_EPERMANENT;
	}
	return 0;
}

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;
	while (p < v && p < (1u << 30))
		p <<= 1;
	return p;
}

static int reopen_spy(struct br_chan *c)
{
	if (c->spy)
		shmbus_spy_close(c->spy);
	c->spy = NULL;
	/* from the oldest record in the ring: the cursor is never below it
	 * on a back-pressure channel; earlier records are skipped */
	int rc = shmbus_spy_open(c->ch, 1, &c->spy);
	if (rc)
		return br_seterr(rc, "channel '%s': %s", c->name,
				 shmbus_errmsg());
	c->held = false;
	return 0;
}

int br_out_open(struct shmbus_bridge *b, struct br_chan *c)
{
	shmbus_sub_opts_t so = {.name = b->cfg.name,
				.wait = SHMBUS_WAIT_BLOCK,
				.flags = SHMBUS_SUB_NO_LATENCY};
	int rc = shmbus_subscribe(c->ch, hold_cursor, c, &so, &c->sub);
	if (rc)
		return br_seterr(rc,
				 "subscriber '%s' on channel '%s': %s%s",
				 b->cfg.name, c->name, shmbus_errmsg(),
				 rc == SHMBUS_EBUSY ? " (is another bridge "
						      "running under this "
						      "name?)"
						    : "");
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(c->sub, &st);
	c->floor = c->next = c->committed = st.cursor;
	c->rewind_to = BR_NO_REWIND;
	c->window = pow2_at_least(b->cfg.window);
	c->acked = calloc(c->window, 1);
	if (c->acked == NULL)
		return br_seterr(SHMBUS_ENOMEM, "out of memory");
	return reopen_spy(c);
}

void br_out_close(struct br_chan *c)
{
	if (c->spy)
		shmbus_spy_close(c->spy);
	if (c->sub)
		shmbus_sub_close(c->sub, 0);
	free(c->acked);
	c->spy = NULL;
	c->sub = NULL;
	c->acked = NULL;
}

uint64_t br_out_seq(const struct br_chan *c, uint64_t low56)
{
	const uint64_t m = (1ull << 56) - 1;
	return c->floor + ((low56 - c->floor) & m);
}

static bool in_window(const struct br_chan *c, uint64_t seq)
{
	return seq - c->floor < c->next - c->floor;
}

void br_out_acked(struct shmbus_bridge *b, struct br_chan *c, uint64_t seq)
{
	c->in_flight--;
	br_count(&b->n.acked, 1);
	/* an acknowledgement of a record sent before an eviction reset */
	if (in_window(c, seq))
		c->acked[seq & (c->window - 1)] = 1;
}

void br_out_failed(struct shmbus_bridge *b, struct br_chan *c, uint64_t seq)
{
	c->in_flight--;
	if (in_window(c, seq) &&
	    (c->rewind_to == BR_NO_REWIND ||
	     (int64_t)(seq - c->rewind_to) < 0))
		c->rewind_to = seq;
	(void)b;
}

uint64_t br_out_pending(const struct shmbus_bridge *b)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < b->n_chan; i++)
		n += b->chans[i].next - b->chans[i].committed;
	return n;
}

/* The subscriber was evicted (evict-policy channel) and rejoined at the
 * present: start over there; what it skipped is counted as lost. */
static int after_eviction(struct shmbus_bridge *b, struct br_chan *c)
{
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(c->sub, &st);
	br_log(b, SHMBUS_BRIDGE_LOG_ERROR,
	       "channel '%s': the bridge was evicted for holding producers "
	       "back; it skipped %llu records (counted in lost)",
	       c->name, (unsigned long long)(st.cursor - c->committed));
	br_count(&b->n.lost, st.cursor - c->committed);
	c->floor = c->next = c->committed = st.cursor;
	c->rewind_to = BR_NO_REWIND;
	memset(c->acked, 0, c->window);
	return reopen_spy(c);
}

/* Move floor over acknowledged records, then the durable cursor to it. */
static int advance(struct shmbus_bridge *b, struct br_chan *c)
{
	while (c->floor != c->next && c->acked[c->floor & (c->window - 1)]) {
		c->acked[c->floor & (c->window - 1)] = 0;
		c->floor++;
	}
	while (c->committed != c->floor) {
		uint64_t want = c->floor - c->committed;
		int n = shmbus_poll(c->sub, want > 65536 ? 65536 : (uint32_t)want);
		if (n == SHMBUS_ELAPPED)
			return after_eviction(b, c);
		if (n < 0)
			return br_seterr(n, "channel '%s': poll: %s", c->name,
					 shmbus_strerror(n));
		shmbus_sub_stats_t st;
		shmbus_sub_get_stats(c->sub, &st);
		if (st.cursor == c->committed)
			break; /* nothing moved: try again next round */
		c->committed = st.cursor;
	}
	return 0;
}

/* Once nothing is in flight, start again from the lowest failure. */
static int rewind_chan(struct shmbus_bridge *b, struct br_chan *c)
{
	uint64_t again = c->next - c->rewind_to;
	br_count(&b->n.rewinds, 1);
	br_count(&b->n.resent, again);
	for (uint64_t s = c->rewind_to; s != c->next; s++)
		c->acked[s & (c->window - 1)] = 0;
	c->next = c->rewind_to;
	c->rewind_to = BR_NO_REWIND;
	return reopen_spy(c);
}

/* A gap in what the spy returns: records gone before it read them
 * (overwrite channels). Taken once nothing is in flight below it. */
static bool take_gap(struct shmbus_bridge *b, struct br_chan *c,
		     uint64_t seq)
{
	if (c->in_flight || c->floor != c->next)
		return false;
	br_count(&b->n.lost, seq - c->next);
	c->floor = c->next = seq;
	return true;
}

/* Encode (the codec hook, or raw) and hand one record to the remote. */
static int send_one(struct shmbus_bridge *b, struct br_chan *c,
		    const shmbus_record_t *r)
{
	const void *val = r->data;
	size_t len = r->len;
	if (b->cfg.codec.encode) {
		int rc = b->cfg.codec.encode(b->cfg.codec.ctx, c->name, r,
					     b->enc_buf, b->enc_cap, &val,
					     &len);
		if (rc) {
			const shmbus_bridge_codec_t *k = &b->cfg.codec;
			const char *e = k->error ? k->error(k->ctx) : NULL;
			br_rejected(b,
				    "channel '%s' seq %llu: the codec refused "
				    "the record (%s)",
				    c->name, (unsigned long long)r->seq,
				    e && *e ? e : shmbus_strerror(rc));
			c->acked[r->seq & (c->window - 1)] = 1;
			return 0;
		}
	}
	c->in_flight++;
	br_count(&b->n.sent, 1);
	return b->remote->send(b, c, r, val, len);
}

/* Read ahead with the spy and send, up to the window. */
static int read_chan(struct shmbus_bridge *b, struct br_chan *c, int *moved)
{
	while (c->next - c->floor < c->window && !br_stopping(b)) {
		if (!c->held) {
			uint64_t missed = 0;
			int rc = shmbus_spy_next(c->spy, &c->rec, c->buf,
						 c->record_size, &missed);
			if (rc == SHMBUS_EAGAIN)
				break;
			if (rc == SHMBUS_ELAPPED)
				continue; /* the gap shows at the next seq */
			if (rc)
				return br_seterr(rc, "channel '%s': read: %s",
						 c->name, shmbus_strerror(rc));
			if ((int64_t)(c->rec.seq - c->next) < 0)
				continue; /* below the cursor, or a rewind */
			c->held = true;
		}
		if (c->rec.seq != c->next && !take_gap(b, c, c->rec.seq))
			break; /* the gap waits for what is in flight */
		c->held = false;
		c->next = c->rec.seq + 1;
		br_count(&b->n.read, 1);
		if (c->rec.flags & SHMBUS_REC_TOMBSTONE) {
			/* a hole of a dead producer: nothing to send */
			c->acked[c->rec.seq & (c->window - 1)] = 1;
			continue;
		}
		int rc = send_one(b, c, &c->rec);
		if (rc < 0)
			return rc;
		(*moved)++;
	}
	return 0;
}

/* Rewinds that are due, the durable cursor, the in-flight gauge. */
static int settle(struct shmbus_bridge *b)
{
	uint64_t in_flight = 0;
	for (uint32_t i = 0; i < b->n_chan; i++) {
		struct br_chan *c = &b->chans[i];
		int rc = advance(b, c);
		if (rc == 0 && c->rewind_to != BR_NO_REWIND &&
		    c->in_flight == 0)
			rc = rewind_chan(b, c);
		if (rc)
			return rc;
		in_flight += c->in_flight;
	}
	atomic_store_explicit(&b->n.in_flight, in_flight,
			      memory_order_relaxed);
	return 0;
}

/* Nothing to send and nothing in flight: sleep until a record comes. A
 * single channel sleeps on its futex; several take turns in short
 * waits (a poller would dispatch, and so move the cursors). */
static void idle_wait(struct shmbus_bridge *b, uint32_t timeout_ms)
{
	static _Thread_local uint32_t turn;
	if (b->n_chan == 1) {
		shmbus_sub_wait(b->chans[0].sub, timeout_ms * 1000000ull);
		return;
	}
	struct br_chan *c = &b->chans[turn++ % b->n_chan];
	shmbus_sub_wait(c->sub, 1000000ull);
}

static bool any_rewind(struct shmbus_bridge *b)
{
	for (uint32_t i = 0; i < b->n_chan; i++)
		if (b->chans[i].rewind_to != BR_NO_REWIND)
			return true;
	return false;
}

int br_out_step(struct shmbus_bridge *b, uint32_t timeout_ms)
{
	int moved = 0, rc = 0;
	/* after a failure, nothing new is sent until the back-off passed
	 * and the failed records can go again in order */
	bool may_send = !br_paused(b) && !any_rewind(b) && b->remote->ready(b);
	for (uint32_t i = 0; may_send && i < b->n_chan && rc == 0; i++)
		rc = read_chan(b, &b->chans[i], &moved);
	if (rc)
		return rc;
	uint64_t in_flight = 0;
	for (uint32_t i = 0; i < b->n_chan; i++)
		in_flight += b->chans[i].in_flight;
	if (in_flight) {
		rc = b->remote->service(b, moved ? 0 : timeout_ms);
		if (rc < 0)
			return rc;
	}
	if ((rc = settle(b)) != 0)
		return rc;
	if (moved == 0 && in_flight == 0) {
		br_refresh_lag(b, true);
		if (br_paused(b) || !may_send)
			br_sleep_ms(timeout_ms < 10 ? timeout_ms : 10);
		else
			idle_wait(b, timeout_ms);
	}
	return moved;
}
