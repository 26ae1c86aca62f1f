/*
 * The journal's on-disk format: segment files, index files and the control
 * file (docs/journal.md draws them). Little-endian, fixed-width fields,
 * every offset pinned by _Static_assert. The files are mapped, so the
 * words that other processes read while the writer changes them (record
 * markers, the seal flag, the control file's writer state) are atomics.
 *
 *   DIR/journal.ctl                 control: identity, writer state, end
 *   DIR/00000000000000000042.seg    a segment whose first record is seq 42
 *   DIR/00000000000000000042.idx    its index, written when it was sealed
 */
#ifndef SHMBUS_JOURNAL_FORMAT_H
#define SHMBUS_JOURNAL_FORMAT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <isa-l/crc.h>

/* segments: the version new ones are written in; readers take every
 * version from JSEG_VERSION_MIN (per segment: a v1 journal goes on in v2
 * segments, never two formats in one) */
#define JOURNAL_VERSION 2u
#define JSEG_VERSION_MIN 1u
#define JCTL_VERSION 1u /* the control file: unchanged since version 1 */
#define JIDX_VERSION 1u /* index files: unchanged since version 1 */
#define JSEG_MAGIC UINT64_C(0x31474553424d4853) /* "SHMBSEG1" */
#define JIDX_MAGIC UINT64_C(0x31584449424d4853) /* "SHMBIDX1" */
#define JCTL_MAGIC UINT64_C(0x314c5443424d4853) /* "SHMBCTL1" */
#define JREC_MARKER 0x4345524au			  /* "JREC" */
#define JSEAL_MARKER 0x4c414553u		  /* "SEAL" */
#define JLINK_MARKER 0x4b4e494cu		  /* "LINK" */

#define JSEG_DATA_OFF 4096u /* records start one page in */
#define JREC_ALIGN 8u
#define JNAME_BYTES 48 /* SHMBUS_NAME_MAX + NUL */

/* CRC32C (Castagnoli) as everyone states it (check value of "123456789"
 * is 0xE3069283), chained: crc32c(b, crc32c(a, 0)) == crc32c(a || b).
 * ISA-L's crc32_iscsi (hardware crc32 instruction where present) takes
 * and returns the raw register, without the customary inversions. */
extern int journal_vzeroupper; /* crc32c.c: the CPU has AVX */
extern int journal_crc_hw;     /* crc32c.c: the CPU has SSE4.2's crc32 */
#define CRC32C_SHORT 256u /* below it, the instruction beats ISA-L */
uint32_t crc32c_hw(const void *p, size_t n, uint32_t crc);

/* ISA-L's whatever the length (tests compare the two). */
static inline uint32_t crc32c_isal(const void *p, size_t n, uint32_t crc)
{
	uint32_t c = crc32_iscsi((unsigned char *)(uintptr_t)p, (int)n, ~crc);
#if defined(__x86_64__)
	/* ISA-L's AVX-512 kernel returns with the vector registers' upper
	 * halves dirty; the SSE code after it (memcpy, our own) then pays a
	 * transition penalty per instruction: 190 ns instead of 20 for the
	 * CRC of a 1 KiB record on this project's VM */
	if (journal_vzeroupper)
		__asm__ volatile("vzeroupper" ::: "memory");
#endif
	return ~c;
}

static inline uint32_t crc32c(const void *p, size_t n, uint32_t crc)
{
#if defined(__x86_64__)
	if (n < CRC32C_SHORT && journal_crc_hw)
		return crc32c_hw(p, n, crc);
#endif
	return crc32c_isal(p, n, crc);
}

/*
 * Segment header: the first 256 bytes of page 0. Bytes [0, 100) are
 * written once at creation and covered by header_crc. The seal block is
 * written once, when the segment is full: its fields, seal_crc, then a
 * release store of `sealed` (readers acquire it).
 */
struct jseg_header {
	uint64_t magic;
	uint32_t version;
	uint32_t data_off;     /* JSEG_DATA_OFF */
	uint64_t segment_size; /* = the file's size */
	uint64_t first_seq;    /* = the file's name */
	uint64_t journal_id;   /* = the control file's */
	uint64_t created_realtime_ns;
	char channel[JNAME_BYTES];
	uint32_t channel_id;
	uint32_t header_crc; /* CRC32C of [0, 100) */
	/* link block, at 104, written once at creation with the header
	 * (zeros in segments made before it existed): the segment made
	 * before this one, so that listing the directory tells a missing
	 * segment from a gap in the bus's sequences; and the bus epoch of
	 * the journal when it was made, so that a lost control file can be
	 * rebuilt whole from the segments */
	uint64_t prev_first; /* JLINK_FIRST: the journal's first segment */
	uint64_t bus_epoch;  /* 0: none claimed (bus epochs are never 0) */
	uint32_t link;	     /* JLINK_MARKER */
	uint32_t link_crc;   /* CRC32C of [104, 124) */
	/* seal block, at 128 */
	_Atomic uint32_t sealed; /* JSEAL_MARKER, stored last */
	uint32_t seal_crc;	 /* CRC32C of [136, 192) */
	uint64_t end_off;	 /* end of the last record */
	uint64_t count;		 /* records */
	uint64_t last_seq;
	uint64_t ts_min, ts_max;
	uint64_t sealed_realtime_ns;
	/* 0, or: the records that were in this segment after last_seq are
	 * gone, and so are the sequences up to this one (a writer sealed it
	 * short after a loss it let through); readers report the range */
	uint64_t lost_to;
	uint8_t reserved2[64];
};
_Static_assert(offsetof(struct jseg_header, channel) == 48, "segment ABI");
_Static_assert(offsetof(struct jseg_header, header_crc) == 100, "seg ABI");
_Static_assert(offsetof(struct jseg_header, prev_first) == 104, "seg ABI");
_Static_assert(offsetof(struct jseg_header, link_crc) == 124, "seg ABI");
_Static_assert(offsetof(struct jseg_header, sealed) == 128, "segment ABI");
_Static_assert(offsetof(struct jseg_header, end_off) == 136, "segment ABI");
_Static_assert(offsetof(struct jseg_header, lost_to) == 184, "seg ABI");
_Static_assert(sizeof(struct jseg_header) == 256, "segment ABI");
#define JSEG_SEAL_CRC_FROM 136u
#define JSEG_SEAL_CRC_TO 192u
#define JLINK_FROM 104u
#define JLINK_TO 124u
#define JLINK_FIRST UINT64_MAX

/*
 * A record frame, 8-aligned: a header, len bytes of payload, zero padding
 * to the next multiple of 8. The writer stores everything else, then the
 * marker with release: a reader that acquires the marker sees a complete
 * record. crc covers [8, header + len): the length, every other field and
 * the payload; the marker is a constant and is checked on its own (no
 * byte of "JREC" is one bit from 0: a flipped bit reads as corrupt, never
 * as "not yet"). The same first 12 bytes in every version.
 *
 * Version 1 (segments written before format 2): a 56-byte header with
 * every field.
 */
struct jrec_header {
	_Atomic uint32_t marker; /* JREC_MARKER; 0 = nothing (yet) */
	uint32_t crc;
	uint32_t len;  /* payload bytes */
	uint32_t type; /* event type: the channel id for journaled channels */
	uint64_t seq;
	uint64_t timestamp; /* the bus clock, ns */
	uint64_t key;	    /* aggregate id */
	uint64_t origin;    /* shmbus_record_t.origin */
	uint32_t flags;	    /* shmbus_record_flags */
	uint32_t producer;
};
_Static_assert(offsetof(struct jrec_header, len) == 8, "record ABI");
_Static_assert(offsetof(struct jrec_header, seq) == 16, "record ABI");
_Static_assert(offsetof(struct jrec_header, flags) == 48, "record ABI");
_Static_assert(sizeof(struct jrec_header) == 56, "record ABI");
#define JREC_CRC_FROM 8u

/*
 * Version 2: 24 bytes, then 8 for each field that is not its default,
 * in this order, as info's high bits say:
 *   JREC2_KEY     key (default 0)
 *   JREC2_ORIGIN  origin (default: seq)
 *   JREC2_META    flags, producer (default 0, 0)
 *   JREC2_TYPE    type, 4 zero bytes (default: the segment header's
 *                 channel_id)
 * The sequence is info's low 28 bits above the segment's first_seq (a
 * writer starts the next segment rather than store one further). A
 * 64-byte record of a journaled channel: 88 or 96 bytes, 120 in version 1.
 */
struct jrec2_header {
	_Atomic uint32_t marker; /* JREC_MARKER; 0 = nothing (yet) */
	uint32_t crc;
	uint32_t len;
	uint32_t info;	    /* seq - first_seq | JREC2_* */
	uint64_t timestamp; /* the bus clock, ns */
};
_Static_assert(offsetof(struct jrec2_header, len) == 8, "record ABI");
_Static_assert(offsetof(struct jrec2_header, timestamp) == 16, "rec ABI");
_Static_assert(sizeof(struct jrec2_header) == 24, "record ABI");
#define JREC2_SEQ_BITS 28u
#define JREC2_SEQ_SPAN (1u << JREC2_SEQ_BITS)
#define JREC2_KEY (1u << 28)
#define JREC2_ORIGIN (1u << 29)
#define JREC2_META (1u << 30)
#define JREC2_TYPE (1u << 31)
#define JREC_HMIN 24u /* the least header of any version */

/* A record's header, decoded (any version). */
struct jrec {
	uint64_t seq, timestamp, key, origin;
	uint32_t len, type, flags, producer;
	uint32_t crc;
	uint32_t hsz; /* header bytes: the payload starts there */
};

/* The header size of a version 2 record whose info word is info: 8
 * bytes for each presence bit (a popcount of the 4 bits, from a table in
 * a constant: nibble i is popcount(i); __builtin_popcount is a libgcc
 * call without -mpopcnt). */
static inline uint32_t jrec2_hsz(uint32_t info)
{
	return sizeof(struct jrec2_header) +
	       8u * (uint32_t)((UINT64_C(0x4332322132212110) >>
				(4 * (info >> JREC2_SEQ_BITS))) &
			       0xf);
}

/* The least header of a version's records: what a reader must have before
 * it can tell a header's size (jrec_hsz). */
static inline uint32_t jrec_hmin(uint32_t version)
{
	return version == 1 ? sizeof(struct jrec_header)
			    : sizeof(struct jrec2_header);
}

/* The size of the header at p (jrec_hmin bytes there). */
static inline uint32_t jrec_hsz(uint32_t version, const uint8_t *p)
{
	if (version == 1)
		return sizeof(struct jrec_header);
	uint32_t info;
	memcpy(&info, p + offsetof(struct jrec2_header, info), 4);
	return jrec2_hsz(info);
}

/* Decode the header at p (jrec_hsz bytes there) of a segment of version,
 * first sequence first and channel id chan. */
static inline void jrec_decode(uint32_t version, uint64_t first,
			       uint32_t chan, const uint8_t *p,
			       struct jrec *r)
{
	if (version == 1) {
		struct jrec_header h;
		memcpy(&h, p, sizeof(h));
		*r = (struct jrec){.seq = h.seq,
				   .timestamp = h.timestamp,
				   .key = h.key,
				   .origin = h.origin,
				   .len = h.len,
				   .type = h.type,
				   .flags = h.flags,
				   .producer = h.producer,
				   .crc = h.crc,
				   .hsz = sizeof(h)};
		return;
	}
	uint32_t w[4];
	memcpy(w, p, sizeof(w));
	uint32_t info = w[3];
	r->crc = w[1];
	r->len = w[2];
	r->seq = first + (info & (JREC2_SEQ_SPAN - 1));
	memcpy(&r->timestamp, p + 16, 8);
	const uint8_t *q = p + sizeof(struct jrec2_header);
	r->key = 0;
	r->origin = r->seq;
	r->flags = r->producer = 0;
	r->type = chan;
	if (info & JREC2_KEY) {
		memcpy(&r->key, q, 8);
		q += 8;
	}
	if (info & JREC2_ORIGIN) {
		memcpy(&r->origin, q, 8);
		q += 8;
	}
	if (info & JREC2_META) {
		memcpy(&r->flags, q, 4);
		memcpy(&r->producer, q + 4, 4);
		q += 8;
	}
	if (info & JREC2_TYPE) {
		memcpy(&r->type, q, 4);
		q += 8;
	}
	r->hsz = (uint32_t)(q - p);
}

/* The version 2 fields r has that are not their defaults (JREC2_*). */
static inline uint32_t jrec2_opt(const struct jrec *r, uint32_t chan)
{
	return (r->key ? JREC2_KEY : 0) |
	       (r->origin != r->seq ? JREC2_ORIGIN : 0) |
	       (r->flags | r->producer ? JREC2_META : 0) |
	       (r->type != chan ? JREC2_TYPE : 0);
}

/* The header size r takes in a segment of version and channel id chan. */
static inline uint32_t jrec_hsz_of(uint32_t version, uint32_t chan,
				   const struct jrec *r)
{
	if (version == 1)
		return sizeof(struct jrec_header);
	return jrec2_hsz(jrec2_opt(r, chan));
}

/* Version 2: r's header at p, all but marker and crc, with opt its
 * jrec2_opt (jrec2_hsz(opt) bytes). */
static inline void jrec2_encode(uint64_t first, uint32_t opt,
				const struct jrec *r, uint8_t *p)
{
	uint32_t w[2] = {r->len, (uint32_t)(r->seq - first) | opt};
	memcpy(p + 8, w, 8);
	memcpy(p + 16, &r->timestamp, 8);
	uint8_t *q = p + sizeof(struct jrec2_header);
	if (opt & JREC2_KEY) {
		memcpy(q, &r->key, 8);
		q += 8;
	}
	if (opt & JREC2_ORIGIN) {
		memcpy(q, &r->origin, 8);
		q += 8;
	}
	if (opt & JREC2_META) {
		memcpy(q, &r->flags, 4);
		memcpy(q + 4, &r->producer, 4);
		q += 8;
	}
	if (opt & JREC2_TYPE) {
		uint32_t t[2] = {r->type, 0};
		memcpy(q, t, 8);
	}
}

/* Encode r's header at p, all but marker and crc, for a segment of
 * version, first sequence first (r->seq - first < JREC2_SEQ_SPAN) and
 * channel id chan: jrec_hsz_of bytes. */
static inline void jrec_encode(uint32_t version, uint64_t first,
			       uint32_t chan, const struct jrec *r, uint8_t *p)
{
	if (version == 1) {
		struct jrec_header h = {.len = r->len,
					.type = r->type,
					.seq = r->seq,
					.timestamp = r->timestamp,
					.key = r->key,
					.origin = r->origin,
					.flags = r->flags,
					.producer = r->producer};
		memcpy(p + JREC_CRC_FROM, (const uint8_t *)&h + JREC_CRC_FROM,
		       sizeof(h) - JREC_CRC_FROM);
		return;
	}
	jrec2_encode(first, jrec2_opt(r, chan), r, p);
}

/* A frame of a header of hsz bytes and len of payload. */
static inline uint64_t jrec_span(uint64_t hsz, uint64_t len)
{
	return (hsz + len + JREC_ALIGN - 1) & ~(uint64_t)(JREC_ALIGN - 1);
}

/* A version 1 frame of len bytes of payload. */
static inline uint64_t jrec_frame(uint64_t len)
{
	return jrec_span(sizeof(struct jrec_header), len);
}

/* The CRC of the frame at p whose header is hsz bytes. */
static inline uint32_t jrec_crc(const uint8_t *p, uint32_t hsz, uint32_t len)
{
	return crc32c(p + JREC_CRC_FROM, hsz - JREC_CRC_FROM + len, 0);
}

/*
 * Index file, written whole when its segment is sealed (temporary file,
 * then rename), trusted only if it matches the sealed segment (journal id,
 * first_seq, end_off, count) and both CRCs pass:
 *   header (64 B) | sparse[n_sparse] | keys[count]
 */
struct jidx_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size; /* 64 */
	uint64_t journal_id;
	uint64_t first_seq;
	uint64_t end_off;
	uint64_t count;
	uint32_t n_sparse;
	uint32_t body_crc;   /* CRC32C of the two arrays */
	uint32_t stride;     /* bytes of records between sparse entries */
	uint32_t header_crc; /* CRC32C of [0, 60) */
};
_Static_assert(sizeof(struct jidx_header) == 64, "index ABI");
_Static_assert(offsetof(struct jidx_header, header_crc) == 60, "index ABI");

/* Sparse entry: a record at `off` with sequence `seq`; ts_before is the
 * highest time stamp of every record of the segment before it (a prefix
 * maximum, so binary-searchable even when time stamps are not monotonic). */
struct jidx_sparse {
	uint64_t seq;
	uint64_t ts_before;
	uint64_t off;
};
_Static_assert(sizeof(struct jidx_sparse) == 24, "index ABI");

/* Key entry: every record, sorted by (key, off). */
struct jidx_key {
	uint64_t key;
	uint64_t off;
};
_Static_assert(sizeof(struct jidx_key) == 16, "index ABI");

#define JIDX_STRIDE 4096u

/*
 * The control file (one page, mapped by every handle). Line 0-1: identity,
 * written once at creation. Line 2: the writer state, written only by the
 * writer (who holds the kernel lock on byte 0 of this file); readers load
 * end_seq with acquire. A hint for recovery, never trusted over the
 * segments themselves: the writer's open recomputes it from them.
 */
struct jctl {
	uint64_t magic;
	uint32_t version;
	uint32_t size; /* 4096 */
	uint64_t journal_id;
	uint64_t created_realtime_ns;
	uint64_t segment_size; /* for every segment of this journal */
	char channel[JNAME_BYTES];
	uint32_t channel_id;
	uint32_t header_crc; /* CRC32C of [0, 92) */
	uint8_t reserved0[32];
	/* line 2, at 128: writer state */
	/* the newest segment (the active one, unless it is sealed and the
	 * next is not made yet); UINT64_MAX: none. Release-stored after the
	 * segment is in place: readers list segments up to it */
	_Atomic uint64_t seg_first;
	_Atomic uint64_t end_off;   /* its next free byte */
	_Atomic uint64_t end_seq;   /* last appended + 1; release, last */
	_Atomic uint64_t synced_seq; /* records below it survived a sync */
	_Atomic uint64_t first_seq;  /* oldest kept; raised before removal */
	_Atomic uint64_t bus_epoch;  /* journaler: whose sequences these are */
	_Atomic uint32_t writer_pid; /* hint only: the lock is the truth */
	_Atomic uint32_t epoch_set;  /* bus_epoch is meaningful */
	/* the boot (a hash of its boot id; 0: not known) of the writer that
	 * published this line, stored after the rest of it: a writer of the
	 * same boot finds every record below end_seq (the page cache keeps
	 * them), one after a restart only those below synced_seq */
	_Atomic uint64_t boot;
	/* line 3, at 192: the journaler's subscriber name on its channel,
	 * for readers that switch from the journal to the ring. Written by
	 * each attach under the writer lock, published by a release
	 * increment of journaler_gen (odd while being written: a seqlock);
	 * all zero in journals made before it existed: "journal" */
	char journaler[JNAME_BYTES];
	_Atomic uint32_t journaler_gen;
	uint8_t reserved2[12];
};
_Static_assert(offsetof(struct jctl, header_crc) == 92, "control ABI");
_Static_assert(offsetof(struct jctl, seg_first) == 128, "control ABI");
_Static_assert(offsetof(struct jctl, bus_epoch) == 168, "control ABI");
_Static_assert(offsetof(struct jctl, boot) == 184, "control ABI");
_Static_assert(offsetof(struct jctl, journaler) == 192, "control ABI");
_Static_assert(sizeof(struct jctl) == 256, "control ABI");
#define JCTL_SIZE 4096u
#define JCTL_CRC_TO 92u

/*
 * The loss table, after the header: ranges of sequences that are gone and
 * were let through by a writer's open (what a machine restart took that
 * was not synced, or a loss opened with ACCEPT_LOSS), so that later
 * writers do not refuse them again; and which of those an operator
 * acknowledged (shmbus_journal_accept_loss), which readers then no longer
 * report (docs/journal.md, "Damage"). The files show every loss by
 * themselves: losing this table loses no report, it only makes writers
 * refuse, and readers report, what it let through.
 *
 * Two copies, each in sectors of its own, each with a generation and a
 * CRC over all of it (generation, journal id, count, ranges): a writer
 * writes the copy that does not hold the table, msyncs, then the other,
 * and msyncs, so that a torn write or a damaged byte in either leaves
 * the other whole; the valid copy with the highest generation is the
 * table. Only the writer writes it, under its lock; a reader copies a
 * copy out and checks it. Bytes [256, 1288) held an earlier version's
 * table (one copy, no generation): ignored.
 */
#define JCTL_LOSSES_MAX 62u
struct jloss {
	uint64_t from, to; /* [from, to) */
};
struct jctl_losses {
	uint64_t gen;	     /* 0: never written */
	uint64_t journal_id; /* = the control file's */
	uint64_t acked;	     /* bit i: r[i] acknowledged */
	uint32_t n;
	uint32_t crc; /* CRC32C of [0, 28), then of r[0, n) */
	struct jloss r[JCTL_LOSSES_MAX];
};
#define JCTL_LOSSES_OFF 1024u /* the first copy; the second after it */
#define JCTL_LOSSES_CRC_TO 28u
_Static_assert(sizeof(struct jctl_losses) == 1024, "control ABI");
_Static_assert(offsetof(struct jctl_losses, crc) == JCTL_LOSSES_CRC_TO,
	       "control ABI");
_Static_assert(JCTL_LOSSES_OFF >= sizeof(struct jctl) &&
		       JCTL_LOSSES_OFF + 2 * sizeof(struct jctl_losses) <=
			       JCTL_SIZE,
	       "control ABI");

#endif /* SHMBUS_JOURNAL_FORMAT_H */
