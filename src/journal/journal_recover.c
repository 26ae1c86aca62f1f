/*
 * Checking record frames, and recovering the unsealed tail at open.
 *
 * A frame is valid when its marker is JREC_MARKER, its length keeps it
 * inside the segment's usable bytes, its CRC32C matches, and its sequence
 * is above the previous record's (the first record's: at least the
 * segment's first sequence). Nothing else is trusted.
 *
 * The tail rule. The writer writes a record's fields and payload, then
 * release-stores its marker; a process killed on the way leaves a marker of
 * 0 over a header that is not all zero, and a machine that crashed may
 * leave any subset of the pages written back. So at open, the unsealed
 * segment is valid up to the first frame that fails the check; that frame
 * is the torn (or corrupt) record, and the segment is cut there: the rest
 * of the file is zeroed, so that no stale frame can ever line up with a
 * later one. Valid frames after the cut (found by looking for markers at
 * every 8-byte boundary) are counted in the report as lost with it; with
 * SHMBUS_JOURNAL_STRICT their presence makes the open fail instead.
 *
 * A buffered writer opens a chunk by writing its first marker with a
 * pwrite of its own (not through its mapping, whose store faulted the
 * page in at every flush and had write-back write-protect it again): the
 * kernel may copy those four bytes one at a time, so a reader of an
 * unsealed segment may see some of the marker's bytes and zeros in the
 * others. That is "not yet" (JF_END) to a reader; a bit flipped in a
 * marker never looks like it (no byte of "JREC" is one bit from 0), and
 * a process's death never leaves it (the copy of a syscall completes).
 *
 * One frame with no marker is not torn: the first of a buffered flush,
 * written whole by its pwrite, whose writer died before it stored the
 * marker that opens the chunk. Its length, CRC and sequence say so; the
 * recovering writer reads on, and stores the marker once its open is sure
 * (jscan_apply: the scan itself writes nothing, so that an open that then
 * refuses leaves every file as it was).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "journal_int.h"

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

int jframe_check(const struct jseg *s, uint64_t off, uint64_t limit,
		 uint64_t after, unsigned fl, const char **why, struct jrec *r)
{
	const uint64_t hmin = jrec_hmin(s->version);
	if (off > limit || limit - off < hmin)
		return JF_END; /* no room for another record */
	if (off % JREC_ALIGN) {
		*why = "misaligned record offset";
		return JF_BAD;
	}
	const struct jrec_header *h = jrec_at(s, off);
	const uint8_t *p = (const uint8_t *)h;
	/* acquire: pairs with the writer's release store of the marker,
	 * after every other byte of the record */
	uint32_t m = atomic_load_explicit(&h->marker, memory_order_acquire);
	bool unopened = false;
	if (m != JREC_MARKER) {
		if (m == 0 && (!(fl & JFC_RECOVERING) ||
			       all_zero(p + 4, hmin - 4)))
			return JF_END;
		if (m != 0 && !(fl & JFC_RECOVERING) && !s->sealed &&
		    jmarker_opening(m))
			return JF_END; /* a buffered writer's pwrite under way */
		if (m != 0) {
			*why = "bad record marker";
			return JF_BAD;
		}
		/* recovering: torn, unless it is the first record of a
		 * buffered flush that was written whole (checked below) */
		unopened = true;
	}
	const char *bad = NULL;
	uint32_t hsz = jrec_hsz(s->version, p);
	if (hsz > limit - off)
		bad = "its header runs past the end of the segment";
	else if ((jrec_decode(s->version, s->first_seq, s->chan, p, r),
		  r->len > limit - off - hsz))
		bad = "its length runs past the end of the segment";
	else if (!(fl & JFC_NO_CRC) && jrec_crc(p, hsz, r->len) != r->crc)
		bad = "CRC mismatch";
	else if (!(fl & JFC_ANY_SEQ) && r->seq <= after)
		bad = "its sequence is not above the previous record's";
	if (bad) {
		*why = unopened ? "a record begun and never finished (no marker)"
				: bad;
		return JF_BAD;
	}
	return unopened ? JF_UNOPENED : JF_OK;
}

/* Zero [off, end of segment): cheaply where the filesystem can (the range
 * becomes unwritten space, still reserved), else by writing zeros. */
static int zero_tail(shmbus_journal_t *j, struct jseg *s, uint64_t off)
{
	off_t len = (off_t)(j->seg_size - off);
	if (len == 0)
		return 0;
	if (fallocate(s->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != EINVAL)
		return jerr_file(SHMBUS_ESYS, errno, j, s->first_seq, ".seg",
				 "zeroing the tail from offset %" PRIu64, off);
	memset(s->map + off, 0, (size_t)len);
	return 0;
}

/* Valid frames after the bad one at off (up to limit): they would be
 * lost with the cut. Found wherever they are (its length may be what is
 * damaged), by marker, then the full check. Returns how many; *end is
 * past the last. */
uint64_t jvalid_after(const struct jseg *s, uint64_t off, uint64_t limit,
		      uint64_t after, uint64_t *end)
{
	uint64_t n = 0;
	const char *why;
	const uint64_t hmin = jrec_hmin(s->version);
	struct jrec r;
	*end = off + hmin;
	for (uint64_t o = off + JREC_ALIGN; o + hmin <= limit;
	     o += JREC_ALIGN) {
		/* relaxed: the writer is gone; jframe_check acquires */
		if (atomic_load_explicit(&jrec_at(s, o)->marker,
					 memory_order_relaxed) != JREC_MARKER ||
		    jframe_check(s, o, limit, after, 0, &why, &r) != JF_OK)
			continue;
		after = r.seq;
		o += jrec_span(r.hsz, r.len) - JREC_ALIGN;
		*end = o + JREC_ALIGN;
		n++;
	}
	if (*end > limit)
		*end = limit;
	return n;
}

/* The frame at off is bad (hole: there is none, and valid ones follow). */
static int tail_bad(shmbus_journal_t *j, struct jseg *s, uint64_t off,
		    uint64_t limit, uint64_t after, const char *why,
		    bool middle, bool hole)
{
	uint64_t end;
	uint64_t valid = jvalid_after(s, off, limit, after, &end);
	shmbus_journal_recovery_t *r = &j->rec;
	r->cut_records = valid + !hole;
	r->segment = s->first_seq;
	r->offset = off;
	r->bytes = end - off;
	jnote(j, "%s", why); /* after what the open noted */
	/* not the last (or its seal block is bad): a segment that was
	 * full, whose records were all acknowledged; what a cut there would
	 * lose is a range that every reader reports (journal_damage.c) */
	if (middle)
		s->short_at = off;
	if (!j->writer) {
		/* a reader stops there and cuts nothing; in the tail without
		 * a word (the report says it) */
		if (!middle)
			s->bad_off = off;
		return 0;
	}
	/* a loss in the middle of the journal, not a crash's torn tail,
	 * unless a machine restart took what the last writer had not
	 * synced */
	if (middle && !(j->flags & SHMBUS_JOURNAL_ACCEPT_LOSS) &&
	    !jcrash_lost(j, after + 1))
		return jerr_file(SHMBUS_ECORRUPT, 0, j, s->first_seq, ".seg",
				 "%s: its record at offset %" PRIu64
				 " is bad (%s), "
				 "with %" PRIu64 " valid records after it "
				 "that a cut would lose: restore the file "
				 "from a backup, or open the writer with "
				 "SHMBUS_JOURNAL_ACCEPT_LOSS to cut it there",
				 s->seal_bad ? "its seal block fails its CRC "
					       "(it was full: not a torn tail)"
					     : "not the last segment, and "
					       "unsealed",
				 off, why, valid);
	if (valid && (j->flags & SHMBUS_JOURNAL_STRICT))
		return jerr_file(SHMBUS_ECORRUPT, 0, j, s->first_seq, ".seg",
				 "record at offset %" PRIu64 ": %s, and %" PRIu64
				 " valid records follow it (corruption, or "
				 "pages written back out of order): open "
				 "without SHMBUS_JOURNAL_STRICT to cut the "
				 "segment there and lose them",
				 off, why, valid);
	s->cut = true;
	return 0;
}

int jscan_unsealed(shmbus_journal_t *j, struct jseg *s, uint64_t below,
		   bool middle, uint64_t full_past)
{
	uint64_t off = JSEG_DATA_OFF, after = s->first_seq - 1;
	/* a writer scans a short file up to its size (extended later) */
	uint64_t limit = s->file_size ? s->file_size : j->seg_size;
	bool any = s->first_seq == 0;
	const char *why = NULL;
	struct jrec h;
	int r;
	s->unopened = UINT64_MAX;
	for (;;) {
		/* a reader may be looking at a record a live writer is
		 * writing: for it, no marker is simply the end */
		r = jframe_check(s, off, limit, after,
				 (j->writer ? JFC_RECOVERING : 0u) |
					 (any ? JFC_ANY_SEQ : 0u),
				 &why, &h);
		if (r == JF_UNOPENED && s->unopened == UINT64_MAX) {
			/* whole: its writer died between the flush's write
			 * and the store of this marker (journal_write.c);
			 * jscan_apply stores it. One flush is unfinished at
			 * most: a second such record is torn */
			s->unopened = off;
			r = JF_OK;
		} else if (r == JF_UNOPENED) {
			why = "a record begun and never finished (no marker)";
			r = JF_BAD;
		}
		if (r != JF_OK)
			break;
		if (h.seq >= below) {
			why = "its sequence is not below the next segment's "
			      "first";
			r = JF_BAD;
			break;
		}
		uint64_t next = off + jrec_span(h.hsz, h.len);
		jseg_note(s, h.seq, h.timestamp, h.key, off, next);
		after = h.seq;
		any = false;
		off = next;
	}
	/* a short file ends inside a record: torn by the truncation */
	if (r == JF_END && off < limit && limit < j->seg_size &&
	    !all_zero(s->map + off, limit - off)) {
		why = "a record torn by the file's truncation";
		r = JF_BAD;
	}
	/* a segment that was full ends at its last record: no valid frame
	 * after a hole, no room left for the next segment's first record */
	bool hole = false;
	uint64_t end;
	s->short_at = UINT64_MAX;
	if (r == JF_END && middle && jvalid_after(s, off, limit, after, &end)) {
		why = "no record at this offset, and valid records after it "
		      "(a hole)";
		r = JF_BAD;
		hole = true;
	} else if (r == JF_END && middle &&
		   (off <= full_past || s->count == 0)) {
		/* a range journal_damage.c reports (a segment is made for a
		 * record: one that is not the last and has none lost them) */
		s->short_at = off;
	}
	s->end_off = off;
	s->cut = false;
	if (r == JF_BAD)
		return tail_bad(j, s, off, limit, after, why, middle, hole);
	return 0;
}

int jscan_apply(shmbus_journal_t *j, struct jseg *s)
{
	if (s->unopened != UINT64_MAX) {
		struct jrec_header *w = (struct jrec_header *)(s->map +
							       s->unopened);
		/* release: pairs with the acquire in jframe_check */
		atomic_store_explicit(&w->marker, JREC_MARKER,
				      memory_order_release);
		s->unopened = UINT64_MAX;
	}
	/* Always, not only after a bad frame: a machine crash can leave
	 * later pages written back over a hole, frames that a new record
	 * could one day line up with. */
	int rc = zero_tail(j, s, s->end_off);
	if (rc == 0 && s->cut && jsync_policy(j) && fdatasync(s->fd))
		rc = jerr_file(SHMBUS_ESYS, errno, j, s->first_seq, ".seg",
			       "fdatasync after cutting the tail");
	return rc;
}
