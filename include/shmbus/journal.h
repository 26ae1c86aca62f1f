/*
 * shmbus journal: an append-only event store on disk, per channel.
 *
 * A journal is a directory of segment files (default 64 MiB each, named by
 * the sequence of their first record), written through mmap, and a small
 * control file. Each record is framed with a marker, its length, a CRC32C,
 * its sequence, time stamp, type, flags and aggregate id (key). Full
 * segments are sealed and get an index file (sparse by sequence and time,
 * complete by key), so that opening a journal reads only the headers of
 * sealed segments and scans only the unsealed tail. docs/journal.md has the
 * format, the recovery rules and the guarantees.
 *
 * Link libshmbus_journal (pkg-config shmbus-journal; CMake shmbus::journal),
 * a library of its own above libshmbus, of the same version.
 *
 * Concurrency contract:
 *   - One writer per journal directory at a time, across processes: a
 *     second writer gets SHMBUS_EBUSY (a kernel-held lock on the control
 *     file, released when the holder dies).
 *   - Any number of read-only handles (SHMBUS_JOURNAL_READONLY), in any
 *     process, also while the writer appends: a reader never sees a record
 *     before it is complete (the writer release-stores each record's marker
 *     after its bytes; a buffered writer, a chunk's first marker after the
 *     chunk) and never returns a record whose CRC fails.
 *   - A handle, and an iterator, belong to one thread at a time.
 *   - A writer starts a helper thread (it sorts and writes sealed
 *     segments' indexes, reserves the next file, touches a mapped
 *     writer's pages ahead of it; all signals blocked) at its first
 *     append through the mapping or its first roll: a writer handle
 *     belongs to the process that opened it, and is not used across
 *     fork().
 *
 * Sequences are the bus's: strictly increasing, gaps allowed (a gap is a
 * tombstone the bus skipped, a loss of an overwrite channel, or records
 * published before journaling started). Sequences are compared as plain
 * unsigned integers: a journal does not follow a bus past 2^64 - 1.
 *
 * Errors: 0 or a negative SHMBUS_E* code; control-path failures leave a
 * message in shmbus_errmsg() naming the file and, for bad content, the
 * byte offset. shmbus_journal_append returns codes only on its fast path.
 */
#ifndef SHMBUS_JOURNAL_H
#define SHMBUS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <shmbus/shmbus.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shmbus_journal shmbus_journal_t;
typedef struct shmbus_journal_iter shmbus_journal_iter_t;

/*
 * When appended records reach the disk. Every policy survives the death of
 * the writing process: records live in the page cache as soon as
 * shmbus_journal_append returns (SHMBUS_JOURNAL_BUFFERED: once flushed).
 * The policies differ in what survives a crash of the machine (kernel
 * panic, power loss):
 *
 *   NONE      nothing is promised; the kernel writes back when it likes
 *             (typically within 30 s). Fastest.
 *   EVERY_N   after every sync_every-th append, the append syncs
 *             (msync MS_SYNC of the written range: data and the metadata
 *             needed to read it) before returning. A record is durable
 *             once shmbus_journal_synced() has passed it; with
 *             sync_every = 1, every append that returned is durable.
 *             The attached journaler (shmbus_journal_attach) commits in
 *             groups: it syncs at the end of each batch, if sync_every
 *             appends are unsynced, before its cursor moves -- one sync
 *             for the batch, and a commit to a synchronous channel
 *             still returns only once its records are synced.
 *   INTERVAL  an append that finds sync_interval_us passed since the
 *             last sync syncs (itself included) before it returns;
 *             shmbus_journal_tick() does the same when idle (the attached
 *             journaler's loop calls it). At most the records appended in
 *             the last interval (plus one sync's duration) can be lost.
 *
 * Sealing a segment, creating one and removing one by retention sync the
 * index file, segment header and directory under EVERY_N and INTERVAL.
 * A failed sync is sticky: the handle refuses further appends (the page
 * cache's state is unknown after a write-back error); reopen to recover.
 */
enum shmbus_journal_sync {
	SHMBUS_JOURNAL_SYNC_NONE = 0,
	SHMBUS_JOURNAL_SYNC_EVERY_N = 1,
	SHMBUS_JOURNAL_SYNC_INTERVAL = 2,
};

enum shmbus_journal_flags {
	/* Open an existing journal for reading; never writes anything, may
	 * run next to the writer (another process). */
	SHMBUS_JOURNAL_READONLY = 1u << 0,
	/* Writer: the unsealed tail is cut at its first bad record, and the
	 * valid records found after it (corruption, or a machine crash that
	 * wrote back later pages before earlier ones) are lost with it, and
	 * counted in the recovery report. With STRICT, such an open fails
	 * with SHMBUS_ECORRUPT instead, cutting nothing, when valid records
	 * follow the bad one. A torn last record is cut either way. */
	SHMBUS_JOURNAL_STRICT = 1u << 1,
	/* Writer: appends are framed in a private 64 KiB buffer and reach
	 * the file with one pwrite per flush: when the buffer fills, at
	 * shmbus_journal_flush, before a sync, a seal and at close. An
	 * append is seen by readers, and survives the death of this
	 * process, once it is flushed (the policies' promises start
	 * there). About twice the write speed of appending through the
	 * mapping: whole pages written, none zero-filled or faulted in.
	 * The journaler (shmbus_journal_attach) always writes this way and
	 * flushes before its cursor moves. */
	SHMBUS_JOURNAL_BUFFERED = 1u << 2,
	/* Writer: open a journal that has lost sequences (a segment file
	 * missing, or one that fails its checks: shmbus_journal_get_damage;
	 * records gone from below the end the last writer published) and
	 * append after them. Without it such an open fails with
	 * SHMBUS_ECORRUPT naming the damage and changes nothing; with it,
	 * the damage stays where it is, recorded in the control file so
	 * that later writers open without the flag, and every read, verify
	 * and info go on reporting it, until retention removes it or
	 * shmbus_journal_accept_range (or _accept_loss, at the head)
	 * acknowledges it. Records gone from the end of the last segment:
	 * the end goes back to the records there are (the recovery report
	 * says so). Never needed after a crash of a process, nor for what a
	 * machine crash took that was not synced; docs/journal.md, "Damage",
	 * says when. */
	SHMBUS_JOURNAL_ACCEPT_LOSS = 1u << 3,
};

typedef struct shmbus_journal_opts {
	uint32_t flags;		   /* shmbus_journal_flags */
	uint32_t sync;		   /* shmbus_journal_sync */
	uint32_t sync_every;	   /* EVERY_N: records per sync; 0 = 1 */
	uint32_t sync_interval_us; /* INTERVAL: 0 = 1000 */
	/* bytes per segment file, a multiple of 4096 within 64 KiB..1 GiB;
	 * 0 = 64 MiB. A journal keeps the size it was created with. */
	uint64_t segment_size;
	/* retention, whole sealed segments only (never the active one):
	 * remove the oldest while the segments take more than retain_bytes,
	 * and those sealed more than retain_age_ms ago. 0 = keep. */
	uint64_t retain_bytes;
	uint64_t retain_age_ms;
	uint32_t mode; /* files; 0 = 0600 (the directory: 0700) */
	/* SHMBUS_JOURNAL_BUFFERED: once this many bytes were flushed since
	 * the last time, have the disk start writing them, and the rest of
	 * a segment as it is sealed (sync_file_range, by the writer's helper
	 * thread: the appending thread never waits for the device): the
	 * disk works while records are appended, so a later sync has
	 * little left to wait for, and dirty pages do not pile up for the
	 * kernel to write in a burst. A hint: nothing is promised before a
	 * sync. 0 = the kernel's own schedule. 4 MiB or so suits a disk. */
	uint64_t writeback_bytes;
	/* written into new segment headers, for tools: channel name and id
	 * (shmbus_journal_attach fills them from the channel) */
	uint32_t channel_id;
	const char *channel;
} shmbus_journal_opts_t;

/*
 * Open the journal in directory dir (created, with its parents' existence
 * required, unless READONLY), recovering the unsealed tail as
 * docs/journal.md says. opts may be NULL (a writer with default options).
 * Damage beyond single records (segments missing, a segment file failing
 * its checks, a missing journal.ctl) does not fail a read-only open: reads
 * report it where they reach it, shmbus_journal_get_damage lists it. A
 * writer's open refuses lost sequences (SHMBUS_ECORRUPT, naming them and
 * the way out; nothing changed on disk) unless SHMBUS_JOURNAL_ACCEPT_LOSS,
 * and repairs what loses nothing (a control file rebuilt from the
 * segments, a seal block written again).
 */
SHMBUS_API int shmbus_journal_open(const char *dir,
				   const shmbus_journal_opts_t *opts,
				   shmbus_journal_t **out);
/* Sync per the policy (a final sync under EVERY_N and INTERVAL), release
 * the writer lock, unmap. Returns the sync's result. */
SHMBUS_API int shmbus_journal_close(shmbus_journal_t *j);

/* Passed as seq: the journal's end (the previous sequence + 1). */
#define SHMBUS_JOURNAL_NEXT UINT64_MAX

/*
 * Append one record. seq must be above every sequence appended before
 * (SHMBUS_EINVAL otherwise), or SHMBUS_JOURNAL_NEXT. Returns 0 once the
 * record is in the page cache (and synced, as the policy says), or, with
 * SHMBUS_JOURNAL_BUFFERED, in the handle's buffer. Makes no system call
 * and allocates nothing except when a segment fills (seal, index, next
 * segment: SHMBUS_ENOMEM with a message if the disk is full, the journal
 * staying as it was), for the policy's sync, and for a buffered handle's
 * flush when its buffer fills.
 */
SHMBUS_API int shmbus_journal_append(shmbus_journal_t *j, uint64_t seq,
				     uint64_t timestamp, uint32_t type,
				     uint64_t key, const void *data,
				     uint32_t len);
/* Append a bus record as it is (seq, timestamp, key, flags, origin,
 * producer); type is the event type (the journaler uses the channel id). */
SHMBUS_API int shmbus_journal_append_record(shmbus_journal_t *j,
					    const shmbus_record_t *rec,
					    uint32_t type);
/* Sync everything appended, whatever the policy. */
SHMBUS_API int shmbus_journal_sync(shmbus_journal_t *j);
/* INTERVAL: sync if the interval has passed with records unsynced; else
 * nothing. For idle loops. */
SHMBUS_API int shmbus_journal_tick(shmbus_journal_t *j);
/* SHMBUS_JOURNAL_BUFFERED: write the buffered appends to the file (one
 * pwrite), where readers see them. 0 at once for an unbuffered writer,
 * SHMBUS_EINVAL for a read-only handle. A failure is sticky, as a failed
 * sync is. */
SHMBUS_API int shmbus_journal_flush(shmbus_journal_t *j);

/*
 * The end: the last appended sequence + 1 (0 for a journal that never had
 * a record). Any handle, any process: one acquire load from the control
 * file, published after the record is complete. shmbus_journal_synced is
 * the same for the part that survived a sync.
 */
SHMBUS_API uint64_t shmbus_journal_end(const shmbus_journal_t *j);
SHMBUS_API uint64_t shmbus_journal_synced(const shmbus_journal_t *j);

/* --------------------------------------------------------------- reading */

enum shmbus_journal_query_flags {
	/* Go on past corrupt records (each is counted in stats.corrupt and
	 * reported in shmbus_errmsg, then skipped as docs/journal.md says)
	 * instead of stopping at the first with SHMBUS_ECORRUPT. */
	SHMBUS_JOURNAL_SKIP_CORRUPT = 1u << 0,
	/* Only records whose key equals query.key, from the key index. */
	SHMBUS_JOURNAL_BY_KEY = 1u << 1,
	/* Start at the first record (in sequence order) whose timestamp is
	 * >= query.from_time, rather than at from_seq. Time stamps need not
	 * be monotonic: every record after that one is returned. */
	SHMBUS_JOURNAL_BY_TIME = 1u << 2,
};

typedef struct shmbus_journal_query {
	uint64_t from_seq;  /* first sequence wanted (0: the oldest) */
	uint64_t to_seq;    /* end, exclusive; 0 = no end */
	uint64_t from_time; /* with SHMBUS_JOURNAL_BY_TIME */
	uint64_t key;	    /* with SHMBUS_JOURNAL_BY_KEY */
	uint32_t flags;	    /* shmbus_journal_query_flags */
	uint32_t reserved;
} shmbus_journal_query_t;

typedef struct shmbus_journal_entry {
	/* rec.data points into the journal's mapping or the iterator's read
	 * buffer, valid until the next call on the iterator (or its close);
	 * rec.channel_id is the record's type,
	 * rec.attempt is 1 */
	shmbus_record_t rec;
	uint32_t type;
	uint32_t reserved;
	uint64_t segment; /* first sequence of the segment file holding it */
	uint64_t offset;  /* byte offset of the record's frame in that file */
} shmbus_journal_entry_t;

/* An iterator over a query (q NULL: everything). */
SHMBUS_API int shmbus_journal_iter_open(shmbus_journal_t *j,
					const shmbus_journal_query_t *q,
					shmbus_journal_iter_t **out);
/*
 * The next record: 1 with *e filled; 0 at the end of the query's range or
 * of what has been appended so far (call again later to follow a live
 * writer); SHMBUS_ECORRUPT for a corrupt record, with its position in
 * e->segment/e->offset and in shmbus_errmsg() -- the next call resumes
 * after it where that is safe (docs/journal.md). Never returns a torn or
 * corrupt record. SHMBUS_ECORRUPT with e->offset 0 is not a record but a
 * range of sequences that cannot be read (shmbus_journal_get_damage: a
 * segment missing, or failing its checks), met where the query reaches
 * it: e->segment is its first sequence, shmbus_errmsg() names it, its
 * file and the sequences, which are counted in stats.lost_*; the next
 * call goes on after it.
 */
SHMBUS_API int shmbus_journal_iter_next(shmbus_journal_iter_t *it,
					shmbus_journal_entry_t *e);
SHMBUS_API void shmbus_journal_iter_close(shmbus_journal_iter_t *it);
/* Sequences this iterator passed over because retention removed their
 * segment before it read them (counted from the journal's oldest kept
 * sequence when it moved on; a range of sequences, so it includes any
 * gaps the bus left in it). 0 if none: then nothing was skipped. */
SHMBUS_API uint64_t
shmbus_journal_iter_skipped(const shmbus_journal_iter_t *it);

/*
 * Replay a query to a bus handler (the same handlers that subscribers
 * run): in sequence order, each record once. A handler returning < 0 stops
 * the replay with SHMBUS_EHANDLER (no retries here). *count (may be NULL)
 * gets the number of records handed over. Returns 0 at the end of what is
 * appended, or the first error.
 */
SHMBUS_API int shmbus_journal_replay(shmbus_journal_t *j,
				     const shmbus_journal_query_t *q,
				     shmbus_handler_fn fn, void *ctx,
				     uint64_t *count);
/* Replay a query back into the bus through p (shmbus_republish: each
 * record keeps its origin, so consumers can de-duplicate). */
SHMBUS_API int shmbus_journal_republish(shmbus_journal_t *j,
					const shmbus_journal_query_t *q,
					shmbus_producer_t *p, uint64_t *count);

/* ------------------------------------------------- retention and stats */

/* Apply the retention options now (a writer also does at each new
 * segment); returns how many segments were removed. */
SHMBUS_API int shmbus_journal_retain(shmbus_journal_t *j);

/* Read every record of every segment and check its CRC (a full scan: for
 * tools and tests). Returns the number of problems found: corrupt
 * records, plus each shmbus_journal_get_damage entry (>= 0; the first is
 * described in shmbus_errmsg()), or an error. 0: every sequence the
 * journal accounts for was read, and found whole. */
SHMBUS_API int shmbus_journal_verify(shmbus_journal_t *j);

typedef struct shmbus_journal_stats {
	uint64_t first_seq;  /* oldest record kept (0 if none) */
	uint64_t end_seq;    /* shmbus_journal_end */
	uint64_t synced_seq; /* shmbus_journal_synced */
	uint64_t segments;   /* segment files */
	uint64_t bytes;	     /* their size on disk, reserved space included */
	uint64_t appended;   /* records appended by this handle */
	uint64_t syncs;	     /* syncs made by this handle */
	uint64_t sealed;     /* segments sealed by this handle */
	uint64_t removed;    /* segments removed by this handle's retention */
	uint64_t corrupt;    /* corrupt records met by this handle's reads */
	uint64_t skipped_bytes;	  /* bytes reads skipped past corruption */
	uint64_t indexes_rebuilt; /* missing or bad index files rebuilt */
	/* ranges that could not be read (a segment missing, or failing its
	 * checks) met by this handle's reads, and the sequences of them
	 * that the reads wanted and had not read (a range whose end is not
	 * known is counted when a read moves past it) */
	uint64_t lost_ranges;
	uint64_t lost_seqs;
} shmbus_journal_stats_t;
SHMBUS_API void shmbus_journal_get_stats(const shmbus_journal_t *j,
					 shmbus_journal_stats_t *st);

/* What a journal is: from its control file, written once at creation. */
typedef struct shmbus_journal_info {
	char channel[SHMBUS_NAME_MAX + 1]; /* "" if made without a channel */
	uint32_t channel_id;
	uint64_t segment_size; /* every segment's */
	uint64_t journal_id;   /* random; every file of it carries it */
	uint64_t created_realtime_ns;
} shmbus_journal_info_t;
SHMBUS_API void shmbus_journal_get_info(const shmbus_journal_t *j,
					shmbus_journal_info_t *info);

/* What the open found and did (docs/journal.md, "Recovery"). */
typedef struct shmbus_journal_recovery {
	/* the unsealed tail: a torn or corrupt record cut at `offset` of
	 * segment `segment` (its first sequence): the records cut (the bad
	 * one and any well-framed ones after it) and the bytes they spanned;
	 * a read-only handle reports, and cuts nothing */
	uint64_t cut_records;
	uint64_t segment;
	uint64_t offset;
	uint64_t bytes;
	/* full segments a crash had left unsealed, sealed by this open */
	uint64_t sealed;
	/* segment files removed: empty last segments, half-made ones */
	uint64_t removed;
	/* why the record at offset was refused, after what else the open
	 * noted (a truncated segment extended, a bad seal block), or "" */
	char reason[160];
} shmbus_journal_recovery_t;
SHMBUS_API void shmbus_journal_get_recovery(const shmbus_journal_t *j,
					    shmbus_journal_recovery_t *r);

/* What is wrong with a journal, beyond single records (docs/journal.md,
 * "Damage"): found when its directory is listed, at open and when a
 * reader learns of new segments. */
enum shmbus_journal_damage_kind {
	/* segment files gone (deleted, or lost with a machine crash):
	 * sequences [from, to) are lost */
	SHMBUS_JOURNAL_DAMAGE_MISSING = 1,
	/* a segment file that fails its checks (header, size, version,
	 * another journal's): [from, to) cannot be read */
	SHMBUS_JOURNAL_DAMAGE_UNREADABLE = 2,
	/* a seal block that fails its CRC: the segment's records were read
	 * by scanning it; a writer's open seals it again */
	SHMBUS_JOURNAL_DAMAGE_SEAL = 3,
	/* journal.ctl is missing: read from the segments; a writer's open
	 * writes it again from them */
	SHMBUS_JOURNAL_DAMAGE_CONTROL = 4,
};

typedef struct shmbus_journal_damage {
	uint32_t kind; /* shmbus_journal_damage_kind */
	uint32_t reserved;
	/* MISSING, UNREADABLE: the sequences, to exclusive; UINT64_MAX: up
	 * to an end that is not known. 0, 0 for the others. */
	uint64_t from, to;
	/* the segment file's first sequence (its name), or UINT64_MAX */
	uint64_t segment;
	char text[320]; /* what, which file, which sequences */
} shmbus_journal_damage_t;

/* The i-th damage found (from 0): 1 with *d filled, 0 past the last. */
SHMBUS_API int shmbus_journal_get_damage(const shmbus_journal_t *j,
					 uint32_t i,
					 shmbus_journal_damage_t *d);

/*
 * A loss, acknowledged for good: the writer, opened with
 * SHMBUS_JOURNAL_ACCEPT_LOSS, raises the control file's first sequence
 * past the sequences missing before its first segment file (on disk
 * before it returns), so that reads, verify and later writers' opens take
 * them for what retention removed and report nothing. A loss between two
 * segment files is acknowledged this way once the files before it are
 * moved out of the directory (the journal then starts after it); a file
 * that fails its checks stays reported until it is moved out, or
 * retention removes it. 1 with the range [*from, *to) acknowledged (from
 * and to may be NULL), 0 if the journal's head had no loss, or an error.
 * `shmbus journal accept-loss DIR` does this.
 */
SHMBUS_API int shmbus_journal_accept_loss(shmbus_journal_t *j, uint64_t *from,
					  uint64_t *to);

/*
 * One lost range acknowledged for good, anywhere in the journal: the one
 * that begins at `from` (shmbus_journal_get_damage's from), recorded as
 * acknowledged in the control file's loss table (on disk before it
 * returns), so that reads skip it as a gap in the sequences, and verify,
 * info and later writers' opens report nothing. The writer, opened with
 * SHMBUS_JOURNAL_ACCEPT_LOSS. 1 with *to (may be NULL) its end; an error
 * if no lost range begins there (SHMBUS_ENOENT), if it is another
 * journal's segment or its end is not known (SHMBUS_ECORRUPT: move that
 * file out). `shmbus journal accept-loss DIR FROM` does this.
 */
SHMBUS_API int shmbus_journal_accept_range(shmbus_journal_t *j, uint64_t from,
					   uint64_t *to);

/* ------------------------------------- journaling a channel (journaler) */

typedef struct shmbus_journal_attach_opts {
	const char *name; /* durable subscriber name; NULL = "journal" */
	uint32_t wait;	  /* shmbus_wait when idle; default SPIN (0) */
	uint32_t batch;	  /* records per cursor update; 0 = 256 */
	const shmbus_journal_opts_t *journal; /* NULL = defaults */
} shmbus_journal_attach_opts_t;

/*
 * A dead letter as the journaler keeps it. Next to the records, in the
 * journal DIR/dlq (an ordinary journal: open it, iterate, dump): sequence
 * = the DLQ entry id, time stamp = when it was journaled (bus clock), type
 * = the channel id, key = the record's key; the payload is this header,
 * then the record's bytes.
 */
typedef struct shmbus_journal_dead_letter {
	uint64_t seq;	    /* the record's bus sequence */
	uint64_t origin;    /* shmbus_record_t.origin */
	uint64_t timestamp; /* the record's publish time (bus clock) */
	uint64_t failed_realtime_ns;
	int32_t error;	   /* the handler's last result */
	uint32_t attempts; /* deliveries made */
	uint32_t len;	   /* record bytes after this header */
	uint32_t flags;	   /* shmbus_record_flags */
	char subscriber[SHMBUS_NAME_MAX + 1];
	char text[72]; /* shmbus_fail_note(), or "" */
} shmbus_journal_dead_letter_t;

/*
 * Journal channel ch into dir: a durable subscriber of ch (by name, so it
 * gates producers like any other: a record not yet journaled is still in
 * the ring) whose handler appends every record with its bus sequence,
 * timestamp, key, flags and origin, type = the channel id. Producers pay
 * nothing. Tombstones are never journaled (they were never accepted); the
 * journal's sequences are the bus's, so a gap is a tombstone, a loss of an
 * overwrite channel, or a record published before the journaler first
 * joined. After a crash, records the bus delivers again are recognised
 * (seq below the journal's end) and not appended twice. A failed append
 * (disk full) holds the subscriber at that record and tries again (ordered
 * retry policy, 1 ms .. 100 ms back-off), so producers feel back-pressure
 * instead of the journal losing a record; on an overwrite channel the
 * record goes to the DLQ. The journal's sequences belong to one bus epoch:
 * attaching a journal that holds records of another epoch fails with
 * SHMBUS_EEXIST. The channel's dead letters are journaled too, in dir/dlq
 * (shmbus_journal_dead_letter_t), as each poll finds them in the DLQ.
 * Drive it with shmbus_journal_poll / _start; the handle is
 * then a writer journal like any other (reads, stats) and
 * shmbus_journal_close also closes the subscriber.
 */
SHMBUS_API int shmbus_journal_attach(shmbus_channel_t *ch, const char *dir,
				     const shmbus_journal_attach_opts_t *opts,
				     shmbus_journal_t **out);
/* Journal up to max available records (shmbus_poll), then
 * shmbus_journal_tick; returns the records journaled or an error. */
SHMBUS_API int shmbus_journal_poll(shmbus_journal_t *j, uint32_t max);
/* Wait by the subscriber's strategy, at most until the next INTERVAL
 * sync is due: 0, SHMBUS_EAGAIN or SHMBUS_EINTR, as shmbus_sub_wait. */
SHMBUS_API int shmbus_journal_wait(shmbus_journal_t *j, uint64_t timeout_ns);
/* A journaling thread (poll, tick, wait), pinned to cpu (-1: not). While
 * it runs, call only shmbus_journal_stop, _end, _synced or _close. */
SHMBUS_API int shmbus_journal_start(shmbus_journal_t *j, int cpu);
SHMBUS_API int shmbus_journal_stop(shmbus_journal_t *j);
/* The journaler's subscriber (for pollers and stats), or NULL. */
SHMBUS_API shmbus_sub_t *shmbus_journal_sub(shmbus_journal_t *j);

/* ---------------------------------------------- replay, then live */

/*
 * A durable subscriber that starts in the past: the records of channel ch
 * from a journal position (from->from_seq, or from->from_time with
 * SHMBUS_JOURNAL_BY_TIME; NULL or 0: the journal's oldest), read from the
 * journal in directory dir, then the live ring, through the same handler:
 * every record once, in sequence order, across the switch, while producers
 * go on publishing. It is an ordinary shmbus_sub_t (shmbus_poll,
 * shmbus_sub_wait, shmbus_sub_start, shmbus_sub_close; not in a poller
 * until it switched: shmbus_sub_replaying says when).
 *
 * The subscriber joins the ring first, as shmbus_subscribe does (opts: a
 * new name starts at the present, an existing one at its cursor X), so
 * its row gates producers at X while it reads [from, X) from the journal
 * (a read-only handle of its own). On a back-pressure channel the ring
 * can fill meanwhile: producers then wait for it, as for any durable
 * subscriber. It switches once the channel's journaler (the subscriber
 * shmbus_journal_attach made, named in the journal's control file) has
 * passed X: then the journal holds every record below X. So the journaler
 * must be attached and running (SHMBUS_ENOENT otherwise), and the journal
 * must be ch's
 * in this bus epoch (SHMBUS_EINVAL). Overwrite channels are refused
 * (nothing would hold the ring). A restart resumes at the row's cursor in
 * the ring: the journal part is not remembered.
 *
 * Gaps in [from, X) are the journal's (tombstones, overwrite losses,
 * records before journaling began, an eviction of the journaler on an
 * evict-policy channel: counted in the journaler's missed); records that
 * retention removed before the start, and corrupt ones (each also an
 * SHMBUS_ECORRUPT from shmbus_poll, which goes on after it on the next
 * call), are counted in stats.missed. A handler that fails takes the retry path as in the ring;
 * the ordered policy holds this process at the journal record.
 */
SHMBUS_API int shmbus_journal_subscribe(shmbus_channel_t *ch, const char *dir,
					const shmbus_journal_query_t *from,
					shmbus_handler_fn fn, void *ctx,
					const shmbus_sub_opts_t *opts,
					shmbus_sub_t **out);
/* shmbus_sub_replaying (shmbus.h) says when s reads the ring. */

#ifdef __cplusplus
}
#endif
#endif /* SHMBUS_JOURNAL_H */
