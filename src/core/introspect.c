/*
 * Introspection for tools: lock-free reads of the counters that producers
 * and subscribers keep on their own lines, and of the tables. Nothing here
 * writes shared memory; every index read from it is bounded first.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "internal.h"

int shmbus_bus_channels(shmbus_t *bus, shmbus_channel_info_t *out,
			uint32_t max)
{
	if (bus == NULL || (out == NULL && max))
		return shmbus_seterr(SHMBUS_EINVAL, "bus or out NULL");
	uint32_t n = 0;
	for (uint32_t i = 0; i < bus->max_channels && n < max; i++) {
		const struct sb_channel_entry *e = &bus->chtab[i];
		/* acquire: pairs with the release in publish_row */
		if (atomic_load_explicit(&e->state, memory_order_acquire) !=
		    CHENT_READY)
			continue;
		shmbus_channel_info_t *c = &out[n++];
		memset(c, 0, sizeof(*c));
		memcpy(c->name, e->name, sizeof(c->name) - 1);
		c->id = i;
		c->record_size = e->record_size;
		c->capacity = e->capacity;
		c->flags = e->flags;
		c->stall_policy = e->stall_policy;
		c->layout_hash = e->layout_hash;
	}
	return (int)n;
}

/* The sample below which a fraction q of the histogram lies. */
static uint64_t percentile(const uint64_t *h, uint64_t total, double q)
{
	uint64_t want = (uint64_t)((double)total * q), seen = 0;
	for (uint32_t b = 0; b < SHMBUS_LAT_BUCKETS; b++) {
		seen += h[b];
		if (seen > want)
			return lat_bucket_floor(b);
	}
	return lat_bucket_floor(SHMBUS_LAT_BUCKETS - 1);
}

static void latency(const struct ch_sub_stats *st, shmbus_sub_info_t *in)
{
	uint64_t h[SHMBUS_LAT_BUCKETS], total = 0;
	for (uint32_t b = 0; b < SHMBUS_LAT_BUCKETS; b++) {
		/* relaxed: statistics */
		h[b] = atomic_load_explicit(&st->lat[b], memory_order_relaxed);
		total += h[b];
		if (h[b])
			in->lat_max = lat_bucket_floor(b);
	}
	in->lat_count = total;
	if (total == 0)
		return;
	/* lat_le: bound i is 2^(4+2i), the floor of bucket 4+8i, so the
	 * samples below it are those of the buckets before that one */
	uint64_t below = 0;
	uint32_t b = 0;
	for (uint32_t i = 0; i < SHMBUS_LAT_LE_N; i++) {
		for (; b < 4 + 8 * i; b++)
			below += h[b];
		in->lat_le[i] = below;
	}
	for (b = 0; b + 1 < SHMBUS_LAT_BUCKETS; b++)
		in->lat_sum_ns += h[b] * ((lat_bucket_floor(b) +
					   lat_bucket_floor(b + 1)) / 2);
	in->lat_sum_ns += h[b] * lat_bucket_floor(b);
	in->lat_p50 = percentile(h, total, 0.50);
	in->lat_p99 = percentile(h, total, 0.99);
	in->lat_p999 = percentile(h, total, 0.999);
}

/* Live holders of row i: 1/0 for a broadcast name, members for a group. */
static uint32_t live_holders(shmbus_channel_t *ch, uint32_t i, uint32_t group)
{
	if (group == 0)
		return bit_get(ch->held_subs, i) ||
		       shm_byte_held(ch->map.fd, SUBLOCK_BASE + (off_t)i) == 1;
	uint32_t g = group - 1, n = 0;
	if (g >= ch->max_groups)
		return 0;
	for (uint32_t m = 0; m < SHMBUS_MAX_MEMBERS; m++) {
		off_t byte = MEMBERLOCK_BASE + (off_t)g * SHMBUS_MAX_MEMBERS + m;
		/* relaxed: a hint; the lock byte decides */
		if (atomic_load_explicit(&group_at(ch, g)->members[m].state,
					 memory_order_relaxed) == PART_LIVE &&
		    (((atomic_load_explicit(&ch->held_members[g],
					    memory_order_relaxed) >>
		       m) & 1) ||
		     shm_byte_held(ch->map.fd, byte) == 1))
			n++;
	}
	return n;
}

/* Age of the record at seq if it is published, else 0. */
static uint64_t age_at(shmbus_channel_t *ch, uint64_t seq)
{
	const struct slot_header *h = slot_at(ch, seq);
	/* acquire: pairs with the producer's release of the marker */
	uint32_t m = atomic_load_explicit(&h->marker, memory_order_acquire);
	if (marker_tag(m) != marker_tag_make(lap_of(ch, seq), SLOT_COMMITTED) ||
	    ch->compact) /* no time field: payload bytes are there */
		return 0;
	uint64_t ts = __atomic_load_n(&h->timestamp, __ATOMIC_RELAXED);
	uint64_t now = bus_clock_now(&ch->bus->clock);
	return now > ts ? now - ts : 0;
}

static void sub_info(shmbus_channel_t *ch, uint32_t i, uint32_t st,
		     uint64_t claim, shmbus_sub_info_t *in)
{
	const struct ch_subscriber *e = &ch->subs[i];
	memset(in, 0, sizeof(*in));
	memcpy(in->name, e->name, sizeof(in->name) - 1);
	in->row = i;
	in->state = st;
	in->group = e->group != 0;
	in->live = live_holders(ch, i, e->group);
	/* acquire: pairs with the subscriber's release of its cursor */
	in->cursor = atomic_load_explicit(&e->cursor, memory_order_acquire);
	in->lag = (int64_t)(claim - in->cursor) > 0 ? claim - in->cursor : 0;
	if (in->lag && in->lag <= ch->capacity)
		in->lag_ns = age_at(ch, in->cursor);
	/* relaxed: statistics */
	in->delivered = atomic_load_explicit(&e->delivered,
					     memory_order_relaxed);
	in->failed = atomic_load_explicit(&e->failed, memory_order_relaxed);
	in->retried = atomic_load_explicit(&e->retried, memory_order_relaxed);
	in->dead_lettered = atomic_load_explicit(&e->dead_lettered,
						 memory_order_relaxed);
	in->lost = atomic_load_explicit(&e->lost, memory_order_relaxed);
	in->holding = e->holding != 0;
	for (uint32_t k = 0; k < ch->retry_capacity; k++)
		/* relaxed: a count for tools */
		in->retry_pending +=
			(atomic_load_explicit(&retry_at(ch, i, k)->state,
					      memory_order_relaxed) &
			 0xff) != RE_FREE;
	latency(&ch->stats[i], in);
}

int shmbus_sub_list(shmbus_channel_t *ch, shmbus_sub_info_t *out,
		    uint32_t max)
{
	if (ch == NULL || (out == NULL && max))
		return shmbus_seterr(SHMBUS_EINVAL, "channel or out NULL");
	/* acquire: pairs with producers' claim RMW / store */
	uint64_t claim = atomic_load_explicit(&ch->hdr->claim,
					      memory_order_acquire);
	uint32_t n = 0;
	for (uint32_t i = 0; i < ch->max_subs && n < max; i++) {
		/* acquire: pairs with the release of the row's state */
		uint32_t st = atomic_load_explicit(&ch->subs[i].state,
						   memory_order_acquire);
		if (st != SUB_FREE)
			sub_info(ch, i, st, claim, &out[n++]);
	}
	return (int)n;
}

int shmbus_producer_list(shmbus_channel_t *ch, shmbus_producer_info_t *out,
			 uint32_t max)
{
	if (ch == NULL || (out == NULL && max))
		return shmbus_seterr(SHMBUS_EINVAL, "channel or out NULL");
	shmbus_t *bus = ch->bus;
	uint32_t n = 0;
	for (uint32_t id = 1; id < bus->max_participants && n < max; id++) {
		const struct sb_participant *p = &bus->parts[id];
		/* acquire: pairs with the release in bus_participant_take */
		if (atomic_load_explicit(&p->state, memory_order_acquire) !=
			    PART_LIVE ||
		    p->kind != PART_PRODUCER || p->channel_id != ch->id ||
		    bus_participant_dead(bus, id))
			continue;
		shmbus_producer_info_t *o = &out[n++];
		o->participant = id;
		o->pid = p->pid;
		/* relaxed: statistics */
		o->published = atomic_load_explicit(&p->published,
						    memory_order_relaxed);
		o->waits = atomic_load_explicit(&p->waits,
						memory_order_relaxed);
	}
	return (int)n;
}

int32_t sub_holder_pid(shmbus_channel_t *ch, uint32_t row)
{
	shmbus_t *bus = ch->bus;
	const struct ch_subscriber *e = &ch->subs[row];
	uint32_t id = e->participant; /* the last holder's, bounded below */
	if (id == 0 || id >= bus->max_participants)
		return 0;
	const struct sb_participant *p = &bus->parts[id];
	/* acquire: pairs with the release in bus_participant_take */
	if (atomic_load_explicit(&p->state, memory_order_acquire) !=
		    PART_LIVE ||
	    p->kind != PART_SUBSCRIBER || p->channel_id != ch->id ||
	    strncmp(p->name, e->name, sizeof(p->name)) != 0 ||
	    bus_participant_dead(bus, id))
		return 0;
	return p->pid;
}

void channel_gate_describe(shmbus_channel_t *ch, char *buf, size_t n)
{
	/* acquire: pairs with producers' claim RMW / store */
	uint64_t claim = atomic_load_explicit(&ch->hdr->claim,
					      memory_order_acquire);
	uint64_t low = 0;
	int row = -1;
	for (uint32_t i = 0; i < ch->max_subs; i++) {
		/* acquire: pairs with the release of the row's state */
		uint32_t st = atomic_load_explicit(&ch->subs[i].state,
						   memory_order_acquire);
		if (st != SUB_JOINING && st != SUB_ACTIVE)
			continue;
		/* acquire: pairs with the subscriber's release of its cursor */
		uint64_t c = atomic_load_explicit(&ch->subs[i].cursor,
						  memory_order_acquire);
		if (row < 0 || (int64_t)(c - low) < 0) {
			row = (int)i;
			low = c;
		}
	}
	if (row < 0) {
		snprintf(buf, n, "no subscriber holds it back now");
		return;
	}
	const struct ch_subscriber *e = &ch->subs[row];
	char name[SHMBUS_NAME_MAX + 1];
	memcpy(name, e->name, sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	bool group = e->group != 0;
	uint64_t lag = (int64_t)(claim - low) > 0 ? claim - low : 0;
	int at = snprintf(buf, n, "%s '%s' (%s %llu, %llu records behind%s) ",
			  group ? "group" : "subscriber", name,
			  group ? "floor" : "cursor", (unsigned long long)low,
			  (unsigned long long)lag,
			  lag >= ch->capacity ? ": a full ring" : "");
	if (at < 0 || (size_t)at >= n)
		return;
	uint32_t live = live_holders(ch, (uint32_t)row, e->group);
	int32_t pid = group ? 0 : sub_holder_pid(ch, (uint32_t)row);
	if (group && live)
		snprintf(buf + at, n - (size_t)at,
			 "has %u live member%s, which do not keep up", live,
			 live == 1 ? "" : "s");
	else if (live && pid > 0)
		snprintf(buf + at, n - (size_t)at,
			 "is held by a live process (pid %d, a hint), which "
			 "does not keep up",
			 (int)pid);
	else if (live)
		snprintf(buf + at, n - (size_t)at,
			 "is held by a live process, which does not keep up");
	else
		snprintf(buf + at, n - (size_t)at,
			 "has no live %s: an abandoned name (`shmbus "
			 "unsubscribe %s %s %s` removes it%s)",
			 group ? "member" : "process holding it",
			 ch->bus->name, ch->name, name,
			 group ? "" : "; a ttl_ms lets such names expire");
}
