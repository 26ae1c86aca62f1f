/*
 * Damage beyond single records: segment files missing from the journal,
 * files that fail their checks, a seal block that fails its CRC, a lost
 * control file. docs/journal.md, "Damage", has the rules.
 *
 * A file that fails its checks stays in the segment table as a lost
 * entry (JLOST_FILE), never mapped: the sequences from its name to the
 * next entry's first cannot be read. Missing segments are found from the
 * link block every segment carries since it existed (the first sequence
 * of the segment made before it) and from the control file (the oldest
 * sequence kept, the newest segment announced, the end): each gap gets
 * an entry of its own (JLOST_GONE, no file), made again after every
 * listing. Readers meet these entries in sequence order: a strict read
 * stops there with SHMBUS_ECORRUPT, one that skips corruption counts the
 * sequences and goes on. Retention is told from loss by the control
 * file's first_seq, raised before retention unlinks: a range wholly
 * below it was retention's, also when a reader's listing raced it.
 *
 * A writer's open refuses damage it would append after (nothing written
 * yet at that point), unless it is opened with ACCEPT_LOSS; it repairs
 * what loses nothing: a seal block that fails its CRC over records that
 * all check (journal.c seals it again), a missing control file (rebuilt
 * here from the segments' headers: identity, size, channel, bus epoch).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "journal_int.h"

#define CTL_NAME "journal.ctl"
#define DIR_SHOWN 160 /* of a directory's path, in a damage's text */

uint32_t jfiles(const shmbus_journal_t *j)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < j->nsegs; i++)
		n += j->segs[i]->lost != JLOST_GONE;
	return n;
}

void jdamage_clear(shmbus_journal_t *j)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < j->nsegs; i++) {
		if (j->segs[i]->lost == JLOST_GONE)
			jseg_free(j->segs[i]);
		else
			j->segs[k++] = j->segs[i];
	}
	if (k != j->nsegs)
		j->gen++; /* iterators find their entry again */
	j->nsegs = k;
}

/* An entry for sequences [from, to) whose segment files are gone; why
 * names the file that ought to be there. */
static int add_gone(shmbus_journal_t *j, uint64_t from, uint64_t to,
		    uint64_t named, const char *why)
{
	struct jseg *g = jseg_new(from);
	if (g == NULL)
		return SHMBUS_ENOMEM;
	g->lost = JLOST_GONE;
	g->lost_to = to;
	g->gone = named;
	g->why = strdup(why);
	int rc = g->why ? jseg_add(j, g)
			: shmbus_seterr(SHMBUS_ENOMEM,
					"journal: out of memory");
	if (rc)
		jseg_free(g);
	j->gen++;
	return rc;
}

/* Where a range missing after entry a begins: past its records (an entry
 * without: past its name, the first record it had). */
static uint64_t after_records(const struct jseg *a)
{
	return a->count ? a->last_seq + 1 : a->first_seq + 1;
}

/* b's link names another segment than the entry before it (or, for the
 * first, one that retention has not removed): the sequences between are
 * missing. Returns 1 if it added an entry (before b), 0, or an error. */
static int check_link(shmbus_journal_t *j, uint32_t i, uint64_t kept,
		      bool hint)
{
	const struct jseg *b = j->segs[i];
	uint64_t prev = b->prev_first, from;
	char why[160], pn[40], bn[40];
	/* a file that fails its checks still vouches for its predecessor
	 * if its link block checks (a CRC of its own), unless it is another
	 * journal's */
	if (b->lost == JLOST_GONE || b->foreign || !b->linked ||
	    prev == JLINK_FIRST)
		return 0;
	if (i == 0) {
		/* the first here: its predecessor ought to be here too,
		 * unless retention removed it (first_seq passed it) */
		if (!hint || prev < kept || kept >= b->first_seq)
			return 0;
		from = kept;
	} else {
		struct jseg *a = j->segs[i - 1];
		if (a->lost || prev == a->first_seq)
			return 0;
		/* where its records end: sealed since we looked, maybe */
		if (!a->sealed && a->map)
			jseal_read(j, a, (const struct jseg_header *)a->map);
		from = after_records(a);
	}
	if (hint && from < kept)
		from = kept;
	if (from >= b->first_seq)
		return 0;
	jname(pn, prev, ".seg");
	jname(bn, b->first_seq, ".seg");
	snprintf(why, sizeof(why), "%s, the segment made before %s%s, is gone",
		 pn, bn, i == 0 ? " (the first one here)" : "");
	int rc = add_gone(j, from, b->first_seq, prev, why);
	return rc ? rc : 1;
}

/* Segment i's last records are lost, the rest up to the next entry too:
 * it is unsealed, not the last, and its records end before it was full
 * (journal_recover.c), or a writer sealed it short after such a loss (its
 * seal's lost_to). Returns 1 if it added an entry (after it), 0, or an
 * error. */
static int short_range(shmbus_journal_t *j, uint32_t i)
{
	const struct jseg *s = j->segs[i], *n = NULL;
	if (i + 1 < j->nsegs)
		n = j->segs[i + 1];
	if (s->lost || (n && n->lost == JLOST_GONE)) /* a link's, or ours */
		return 0;
	uint64_t from, to;
	char why[160], sn[40];
	jname(sn, s->first_seq, ".seg");
	if (s->sealed && s->seal_lost_to) {
		from = s->last_seq + 1;
		to = n && n->first_seq < s->seal_lost_to ? n->first_seq
							 : s->seal_lost_to;
		snprintf(why, sizeof(why),
			 "%s was sealed short after a loss: the records "
			 "after its last",
			 sn);
	} else if (!s->sealed && n && s->short_at != UINT64_MAX) {
		/* one without records is gone whole: from past the records
		 * before it, as the next segment's link will say once a
		 * writer removed it (its name is its first record's) */
		const struct jseg *a = i ? j->segs[i - 1] : NULL;
		from = s->count		       ? s->last_seq + 1
		       : a == NULL || a->lost ? s->first_seq
					      : after_records(a);
		to = n->first_seq;
		snprintf(why, sizeof(why),
			 "%s, unsealed, ends at offset %" PRIu64 " before it "
			 "was full: the records after it",
			 sn, s->short_at);
	} else {
		return 0;
	}
	if (from >= to)
		return 0;
	int rc = add_gone(j, from, to, s->first_seq, why);
	if (rc)
		return rc;
	/* an unsealed one's: what a writer's open seals away (after it) */
	j->segs[i + 1]->cut = !s->sealed;
	return 1;
}

/* The acknowledged ranges of the loss table, on the lost entries they
 * cover (a rebuilt control page has none). */
static void mark_acked(shmbus_journal_t *j)
{
	struct jctl_losses t;
	if (j->ctl_rebuilt)
		memset(&t, 0, sizeof(t));
	else
		jlosses_read(j, &t);
	for (uint32_t i = 0; i < j->nsegs; i++) {
		struct jseg *s = j->segs[i];
		s->acked = s->lost && !s->foreign &&
			   jlosses_covers(&t, s->first_seq, s->lost_to, true);
	}
}

int jdamage_assess(shmbus_journal_t *j)
{
	jdamage_clear(j);
	/* A rebuilt control page knows nothing of retention or of the newest
	 * segment: only the links between the segments here are checked. */
	bool hint = !j->ctl_rebuilt;
	/* relaxed: retention raises first_seq before it unlinks, and the
	 * listing's system calls came between: loaded after the listing,
	 * it covers every file that retention removed during it */
	uint64_t kept = hint ? atomic_load_explicit(&j->ctl->first_seq,
						    memory_order_relaxed)
			     : 0;
	/* acquire: pairs with the writer's release of end_seq (the writer
	 * itself: its own lock orders the last writer's stores) */
	uint64_t end = hint ? atomic_load_explicit(&j->ctl->end_seq,
						   memory_order_acquire)
			    : 0;
	for (uint32_t i = 0; i < j->nsegs; i++) {
		int rc = check_link(j, i, kept, hint);
		if (rc < 0)
			return rc;
		i += (uint32_t)rc; /* past the entry added before b */
	}
	for (uint32_t i = 0; i < j->nsegs; i++) {
		int rc = short_range(j, i);
		if (rc < 0)
			return rc;
		i += (uint32_t)rc; /* past the entry added after it */
	}
	/* The newest segment the writer announced (when this listing began)
	 * is gone: the records appended to it are lost. One made and gone
	 * before its first record lost nothing. */
	uint64_t newest = j->listed_newest;
	const struct jseg *last = j->nsegs ? j->segs[j->nsegs - 1] : NULL;
	if (hint && newest != UINT64_MAX && newest >= kept && end > newest &&
	    (last == NULL || newest > last->first_seq)) {
		char why[120], nn[40];
		jname(nn, newest, ".seg");
		snprintf(why, sizeof(why),
			 "%s, the newest segment the writer made, is gone", nn);
		int rc = add_gone(j, newest, end, newest, why);
		if (rc)
			return rc;
		j->segs[jseg_find(j, newest)]->newest_gone = true;
	}
	for (uint32_t i = 0; i < j->nsegs; i++) {
		struct jseg *s = j->segs[i];
		if (s->lost != JLOST_FILE)
			continue;
		s->lost_to = i + 1 < j->nsegs ? j->segs[i + 1]->first_seq
			     : end > s->first_seq ? end
						  : UINT64_MAX;
	}
	mark_acked(j);
	return 0;
}

void jlost_text(const shmbus_journal_t *j, const struct jseg *s, char *out,
		size_t n)
{
	char range[96];
	if (s->lost_to == UINT64_MAX)
		snprintf(range, sizeof(range),
			 "sequences %" PRIu64 " on (its end is not known)",
			 s->first_seq);
	else
		snprintf(range, sizeof(range),
			 "sequences %" PRIu64 " to %" PRIu64, s->first_seq,
			 s->lost_to - 1);
	if (s->lost == JLOST_GONE)
		snprintf(out, n, "journal %s: %s are missing: %s", j->dir,
			 range, s->why);
	else
		snprintf(out, n, "%s: %s cannot be read", s->why, range);
}

/* Lost entry s is what a machine crash leaves of what was not synced: a
 * header of zeros (the file renamed into place, its page never written
 * back), the newest segment missing (its rename never reached the disk),
 * the records after an unsealed segment's (its pages and seal never
 * written back). Not a segment missing in the middle or at the head:
 * renames reach the disk in order (ext4, XFS, btrfs), and retention's
 * first_seq is on disk before it unlinks; not a header that is there and
 * wrong, nor one the disk cannot read. */
static bool crash_kind(const struct jseg *s)
{
	return s->lost == JLOST_FILE ? s->zero_head
				     : s->newest_gone || s->cut;
}

/* Lost entry s is what the machine restart since the last writer took
 * (never another journal's file): at the end, the end goes back over it. */
static bool restart_took(const shmbus_journal_t *j, const struct jseg *s)
{
	return s->lost && !s->foreign && jcrash_lost(j, s->first_seq) &&
	       crash_kind(s);
}

/* Lost entry s is not refused: what a machine restart took, or a range an
 * earlier open let through and recorded in the loss table (the end stays
 * past that one: it was not given back then). */
static bool crash_took(const shmbus_journal_t *j, const struct jseg *s)
{
	return restart_took(j, s) ||
	       (s->lost && !s->foreign &&
		jlosses_covers(&j->losses, s->first_seq, s->lost_to, false));
}

/* The entry a writer's open appends after: the last that is not what a
 * machine restart took, nor an empty segment that the open removes; or
 * -1. */
static int last_kept(const shmbus_journal_t *j)
{
	uint32_t k = j->nsegs;
	while (k > 0 && (restart_took(j, j->segs[k - 1]) ||
			 (!j->segs[k - 1]->lost && j->segs[k - 1]->count == 0)))
		k--;
	return (int)k - 1;
}

/* The records end below the end the last writer published. In its boot
 * the page cache kept them all: they were taken from the file since
 * (truncated, zeroed), and that is refused; after a restart, those it had
 * not synced may be gone (jdamage_settle notes them). */
static int refuse_tail(shmbus_journal_t *j)
{
	int k = last_kept(j);
	if (k < 0)
		return 0;
	const struct jseg *s = j->segs[k];
	char what[400];
	if (s->lost && s->lost_to == UINT64_MAX) {
		/* appending after it could go on under sequences it holds,
		 * and its file, restored, would then never read again */
		jlost_text(j, s, what, sizeof(what));
		return shmbus_seterr(s->foreign ? SHMBUS_ECORRUPT
						: s->lost_code,
				     "%s: the journal's end is not known, so a "
				     "writer cannot go on after it, also with "
				     "SHMBUS_JOURNAL_ACCEPT_LOSS: restore the "
				     "file from a backup, or move it out of "
				     "the directory (its records are then lost)",
				     what);
	}
	uint64_t r = s->lost ? s->lost_to : s->last_seq + 1;
	if (r >= j->was_end || jcrash_lost(j, r) ||
	    (j->flags & SHMBUS_JOURNAL_ACCEPT_LOSS))
		return 0;
	char name[40];
	jname(name, s->first_seq, ".seg");
	return shmbus_seterr(SHMBUS_ECORRUPT,
			     "journal %s: sequences %" PRIu64 " to %" PRIu64
			     " are missing: they were appended (journal.ctl's "
			     "end is %" PRIu64 "%s), and %s ends before them "
			     "(truncated, or overwritten): restore it from a "
			     "backup, or open the writer with "
			     "SHMBUS_JOURNAL_ACCEPT_LOSS to go on from %" PRIu64
			     " (the loss is noted in its recovery report)",
			     j->dir, r, j->was_end - 1, j->was_end,
			     j->restart ? ", synced"
			     : j->boot_was == j->boot
				     ? ", in this boot"
				     : ", its writer's boot not known",
			     name, r);
}

/* Where the range of lost entry i is recorded from: a missing one from
 * past the records before it, where the next segment's link will say it
 * begins once a later segment is made (a newest segment missing: from
 * its name now). */
static uint64_t record_from(const shmbus_journal_t *j, uint32_t i)
{
	const struct jseg *g = j->segs[i], *a = i ? j->segs[i - 1] : NULL;
	if (g->lost != JLOST_GONE || a == NULL || a->lost ||
	    after_records(a) >= g->first_seq)
		return g->first_seq;
	return after_records(a);
}

/* What this open will record in the loss table: every lost range it lets
 * through (what a machine restart took, a loss it was told to accept)
 * that stays (the end goes back over those at the end), so that the
 * writers after it do not refuse it again. An open that could not record
 * one refuses: never silent. */
static int plan_losses(shmbus_journal_t *j)
{
	struct jctl_losses *t = &j->losses_new;
	*t = j->losses;
	j->losses_dirty =
		jlosses_prune(t, j->nsegs ? j->segs[0]->first_seq : 0);
	int k = last_kept(j);
	for (int i = 0; i <= k; i++) {
		const struct jseg *g = j->segs[i];
		if (!g->lost || g->foreign || g->lost_to == UINT64_MAX)
			continue;
		uint64_t from = record_from(j, (uint32_t)i);
		int rc = jlosses_add(t, from, g->lost_to, false);
		/* let through by ACCEPT_LOSS, and new: for the report */
		j->segs[i]->accepted = rc > 0 && !jcrash_lost(j, g->first_seq);
		if (rc < 0)
			return shmbus_seterr(
				SHMBUS_ECORRUPT,
				"journal %s: sequences %" PRIu64 " to %" PRIu64
				" are missing, and journal.ctl's loss table "
				"holds %u ranges already, all of them still in "
				"the journal: restore the files, or let "
				"retention remove the oldest",
				j->dir, from, g->lost_to - 1, JCTL_LOSSES_MAX);
		j->losses_dirty |= rc > 0;
	}
	return 0;
}

int jdamage_refuse(shmbus_journal_t *j)
{
	const struct jseg *first = NULL;
	uint32_t n = 0;
	bool foreign = false;
	for (uint32_t i = 0; i < j->nsegs; i++) {
		const struct jseg *s = j->segs[i];
		if (!s->lost || crash_took(j, s))
			continue;
		if (first == NULL || (s->foreign && !first->foreign))
			first = s;
		foreign |= s->foreign;
		n++;
	}
	if (n == 0 || (!foreign && (j->flags & SHMBUS_JOURNAL_ACCEPT_LOSS))) {
		int rc = refuse_tail(j);
		return rc ? rc : plan_losses(j);
	}
	char what[400], more[48] = "";
	jlost_text(j, first, what, sizeof(what));
	if (n > 1)
		snprintf(more, sizeof(more), " (and %u more)", n - 1);
	/* relaxed: the control file's state, under our writer lock */
	bool fresh = !j->ctl_rebuilt &&
		     atomic_load_explicit(&j->ctl->seg_first,
					  memory_order_relaxed) == UINT64_MAX &&
		     atomic_load_explicit(&j->ctl->end_seq,
					  memory_order_relaxed) == 0;
	if (foreign && fresh)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "%s%s; journal.ctl knows no segment: it "
				     "was made after these, over a lost one? "
				     "If so, remove it and open again: the "
				     "writer rebuilds it from the segments",
				     what, more);
	if (foreign && j->ctl_rebuilt)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "%s%s: journal.ctl is missing, and was "
				     "rebuilt as the journal of the newest "
				     "segment (id %016" PRIx64 "): move the "
				     "other journal's segments out of this "
				     "directory (if the newest is the stranger, "
				     "move it out instead)",
				     what, more, j->journal_id);
	if (foreign)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "%s%s: move the other journal's segment "
				     "out of this directory",
				     what, more);
	return shmbus_seterr(first->lost == JLOST_FILE ? first->lost_code
						       : SHMBUS_ECORRUPT,
			     "%s%s: restore it from a backup, or open the "
			     "writer with SHMBUS_JOURNAL_ACCEPT_LOSS to go "
			     "on after the loss (reads, verify and info keep "
			     "reporting it)",
			     what, more);
}

/* Entry i out of the table (a file of it set aside first). */
static int drop_entry(shmbus_journal_t *j, uint32_t i)
{
	struct jseg *s = j->segs[i];
	char name[40], aside[48];
	if (s->lost == JLOST_FILE) {
		jname(name, s->first_seq, ".seg");
		snprintf(aside, sizeof(aside), "%s.lost", name);
		if (renameat(j->dirfd, name, j->dirfd, aside) != 0 &&
		    errno != ENOENT)
			return jerr_file(SHMBUS_ESYS, errno, j, s->first_seq,
					 ".seg", "setting it aside as %s",
					 aside);
		jnote(j, "%s set aside as %s", name, aside);
	}
	jseg_drop(j, i);
	return 0;
}

int jdamage_settle(shmbus_journal_t *j)
{
	for (uint32_t i = 0; i < j->nsegs; i++) {
		const struct jseg *s = j->segs[i];
		bool now = jcrash_lost(j, s->first_seq); /* this restart's */
		if (s->accepted)
			jnote(j, "loss accepted: sequences %" PRIu64 " to %" PRIu64
				 ", reported until acknowledged",
			      s->first_seq, s->lost_to - 1);
		else if (now && crash_took(j, s) && s->lost_to != UINT64_MAX)
			jnote(j, "sequences %" PRIu64 " to %" PRIu64 " were "
				 "not synced before the machine restarted, "
				 "and are gone",
			      s->first_seq, s->lost_to - 1);
		else if (now && crash_took(j, s))
			jnote(j, "sequences %" PRIu64 " on were not synced "
				 "before the machine restarted, and are gone",
			      s->first_seq);
	}
	int k = last_kept(j);
	for (uint32_t i = j->nsegs; i-- > (uint32_t)(k + 1);) {
		int rc = restart_took(j, j->segs[i]) ? drop_entry(j, i) : 0;
		if (rc)
			return rc;
	}
	/* as plan_losses said */
	int rc = j->losses_dirty ? jlosses_write(j, &j->losses_new) : 0;
	if (rc)
		return rc;
	/* what refuse_tail let through: taken by a restart, or accepted */
	const struct jseg *s = k >= 0 ? j->segs[k] : NULL;
	uint64_t r = s == NULL ? 0 : s->lost ? s->lost_to : s->last_seq + 1;
	if (s && r < j->was_end)
		jnote(j, "sequences %" PRIu64 " to %" PRIu64 " (to journal.ctl's "
			 "end) %s: the end goes back to %" PRIu64,
		      r, j->was_end - 1,
		      jcrash_lost(j, r) ? "were not synced before the machine "
					  "restarted, and are gone"
					: "are gone (loss accepted)",
		      r);
	return 0;
}

static int accepting(const shmbus_journal_t *j)
{
	if (j == NULL || !j->writer ||
	    !(j->flags & SHMBUS_JOURNAL_ACCEPT_LOSS))
		return shmbus_seterr(SHMBUS_EINVAL,
				     "journal: accepting a loss needs the "
				     "writer, opened with "
				     "SHMBUS_JOURNAL_ACCEPT_LOSS");
	return 0;
}

int shmbus_journal_accept_range(shmbus_journal_t *j, uint64_t from,
				uint64_t *to)
{
	int rc = accepting(j);
	if (rc)
		return rc;
	uint32_t i = 0;
	while (i < j->nsegs && !(j->segs[i]->lost && !j->segs[i]->acked &&
				 j->segs[i]->first_seq == from))
		i++;
	if (i == j->nsegs)
		return shmbus_seterr(SHMBUS_ENOENT,
				     "journal %s: no lost range begins at "
				     "%" PRIu64 " (shmbus journal info lists "
				     "them, each from its first sequence)",
				     j->dir, from);
	struct jseg *g = j->segs[i];
	char what[400];
	jlost_text(j, g, what, sizeof(what));
	if (g->foreign || g->lost_to == UINT64_MAX)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "%s: not acknowledged: %s", what,
				     g->foreign ? "move the other journal's "
						  "segment out of the directory"
						: "its end is not known");
	struct jctl_losses t;
	jlosses_read(j, &t);
	jlosses_prune(&t, j->segs[0]->first_seq);
	if (jlosses_add(&t, record_from(j, i), g->lost_to, true) < 0)
		return shmbus_seterr(SHMBUS_ECORRUPT,
				     "%s: not acknowledged: journal.ctl's loss "
				     "table holds %u ranges already",
				     what, JCTL_LOSSES_MAX);
	if ((rc = jlosses_write(j, &t)) != 0)
		return rc;
	g->acked = true;
	if (to)
		*to = g->lost_to;
	return 1;
}

int shmbus_journal_accept_loss(shmbus_journal_t *j, uint64_t *from,
			       uint64_t *to)
{
	int rc = accepting(j);
	if (rc)
		return rc;
	/* the missing ranges before the first file: never a file's */
	uint32_t n = 0;
	while (n < j->nsegs && j->segs[n]->lost == JLOST_GONE)
		n++;
	if (n == 0)
		return 0;
	uint64_t lo = j->segs[0]->first_seq;
	uint64_t hi = n < j->nsegs ? j->segs[n]->first_seq : j->end_seq;
	rc = jraise_first(j, hi);
	if (rc)
		return rc;
	while (n--)
		jseg_drop(j, 0);
	if (j->nsegs == 0) /* no file: a journal that starts at its end */
		j->newest = JLINK_FIRST;
	if (from)
		*from = lo;
	if (to)
		*to = hi;
	return 1;
}

/* ------------------------------------------- a lost control file */

struct found {
	uint64_t first, id, created, epoch, seg_size;
	char channel[JNAME_BYTES];
	uint32_t channel_id;
};

/* A segment header that checks on its own (without a control file). */
static bool header_ok(const struct jseg_header *h, uint64_t first)
{
	return h->magic == JSEG_MAGIC && h->version >= JSEG_VERSION_MIN &&
	       h->version <= JOURNAL_VERSION &&
	       h->header_crc == crc32c(h, offsetof(struct jseg_header,
						   header_crc), 0) &&
	       h->first_seq == first && h->data_off == JSEG_DATA_OFF &&
	       h->segment_size % 4096 == 0 && h->segment_size >= (64u << 10) &&
	       h->segment_size <= (1u << 30);
}

/* The headers of the segment files here: *n files, the good ones in *out
 * (*nf), or an error. */
static int read_headers(shmbus_journal_t *j, struct found **out, uint32_t *nf,
			uint32_t *n)
{
	DIR *d = jdir_list(j);
	if (d == NULL)
		return SHMBUS_ESYS;
	struct found *f = NULL;
	uint32_t cap = 0;
	int rc = 0;
	*nf = *n = 0;
	for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
		uint64_t first;
		const char *ext;
		if (!jseg_name(e->d_name, &first, &ext) || strcmp(ext, ".seg"))
			continue;
		(*n)++;
		struct jseg_header h;
		int sfd = openat(j->dirfd, e->d_name, O_RDONLY | O_CLOEXEC);
		bool ok = sfd >= 0 && pread(sfd, &h, sizeof(h), 0) ==
						(ssize_t)sizeof(h) &&
			  header_ok(&h, first);
		if (sfd >= 0)
			close(sfd);
		if (!ok)
			continue;
		if (*nf == cap) {
			cap = cap ? 2 * cap : 64;
			struct found *g = realloc(f, cap * sizeof(*f));
			if (g == NULL) {
				rc = shmbus_seterr(SHMBUS_ENOMEM,
						   "journal: out of memory");
				break;
			}
			f = g;
		}
		struct found *x = &f[(*nf)++];
		x->first = first;
		x->id = h.journal_id;
		x->created = h.created_realtime_ns;
		x->seg_size = h.segment_size;
		memcpy(x->channel, h.channel, sizeof(x->channel));
		x->channel[JNAME_BYTES - 1] = '\0';
		x->channel_id = h.channel_id;
		const uint8_t *b = (const uint8_t *)&h;
		x->epoch = h.link == JLINK_MARKER &&
				   h.link_crc == crc32c(b + JLINK_FROM,
							JLINK_TO - JLINK_FROM,
							0)
			   ? h.bus_epoch
			   : 0;
	}
	closedir(d);
	if (rc)
		free(f);
	else
		*out = f;
	return rc;
}

/* The journal the segments here belong to: the newest segment's (the one
 * its writer made last; files of another journal dropped here are older,
 * however many: a vote would let them outnumber ours); its oldest
 * creation time, the newest segment's channel and the newest bus epoch
 * recorded. */
static struct jctl rebuilt(const struct found *f, uint32_t nf)
{
	uint32_t best = 0;
	for (uint32_t a = 1; a < nf; a++)
		if (f[a].first > f[best].first)
			best = a;
	const struct found *w = &f[best];
	struct jctl c;
	memset(&c, 0, sizeof(c));
	c.magic = JCTL_MAGIC;
	c.version = JCTL_VERSION;
	c.size = JCTL_SIZE;
	c.journal_id = w->id;
	c.created_realtime_ns = w->created;
	c.segment_size = w->seg_size;
	uint64_t newest = w->first, epoch_at = 0, epoch = 0;
	for (uint32_t a = 0; a < nf; a++) {
		if (f[a].id != w->id)
			continue;
		if (f[a].created < c.created_realtime_ns)
			c.created_realtime_ns = f[a].created;
		if (f[a].first >= newest)
			newest = f[a].first, w = &f[a];
		if (f[a].epoch && f[a].first >= epoch_at)
			epoch_at = f[a].first, epoch = f[a].epoch;
	}
	memcpy(c.channel, w->channel, sizeof(c.channel));
	c.channel_id = w->channel_id;
	c.header_crc = jctl_crc(&c);
	atomic_init(&c.seg_first, UINT64_MAX);
	atomic_init(&c.bus_epoch, epoch);
	atomic_init(&c.epoch_set, epoch != 0);
	return c;
}

int jctl_rebuild(shmbus_journal_t *j)
{
	struct found *f = NULL;
	uint32_t nf = 0, n = 0;
	int rc = read_headers(j, &f, &nf, &n);
	if (rc)
		return rc;
	if (n == 0)
		return SHMBUS_ENOENT; /* no segment: a new journal */
	if (nf == 0)
		return jerr_file(SHMBUS_ECORRUPT, 0, j, UINT64_MAX, CTL_NAME,
				 "is missing, and none of the %u segment files "
				 "here has a header to rebuild it from: "
				 "restore it from a backup",
				 n);
	struct jctl c = rebuilt(f, nf);
	free(f);
	void *m = mmap(NULL, JCTL_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return jerr_file(SHMBUS_ENOMEM, errno, j, UINT64_MAX, CTL_NAME,
				 "mmap");
	memcpy(m, &c, sizeof(c));
	j->ctl = m;
	j->ctl_rebuilt = true;
	return 0;
}

int jctl_rebuilt_write(shmbus_journal_t *j)
{
	struct jctl c;
	memcpy(&c, j->ctl, sizeof(c)); /* identity and epoch only */
	int rc = jctl_write(j, &c);
	if (rc == SHMBUS_EEXIST)
		return jerr_file(SHMBUS_EBUSY, 0, j, UINT64_MAX, CTL_NAME,
				 "appeared while this open rebuilt it from the "
				 "segments (another writer?): open again");
	if (rc)
		return rc;
	int fd = openat(j->dirfd, CTL_NAME, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return jerr_file(jerrno_code(errno), errno, j, UINT64_MAX,
				 CTL_NAME, "open");
	munmap(j->ctl, JCTL_SIZE);
	j->ctl = NULL;
	j->ctl_rebuilt = false;
	if ((rc = jctl_map(j, fd)) != 0)
		return rc;
	if (j->ctl->journal_id != c.journal_id)
		return jerr_file(SHMBUS_EBUSY, 0, j, UINT64_MAX, CTL_NAME,
				 "replaced while this open rebuilt it: open "
				 "again");
	/* relaxed: under the writer lock. The boot at once, so that a writer
	 * killed before it publishes its state leaves one (its end is the
	 * scan's, its synced_seq 0: nothing is excused in this boot) */
	atomic_store_explicit(&j->ctl->boot, j->boot, memory_order_relaxed);
	jnote(j, "journal.ctl was missing: rebuilt from %u segments "
		 "(journal id %016" PRIx64 "%s)",
	      jfiles(j), c.journal_id,
	      /* relaxed: our own copy */
	      atomic_load_explicit(&c.epoch_set, memory_order_relaxed)
		      ? ""
		      : ", no bus epoch recorded");
	return 0;
}

/* -------------------------------------------------------------- report */

int shmbus_journal_get_damage(const shmbus_journal_t *j, uint32_t i,
			      shmbus_journal_damage_t *d)
{
	memset(d, 0, sizeof(*d));
	d->segment = UINT64_MAX;
	uint32_t k = 0;
	if (j->ctl_rebuilt && k++ == i) {
		d->kind = SHMBUS_JOURNAL_DAMAGE_CONTROL;
		snprintf(d->text, sizeof(d->text),
			 "journal %.*s/" CTL_NAME " is missing: read from the "
			 "%u segment files here (a writer's open writes it "
			 "again from them)",
			 DIR_SHOWN, j->dir, jfiles(j));
		return 1;
	}
	for (uint32_t s = 0; s < j->nsegs; s++) {
		const struct jseg *g = j->segs[s];
		if (g->lost && !g->acked && k++ == i) {
			d->kind = g->lost == JLOST_GONE
					  ? SHMBUS_JOURNAL_DAMAGE_MISSING
					  : SHMBUS_JOURNAL_DAMAGE_UNREADABLE;
			d->from = g->first_seq;
			d->to = g->lost_to;
			d->segment = g->lost == JLOST_GONE ? g->gone
							   : g->first_seq;
			jlost_text(j, g, d->text, sizeof(d->text));
			return 1;
		}
		if (g->seal_bad && k++ == i) {
			char name[40];
			jname(name, g->first_seq, ".seg");
			d->kind = SHMBUS_JOURNAL_DAMAGE_SEAL;
			d->segment = g->first_seq;
			snprintf(d->text, sizeof(d->text),
				 "journal %.*s/%s: seal block fails its CRC "
				 "(offset 132): its records were read by "
				 "scanning it (a writer's open seals it again)",
				 DIR_SHOWN, j->dir, name);
			return 1;
		}
	}
	return 0;
}
