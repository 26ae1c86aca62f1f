/*
 * The writer: append, flush, segment roll (seal, index, next segment),
 * the durability policy.
 *
 * One writer per journal (the control file's kernel lock). An append
 * copies header and payload into the mapped active segment, computes the
 * CRC over them in place, and release-stores the record's marker; then it
 * publishes the new end in the control file, end_seq last with release.
 * No system call and no allocation on that path: segments are reserved
 * whole with posix_fallocate when created (a full disk is an error there,
 * never a SIGBUS on a page later), and the sparse index of the active
 * segment has room for a whole segment from the start.
 *
 * A buffered writer (SHMBUS_JOURNAL_BUFFERED) frames records the same way
 * in a private buffer that mirrors the file from stage_off, and a flush
 * writes it with one pwrite. That is what makes it twice as fast: the
 * kernel copies whole pages into the page cache, where a first store
 * through the mapping costs a page fault and a zero-fill of the page
 * before our bytes land in it. The chunk's first marker is left 0 in the
 * buffer and written after the chunk's pwrite returned (chunk_open: by
 * a pwrite of its own for a chunk of a page or more, a release store
 * through the mapping for a smaller one): a reader stops at that record
 * until then, so it never sees the inside of a chunk the kernel is still
 * copying (its copy has no order), and a reader that sees only some of
 * the marker's bytes takes it as not yet written (journal_recover.c). A
 * writer killed between the two leaves a chunk whose first marker is 0
 * over a record whose CRC holds; recovery opens it (journal_recover.c).
 *
 * For a synchronous producer mode (several processes appending in bus
 * order), the writer state that an append reads and moves is exactly the
 * control file's line 2 (active segment, end offset, end sequence): an
 * appender would take a lock on the control file, reload that line (and
 * map the active segment if it changed), append, publish, unlock. Today
 * the lock is held for the handle's life (ctl_open in journal.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "journal_int.h"

#define PAGE 4096u

/* msync the bytes of s written since its last sync (the range rounded
 * down to a page, as msync needs). */
static int sync_seg(shmbus_journal_t *j, struct jseg *s)
{
	uint64_t from = s->synced_off & ~(uint64_t)(PAGE - 1);
	if (s->end_off > from &&
	    msync(s->map + from, s->end_off - from, MS_SYNC) != 0) {
		j->failed = jerr_file(SHMBUS_ESYS, errno, j, s->first_seq,
				      ".seg",
				      "msync of [%" PRIu64 ", %" PRIu64
				      "): appends refused until reopened",
				      from, s->end_off);
		return j->failed;
	}
	s->synced_off = s->end_off;
	return 0;
}

/* msync page 0 of s: its header and seal block. */
static int sync_head(shmbus_journal_t *j, struct jseg *s)
{
	if (s->head_synced)
		return 0;
	if (msync(s->map, PAGE, MS_SYNC) != 0)
		return j->failed = jerr_file(SHMBUS_ESYS, errno, j,
					     s->first_seq, ".seg",
					     "msync of the header");
	s->head_synced = true;
	return 0;
}

static void synced(shmbus_journal_t *j)
{
	j->synced_seq = j->end_seq;
	j->unsynced = 0;
	j->last_sync_ns = shmbus_now_ns();
	j->st.syncs++;
	/* relaxed: a statement about the disk, read by tools */
	atomic_store_explicit(&j->ctl->synced_seq, j->synced_seq,
			      memory_order_relaxed);
}

/* A failed fdatasync of the syncer (policy NONE), made sticky. */
static int syncer_failed(shmbus_journal_t *j)
{
	int err = jsealer_sync_error(j);
	if (err && !j->failed)
		j->failed = jerr_file(SHMBUS_ESYS, err, j, UINT64_MAX, NULL,
				      "fdatasync of a sealed segment: appends "
				      "refused until reopened");
	return j->failed;
}

/* Readers may read up to the writer's end. */
static void publish_end(shmbus_journal_t *j)
{
	/* relaxed: end_off is read under the writer lock or after end_seq */
	atomic_store_explicit(&j->ctl->end_off, j->end_off,
			      memory_order_relaxed);
	/* release: the records before the end that includes them; pairs
	 * with the acquire in shmbus_journal_end */
	atomic_store_explicit(&j->ctl->end_seq, j->end_seq,
			      memory_order_release);
}

/* A mapped writer: the sealer faults in the pages up to TOUCH_AHEAD past
 * the end before the writer gets there (journal_sealer.c). */
#define TOUCH_AHEAD (2u << 20)
static void touch_ahead(shmbus_journal_t *j, struct jseg *s)
{
	/* a buffered writer's from the next page: a page holding records
	 * may be clean (synced), and touching dirties it again */
	uint64_t here = (j->end_off + (j->stage ? PAGE - 1 : 0)) &
			~(uint64_t)(PAGE - 1);
	uint64_t from = s->touched > here ? s->touched : here;
	uint64_t to = here + TOUCH_AHEAD < j->seg_size ? here + TOUCH_AHEAD
						      : j->seg_size;
	if (to <= from)
		return;
	s->touched = jsealer_touch(j, s->map + from, to - from) ? to
								: j->seg_size;
}

/* Have the disk start writing what was flushed (opts' writeback_bytes),
 * by the sealer thread: whole pages only, unless the segment is done (the
 * partial last page is written again by the next flush). */
static void writeback_ahead(shmbus_journal_t *j, struct jseg *s,
			    bool sealing)
{
	uint64_t to = sealing ? s->end_off : s->end_off & ~(uint64_t)(PAGE - 1);
	if (j->writeback_bytes == 0 || s->fd < 0 || to <= s->wb_off ||
	    (!sealing && to - s->wb_off < j->writeback_bytes))
		return;
	jsealer_writeback(j, s->fd, s->wb_off, to);
	s->wb_off = to;
}

/*
 * Open the chunk just written: its first marker. A chunk of a page or
 * more: by a pwrite of the marker (the chunk's first page is new to the
 * writer's mapping, and a store would fault it in and leave it writable,
 * for write-back to write-protect with a TLB shootdown). A smaller one
 * (a journaler's batch of a few records, where a commit waits for the
 * flush): by a store through the mapping, which faults at most once a
 * page -- a second system call there doubled a synchronous commit's p50
 * (2.3 to 4.7 us, bench/RESULTS.md).
 */
static int chunk_open(shmbus_journal_t *j, struct jseg *s)
{
	if (j->stage_fill < PAGE) {
		struct jrec_header *first =
			(struct jrec_header *)(s->map + j->stage_off);
		/* release: the chunk's bytes (the kernel's copy, made in
		 * this thread) before the marker that opens them; pairs
		 * with the acquire in jframe_check */
		atomic_store_explicit(&first->marker, JREC_MARKER,
				      memory_order_release);
		return 0;
	}
	/* release: as above, the kernel's copy of the marker being the
	 * next pwrite */
	atomic_thread_fence(memory_order_release);
	static const uint32_t marker = JREC_MARKER;
	ssize_t w;
	do
		w = pwrite(s->fd, &marker, sizeof(marker), (off_t)j->stage_off);
	while (w < 0 && errno == EINTR);
	if (w == (ssize_t)sizeof(marker))
		return 0;
	return j->failed = jerr_file(SHMBUS_ESYS, w < 0 ? errno : EIO, j,
				     s->first_seq, ".seg",
				     "write of the marker at %" PRIu64
				     ": appends refused until reopened",
				     j->stage_off);
}

/*
 * A chunk smaller than a page (a journaler's batch of a few records, where
 * a synchronous commit waits for the flush) is copied into the mapping
 * rather than written: chunk_open stores its first marker through the
 * mapping anyway, so its page is the mapping's already, and the pwrite
 * was a system call on the commit's round trip. Record by record, each
 * one's marker (but the first's, 0 until chunk_open) after its other
 * bytes, as a mapped append stores them: a death on the way leaves what a
 * mapped writer's does, whole records and then one torn (recovery cuts
 * it; nothing after it looks valid), where memcpy's order of stores
 * would not say.
 */
static void chunk_copy(shmbus_journal_t *j, struct jseg *s)
{
	const uint8_t *from = j->stage;
	uint8_t *to = s->map + j->stage_off;
	for (uint64_t off = 0; off < j->stage_fill;) {
		uint32_t len;
		memcpy(&len, from + off + offsetof(struct jrec_header, len), 4);
		uint64_t frame =
			jrec_span(jrec_hsz(s->version, from + off), len);
		memcpy(to + off + 4, from + off + 4, frame - 4);
		if (off)
			/* release: the record's other bytes before its
			 * marker (readers stop at the chunk's first until
			 * chunk_open's release) */
			atomic_store_explicit(
				&((struct jrec_header *)(to + off))->marker,
				JREC_MARKER, memory_order_release);
		off += frame;
	}
}

int jstage_init(shmbus_journal_t *j)
{
	j->stage = malloc(JSTAGE_BYTES);
	if (j->stage == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "journal: out of memory");
	return 0;
}

int jflush(shmbus_journal_t *j)
{
	if (j->stage_fill == 0)
		return 0;
	if (j->failed)
		return j->failed;
	struct jseg *s = j->active;
	const uint8_t *p = j->stage;
	uint64_t at = j->stage_off, left = j->stage_fill;
	if (left < PAGE) {
		chunk_copy(j, s);
		left = 0;
		/* stores through the mapping: the pages ahead faulted in by
		 * the sealer, as for a mapped writer (a page's first store
		 * here was a fault of 10-15 us on a synchronous commit's
		 * round trip, one commit in 60 of 40 B records: its p99) */
		if (j->end_off + TOUCH_AHEAD / 2 > s->touched)
			touch_ahead(j, s);
	}
	while (left) {
		ssize_t w = pwrite(s->fd, p, left, (off_t)at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return j->failed = jerr_file(
				       SHMBUS_ESYS, w < 0 ? errno : EIO, j,
				       s->first_seq, ".seg",
				       "write of [%" PRIu64 ", %" PRIu64
				       "): appends refused until reopened",
				       at, j->stage_off + j->stage_fill);
		p += w;
		at += (uint64_t)w;
		left -= (uint64_t)w;
	}
	JFAILPOINT(j, JFP_MID_FLUSH);
	int rc = chunk_open(j, s);
	if (rc)
		return rc;
	j->stage_fill = 0;
	publish_end(j);
	writeback_ahead(j, s, false);
	return 0;
}

int jbatch_end(shmbus_journal_t *j)
{
	if (j->sync == SHMBUS_JOURNAL_SYNC_EVERY_N && j->unsynced &&
	    j->unsynced >= j->sync_every)
		return jsync_active(j); /* flushes first */
	return jflush(j);
}

int shmbus_journal_flush(shmbus_journal_t *j)
{
	if (j == NULL || !j->writer)
		return SHMBUS_EINVAL;
	return jflush(j);
}

int jsync_active(shmbus_journal_t *j)
{
	int rc = jflush(j);
	if (rc)
		return rc;
	if (j->active && (rc = sync_seg(j, j->active)) != 0)
		return rc;
	synced(j);
	return 0;
}

/* A segment that is not the active one (sealed, by this handle or an
 * earlier writer: mapped read-only, or not at all), by name. */
static int sync_file(shmbus_journal_t *j, const struct jseg *s)
{
	char name[40];
	jname(name, s->first_seq, ".seg");
	int fd = s->fd >= 0 ? s->fd
			    : openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
	int bad = fd < 0 || fdatasync(fd) != 0;
	int err = errno;
	if (fd >= 0 && fd != s->fd)
		close(fd);
	if (bad)
		return j->failed = jerr_file(SHMBUS_ESYS, err, j, s->first_seq,
					     ".seg", "fdatasync");
	return 0;
}

int jsync_from(shmbus_journal_t *j, uint64_t from)
{
	int k = jseg_find(j, from);
	for (uint32_t i = k < 0 ? 0 : (uint32_t)k; i < j->nsegs; i++) {
		struct jseg *s = j->segs[i];
		int rc = s->lost	  ? 0
			 : s == j->active ? sync_seg(j, s)
					  : sync_file(j, s);
		if (rc == 0 && s == j->active)
			rc = sync_head(j, s);
		if (rc)
			return rc;
	}
	/* the names: only when a segment was made since the last time (an
	 * fsync of a directory flushes the disk's cache even with nothing
	 * to write) */
	if (j->dir_synced == j->newest)
		return 0;
	if (fsync(j->dirfd) != 0)
		return j->failed = jerr_file(SHMBUS_ESYS, errno, j, UINT64_MAX,
					     NULL, "fsync of the directory");
	j->dir_synced = j->newest;
	return 0;
}

int shmbus_journal_sync(shmbus_journal_t *j)
{
	if (j == NULL || !j->writer)
		return SHMBUS_EINVAL;
	if (syncer_failed(j))
		return j->failed;
	int rc = jflush(j);
	if (rc)
		return rc;
	/* from where the syncs so far reached (this handle's, its open's, an
	 * earlier writer's): segments that earlier writers sealed unsynced
	 * under policy NONE included, so that synced_seq tells the truth
	 * (relaxed: a statement about the disk) */
	rc = jsync_from(j, atomic_load_explicit(&j->ctl->synced_seq,
						memory_order_relaxed));
	if (rc)
		return rc;
	synced(j);
	return 0;
}

int shmbus_journal_tick(shmbus_journal_t *j)
{
	if (j == NULL || !j->writer)
		return SHMBUS_EINVAL;
	int rc = jflush(j);
	if (rc)
		return rc;
	if (j->sync != SHMBUS_JOURNAL_SYNC_INTERVAL || j->unsynced == 0 ||
	    j->failed)
		return j->failed;
	if (shmbus_now_ns() - j->last_sync_ns < j->sync_interval_ns)
		return 0;
	return jsync_active(j);
}

/* ---------------------------------------------------------------- seal */

int jseal(shmbus_journal_t *j, struct jseg *s)
{
	int rc = s == j->active ? jflush(j) : 0;
	if (rc || (rc = syncer_failed(j)) != 0)
		return rc;
	/* the index: sorted and written by the sealer thread while we go
	 * on, or here */
	if (!jsealer_take(j, s)) {
		jsealer_wait(j); /* its scratch is free */
		if ((rc = jindex_seal(j, s)) != 0)
			return rc;
	}
	if (jsync_policy(j) && (rc = sync_seg(j, s)) != 0)
		return rc;
	writeback_ahead(j, s, true);
	JFAILPOINT(j, JFP_MID_SEAL);
	struct jseg_header *h = (struct jseg_header *)s->map;
	h->end_off = s->end_off;
	h->count = s->count;
	h->last_seq = s->last_seq;
	h->ts_min = s->ts_min;
	h->ts_max = s->ts_max;
	h->sealed_realtime_ns = jrealtime_ns();
	h->lost_to = s->seal_lost_to;
	h->seal_crc = crc32c(s->map + JSEG_SEAL_CRC_FROM,
			     JSEG_SEAL_CRC_TO - JSEG_SEAL_CRC_FROM, 0);
	/* release: the seal block before the flag; pairs with the acquire
	 * in jseal_read (readers of a segment being sealed) */
	atomic_store_explicit(&h->sealed, JSEAL_MARKER, memory_order_release);
	s->head_synced = false;
	if (jsync_policy(j) && (rc = sync_head(j, s)) != 0)
		return rc;
	if (!jsync_policy(j)) /* the floor of synced_seq, off this thread */
		jsealer_durable(j, j->dsync_from, s->first_seq,
				s->last_seq + 1);
	s->sealed = true;
	s->sealed_ns = h->sealed_realtime_ns;
	free(s->live.e);
	memset(&s->live, 0, sizeof(s->live));
	jwkeys_free(s);
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	if (j->active == s)
		j->active = NULL;
	j->st.sealed++;
	return 0;
}

/* ---------------------------------------------------- a new segment */

static void fill_header(const shmbus_journal_t *j, struct jseg_header *h,
			uint64_t first)
{
	h->magic = JSEG_MAGIC;
	h->version = JOURNAL_VERSION;
	h->data_off = JSEG_DATA_OFF;
	h->segment_size = j->seg_size;
	h->first_seq = first;
	h->journal_id = j->journal_id;
	h->created_realtime_ns = jrealtime_ns();
	memcpy(h->channel, j->channel, sizeof(h->channel));
	h->channel_id = j->channel_id;
	h->header_crc = crc32c(h, offsetof(struct jseg_header, header_crc), 0);
	h->prev_first = j->newest;
	/* relaxed: we hold the writer lock; the journaler claimed the epoch
	 * through this handle */
	h->bus_epoch = atomic_load_explicit(&j->ctl->epoch_set,
					    memory_order_relaxed)
			       ? atomic_load_explicit(&j->ctl->bus_epoch,
						      memory_order_relaxed)
			       : 0;
	h->link = JLINK_MARKER;
	h->link_crc = crc32c((uint8_t *)h + JLINK_FROM, JLINK_TO - JLINK_FROM,
			     0);
}

/* Made whole under a temporary name (reserved, mapped, header written),
 * then renamed into place: a crash leaves a .tmp file, never a segment
 * without its header. The file is the one the sealer reserved ahead of
 * this roll, if it did, else reserved here. */
static int seg_create(shmbus_journal_t *j, uint64_t first)
{
	char tmp[48], name[40];
	jname(name, first, ".seg");
	struct jseg *s = jseg_new(first);
	if (s == NULL)
		return SHMBUS_ENOMEM;
	int rc = 0;
	if (jsealer_next(j, &s->fd, &s->map)) {
		jname(tmp, JSEG_PREPARED, ".seg.tmp");
	} else {
		jname(tmp, first, ".seg.tmp");
		if ((rc = jseg_reserve(j, tmp, first, &s->fd, &s->map)) != 0) {
			jseg_free(s);
			return rc;
		}
	}
	uint8_t *m = s->map;
	s->map_size = j->seg_size;
	s->writable = true;
	struct stat st;
	if (fstat(s->fd, &st) == 0) /* as a listing would have it */
		s->ino = (uint64_t)st.st_ino;
	s->synced_off = JSEG_DATA_OFF;
	s->version = JOURNAL_VERSION;
	s->chan = j->channel_id;
	s->seq_span = JREC2_SEQ_SPAN;
	fill_header(j, (struct jseg_header *)m, first);
	if (jsync_policy(j) && msync(m, PAGE, MS_SYNC) != 0) {
		rc = jerr_file(SHMBUS_ESYS, errno, j, first, ".seg.tmp",
			       "msync of the header");
		goto fail;
	}
	s->head_synced = jsync_policy(j);
	JFAILPOINT(j, JFP_MID_CREATE);
	if (renameat2(j->dirfd, tmp, j->dirfd, name, RENAME_NOREPLACE) != 0) {
		rc = jerr_file(SHMBUS_ESYS, errno, j, first, ".seg", "rename");
		goto fail;
	}
	if (jsync_policy(j) && fsync(j->dirfd) == 0)
		j->dir_synced = first;
	if ((rc = jsparse_init(j, &s->live)) != 0 ||
	    (rc = jwkeys_init(j, s)) != 0 || (rc = jseg_add(j, s)) != 0) {
		unlinkat(j->dirfd, name, 0);
		jseg_free(s);
		return rc;
	}
	j->active = s;
	j->end_off = JSEG_DATA_OFF;
	j->newest = first;
	/* release: the previous segment's seal before the hint that a new
	 * one exists; pairs with the acquire in catch_up (journal_read.c) */
	atomic_store_explicit(&j->ctl->seg_first, first, memory_order_release);
	return 0;
fail:
	unlinkat(j->dirfd, tmp, 0);
	jseg_free(s);
	return rc;
}

/* The active segment cannot take a frame of `frame` bytes: seal it, start
 * the next at seq, apply retention. */
static int roll(shmbus_journal_t *j, uint64_t seq, uint64_t frame)
{
	if (frame > j->seg_size - JSEG_DATA_OFF)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "journal %s: a record of %" PRIu64
				     " bytes framed does not fit a segment "
				     "of %" PRIu64,
				     j->dir, frame, j->seg_size);
	int rc;
	bool rolling = j->active != NULL;
	if (rolling && (rc = jseal(j, j->active)) != 0)
		return rc;
	if ((rc = seg_create(j, seq)) != 0)
		return rc;
	/* a journal that fills segments: the next one's file ahead */
	if (rolling)
		jsealer_prepare(j);
	if (j->retain_bytes || j->retain_age_ns)
		shmbus_journal_retain(j); /* a failure leaves more, not less */
	return 0;
}

/* -------------------------------------------------------------- append */

static int after_append(shmbus_journal_t *j)
{
	switch (j->sync) {
	case SHMBUS_JOURNAL_SYNC_EVERY_N:
		if (++j->unsynced < j->sync_every || j->group)
			return 0;
		return jsync_active(j);
	case SHMBUS_JOURNAL_SYNC_INTERVAL:
		j->unsynced++;
		if (shmbus_now_ns() - j->last_sync_ns < j->sync_interval_ns)
			return 0;
		return jsync_active(j);
	default:
		return 0;
	}
}

/* Fits r in the active segment s (a frame of `frame` bytes, seq not too
 * far above its first for its format). */
static inline bool fits(const shmbus_journal_t *j, const struct jseg *s,
			const struct jrec *r, uint64_t frame)
{
	return j->seg_size - j->end_off >= frame &&
	       r->seq - s->first_seq < s->seq_span;
}

/* No segment yet (the journal's first, or the one after a seal): one
 * for r, in JOURNAL_VERSION. Out of line: the append's common path does
 * not compute r's frame twice. */
static __attribute__((noinline)) int first_segment(shmbus_journal_t *j,
						   struct jrec r)
{
	uint32_t opt = jrec2_opt(&r, j->channel_id);
	return roll(j, r.seq, jrec_span(jrec2_hsz(opt), r.len));
}

/* The header of r in a segment of version 1 (one that an earlier writer
 * began, gone on with). r by value, as for first_segment: the append's
 * common path keeps r's fields in registers. */
static __attribute__((noinline)) void put_v1(const struct jseg *s,
					     struct jrec r, uint8_t *f)
{
	jrec_encode(1, s->first_seq, s->chan, &r, f);
}

/* r: the record's header, decoded. Inlined into both appends, so that r's
 * fields go straight into the frame: some 230 instructions a buffered
 * 64-byte record, 320 before (bench/RESULTS.md, callgrind). A segment
 * that an earlier writer began in version 1 goes on in version 1 (never
 * two formats in one segment); every new segment is JOURNAL_VERSION. */
static inline __attribute__((always_inline)) int
put(shmbus_journal_t *j, const struct jrec *r, const void *data)
{
	if (__builtin_expect(!j->writer || j->failed, 0))
		return j->failed ? j->failed : SHMBUS_EINVAL;
	if (__builtin_expect(r->seq == SHMBUS_JOURNAL_NEXT ||
				     (j->end_seq && r->seq < j->end_seq) ||
				     (r->len && data == NULL),
			     0))
		return SHMBUS_EINVAL;
	if (__builtin_expect(j->active == NULL, 0)) {
		int rc = first_segment(j, *r);
		if (rc)
			return rc;
	}
	struct jseg *s = j->active;
	bool v1 = __builtin_expect(s->version == 1, 0);
	uint32_t opt = jrec2_opt(r, s->chan);
	uint32_t hsz = v1 ? sizeof(struct jrec_header) : jrec2_hsz(opt);
	uint64_t frame = jrec_span(hsz, r->len);
	if (__builtin_expect(!fits(j, s, r, frame), 0)) {
		int rc = roll(j, r->seq, frame);
		if (rc)
			return rc;
		s = j->active; /* new: JOURNAL_VERSION */
		v1 = false;
		opt = jrec2_opt(r, s->chan);
		hsz = jrec2_hsz(opt);
		frame = jrec_span(hsz, r->len);
	}
	uint64_t off = j->end_off;
	/* buffered: frames up to a quarter of the buffer; a larger one goes
	 * to the mapping, after what is buffered */
	bool staged = j->stage && frame <= JSTAGE_BYTES / 4;
	if (__builtin_expect(j->stage_fill && (!staged || j->stage_fill +
								  frame >
							  JSTAGE_BYTES),
			     0)) {
		int rc = jflush(j);
		if (rc)
			return rc;
	}
	if (staged && j->stage_fill == 0)
		j->stage_off = off;
	uint8_t *f = staged ? j->stage + j->stage_fill : s->map + off;
	struct jrec_header *h = (struct jrec_header *)f;
	if (staged) {
		/* the buffer is reused: the padding, in the frame's last
		 * word, is ours to zero (before the bytes that share it) */
		memset(f + frame - 8, 0, 8);
	}
	if (__builtin_expect(v1, 0))
		put_v1(s, *r, f);
	else
		jrec2_encode(s->first_seq, opt, r, f);
	if (__builtin_expect(j->fp_id == JFP_MID_RECORD, 0)) {
		uint32_t half = r->len / 2;
		if (r->len)
			memcpy(f + hsz, data, half);
		jfailpoint_hit(j); /* payload half copied, no CRC, no marker */
		if (r->len)
			memcpy(f + hsz + half, (const uint8_t *)data + half,
			       r->len - half);
	} else if (r->len) {
		memcpy(f + hsz, data, r->len);
	}
	h->crc = jrec_crc(f, hsz, r->len);
	if (staged) {
		/* relaxed: our private buffer; the chunk's first marker
		 * stays 0 until jflush opens the chunk */
		atomic_store_explicit(&h->marker,
				      j->stage_fill ? JREC_MARKER : 0,
				      memory_order_relaxed);
		j->stage_fill += (uint32_t)frame;
	} else {
		/* release: every other byte of the record before its
		 * marker; pairs with the acquire in jframe_check */
		atomic_store_explicit(&h->marker, JREC_MARKER,
				      memory_order_release);
	}
	j->end_off = off + frame;
	jseg_note(s, r->seq, r->timestamp, r->key, off, j->end_off);
	j->end_seq = r->seq + 1;
	j->st.appended++;
	if (!staged) {
		publish_end(j);
		if (__builtin_expect(j->stage == NULL &&
					     j->end_off + TOUCH_AHEAD / 2 >
						     s->touched,
				     0))
			touch_ahead(j, s);
	}
	if (__builtin_expect(j->sync == SHMBUS_JOURNAL_SYNC_NONE, 1))
		return 0;
	return after_append(j);
}

int shmbus_journal_append(shmbus_journal_t *j, uint64_t seq,
			  uint64_t timestamp, uint32_t type, uint64_t key,
			  const void *data, uint32_t len)
{
	if (j == NULL)
		return SHMBUS_EINVAL;
	if (seq == SHMBUS_JOURNAL_NEXT)
		seq = j->end_seq;
	struct jrec r = {.len = len,
			 .type = type,
			 .seq = seq,
			 .timestamp = timestamp,
			 .key = key,
			 .origin = seq};
	return put(j, &r, data);
}

int shmbus_journal_append_record(shmbus_journal_t *j,
				 const shmbus_record_t *rec, uint32_t type)
{
	if (j == NULL || rec == NULL)
		return SHMBUS_EINVAL;
	struct jrec r = {.len = rec->len,
			 .type = type,
			 .seq = rec->seq,
			 .timestamp = rec->timestamp,
			 .key = rec->key,
			 .origin = rec->origin,
			 .flags = rec->flags,
			 .producer = rec->producer};
	return put(j, &r, rec->data);
}
