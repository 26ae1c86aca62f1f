/*
 * Channels: one shared-memory object per event type, holding its header,
 * hot sequence lines, the subscriber table and the slots.
 *
 * A channel is created under the bus's control-path lock: the creator builds
 * the channel object and release-publishes it, then release-publishes the
 * bus's channel-table row. A row in state READY therefore always names a
 * complete channel object of this bus epoch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "error.h"
#include "internal.h"
#include "wait.h"

#define DEFAULT_MAX_SUBSCRIBERS 32u
#define DEFAULT_MAX_GROUPS 2u
#define MAX_GROUPS_LIMIT 64u
#define MAX_SUBSCRIBERS_LIMIT 4096u
#define MAX_CAPACITY (1u << 30)

static size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

static uint32_t log2_u32(uint32_t v)
{
	return 31u - (uint32_t)__builtin_clz(v);
}

static uint32_t slot_size_for(uint32_t record_size)
{
	return (uint32_t)round_up(sizeof(struct slot_header) + record_size, 8);
}

static size_t group_size_for(uint32_t capacity)
{
	return round_up(sizeof(struct ch_group) + (size_t)capacity * 8,
			SHMBUS_CACHELINE);
}

struct ch_geometry {
	uint64_t subs_off, groups_off, slots_off, total;
};

static struct ch_geometry channel_geometry(uint32_t capacity,
					   uint32_t slot_size,
					   uint32_t max_subs,
					   uint32_t max_groups)
{
	struct ch_geometry g;
	g.subs_off = sizeof(struct ch_header);
	g.groups_off =
		g.subs_off + (size_t)max_subs * sizeof(struct ch_subscriber);
	g.slots_off = round_up(g.groups_off + (size_t)max_groups *
						      group_size_for(capacity),
			       4096);
	g.total = round_up(g.slots_off + (size_t)capacity * slot_size, 4096);
	return g;
}

static int check_opts(const char *name, const shmbus_channel_opts_t *o)
{
	if (o->record_size == 0 || o->record_size > SLOT_MAX_RECORD)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': record_size %u must be in "
				     "1..%u",
				     name, o->record_size, SLOT_MAX_RECORD);
	if (o->capacity < 2 || o->capacity > MAX_CAPACITY ||
	    (o->capacity & (o->capacity - 1)) != 0)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': capacity %u must be a "
				     "power of two in 2..%u",
				     name, o->capacity, MAX_CAPACITY);
	if (o->flags & ~(uint32_t)(SHMBUS_CH_MULTI_PRODUCER |
				   SHMBUS_CH_OVERWRITE))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': unknown flags 0x%x", name,
				     o->flags);
	if ((o->flags & SHMBUS_CH_OVERWRITE) &&
	    (o->flags & SHMBUS_CH_MULTI_PRODUCER))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': overwrite channels are "
				     "single-producer",
				     name);
	if (o->stall_policy > SHMBUS_STALL_SPILL)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': unknown stall policy %u",
				     name, o->stall_policy);
	if (o->stall_policy == SHMBUS_STALL_SPILL)
		return shmbus_seterr(SHMBUS_ENOTSUP,
				     "channel '%s': stall policy spill needs "
				     "the journal, which this build does not "
				     "have yet",
				     name);
	if (o->max_subscribers > MAX_SUBSCRIBERS_LIMIT)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': max_subscribers %u above "
				     "%u",
				     name, o->max_subscribers,
				     MAX_SUBSCRIBERS_LIMIT);
	if (o->max_groups > MAX_GROUPS_LIMIT)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': max_groups %u above %u",
				     name, o->max_groups, MAX_GROUPS_LIMIT);
	return 0;
}

static void build(struct ch_header *h, const struct ch_geometry *geo,
		  const shmbus_t *bus, uint32_t id, const char *name,
		  const shmbus_channel_opts_t *o, uint32_t max_subs,
		  uint32_t max_groups)
{
	h->magic = CH_MAGIC;
	h->abi_version = SHMBUS_ABI_VERSION;
	h->header_size = sizeof(*h);
	h->subscriber_size = sizeof(struct ch_subscriber);
	h->slot_header_size = sizeof(struct slot_header);
	h->cacheline = SHMBUS_CACHELINE;
	h->bus_epoch = bus->epoch;
	h->channel_id = id;
	h->record_size = o->record_size;
	h->slot_size = slot_size_for(o->record_size);
	h->capacity = o->capacity;
	h->capacity_log2 = log2_u32(o->capacity);
	h->flags = o->flags;
	h->stall_policy = o->stall_policy;
	h->max_subscribers = max_subs;
	h->layout_hash = o->layout_hash;
	h->max_groups = max_groups;
	h->group_size = (uint32_t)group_size_for(o->capacity);
	h->subscribers_off = geo->subs_off;
	h->groups_off = geo->groups_off;
	h->slots_off = geo->slots_off;
	h->total_size = geo->total;
	snprintf(h->name, sizeof(h->name), "%s", name);
	ck_ec32_init(&h->data_ec, 0);
	ck_ec32_init(&h->space_ec, 0);
	/* release: the whole header before the state, for attachers */
	atomic_store_explicit(&h->state, OBJ_READY, memory_order_release);
}

/* Validate a READY channel object of `size` bytes; fill ch's local copies.
 * Each shared field is read once into a local, checked, then used. */
static int validate(shmbus_channel_t *ch, const shmbus_t *bus,
		    const char *name)
{
	const struct ch_header *h = ch->map.addr;
	size_t size = ch->map.size;
	if (size < sizeof(*h))
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "channel '%s': object is %zu bytes, "
				     "shorter than its header",
				     name, size);
	if (h->magic != CH_MAGIC)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "channel '%s': bad magic (not a shmbus "
				     "channel object)",
				     name);
	if (h->abi_version != SHMBUS_ABI_VERSION)
		return shmbus_seterr(SHMBUS_EVERSION,
				     "channel '%s' has ABI version %u, this "
				     "library speaks %u",
				     name, h->abi_version, SHMBUS_ABI_VERSION);
	if (h->header_size != sizeof(*h) ||
	    h->subscriber_size != sizeof(struct ch_subscriber) ||
	    h->slot_header_size != sizeof(struct slot_header) ||
	    h->cacheline != SHMBUS_CACHELINE)
		return shmbus_seterr(SHMBUS_EVERSION,
				     "channel '%s': structure sizes differ "
				     "from this build's",
				     name);
	if (h->bus_epoch != bus->epoch)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "channel '%s' belongs to an earlier bus "
				     "(epoch %016llx, bus is %016llx)",
				     name, (unsigned long long)h->bus_epoch,
				     (unsigned long long)bus->epoch);
	uint32_t record_size = h->record_size, slot_size = h->slot_size;
	uint32_t capacity = h->capacity, log2 = h->capacity_log2;
	uint32_t max_subs = h->max_subscribers, flags = h->flags;
	uint32_t max_groups = h->max_groups, group_size = h->group_size;
	uint64_t subs_off = h->subscribers_off, slots_off = h->slots_off;
	uint64_t groups_off = h->groups_off;
	uint64_t total = h->total_size;
	struct ch_geometry geo = channel_geometry(capacity, slot_size,
						  max_subs, max_groups);
	if (record_size == 0 || record_size > SLOT_MAX_RECORD ||
	    slot_size != slot_size_for(record_size) || capacity < 2 ||
	    capacity > MAX_CAPACITY || (capacity & (capacity - 1)) ||
	    log2 != log2_u32(capacity) || max_subs == 0 ||
	    max_subs > MAX_SUBSCRIBERS_LIMIT ||
	    (flags & ~(uint32_t)(SHMBUS_CH_MULTI_PRODUCER |
				 SHMBUS_CH_OVERWRITE)) ||
	    max_groups > MAX_GROUPS_LIMIT ||
	    group_size != group_size_for(capacity) || total != size ||
	    geo.total != size || subs_off != geo.subs_off ||
	    groups_off != geo.groups_off || slots_off != geo.slots_off)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "channel '%s': sizes or offsets in its "
				     "header do not match its %zu bytes "
				     "(truncated or corrupt)",
				     name, size);
	uint8_t *base = ch->map.addr;
	ch->hdr = ch->map.addr;
	ch->subs = (struct ch_subscriber *)(base + subs_off);
	ch->groups = base + groups_off;
	ch->max_groups = max_groups;
	ch->group_size = group_size;
	ch->slots = base + slots_off;
	ch->id = h->channel_id;
	ch->record_size = record_size;
	ch->slot_size = slot_size;
	ch->capacity = capacity;
	ch->log2 = log2;
	ch->mask = capacity - 1;
	ch->flags = flags;
	ch->stall_policy = h->stall_policy;
	ch->max_subs = max_subs;
	ch->layout_hash = h->layout_hash;
	snprintf(ch->name, sizeof(ch->name), "%s", name);
	return 0;
}

/* An attach request must match what exists, field by field. */
static int check_match(const shmbus_channel_t *ch,
		       const shmbus_channel_opts_t *o, uint32_t max_subs,
		       uint32_t max_groups)
{
	const char *what = NULL;
	unsigned long long have = 0, want = 0;
	if (o->record_size != ch->record_size)
		what = "record_size", have = ch->record_size,
		want = o->record_size;
	else if (o->layout_hash != ch->layout_hash)
		what = "layout_hash", have = ch->layout_hash,
		want = o->layout_hash;
	else if (o->capacity != ch->capacity)
		what = "capacity", have = ch->capacity, want = o->capacity;
	else if (o->flags != ch->flags)
		what = "flags", have = ch->flags, want = o->flags;
	else if (o->stall_policy != ch->stall_policy)
		what = "stall_policy", have = ch->stall_policy,
		want = o->stall_policy;
	else if (max_subs != ch->max_subs)
		what = "max_subscribers", have = ch->max_subs, want = max_subs;
	else if (max_groups != ch->max_groups)
		what = "max_groups", have = ch->max_groups, want = max_groups;
	if (what == NULL)
		return 0;
	return shmbus_seterr(SHMBUS_EEXIST,
			     "channel '%s' exists with %s %llu, this open "
			     "declares %llu",
			     ch->name, what, have, want);
}

static int attach(shmbus_channel_t *ch, shmbus_t *bus, const char *name)
{
	char obj[SHM_OBJNAME_MAX];
	shm_objname(obj, bus->name, name);
	int rc = shm_attach(obj, 0, bus->open_flags, &ch->map);
	if (rc == SHMBUS_ENOENT)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "channel '%s' is in the bus table but "
				     "its object %s is gone (removed by "
				     "hand?); `shmbus destroy %s`",
				     name, obj, bus->name);
	if (rc == SHMBUS_EAGAIN)
		rc = SHMBUS_ECORRUPT;
	if (rc)
		return rc;
	const struct ch_header *h = ch->map.addr;
	/* acquire: pairs with the creator's release store in build() */
	if (ch->map.size < sizeof(*h) ||
	    atomic_load_explicit(&h->state, memory_order_acquire) != OBJ_READY)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "channel '%s' is listed ready but its "
				     "object is not",
				     name);
	rc = validate(ch, bus, name);
	if (rc == 0)
		rc = shm_prepare(&ch->map, bus->open_flags, bus->numa_node);
	return rc;
}

static int create(shmbus_channel_t *ch, shmbus_t *bus, const char *name,
		  uint32_t id, const shmbus_channel_opts_t *o,
		  uint32_t max_subs, uint32_t max_groups)
{
	char obj[SHM_OBJNAME_MAX];
	shm_objname(obj, bus->name, name);
	struct ch_geometry geo =
		channel_geometry(o->capacity, slot_size_for(o->record_size),
				 max_subs, max_groups);
	size_t total = geo.total;
	int rc = shm_create(obj, total, bus->mode, bus->open_flags,
			    bus->numa_node, &ch->map);
	if (rc == SHMBUS_EEXIST) {
		/* Not in the table, yet present: left by an earlier bus of
		 * this name, or by a creator that died before publishing the
		 * row (we hold the lock that creation needs). Replace it. */
		shm_unlink(obj);
		rc = shm_create(obj, total, bus->mode, bus->open_flags,
				bus->numa_node, &ch->map);
	}
	if (rc == SHMBUS_EEXIST)
		return shmbus_seterr(SHMBUS_EBUSY,
				     "channel object %s keeps reappearing",
				     obj);
	if (rc)
		return rc;
	build(ch->map.addr, &geo, bus, id, name, o, max_subs, max_groups);
	rc = validate(ch, bus, name);
	if (rc)
		shm_unlink(obj);
	return rc;
}

static void publish_row(struct sb_channel_entry *e, uint32_t id,
			const char *name, const shmbus_channel_opts_t *o)
{
	e->id = id;
	e->record_size = o->record_size;
	e->capacity = o->capacity;
	e->flags = o->flags;
	e->stall_policy = o->stall_policy;
	e->layout_hash = o->layout_hash;
	snprintf(e->name, sizeof(e->name), "%s", name);
	/* release: the row's fields before READY (tools acquire-load it) */
	atomic_store_explicit(&e->state, CHENT_READY, memory_order_release);
}

/* Under the bus lock: the row of `name`, or -1. */
static int find_row(shmbus_t *bus, const char *name, int *free_row)
{
	*free_row = -1;
	for (uint32_t i = 0; i < bus->max_channels; i++) {
		struct sb_channel_entry *e = &bus->chtab[i];
		/* acquire: pairs with the release in publish_row */
		uint32_t st =
			atomic_load_explicit(&e->state, memory_order_acquire);
		if (st == CHENT_READY &&
		    strncmp(e->name, name, sizeof(e->name)) == 0)
			return (int)i;
		if (st == CHENT_FREE && *free_row < 0)
			*free_row = (int)i;
	}
	return -1;
}

int shmbus_channel_open(shmbus_t *bus, const char *name,
			const shmbus_channel_opts_t *opts,
			shmbus_channel_t **out)
{
	if (bus == NULL || out == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "bus or out is NULL");
	*out = NULL;
	int rc = shm_name_check(name, "channel name");
	if (rc)
		return rc;
	uint32_t max_subs = 0, max_groups = 0;
	if (opts) {
		rc = check_opts(name, opts);
		if (rc)
			return rc;
		max_subs = opts->max_subscribers ? opts->max_subscribers
						 : DEFAULT_MAX_SUBSCRIBERS;
		max_groups = opts->max_groups ? opts->max_groups
					      : DEFAULT_MAX_GROUPS;
	}
	shmbus_channel_t *ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "channel handle");
	ch->map.fd = -1;
	ch->bus = bus;

	uint64_t deadline = shmbus_now_ns() + bus->timeout_ms * 1000000ull;
	for (;;) {
		rc = bus_lock(bus);
		if (rc)
			goto fail;
		int free_row;
		int row = find_row(bus, name, &free_row);
		if (row >= 0) {
			rc = attach(ch, bus, name);
			if (rc == 0 && (uint32_t)row != ch->id)
				rc = shmbus_seterr(SHMBUS_ECORRUPT,
						   "channel '%s': id %u in "
						   "its object, row %d in "
						   "the bus",
						   name, ch->id, row);
			if (rc == 0 && opts)
				rc = check_match(ch, opts, max_subs,
						 max_groups);
		} else if (opts == NULL) {
			rc = SHMBUS_ENOENT;
		} else if (free_row < 0) {
			rc = shmbus_seterr(SHMBUS_EFULL,
					   "bus '%s': all %u channel rows are "
					   "used (raise max_channels)",
					   bus->name, bus->max_channels);
		} else {
			rc = create(ch, bus, name, (uint32_t)free_row, opts,
				    max_subs, max_groups);
			if (rc == 0)
				publish_row(&bus->chtab[free_row],
					    (uint32_t)free_row, name, opts);
		}
		bus_unlock(bus);
		if (rc != SHMBUS_ENOENT)
			break;
		/* Attach-only open of a channel nobody created yet: wait. */
		if (shmbus_now_ns() >= deadline) {
			rc = shmbus_seterr(SHMBUS_ENOENT,
					   "channel '%s' does not exist on "
					   "bus '%s' (waited %u ms)",
					   name, bus->name, bus->timeout_ms);
			break;
		}
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	if (rc)
		goto fail;
	ch->held_subs = calloc((ch->max_subs + 7) / 8, 1);
	ch->held_members = calloc(ch->max_groups ? ch->max_groups : 1,
				  sizeof(*ch->held_members));
	if (ch->held_subs == NULL || ch->held_members == NULL) {
		rc = shmbus_seterr(SHMBUS_ENOMEM, "subscriber bitmap");
		goto fail;
	}
	/* the bus lock orders this process's threads (a watchdog thread
	 * opens channels too) on the handle list */
	rc = bus_lock(bus);
	if (rc)
		goto fail;
	ch->next = bus->channels;
	bus->channels = ch;
	bus_unlock(bus);
	*out = ch;
	return 0;
fail:
	shm_unmap(&ch->map);
	free(ch->held_subs);
	free(ch);
	return rc;
}

void shmbus_channel_close(shmbus_channel_t *ch)
{
	if (ch == NULL)
		return;
	producer_close_all(ch);
	sub_close_all(ch);
	int locked = bus_lock(ch->bus) == 0;
	for (shmbus_channel_t **pp = &ch->bus->channels; *pp;
	     pp = &(*pp)->next) {
		if (*pp == ch) {
			*pp = ch->next;
			break;
		}
	}
	if (locked)
		bus_unlock(ch->bus);
	shm_unmap(&ch->map);
	free(ch->held_subs);
	free(ch->held_members);
	free(ch);
}

int shmbus_channel_get_info(shmbus_channel_t *ch, shmbus_channel_info_t *info)
{
	if (ch == NULL || info == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "NULL argument");
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", ch->name);
	info->id = ch->id;
	info->record_size = ch->record_size;
	info->slot_size = ch->slot_size;
	info->capacity = ch->capacity;
	info->flags = ch->flags;
	info->stall_policy = ch->stall_policy;
	info->max_subscribers = ch->max_subs;
	info->max_groups = ch->max_groups;
	info->layout_hash = ch->layout_hash;
	info->claimed =
		atomic_load_explicit(&ch->hdr->claim, memory_order_relaxed);
	return 0;
}

/*
 * The lowest cursor of every gating subscriber, or `upto` if none is lower.
 * Slow path of a claim that would wrap onto the cached minimum.
 *
 * Join safety: the seq_cst fence orders the caller's earlier claim
 * (fetch-add, or the single producer's store of `claim`) before the loads of
 * sub_hwm, state and cursor below. A joining subscriber does the mirror
 * image: seq_cst stores of sub_hwm and state, then a seq_cst load of claim.
 * So either this scan sees the joiner, or the joiner's load of claim sees
 * this producer's claims, and it starts at or beyond every position this
 * producer may write before its next scan (docs/architecture.md).
 */
uint64_t channel_min_gating(shmbus_channel_t *ch, uint64_t upto)
{
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t hwm = atomic_load_explicit(&ch->hdr->sub_hwm,
					    memory_order_seq_cst);
	if (hwm > ch->max_subs)
		hwm = ch->max_subs; /* bound a corrupt value */
	uint64_t min = upto;
	for (uint32_t i = 0; i < hwm; i++) {
		struct ch_subscriber *s = &ch->subs[i];
		uint32_t st =
			atomic_load_explicit(&s->state, memory_order_seq_cst);
		if (st != SUB_JOINING && st != SUB_ACTIVE)
			continue;
		/* acquire: pairs with the subscriber's release store of its
		 * cursor after its handlers returned; the slots below it may
		 * be overwritten from here on */
		uint64_t c = atomic_load_explicit(&s->cursor,
						  memory_order_acquire);
		if ((int64_t)(c - min) < 0)
			min = c;
	}
	return min;
}
