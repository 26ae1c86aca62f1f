/*
 * Reading: iterators over a range of sequences, from a time, or over one
 * aggregate (key); replay to a handler; replay back into the bus.
 *
 * An iterator walks segments in order. Within a segment it either scans
 * frames (from the segment's start, or from a sparse index entry when it
 * seeks a sequence or a time) or, for one key in a sealed segment, follows
 * the key index. Every frame is checked (marker, bounds, CRC, sequence
 * order) before anything of it is returned.
 *
 * Following a live writer: at the end of the last segment the reader
 * re-reads that segment's seal flag (a load from its mapping) and the
 * control file's active-segment hint, and lists the directory only when
 * the hint names a segment it does not know yet: a reader polling at the
 * end makes no system call.
 *
 * After a corrupt record (docs/journal.md, "Corruption"): in a sealed
 * segment whose index file is good, reading resumes at the next indexed
 * record (the index was written from the segment when it was sealed, so
 * its offsets are framing that the damage cannot have moved); in a sealed
 * segment without a usable index it resumes at the next segment; in an
 * unsealed segment it stops there until a later segment exists.
 *
 * A range that cannot be read (journal_damage.c: a segment missing, or
 * failing its checks) is an entry of the segment table like the others:
 * an iterator that reaches it reports it once (SHMBUS_ECORRUPT, offset
 * 0), counts the sequences the query wanted of it, and goes on after it.
 *
 * The table changes under an iterator (retention, a listing that loads a
 * file made again under a known name, missing ranges assessed again):
 * it finds its entry again by identity (uid), and if that entry is gone,
 * goes on at the lowest sequence it has not passed (`next`), so that
 * nothing below it is delivered or counted twice and nothing above it is
 * skipped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "journal_int.h"

/* A writer's sealed segment's index file may be on the way (the sealer
 * writes it): wait for it before loading the index. */
static int jindex_load_now(shmbus_journal_t *j, struct jseg *s)
{
	if (j->writer)
		jsealer_wait(j);
	return jindex_load(j, s);
}

struct shmbus_journal_iter {
	shmbus_journal_t *j;
	shmbus_journal_query_t q;
	uint64_t to;	    /* exclusive end: q.to_seq, or UINT64_MAX */
	uint64_t gen;	    /* j->gen when seg was found */
	uint32_t seg;	    /* its index in j->segs */
	uint64_t seg_first; /* its first sequence, to find it again */
	uint64_t seg_uid;   /* ... and that it is still that entry */
	bool positioned;
	bool time_pending; /* still looking for the first late enough */
	bool use_keys;	   /* following the key index of a sealed segment */
	bool done;
	bool lost_said; /* at a lost entry: reported */
	uint64_t off;  /* scanning: the next frame */
	uint64_t kpos; /* key index: the next entry */
	uint64_t after; /* the next record's sequence must be above it */
	bool any;	/* ... unless no record was read in this segment */
	uint64_t skipped; /* sequences retention removed before we read them */
	uint64_t skip_cap; /* ... counted below it (jiter_count_skips_below) */
	/* the lowest sequence not passed yet (read, reported lost, counted):
	 * where the iterator goes on if its entry was replaced */
	uint64_t next;
	/* at a lost range of an end not known when it was reported: its
	 * sequences from lost_lo are counted when the iterator leaves it */
	bool lost_open;
	uint64_t lost_lo;
	/* a scan of a sealed segment reads it with pread into win, a window
	 * of WIN bytes at win_off (win_len of them read), from wfd, its file
	 * (wuid: that entry's; -1: none, or not that file) */
	int wfd;
	uint64_t wuid;
	uint8_t *win;
	uint64_t win_off, win_len;
};

/* Why a window: a record read through the mapping costs the first touch
 * of each page of it from this process -- a page fault, and on the
 * project's VM (shadow paging) an exit per page even after the pages
 * were mapped: CRC32C of 120 bytes took 66-98 ns through a mapping of a
 * segment in the page cache, 6 ns from a buffer in the cache. pread
 * copies the same bytes into a buffer that stays in the cache, at memory
 * speed. */
#define WIN (256u << 10)

#define QUERY_FLAGS                                                           \
	(SHMBUS_JOURNAL_SKIP_CORRUPT | SHMBUS_JOURNAL_BY_KEY |                 \
	 SHMBUS_JOURNAL_BY_TIME)

int shmbus_journal_iter_open(shmbus_journal_t *j,
			     const shmbus_journal_query_t *q,
			     shmbus_journal_iter_t **out)
{
	static const shmbus_journal_query_t all = {0};
	if (j == NULL || out == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "journal: no journal or "
						    "no out");
	if (q == NULL)
		q = &all;
	if (q->flags & ~(uint32_t)QUERY_FLAGS)
		return shmbus_seterr(SHMBUS_EINVAL, "journal query: flags 0x%x",
				     q->flags);
	shmbus_journal_iter_t *it = calloc(1, sizeof(*it));
	if (it == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "journal: out of memory");
	it->j = j;
	it->q = *q;
	it->to = q->to_seq ? q->to_seq : UINT64_MAX;
	it->skip_cap = it->to;
	it->next = q->from_seq;
	it->time_pending = (q->flags & SHMBUS_JOURNAL_BY_TIME) != 0;
	it->wfd = -1;
	*out = it;
	return 0;
}

void shmbus_journal_iter_close(shmbus_journal_iter_t *it)
{
	if (it && it->wfd >= 0)
		close(it->wfd);
	if (it)
		free(it->win);
	free(it);
}

/* ---------------------------------------------------------- segments */

/* The reader at it->off of its last segment, unsealed, finds no record
 * there, while the writer's end, in that segment, is past it: the file
 * under that name is not the one we mapped (a writer's open removed an
 * empty one, and it was made again). */
static bool stale_last(const shmbus_journal_t *j, const struct jseg *last,
		       const shmbus_journal_iter_t *it, uint64_t hint)
{
	if (it == NULL || it->seg + 1 != j->nsegs || last->sealed ||
	    last->lost || last->map == NULL || hint != last->first_seq)
		return false;
	/* acquire: pairs with the writer's release of end_seq, after the
	 * record and end_off: a record below that end_off is visible */
	(void)atomic_load_explicit(&j->ctl->end_seq, memory_order_acquire);
	uint64_t end = atomic_load_explicit(&j->ctl->end_off,
					    memory_order_relaxed);
	if (end <= it->off || it->off + jrec_hmin(last->version) > j->seg_size)
		return false;
	/* acquire: pairs with the release store of the marker */
	return atomic_load_explicit(&jrec_at(last, it->off)->marker,
				    memory_order_acquire) == 0;
}

/* Readers: segments the writer made since we looked, if the control
 * file's hint says there are any (no system call otherwise); or, at the
 * end of an unsealed last segment, that segment made again (stale_last).
 * A newest segment below our last: ours was removed. */
static int catch_up(shmbus_journal_t *j, const shmbus_journal_iter_t *it)
{
	if (j->writer)
		return 0;
	struct jseg *last = j->nsegs ? j->segs[j->nsegs - 1] : NULL;
	if (last && !last->sealed && last->map)
		jseal_read(j, last, (const struct jseg_header *)last->map);
	/* acquire: pairs with the writer's release store of a new active
	 * segment, made after it sealed the one before: seeing the new one,
	 * a reader sees that seal too */
	uint64_t hint = atomic_load_explicit(&j->ctl->seg_first,
					     memory_order_acquire);
	if (hint == UINT64_MAX ||
	    (last && hint == last->first_seq && !stale_last(j, last, it, hint)))
		return 0;
	if (last && hint < last->first_seq &&
	    (last->sealed || last->lost || last->map == NULL))
		return 0; /* not one a writer's open removes */
	return journal_refresh(j);
}

static bool index_helps(const shmbus_journal_iter_t *it,
			const struct jseg *s, bool seek)
{
	if (!s->sealed)
		return false;
	if (it->q.flags & SHMBUS_JOURNAL_BY_KEY)
		return true;
	return seek && (it->time_pending || it->next > s->first_seq);
}

/* Start reading segment i: at its first record, at the query's key in its
 * key index, or (seek) at the sparse entry before the query's start. */
static int enter(shmbus_journal_iter_t *it, uint32_t i, bool seek)
{
	shmbus_journal_t *j = it->j;
	struct jseg *s = j->segs[i];
	int rc = s->lost ? 0 : jseg_map(j, s);
	if (rc == SHMBUS_ENOENT && !j->writer) {
		jseg_drop(j, i); /* retention removed it before we mapped it:
				   * the caller finds its place again */
		return 0;
	}
	if (rc)
		return rc;
	it->lost_said = false;
	it->seg = i;
	it->seg_first = s->first_seq;
	it->seg_uid = s->uid;
	it->gen = j->gen;
	it->positioned = true;
	it->off = JSEG_DATA_OFF;
	it->after = s->first_seq - 1;
	it->any = s->first_seq == 0;
	it->use_keys = false;
	if (s->lost) /* never mapped: iter_next reports it */
		return 0;
	bool indexed = index_helps(it, s, seek) && jindex_load_now(j, s) == 0;
	if (indexed && (it->q.flags & SHMBUS_JOURNAL_BY_KEY)) {
		it->use_keys = true;
		it->kpos = jkeys_lower(s->keys, s->n_keys, it->q.key);
		return 0;
	}
	const struct jidx_sparse *e = indexed ? s->sparse : s->live.e;
	uint32_t n = indexed ? s->n_sparse : s->live.n;
	if (!seek || e == NULL || (s->sealed && !indexed))
		return 0;
	int k = it->time_pending ? jsparse_time(e, n, it->q.from_time)
				 : jsparse_seq(e, n, it->next);
	if (k >= 0) {
		it->off = e[k].off;
		it->after = e[k].seq - 1;
		it->any = e[k].seq == 0;
	}
	return 0;
}

/* The first segment that may hold a time stamp at or past ts: a lost
 * range just before it might have held the first. */
static uint32_t time_segment(const shmbus_journal_t *j, uint64_t ts)
{
	for (uint32_t i = 0; i < j->nsegs; i++)
		if (j->segs[i]->count && j->segs[i]->ts_max >= ts)
			return i > 0 && j->segs[i - 1]->lost ? i - 1 : i;
	return j->nsegs - 1;
}

static int start(shmbus_journal_iter_t *it)
{
	shmbus_journal_t *j = it->j;
	int rc = catch_up(j, NULL);
	if (rc || j->nsegs == 0)
		return rc;
	uint32_t i = it->time_pending
			     ? time_segment(j, it->q.from_time)
			     : (uint32_t)jseg_find(j, it->q.from_seq);
	return enter(it, i, true);
}

/* Moving on from it->next to a segment that starts at next_first: the
 * sequences between that retention removed before we read them (the
 * control file's first_seq, raised before a removal, passed us). */
static void note_retention(shmbus_journal_iter_t *it, uint64_t next_first)
{
	uint64_t expected = it->next;
	/* relaxed: seg_remove stores it (relaxed) before the unlink that
	 * made us move on, and the system calls between order the two; at
	 * worst a count is one removal late */
	uint64_t first = atomic_load_explicit(&it->j->ctl->first_seq,
					      memory_order_relaxed);
	uint64_t upto = first < next_first ? first : next_first;
	if (upto > it->skip_cap)
		upto = it->skip_cap;
	if (upto > expected)
		it->skipped += upto - expected;
}

void jiter_count_skips_below(shmbus_journal_iter_t *it, uint64_t x)
{
	it->skip_cap = x;
}

uint64_t shmbus_journal_iter_skipped(const shmbus_journal_iter_t *it)
{
	return it ? it->skipped : 0;
}

/* The table changed (a removal, a listing): find our entry again; if it
 * was replaced (a file restored or made again under its name, a lost
 * range assessed again), go on where we were, at it->next. */
static int refind(shmbus_journal_iter_t *it)
{
	shmbus_journal_t *j = it->j;
	int i = jseg_find(j, it->seg_first);
	for (int k = i; k >= 0 && j->segs[k]->first_seq == it->seg_first; k--)
		if (j->segs[k]->uid == it->seg_uid) {
			it->seg = (uint32_t)k;
			it->gen = j->gen;
			return 0;
		}
	i = jseg_find(j, it->next);
	if (i < 0) {
		it->positioned = false;
		return 0;
	}
	const struct jseg *s = j->segs[i];
	bool past = s->lost && s->lost_to != UINT64_MAX &&
		    s->lost_to <= it->next;
	if (past || s->first_seq > it->next) {
		/* next is past entry i (or before the first one) */
		uint32_t n = s->first_seq > it->next ? (uint32_t)i
						     : (uint32_t)i + 1;
		if (n >= j->nsegs) {
			it->positioned = false;
			return 0;
		}
		note_retention(it, j->segs[n]->first_seq);
		i = (int)n;
	}
	bool said = it->lost_open && j->segs[i]->lost &&
		    j->segs[i]->first_seq <= it->lost_lo;
	int rc = enter(it, (uint32_t)i, true);
	it->lost_said |= said; /* the range we were at, reported */
	return rc;
}

/* Leaving a lost range whose end was not known when it was reported: its
 * sequences up to next_first, counted now. */
static void lost_close(shmbus_journal_iter_t *it, uint64_t next_first)
{
	if (!it->lost_open)
		return;
	uint64_t cap = it->to < it->skip_cap ? it->to : it->skip_cap;
	uint64_t hi = next_first < cap ? next_first : cap;
	if (hi > it->lost_lo)
		it->j->st.lost_seqs += hi - it->lost_lo;
	it->lost_open = false;
	if (next_first > it->next)
		it->next = next_first;
	it->after = next_first - 1;
	it->any = false;
}

/* At the end of segment it->seg: the next one, if there is one. Returns
 * 1 when positioned in it, 0 at the end for now. */
static int next_segment(shmbus_journal_iter_t *it)
{
	shmbus_journal_t *j = it->j;
	struct jseg *s = j->segs[it->seg];
	bool was_sealed = s->sealed;
	if (it->seg + 1 >= j->nsegs) {
		int rc = catch_up(j, it);
		if (rc)
			return rc;
		if (it->gen != j->gen)
			return 1; /* the listing changed the table: refind */
	}
	/* The end we met may have been a record not yet written, and the
	 * writer has since finished this segment (sealing it before it makes
	 * the next, and catch_up acquired that): read the rest first. */
	if (!s->sealed && s->map)
		jseal_read(j, s, (const struct jseg_header *)s->map);
	if (s->sealed && !was_sealed)
		return 1;
	if (it->seg + 1 >= j->nsegs)
		return 0;
	if (j->segs[it->seg + 1]->first_seq >= it->to) {
		it->done = true;
		return 0;
	}
	if (s->lost)
		lost_close(it, j->segs[it->seg + 1]->first_seq);
	note_retention(it, j->segs[it->seg + 1]->first_seq);
	int rc = enter(it, it->seg + 1, true);
	return rc ? rc : 1;
}

/* --------------------------------------------------------------- steps */

/* Scanning: the frame at it->off. */
static int scan_step(shmbus_journal_iter_t *it, struct jseg *s,
		     uint64_t *off, const char **why, struct jrec *h)
{
	*off = it->off;
	if (*off >= s->bad_off) /* an unsealed segment's known bad record */
		return JF_END;
	int r = jframe_check(s, *off, jseg_limit(it->j, s), it->after,
			     it->any ? JFC_ANY_SEQ : 0u, why, h);
	if (r != JF_OK)
		return r;
	uint64_t next = *off + jrec_span(h->hsz, h->len);
	if (!s->sealed && *off == s->end_off) /* a reader learns the tail */
		jseg_note(s, h->seq, h->timestamp, h->key, *off, next);
	it->off = next;
	it->after = h->seq;
	it->any = false;
	return JF_OK;
}

/* Key index: the next entry of the query's key. */
static int key_step(shmbus_journal_iter_t *it, struct jseg *s, uint64_t *off,
		    const char **why, struct jrec *h)
{
	if (it->kpos >= s->n_keys || s->keys[it->kpos].key != it->q.key)
		return JF_END;
	*off = s->keys[it->kpos++].off;
	int r = jframe_check(s, *off, s->end_off, it->after,
			     it->any ? JFC_ANY_SEQ : 0u, why, h);
	if (r == JF_END) {
		*why = "the key index points past the records";
		return JF_BAD;
	}
	if (r == JF_OK && h->key != it->q.key) {
		*why = "the key index names a record of another key";
		return JF_BAD;
	}
	if (r == JF_OK) {
		it->after = h->seq;
		it->any = false;
	}
	return r;
}

/* The first indexed record after off, or the segment's end. */
static uint64_t next_indexed(const struct jseg *s, uint64_t off)
{
	uint64_t best = s->end_off;
	for (uint64_t i = 0; i < s->n_keys; i++)
		if (s->keys[i].off > off && s->keys[i].off < best)
			best = s->keys[i].off;
	return best;
}

/* Report the bad record at off and set where reading resumes. */
static int corrupt(shmbus_journal_iter_t *it, struct jseg *s, uint64_t off,
		   const char *why, shmbus_journal_entry_t *e)
{
	shmbus_journal_t *j = it->j;
	const char *then = "reading goes on from the key index";
	j->st.corrupt++;
	memset(e, 0, sizeof(*e));
	e->segment = s->first_seq;
	e->offset = off;
	if (!it->use_keys && !s->sealed) {
		uint64_t end;
		s->bad_off = off;
		if (it->seg + 1 < j->nsegs && /* the valid records skipped */
		    jvalid_after(s, off, jseg_limit(j, s), it->after, &end))
			j->st.skipped_bytes += end - off;
		then = it->seg + 1 < j->nsegs
			       ? "the rest of this unsealed segment is not "
				 "read: reading goes on at the next one"
			       : "reading stops in this unsealed segment";
	} else if (!it->use_keys) {
		bool indexed = jindex_load_now(j, s) == 0;
		uint64_t resume = indexed ? next_indexed(s, off) : s->end_off;
		j->st.skipped_bytes += resume - off;
		it->off = resume;
		then = indexed ? "reading resumes at the next indexed record"
			       : "no usable index: reading resumes at the "
				 "next segment";
	}
	return jerr_file(SHMBUS_ECORRUPT, 0, j, s->first_seq, ".seg",
			 "record at offset %" PRIu64 ": %s; %s", off, why,
			 then);
}

/* The iterator reached lost entry s: SHMBUS_ECORRUPT naming it, counted,
 * or 0 if the query wants none of its sequences or it was acknowledged.
 * Reading goes on after it (retention does not count it: `after` is its
 * end). */
static int lost(shmbus_journal_iter_t *it, const struct jseg *s,
		shmbus_journal_entry_t *e)
{
	shmbus_journal_t *j = it->j;
	/* what we read already is not lost (a range may begin inside
	 * records a listing had not seen yet) */
	uint64_t lo = s->first_seq > it->next ? s->first_seq : it->next;
	uint64_t cap = it->to < it->skip_cap ? it->to : it->skip_cap;
	uint64_t hi = s->lost_to < cap ? s->lost_to : cap;
	it->lost_said = true;
	if (s->lost_to != UINT64_MAX) {
		it->after = s->lost_to - 1;
		it->any = false;
	}
	/* one an operator acknowledged reads as a gap in the sequences */
	if (s->acked || lo >= hi || s->first_seq >= cap) {
		if (s->lost_to != UINT64_MAX && s->lost_to > it->next)
			it->next = s->lost_to;
		return 0;
	}
	j->st.lost_ranges++;
	if (s->lost_to != UINT64_MAX) {
		j->st.lost_seqs += hi - lo;
		it->next = s->lost_to;
	} else { /* counted when its end is known: lost_close */
		it->lost_open = true;
		it->lost_lo = lo;
		it->next = lo;
	}
	memset(e, 0, sizeof(*e));
	e->segment = s->first_seq;
	char what[400];
	jlost_text(j, s, what, sizeof(what));
	return shmbus_seterr(SHMBUS_ECORRUPT, "%s; reading goes on after it",
			     what);
}

static bool wanted(shmbus_journal_iter_t *it, const struct jrec *h)
{
	if (h->seq < it->next) /* passed already, before a refind */
		return false;
	it->next = h->seq + 1;
	if (h->seq < it->q.from_seq)
		return false;
	if ((it->q.flags & SHMBUS_JOURNAL_BY_KEY) && h->key != it->q.key)
		return false;
	if (it->time_pending) {
		if (h->timestamp < it->q.from_time)
			return false;
		it->time_pending = false;
	}
	return true;
}

/* h: the header of the frame at p, s's offset off. */
static void fill(shmbus_journal_entry_t *e, const struct jseg *s,
		 const struct jrec *h, const uint8_t *p, uint64_t off)
{
	e->rec.data = p + h->hsz;
	e->rec.len = h->len;
	e->rec.flags = h->flags;
	e->rec.seq = h->seq;
	e->rec.timestamp = h->timestamp;
	e->rec.key = h->key;
	e->rec.origin = h->origin;
	e->rec.channel_id = h->type;
	e->rec.producer = h->producer;
	e->rec.attempt = 1;
	e->rec.reserved = 0;
	e->type = h->type;
	e->reserved = 0;
	e->segment = s->first_seq;
	e->offset = off;
}

/* The window holds [off, off + need) of s, read if it did not: a pointer
 * to off in it, or NULL (no window: the caller reads the mapping). The
 * file is opened by name, and used only if it is the one listed (a file
 * made again under the name is not). */
static const uint8_t *window_read(shmbus_journal_iter_t *it,
				  const struct jseg *s, uint64_t off,
				  uint64_t need)
{
	if (need > WIN)
		return NULL;
	if (it->wuid != s->uid + 1) {
		if (it->wfd >= 0)
			close(it->wfd);
		it->wfd = -1;
		it->wuid = s->uid + 1;
		it->win_len = 0;
		char name[40];
		struct stat st;
		jname(name, s->first_seq, ".seg");
		int fd = openat(it->j->dirfd, name, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && (fstat(fd, &st) != 0 ||
				(uint64_t)st.st_ino != s->ino)) {
			close(fd);
			fd = -1;
		}
		it->wfd = fd;
	}
	if (it->wfd < 0 || (it->win == NULL && !(it->win = malloc(WIN))))
		return NULL;
	uint64_t want = s->end_off - off < WIN ? s->end_off - off : WIN;
	ssize_t n;
	do
		n = pread(it->wfd, it->win, want, (off_t)off);
	while (n < 0 && errno == EINTR);
	it->win_off = off;
	it->win_len = n > 0 ? (uint64_t)n : 0;
	return it->win_len >= need ? it->win : NULL;
}

static inline const uint8_t *window(shmbus_journal_iter_t *it,
				    const struct jseg *s, uint64_t off,
				    uint64_t need)
{
	if (__builtin_expect(it->wuid == s->uid + 1 && off >= it->win_off &&
				     off + need <= it->win_off + it->win_len,
			     1))
		return it->win + (off - it->win_off);
	return window_read(it, s, off, need);
}

/* The common step, inline: the next frame of a sealed segment, whole
 * (marker, length, CRC) and above the one before, wanted by a query that
 * is neither by key nor still looking for a time. true: delivered in e.
 * false: anything else (the segment's end, a bad frame, a filter), which
 * the general step below checks again and handles; the checks are
 * jframe_check's and wanted()'s, in the same order. */
static inline __attribute__((always_inline)) bool
sealed_step(shmbus_journal_iter_t *it, struct jseg *s,
	    shmbus_journal_entry_t *e)
{
	uint64_t off = it->off;
	const uint64_t hmin = jrec_hmin(s->version);
	if (!s->sealed || s->lost || off > s->end_off ||
	    s->end_off - off < hmin || off % JREC_ALIGN)
		return false;
	const uint8_t *p = window(it, s, off, hmin);
	/* the window's copy was read after the seal, whose acquire (in
	 * jseal_read) orders every record before it */
	if (p == NULL)
		return false;
	uint32_t hsz = jrec_hsz(s->version, p), len;
	memcpy(&len, p + offsetof(struct jrec_header, len), 4);
	if (hsz > s->end_off - off || len > s->end_off - off - hsz)
		return false;
	uint64_t frame = jrec_span(hsz, len);
	/* the window that holds the header holds the frame, mostly */
	if (off + frame > it->win_off + it->win_len &&
	    (p = window(it, s, off, frame)) == NULL)
		return false;
	struct jrec h;
	if (atomic_load_explicit(&((const struct jrec_header *)p)->marker,
				 memory_order_relaxed) != JREC_MARKER)
		return false;
	jrec_get(s, p, &h);
	if (jrec_crc(p, hsz, len) != h.crc ||
	    (!it->any && h.seq <= it->after) || h.seq >= it->to ||
	    h.seq < it->next || h.seq < it->q.from_seq)
		return false;
	it->off = off + frame;
	it->after = h.seq;
	it->any = false;
	it->next = h.seq + 1;
	fill(e, s, &h, p, off);
	return true;
}

/* The iterator may take sealed_step: positioned in a segment still at
 * its index, scanning, no filter but the range. */
static inline bool fast_ok(const shmbus_journal_iter_t *it)
{
	return __builtin_expect(it->positioned && !it->done &&
					it->gen == it->j->gen &&
					!it->use_keys && !it->time_pending &&
					!(it->q.flags & SHMBUS_JOURNAL_BY_KEY),
				1);
}

int shmbus_journal_iter_next(shmbus_journal_iter_t *it,
			     shmbus_journal_entry_t *e)
{
	if (it == NULL || e == NULL)
		return SHMBUS_EINVAL;
	shmbus_journal_t *j = it->j;
	if (fast_ok(it) && sealed_step(it, j->segs[it->seg], e))
		return 1;
	for (;;) {
		int rc = 0;
		if (it->done)
			return 0;
		if (!it->positioned)
			rc = start(it);
		else if (it->gen != j->gen)
			rc = refind(it);
		if (rc)
			return rc;
		if (!it->positioned)
			return 0;
		if (it->gen != j->gen)
			continue; /* enter() forgot a removed segment */
		struct jseg *s = j->segs[it->seg];
		if (s->lost && !it->lost_said) {
			rc = lost(it, s, e);
			if (rc && !(it->q.flags & SHMBUS_JOURNAL_SKIP_CORRUPT))
				return rc;
			continue;
		}
		if (s->lost) {
			rc = next_segment(it);
			if (rc <= 0)
				return rc;
			continue;
		}
		uint64_t off;
		const char *why = "";
		struct jrec h;
		int r = it->use_keys ? key_step(it, s, &off, &why, &h)
				     : scan_step(it, s, &off, &why, &h);
		if (r == JF_END) {
			rc = next_segment(it);
			if (rc <= 0)
				return rc;
			continue;
		}
		if (r == JF_BAD) {
			rc = corrupt(it, s, off, why, e);
			if (it->q.flags & SHMBUS_JOURNAL_SKIP_CORRUPT)
				continue;
			return rc;
		}
		if (h.seq >= it->to) {
			it->done = true;
			return 0;
		}
		if (wanted(it, &h)) {
			fill(e, s, &h, s->map + off, off);
			return 1;
		}
	}
}

/* ------------------------------------------------------------- replay */

int jread_all(shmbus_journal_t *j, const shmbus_journal_query_t *q,
	      int (*each)(const shmbus_journal_entry_t *e, void *arg),
	      void *arg, uint64_t *count)
{
	shmbus_journal_iter_t *it;
	uint64_t n = 0;
	int rc = shmbus_journal_iter_open(j, q, &it);
	shmbus_journal_entry_t e;
	while (rc == 0) {
		/* a sealed segment's run of records without a call each
		 * (while the table stays: a handler may run retention) */
		if (fast_ok(it)) {
			struct jseg *s = it->j->segs[it->seg];
			uint64_t gen = it->gen;
			while (rc == 0 && it->j->gen == gen &&
			       sealed_step(it, s, &e)) {
				rc = each(&e, arg);
				n += rc == 0;
			}
			if (rc)
				break;
		}
		if ((rc = shmbus_journal_iter_next(it, &e)) != 1)
			break;
		rc = each(&e, arg);
		n += rc == 0;
	}
	if (count)
		*count = n;
	if (rc == 0 || rc == 1)
		rc = 0;
	shmbus_journal_iter_close(it);
	return rc;
}

struct handler_arg {
	shmbus_handler_fn fn;
	void *ctx;
};

static int to_handler(const shmbus_journal_entry_t *e, void *arg)
{
	const struct handler_arg *a = arg;
	int rc = a->fn(&e->rec, a->ctx);
	if (rc < 0)
		return shmbus_seterr(SHMBUS_EHANDLER,
				     "journal replay: the handler returned %d "
				     "at sequence %" PRIu64,
				     rc, e->rec.seq);
	return 0;
}

int shmbus_journal_replay(shmbus_journal_t *j,
			  const shmbus_journal_query_t *q,
			  shmbus_handler_fn fn, void *ctx, uint64_t *count)
{
	if (fn == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "journal replay: no "
						    "handler");
	struct handler_arg a = {fn, ctx};
	return jread_all(j, q, to_handler, &a, count);
}

static int to_bus(const shmbus_journal_entry_t *e, void *arg)
{
	int rc = shmbus_republish(arg, &e->rec);
	if (rc == SHMBUS_EINVAL) /* refused, its message says why */
		return shmbus_adderr(rc, "journal republish: sequence %" PRIu64,
				     e->rec.seq);
	if (rc)
		return shmbus_seterr(rc, "journal republish: sequence %" PRIu64
					 ": %s",
				     e->rec.seq, shmbus_strerror(rc));
	return 0;
}

int shmbus_journal_republish(shmbus_journal_t *j,
			     const shmbus_journal_query_t *q,
			     shmbus_producer_t *p, uint64_t *count)
{
	if (p == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "journal republish: no "
						    "producer");
	return jread_all(j, q, to_bus, p, count);
}

/* Every record of every segment, CRCs included; then the damage the
 * listing found (the lost ranges the iteration met are among it). */
int shmbus_journal_verify(shmbus_journal_t *j)
{
	shmbus_journal_iter_t *it;
	int rc = shmbus_journal_iter_open(j, NULL, &it);
	if (rc)
		return rc;
	char first[512] = "";
	int bad = 0;
	shmbus_journal_entry_t e;
	while ((rc = shmbus_journal_iter_next(it, &e)) != 0) {
		if (rc == SHMBUS_ECORRUPT && e.offset == 0)
			continue; /* a lost range: counted below */
		if (rc == SHMBUS_ECORRUPT && bad++ == 0)
			snprintf(first, sizeof(first), "%s", shmbus_errmsg());
		else if (rc < 0 && rc != SHMBUS_ECORRUPT)
			break;
	}
	shmbus_journal_iter_close(it);
	if (rc < 0)
		return rc;
	shmbus_journal_damage_t d;
	int damage = 0;
	while (shmbus_journal_get_damage(j, (uint32_t)damage, &d))
		if (damage++ == 0) /* before any record's: the larger */
			snprintf(first, sizeof(first), "%s", d.text);
	if (bad + damage)
		shmbus_seterr(SHMBUS_ECORRUPT, "%d corrupt records, %d damage "
					       "found; the first: %s",
			      bad, damage, first);
	return bad + damage;
}
