/*
 * Spies: readers that never gate producers (shmbus tail). A spy has no
 * subscriber row, so nothing protects the slot it reads: it copies the
 * record out and then checks, after an acquire fence, that the claim
 * sequence has not come a full ring past it (every producer fences its
 * claim store before its slot writes, producer.c). A copy that fails the
 * check may be torn and is thrown away, counted as missed.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "copy.h"
#include "error.h"
#include "internal.h"

struct shmbus_spy {
	shmbus_channel_t *ch;
	uint64_t next;
};

int shmbus_spy_open(shmbus_channel_t *ch, int from_start, shmbus_spy_t **out)
{
	if (ch == NULL || out == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "channel or out NULL");
	shmbus_spy_t *sp = calloc(1, sizeof(*sp));
	if (sp == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "spy");
	sp->ch = ch;
	/* acquire: pairs with the producers' claim stores and RMWs */
	uint64_t c = atomic_load_explicit(&ch->hdr->claim,
					  memory_order_acquire);
	sp->next = c;
	if (from_start)
		sp->next = c > ch->capacity ? c - ch->capacity : 0;
	*out = sp;
	return 0;
}

void shmbus_spy_close(shmbus_spy_t *sp)
{
	free(sp);
}

/* Lapped: skip to the oldest record that can be intact. The claim never
 * falls behind what the spy read, and 2^63 records ahead is 292 years at
 * a billion a second: a claim that far (a negative distance) is no lap
 * but a corrupt header, and moving on by one a call would never end. */
static int lapped(shmbus_spy_t *sp, shmbus_channel_t *ch, uint64_t *missed)
{
	/* relaxed: after the caller's acquire (fence or marker) */
	uint64_t c = atomic_load_explicit(&ch->hdr->claim,
					  memory_order_relaxed);
	if ((int64_t)(c - sp->next) < 0)
		return shmbus_seterr(
			SHMBUS_ECORRUPT,
			"channel '%s' of bus '%s': its claim sequence %llu is "
			"behind the next record to read (%llu) or 2^63 or "
			"more ahead of it, where no lap reaches: the channel "
			"header is corrupt (written by something other than "
			"shmbus); stop its processes and recreate the bus "
			"(`shmbus destroy %s`)",
			ch->name, ch->bus->name, (unsigned long long)c,
			(unsigned long long)sp->next, ch->bus->name);
	uint64_t to = c - ch->capacity;
	if ((int64_t)(to - sp->next) <= 0)
		to = sp->next + 1; /* a waiting claim: at least move on */
	if (missed)
		*missed += to - sp->next;
	sp->next = to;
	return SHMBUS_ELAPPED;
}

/* Does marker m show the slot of seq taken for a later lap? On a
 * multi-producer channel the claim may run ahead while producers wait for
 * space, so the marker's own lap decides -- but it has 16 bits: a spy
 * 65,536 laps behind would take a later lap for its own. No waiting
 * producers put the claim that far ahead (each waits with at most a ring),
 * so beyond that the claim decides. Elsewhere the claim always does. */
static bool later_lap(shmbus_channel_t *ch, uint64_t seq, uint32_t m)
{
	/* relaxed: if the slot is a lap ahead, so is the claim */
	uint64_t ahead = atomic_load_explicit(&ch->hdr->claim,
					      memory_order_relaxed) -
			 seq;
	if (!(ch->flags & SHMBUS_CH_MULTI_PRODUCER))
		return ahead > ch->capacity;
	if (ahead > (uint64_t)ch->capacity * (ch->bus->max_participants + 1))
		return true;
	uint32_t d = ((m >> 16) - (uint32_t)lap_of(ch, seq)) & 0xffffu;
	return d != 0 && d < 0x8000u;
}

/* After the copy: was the slot of seq (marker m when we began) rewritten? */
static bool rewritten(shmbus_channel_t *ch, uint64_t seq,
		      struct slot_header *h, uint32_t m)
{
	/* relaxed: ordered by the caller's acquire fence */
	if ((ch->flags & SHMBUS_CH_MULTI_PRODUCER) &&
	    atomic_load_explicit(&h->marker, memory_order_relaxed) != m)
		return true;
	return later_lap(ch, seq, m);
}

int shmbus_spy_next(shmbus_spy_t *sp, shmbus_record_t *rec, void *buf,
		    uint32_t buflen, uint64_t *missed)
{
	if (sp == NULL || rec == NULL || buf == NULL ||
	    buflen < sp->ch->record_size)
		return SHMBUS_EINVAL;
	shmbus_channel_t *ch = sp->ch;
	uint64_t seq = sp->next, lap = lap_of(ch, seq);
	struct slot_header *h = slot_at(ch, seq);
	/* acquire: pairs with the producer's release store at commit */
	uint32_t m = atomic_load_explicit(&h->marker, memory_order_acquire);
	uint32_t tag = marker_tag(m);
	bool tomb = tag == marker_tag_make(lap, SLOT_TOMBSTONE);
	if (tag != marker_tag_make(lap, SLOT_COMMITTED) && !tomb)
		return later_lap(ch, seq, m) ? lapped(sp, ch, missed)
					     : SHMBUS_EAGAIN;
	struct slot_snapshot sn;
	slot_snapshot(ch, h, &sn);
	if (!tomb)
		copy_out_relaxed(buf, slot_payload(ch, h), sn.len);
	/* acquire: pairs with the producer's release fence after its claim
	 * (and, multi-producer, its CLAIMED markers): a word copied from a
	 * later lap means the loads below show that lap */
	atomic_thread_fence(memory_order_acquire);
	if (rewritten(ch, seq, h, m))
		return lapped(sp, ch, missed);
	rec->data = buf;
	rec->len = tomb ? 0 : sn.len;
	rec->flags = tomb ? SHMBUS_REC_TOMBSTONE : sn.len_flags >> 24;
	rec->seq = seq;
	rec->timestamp = sn.timestamp;
	rec->key = sn.key;
	rec->origin = sn.origin ? sn.origin - 1 : seq;
	rec->channel_id = ch->id;
	rec->producer = m & MARKER_PART_MASK;
	rec->attempt = 1;
	rec->reserved = 0;
	sp->next = seq + 1;
	return 0;
}
