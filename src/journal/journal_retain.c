/*
 * Retention: whole segments, oldest first, removed once they are past the
 * journal's age or size limits (opts: retain_age_ms, retain_bytes); the
 * writer runs it at each roll, an application whenever it likes. Below
 * the writer, which calls it, and above the segment table, the damage
 * assessment and the sealer, which it calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "error.h"
#include "journal_int.h"

/* A lost entry at the head holds nothing readable and is older than
 * what follows it: retention takes it first, whenever it runs. `files`:
 * the segment files there would be without the ones before s. */
static bool retain_due(const shmbus_journal_t *j, const struct jseg *s,
		       uint64_t files, uint64_t now)
{
	if (s->lost)
		return true;
	if (!s->sealed)
		return false;
	if (j->retain_bytes && files * j->seg_size > j->retain_bytes)
		return true;
	return j->retain_age_ns && s->sealed_ns + j->retain_age_ns <= now;
}

int shmbus_journal_retain(shmbus_journal_t *j)
{
	if (j == NULL || !j->writer)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "journal: retention needs the writer");
	jsealer_wait(j); /* never under an index being written */
	uint64_t now = jrealtime_ns(), files = jfiles(j);
	uint32_t n = 0;
	/* never the last segment: the active one, or the next to be */
	while (n + 1 < j->nsegs && (j->retain_bytes || j->retain_age_ns) &&
	       retain_due(j, j->segs[n], files, now))
		files -= j->segs[n++]->lost != JLOST_GONE;
	if (n == 0)
		return 0;
	/* once for the pass, before its first unlink */
	int rc = jraise_first(j, j->segs[n]->first_seq);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		rc = jseg_remove(j, 0);
		j->st.removed += rc == 0;
	}
	if (jsync_policy(j))
		fsync(j->dirfd);
	return rc ? rc : (int)n;
}
