/*
 * Process-local handles. Each holds validated copies of the shared
 * configuration it uses (threat model: a shared field is read once, checked,
 * then only the local copy is used).
 */
#ifndef SHMBUS_INTERNAL_H
#define SHMBUS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "layout.h"
#include "shm.h"
#include "shmbus/shmbus.h"

struct shmbus {
	struct shm_map map;
	struct sb_superblock *sb;
	struct sb_channel_entry *chtab;
	struct sb_participant *parts;
	uint8_t *pollers; /* SHMBUS_MAX_POLLERS rows of poller_size bytes */
	uint32_t poller_size;
	uint64_t held_pollers; /* poller bytes this handle's fd holds */
	uint32_t max_channels;
	uint32_t max_participants;
	uint64_t epoch;
	struct bus_clock clock; /* validated copy of the superblock's */
	uint32_t open_flags;
	uint32_t mode;
	uint32_t timeout_ms;
	int numa_node; /* -1: none */
	char name[SHMBUS_NAME_BYTES];
	uint8_t *held_parts; /* participant bytes this handle's fd holds */
	struct registry *registry; /* process-local handlers */
	shmbus_channel_t *channels;
	/* Closing a parent closes its children without naming their modules
	 * (a layer calls only downward): each kind installs its close when
	 * its first child opens. */
	void (*close_channel)(shmbus_channel_t *ch);
};

struct shmbus_channel {
	shmbus_t *bus;
	shmbus_channel_t *next; /* in bus->channels */
	struct shm_map map;
	struct ch_header *hdr;
	struct ch_subscriber *subs;
	uint8_t *slots;
	uint8_t *slots_end; /* slots + capacity * slot_size */
	/* what a claim's slots base is (shmbus_claim_at adds the full
	 * header): slots, or 24 bytes before them on a compact channel,
	 * still inside the mapping */
	uint8_t *claim_base;
	uint32_t id;
	uint32_t record_size;
	uint32_t slot_size;
	/* bytes before a payload: 32, or 8 (compact); kept, not derived
	 * from flags: the evict and spy paths read it per record */
	uint32_t slot_hdr;
	bool compact;	   /* SHMBUS_CH_COMPACT: no time, key or origin */
	uint32_t capacity;
	uint32_t log2;
	uint32_t mask;
	uint32_t flags;
	uint32_t stall_policy;
	uint32_t max_subs;
	uint32_t max_groups;
	uint32_t group_size;
	uint8_t *groups;
	uint8_t *retry; /* retry segments, one per subscriber row */
	uint32_t retry_capacity;
	uint32_t retry_entry_size;
	struct ch_dlq *dlq;
	uint32_t dlq_capacity;
	uint32_t dlq_entry_size;
	uint32_t dlq_policy;
	struct ch_sub_stats *stats; /* one per subscriber row */
	struct ch_schema *schema;
	uint64_t layout_hash;
	char name[SHMBUS_NAME_BYTES];
	bool lease_held;
	uint8_t *held_subs; /* subscriber bytes this handle's fd holds */
	/* group member bytes this handle's fd holds, a word per group: read
	 * by members of other threads (the kernel cannot tell them apart) */
	_Atomic uint64_t *held_members;
	shmbus_producer_t *producers;
	shmbus_sub_t *subscribers;
	/* installed by producer.c and subscriber.c (see close_channel) */
	void (*close_producers)(shmbus_channel_t *ch);
	void (*close_subscribers)(shmbus_channel_t *ch);
};

static inline struct slot_header *slot_at(const shmbus_channel_t *ch,
					  uint64_t seq)
{
	return (struct slot_header *)(ch->slots + (size_t)(seq & ch->mask) *
							  ch->slot_size);
}

static inline struct retry_entry *retry_at(const shmbus_channel_t *ch,
					  uint32_t row, uint32_t i)
{
	return (struct retry_entry *)(ch->retry +
				      ((size_t)row * ch->retry_capacity + i) *
					      ch->retry_entry_size);
}

static inline struct dlq_entry *dlq_at(const shmbus_channel_t *ch,
				       uint64_t id)
{
	return (struct dlq_entry *)((uint8_t *)(ch->dlq + 1) +
				    (size_t)(id & (ch->dlq_capacity - 1)) *
					    ch->dlq_entry_size);
}

/* The payload of a slot: right after its header (32 or 8 bytes). */
static inline uint8_t *slot_payload(const shmbus_channel_t *ch,
				    const struct slot_header *h)
{
	return (uint8_t *)h + ch->slot_hdr;
}

/* A slot's header read while its producer may be rewriting it (overwrite
 * readers, spies): relaxed loads, the caller validates afterwards. A
 * compact slot has no time, key or origin (they read as 0). */
struct slot_snapshot {
	uint32_t len_flags, len; /* len clamped to the record size */
	uint64_t timestamp, key, origin;
};
static inline void slot_snapshot(const shmbus_channel_t *ch,
				 const struct slot_header *h,
				 struct slot_snapshot *o)
{
	o->len_flags = __atomic_load_n(&h->len_flags, __ATOMIC_RELAXED);
	if (ch->compact) {
		o->timestamp = o->key = o->origin = 0;
	} else {
		o->timestamp = __atomic_load_n(&h->timestamp,
					       __ATOMIC_RELAXED);
		o->key = __atomic_load_n(&h->key, __ATOMIC_RELAXED);
		o->origin = __atomic_load_n(&h->origin, __ATOMIC_RELAXED);
	}
	o->len = o->len_flags & SLOT_LEN_MASK;
	if (o->len > ch->record_size)
		o->len = ch->record_size;
}

static inline struct sb_poller *poller_row(const shmbus_t *bus, uint32_t i)
{
	return (struct sb_poller *)(bus->pollers + (size_t)i * bus->poller_size);
}

static inline struct ch_group *group_at(const shmbus_channel_t *ch,
				       uint32_t g)
{
	return (struct ch_group *)(ch->groups + (size_t)g * ch->group_size);
}

static inline uint64_t lap_of(const shmbus_channel_t *ch, uint64_t seq)
{
	return seq >> ch->log2;
}

/* bus.c: participants (kernel-locked ids), control-path lock */
int bus_lock(shmbus_t *bus);
void bus_unlock(shmbus_t *bus);
int bus_participant_take(shmbus_t *bus, uint32_t kind, uint32_t channel_id,
			 const char *name, uint32_t *id);
void bus_participant_release(shmbus_t *bus, uint32_t id);
/* Is participant `id` dead? Its kernel lock on the bus object is gone
 * (ids of this handle are alive; id 0 and ids out of range never die). */
bool bus_participant_dead(shmbus_t *bus, uint32_t id);

/* subscriber.c: under the bus lock, the row named `name`, or -1 */
/* channel.c, under the bus lock: the subscriber row named `name` (any
 * state but FREE), or -1; channel_find_row also gives the first free row
 * (or -1) in *free_row. */
int channel_find_row(shmbus_channel_t *ch, const char *name, int *free_row);
int sub_find_row(shmbus_channel_t *ch, const char *name);

/* channel.c */
uint64_t channel_min_gating(shmbus_channel_t *ch, uint64_t upto);

/* introspect.c: who holds producers back, for errors. The pid of a live
 * holder of subscriber row `row`, a hint (0: none known); and a sentence
 * on the gating row with the lowest cursor: its kind, name, cursor, lag,
 * and whether a live process holds it (with what to do if none does). */
int32_t sub_holder_pid(shmbus_channel_t *ch, uint32_t row);
void channel_gate_describe(shmbus_channel_t *ch, char *buf, size_t n);

/* poller.c: after a commit on a channel that pollers watch */
void poller_notify(shmbus_channel_t *ch, uint64_t mask);
void poller_forget(shmbus_poller_t *pl, shmbus_sub_t *s);
/* subscriber.c, for poller.c: 0, or -1 if already in another poller */
shmbus_channel_t *sub_channel(const shmbus_sub_t *s);
/* A subscriber joins poller pl (NULL: leaves it); forget is what its close
 * calls to take it out of pl (installed by the poller: subscriber.c
 * names nothing of poller.c). */
int sub_attach_poller(shmbus_sub_t *s, shmbus_poller_t *pl,
		      void (*forget)(shmbus_poller_t *, shmbus_sub_t *));

/* producer.c / subscriber.c: close-all from channel close */

/* Bitmaps of locally held lock bytes. */
static inline bool bit_get(const uint8_t *b, uint32_t i)
{
	return (b[i >> 3] >> (i & 7)) & 1;
}
static inline void bit_set(uint8_t *b, uint32_t i, bool v)
{
	if (v)
		b[i >> 3] |= (uint8_t)(1u << (i & 7));
	else
		b[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

#endif /* SHMBUS_INTERNAL_H */
