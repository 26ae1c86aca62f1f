/*
 * The journal's files, below everything else of it: names and errors,
 * the control file's words, and the table of segments (each one's
 * header, seal block and mapping). The handle's open and close, the
 * recovery and the directory listing (journal.c), the writer, the
 * readers and the journaler build on these; nothing here calls them.
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

uint64_t jrealtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void jname(char out[40], uint64_t first, const char *ext)
{
	snprintf(out, 40, "%020" PRIu64 "%s", first, ext);
}

/* "journal DIR/FILE: what[: strerror(err)]" (first UINT64_MAX: ext is the
 * whole file name, or NULL for the directory itself). */
int jerr_file(int code, int err, const shmbus_journal_t *j, uint64_t first,
	      const char *ext, const char *fmt, ...)
{
	char what[320], file[40] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (first != UINT64_MAX)
		jname(file, first, ext);
	else if (ext)
		snprintf(file, sizeof(file), "%s", ext);
	const char *sep = file[0] ? "/" : "";
	if (err)
		return shmbus_seterr_sys(code, err, "journal %s%s%s: %s",
					 j->dir, sep, file, what);
	return shmbus_seterr(code, "journal %s%s%s: %s", j->dir, sep, file,
			     what);
}

void jnote(shmbus_journal_t *j, const char *fmt, ...)
{
	char *r = j->rec.reason;
	size_t used = strlen(r);
	if (used + 3 >= sizeof(j->rec.reason))
		return;
	if (used) {
		memcpy(r + used, "; ", 3);
		used += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r + used, sizeof(j->rec.reason) - used, fmt, ap);
	va_end(ap);
}

int jerrno_code(int err)
{
	if (err == EACCES || err == EPERM || err == EROFS)
		return SHMBUS_EPERM;
	if (err == ENOENT)
		return SHMBUS_ENOENT;
	if (err == ENOSPC || err == EDQUOT || err == ENOMEM)
		return SHMBUS_ENOMEM;
	return SHMBUS_ESYS;
}

bool jsync_policy(const shmbus_journal_t *j)
{
	return j->sync != SHMBUS_JOURNAL_SYNC_NONE;
}

void jfailpoints_arm(shmbus_journal_t *j)
{
	static const char *const names[JFP_COUNT] = {
		[JFP_MID_RECORD] = "mid_record",
		[JFP_MID_SEAL] = "mid_seal",
		[JFP_MID_CREATE] = "mid_create",
		[JFP_MID_FLUSH] = "mid_flush",
	};
	j->fp_id = -1;
#ifndef SHMBUS_FAILPOINTS /* armed in the tests' build of the library only */
	(void)names;
	return;
#endif
	const char *e = getenv("SHMBUS_JOURNAL_FAILPOINT");
	const char *colon = e ? strchr(e, ':') : NULL;
	if (colon == NULL || !j->writer)
		return;
	for (int i = 0; i < JFP_COUNT; i++)
		if (strlen(names[i]) == (size_t)(colon - e) &&
		    strncmp(e, names[i], (size_t)(colon - e)) == 0)
			j->fp_id = i;
	j->fp_left = strtol(colon + 1, NULL, 10);
	if (j->fp_left <= 0)
		j->fp_id = -1;
}

void jfailpoint_hit(shmbus_journal_t *j)
{
	if (--j->fp_left == 0)
		kill(getpid(), SIGKILL);
}

uint32_t jctl_crc(const struct jctl *c)
{
	return crc32c(c, JCTL_CRC_TO, 0);
}

/* A control file with tmpl's bytes, made whole under a temporary name
 * and linked into place: 0, or SHMBUS_EEXIST (nothing written) if one is
 * there already (a concurrent creator's). */
int jctl_write(shmbus_journal_t *j, const struct jctl *tmpl)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), CTL_NAME ".%d.tmp", (int)getpid());
	int fd = openat(j->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			j->mode);
	if (fd < 0)
		return jerr_file(jerrno_code(errno), errno, j, UINT64_MAX, tmp,
				 "create");
	int rc = 0;
	int err = fchmod(fd, j->mode) != 0 ? errno
					   : posix_fallocate(fd, 0, JCTL_SIZE);
	if (err == 0 && (pwrite(fd, tmpl, sizeof(*tmpl), 0) !=
				 (ssize_t)sizeof(*tmpl) ||
			 fdatasync(fd) != 0))
		err = errno ? errno : EIO;
	if (err)
		rc = jerr_file(jerrno_code(err), err, j, UINT64_MAX, tmp,
			       "write");
	close(fd);
	if (rc == 0 && linkat(j->dirfd, tmp, j->dirfd, CTL_NAME, 0) != 0)
		rc = errno == EEXIST ? SHMBUS_EEXIST
				     : jerr_file(jerrno_code(errno), errno, j,
						 UINT64_MAX, CTL_NAME, "link");
	unlinkat(j->dirfd, tmp, 0);
	if (rc == 0)
		fsync(j->dirfd);
	return rc;
}

/* What a writer publishes as its boot: this boot's id and the control
 * file's device and inode, so that a file restored from a backup or a
 * copy (another inode) in the same boot counts as another boot: the page
 * cache of this boot never held what its writer wrote. Never 0; 0 if the
 * boot is not known. */
static uint64_t boot_tag(const shmbus_journal_t *j, const struct stat *st)
{
	if (j->boot_id == 0)
		return 0;
	const uint64_t k[3] = {j->boot_id, (uint64_t)st->st_dev,
			       (uint64_t)st->st_ino};
	return ((uint64_t)crc32c(k, sizeof(k), 0) << 32 |
		crc32c(k, sizeof(k), 1)) |
	       1;
}

static int ctl_check(shmbus_journal_t *j, const struct jctl *c)
{
	if (c->magic != JCTL_MAGIC)
		return jerr_file(SHMBUS_ECORRUPT, 0, j, UINT64_MAX, CTL_NAME,
				 "bad magic 0x%016" PRIx64 " at offset 0 "
				 "(not a shmbus journal)",
				 c->magic);
	if (c->version != JCTL_VERSION)
		return jerr_file(SHMBUS_EVERSION, 0, j, UINT64_MAX, CTL_NAME,
				 "format version %u at offset 8, this "
				 "library reads %u",
				 c->version, JCTL_VERSION);
	if (c->size != JCTL_SIZE || c->header_crc != jctl_crc(c))
		return jerr_file(SHMBUS_ECORRUPT, 0, j, UINT64_MAX, CTL_NAME,
				 "header fails its CRC (offset 92)");
	if (c->segment_size % 4096 || c->segment_size < MIN_SEGMENT ||
	    c->segment_size > MAX_SEGMENT)
		return jerr_file(SHMBUS_ECORRUPT, 0, j, UINT64_MAX, CTL_NAME,
				 "segment size %" PRIu64 " at offset 32",
				 c->segment_size);
	return 0;
}

/* The channel a journal was made for (its identity, written once): a
 * reader takes it; a writer for another channel is refused. */
static int ctl_channel(shmbus_journal_t *j)
{
	const struct jctl *c = j->ctl;
	char had[JNAME_BYTES];
	memcpy(had, c->channel, sizeof(had));
	had[sizeof(had) - 1] = '\0';
	if (!j->writer || j->channel[0] == '\0') {
		memcpy(j->channel, had, sizeof(had));
		j->channel_id = c->channel_id;
		return 0;
	}
	if (had[0] && (strcmp(had, j->channel) || c->channel_id != j->channel_id))
		return jerr_file(SHMBUS_EEXIST, 0, j, UINT64_MAX, CTL_NAME,
				 "the journal of channel '%s' (id %u), not of "
				 "'%s' (id %u): journal each channel in a "
				 "directory of its own",
				 had, c->channel_id, j->channel, j->channel_id);
	return 0;
}

/* The control page mapped (or rebuilt): its identity checked and taken. */
int jctl_take(shmbus_journal_t *j)
{
	int rc = ctl_check(j, j->ctl);
	if (rc)
		return rc;
	j->journal_id = j->ctl->journal_id;
	j->seg_size = j->ctl->segment_size; /* a journal keeps its size */
	return ctl_channel(j);
}

/* Map the control file fd (the handle owns it from here), check it, and
 * take the writer lock. */
int jctl_map(shmbus_journal_t *j, int fd)
{
	j->ctl_fd = fd;
	struct stat st;
	if (fstat(fd, &st) != 0)
		return jerr_file(SHMBUS_ESYS, errno, j, UINT64_MAX, CTL_NAME,
				 "fstat");
	if (st.st_size != JCTL_SIZE)
		return jerr_file(SHMBUS_ECORRUPT, 0, j, UINT64_MAX, CTL_NAME,
				 "truncated: %lld bytes, expected %u",
				 (long long)st.st_size, JCTL_SIZE);
	j->boot = boot_tag(j, &st);
	void *m = mmap(NULL, JCTL_SIZE,
		       PROT_READ | (j->writer ? PROT_WRITE : 0), MAP_SHARED,
		       fd, 0);
	if (m == MAP_FAILED)
		return jerr_file(SHMBUS_ESYS, errno, j, UINT64_MAX, CTL_NAME,
				 "mmap");
	j->ctl = m;
	int rc = jctl_take(j);
	if (rc)
		return rc;
	if (j->writer && shm_lock_byte(fd, 0) != 0)
		/* relaxed: the pid is only for the message */
		return jerr_file(SHMBUS_EBUSY, 0, j, UINT64_MAX, NULL,
				 "another process writes this journal "
				 "(pid %u, a hint)",
				 (unsigned)atomic_load_explicit(
					 &j->ctl->writer_pid,
					 memory_order_relaxed));
	return 0;
}

void jseg_free(struct jseg *s)
{
	if (s == NULL)
		return;
	if (s->map)
		munmap(s->map, s->map_size);
	jindex_drop(s);
	jwkeys_free(s);
	free(s->live.e);
	free(s->why);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

static void seg_init(struct jseg *s, uint64_t first)
{
	memset(s, 0, sizeof(*s));
	s->first_seq = first;
	s->fd = -1;
	s->end_off = JSEG_DATA_OFF;
	s->live.next = JSEG_DATA_OFF;
	s->bad_off = UINT64_MAX;
	s->ts_min = UINT64_MAX;
	s->prev_first = JLINK_FIRST;
	s->lost_to = s->gone = UINT64_MAX;
	s->unopened = UINT64_MAX;
	s->short_at = UINT64_MAX;
}

struct jseg *jseg_new(uint64_t first)
{
	static _Atomic uint64_t uids;
	struct jseg *s = malloc(sizeof(*s));
	if (s) {
		seg_init(s, first);
		/* relaxed: a count, unique is all it needs to be */
		s->uid = atomic_fetch_add_explicit(&uids, 1,
						   memory_order_relaxed);
	}
	else
		shmbus_seterr(SHMBUS_ENOMEM, "journal: out of memory");
	return s;
}

int jseg_map(shmbus_journal_t *j, struct jseg *s)
{
	if (s->map)
		return 0;
	char name[40];
	jname(name, s->first_seq, ".seg");
	bool rw = j->writer && !s->sealed;
	int fd = openat(j->dirfd, name, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return jerr_file(jerrno_code(errno), errno, j, s->first_seq,
				 ".seg", "open");
	struct stat st;
	bool got = fstat(fd, &st) == 0;
	/* a writer's recovery scans a short unsealed file only up to its
	 * size, and extends it before it writes */
	if (!got || ((uint64_t)st.st_size != j->seg_size &&
		     !(rw && (uint64_t)st.st_size == s->file_size))) {
		close(fd);
		/* a shorter file would be SIGBUS on the first page past it */
		return jerr_file(SHMBUS_ECORRUPT, 0, j, s->first_seq, ".seg",
				 "truncated: %lld bytes, the journal's "
				 "segments are %" PRIu64,
				 (long long)st.st_size, j->seg_size);
	}
	void *m = mmap(NULL, j->seg_size, PROT_READ | (rw ? PROT_WRITE : 0),
		       MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		int err = errno;
		close(fd);
		return jerr_file(SHMBUS_ESYS, err, j, s->first_seq, ".seg",
				 "mmap");
	}
	s->map = m;
	s->map_size = j->seg_size;
	s->writable = rw;
	if (rw) {
		s->fd = fd;
		jwriter_advice(j, m);
	}
	else
		close(fd);
	return 0;
}

/* The seal block of h (a copy, or the mapped header of a segment that a
 * live writer may be sealing): trusted only whole. A marker over a block
 * that fails its checks is damage (s->seal_bad, journal_damage.c reports
 * it): the segment is scanned like a tail instead. */
bool jseal_read(shmbus_journal_t *j, struct jseg *s,
		const struct jseg_header *h)
{
	/* acquire: pairs with the release store of `sealed` in jseal, after
	 * the seal block's other fields */
	if (atomic_load_explicit(&h->sealed, memory_order_acquire) !=
	    JSEAL_MARKER)
		return false;
	const uint8_t *b = (const uint8_t *)h;
	if (crc32c(b + JSEG_SEAL_CRC_FROM,
		   JSEG_SEAL_CRC_TO - JSEG_SEAL_CRC_FROM, 0) != h->seal_crc ||
	    h->end_off < JSEG_DATA_OFF || h->end_off > j->seg_size ||
	    h->count == 0 || h->last_seq < s->first_seq ||
	    /* every record takes at least a header */
	    h->count > (h->end_off - JSEG_DATA_OFF) / jrec_hmin(s->version) ||
	    (h->lost_to && h->lost_to <= h->last_seq + 1)) {
		s->seal_bad = true;
		return false;
	}
	s->seal_bad = false;
	s->end_off = h->end_off;
	s->count = h->count;
	s->last_seq = h->last_seq;
	s->ts_min = h->ts_min;
	s->ts_max = h->ts_max;
	s->sealed_ns = h->sealed_realtime_ns;
	s->seal_lost_to = h->lost_to;
	s->sealed = true;
	free(s->live.e);
	memset(&s->live, 0, sizeof(s->live));
	return true;
}

/* The link block, if the segment has a whole one. */
static void link_read(struct jseg *s, const struct jseg_header *h)
{
	const uint8_t *b = (const uint8_t *)h;
	s->linked = h->link == JLINK_MARKER &&
		    h->link_crc == crc32c(b + JLINK_FROM,
					  JLINK_TO - JLINK_FROM, 0);
	s->prev_first = s->linked ? h->prev_first : JLINK_FIRST;
	s->epoch = s->linked ? h->bus_epoch : 0;
}

static int seg_check_header(shmbus_journal_t *j, struct jseg *s,
			    const struct jseg_header *h)
{
	uint64_t f = s->first_seq;
	link_read(s, h); /* its own CRC: told even if the rest is bad */
	if (h->magic != JSEG_MAGIC)
		return jerr_file(SHMBUS_ECORRUPT, 0, j, f, ".seg",
				 "bad magic 0x%016" PRIx64 " at offset 0",
				 h->magic);
	if (h->version < JSEG_VERSION_MIN || h->version > JOURNAL_VERSION)
		return jerr_file(SHMBUS_EVERSION, 0, j, f, ".seg",
				 "format version %u at offset 8, this "
				 "library reads %u to %u",
				 h->version, JSEG_VERSION_MIN,
				 JOURNAL_VERSION);
	if (h->header_crc != crc32c(h, offsetof(struct jseg_header,
					      header_crc), 0))
		return jerr_file(SHMBUS_ECORRUPT, 0, j, f, ".seg",
				 "header fails its CRC (offset 100)");
	if (h->data_off != JSEG_DATA_OFF || h->segment_size != j->seg_size)
		return jerr_file(SHMBUS_ECORRUPT, 0, j, f, ".seg",
				 "data offset %u / segment size %" PRIu64
				 " (offsets 12, 16) differ from the "
				 "journal's %u / %" PRIu64,
				 h->data_off, h->segment_size, JSEG_DATA_OFF,
				 j->seg_size);
	if (h->first_seq != f)
		return jerr_file(SHMBUS_ECORRUPT, 0, j, f, ".seg",
				 "first sequence %" PRIu64 " at offset 24 "
				 "differs from the file's name",
				 h->first_seq);
	if (h->journal_id != j->journal_id) {
		s->foreign = true;
		return jerr_file(SHMBUS_ECORRUPT, 0, j, f, ".seg",
				 "belongs to another journal (id %016" PRIx64
				 " at offset 32, this journal's is %016" PRIx64
				 ")",
				 h->journal_id, j->journal_id);
	}
	s->version = h->version;
	s->chan = h->channel_id;
	s->seq_span = h->version == 1 ? UINT64_MAX : JREC2_SEQ_SPAN;
	jseal_read(j, s, h);
	return 0;
}

/* A file that is not the journal's segment size: a writer extends an
 * unsealed one that was cut short (zeros: recovery then cuts the tail
 * wherever the truncation tore it) once its open is sure, and scans it
 * up to its size until then; anything else is damage, refused before a
 * mapping could SIGBUS. */
static int seg_size_check(shmbus_journal_t *j, struct jseg *s, uint64_t size)
{
	if (size == j->seg_size)
		return 0;
	if (!j->writer || s->sealed || size > j->seg_size)
		return jerr_file(SHMBUS_ECORRUPT, 0, j, s->first_seq, ".seg",
				 "truncated: %" PRIu64 " bytes, the journal's "
				 "segments are %" PRIu64,
				 size, j->seg_size);
	s->file_size = size;
	return 0;
}

/* Segment `first` as its file says: *out, or a lost entry (JLOST_FILE)
 * for a file whose content fails its checks (a header, a size; EIO); an
 * error if the file cannot be looked at now (permission, no descriptor
 * or memory left: a listing that fails, and is tried again), and
 * SHMBUS_ENOENT if it is gone. */
int jseg_load(shmbus_journal_t *j, uint64_t first, struct jseg **out)
{
	struct jseg *s = jseg_new(first);
	if (s == NULL)
		return SHMBUS_ENOMEM;
	char name[40];
	jname(name, first, ".seg");
	struct jseg_header h;
	struct stat st;
	int rc = 0;
	bool damage = false;
	ssize_t got = 0;
	int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = jerr_file(jerrno_code(errno), errno, j, first, ".seg",
			       "open");
	} else if (fstat(fd, &st) != 0) {
		rc = jerr_file(SHMBUS_ESYS, errno, j, first, ".seg", "fstat");
	} else {
		s->ino = (uint64_t)st.st_ino;
		s->fsize = (uint64_t)st.st_size;
		s->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
			      st.st_mtim.tv_nsec;
		damage = true; /* from here: what the file holds */
		if (st.st_size < (off_t)sizeof(h))
			rc = jerr_file(SHMBUS_ECORRUPT, 0, j, first, ".seg",
				       "truncated: %lld bytes, shorter than a "
				       "header",
				       (long long)st.st_size);
		else if ((got = pread(fd, &h, sizeof(h), 0)) !=
			 (ssize_t)sizeof(h)) {
			damage = got >= 0 || errno == EIO;
			rc = jerr_file(damage ? SHMBUS_ECORRUPT : SHMBUS_ESYS,
				       got < 0 ? errno : 0, j, first, ".seg",
				       "reading the header");
		} else if ((rc = seg_check_header(j, s, &h)) == 0) {
			rc = seg_size_check(j, s, (uint64_t)st.st_size);
		} else {
			/* all zeros, the file reserved whole: a header that
			 * never reached the disk (what a machine crash leaves
			 * of one not synced), not one that is wrong */
			static const struct jseg_header zero;
			s->zero_head = !memcmp(&h, &zero, sizeof(h)) &&
				       (uint64_t)st.st_size == j->seg_size;
		}
	}
	if (fd >= 0)
		close(fd);
	if (rc && damage) {
		s->lost = JLOST_FILE;
		s->lost_code = rc;
		s->why = strdup(shmbus_errmsg());
		s->sealed = false;
		if (s->why == NULL)
			rc = shmbus_seterr(SHMBUS_ENOMEM,
					   "journal: out of memory");
		else
			rc = 0;
	} else if (rc == 0 && !s->seal_bad) {
		rc = s->sealed ? 0 : jsparse_init(j, &s->live);
	} else if (rc == 0) {
		/* a reader's copy may have caught a live writer's seal half
		 * written: the mapping, acquired, tells (a writer holds the
		 * lock: nobody seals under it) */
		if (!j->writer && jseg_map(j, s) == 0)
			jseal_read(j, s, (const struct jseg_header *)s->map);
		rc = s->sealed ? 0 : jsparse_init(j, &s->live);
	}
	if (rc) {
		jseg_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int jseg_add(shmbus_journal_t *j, struct jseg *s)
{
	if (j->nsegs == j->cap_segs) {
		uint32_t cap = j->cap_segs ? j->cap_segs * 2 : 16;
		struct jseg **n = realloc(j->segs, cap * sizeof(*n));
		if (n == NULL)
			return shmbus_seterr(SHMBUS_ENOMEM,
					     "journal: out of memory");
		j->segs = n;
		j->cap_segs = cap;
	}
	uint32_t i = j->nsegs;
	while (i > 0 && j->segs[i - 1]->first_seq > s->first_seq) {
		j->segs[i] = j->segs[i - 1];
		i--;
	}
	j->segs[i] = s;
	j->nsegs++;
	if (i + 1 < j->nsegs)
		j->gen++; /* iterators find their segment again */
	return 0;
}

void jseg_drop(shmbus_journal_t *j, uint32_t i)
{
	jseg_free(j->segs[i]);
	memmove(j->segs + i, j->segs + i + 1,
		(j->nsegs - i - 1) * sizeof(*j->segs));
	j->nsegs--;
	j->gen++; /* iterators find their entry again */
}

int jseg_find(const shmbus_journal_t *j, uint64_t seq)
{
	if (j->nsegs == 0)
		return -1;
	uint32_t lo = 0, hi = j->nsegs; /* the answer is in [lo, hi) */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (j->segs[mid]->first_seq <= seq)
			lo = mid;
		else
			hi = mid;
	}
	return (int)lo;
}

/* The control file's first_seq raised to `first`, and on disk before a
 * file below it is unlinked: the damage checks tell retention from loss
 * by it (journal_damage.c), also after a machine crash that kept the
 * unlink and lost a later write-back of this page. */
int jraise_first(shmbus_journal_t *j, uint64_t first)
{
	/* relaxed: readers learn of a removal when the file is gone, and
	 * load this after the system calls that told them */
	if (atomic_load_explicit(&j->ctl->first_seq, memory_order_relaxed) >=
	    first)
		return 0;
	atomic_store_explicit(&j->ctl->first_seq, first, memory_order_relaxed);
	if (j->ctl_fd >= 0 && msync(j->ctl, JCTL_SIZE, MS_SYNC) != 0)
		return jerr_file(SHMBUS_ESYS, errno, j, UINT64_MAX, CTL_NAME,
				 "msync of first_seq before retention "
				 "removes a segment");
	return 0;
}

/* Remove segment i's files and forget it. */
int jseg_remove(shmbus_journal_t *j, uint32_t i)
{
	struct jseg *s = j->segs[i];
	char name[40];
	int rc;
	if (i == 0 && j->nsegs > 1 &&
	    (rc = jraise_first(j, j->segs[1]->first_seq)) != 0)
		return rc;
	jname(name, s->first_seq, ".seg");
	if (s->lost != JLOST_GONE && unlinkat(j->dirfd, name, 0) != 0 &&
	    errno != ENOENT)
		return jerr_file(jerrno_code(errno), errno, j, s->first_seq,
				 ".seg", "unlink");
	jname(name, s->first_seq, ".idx");
	if (s->lost != JLOST_GONE)
		unlinkat(j->dirfd, name, 0);
	if (j->active == s)
		j->active = NULL;
	jseg_drop(j, i);
	return 0;
}

/* "00000000000000000042.seg" -> 42, ".seg" */
bool jseg_name(const char *n, uint64_t *first, const char **ext)
{
	uint64_t v = 0;
	for (int i = 0; i < 20; i++) {
		if (n[i] < '0' || n[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(n[i] - '0');
	}
	*first = v;
	*ext = n + 20;
	return true;
}

DIR *jdir_list(shmbus_journal_t *j)
{
	int fd = dup(j->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		jerr_file(SHMBUS_ESYS, errno, j, UINT64_MAX, NULL, "opendir");
		return NULL;
	}
	rewinddir(d); /* the descriptor is shared with dirfd */
	return d;
}

/* ------------------------------------- a segment's index memory, files */

int jsparse_init(const shmbus_journal_t *j, struct jsparse_acc *a)
{
	memset(a, 0, sizeof(*a));
	/* entries are at least a stride apart */
	a->cap = (uint32_t)((j->seg_size - JSEG_DATA_OFF) / JIDX_STRIDE + 2);
	a->e = malloc(a->cap * sizeof(*a->e));
	a->next = JSEG_DATA_OFF;
	if (a->e == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "journal: out of memory");
	return 0;
}

void jwkeys_free(struct jseg *s)
{
	s->wkeys = NULL; /* the writer's keybuf */
	s->n_wkeys = s->cap_wkeys = 0;
}

void jindex_drop(struct jseg *s)
{
	if (s->idx_map)
		munmap(s->idx_map, s->idx_size);
	free(s->heap_sparse);
	free(s->heap_keys);
	s->idx_map = NULL;
	s->heap_sparse = NULL;
	s->heap_keys = NULL;
	s->sparse = NULL;
	s->n_sparse = 0;
	s->keys = NULL;
	s->n_keys = 0;
}

int jseg_reserve(const shmbus_journal_t *j, const char *tmp, uint64_t first,
		 int *fdp, uint8_t **mapp)
{
	int fd = openat(j->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			j->mode);
	if (fd < 0)
		return jerr_file(errno == EACCES ? SHMBUS_EPERM : SHMBUS_ESYS,
				 errno, j, first, ".seg.tmp", "create");
	int err = fchmod(fd, j->mode) != 0
			  ? errno
			  : posix_fallocate(fd, 0, (off_t)j->seg_size);
	void *m = MAP_FAILED;
	if (err == 0) {
		m = mmap(NULL, j->seg_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd, 0);
		if (m == MAP_FAILED)
			err = errno;
		else
			jwriter_advice(j, m);
	}
	if (err == 0) {
		*fdp = fd;
		*mapp = m;
		return 0;
	}
	close(fd);
	unlinkat(j->dirfd, tmp, 0);
	return jerr_file(err == ENOSPC || err == EDQUOT ? SHMBUS_ENOMEM
							: SHMBUS_ESYS,
			 err, j, first, ".seg.tmp",
			 "reserving %" PRIu64 " bytes for a segment",
			 j->seg_size);
}
