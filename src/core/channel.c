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
#include "follower.h"
#include "internal.h"
#include "private_export.h"
#include "schema.h"
#include "wait.h"

#define DEFAULT_MAX_SUBSCRIBERS 32u
#define DEFAULT_MAX_GROUPS 2u
#define MAX_GROUPS_LIMIT 64u
#define MAX_SUBSCRIBERS_LIMIT 4096u
#define MAX_CAPACITY (1u << 30)
#define DEFAULT_RETRY_CAPACITY 32u
#define MAX_RETRY_CAPACITY 65536u
#define DEFAULT_DLQ_CAPACITY 128u
#define MAX_DLQ_CAPACITY (1u << 20)

static size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

static uint32_t log2_u32(uint32_t v)
{
	return 31u - (uint32_t)__builtin_clz(v);
}

static uint32_t slot_size_for(uint32_t record_size, uint32_t flags)
{
	return (uint32_t)round_up(slot_header_bytes(flags) + record_size, 8);
}

static size_t group_size_for(uint32_t capacity)
{
	return round_up(sizeof(struct ch_group) + (size_t)capacity * 8,
			SHMBUS_CACHELINE);
}

static uint32_t retry_entry_size_for(uint32_t record_size)
{
	return (uint32_t)round_up(sizeof(struct retry_entry) + record_size,
				  SHMBUS_CACHELINE);
}

static uint32_t dlq_entry_size_for(uint32_t record_size)
{
	return (uint32_t)round_up(sizeof(struct dlq_entry) + record_size,
				  SHMBUS_CACHELINE);
}

/* Retry segments hold copies of records: by default all of them together
 * take about the ring's size, within 4..32 entries per subscriber. */
static uint32_t default_retry_capacity(const shmbus_channel_opts_t *o)
{
	uint32_t subs = o->max_subscribers ? o->max_subscribers
					   : DEFAULT_MAX_SUBSCRIBERS;
	uint32_t n = o->capacity / subs;
	return n < 4 ? 4 : n > DEFAULT_RETRY_CAPACITY ? DEFAULT_RETRY_CAPACITY
						      : n;
}

/* A channel's configuration: the options with defaults resolved. */
struct ch_config {
	uint32_t record_size, capacity, flags, stall_policy;
	uint32_t max_subs, max_groups;
	uint32_t retry_capacity, dlq_capacity, dlq_policy;
	uint64_t layout_hash;
	const shmbus_schema_t *schema; /* NULL: none declared */
};

static struct ch_config config_of(const shmbus_channel_opts_t *o)
{
	struct ch_config c = {
		.record_size = o->record_size,
		.capacity = o->capacity,
		.flags = o->flags,
		.stall_policy = o->stall_policy,
		.max_subs = o->max_subscribers ? o->max_subscribers
					       : DEFAULT_MAX_SUBSCRIBERS,
		.max_groups = o->max_groups ? o->max_groups
					    : DEFAULT_MAX_GROUPS,
		.retry_capacity = o->retry_capacity ? o->retry_capacity
						    : default_retry_capacity(o),
		.dlq_capacity = o->dlq_capacity ? o->dlq_capacity
						: DEFAULT_DLQ_CAPACITY,
		.dlq_policy = o->dlq_policy,
		.layout_hash = o->layout_hash,
		.schema = o->schema,
	};
	return c;
}

/* Where everything lies in the object: sizes of every area follow from
 * the configuration, so an attacher recomputes them and compares. */
struct ch_geometry {
	uint64_t subs_off, groups_off, retry_off, dlq_off, stats_off;
	uint64_t schema_off, slots_off, total;
};

static struct ch_geometry channel_geometry(const struct ch_config *c)
{
	struct ch_geometry g;
	g.subs_off = sizeof(struct ch_header);
	g.groups_off = g.subs_off +
		       (size_t)c->max_subs * sizeof(struct ch_subscriber);
	g.retry_off = g.groups_off +
		      (size_t)c->max_groups * group_size_for(c->capacity);
	g.dlq_off = g.retry_off + (size_t)c->max_subs * c->retry_capacity *
					  retry_entry_size_for(c->record_size);
	g.stats_off = round_up(g.dlq_off + sizeof(struct ch_dlq) +
				       (size_t)c->dlq_capacity *
					       dlq_entry_size_for(
						       c->record_size),
			       SHMBUS_CACHELINE);
	g.schema_off = g.stats_off +
		       (size_t)c->max_subs * sizeof(struct ch_sub_stats);
	g.slots_off = round_up(g.schema_off + sizeof(struct ch_schema), 4096);
	g.total = round_up(g.slots_off + (size_t)c->capacity *
						 slot_size_for(c->record_size,
							       c->flags),
			   4096);
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
	if (o->flags & ~(uint32_t)CHANNEL_FLAGS)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': unknown flags 0x%x", name,
				     o->flags);
	if ((o->flags & SHMBUS_CH_OVERWRITE) &&
	    (o->flags & SHMBUS_CH_JOURNAL_SYNC))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': a synchronous journal "
				     "needs a back-pressure channel (an "
				     "overwrite producer never waits)",
				     name);
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
	if (o->stall_policy == SHMBUS_STALL_SPILL &&
	    (o->flags & SHMBUS_CH_OVERWRITE))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': stall policy spill is for "
				     "back-pressure channels",
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
	if (o->retry_capacity > MAX_RETRY_CAPACITY)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': retry_capacity %u above "
				     "%u",
				     name, o->retry_capacity,
				     MAX_RETRY_CAPACITY);
	if (o->dlq_capacity > MAX_DLQ_CAPACITY ||
	    (o->dlq_capacity & (o->dlq_capacity - 1)))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': dlq_capacity %u must be "
				     "a power of two up to %u (0: default)",
				     name, o->dlq_capacity, MAX_DLQ_CAPACITY);
	if (o->dlq_policy > SHMBUS_DLQ_REFUSE)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': unknown dlq_policy %u",
				     name, o->dlq_policy);
	if (o->schema)
		return schema_check(name, o->schema, o->record_size);
	return 0;
}

static int build(struct ch_header *h, const struct ch_geometry *geo,
		 const shmbus_t *bus, uint32_t id, const char *name,
		 const struct ch_config *o)
{
	h->magic = CH_MAGIC;
	h->abi_version = SHMBUS_ABI_VERSION;
	h->header_size = sizeof(*h);
	h->subscriber_size = sizeof(struct ch_subscriber);
	h->slot_header_size = slot_header_bytes(o->flags);
	h->cacheline = SHMBUS_CACHELINE;
	h->bus_epoch = bus->epoch;
	h->channel_id = id;
	h->record_size = o->record_size;
	h->slot_size = slot_size_for(o->record_size, o->flags);
	h->capacity = o->capacity;
	h->capacity_log2 = log2_u32(o->capacity);
	h->flags = o->flags;
	h->stall_policy = o->stall_policy;
	h->max_subscribers = o->max_subs;
	h->layout_hash = o->layout_hash;
	h->max_groups = o->max_groups;
	h->group_size = (uint32_t)group_size_for(o->capacity);
	h->subscribers_off = geo->subs_off;
	h->groups_off = geo->groups_off;
	h->slots_off = geo->slots_off;
	h->total_size = geo->total;
	h->retry_off = geo->retry_off;
	h->dlq_off = geo->dlq_off;
	h->retry_capacity = o->retry_capacity;
	h->retry_entry_size = retry_entry_size_for(o->record_size);
	h->dlq_capacity = o->dlq_capacity;
	h->dlq_entry_size = dlq_entry_size_for(o->record_size);
	h->stats_off = geo->stats_off;
	h->schema_off = geo->schema_off;
	if (o->schema)
		schema_store((struct ch_schema *)((uint8_t *)h +
						  geo->schema_off),
			     o->schema);
	snprintf(h->name, sizeof(h->name), "%s", name);
	ck_ec32_init(&h->data_ec, 0);
	ck_ec32_init(&h->space_ec, 0);
	struct ch_subscriber *subs =
		(struct ch_subscriber *)((uint8_t *)h + geo->subs_off);
	for (uint32_t i = 0; i < o->max_subs; i++)
		atomic_init(&subs[i].retry_due, UINT64_MAX);
	struct ch_dlq *dlq = (struct ch_dlq *)((uint8_t *)h + geo->dlq_off);
	dlq->policy = o->dlq_policy;
	int err = shm_mutex_init(&dlq->lock);
	if (err)
		return shmbus_seterr_sys(SHMBUS_ESYS, err,
					 "channel '%s': DLQ mutex", name);
	/* release: the whole header before the state, for attachers */
	atomic_store_explicit(&h->state, OBJ_READY, memory_order_release);
	return 0;
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
	uint32_t flags = h->flags; /* read once: the layout depends on it */
	if (h->header_size != sizeof(*h) ||
	    h->subscriber_size != sizeof(struct ch_subscriber) ||
	    h->slot_header_size != slot_header_bytes(flags) ||
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
	struct ch_config c = {
		.record_size = h->record_size,
		.capacity = h->capacity,
		.flags = flags,
		.stall_policy = h->stall_policy,
		.max_subs = h->max_subscribers,
		.max_groups = h->max_groups,
		.retry_capacity = h->retry_capacity,
		.dlq_capacity = h->dlq_capacity,
		.layout_hash = h->layout_hash,
	};
	uint32_t slot_size = h->slot_size, log2 = h->capacity_log2;
	uint32_t group_size = h->group_size;
	uint32_t retry_esize = h->retry_entry_size;
	uint32_t dlq_esize = h->dlq_entry_size;
	uint64_t subs_off = h->subscribers_off, slots_off = h->slots_off;
	uint64_t groups_off = h->groups_off, retry_off = h->retry_off;
	uint64_t dlq_off = h->dlq_off, stats_off = h->stats_off;
	uint64_t schema_off = h->schema_off;
	uint64_t total = h->total_size;
	/* the limits first: the geometry's products then cannot overflow */
	if (c.record_size == 0 || c.record_size > SLOT_MAX_RECORD ||
	    c.capacity < 2 || c.capacity > MAX_CAPACITY ||
	    (c.capacity & (c.capacity - 1)) || c.max_subs == 0 ||
	    c.max_subs > MAX_SUBSCRIBERS_LIMIT ||
	    c.max_groups > MAX_GROUPS_LIMIT || c.retry_capacity == 0 ||
	    c.retry_capacity > MAX_RETRY_CAPACITY || c.dlq_capacity == 0 ||
	    c.dlq_capacity > MAX_DLQ_CAPACITY ||
	    (c.dlq_capacity & (c.dlq_capacity - 1)))
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "channel '%s': sizes in its header are "
				     "out of range (corrupt)",
				     name);
	struct ch_geometry geo = channel_geometry(&c);
	if (slot_size != slot_size_for(c.record_size, c.flags) ||
	    log2 != log2_u32(c.capacity) ||
	    (c.flags & ~(uint32_t)CHANNEL_FLAGS) ||
	    /* combinations a creator is refused (check_opts) */
	    ((c.flags & SHMBUS_CH_OVERWRITE) &&
	     (c.flags & (SHMBUS_CH_MULTI_PRODUCER |
			 SHMBUS_CH_JOURNAL_SYNC))) ||
	    c.stall_policy > SHMBUS_STALL_SPILL ||
	    (c.stall_policy == SHMBUS_STALL_SPILL &&
	     (c.flags & SHMBUS_CH_OVERWRITE)) ||
	    group_size != group_size_for(c.capacity) ||
	    retry_esize != retry_entry_size_for(c.record_size) ||
	    dlq_esize != dlq_entry_size_for(c.record_size) || total != size ||
	    geo.total != size || subs_off != geo.subs_off ||
	    groups_off != geo.groups_off || retry_off != geo.retry_off ||
	    dlq_off != geo.dlq_off || stats_off != geo.stats_off ||
	    schema_off != geo.schema_off || slots_off != geo.slots_off)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "channel '%s': sizes or offsets in its "
				     "header do not match its %zu bytes "
				     "(truncated or corrupt)",
				     name, size);
	uint8_t *base = ch->map.addr;
	uint32_t dlq_policy = ((const struct ch_dlq *)(base + dlq_off))->policy;
	if (dlq_policy > SHMBUS_DLQ_REFUSE)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "channel '%s': unknown DLQ policy %u "
				     "(corrupt)",
				     name, dlq_policy);
	ch->dlq_policy = dlq_policy;
	ch->hdr = ch->map.addr;
	ch->subs = (struct ch_subscriber *)(base + subs_off);
	ch->groups = base + groups_off;
	ch->max_groups = c.max_groups;
	ch->group_size = group_size;
	ch->slots = base + slots_off;
	ch->retry = base + retry_off;
	ch->retry_capacity = c.retry_capacity;
	ch->retry_entry_size = retry_esize;
	ch->dlq = (struct ch_dlq *)(base + dlq_off);
	ch->dlq_capacity = c.dlq_capacity;
	ch->dlq_entry_size = dlq_esize;
	ch->stats = (struct ch_sub_stats *)(base + stats_off);
	ch->schema = (struct ch_schema *)(base + schema_off);
	ch->id = h->channel_id;
	ch->record_size = c.record_size;
	ch->slot_size = slot_size;
	ch->slot_hdr = slot_header_bytes(c.flags);
	ch->compact = (c.flags & SHMBUS_CH_COMPACT) != 0;
	ch->capacity = c.capacity;
	ch->slots_end = ch->slots + (size_t)ch->capacity * ch->slot_size;
	ch->claim_base = ch->slots - (SHMBUS_RECORD_HEADER - ch->slot_hdr);
	ch->log2 = log2;
	ch->mask = c.capacity - 1;
	ch->flags = c.flags;
	ch->stall_policy = c.stall_policy;
	ch->max_subs = c.max_subs;
	ch->layout_hash = c.layout_hash;
	snprintf(ch->name, sizeof(ch->name), "%s", name);
	return 0;
}

/* An attach request must match what exists, field by field. */
static int check_match(const shmbus_channel_t *ch,
		       const struct ch_config *o)
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
	else if (o->max_subs != ch->max_subs)
		what = "max_subscribers", have = ch->max_subs,
		want = o->max_subs;
	else if (o->max_groups != ch->max_groups)
		what = "max_groups", have = ch->max_groups,
		want = o->max_groups;
	else if (o->retry_capacity != ch->retry_capacity)
		what = "retry_capacity", have = ch->retry_capacity,
		want = o->retry_capacity;
	else if (o->dlq_capacity != ch->dlq_capacity)
		what = "dlq_capacity", have = ch->dlq_capacity,
		want = o->dlq_capacity;
	else if (o->dlq_policy != ch->dlq_policy)
		what = "dlq_policy", have = ch->dlq_policy,
		want = o->dlq_policy;
	else if (o->schema && !schema_equal(ch->schema, o->schema))
		return shmbus_seterr(SHMBUS_EEXIST,
				     "channel '%s' exists with another schema "
				     "(or none); open it without one to "
				     "attach",
				     ch->name);
	if (what == NULL)
		return 0;
	if (strcmp(what, "flags") == 0) /* the slot layout: say which */
		return shmbus_seterr(SHMBUS_EEXIST,
				     "channel '%s' exists with flags %u%s, "
				     "this open declares %u%s",
				     ch->name, ch->flags,
				     ch->flags & SHMBUS_CH_COMPACT ? " (compact)"
								   : "",
				     o->flags,
				     o->flags & SHMBUS_CH_COMPACT ? " (compact)"
								  : "");
	return shmbus_seterr(SHMBUS_EEXIST,
			     "channel '%s' exists with %s %llu, this open "
			     "declares %llu",
			     ch->name, what, have, want);
}

static int attach(shmbus_channel_t *ch, shmbus_t *bus, const char *name)
{
	char obj[SHM_OBJNAME_MAX];
	shm_objname(obj, bus->name, name);
	const struct ch_header *h;
	int rc = shm_attach(obj, sizeof(*h), bus->open_flags, &ch->map);
	if (rc == SHMBUS_ENOENT)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "channel '%s' is in the bus table but "
				     "its object %s is gone (removed by "
				     "hand?); `shmbus destroy %s`",
				     name, obj, bus->name);
	/* made whole before its row was published: cut since */
	if (rc == SHMBUS_EAGAIN)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "channel '%s': its object %s is shorter "
				     "than a channel header: truncated (by "
				     "its owner or root); stop the bus's "
				     "processes and `shmbus destroy %s`",
				     name, obj, bus->name);
	if (rc)
		return rc;
	h = ch->map.addr;
	/* acquire: pairs with the creator's release store in build() */
	if (atomic_load_explicit(&h->state, memory_order_acquire) != OBJ_READY)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "channel '%s' is listed ready but its "
				     "object is not",
				     name);
	rc = validate(ch, bus, name);
	if (rc == 0)
		rc = shm_prepare(&ch->map, bus->open_flags, bus->numa_node);
	return rc;
}

/* The object of a channel not yet in the table is another user's. */
static int squatted(const char *obj, shmbus_t *bus, const char *name)
{
	char todo[SHM_OBJNAME_MAX + 96];
	snprintf(todo, sizeof(todo), "ask its owner or root to remove "
				     "/dev/shm%s, or use another bus name",
		 obj);
	return shmbus_adderr(shm_foreign(obj, "remove", todo),
			     "channel '%s' of bus '%s' cannot be created",
			     name, bus->name);
}

static int create(shmbus_channel_t *ch, shmbus_t *bus, const char *name,
		  uint32_t id, const struct ch_config *o)
{
	char obj[SHM_OBJNAME_MAX];
	shm_objname(obj, bus->name, name);
	struct ch_geometry geo = channel_geometry(o);
	size_t total = geo.total;
	int rc = shm_create(obj, total, bus->mode, bus->open_flags,
			    bus->numa_node, &ch->map);
	if (rc == SHMBUS_EEXIST) {
		/* Not in the table, yet present: left by an earlier bus of
		 * this name, or by a creator that died before publishing the
		 * row (we hold the lock that creation needs). Replace it --
		 * unless another user made it, whom the sticky /dev/shm
		 * protects: say whose it is. */
		if (shm_unlink(obj) != 0 && (errno == EPERM || errno == EACCES))
			return squatted(obj, bus, name);
		rc = shm_create(obj, total, bus->mode, bus->open_flags,
				bus->numa_node, &ch->map);
	}
	if (rc == SHMBUS_EEXIST)
		return shmbus_seterr(SHMBUS_EBUSY,
				     "channel object %s keeps reappearing",
				     obj);
	if (rc)
		return rc;
	rc = build(ch->map.addr, &geo, bus, id, name, o);
	if (rc == 0)
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
	struct ch_config cfg = {0};
	if (opts) {
		rc = check_opts(name, opts);
		if (rc)
			return rc;
		cfg = config_of(opts);
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
				rc = check_match(ch, &cfg);
		} else if (opts == NULL) {
			rc = SHMBUS_ENOENT;
		} else if (free_row < 0) {
			rc = shmbus_seterr(SHMBUS_EFULL,
					   "bus '%s': all %u channel rows are "
					   "used (raise max_channels)",
					   bus->name, bus->max_channels);
		} else {
			rc = create(ch, bus, name, (uint32_t)free_row, &cfg);
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
	bus->close_channel = shmbus_channel_close;
	bus_unlock(bus);
	*out = ch;
	return 0;
fail:
	shm_unmap(&ch->map);
	free(ch->held_subs);
	free(ch);
	return rc;
}

/* Under the bus lock: the row named `name` (any state but FREE), or -1. */
int channel_find_row(shmbus_channel_t *ch, const char *name, int *free_row)
{
	*free_row = -1;
	for (uint32_t i = 0; i < ch->max_subs; i++) {
		struct ch_subscriber *e = &ch->subs[i];
		/* acquire: pairs with the release of the row's state */
		uint32_t st =
			atomic_load_explicit(&e->state, memory_order_acquire);
		if (st == SUB_FREE) {
			if (*free_row < 0)
				*free_row = (int)i;
			continue;
		}
		if (strncmp(e->name, name, sizeof(e->name)) == 0)
			return (int)i;
	}
	return -1;
}

int sub_find_row(shmbus_channel_t *ch, const char *name)
{
	int free_row;
	return channel_find_row(ch, name, &free_row);
}
SHMBUS_PRIVATE_EXPORT(sub_find_row);

void shmbus_channel_close(shmbus_channel_t *ch)
{
	if (ch == NULL)
		return;
	if (ch->close_producers)
		ch->close_producers(ch);
	if (ch->close_subscribers)
		ch->close_subscribers(ch);
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
	/* relaxed: statistics */
	info->claimed =
		atomic_load_explicit(&ch->hdr->claim, memory_order_relaxed);
	info->tombstones = atomic_load_explicit(&ch->hdr->tombstones,
						memory_order_relaxed);
	info->retry_capacity = ch->retry_capacity;
	info->dlq_capacity = ch->dlq_capacity;
	info->dlq_policy = ch->dlq_policy;
	uint32_t nf = ch->schema->n_fields;
	info->schema_fields = nf <= SHMBUS_SCHEMA_MAX_FIELDS ? nf : 0;
	if (info->schema_fields)
		memcpy(info->schema_type, ch->schema->type_name,
		       sizeof(info->schema_type) - 1);
	info->journal_attached = follower_attached(ch);
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
