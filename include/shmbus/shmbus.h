/*
 * shmbus — an event bus for processes on one host.
 *
 * Producers publish fixed-layout records into lock-free rings in POSIX shared
 * memory (one ring, a "channel", per event type); durable subscribers in other
 * processes consume them with Disruptor-style sequence cursors.
 *
 * Concurrency contract (who may call what at the same time):
 *   - A shmbus_t, shmbus_channel_t, shmbus_producer_t or shmbus_sub_t handle
 *     belongs to one thread at a time; different handles may be used from
 *     different threads and processes concurrently.
 *   - Handles do not survive fork(): a child opens its own.
 *   - Hot-path calls (claim, commit, publish, poll) make no system call, take
 *     no lock and allocate nothing, except when a wait strategy sleeps.
 *
 * Errors: control-path calls return 0 or a negative SHMBUS_E* code, and leave
 * a detailed message for the calling thread in shmbus_errmsg(). Hot-path calls
 * return 0, SHMBUS_EAGAIN or another negative code without formatting text,
 * except a claim that timed out waiting for room (it has waited anyway).
 */
#ifndef SHMBUS_SHMBUS_H
#define SHMBUS_SHMBUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <shmbus/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SHMBUS_API __attribute__((visibility("default")))
#else
#define SHMBUS_API
#endif

/* --------------------------------------------------------------- version */

/*
 * The library's version at run time; the headers a program was built with
 * say theirs in shmbus/version.h. A program checks the library it loaded:
 *   shmbus_version_number() >= SHMBUS_VERSION_NUMBER
 * (while the major version is 0 the soname carries the minor too, so the
 * loader refuses a library of another 0.x). The ABI version is the shared
 * memory layout's: processes meet on a bus only if theirs are equal.
 */
SHMBUS_API const char *shmbus_version(void); /* "0.4.0" */
SHMBUS_API uint32_t shmbus_version_number(void); /* SHMBUS_VERSION_NUMBER */
SHMBUS_API uint32_t shmbus_abi_version(void);	  /* SHMBUS_ABI_VERSION */

/* ---------------------------------------------------------------- errors */

enum shmbus_error {
	SHMBUS_OK = 0,
	SHMBUS_EAGAIN = -1,	  /* would wait: ring full or empty */
	SHMBUS_EINVAL = -2,	  /* bad argument (name, size, option) */
	SHMBUS_ENOENT = -3,	  /* no such bus, channel or subscriber */
	SHMBUS_EEXIST = -4,	  /* exists with another layout or config */
	SHMBUS_EBUSY = -5,	  /* held by a live process (lease, name) */
	SHMBUS_ENOMEM = -6,	  /* out of memory, /dev/shm full, mlock */
	SHMBUS_EVERSION = -7,	  /* object of another ABI version */
	SHMBUS_ECORRUPT = -8,	  /* shared state fails validation */
	SHMBUS_ETIMEDOUT = -9,	  /* creator did not finish in time; a sync
				   * journal did not confirm in time; no
				   * room in the ring (space_timeout_ms) */
	SHMBUS_EPERM = -10,	  /* permissions or ownership */
	SHMBUS_EFULL = -11,	  /* a fixed table is full */
	SHMBUS_ELAPPED = -12,	  /* overwrite reader was lapped (counted) */
	SHMBUS_ENOTSUP = -13,	  /* not supported here / yet */
	SHMBUS_ESYS = -14,	  /* a system call failed: see errmsg */
	SHMBUS_ECLOSED = -15,	  /* handle closed or bus removed */
	SHMBUS_EHANDLER = -16,	  /* a handler returned an error */
	/* returned by a handler: this record can never succeed (bad data),
	 * dead-letter it now instead of retrying */
	SHMBUS_EPERMANENT = -17,
	SHMBUS_EINTR = -18,	  /* a wait ended: a signal handler ran */
	/* poll: the subscriber dispatches to the handler registry, which
	 * has no handler for its channel now: nothing was delivered */
	SHMBUS_ENOHANDLER = -19,
};

/* Static text for a code; never NULL. */
SHMBUS_API const char *shmbus_strerror(int code);
/* The calling thread's message for its last failed control-path call. */
SHMBUS_API const char *shmbus_errmsg(void);

/* ------------------------------------------------------------------ bus */

typedef struct shmbus shmbus_t;
typedef struct shmbus_channel shmbus_channel_t;
typedef struct shmbus_producer shmbus_producer_t;
typedef struct shmbus_sub shmbus_sub_t;
typedef struct shmbus_poller shmbus_poller_t;

/* Longest bus and channel names; names are [A-Za-z0-9_.-]. */
#define SHMBUS_NAME_MAX 47

enum shmbus_open_flags {
	SHMBUS_OPEN_CREATE = 1u << 0,	/* create if missing (default set) */
	SHMBUS_OPEN_EXCL = 1u << 1,	/* fail with EEXIST if it exists */
	SHMBUS_OPEN_MLOCK = 1u << 2,	/* mlock every mapping */
	SHMBUS_OPEN_HUGEPAGES = 1u << 3, /* MADV_HUGEPAGE on rings */
	SHMBUS_OPEN_ANY_OWNER = 1u << 4, /* accept objects of other uids */
	SHMBUS_OPEN_NO_PREFAULT = 1u << 5, /* skip touching every page */
};

typedef struct shmbus_opts {
	uint32_t flags;		   /* shmbus_open_flags; 0 = CREATE */
	uint32_t mode;		   /* permission bits; 0 = 0600 */
	uint32_t max_channels;	   /* 0 = 256 */
	uint32_t max_participants; /* producers + subscribers; 0 = 1024 */
	uint32_t open_timeout_ms;  /* wait for a creator; 0 = 2000 */
	int numa_node;		   /* -1 or 0 = no binding; n+1 binds to node n */
} shmbus_opts_t;

/*
 * Create or attach the bus NAME (shared memory object "/shmbus.NAME").
 * Any process may start first: the creator publishes the object last and
 * openers wait up to open_timeout_ms for it. opts may be NULL.
 */
SHMBUS_API int shmbus_open(const char *name, const shmbus_opts_t *opts,
			   shmbus_t **out);
/* Detach; closes every channel, producer and subscriber still open. */
SHMBUS_API void shmbus_close(shmbus_t *bus);
/* Remove the bus and all its channels from /dev/shm. Mapped users keep
 * working on the old memory; new opens create a new bus (a new epoch).
 * SHMBUS_ENOENT if none of its objects exists; SHMBUS_EPERM, naming the
 * owner, if one is another user's (the others are removed). */
SHMBUS_API int shmbus_unlink(const char *name);
/* shmbus_unlink, refused with SHMBUS_EBUSY while live processes hold
 * participants of the bus (as the kernel reports), unless force. A bus that
 * fails validation is removed only with force. */
SHMBUS_API int shmbus_destroy(const char *name, int force);
/* Participants of the bus held by live processes, other than this handle's
 * (the kernel's locks tell; pids are only shown as hints by tools). */
SHMBUS_API int shmbus_live_participants(shmbus_t *bus);

SHMBUS_API uint64_t shmbus_epoch(const shmbus_t *bus);
/* The bus clock in nanoseconds: the time base of every record's timestamp,
 * the same in every process of the bus. It is the TSC, calibrated once by
 * the bus creator against CLOCK_MONOTONIC, where the kernel trusts the TSC,
 * and CLOCK_MONOTONIC elsewhere. A handler's latency is
 * shmbus_clock_ns(bus) - rec->timestamp. */
SHMBUS_API uint64_t shmbus_clock_ns(const shmbus_t *bus);
/* CLOCK_MONOTONIC in nanoseconds (time-outs). */
SHMBUS_API uint64_t shmbus_now_ns(void);

/* ------------------------------------------------------------- channels */

enum shmbus_channel_flags {
	SHMBUS_CH_MULTI_PRODUCER = 1u << 0, /* claim by fetch-add / CAS */
	SHMBUS_CH_OVERWRITE = 1u << 1,	    /* producer never waits (SP only) */
	/* Synchronous journal: a commit returns once the channel's journaler
	 * (shmbus_journal_attach, <shmbus/journal.h>; one per channel, never
	 * evicted) has appended the records, so the journal holds them, in
	 * sequence order, when it returns. A claim while no journaler is
	 * attached fails with SHMBUS_ENOENT, claiming nothing; a commit whose
	 * journaler left cleanly before journaling it returns
	 * SHMBUS_ETIMEDOUT within 2 s. Back-pressure channels only. */
	SHMBUS_CH_JOURNAL_SYNC = 1u << 2,
	/* Records carry no publish time: a commit reads no clock (10-30 ns
	 * of a round trip where the clock is the vDSO's, as on most VMs).
	 * rec->timestamp is 0, subscribers sample no latency, and the
	 * journaler stamps each batch with the time it journals it, so that
	 * replay by time still works (by journal time). */
	SHMBUS_CH_NO_TIMESTAMP = 1u << 3,
	/* Compact slots: an 8-byte header (the commit word and the length)
	 * in front of each payload instead of SHMBUS_RECORD_HEADER's 32, so
	 * a 64-byte record takes 72 bytes of ring (1.125 cache lines, not
	 * 1.5) and an 8-byte one 16. The price: records carry no publish
	 * time (as SHMBUS_CH_NO_TIMESTAMP, implied), no key and no origin.
	 * rec->timestamp and rec->key are 0 and rec->origin is rec->seq; a
	 * publish or claim with a nonzero key, shmbus_republish (so DLQ and
	 * journal replays into the ring: shmbus_dlq_replay_to still works)
	 * and a keyed group (SHMBUS_GROUP_KEYED) are refused with
	 * SHMBUS_EINVAL, claiming nothing. Everything else is unchanged. */
	SHMBUS_CH_COMPACT = 1u << 4,
};

enum shmbus_stall_policy {
	SHMBUS_STALL_BLOCK = 0, /* producers wait for the slowest subscriber */
	SHMBUS_STALL_EVICT = 1, /* detached after a grace time (see
				 * shmbus_channel_evict); told what it missed */
	/* as EVICT, but nothing is lost: an evicted subscriber reads what it
	 * skipped from the channel's journal (shmbus_sub_opts_t.journal),
	 * then goes on in the ring; the journaler is never evicted */
	SHMBUS_STALL_SPILL = 2,
};

/* ------------------------------------------------------------- schemas */

/*
 * A channel may describe its record's fields, so that tools (`shmbus tail`,
 * `shmbus pub`, bridges) decode and encode records by name. Declare it next
 * to the struct; the macros take offset and size from the compiler and
 * refuse (at compile time) a member whose size does not fit its type:
 *
 *   struct order { uint64_t id; int32_t qty; double px; char sym[8];
 *                  uint8_t side; };
 *   static const shmbus_enum_value_t sides[] = {{"BUY", 0}, {"SELL", 1}};
 *   static const shmbus_field_t order_fields[] = {
 *       SHMBUS_FIELD(struct order, id, SHMBUS_F_U64),
 *       SHMBUS_FIELD(struct order, qty, SHMBUS_F_I32),
 *       SHMBUS_FIELD(struct order, px, SHMBUS_F_F64),
 *       SHMBUS_FIELD(struct order, sym, SHMBUS_F_CHARS),
 *       SHMBUS_FIELD_ENUM(struct order, side, sides),
 *   };
 *   static const shmbus_schema_t order_schema =
 *       SHMBUS_SCHEMA(struct order, order_fields);
 */
enum shmbus_field_type {
	SHMBUS_F_U8 = 1, SHMBUS_F_U16, SHMBUS_F_U32, SHMBUS_F_U64,
	SHMBUS_F_I8, SHMBUS_F_I16, SHMBUS_F_I32, SHMBUS_F_I64,
	SHMBUS_F_F32, SHMBUS_F_F64,
	SHMBUS_F_CHARS, /* fixed-size text, NUL-padded */
	SHMBUS_F_BYTES, /* fixed-size bytes (hex in JSON) */
	SHMBUS_F_ENUM,	/* an unsigned integer of 1, 2, 4 or 8 bytes, named */
	SHMBUS_F_BOOL,	/* one byte, 0 or 1 */
};

typedef struct shmbus_enum_value {
	const char *name; /* up to 23 bytes */
	int64_t value;
} shmbus_enum_value_t;

typedef struct shmbus_field {
	const char *name; /* up to 31 bytes */
	uint32_t type;	  /* shmbus_field_type */
	uint32_t offset, size;
	const shmbus_enum_value_t *enums;
	uint32_t n_enums;
} shmbus_field_t;

typedef struct shmbus_schema {
	const char *type_name; /* up to 47 bytes */
	uint32_t size;	       /* sizeof the record struct */
	uint32_t n_fields;     /* at most 64 (and 128 enum values in all) */
	const shmbus_field_t *fields;
} shmbus_schema_t;

/* The size a field type needs (0: any size, for CHARS and BYTES). */
#define SHMBUS_F_SIZE_(t)                                                      \
	((t) == SHMBUS_F_U8 || (t) == SHMBUS_F_I8 || (t) == SHMBUS_F_BOOL      \
		 ? 1u                                                          \
	 : (t) == SHMBUS_F_U16 || (t) == SHMBUS_F_I16 ? 2u                     \
	 : (t) == SHMBUS_F_U32 || (t) == SHMBUS_F_I32 || (t) == SHMBUS_F_F32   \
		 ? 4u                                                          \
	 : (t) == SHMBUS_F_U64 || (t) == SHMBUS_F_I64 || (t) == SHMBUS_F_F64   \
		 ? 8u                                                          \
		 : 0u)
/* sizeof the member, or a compile error if the type needs another size */
#define SHMBUS_MEMBER_SIZE_(T, m, t)                                           \
	((uint32_t)sizeof(((T *)0)->m) +                                       \
	 0u * (uint32_t)sizeof(char[(SHMBUS_F_SIZE_(t) == 0 ||                 \
				     SHMBUS_F_SIZE_(t) ==                      \
					     sizeof(((T *)0)->m))              \
					    ? 1                                \
					    : -1]))
#define SHMBUS_FIELD(T, m, t)                                                  \
	{#m, (t), (uint32_t)offsetof(T, m), SHMBUS_MEMBER_SIZE_(T, m, t), NULL, \
	 0}
#define SHMBUS_FIELD_ENUM(T, m, values)                                        \
	{#m,                                                                   \
	 SHMBUS_F_ENUM,                                                        \
	 (uint32_t)offsetof(T, m),                                             \
	 (uint32_t)sizeof(((T *)0)->m),                                        \
	 (values),                                                             \
	 (uint32_t)(sizeof(values) / sizeof((values)[0]))}
#define SHMBUS_SCHEMA(T, fields)                                               \
	{#T, (uint32_t)sizeof(T),                                              \
	 (uint32_t)(sizeof(fields) / sizeof((fields)[0])), (fields)}

typedef struct shmbus_channel_opts {
	uint32_t record_size;	  /* largest payload in bytes, > 0 */
	uint32_t capacity;	  /* slots, a power of two >= 2 */
	uint64_t layout_hash;	  /* identity of the record's C layout */
	uint32_t flags;		  /* shmbus_channel_flags */
	uint32_t stall_policy;	  /* shmbus_stall_policy */
	uint32_t max_subscribers; /* 0 = 32 */
	uint32_t max_groups;	  /* competing groups; 0 = 2 */
	/* failed records waiting for redelivery, per subscriber (each entry
	 * holds a copy of the record); 0 = capacity / max_subscribers, within
	 * 4..32 (all segments together about the ring's size) */
	uint32_t retry_capacity;
	/* dead-letter queue entries, a power of two; 0 = 128 */
	uint32_t dlq_capacity;
	uint32_t dlq_policy; /* shmbus_dlq_policy, when the DLQ is full */
	/* the record's fields, stored in the channel for tools (optional;
	 * an attacher that gives one must give the same) */
	const shmbus_schema_t *schema;
} shmbus_channel_opts_t;

enum shmbus_dlq_policy {
	/* the oldest entry is overwritten, and counted in dropped */
	SHMBUS_DLQ_DROP_OLDEST = 0,
	/* the put is refused and counted; the record stays in its retry
	 * segment and is tried again, at the back-off cap */
	SHMBUS_DLQ_REFUSE = 1,
};

/*
 * Create the channel NAME on first use, or attach it. Attaching with a
 * different record_size, capacity, flags or layout_hash fails with
 * SHMBUS_EEXIST and says which differs; opts NULL attaches whatever exists
 * (SHMBUS_ENOENT if nothing does after open_timeout_ms).
 */
SHMBUS_API int shmbus_channel_open(shmbus_t *bus, const char *name,
				   const shmbus_channel_opts_t *opts,
				   shmbus_channel_t **out);
SHMBUS_API void shmbus_channel_close(shmbus_channel_t *ch);

typedef struct shmbus_channel_info {
	char name[SHMBUS_NAME_MAX + 1];
	uint32_t id;
	uint32_t record_size, slot_size, capacity, flags, stall_policy;
	uint32_t max_subscribers;
	uint32_t max_groups;
	uint64_t layout_hash;
	uint64_t claimed; /* next sequence to be claimed */
	uint64_t tombstones; /* holes of dead producers repaired */
	uint32_t retry_capacity, dlq_capacity, dlq_policy;
	uint32_t schema_fields; /* 0: no schema */
	char schema_type[48];	/* the schema's type name, or "" */
	/* SHMBUS_CH_JOURNAL_SYNC: 1 while a journaler is attached (claims
	 * are accepted), else 0 */
	uint32_t journal_attached;
} shmbus_channel_info_t;
SHMBUS_API int shmbus_channel_get_info(shmbus_channel_t *ch,
				   shmbus_channel_info_t *info);

/* -------------------------------------------------------------- records */

/* The 32-byte header in front of every payload (8 bytes on a
 * SHMBUS_CH_COMPACT channel; see docs/architecture.md). */
#define SHMBUS_RECORD_HEADER 32u

enum shmbus_record_flags {
	SHMBUS_REC_REPUBLISHED = 1u << 0, /* origin names an earlier record */
	SHMBUS_REC_TOMBSTONE = 1u << 1,	  /* a hole repaired by the watchdog */
};

/* What a handler sees. data points into the ring (back-pressure channels)
 * or into a private copy (overwrite channels); valid until it returns. */
typedef struct shmbus_record {
	const void *data;
	uint32_t len;
	uint32_t flags;	    /* shmbus_record_flags */
	uint64_t seq;	    /* sequence in this channel */
	uint64_t timestamp; /* publish time, shmbus_clock_ns() */
	uint64_t key;	    /* aggregate id */
	/* Identity that survives re-publishing: the sequence of the original
	 * record in this channel (== seq when not re-published). Handlers
	 * de-duplicate on (bus epoch, channel id, origin). */
	uint64_t origin;
	uint32_t channel_id;
	uint32_t producer; /* participant id of the publisher */
	uint32_t attempt;  /* 1 for a first delivery, n for the n-th */
	uint32_t reserved;
} shmbus_record_t;

/* ------------------------------------------------------------ producers */

enum shmbus_wait {
	SHMBUS_WAIT_SPIN = 0,	 /* busy-spin with a pause instruction */
	SHMBUS_WAIT_YIELD = 1,	 /* sched_yield between polls */
	SHMBUS_WAIT_BACKOFF = 2, /* spin, then yield, then sleep */
	SHMBUS_WAIT_BLOCK = 3,	 /* futex in shared memory (ck_ec) */
};

typedef struct shmbus_producer_opts {
	uint32_t wait; /* shmbus_wait, for a full ring (block policy), and
			* on a SHMBUS_CH_JOURNAL_SYNC channel for the journal */
	/* SHMBUS_CH_JOURNAL_SYNC: how long a commit waits for the journaler
	 * before it returns SHMBUS_ETIMEDOUT (the records are in the bus and
	 * stay in the ring until journaled: the journaler's name gates
	 * producers); 0 = forever */
	uint32_t journal_timeout_ms;
	/* How long a claim (or publish) waits for room in a full ring
	 * before it fails with SHMBUS_ETIMEDOUT, having claimed nothing;
	 * shmbus_errmsg() then names the subscriber or group that holds the
	 * ring back, its cursor, and whether a live process holds it (an
	 * abandoned name is removed with shmbus_unsubscribe or `shmbus
	 * unsubscribe`). 0 = for ever (the default). On a multi-producer
	 * channel a claim with a time-out waits for room first and then
	 * claims by CAS, as shmbus_try_claim does, since a fetch-add cannot
	 * be undone (its slots would have to be filled): so a time-out
	 * leaves no hole, and such claims are not served in arrival order. */
	uint32_t space_timeout_ms;
} shmbus_producer_opts_t;

/*
 * Attach a producer to a channel. On a single-producer channel this takes
 * the channel's exclusive lease, held by the kernel for this process: a second
 * live producer gets SHMBUS_EBUSY; a dead holder's lease is free again.
 */
SHMBUS_API int shmbus_producer_open(shmbus_channel_t *ch,
				    const shmbus_producer_opts_t *opts,
				    shmbus_producer_t **out);
SHMBUS_API void shmbus_producer_close(shmbus_producer_t *p);

/* A claimed range of slots, filled in place, then committed. */
typedef struct shmbus_claim_range {
	uint64_t seq; /* first sequence */
	uint32_t n;   /* number of slots */
	/* filled by shmbus_claim for shmbus_claim_at(); do not change.
	 * slots + SHMBUS_RECORD_HEADER is the payload of slot 0: on a
	 * SHMBUS_CH_COMPACT channel slots is 24 bytes before the ring (in
	 * the channel's mapping), so that the same add finds it. */
	uint32_t slot_size;
	uint8_t *slots;
	uint64_t mask;
} shmbus_claim_t;

/*
 * Claim n consecutive slots (1 <= n <= capacity). shmbus_claim waits by the
 * producer's wait strategy while the ring is full (at most space_timeout_ms,
 * then SHMBUS_ETIMEDOUT with a message); shmbus_try_claim returns
 * SHMBUS_EAGAIN instead (on a multi-producer channel it claims by CAS, so a
 * refusal leaves no hole). Every claimed slot must be committed. On a
 * SHMBUS_CH_JOURNAL_SYNC channel the commit (try or not) then waits for the
 * journal, up to journal_timeout_ms.
 */
SHMBUS_API int shmbus_claim(shmbus_producer_t *p, uint32_t n,
			    shmbus_claim_t *c);
SHMBUS_API int shmbus_try_claim(shmbus_producer_t *p, uint32_t n,
				shmbus_claim_t *c);
/* Payload area of the i-th claimed slot (record_size bytes, 8-aligned). */
SHMBUS_API void *shmbus_claim_payload(shmbus_producer_t *p,
				      const shmbus_claim_t *c, uint32_t i);
/* The same, inline: no call on the hot path. */
static inline void *shmbus_claim_at(const shmbus_claim_t *c, uint32_t i)
{
	return c->slots + (size_t)((c->seq + i) & c->mask) * c->slot_size +
	       SHMBUS_RECORD_HEADER;
}
/* Set length and key of the i-th slot before commit (defaults: record_size,
 * key 0). SHMBUS_EINVAL if len > record_size or i is outside the claim, or
 * for a nonzero key on a SHMBUS_CH_COMPACT channel (the slot unchanged). */
SHMBUS_API int shmbus_claim_set(shmbus_producer_t *p, const shmbus_claim_t *c,
				uint32_t i, uint32_t len, uint64_t key);
/*
 * Fill the i-th slot: copy len bytes of payload in, and set its length and
 * key (shmbus_claim_set). Readers that do not gate producers -- spies
 * (`shmbus tail`), overwrite readers, a subscriber evicted from an evict
 * channel -- may copy a slot while it is written, and throw that copy
 * away; this writes the payload as relaxed atomic 8-byte words, as
 * shmbus_publish does, so that such a read is no data race in the C11
 * model (nor for TSan). Plain stores through shmbus_claim_at() compile to
 * the same moves on x86-64 and AArch64, but are a race in the model.
 */
SHMBUS_API int shmbus_claim_write(shmbus_producer_t *p,
				  const shmbus_claim_t *c, uint32_t i,
				  const void *data, uint32_t len,
				  uint64_t key);
/* Publish every slot of the claim: timestamp once, markers in order. */
SHMBUS_API int shmbus_commit(shmbus_producer_t *p, const shmbus_claim_t *c);

/* Copying publish of one record. len <= record_size; on a
 * SHMBUS_CH_COMPACT channel key must be 0 (else SHMBUS_EINVAL, nothing
 * claimed). */
SHMBUS_API int shmbus_publish(shmbus_producer_t *p, const void *data,
			      uint32_t len, uint64_t key);
SHMBUS_API int shmbus_try_publish(shmbus_producer_t *p, const void *data,
				  uint32_t len, uint64_t key);
/* Re-publish a record (DLQ or journal replay, bridges): keeps its origin.
 * Refused (SHMBUS_EINVAL, nothing claimed) on a SHMBUS_CH_COMPACT channel,
 * whose slots have no room for the origin. */
SHMBUS_API int shmbus_republish(shmbus_producer_t *p,
				const shmbus_record_t *rec);

/* ---------------------------------------------------------- subscribers */

/*
 * Return 0 on success. A negative value is a failure: the record is
 * delivered again later by the subscription's retry policy, and after its
 * last attempt (or at once, for SHMBUS_EPERMANENT) it goes to the
 * channel's dead-letter queue with the value, the attempt count, the
 * subscriber's name and the text of shmbus_fail_note().
 */
typedef int (*shmbus_handler_fn)(const shmbus_record_t *rec, void *ctx);

/* Inside a failing handler: a short text (up to 71 bytes) kept with the
 * record if it is dead-lettered. */
SHMBUS_API void shmbus_fail_note(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

enum shmbus_retry_policy {
	/* A failed record is copied to the subscriber's retry segment in
	 * shared memory and the cursor moves on: other records are not held
	 * up. First deliveries keep the channel's order; redeliveries do not.
	 */
	SHMBUS_RETRY_SEGMENT = 0,
	/* Strict order: the subscriber (only it) holds at the failing record
	 * and delivers it again after each back-off until it succeeds or is
	 * dead-lettered. Not for groups or overwrite channels. */
	SHMBUS_RETRY_ORDERED = 1,
};

enum shmbus_retry_full {
	/* A full retry segment holds the subscriber at the failing record
	 * (back-pressure on it alone) until the segment has room. */
	SHMBUS_RETRY_FULL_HOLD = 0,
	/* A full retry segment sends the failed record to the DLQ. */
	SHMBUS_RETRY_FULL_DLQ = 1,
};

/* Back-off before the n-th redelivery: d = min(cap, base * 2^(n-1)),
 * jittered uniformly in [d/2, d]. State survives a restart of the
 * subscriber's process (it lives in the channel object). */
typedef struct shmbus_retry_opts {
	uint32_t policy;       /* shmbus_retry_policy */
	uint32_t max_attempts; /* deliveries in all; 0 = 5; 1 = no retry */
	uint32_t base_us;      /* 0 = 1000 */
	uint32_t cap_us;       /* 0 = 1000000 */
	uint32_t on_full;      /* shmbus_retry_full */
} shmbus_retry_opts_t;

enum shmbus_sub_flags {
	/* shmbus_group_join: records with the same key go to the same member
	 * while membership is stable (per-key order); keys move when members
	 * join or leave, never handled by two members at once. Refused on
	 * a SHMBUS_CH_COMPACT channel (its records have no key). */
	SHMBUS_GROUP_KEYED = 1u << 0,
	/* do not sample publish-to-handler latency into the row's histogram
	 * (one clock read per batch) */
	SHMBUS_SUB_NO_LATENCY = 1u << 1,
};

typedef struct shmbus_sub_opts {
	const char *name; /* durable identity on the channel; required */
	uint32_t wait;	  /* shmbus_wait, when nothing is available */
	uint32_t flags;	  /* shmbus_sub_flags */
	uint32_t batch;	  /* most records per cursor update; 0 = 256 */
	/* Time-to-live of the name once abandoned (closed, or its process
	 * dead): after it, shmbus_channel_expire forgets the name and it stops
	 * gating producers. 0 = never (the default: durable). */
	uint64_t ttl_ms;
	/* Dependency barrier: names of subscribers of the same channel that
	 * must have passed a record before this one sees it (the Disruptor's
	 * sequence barrier: journal -> risk -> strategy). They must exist;
	 * a cycle is refused with SHMBUS_EINVAL. */
	const char *const *after;
	uint32_t n_after; /* at most SHMBUS_MAX_AFTER */
	shmbus_retry_opts_t retry; /* what happens when the handler fails */
	/* SHMBUS_STALL_SPILL channels: the directory of the channel's
	 * journal, where an evicted subscriber reads what it skipped
	 * (required there) */
	const char *journal;
} shmbus_sub_opts_t;
#define SHMBUS_MAX_AFTER 8

/*
 * Subscribe handler to a channel under a durable name (fn NULL: the
 * registry's handlers for this channel, which must have one: else
 * SHMBUS_ENOENT, see the handler registry below). A name seen before
 * resumes at its cursor (nothing lost, nothing skipped under the block
 * policy); a new name joins at the next record to be published. The name is
 * held by the kernel for this process: a second live subscriber with the
 * same name gets SHMBUS_EBUSY.
 */
SHMBUS_API int shmbus_subscribe(shmbus_channel_t *ch, shmbus_handler_fn fn,
				void *ctx, const shmbus_sub_opts_t *opts,
				shmbus_sub_t **out);

/* ------------------------------------------------- handler registry */

/*
 * The process-local registry: channel name -> handlers, like the seed event
 * bus's registerHandler. A subscriber (or group member) opened with
 * fn == NULL dispatches each record to every handler registered for its
 * channel on its bus handle, looked up without a lock (liburcu's
 * rculfhash); handlers may be added and removed while dispatch runs, but
 * not from inside a handler. Once shmbus_handler_remove returns, the
 * handler is not running and will not run.
 *
 * No record passes unseen. shmbus_subscribe(ch, NULL, ...) fails with
 * SHMBUS_ENOENT, naming the channel and the channels that do have
 * handlers, while the channel has none (a misspelt SHMBUS_HANDLER, or a
 * handler added after subscribing). Each poll takes the channel's handler
 * set once; if it is empty (every handler was removed), the poll delivers
 * nothing and returns SHMBUS_ENOHANDLER: the cursor stays at the first
 * record no handler saw, which keeps gating producers (block policy), and
 * delivery goes on from it once a handler is added. Meanwhile
 * shmbus_sub_wait sleeps (to its time-out) as if nothing were available,
 * a dispatcher thread waits, and a poller looks at the channel again
 * every 10 ms, returning SHMBUS_ENOHANDLER each time.
 */
SHMBUS_API int shmbus_handler_add(shmbus_t *bus, const char *channel,
				  shmbus_handler_fn fn, void *ctx);
SHMBUS_API int shmbus_handler_remove(shmbus_t *bus, const char *channel,
				     shmbus_handler_fn fn, void *ctx);

typedef struct shmbus_handler_reg {
	const char *channel;
	shmbus_handler_fn fn;
	void *ctx;
	const char *name;
	struct shmbus_handler_reg *next;
} shmbus_handler_reg_t;
SHMBUS_API void shmbus_handler_static_add(shmbus_handler_reg_t *reg);

/*
 * Register fn for a channel at load time, bound to every bus this process
 * opens afterwards: the C analogue of @EventHandler(OrderPlaced).
 *   SHMBUS_HANDLER(OrderPlaced, on_order_placed)        ctx is NULL
 *   SHMBUS_HANDLER_NAMED("md.quotes-v2", on_quote)
 *   SHMBUS_HANDLER_CTX(OrderPlaced, on_order_placed, &risk_book)
 *   SHMBUS_HANDLER_NAMED_CTX("md.quotes-v2", on_quote, &quote_cache)
 * The context expression is evaluated once, at load time (before main):
 * the address of a static object, typically. shmbus_handler_remove takes
 * the same (fn, ctx) pair. The channel is matched exactly: a subscriber
 * of a channel without a handler is refused (see above).
 */
#define SHMBUS_CAT2_(a, b) a##b
#define SHMBUS_CAT_(a, b) SHMBUS_CAT2_(a, b)
#define SHMBUS_HANDLER_REG_(channel_str, fn, ctx_expr, id)                     \
	static shmbus_handler_reg_t SHMBUS_CAT_(shmbus_reg_, id) = {          \
		channel_str, fn, NULL, #fn, NULL};                             \
	__attribute__((constructor)) static void SHMBUS_CAT_(                 \
		shmbus_reg_init_, id)(void)                                    \
	{                                                                      \
		SHMBUS_CAT_(shmbus_reg_, id).ctx = (ctx_expr);                 \
		shmbus_handler_static_add(&SHMBUS_CAT_(shmbus_reg_, id));      \
	}
#define SHMBUS_HANDLER_NAMED_CTX(channel_str, fn, ctx_expr)                    \
	SHMBUS_HANDLER_REG_(channel_str, fn, ctx_expr,                         \
			    SHMBUS_CAT_(fn, __COUNTER__))
#define SHMBUS_HANDLER_NAMED(channel_str, fn)                                  \
	SHMBUS_HANDLER_NAMED_CTX(channel_str, fn, NULL)
#define SHMBUS_HANDLER_CTX(channel_token, fn, ctx_expr)                        \
	SHMBUS_HANDLER_NAMED_CTX(#channel_token, fn, ctx_expr)
#define SHMBUS_HANDLER(channel_token, fn)                                      \
	SHMBUS_HANDLER_NAMED(#channel_token, fn)

/*
 * Join the competing-consumer group opts->name as a member: each record of
 * the channel goes to one member of the group. The group is durable by name
 * (its floor gates producers like a subscriber's cursor); members join and
 * leave at any time. Exactly once while no member dies; at-least-once
 * across a member's death (the records it had taken are handled again by
 * another member). Poll, wait, close and pollers work as for subscribers;
 * shmbus_unsubscribe removes a group that has no live member.
 */
SHMBUS_API int shmbus_group_join(shmbus_channel_t *ch, shmbus_handler_fn fn,
				 void *ctx, const shmbus_sub_opts_t *opts,
				 shmbus_sub_t **out);

/*
 * Dispatch up to max available records on the calling thread; returns the
 * number dispatched (0 if none) or a negative error. Never waits.
 * SHMBUS_ENOHANDLER: a registry subscriber whose channel has no handler
 * now; nothing was delivered (see the handler registry above).
 */
SHMBUS_API int shmbus_poll(shmbus_sub_t *s, uint32_t max);
/*
 * Wait by the subscriber's strategy until a record is available or
 * timeout_ns passes (0 = forever): 0 (records, or a retry fell due), or
 * SHMBUS_EAGAIN at the time-out, which is kept to within a millisecond or
 * two and never cut short.
 *
 * SHMBUS_EINTR: a signal handler ran in this thread during the wait;
 * check your stop flag, then wait again. So that no signal goes unseen,
 * the yield, backoff and block strategies hold asynchronous signals off
 * while they idle and let them through at least every 20 ms (backoff: at
 * once): a handler runs at most that late. In a threaded process the
 * kernel may give a process-wide signal to another thread, which does not
 * hold it off; this wait then goes on. A signal whose action is to ignore
 * it ends nothing; a spinning wait sees signals only at its time-out; a
 * handler that ran before the call is not seen (check the flag first). A
 * handler still pending when the wait returns runs before it returns.
 */
SHMBUS_API int shmbus_sub_wait(shmbus_sub_t *s, uint64_t timeout_ns);
/* 1 while s still reads records from before the ring (the journal part of
 * shmbus_journal_subscribe, or a spill after an eviction), 0 once it reads
 * the ring (from the thread that polls s, or after shmbus_sub_stop: the
 * poll changes it). */
SHMBUS_API int shmbus_sub_replaying(const shmbus_sub_t *s);

/*
 * An optional dispatcher thread: polls and waits on a thread the library
 * starts, pinned to cpu (-1: not pinned). While it runs, the handle belongs
 * to it: call only shmbus_sub_stop (or shmbus_sub_close, which stops it).
 */
SHMBUS_API int shmbus_sub_start(shmbus_sub_t *s, int cpu);
SHMBUS_API int shmbus_sub_stop(shmbus_sub_t *s);

/*
 * A poller: one thread consuming many channels. Producers mark a channel
 * ready in the poller's bitmap after each commit, so a poll reads the bitmap
 * and the active channels only, and a blocked poller sleeps on one futex
 * word for all of them. Subscribers stay separate handles (cursor, handler)
 * and must outlive their poller or be closed first (closing removes them).
 */
SHMBUS_API int shmbus_poller_open(shmbus_t *bus, uint32_t wait,
				  shmbus_poller_t **out);
SHMBUS_API int shmbus_poller_add(shmbus_poller_t *pl, shmbus_sub_t *s);
/* Dispatch up to max records across the ready channels; never waits.
 * A subscriber's error ends the poll with it (SHMBUS_ENOHANDLER: that
 * channel is looked at again in 10 ms; the others at the next poll). */
SHMBUS_API int shmbus_poller_poll(shmbus_poller_t *pl, uint32_t max);
/* Wait by the poller's strategy until a channel is ready or timeout_ns
 * passes (0 = forever): 0, SHMBUS_EAGAIN or SHMBUS_EINTR, as
 * shmbus_sub_wait. */
SHMBUS_API int shmbus_poller_wait(shmbus_poller_t *pl, uint64_t timeout_ns);
SHMBUS_API void shmbus_poller_close(shmbus_poller_t *pl);

typedef struct shmbus_sub_stats {
	uint64_t cursor;    /* next sequence this subscriber will read */
	uint64_t delivered; /* records handed to the handler, this handle */
	uint64_t failed;    /* handler returned < 0 */
	uint64_t lost;	    /* overwrite channels: records lapped, this handle
			     * (the name's total is kept in shared memory) */
	uint64_t tombstones; /* holes of dead producers, skipped */
	uint64_t missed;     /* records skipped by rejoins after eviction */
	uint64_t retried;    /* redeliveries (included in delivered) */
	uint64_t dead_lettered; /* records this handle sent to the DLQ */
} shmbus_sub_stats_t;
SHMBUS_API void shmbus_sub_get_stats(const shmbus_sub_t *s, shmbus_sub_stats_t *st);

/* Close the handle; the durable cursor stays (and keeps gating producers
 * under the block policy). drain: dispatch what is available first. */
SHMBUS_API int shmbus_sub_close(shmbus_sub_t *s, int drain);
/*
 * Eviction, on channels with SHMBUS_STALL_EVICT or _SPILL: detach every
 * broadcast subscriber that has held producers back (a full ring behind)
 * without moving for grace_ms, so that producers go on (never the
 * journaler of a spill or synchronous channel). Returns how many were
 * evicted. An evicted subscriber keeps its name: its next poll (or its
 * next shmbus_subscribe, if its process had died) rejoins at the present
 * and, under EVICT, returns SHMBUS_ELAPPED once and counts exactly what it
 * missed in stats.missed; under SPILL it reads what it skipped from the
 * journal first. On these channels a handler gets a copy of each record,
 * checked whole before the call: never a record rewritten under it.
 * Subscribers that run after an evicted one are evicted with it (a
 * subscriber with a group or the journaler after it, or with anything
 * after it on a SPILL channel, is not evicted). The watchdog runs this
 * periodically; an application may.
 */
SHMBUS_API int shmbus_channel_evict(shmbus_channel_t *ch, uint64_t grace_ms);
/* Evict the subscriber `name` now, stalled or not, as shmbus_channel_evict
 * does after its grace: producers stop waiting for it at once; its holder,
 * if one lives, learns at its next poll and rejoins at the present under
 * its name (a name cannot be taken from a live process). For a holder that
 * hangs. SHMBUS_EINVAL on a block-policy channel (its subscribers read in
 * place and do not look for eviction), for a group or a journaler that is
 * never evicted; SHMBUS_ENOENT without such a name; 0 if already evicted. */
SHMBUS_API int shmbus_channel_evict_sub(shmbus_channel_t *ch,
					const char *name);
/* Forget abandoned names whose time-to-live has passed; returns how many
 * (>= 0) or an error. Runs at every shmbus_subscribe of the channel too; the
 * watchdog will run it periodically. */
SHMBUS_API int shmbus_channel_expire(shmbus_channel_t *ch);
/* Forget a durable subscriber name (or a group): it stops gating
 * producers, and its pending retries go to the dead-letter queue. Fails
 * with SHMBUS_EBUSY while a live process holds it (the message gives its
 * pid, a hint) or while other subscribers run after it. */
SHMBUS_API int shmbus_unsubscribe(shmbus_channel_t *ch, const char *name);

/* -------------------------------------------------------- introspection */

/*
 * What tools read from a running bus without slowing it: lock-free reads
 * of counters that each producer and subscriber keeps on its own cache
 * lines. Figures are a moment's view, not a transaction.
 */

/* The channels of a bus (from its table; no channel is opened). */
SHMBUS_API int shmbus_bus_channels(shmbus_t *bus, shmbus_channel_info_t *out,
				   uint32_t max);

/* the bounds of shmbus_sub_info_t's lat_le: 16 ns times powers of 4 */
#define SHMBUS_LAT_LE_N 15
#define SHMBUS_LAT_LE_NS(i) (16ull << (2 * (i)))

typedef struct shmbus_sub_info {
	char name[SHMBUS_NAME_MAX + 1];
	uint32_t row;
	uint32_t state; /* 1 joining, 2 active, 3 evicted */
	uint32_t live;	/* held by a live process (a group: live members) */
	uint32_t group; /* 1: a competing group (its floor is the cursor) */
	uint64_t cursor;
	uint64_t lag;	 /* records published and not yet consumed */
	uint64_t lag_ns; /* age of the oldest unconsumed record, or 0 */
	uint64_t delivered, failed, retried, dead_lettered, lost;
	uint32_t retry_pending; /* records waiting in its retry segment */
	uint32_t holding;	/* held at a failed record */
	/* publish-to-handler latency, sampled once per batch, since the row
	 * was created: count and percentiles (bucket floors, ns) */
	uint64_t lat_count, lat_p50, lat_p99, lat_p999, lat_max;
	/* the same samples as a cumulative histogram: lat_le[i] of them were
	 * below SHMBUS_LAT_LE_NS(i) (16 ns, 64 ns, ... about 4.3 s); lat_sum_ns
	 * their sum, estimated from the midpoints of the buckets they fell
	 * in (a quarter of a power of two wide: within 12.5%) */
	uint64_t lat_le[SHMBUS_LAT_LE_N];
	uint64_t lat_sum_ns;
} shmbus_sub_info_t;

SHMBUS_API int shmbus_sub_list(shmbus_channel_t *ch, shmbus_sub_info_t *out,
			       uint32_t max);

typedef struct shmbus_producer_info {
	uint32_t participant;
	int32_t pid; /* a hint only */
	uint64_t published;
	uint64_t waits;
} shmbus_producer_info_t;
/* Live producers of the channel. */
SHMBUS_API int shmbus_producer_list(shmbus_channel_t *ch,
				    shmbus_producer_info_t *out, uint32_t max);

/*
 * A spy: a reader that never gates producers and writes nothing to shared
 * memory (`shmbus tail`). It copies each record out and validates the copy
 * against the claim sequence, like an overwrite reader, so it may be lapped
 * on any channel: then it skips to the oldest intact record and says how
 * many it missed.
 */
typedef struct shmbus_spy shmbus_spy_t;
/* Start at the present, or from_start: at the oldest record still in the
 * ring. */
SHMBUS_API int shmbus_spy_open(shmbus_channel_t *ch, int from_start,
			       shmbus_spy_t **out);
/*
 * The next record, its payload copied into buf (buflen >= record_size):
 * 0, SHMBUS_EAGAIN if none is published yet, or SHMBUS_ELAPPED when records
 * were overwritten before the spy read them (*missed += how many; call
 * again), or SHMBUS_ECORRUPT when the channel's claim sequence is one no
 * lap reaches (behind the spy, or 2^63 ahead; shmbus_errmsg() says which
 * values). A tombstone comes back with SHMBUS_REC_TOMBSTONE in rec->flags.
 */
SHMBUS_API int shmbus_spy_next(shmbus_spy_t *sp, shmbus_record_t *rec,
			       void *buf, uint32_t buflen, uint64_t *missed);
SHMBUS_API void shmbus_spy_close(shmbus_spy_t *sp);

typedef struct shmbus_field_info {
	char name[32];
	uint32_t type, offset, size, n_enums;
} shmbus_field_info_t;
/* The channel's schema: its fields (returns how many, 0 if none). */
SHMBUS_API int shmbus_channel_fields(shmbus_channel_t *ch,
				     shmbus_field_info_t *out, uint32_t max);
/* Enum field `field`: the name of value (NULL if unnamed), or the value
 * of name (SHMBUS_ENOENT if unknown). */
SHMBUS_API const char *shmbus_channel_enum_name(shmbus_channel_t *ch,
						uint32_t field, int64_t value);
SHMBUS_API int shmbus_channel_enum_value(shmbus_channel_t *ch, uint32_t field,
					 const char *name, int64_t *value);
/* The k-th named value of enum field `field` (for listing them):
 * 0, or SHMBUS_ENOENT past the last. */
SHMBUS_API int shmbus_channel_enum_at(shmbus_channel_t *ch, uint32_t field,
				      uint32_t k, const char **name,
				      int64_t *value);

/* ---------------------------------------------------- dead-letter queue */

/*
 * Each channel keeps the records its handlers gave up on, with why, in a
 * dead-letter queue in its shared memory. Entries are numbered by a 64-bit
 * id that is never reused. These calls take the DLQ's lock (control path);
 * any process may call them (the `shmbus dlq` tool does).
 */
typedef struct shmbus_dlq_entry {
	uint64_t id;
	int32_t error;	   /* the handler's last result */
	uint32_t attempts; /* deliveries made */
	uint64_t failed_realtime_ns; /* CLOCK_REALTIME, for people */
	char subscriber[SHMBUS_NAME_MAX + 1];
	char text[72]; /* shmbus_fail_note(), or "" */
	/* the record; data is NULL from shmbus_dlq_list, the caller's buffer
	 * from shmbus_dlq_get */
	shmbus_record_t rec;
} shmbus_dlq_entry_t;

typedef struct shmbus_dlq_stats {
	uint64_t head;	  /* next id */
	uint64_t count;	  /* entries held */
	uint64_t dropped; /* overwritten while full (drop-oldest policy) */
	uint64_t refused; /* puts refused while full (refuse policy) */
	uint32_t capacity;
	uint32_t policy; /* shmbus_dlq_policy */
} shmbus_dlq_stats_t;

#define SHMBUS_DLQ_ALL UINT64_MAX

SHMBUS_API int shmbus_dlq_get_stats(shmbus_channel_t *ch,
				    shmbus_dlq_stats_t *st);
/* Up to max entries with id >= from_id, oldest first; returns how many. */
SHMBUS_API int shmbus_dlq_list(shmbus_channel_t *ch, uint64_t from_id,
			       shmbus_dlq_entry_t *out, uint32_t max);
/* One entry with its payload copied into buf (at least record_size bytes):
 * SHMBUS_ENOENT if the id was purged, replayed or overwritten. */
SHMBUS_API int shmbus_dlq_get(shmbus_channel_t *ch, uint64_t id,
			      shmbus_dlq_entry_t *e, void *buf,
			      uint32_t buflen);
/* Re-publish the entry into its channel through p (the record keeps its
 * origin), then remove it. */
SHMBUS_API int shmbus_dlq_replay(shmbus_channel_t *ch, uint64_t id,
				 shmbus_producer_t *p);
/* Deliver the entry again to one subscriber (by name, live or not): it goes
 * to that subscriber's retry segment with its attempts reset, due now, and
 * leaves the DLQ. SHMBUS_EFULL if the segment has no room. */
SHMBUS_API int shmbus_dlq_replay_to(shmbus_channel_t *ch, uint64_t id,
				    const char *subscriber);
/* Remove one entry, or every entry with SHMBUS_DLQ_ALL; returns how many. */
SHMBUS_API int shmbus_dlq_purge(shmbus_channel_t *ch, uint64_t id);

/* ------------------------------------------------------------ watchdog */

/*
 * The watchdog does what no single participant can: it repairs holes left
 * by producers that died between claim and commit (tombstones, by CAS from
 * "claimed by that dead participant"), evicts stalled subscribers on
 * evict-policy channels, and expires abandoned names. One acts on a bus at
 * a time (a kernel-held lease: SHMBUS_EBUSY for a second one).
 * shmbus_watchdog_start runs it on a library thread; shmbus_watchdog_open
 * and shmbus_watchdog_pass let a daemon (`shmbus watchdog BUS`) drive it.
 */
typedef struct shmbus_watchdog shmbus_watchdog_t;
typedef struct shmbus_watchdog_opts {
	uint32_t period_ms;	 /* between passes (thread); 0 = 10 */
	uint32_t evict_grace_ms; /* 0 = 1000 */
	uint32_t stall_ms; /* a subscriber that has records available and has
			    * not moved for this long counts as stalled (a
			    * hint for tools, nothing is done); 0 = 1000 */
} shmbus_watchdog_opts_t;
typedef struct shmbus_watchdog_stats {
	uint64_t passes;
	uint64_t last_pass_ns; /* shmbus_now_ns() of the last pass */
	uint64_t tombstones;   /* holes of dead producers repaired */
	uint64_t evicted;      /* stalled subscribers detached */
	uint64_t expired;      /* abandoned names forgotten */
	uint64_t reaped;       /* rows of dead participants freed */
	uint64_t released; /* retry entries a dead process had in hand */
	uint64_t stalled;  /* subscribers stalled at the last pass (now) */
} shmbus_watchdog_stats_t;

SHMBUS_API int shmbus_watchdog_open(shmbus_t *bus,
				    const shmbus_watchdog_opts_t *opts,
				    shmbus_watchdog_t **out);
SHMBUS_API int shmbus_watchdog_pass(shmbus_watchdog_t *w);
SHMBUS_API int shmbus_watchdog_start(shmbus_t *bus,
				     const shmbus_watchdog_opts_t *opts,
				     shmbus_watchdog_t **out);
/* This watchdog's own counts. */
SHMBUS_API void shmbus_watchdog_get_stats(const shmbus_watchdog_t *w,
					  shmbus_watchdog_stats_t *st);
/* The bus's totals over every watchdog it had, from shared memory (any
 * process, any time: what `shmbus stat` shows). */
SHMBUS_API void shmbus_watchdog_counters(const shmbus_t *bus,
					 shmbus_watchdog_stats_t *st);
/* Stop (if started) and release the lease. Before shmbus_close(bus). */
SHMBUS_API void shmbus_watchdog_close(shmbus_watchdog_t *w);

#ifdef __cplusplus
}
#endif
#endif /* SHMBUS_SHMBUS_H */
