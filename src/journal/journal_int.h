/*
 * The journal's process-local handles and the functions its files share
 * (journal.c: open, directory, control file, retention; journal_damage.c:
 * missing and unreadable segments, a lost control file; journal_recover.c:
 * frame checks and the tail scan; journal_write.c: append, seal, sync;
 * journal_index.c: indexes; journal_read.c: iterators and replay;
 * journal_attach.c: the journaling subscriber).
 */
#ifndef SHMBUS_JOURNAL_INT_H
#define SHMBUS_JOURNAL_INT_H

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include "journal_format.h"
#include "shmbus/journal.h"

#define JPATH_MAX 4096
/* a buffered writer's buffer: whole pages per pwrite, small enough to
 * stay in the cache between two flushes */
#define JSTAGE_BYTES (64u << 10)

/* Sparse entries being collected: one per JIDX_STRIDE bytes of records
 * (capacity for a whole segment, allocated once), and the highest time
 * stamp so far (the next entry's ts_before). */
struct jsparse_acc {
	struct jidx_sparse *e;
	uint32_t n, cap;
	uint64_t next; /* offset at or past which the next entry goes */
	uint64_t ts_hi;
};

/* One segment file as this handle knows it. */
struct jseg {
	uint64_t first_seq;
	uint64_t uid; /* this entry, for iterators (never reused) */
	/* the file as listed: a name whose file changed is loaded again */
	uint64_t ino, fsize;
	int64_t mtime_ns;
	int fd;	      /* -1 until mapped */
	uint8_t *map; /* the whole file, or NULL until first use */
	size_t map_size;
	bool writable;
	bool sealed;
	/* from the header: its records' format version (JOURNAL_VERSION for
	 * new segments; 0 until the header is read) and channel id */
	uint32_t version, chan;
	/* sequences a frame can hold above first_seq: JREC2_SEQ_SPAN, or
	 * UINT64_MAX (version 1) */
	uint64_t seq_span;
	/* sealed: from the seal block; unsealed: the end of the records this
	 * handle has written or checked (a live writer may be further) */
	uint64_t end_off;
	uint64_t count, last_seq, ts_min, ts_max, sealed_ns;
	/* unsealed: sparse entries as records are appended or checked */
	struct jsparse_acc live;
	/* sealed: the index (its file mapped, or arrays built here) */
	const struct jidx_sparse *sparse;
	const struct jidx_key *keys;
	uint32_t n_sparse;
	uint64_t n_keys;
	void *idx_map; /* the file's mapping (idx_size), or */
	size_t idx_size;
	struct jidx_sparse *heap_sparse; /* arrays built here */
	struct jidx_key *heap_keys;
	bool idx_tried;
	/* writer: every record's (key, offset) as appended or recovered,
	 * for the key index at seal time without walking the segment again
	 * (in the writer's keybuf) */
	struct jidx_key *wkeys;
	uint64_t n_wkeys, cap_wkeys;
	/* reading stopped here in an unsealed segment: a bad record */
	uint64_t bad_off;
	uint64_t synced_off; /* writer: bytes below it were synced */
	bool head_synced;    /* writer: page 0 (header, seal) as well */
	uint64_t wb_off;     /* writer: write-back started below it */
	uint64_t touched;    /* mapped writer: pages asked to be touched */
	/* the link block (linked: present, CRC good): the segment made
	 * before this one (JLINK_FIRST: none), the bus epoch then */
	bool linked;
	uint64_t prev_first, epoch;
	/* Damage (journal_damage.c): [first_seq, lost_to) cannot be read
	 * (lost_to UINT64_MAX: up to an end not known). JLOST_FILE: this
	 * file fails its checks (why, lost_code) and is never mapped;
	 * JLOST_GONE: no file, segments missing before the next entry
	 * (gone: the file a link or the control file names). */
	uint8_t lost;
	bool foreign; /* JLOST_FILE: a segment of another journal */
	/* what a machine crash leaves of what was not synced (a writer's
	 * open after a restart excuses only these): JLOST_FILE, a header of
	 * zeros; JLOST_GONE, the newest segment announced (and cut, below:
	 * the records after an unsealed segment's) */
	bool zero_head, newest_gone;
	int lost_code;
	uint64_t lost_to, gone;
	char *why;
	bool seal_bad; /* a seal marker over a block that fails its checks */
	/* sealed short: the seal's lost_to (0: none); a writer's open sets it
	 * before it seals a segment whose last records are lost */
	uint64_t seal_lost_to;
	/* a lost entry an operator acknowledged (the loss table): not
	 * reported, not counted, not refused */
	bool acked;
	bool accepted; /* a writer's open let it through (ACCEPT_LOSS) */
	/* unsealed, not the last: its records end here, before it was full
	 * (a bad record, a hole, or the next's first record would have
	 * fitted): the sequences up to the next entry are a lost range;
	 * UINT64_MAX: no */
	uint64_t short_at;
	/* writer's open: the file's size if it is short (extended by the
	 * apply step); the scan's unfinished flush to open (UINT64_MAX:
	 * none); the scan cut the tail */
	uint64_t file_size;
	uint64_t unopened;
	bool cut;
	/* writer's open after a restart: sealed on disk over records that
	 * are not all there, taken as unsealed */
	bool unsealed;
};

enum { JLOST_NONE, JLOST_FILE, JLOST_GONE };

struct journaler;

struct shmbus_journal {
	char dir[JPATH_MAX];
	int dirfd;
	int ctl_fd;
	struct jctl *ctl;
	uint64_t journal_id;
	uint32_t flags;
	uint32_t sync;
	uint32_t sync_every;
	uint64_t sync_interval_ns;
	uint64_t seg_size;
	uint64_t retain_bytes;
	uint64_t retain_age_ns;
	uint64_t writeback_bytes;
	uint32_t mode;
	uint32_t channel_id;
	char channel[JNAME_BYTES];
	bool writer;
	/* segments in sequence order; gen moves when one is removed, so that
	 * iterators find theirs again by first_seq */
	struct jseg **segs;
	uint32_t nsegs, cap_segs;
	uint64_t gen;
	/* writer state, also published in the control file */
	struct jseg *active; /* unsealed last segment, or NULL */
	uint64_t end_off;    /* next free byte of the active segment */
	uint64_t end_seq;    /* last appended + 1; 0: never a record */
	uint64_t synced_seq;
	uint32_t unsynced; /* records since the last sync */
	/* the journaler's: under EVERY_N, appends do not sync; the end of
	 * each batch does (jbatch_end), before the cursor that tells
	 * producers their records are in moves: one sync for the batch */
	bool group;
	uint64_t last_sync_ns;
	int failed; /* sticky: a sync or a flush failed */
	/* SHMBUS_JOURNAL_BUFFERED: frames of the active segment from
	 * stage_off, not yet written to it (journal_write.c) */
	struct jidx_key *keybuf; /* jwkeys_init */
	uint32_t keys_turn;	 /* the keybuf array the writer fills */
	struct jsealer *sealer;
	uint8_t *stage;
	uint64_t stage_off;
	uint32_t stage_fill;
	shmbus_journal_stats_t st;
	shmbus_journal_recovery_t rec;
	struct journaler *jr; /* shmbus_journal_attach */
	/* how the handle's close ends its journaler: installed with jr by
	 * journal_attach.c, which the handle's own code does not call */
	void (*journaler_close)(shmbus_journal_t *j);
	int fp_id;	      /* armed failpoint, or -1 */
	long fp_left;
	/* journal.ctl was missing: ctl is an anonymous page made from the
	 * segments (a writer writes the file once its open is sure) */
	bool ctl_rebuilt;
	/* writer: the link of the next segment it makes; the newest segment
	 * whose name an fsync of the directory made durable (UINT64_MAX - 1:
	 * none) */
	uint64_t newest, dir_synced;
	/* policy NONE: segments named from here on may be unsynced (the one
	 * holding the synced_seq its open found) */
	uint64_t dsync_from;
	/* the newest segment announced when the last listing began */
	uint64_t listed_newest;
	/* a writer's open: the control file's end and synced_seq as the
	 * last writer left them; this boot's id, and the boot as published
	 * (with the control file's device and inode) by us and by the last
	 * writer (0: not known); whether the machine restarted since (only
	 * then can the page cache have lost what that writer had not
	 * synced) */
	uint64_t was_end, was_synced;
	uint64_t boot_id, boot, boot_was;
	bool restart;
	/* a writer's open: the loss table as read, and as it will write it
	 * (dirty: it changed) */
	struct jctl_losses losses, losses_new;
	bool losses_dirty;
};

/*
 * Crash-test failpoints of the writer: with SHMBUS_JOURNAL_FAILPOINT=NAME:N
 * in its environment at open, a writer kills itself (SIGKILL) the N-th time
 * it passes the place; only in the library the tests link
 * (SHMBUS_FAILPOINTS), the installed ones never arm. Unarmed: one compare
 * of a handle field.
 *   mid_record  payload half copied, no CRC, no marker
 *   mid_seal    index handed to the sealer (written or not), seal block not
 *   mid_create  a new segment reserved under its temporary name
 *   mid_flush   a buffered flush written, its first marker not stored
 */
enum { JFP_MID_RECORD, JFP_MID_SEAL, JFP_MID_CREATE, JFP_MID_FLUSH, JFP_COUNT };
void jfailpoint_hit(shmbus_journal_t *j);
#define JFAILPOINT(j, id)                                                      \
	do {                                                                   \
		if (__builtin_expect((j)->fp_id == (id), 0))                   \
			jfailpoint_hit(j);                                     \
	} while (0)

/* journal_files.c */
#define CTL_NAME "journal.ctl"
#define MIN_SEGMENT (64ull << 10)
#define MAX_SEGMENT (1ull << 30) /* CRC lengths are ints */
/* Read segment `first`'s header into a new table entry (*out). */
int jseg_load(shmbus_journal_t *j, uint64_t first, struct jseg **out);
/* Remove segment i (retention, or a cut): its files and table entry. */
int jseg_remove(shmbus_journal_t *j, uint32_t i);
/* Arm the writer's failpoints from the environment (tests' build only). */
void jfailpoints_arm(shmbus_journal_t *j);
uint64_t jrealtime_ns(void); /* CLOCK_REALTIME: for people, and age */

/* A writer's open: sequences from `from` on may be gone with nothing
 * that was promised: the machine restarted since the last writer, which
 * had not synced them (docs/journal.md, "Damage"), if what is gone is of
 * a kind a crash leaves (journal_damage.c). */
static inline bool jcrash_lost(const shmbus_journal_t *j, uint64_t from)
{
	return j->restart && from >= j->was_synced;
}
/* Add to the recovery report's reason, after what is there. */
void jnote(shmbus_journal_t *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int jerrno_code(int err);
int jerr_file(int code, int err, const shmbus_journal_t *j, uint64_t first,
	      const char *ext, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
void jname(char out[40], uint64_t first, const char *ext);
struct jseg *jseg_new(uint64_t first);
int jseg_map(shmbus_journal_t *j, struct jseg *s);
int jseg_add(shmbus_journal_t *j, struct jseg *s);
void jseg_free(struct jseg *s);
void jseg_drop(shmbus_journal_t *j, uint32_t i); /* out of the table */
/* The segment holding seq (the last whose first_seq <= seq), or the first;
 * its index in j->segs, or -1 if there is none. */
int jseg_find(const shmbus_journal_t *j, uint64_t seq);
/* true: h is sealed, its block taken into s; false: not (s->seal_bad
 * says whether a marker stood over a block that fails its checks). */
bool jseal_read(shmbus_journal_t *j, struct jseg *s,
		const struct jseg_header *h);
int jctl_write(shmbus_journal_t *j, const struct jctl *tmpl);
/* The writer: the control file's first_seq raised to first, on disk. */
int jraise_first(shmbus_journal_t *j, uint64_t first);
uint32_t jctl_crc(const struct jctl *c);
int jctl_map(shmbus_journal_t *j, int fd);
/* Check the mapped control file and take its writer state (a writer). */
int jctl_take(shmbus_journal_t *j);
bool jseg_name(const char *n, uint64_t *first, const char **ext);
/* The directory, to readdir from its start (closedir it), or NULL with
 * the error set. */
DIR *jdir_list(shmbus_journal_t *j);
bool jsync_policy(const shmbus_journal_t *j);
/* A segment's index memory: the writer's sparse index of the open
 * segment (entries at least a stride apart), its key array given back,
 * a sealed segment's index (mapped file or rebuilt arrays) let go. */
int jsparse_init(const shmbus_journal_t *j, struct jsparse_acc *a);
void jwkeys_free(struct jseg *s);
void jindex_drop(struct jseg *s);
/* Create tmp, reserve a whole segment in it and map it (a full disk is
 * SHMBUS_ENOMEM): *fd and *map, or an error with nothing left behind. */
int jseg_reserve(const shmbus_journal_t *j, const char *tmp, uint64_t first,
		 int *fd, uint8_t **map);

/* journal.c */
/* Readers: learn about segments created since the last look. */
int journal_refresh(shmbus_journal_t *j);

/* journal_recover.c */
/* JF_UNOPENED, only when JFC_RECOVERING: a whole record whose marker was
 * never stored (the first of a buffered flush) */
enum { JF_BAD = -1, JF_END = 0, JF_OK = 1, JF_UNOPENED = 2 };
enum {
	JFC_ANY_SEQ = 1u << 0, /* no previous record to be above */
	/* a marker of 0 over a non-zero header is a torn record (JF_BAD),
	 * not one still being written (JF_END) */
	JFC_RECOVERING = 1u << 1,
	JFC_NO_CRC = 1u << 2, /* framing only: the writer's own records */
};
/* m has some of JREC_MARKER's bytes and zeros in the others: a buffered
 * writer's pwrite of the marker seen under way (journal_recover.c). */
static inline bool jmarker_opening(uint32_t m)
{
	for (int i = 0; i < 4; i++) {
		uint32_t b = (m >> (8 * i)) & 0xff;
		if (b && b != ((JREC_MARKER >> (8 * i)) & 0xff))
			return false;
	}
	return true;
}
/* Check the frame at off (limit: end of the usable bytes); its sequence
 * must be above `after`. JF_OK (the header decoded in *r), JF_END (no
 * record there), or JF_BAD with the reason in *why. */
int jframe_check(const struct jseg *s, uint64_t off, uint64_t limit,
		 uint64_t after, unsigned fl, const char **why,
		 struct jrec *r);
/* Scan an unsealed segment from its start: every record must be below
 * `below` (the next segment's first sequence, or UINT64_MAX); a segment
 * that is not the last (middle: or whose seal block is bad) is not cut
 * without ACCEPT_LOSS, and one whose records end at or before full_past
 * (where the next segment's first record would still have fitted; 0: not
 * known) lost its last records (s->short_at, a range). Changes
 * nothing on disk: a writer's jscan_apply then opens an unfinished
 * flush's record and zeroes the tail. */
int jscan_unsealed(shmbus_journal_t *j, struct jseg *s, uint64_t below,
		   bool middle, uint64_t full_past);
/* Valid frames after off (up to limit, above `after`), found by marker:
 * how many; *end past the last. */
uint64_t jvalid_after(const struct jseg *s, uint64_t off, uint64_t limit,
		      uint64_t after, uint64_t *end);
int jscan_apply(shmbus_journal_t *j, struct jseg *s);
/* A record of s at off (the next one at next) noted: sparse entry, key,
 * time stamps, count. Inline: the writer calls it for every append. */
static inline void jseg_note(struct jseg *s, uint64_t seq, uint64_t ts,
			     uint64_t key, uint64_t off, uint64_t next);
/* writer: s->wkeys, in the writer's keybuf; done with them; handed to
 * the sealer (the next segment takes the other array); the sort's
 * scratch; unmap the keybuf */
int jwkeys_init(shmbus_journal_t *j, struct jseg *s);
void jwkeys_handed(shmbus_journal_t *j, struct jseg *s);
struct jidx_key *jkeybuf_tmp(const shmbus_journal_t *j);
void jkeybuf_free(shmbus_journal_t *j);

/* journal_write.c */
int jseal(shmbus_journal_t *j, struct jseg *s);
/* No read-ahead on a writer's mapping of its segment. A buffered writer
 * touches it once per flush, to open the chunk, and each of those faults
 * read the next window into the page cache (zero-filled, as reserved
 * space reads), the very cost pwrite avoids. A mapped writer's pages are
 * touched ahead by its sealer; with read-ahead, the kernel assembled
 * large folios for the growing windows, 8-38 ms at a time, which the
 * writer waited for whenever it caught up (without: 1-3 ms, at the same
 * append speed give or take the VM's noise). */
static inline void jwriter_advice(const shmbus_journal_t *j, void *map)
{
	(void)madvise(map, j->seg_size, MADV_RANDOM); /* a hint */
}
int jflush(shmbus_journal_t *j);
/* A group-commit writer's batch is over: flushed, and synced if the
 * policy says its records must be. */
int jbatch_end(shmbus_journal_t *j);
int jstage_init(shmbus_journal_t *j); /* SHMBUS_JOURNAL_BUFFERED */
int jsync_active(shmbus_journal_t *j);
/* Every segment from the one holding sequence `from` on reaches the disk
 * (records, header, seal), then the directory's entries: what synced_seq
 * then says. A failure is sticky (j->failed). */
int jsync_from(shmbus_journal_t *j, uint64_t from);

/* journal_index.c */
static inline void jsparse_add(struct jsparse_acc *a, uint64_t seq,
			       uint64_t ts, uint64_t off)
{
	if (__builtin_expect(off >= a->next, 0) && a->n < a->cap) {
		a->e[a->n++] = (struct jidx_sparse){seq, a->ts_hi, off};
		a->next = off + JIDX_STRIDE;
	}
	if (ts > a->ts_hi)
		a->ts_hi = ts;
}
struct jindex {
	struct jidx_sparse *sparse;
	struct jidx_key *keys;
	uint32_t n_sparse;
	uint64_t n_keys;
	uint64_t end_off, last_seq, ts_min, ts_max;
};
/* Build a segment's index by walking its frames up to limit; verify:
 * check every CRC too (a rebuild), else framing only (a seal). */
int jindex_build(shmbus_journal_t *j, struct jseg *s, uint64_t limit,
		 bool verify, struct jindex *ix);
void jindex_free(struct jindex *ix);
/* Write a segment's index as it is sealed. */
int jindex_seal(shmbus_journal_t *j, struct jseg *s);
int jindex_write(shmbus_journal_t *j, uint64_t first_seq,
		 const struct jindex *ix);
/* Sort the keys a writer noted (through tmp), then jindex_write. */
int jindex_write_noted(shmbus_journal_t *j, uint64_t first_seq,
		       const struct jindex *ix, struct jidx_key *tmp);

/* journal_sealer.c: a writer's index sealing off its appending thread */
struct jsealer;
/* Hand s's noted index to the sealer thread (started at the first call):
 * false if it cannot (keys not noted whole, no thread), and the caller
 * seals the index itself. */
bool jsealer_take(shmbus_journal_t *j, struct jseg *s);
/* The handed index is written, and no page is being touched (a segment
 * may be unmapped after it). */
void jsealer_wait(shmbus_journal_t *j);
/* Touch [at, at + len) of a mapped writer's segment ahead of it; false if
 * the kernel cannot (no more requests are useful). */
bool jsealer_touch(shmbus_journal_t *j, uint8_t *at, size_t len);
void jsealer_stop(shmbus_journal_t *j); /* at close */
/* Have the next segment's file reserved ahead (JSEG_PREPARED's name);
 * take it, if it was: its fd and mapping. */
void jsealer_prepare(shmbus_journal_t *j);
/* Start the disk writing [from, to) of the file fd (the sealer's dup of
 * it), without waiting; dropped if too many are queued (a hint). */
void jsealer_writeback(shmbus_journal_t *j, int fd, uint64_t from,
		       uint64_t to);
bool jsealer_next(shmbus_journal_t *j, int *fd, uint8_t **map);
/* Policy NONE: have the segment files named from `from` (the first time;
 * after, from where the last pass ended) up to `last` synced, then the
 * directory, and synced_seq raised to upto, by the syncer thread; the
 * writer does not wait. */
void jsealer_durable(shmbus_journal_t *j, uint64_t from, uint64_t last,
		     uint64_t upto);
/* The errno of an fdatasync of the syncer that failed, or 0. */
int jsealer_sync_error(shmbus_journal_t *j);
/* Tests (tests/fuzz_journal.c), before any journal is open: writers start
 * no sealer thread and do its jobs themselves, as when the thread cannot
 * start (the same functions, without a thread's start and hand-offs for
 * every short-lived handle). */
void jsealer_disable(void);
/* the name a reserved next segment waits under, as a .seg.tmp */
#define JSEG_PREPARED UINT64_MAX
/* A sealed segment's index: its file, or rebuilt (and rewritten by a
 * writer). 0, or an error if the segment itself cannot be walked. */
int jindex_load(shmbus_journal_t *j, struct jseg *s);
/* Sparse lookups over n entries: the entry to start scanning at, or -1
 * for the segment's first record. */
int jsparse_seq(const struct jidx_sparse *e, uint32_t n, uint64_t seq);
int jsparse_time(const struct jidx_sparse *e, uint32_t n, uint64_t ts);
/* Key entries: the first position whose key >= key. */
uint64_t jkeys_lower(const struct jidx_key *k, uint64_t n, uint64_t key);

/* journal_read.c */
/* Count retention's skips only below x (a replay-then-live reader's
 * switch point: the ring has the rest). */
void jiter_count_skips_below(shmbus_journal_iter_t *it, uint64_t x);
int jread_all(shmbus_journal_t *j, const shmbus_journal_query_t *q,
	      int (*each)(const shmbus_journal_entry_t *e, void *arg),
	      void *arg, uint64_t *count);

/* journal_attach.c */

/* journal_damage.c */
/* journal.ctl is missing and segment files are here: an anonymous
 * control page made from their headers (nothing written); ENOENT if
 * there is no segment file. */
int jctl_rebuild(shmbus_journal_t *j);
/* A writer's open that rebuilt the control file, once it is sure: the
 * file written from the page, mapped and locked. */
int jctl_rebuilt_write(shmbus_journal_t *j);
/* After a listing: the entries for missing segments, every lost entry's
 * end (journal_refresh, and the open once the unsealed are scanned). */
int jdamage_assess(shmbus_journal_t *j);
void jdamage_clear(shmbus_journal_t *j); /* the JLOST_GONE entries */
/* A writer's open: refuse damage it may not append after, and a last
 * segment whose records end below the end the last writer published. */
int jdamage_refuse(shmbus_journal_t *j);
/* A writer's open, once it is sure: what a machine restart took noted,
 * such entries at the end of the table dropped (a file set aside as
 * NAME.seg.lost), so that appends go on after the records there are. */
int jdamage_settle(shmbus_journal_t *j);
/* journal_losses.c: the loss table in journal.ctl */
/* The table (its valid copy of the highest generation), or an empty one. */
void jlosses_read(const shmbus_journal_t *j, struct jctl_losses *t);
/* Every sequence of [from, to) is in a range of t (acked: one that was
 * acknowledged). */
bool jlosses_covers(const struct jctl_losses *t, uint64_t from, uint64_t to,
		    bool acked);
/* Ranges wholly below oldest dropped; whether any was. */
bool jlosses_prune(struct jctl_losses *t, uint64_t oldest);
/* [from, to) into t (acked: as acknowledged): 1 added, 0 held already,
 * -1 no room. */
int jlosses_add(struct jctl_losses *t, uint64_t from, uint64_t to,
		bool acked);
/* t as the table, on disk (both copies) before it returns. */
int jlosses_write(shmbus_journal_t *j, struct jctl_losses *t);

/* s's damage in words: what, which file, which sequences. */
void jlost_text(const shmbus_journal_t *j, const struct jseg *s, char *out,
		size_t n);
uint32_t jfiles(const shmbus_journal_t *j); /* entries that are files */

static inline uint64_t jseg_limit(const shmbus_journal_t *j,
				  const struct jseg *s)
{
	return s->sealed ? s->end_off : j->seg_size;
}

static inline const struct jrec_header *jrec_at(const struct jseg *s,
						uint64_t off)
{
	return (const struct jrec_header *)(s->map + off);
}

/* The header at p, in s (a frame that passed jframe_check), decoded. */
static inline void jrec_get(const struct jseg *s, const uint8_t *p,
			    struct jrec *r)
{
	jrec_decode(s->version, s->first_seq, s->chan, p, r);
}

static inline void jseg_note(struct jseg *s, uint64_t seq, uint64_t ts,
			     uint64_t key, uint64_t off, uint64_t next)
{
	jsparse_add(&s->live, seq, ts, off);
	if (s->n_wkeys < s->cap_wkeys) /* cap_wkeys is 0 without wkeys */
		s->wkeys[s->n_wkeys++] = (struct jidx_key){key, off};
	if (ts < s->ts_min)
		s->ts_min = ts;
	s->ts_max = s->live.ts_hi;
	s->count++;
	s->last_seq = seq;
	s->end_off = next;
}

#endif /* SHMBUS_JOURNAL_INT_H */
