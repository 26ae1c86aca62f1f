/*
 * The bus object: superblock, channel table, participant table.
 *
 * Creation race: the creator makes the object with O_EXCL, reserves and maps
 * it, fills everything, then release-stores state = OBJ_READY. An opener
 * that finds the object acquire-loads the state: BUILDING (or a size still
 * short of a superblock) means "wait", bounded by open_timeout_ms; READY
 * means validate every size and offset against the mapped size.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "internal.h"
#include "private_export.h"
#include "registry.h"
#include "wait.h"

#define DEFAULT_MAX_CHANNELS 256u
#define DEFAULT_MAX_PARTICIPANTS 1024u
#define DEFAULT_TIMEOUT_MS 2000u
#define MAX_CHANNELS_LIMIT 65536u

uint64_t shmbus_clock_ns(const shmbus_t *bus)
{
	return bus_clock_now(&bus->clock);
}

uint64_t shmbus_epoch(const shmbus_t *bus)
{
	return bus->epoch;
}

static size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

static size_t poller_size(uint32_t max_channels)
{
	return sizeof(struct sb_poller) +
	       round_up(((size_t)max_channels + 63) / 64 * 8, SHMBUS_CACHELINE);
}

static size_t bus_size(uint32_t max_channels, uint32_t max_parts)
{
	size_t sz = sizeof(struct sb_superblock) +
		    (size_t)max_channels * sizeof(struct sb_channel_entry) +
		    (size_t)max_parts * sizeof(struct sb_participant) +
		    SHMBUS_MAX_POLLERS * poller_size(max_channels);
	return round_up(sz, 4096);
}

static uint64_t new_epoch(void)
{
	uint64_t e = 0;
	if (getrandom(&e, sizeof(e), GRND_NONBLOCK) != sizeof(e)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		e = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		e ^= (uint64_t)getpid() << 32;
	}
	return e ? e : 1;
}

static int build(shmbus_t *bus, uint32_t max_ch, uint32_t max_parts)
{
	struct sb_superblock *sb = bus->map.addr;
	sb->magic = SB_MAGIC;
	sb->abi_version = SHMBUS_ABI_VERSION;
	sb->superblock_size = sizeof(*sb);
	sb->channel_entry_size = sizeof(struct sb_channel_entry);
	sb->participant_size = sizeof(struct sb_participant);
	sb->cacheline = SHMBUS_CACHELINE;
	sb->epoch = new_epoch();
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	sb->created_realtime_ns =
		(uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	struct bus_clock clk;
	bus_clock_calibrate(&clk);
	sb->clock_kind = clk.kind;
	sb->clock_mult = clk.mult;
	sb->clock_tsc_base = clk.tsc_base;
	sb->clock_ns_base = clk.ns_base;
	sb->creator_uid = (uint32_t)geteuid();
	sb->max_channels = max_ch;
	sb->max_participants = max_parts;
	sb->channel_table_off = sizeof(*sb);
	sb->participant_table_off =
		sizeof(*sb) + (uint64_t)max_ch * sizeof(struct sb_channel_entry);
	sb->max_pollers = SHMBUS_MAX_POLLERS;
	sb->poller_size = (uint32_t)poller_size(max_ch);
	sb->poller_table_off =
		sb->participant_table_off +
		(uint64_t)max_parts * sizeof(struct sb_participant);
	sb->total_size = bus->map.size;
	int err = shm_mutex_init(&sb->lock);
	if (err)
		return shmbus_seterr_sys(SHMBUS_ESYS, err,
					 "robust process-shared mutex");
	/* Publish last: everything above happens-before an opener's acquire
	 * load that reads OBJ_READY. */
	atomic_store_explicit(&sb->state, OBJ_READY, memory_order_release);
	return 0;
}

/* Validate a READY superblock against the mapped size; fill the handle. */
static int validate(shmbus_t *bus)
{
	const struct sb_superblock *sb = bus->map.addr;
	size_t size = bus->map.size;
	if (sb->magic != SB_MAGIC)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "bus '%s': bad magic 0x%016llx (not a "
				     "shmbus bus object)",
				     bus->name, (unsigned long long)sb->magic);
	if (sb->abi_version != SHMBUS_ABI_VERSION)
		return shmbus_seterr(SHMBUS_EVERSION,
				     "bus '%s' has ABI version %u, this "
				     "library speaks %u",
				     bus->name, sb->abi_version,
				     SHMBUS_ABI_VERSION);
	if (sb->superblock_size != sizeof(struct sb_superblock) ||
	    sb->channel_entry_size != sizeof(struct sb_channel_entry) ||
	    sb->participant_size != sizeof(struct sb_participant) ||
	    sb->cacheline != SHMBUS_CACHELINE)
		return shmbus_seterr(SHMBUS_EVERSION,
				     "bus '%s': structure sizes differ from "
				     "this build's (built for another ABI)",
				     bus->name);
	uint32_t max_ch = sb->max_channels, max_parts = sb->max_participants;
	uint64_t ct = sb->channel_table_off, pt = sb->participant_table_off;
	uint64_t total = sb->total_size, plt = sb->poller_table_off;
	uint32_t max_pl = sb->max_pollers, pl_size = sb->poller_size;
	if (max_ch == 0 || max_ch > MAX_CHANNELS_LIMIT || max_parts == 0 ||
	    max_parts > SHMBUS_MAX_PARTICIPANTS ||
	    ct != sizeof(struct sb_superblock) ||
	    pt != ct + (uint64_t)max_ch * sizeof(struct sb_channel_entry) ||
	    plt != pt + (uint64_t)max_parts * sizeof(struct sb_participant) ||
	    max_pl != SHMBUS_MAX_POLLERS || pl_size != poller_size(max_ch) ||
	    total != size || bus_size(max_ch, max_parts) != size)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "bus '%s': table sizes or offsets do not "
				     "match the object's %zu bytes (truncated "
				     "or corrupt; `shmbus destroy --force %s`)",
				     bus->name, size, bus->name);
	bus->sb = bus->map.addr;
	bus->max_channels = max_ch;
	bus->max_participants = max_parts;
	bus->chtab = (struct sb_channel_entry *)((uint8_t *)bus->map.addr + ct);
	bus->parts = (struct sb_participant *)((uint8_t *)bus->map.addr + pt);
	bus->pollers = (uint8_t *)bus->map.addr + plt;
	bus->poller_size = pl_size;
	bus->epoch = sb->epoch;
	bus->clock.kind = sb->clock_kind;
	bus->clock.mult = sb->clock_mult;
	bus->clock.tsc_base = sb->clock_tsc_base;
	bus->clock.ns_base = sb->clock_ns_base;
	if (bus_clock_check(&bus->clock) != 0)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "bus '%s': its clock (kind %u) is not "
				     "usable here: corrupt, or a TSC clock on "
				     "a machine whose kernel does not trust "
				     "the TSC",
				     bus->name, bus->clock.kind);
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};
	nanosleep(&ts, NULL);
}

int shmbus_open(const char *name, const shmbus_opts_t *opts, shmbus_t **out)
{
	static const shmbus_opts_t defaults = {0};
	if (out == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "out is NULL");
	*out = NULL;
	int rc = shm_name_check(name, "bus name");
	if (rc)
		return rc;
	if (opts == NULL)
		opts = &defaults;
	uint32_t flags = opts->flags ? opts->flags : SHMBUS_OPEN_CREATE;
	uint32_t max_ch = opts->max_channels ? opts->max_channels
					     : DEFAULT_MAX_CHANNELS;
	uint32_t max_parts = opts->max_participants ? opts->max_participants
						    : DEFAULT_MAX_PARTICIPANTS;
	if (max_ch > MAX_CHANNELS_LIMIT || max_parts > SHMBUS_MAX_PARTICIPANTS)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "max_channels %u (limit %u) or "
				     "max_participants %u (limit %u) too large",
				     max_ch, MAX_CHANNELS_LIMIT, max_parts,
				     SHMBUS_MAX_PARTICIPANTS);
	if (opts->mode & ~0777u)
		return shmbus_seterr(SHMBUS_EINVAL, "mode %o is not a "
				     "permission mask", opts->mode);

	shmbus_t *bus = calloc(1, sizeof(*bus));
	if (bus == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "allocating bus handle");
	bus->map.fd = -1;
	bus->open_flags = flags;
	bus->mode = opts->mode ? opts->mode : 0600;
	bus->timeout_ms = opts->open_timeout_ms ? opts->open_timeout_ms
						: DEFAULT_TIMEOUT_MS;
	bus->numa_node = opts->numa_node > 0 ? opts->numa_node - 1 : -1;
	snprintf(bus->name, sizeof(bus->name), "%s", name);

	char obj[SHM_OBJNAME_MAX];
	shm_objname(obj, name, NULL);
	uint64_t deadline = shmbus_now_ns() + bus->timeout_ms * 1000000ull;
	for (;;) {
		rc = shm_attach(obj, sizeof(struct sb_superblock), flags,
				&bus->map);
		if (rc == 0) {
			struct sb_superblock *sb = bus->map.addr;
			/* acquire: pairs with the creator's release store
			 * of OBJ_READY in build() */
			uint32_t st = atomic_load_explicit(
				&sb->state, memory_order_acquire);
			if (st == OBJ_READY) {
				if (flags & SHMBUS_OPEN_EXCL) {
					rc = shmbus_seterr(SHMBUS_EEXIST,
							   "bus '%s' exists",
							   name);
					goto fail;
				}
				rc = validate(bus);
				if (rc == 0)
					rc = shm_prepare(&bus->map, flags,
							 bus->numa_node);
				if (rc)
					goto fail;
				break;
			}
			if (st != OBJ_BUILDING) {
				rc = shmbus_seterr(SHMBUS_ECORRUPT,
						   "bus '%s': state word %u "
						   "is not a known state",
						   name, st);
				goto fail;
			}
			shm_unmap(&bus->map);
		} else if (rc == SHMBUS_ENOENT &&
			   (flags & SHMBUS_OPEN_CREATE)) {
			size_t size = bus_size(max_ch, max_parts);
			rc = shm_create(obj, size, bus->mode, flags,
					bus->numa_node, &bus->map);
			if (rc == 0) {
				rc = build(bus, max_ch, max_parts);
				if (rc == 0)
					rc = validate(bus);
				if (rc) {
					shm_unlink(obj);
					goto fail;
				}
				break;
			}
			if (rc != SHMBUS_EEXIST)
				goto fail;
		} else if (rc == SHMBUS_ENOENT) {
			rc = shmbus_seterr(SHMBUS_ENOENT,
					   "bus '%s' does not exist", name);
			goto fail;
		} else if (rc != SHMBUS_EAGAIN) {
			goto fail;
		}
		if (shmbus_now_ns() >= deadline) {
			rc = shmbus_seterr(
				SHMBUS_ETIMEDOUT,
				"bus '%s' was not made ready within %u ms: its "
				"creator died half-way or is stalled, or the "
				"object is truncated; remove it with `shmbus "
				"destroy --force %s` and open again",
				name, bus->timeout_ms, name);
			goto fail;
		}
		sleep_ms(1);
	}
	bus->held_parts = calloc((bus->max_participants + 7) / 8, 1);
	if (bus->held_parts == NULL) {
		rc = shmbus_seterr(SHMBUS_ENOMEM, "participant bitmap");
		goto fail;
	}
	rc = registry_new(&bus->registry);
	if (rc == 0)
		rc = registry_bind_static(bus->registry);
	if (rc)
		goto fail;
	*out = bus;
	return 0;
fail:
	registry_free(bus->registry);
	free(bus->held_parts);
	shm_unmap(&bus->map);
	free(bus);
	return rc;
}

void shmbus_close(shmbus_t *bus)
{
	if (bus == NULL)
		return;
	while (bus->channels)
		bus->close_channel(bus->channels);
	for (uint32_t i = 0; i < bus->max_participants; i++)
		if (bit_get(bus->held_parts, i))
			bus_participant_release(bus, i);
	registry_free(bus->registry);
	shm_unmap(&bus->map);
	free(bus->held_parts);
	free(bus);
}

int shmbus_handler_add(shmbus_t *bus, const char *channel,
		       shmbus_handler_fn fn, void *ctx)
{
	if (bus == NULL || fn == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "bus and fn are required");
	int rc = shm_name_check(channel, "channel name");
	return rc ? rc : registry_add(bus->registry, channel, fn, ctx);
}

int shmbus_handler_remove(shmbus_t *bus, const char *channel,
			  shmbus_handler_fn fn, void *ctx)
{
	if (bus == NULL || fn == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "bus and fn are required");
	int rc = shm_name_check(channel, "channel name");
	return rc ? rc : registry_remove(bus->registry, channel, fn, ctx);
}

/* A name in /dev/shm, with its '/'. */
#define DEVSHM_NAME_MAX (sizeof(((struct dirent *)0)->d_name) + 2)

/* Remove obj: 1 done, 0 absent; another user's (sticky /dev/shm): its
 * name kept in denied, if that is still empty. */
static int unlink_obj(const char *obj, char denied[DEVSHM_NAME_MAX])
{
	if (shm_unlink(obj) == 0)
		return 1;
	if ((errno == EPERM || errno == EACCES) && !denied[0])
		snprintf(denied, DEVSHM_NAME_MAX, "%s", obj);
	return 0;
}

int shmbus_unlink(const char *name)
{
	int rc = shm_name_check(name, "bus name");
	if (rc)
		return rc;
	char obj[SHM_OBJNAME_MAX], denied[DEVSHM_NAME_MAX] = "";
	shm_objname(obj, name, NULL);
	int found = unlink_obj(obj, denied);
	/* Channel objects: "/shmbus.NAME:CHANNEL". Found by listing /dev/shm
	 * rather than by reading the channel table, so that a corrupt bus can
	 * still be removed whole. */
	char prefix[SHM_OBJNAME_MAX];
	snprintf(prefix, sizeof(prefix), "%s%c", obj + 1, SHM_CHANNEL_SEP);
	DIR *d = opendir("/dev/shm");
	if (d) {
		struct dirent *e;
		size_t pl = strlen(prefix);
		while ((e = readdir(d)) != NULL) {
			if (strncmp(e->d_name, prefix, pl) != 0)
				continue;
			char chobj[DEVSHM_NAME_MAX];
			snprintf(chobj, sizeof(chobj), "/%s", e->d_name);
			found |= unlink_obj(chobj, denied);
		}
		closedir(d);
	}
	/* not "does not exist": it does, and is another user's */
	if (denied[0])
		return shmbus_adderr(shm_foreign(denied, "remove",
						 "run as its owner or as "
						 "root"),
				     "bus '%s'%s", name,
				     found ? " (removed in part)" : "");
	if (!found)
		return shmbus_seterr(SHMBUS_ENOENT, "bus '%s' does not exist",
				     name);
	return 0;
}

int bus_lock(shmbus_t *bus)
{
	/* Every control-path section publishes its change with a final
	 * state store, so a holder's death leaves nothing half-visible. */
	int err = shm_mutex_lock(&bus->sb->lock);
	if (err)
		return shmbus_seterr_sys(SHMBUS_ESYS, err, "bus '%s' lock",
					 bus->name);
	return 0;
}
SHMBUS_PRIVATE_EXPORT(bus_lock);

void bus_unlock(shmbus_t *bus)
{
	pthread_mutex_unlock(&bus->sb->lock);
}
SHMBUS_PRIVATE_EXPORT(bus_unlock);

int bus_participant_take(shmbus_t *bus, uint32_t kind, uint32_t channel_id,
			 const char *name, uint32_t *id)
{
	int rc = bus_lock(bus);
	if (rc)
		return rc;
	rc = shmbus_seterr(SHMBUS_EFULL,
			   "bus '%s': all %u participant slots are held by "
			   "live processes (raise max_participants)",
			   bus->name, bus->max_participants);
	/* Id 0 is never used, so a zero marker names nobody. Pass 0 takes
	 * only rows released cleanly (FREE); a LIVE row whose lock the kernel
	 * dropped belongs to a dead process and may still be named by a slot
	 * it claimed and never committed: it is reused only when no clean row
	 * is left (pass 1), and a watchdog frees it sooner, after repairing
	 * its holes. The lock is the truth about life, not the row. */
	for (uint32_t pass = 0, i = 1; pass < 2; i = 1, pass++)
	for (; i < bus->max_participants; i++) {
		struct sb_participant *p = &bus->parts[i];
		if (bit_get(bus->held_parts, i))
			continue;
		if (pass == 0 &&
		    atomic_load_explicit(&p->state, memory_order_relaxed) !=
			    PART_FREE)
			continue;
		if (shm_lock_byte(bus->map.fd, (off_t)i) != 0)
			continue;
		bit_set(bus->held_parts, i, true);
		p->kind = kind;
		p->pid = (int32_t)getpid();
		p->channel_id = channel_id;
		p->since_ns = shmbus_now_ns();
		atomic_store_explicit(&p->heartbeat_ns, p->since_ns,
				      memory_order_relaxed);
		atomic_store_explicit(&p->claim_intent, 0,
				      memory_order_relaxed);
		atomic_store_explicit(&p->published, 0, memory_order_relaxed);
		atomic_store_explicit(&p->waits, 0, memory_order_relaxed);
		atomic_store_explicit(&p->claim_lo, 0, memory_order_relaxed);
		atomic_store_explicit(&p->claim_hi, 0, memory_order_relaxed);
		snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
		/* release: the row's fields before its state, for readers
		 * (tools, watchdog) that acquire-load state */
		atomic_store_explicit(&p->state, PART_LIVE,
				      memory_order_release);
		*id = i;
		rc = 0;
		goto done;
	}
done:
	bus_unlock(bus);
	return rc;
}

void bus_participant_release(shmbus_t *bus, uint32_t id)
{
	if (id == 0 || id >= bus->max_participants)
		return;
	/* the bus lock also orders this process's threads on held_parts */
	int locked = bus_lock(bus) == 0;
	if (bit_get(bus->held_parts, id)) {
		atomic_store_explicit(&bus->parts[id].state, PART_FREE,
				      memory_order_release);
		shm_unlock_byte(bus->map.fd, (off_t)id);
		bit_set(bus->held_parts, id, false);
	}
	if (locked)
		bus_unlock(bus);
}

int shmbus_live_participants(shmbus_t *bus)
{
	int live = 0;
	for (uint32_t i = 1; i < bus->max_participants; i++) {
		/* acquire: pairs with the release in bus_participant_take */
		if (atomic_load_explicit(&bus->parts[i].state,
					 memory_order_acquire) == PART_FREE)
			continue;
		if (!bit_get(bus->held_parts, i) &&
		    shm_byte_held(bus->map.fd, (off_t)i))
			live++;
	}
	return live;
}

int shmbus_destroy(const char *name, int force)
{
	shmbus_opts_t o = {.flags = SHMBUS_OPEN_NO_PREFAULT,
			   .open_timeout_ms = 200};
	shmbus_t *bus;
	int rc = shmbus_open(name, &o, &bus);
	if (rc == SHMBUS_ENOENT)
		return shmbus_unlink(name) == 0 ? 0 : rc;
	if (rc == SHMBUS_EPERM && !force && geteuid() != 0)
		return shmbus_adderr(rc, "bus '%s' cannot be checked for live "
				     "users, nor removed but by its owner or "
				     "root",
				     name);
	if (rc && !force)
		return shmbus_adderr(rc, "bus '%s' cannot be checked for live "
				     "users (use --force to remove it anyway)",
				     name);
	if (rc == 0) {
		int live = shmbus_live_participants(bus);
		shmbus_close(bus);
		if (live > 0 && !force)
			return shmbus_seterr(SHMBUS_EBUSY,
					     "bus '%s' has %d live "
					     "participant(s); stop them first "
					     "or use --force",
					     name, live);
	}
	return shmbus_unlink(name);
}

bool bus_participant_dead(shmbus_t *bus, uint32_t id)
{
	if (id == 0 || id >= bus->max_participants ||
	    bit_get(bus->held_parts, id))
		return false;
	return !shm_byte_held(bus->map.fd, (off_t)id);
}
