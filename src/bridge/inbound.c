/*
 * Inbound (from-kafka, from-redis): remote records published into
 * channels. The remote is told a record is done (offset commit, XACK)
 * only after shmbus accepted it, so a crash between the two delivers it
 * again: at-least-once. A full ring (slow subscribers on a back-pressure
 * channel) makes the bridge wait, with back-off, and the remote keeps
 * the records meanwhile.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

int br_in_open(struct shmbus_bridge *b, struct br_chan *c)
{
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BACKOFF};
	int rc = shmbus_producer_open(c->ch, &po, &c->prod);
	if (rc)
		return br_seterr(rc, "producer on channel '%s': %s%s", c->name,
				 shmbus_errmsg(),
				 rc == SHMBUS_EBUSY
					 ? " (a single-producer channel has "
					   "one producer: create it with "
					   "SHMBUS_CH_MULTI_PRODUCER to share "
					   "it with the bridge)"
					 : "");
	(void)b;
	shmbus_field_info_t f;
	c->has_schema = shmbus_channel_fields(c->ch, &f, 1) > 0;
	return 0;
}

struct br_chan *br_chan_by_target(struct shmbus_bridge *b, const char *t,
				  size_t len)
{
	for (uint32_t i = 0; i < b->n_chan; i++)
		if (strlen(b->chans[i].target) == len &&
		    memcmp(b->chans[i].target, t, len) == 0)
			return &b->chans[i];
	return NULL;
}

/* The payload: the codec's, or the raw bytes if they fit (a whole record
 * on a channel with a schema: anything else would not decode there).
 * Else why not, in why. */
static int decode(struct shmbus_bridge *b, struct br_chan *c, const void *val,
		  size_t len, const void **out, uint32_t *out_len, char *why,
		  size_t wn)
{
	const shmbus_bridge_codec_t *k = &b->cfg.codec;
	if (k->decode) {
		int rc = k->decode(k->ctx, c->name, val, len, c->buf,
				   c->record_size, out_len);
		*out = c->buf;
		if (rc == 0 && *out_len > c->record_size)
			rc = SHMBUS_EINVAL;
		const char *e = rc && k->error ? k->error(k->ctx) : NULL;
		snprintf(why, wn, "%s", e && *e ? e : "the codec refused it");
		return rc;
	}
	if (len > c->record_size) {
		snprintf(why, wn, "a value of %zu bytes does not fit its "
				  "records of %u bytes", len, c->record_size);
		return SHMBUS_EINVAL;
	}
	if (c->has_schema && len != c->record_size) {
		snprintf(why, wn, "a value of %zu bytes is not one of its "
				  "records of %u bytes (it has a schema: a raw "
				  "value is a whole record)", len,
			 c->record_size);
		return SHMBUS_EINVAL;
	}
	*out = val;
	*out_len = (uint32_t)len;
	return 0;
}

int br_in_publish(struct shmbus_bridge *b, struct br_chan *c, const void *val,
		  size_t len, uint64_t key)
{
	const void *p;
	uint32_t n;
	char why[256];
	br_count(&b->n.read, 1);
	if (decode(b, c, val, len, &p, &n, why, sizeof(why)) != 0) {
		br_rejected(b, "%s -> channel '%s': %s", c->target, c->name,
			    why);
		return 1;
	}
	uint32_t sleep_us = 50;
	bool waited = false;
	for (;;) {
		int rc = shmbus_try_publish(c->prod, p, n, key);
		if (rc == 0)
			break;
		if (rc != SHMBUS_EAGAIN)
			return br_seterr(rc, "publish into '%s': %s", c->name,
					 shmbus_errmsg());
		if (!waited)
			br_count(&b->n.bus_waits, 1);
		waited = true;
		/* the ring is full: its slowest subscriber holds producers
		 * back; the remote keeps the record until we can take it */
		if (br_stopping(b))
			return SHMBUS_ECLOSED;
		struct timespec ts = {0, (long)sleep_us * 1000};
		nanosleep(&ts, NULL);
		if (sleep_us < 10000)
			sleep_us *= 2;
	}
	br_count(&b->n.sent, 1);
	return 0;
}
