/*
 * The journal handle: its directory, the control file, the table of
 * segments, retention and statistics.
 *
 * Opening reads the header (256 bytes) of every segment file and scans
 * only the unsealed ones (normally just the last): sealed segments are
 * trusted by their seal block and read lazily, their indexes too.
 * Segments are mapped on first use and stay mapped until the handle
 * closes or retention removes them; a reader keeps a removed segment's
 * mapping (the file lives on until unmapped), never a dangling one.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "journal_int.h"
#include "shm.h"

#define DEFAULT_SEGMENT (64ull << 20)
#define DEFAULT_INTERVAL_US 1000u

/* ---------------------------------------------------------- failpoints */

/* This boot's id, read once by each writer's open, before it takes the
 * lock: a hash of /proc's boot_id (never 0), or 0 where it cannot be
 * known (no /proc, or not allowed to read it: nothing is excused then).
 * Any other failure (no descriptor or memory left) fails the open: it
 * would be taken for "not known", and a writer would refuse what a
 * machine restart took. */
static int boot_read(shmbus_journal_t *j)
{
	static const char path[] = "/proc/sys/kernel/random/boot_id";
	char b[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, b, sizeof(b) - 1) : -1;
	int err = n < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	j->boot_id = 0;
	if (n > 0) {
		j->boot_id = (uint64_t)crc32c(b, (size_t)n, 0) << 32 |
			     crc32c(b, (size_t)n, 1);
		return 0;
	}
	if (n == 0 || err == ENOENT || err == ENOTDIR || err == EACCES ||
	    err == EPERM)
		return 0;
	return shmbus_seterr_sys(jerrno_code(err), err,
				 "journal %s: reading %s (a writer's open "
				 "needs it to tell a machine restart)",
				 j->dir, path);
}

/* ------------------------------------------------------------ options */

static int take_opts(shmbus_journal_t *j, const shmbus_journal_opts_t *o)
{
	static const shmbus_journal_opts_t none = {0};
	if (o == NULL)
		o = &none;
	if (o->flags & ~(uint32_t)(SHMBUS_JOURNAL_READONLY |
				   SHMBUS_JOURNAL_STRICT |
				   SHMBUS_JOURNAL_BUFFERED |
				   SHMBUS_JOURNAL_ACCEPT_LOSS))
		return shmbus_seterr(SHMBUS_EINVAL, "journal: flags 0x%x",
				     o->flags);
	if (o->sync > SHMBUS_JOURNAL_SYNC_INTERVAL)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "journal: unknown sync policy %u",
				     o->sync);
	uint64_t size = o->segment_size ? o->segment_size : DEFAULT_SEGMENT;
	if (size % 4096 || size < MIN_SEGMENT || size > MAX_SEGMENT)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "journal: segment_size %" PRIu64
				     " is not a multiple of 4096 within "
				     "64 KiB..1 GiB",
				     size);
	if (o->channel && strlen(o->channel) >= JNAME_BYTES)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "journal: channel name longer than %d",
				     JNAME_BYTES - 1);
	j->flags = o->flags;
	j->writer = !(o->flags & SHMBUS_JOURNAL_READONLY);
	j->sync = o->sync;
	j->sync_every = o->sync_every ? o->sync_every : 1;
	j->sync_interval_ns =
		(uint64_t)(o->sync_interval_us ? o->sync_interval_us
					       : DEFAULT_INTERVAL_US) *
		1000u;
	j->seg_size = size;
	j->retain_bytes = o->retain_bytes;
	j->retain_age_ns = o->retain_age_ms * 1000000ull;
	j->writeback_bytes = o->writeback_bytes;
	j->mode = o->mode ? o->mode & 0777 : 0600;
	j->channel_id = o->channel_id;
	snprintf(j->channel, sizeof(j->channel), "%s",
		 o->channel ? o->channel : "");
	return 0;
}

/* ------------------------------------------------ directory, control */

static int open_dir(shmbus_journal_t *j, const char *dir)
{
	if (dir == NULL || dir[0] == '\0' || strlen(dir) >= JPATH_MAX - 64)
		return shmbus_seterr(SHMBUS_EINVAL, "journal: no directory, "
						    "or a path too long");
	snprintf(j->dir, sizeof(j->dir), "%s", dir);
	if (j->writer) {
		/* the directory is searchable where the files are readable */
		mode_t dmode = (mode_t)(j->mode | ((j->mode & 0444) >> 2));
		if (mkdir(dir, dmode) != 0 && errno != EEXIST)
			return jerr_file(jerrno_code(errno), errno, j,
					 UINT64_MAX, NULL, "mkdir");
	}
	j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0)
		return jerr_file(jerrno_code(errno), errno, j, UINT64_MAX,
				 NULL, "open");
	/* The writer lock, before anything is listed: the directory's, which
	 * is never removed or made again (journal.ctl may be, under a running
	 * writer: a lock on it alone let a second writer rebuild it and take
	 * the new file's). The kernel drops it when the process dies. A
	 * filesystem without flock on directories leaves the control file's
	 * lock (ctl_open) alone. */
	if (j->writer && flock(j->dirfd, LOCK_EX | LOCK_NB) != 0 &&
	    errno == EWOULDBLOCK)
		return jerr_file(SHMBUS_EBUSY, 0, j, UINT64_MAX, NULL,
				 "another process writes this journal (its "
				 "directory is locked)");
	return 0;
}

/* A new journal's control file: a concurrent creator's link wins, and we
 * use theirs. */
static int ctl_create(shmbus_journal_t *j)
{
	struct jctl c;
	memset(&c, 0, sizeof(c));
	c.magic = JCTL_MAGIC;
	c.version = JCTL_VERSION;
	c.size = JCTL_SIZE;
	if (getrandom(&c.journal_id, sizeof(c.journal_id), 0) !=
	    sizeof(c.journal_id))
		c.journal_id = jrealtime_ns() ^ (uint64_t)getpid() << 40;
	c.created_realtime_ns = jrealtime_ns();
	c.segment_size = j->seg_size;
	memcpy(c.channel, j->channel, sizeof(c.channel));
	c.channel_id = j->channel_id;
	c.header_crc = jctl_crc(&c);
	atomic_init(&c.seg_first, UINT64_MAX);
	int rc = jctl_write(j, &c);
	return rc == SHMBUS_EEXIST ? 0 : rc;
}

/* The control file, or, where it is missing and segments are here, one
 * rebuilt from them in memory (journal_damage.c): never a new, empty one
 * over segments. */
static int ctl_open(shmbus_journal_t *j)
{
	int oflags = (j->writer ? O_RDWR : O_RDONLY) | O_CLOEXEC;
	int fd = openat(j->dirfd, CTL_NAME, oflags);
	if (fd < 0 && errno == ENOENT) {
		int rc = jctl_rebuild(j);
		if (rc == 0)
			return jctl_take(j);
		if (rc != SHMBUS_ENOENT)
			return rc;
		if (j->writer && (rc = ctl_create(j)) != 0)
			return rc;
		fd = openat(j->dirfd, CTL_NAME, oflags);
	}
	if (fd < 0) {
		if (errno == ENOENT)
			return jerr_file(SHMBUS_ENOENT, 0, j, UINT64_MAX, NULL,
					 "no journal here (no " CTL_NAME ")");
		return jerr_file(jerrno_code(errno), errno, j, UINT64_MAX,
				 CTL_NAME, "open");
	}
	return jctl_map(j, fd);
}

/* ------------------------------------------------------------ segments */

/* The entry of the file of that name, or -1 (a missing range's entry is
 * not a file: one restored under its name is taken). */
static int file_entry(const shmbus_journal_t *j, uint64_t first)
{
	int i = jseg_find(j, first);
	for (; i >= 0 && j->segs[i]->first_seq == first; i--)
		if (j->segs[i]->lost != JLOST_GONE)
			return i;
	return -1;
}

static bool known(const shmbus_journal_t *j, uint64_t first)
{
	return file_entry(j, first) >= 0;
}

/* The file named d_name is not the one entry s was loaded from: made
 * again under its name (another inode), or, for a file that failed its
 * checks, changed since (restored, repaired: size, time). */
static bool file_changed(shmbus_journal_t *j, const struct jseg *s,
			 const struct dirent *e)
{
	if ((uint64_t)e->d_ino != s->ino)
		return true;
	struct stat st;
	if (s->lost != JLOST_FILE ||
	    fstatat(j->dirfd, e->d_name, &st, 0) != 0)
		return false;
	return (uint64_t)st.st_size != s->fsize ||
	       (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec !=
		       s->mtime_ns;
}

/* An entry that the listing did not return: its file is gone (retention,
 * a writer's open that removed an empty last segment, a person). Dropped
 * unless this handle reads it from its mapping (a sealed one, or one it
 * read records from); kept if its name is there after all (made again
 * during the listing: the next one looks again). */
static bool drop_unlisted(shmbus_journal_t *j, struct jseg *s)
{
	char name[40];
	struct stat st;
	if (s->map && !s->sealed && !s->lost)
		jseal_read(j, s, (const struct jseg_header *)s->map);
	if (s->map && (s->sealed || s->count))
		return false;
	jname(name, s->first_seq, ".seg");
	return fstatat(j->dirfd, name, &st, 0) != 0 && errno == ENOENT;
}

/* A listing's changes to the table, made only once it is whole: a
 * listing that fails changes nothing, and the next one tries again. */
struct listing {
	struct jseg **add;   /* new entries */
	uint32_t *replace;   /* ... of which those for entry i, or UINT32_MAX */
	uint32_t n, cap;
	uint8_t *seen;	     /* entries of the table it returned */
};

static int listing_take(struct listing *l, struct jseg *s, uint32_t replace)
{
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? 2 * l->cap : 16;
		struct jseg **a = realloc(l->add, cap * sizeof(*a));
		if (a)
			l->add = a;
		uint32_t *r = a ? realloc(l->replace, cap * sizeof(*r)) : NULL;
		if (r == NULL)
			return shmbus_seterr(SHMBUS_ENOMEM,
					     "journal: out of memory");
		l->replace = r;
		l->cap = cap;
	}
	l->add[l->n] = s;
	l->replace[l->n++] = replace;
	return 0;
}

/* The listing into the table: replaced entries, dropped ones, new ones;
 * iterators find their place again (gen). */
static int listing_commit(shmbus_journal_t *j, struct listing *l)
{
	uint32_t n0 = j->nsegs;
	for (uint32_t k = 0; k < l->n; k++)
		if (l->replace[k] != UINT32_MAX) {
			uint32_t i = l->replace[k];
			jseg_free(j->segs[i]);
			j->segs[i] = l->add[k];
			l->seen[i] = 1;
			l->add[k] = NULL;
			j->gen++;
		}
	for (uint32_t i = n0; i-- > 0;)
		if (!l->seen[i] && drop_unlisted(j, j->segs[i]))
			jseg_drop(j, i);
	int rc = 0;
	for (uint32_t k = 0; k < l->n; k++) {
		if (l->add[k] == NULL)
			continue;
		if (rc == 0 && (rc = jseg_add(j, l->add[k])) == 0)
			l->add[k] = NULL;
	}
	return rc;
}

static void listing_free(struct listing *l)
{
	for (uint32_t k = 0; k < l->n; k++)
		jseg_free(l->add[k]);
	free(l->add);
	free(l->replace);
	free(l->seen);
}

/* Walk the directory: load segments not yet known (all of them at open,
 * and from a reader's refresh the ones created since), a file that fails
 * its checks as a lost entry; a known name whose file changed is loaded
 * again, entries whose file is gone are dropped. Changes nothing on
 * disk. */
static int list_dir(shmbus_journal_t *j)
{
	struct listing l = {0};
	l.seen = calloc(j->nsegs + 1, 1);
	DIR *d = l.seen ? jdir_list(j) : NULL;
	if (d == NULL) {
		free(l.seen);
		return l.seen ? SHMBUS_ESYS
			      : shmbus_seterr(SHMBUS_ENOMEM,
					      "journal: out of memory");
	}
	jdamage_clear(j); /* assessed again after the listing */
	/* A reader takes only segments up to the newest one the writer had
	 * announced before this listing began: those were in place then, and
	 * readdir is sure to return them; one renamed in during the listing
	 * may be returned while an earlier one is not. A file that fails its
	 * checks is taken whatever its name: a segment is whole before it is
	 * renamed in, so that is damage, not one being made. */
	bool all = j->writer || j->ctl_rebuilt;
	uint64_t had_newest = j->listed_newest;
	/* acquire: pairs with the release in seg_create, after the rename
	 * (the writer: its lock orders the last writer's stores) */
	j->listed_newest = j->ctl_rebuilt
				   ? UINT64_MAX
				   : atomic_load_explicit(&j->ctl->seg_first,
							  memory_order_acquire);
	uint64_t upto = all ? UINT64_MAX : j->listed_newest;
	bool none = !all && upto == UINT64_MAX; /* none announced yet */
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		uint64_t first;
		const char *ext;
		if (!jseg_name(e->d_name, &first, &ext) ||
		    strcmp(ext, ".seg") != 0)
			continue;
		int i = file_entry(j, first);
		if (i >= 0) {
			struct jseg *k = j->segs[i];
			l.seen[i] = 1;
			/* one this handle reads from its mapping is kept */
			if ((k->map && (k->sealed || k->count) && !k->lost) ||
			    !file_changed(j, k, e))
				continue;
		}
		struct jseg *s;
		rc = jseg_load(j, first, &s);
		if (rc == SHMBUS_ENOENT) { /* retention removed it */
			rc = 0;
			continue;
		}
		if (rc == 0 && !s->lost && (none || first > upto)) {
			jseg_free(s); /* not announced yet */
			continue;
		}
		if (rc == 0 &&
		    (rc = listing_take(&l, s, i >= 0 ? (uint32_t)i
						     : UINT32_MAX)) != 0)
			jseg_free(s);
	}
	closedir(d);
	if (rc == 0)
		rc = listing_commit(j, &l);
	listing_free(&l);
	if (rc) { /* the table as it was: its missing ranges too */
		j->listed_newest = had_newest;
		jdamage_assess(j);
	}
	return rc;
}

/* journal.ctl.PID.tmp of a process that is gone (jctl_write's, killed
 * before its link): removed; a live one may be linking its own. */
static void clean_ctl_tmp(shmbus_journal_t *j, const char *name)
{
	const size_t pre = strlen(CTL_NAME ".");
	char *end;
	if (strncmp(name, CTL_NAME ".", pre) != 0)
		return;
	long pid = strtol(name + pre, &end, 10);
	if (pid > 0 && strcmp(end, ".tmp") == 0 && kill((pid_t)pid, 0) != 0 &&
	    errno == ESRCH)
		unlinkat(j->dirfd, name, 0);
}

/* A writer's open, once it is sure: what crashes leave (temporary files,
 * a reserved next segment, indexes without a segment) removed. */
static void clean_dir(shmbus_journal_t *j)
{
	DIR *d = jdir_list(j);
	if (d == NULL)
		return; /* left for the next open */
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		uint64_t first;
		const char *ext;
		if (!jseg_name(e->d_name, &first, &ext)) {
			clean_ctl_tmp(j, e->d_name);
			continue;
		}
		if (strcmp(ext, ".seg.tmp") == 0 ||
		    strcmp(ext, ".idx.tmp") == 0) {
			unlinkat(j->dirfd, e->d_name, 0);
			/* a reserved next segment was never one */
			j->rec.removed += ext[1] == 's' &&
					  first != JSEG_PREPARED;
		} else if (strcmp(ext, ".idx") == 0 && !known(j, first)) {
			unlinkat(j->dirfd, e->d_name, 0);
		}
	}
	closedir(d);
}

/* A reader at the end of what it knows: its last segment may have been
 * sealed, and others created, since it last looked. */
int journal_refresh(shmbus_journal_t *j)
{
	struct jseg *s = j->nsegs ? j->segs[j->nsegs - 1] : NULL;
	if (s && !s->sealed && s->map)
		jseal_read(j, s, (const struct jseg_header *)s->map);
	int rc = list_dir(j);
	return rc ? rc : jdamage_assess(j);
}

/* ------------------------------------------------------------ recovery */

static int check_order(shmbus_journal_t *j)
{
	for (uint32_t i = 1; i < j->nsegs; i++) {
		const struct jseg *a = j->segs[i - 1], *b = j->segs[i];
		if (a->count && a->last_seq >= b->first_seq)
			return jerr_file(SHMBUS_ECORRUPT, 0, j, a->first_seq,
					 ".seg",
					 "its last sequence %" PRIu64
					 " is not below the next segment's "
					 "first, %" PRIu64,
					 a->last_seq, b->first_seq);
	}
	return 0;
}

/* Segment i was rolled into the next one (its link says so): that one's
 * first record did not fit in it, so its records end past the returned
 * offset; 0 where that is not known. */
static uint64_t full_past(shmbus_journal_t *j, uint32_t i)
{
	const struct jseg *s = j->segs[i], *n = j->segs[i + 1];
	uint8_t b[sizeof(struct jrec_header)]; /* the largest header */
	char name[40];
	if (n->lost || !n->linked || n->prev_first != s->first_seq ||
	    n->version == 0)
		return 0;
	if (n->map) {
		memcpy(b, n->map + JSEG_DATA_OFF, sizeof(b));
	} else {
		jname(name, n->first_seq, ".seg");
		int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
		ssize_t got = fd >= 0 ? pread(fd, b, sizeof(b), JSEG_DATA_OFF)
				      : -1;
		if (fd >= 0)
			close(fd);
		if (got != (ssize_t)sizeof(b))
			return 0;
	}
	/* its frame, as far as it can be told without the CRC: a record of
	 * that segment's first sequence that fits a segment */
	uint32_t marker;
	struct jrec h;
	memcpy(&marker, b, 4);
	jrec_decode(n->version, n->first_seq, n->chan, b, &h);
	uint64_t frame = jrec_span(h.hsz, h.len);
	if (marker != JREC_MARKER || h.seq != n->first_seq ||
	    frame > j->seg_size - JSEG_DATA_OFF)
		return 0;
	return j->seg_size - frame;
}

/* Scan the unsealed segments (normally only the last), writing nothing:
 * a writer's open may still refuse (STRICT, a cut in the middle). A
 * reader first takes a seal made since it read the header; a file that
 * retention removed since is forgotten. */
/* A sealed segment whose records are all there, as its seal says. */
static bool records_whole(const struct jseg *s)
{
	uint64_t off = JSEG_DATA_OFF, after = s->first_seq - 1, n = 0;
	const char *why;
	while (off < s->end_off) {
		unsigned fl = n == 0 && s->first_seq == 0 ? JFC_ANY_SEQ : 0;
		struct jrec h;
		if (jframe_check(s, off, s->end_off, after, fl, &why, &h) !=
		    JF_OK)
			return false;
		after = h.seq;
		off += jrec_span(h.hsz, h.len);
		n++;
	}
	return off == s->end_off && n == s->count && after == s->last_seq;
}

/* A writer's open after a machine restart: a segment sealed with records
 * at or above what the last writer had synced. Under policy NONE its seal
 * may have reached the disk and its records not (page 0 written back
 * first): its records are checked, and if they are not all there it is
 * taken as unsealed (scanned, then sealed again or cut: what a crash took
 * of what was not synced). */
static int check_sealed(shmbus_journal_t *j, struct jseg *s)
{
	if (!j->writer || !j->restart || !s->sealed || s->lost ||
	    s->last_seq < j->was_synced)
		return 0;
	int rc = jseg_map(j, s);
	if (rc || records_whole(s))
		return rc;
	munmap(s->map, s->map_size); /* mapped again to write */
	s->map = NULL;
	jindex_drop(s);
	s->sealed = false;
	s->seal_lost_to = 0;
	s->unsealed = true;
	s->end_off = JSEG_DATA_OFF;
	s->count = s->last_seq = s->ts_max = 0;
	s->ts_min = UINT64_MAX;
	return jsparse_init(j, &s->live);
}

static int scan_unsealed(shmbus_journal_t *j)
{
	for (uint32_t i = 0; i < j->nsegs; i++) {
		struct jseg *s = j->segs[i];
		int rc = check_sealed(j, s);
		if (rc)
			return rc;
		if (s->sealed || s->lost)
			continue;
		bool last = i + 1 == j->nsegs;
		rc = jseg_map(j, s);
		if (rc == SHMBUS_ENOENT && !j->writer) {
			jseg_drop(j, i--);
			continue;
		}
		if (rc == 0 && !j->writer &&
		    jseal_read(j, s, (const struct jseg_header *)s->map))
			continue;
		if (rc == 0 && j->writer)
			rc = jwkeys_init(j, s);
		if (rc == 0 && s->file_size)
			jnote(j, "segment %" PRIu64 " was truncated to %" PRIu64
				 " bytes: extended",
			      s->first_seq, s->file_size);
		if (rc == 0)
			rc = jscan_unsealed(j, s,
					    last ? UINT64_MAX
						 : j->segs[i + 1]->first_seq,
					    !last || s->seal_bad,
					    last ? 0 : full_past(j, i));
		if (rc)
			return rc;
	}
	return 0;
}

/* A writer's open, once it is sure: short segments extended, tails cut,
 * full segments that a crash (or a bad seal block) left unsealed sealed,
 * empty ones removed. */
static int apply_recovery(shmbus_journal_t *j)
{
	for (uint32_t i = 0; i < j->nsegs; i++) {
		struct jseg *s = j->segs[i];
		if (s->sealed || s->lost)
			continue;
		bool last = i + 1 == j->nsegs;
		int rc = 0, err;
		if (s->file_size &&
		    (err = posix_fallocate(s->fd, 0, (off_t)j->seg_size)) != 0)
			rc = jerr_file(jerrno_code(err), err, j, s->first_seq,
				       ".seg",
				       "extending a segment truncated to "
				       "%" PRIu64 " bytes",
				       s->file_size);
		s->file_size = 0;
		if (rc == 0 && s->unsealed && last) {
			/* its seal on disk over records that are not all
			 * there (check_sealed): the active segment again */
			struct jseg_header *h = (struct jseg_header *)s->map;
			/* relaxed: under the writer lock, before the end is
			 * published; readers take it as unsealed from here */
			atomic_store_explicit(&h->sealed, 0,
					      memory_order_relaxed);
			char idx[40];
			jname(idx, s->first_seq, ".idx");
			unlinkat(j->dirfd, idx, 0);
		}
		if (rc == 0)
			rc = jscan_apply(j, s);
		if (rc == 0 && s->count == 0) {
			rc = jseg_remove(j, i--);
			j->rec.removed++;
			/* on disk before a later segment of the same name or
			 * below it can be: a crash must not leave both */
			if (rc == 0)
				fsync(j->dirfd);
		} else if (rc == 0 && (!last || s->seal_bad)) {
			/* a bad seal block: the segment was full once, and
			 * every record in it checked */
			bool again = s->seal_bad;
			/* its last records lost (a cut, or it ended short,
			 * let through): its seal says so, for every reader
			 * after (the next segment's link names it) */
			const struct jseg *g = last ? NULL : j->segs[i + 1];
			if (g && g->lost == JLOST_GONE && g->cut)
				s->seal_lost_to = g->lost_to;
			rc = jseal(j, s);
			if (rc == 0 && again)
				jnote(j, "segment %" PRIu64 ": its seal block "
					 "failed its CRC: sealed again from "
					 "its %" PRIu64 " records",
				      s->first_seq, s->count);
			j->rec.sealed += rc == 0 && !again;
			s->seal_bad = false;
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* The end from the segments: past the last record kept; after a lost
 * last entry (damage accepted), past what it held as far as known (a
 * reader's rebuilt page: past its first sequence). */
static uint64_t end_of(const shmbus_journal_t *j)
{
	for (uint32_t i = j->nsegs; i-- > 0;) {
		const struct jseg *s = j->segs[i];
		if (s->lost)
			return s->lost_to != UINT64_MAX ? s->lost_to
							: s->first_seq + 1;
		if (s->count)
			return s->last_seq + 1;
	}
	/* whatever the last writer published (relaxed: the writer lock we
	 * hold orders its stores before us; a reader's own page) */
	return atomic_load_explicit(&j->ctl->end_seq, memory_order_relaxed);
}

/* A rebuilt control page, a reader's or the one a writer is about to
 * write: the state a writer would publish, so that the end and the first
 * sequence read right (and a writer killed before it published its own
 * leaves a file that the next open agrees with). */
static void publish_rebuilt(shmbus_journal_t *j)
{
	struct jctl *c = j->ctl;
	const struct jseg *s = j->nsegs ? j->segs[j->nsegs - 1] : NULL;
	/* relaxed: our own anonymous page, read by this handle only */
	atomic_store_explicit(&c->first_seq,
			      j->nsegs ? j->segs[0]->first_seq : 0,
			      memory_order_relaxed);
	atomic_store_explicit(&c->seg_first, s ? s->first_seq : UINT64_MAX,
			      memory_order_relaxed);
	atomic_store_explicit(&c->end_seq, s ? end_of(j) : 0,
			      memory_order_relaxed);
}

/* Under a sync policy, what the last writer may have left unsynced (it
 * had synced below was_synced; its policy may have been NONE) reaches the
 * disk before synced_seq says so: the segments from the one holding
 * was_synced on, and the directory. */
static int sync_recovered(shmbus_journal_t *j)
{
	int rc = jsync_from(j, j->was_synced);
	return rc ? rc : j->active ? jsync_active(j) : 0;
}

/* Under policy NONE, what the last writer sealed and may have left
 * unsynced (from the segment holding was_synced on) is synced by the
 * syncer (journal_sealer.c), which raises synced_seq past it; each seal
 * of this writer adds its segment. */
static void sync_left(shmbus_journal_t *j)
{
	int k = jseg_find(j, j->was_synced);
	j->dsync_from = k < 0 ? 0 : j->segs[k]->first_seq;
	for (uint32_t i = j->nsegs; i-- > (uint32_t)(k < 0 ? 0 : k);) {
		const struct jseg *s = j->segs[i];
		if (s->sealed && !s->lost && s->last_seq + 1 > j->was_synced) {
			jsealer_durable(j, j->dsync_from, s->first_seq,
					s->last_seq + 1);
			return;
		}
	}
}

/* The control file's state as the last writer left it (before this open
 * changes it): the checks of jdamage_refuse compare the segments with it.
 * A rebuilt page knows no end and no boot: nothing is excused. */
static void take_was(shmbus_journal_t *j)
{
	const struct jctl *c = j->ctl;
	/* relaxed: the writer lock we hold orders the last writer's stores
	 * before us */
	j->was_end = j->ctl_rebuilt ? 0
				    : atomic_load_explicit(&c->end_seq,
							   memory_order_relaxed);
	j->was_synced = j->ctl_rebuilt
				? 0
				: atomic_load_explicit(&c->synced_seq,
						       memory_order_relaxed);
	j->boot_was = atomic_load_explicit(&c->boot, memory_order_relaxed);
	if (j->ctl_rebuilt)
		j->boot_was = j->boot;
	/* a boot that is not known (0, either side) excuses nothing */
	j->restart = j->boot_was != 0 && j->boot != 0 && j->boot_was != j->boot;
	if (j->ctl_rebuilt)
		memset(&j->losses, 0, sizeof(j->losses));
	else
		jlosses_read(j, &j->losses);
}

/* Scan the unsealed segments, find the damage (journal_damage.c); a
 * writer refuses what it may not append after, and only then writes:
 * the control file if it was rebuilt, cleaning, the tail's cut, seals;
 * it takes the last segment as its active one and publishes its state. */
static int recover(shmbus_journal_t *j)
{
	if (j->writer)
		take_was(j);
	int rc = scan_unsealed(j);
	if (rc == 0)
		rc = jdamage_assess(j);
	if (rc == 0)
		rc = check_order(j);
	if (rc == 0 && j->writer)
		rc = jdamage_refuse(j);
	if (rc == 0 && j->ctl_rebuilt)
		publish_rebuilt(j);
	if (rc || !j->writer)
		return rc;
	/* sure: from here the open writes */
	if (j->ctl_rebuilt && (rc = jctl_rebuilt_write(j)) != 0)
		return rc;
	clean_dir(j);
	if ((rc = jdamage_settle(j)) != 0 || (rc = apply_recovery(j)) != 0)
		return rc;
	struct jseg *s = j->nsegs ? j->segs[j->nsegs - 1] : NULL;
	if (s && !s->sealed && !s->lost) {
		j->active = s;
		j->end_off = s->end_off;
		s->synced_off = JSEG_DATA_OFF;
	}
	j->end_seq = end_of(j);
	/* the next segment links to the newest this journal had, a missing
	 * one included, so that the loss stays seen */
	j->newest = s == NULL ? JLINK_FIRST
		    : s->lost == JLOST_GONE && s->gone != UINT64_MAX
			    ? s->gone
			    : s->first_seq;
	/* what a crash left in the page cache reaches the disk now, so that
	 * synced_seq tells the truth from the start */
	if (jsync_policy(j) && (rc = sync_recovered(j)) != 0)
		return rc;
	struct jctl *c = j->ctl;
	/* relaxed: the writer lock orders these for a later writer; readers
	 * acquire end_seq, stored last with release */
	atomic_store_explicit(&c->writer_pid, (uint32_t)getpid(),
			      memory_order_relaxed);
	atomic_store_explicit(&c->first_seq,
			      j->nsegs ? j->segs[0]->first_seq : j->end_seq,
			      memory_order_relaxed);
	/* release: the newest segment, active or not, after its recovery;
	 * pairs with the acquire in list_dir (readers list up to it) */
	atomic_store_explicit(&c->seg_first, s ? s->first_seq : UINT64_MAX,
			      memory_order_release);
	atomic_store_explicit(&c->end_off, j->end_off, memory_order_relaxed);
	/* what was synced before stays so (unless this open gave it up) */
	j->synced_seq = jsync_policy(j)		 ? j->end_seq
			: j->was_synced < j->end_seq ? j->was_synced
						     : j->end_seq;
	atomic_store_explicit(&c->synced_seq, j->synced_seq,
			      memory_order_relaxed);
	atomic_store_explicit(&c->end_seq, j->end_seq, memory_order_release);
	/* relaxed, and last: a writer killed before it leaves the old boot,
	 * under which the next open excuses what this one did */
	atomic_store_explicit(&c->boot, j->boot, memory_order_relaxed);
	/* the state on disk once, so that a crash does not read it older
	 * than the files this open changed */
	if (msync(c, JCTL_SIZE, MS_SYNC) != 0)
		return jerr_file(SHMBUS_ESYS, errno, j, UINT64_MAX, CTL_NAME,
				 "msync at open");
	if (!jsync_policy(j))
		sync_left(j);
	return 0;
}

/* ---------------------------------------------------------- open, close */

int shmbus_journal_open(const char *dir, const shmbus_journal_opts_t *opts,
			shmbus_journal_t **out)
{
	if (out == NULL)
		return shmbus_seterr(SHMBUS_EINVAL, "journal: out is NULL");
	*out = NULL;
	shmbus_journal_t *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "journal: out of memory");
	j->dirfd = j->ctl_fd = -1;
	j->dir_synced = UINT64_MAX - 1; /* none yet */
	int rc = take_opts(j, opts);
	jfailpoints_arm(j);
	if (rc == 0)
		rc = open_dir(j, dir);
	if (rc == 0 && j->writer)
		rc = boot_read(j);
	if (rc == 0)
		rc = ctl_open(j);
	if (rc == 0)
		rc = list_dir(j);
	if (rc == 0)
		rc = recover(j);
	if (rc == 0 && j->writer && (j->flags & SHMBUS_JOURNAL_BUFFERED))
		rc = jstage_init(j);
	if (rc) {
		j->writer = false; /* nothing to sync */
		shmbus_journal_close(j);
		return rc;
	}
	j->last_sync_ns = shmbus_now_ns();
	*out = j;
	return 0;
}

int shmbus_journal_close(shmbus_journal_t *j)
{
	if (j == NULL)
		return 0;
	if (j->jr)
		j->journaler_close(j);
	int rc = jflush(j);
	if (rc == 0 && j->writer && jsync_policy(j) && j->active &&
	    j->failed == 0)
		rc = jsync_active(j);
	if (j->writer && j->ctl) /* relaxed: a hint for messages */
		atomic_store_explicit(&j->ctl->writer_pid, 0,
				      memory_order_relaxed);
	jsealer_stop(j); /* its last index written */
	for (uint32_t i = 0; i < j->nsegs; i++)
		jseg_free(j->segs[i]);
	free(j->segs);
	jkeybuf_free(j);
	free(j->stage);
	if (j->ctl)
		munmap(j->ctl, JCTL_SIZE);
	if (j->ctl_fd >= 0)
		close(j->ctl_fd); /* releases the writer lock */
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j);
	return rc;
}

/* -------------------------------------------------------------- stats */

uint64_t shmbus_journal_end(const shmbus_journal_t *j)
{
	/* acquire: pairs with the writer's release store after the record's
	 * bytes and marker: a reader that sees end_seq finds the record */
	return atomic_load_explicit(&j->ctl->end_seq, memory_order_acquire);
}

uint64_t shmbus_journal_synced(const shmbus_journal_t *j)
{
	/* relaxed: a statement about the disk, not about memory */
	return atomic_load_explicit(&j->ctl->synced_seq, memory_order_relaxed);
}

void shmbus_journal_get_stats(const shmbus_journal_t *j,
			      shmbus_journal_stats_t *st)
{
	*st = j->st;
	st->first_seq = j->nsegs ? j->segs[0]->first_seq : 0;
	st->end_seq = shmbus_journal_end(j);
	st->synced_seq = shmbus_journal_synced(j);
	st->segments = jfiles(j);
	st->bytes = st->segments * j->seg_size;
}

void shmbus_journal_get_recovery(const shmbus_journal_t *j,
				 shmbus_journal_recovery_t *r)
{
	*r = j->rec;
}

void shmbus_journal_get_info(const shmbus_journal_t *j,
			     shmbus_journal_info_t *info)
{
	memset(info, 0, sizeof(*info));
	memcpy(info->channel, j->channel, sizeof(info->channel) - 1);
	info->channel_id = j->channel_id;
	info->segment_size = j->seg_size;
	info->journal_id = j->journal_id;
	info->created_realtime_ns = j->ctl->created_realtime_ns;
}
