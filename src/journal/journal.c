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
#define MIN_SEGMENT (64ull << 10)
#define MAX_SEGMENT (1ull << 30) /* CRC lengths are ints */
#define DEFAULT_INTERVAL_US 1000u
#define CTL_NAME "journal.ctl"

uint64_t jrealtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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

/* ---------------------------------------------------------- failpoints */

static void failpoint_arm(shmbus_journal_t *j)
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
static int ctl_take(shmbus_journal_t *j)
{
	int rc = ctl_check(j, j->ctl);
	if (rc)
		return rc;
	j->journal_id = j->ctl->journal_id;
	j->seg_size = j->ctl->segment_size; /* a journal keeps its size */
	return ctl_channel(j);
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
	int rc = ctl_take(j);
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
			return ctl_take(j);
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
static int seg_load(shmbus_journal_t *j, uint64_t first, struct jseg **out)
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
static int seg_remove(shmbus_journal_t *j, uint32_t i)
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
		rc = seg_load(j, first, &s);
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
			rc = seg_remove(j, i--);
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
	failpoint_arm(j);
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
		journaler_close(j);
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

/* ---------------------------------------------------- retention, stats */

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
		rc = seg_remove(j, 0);
		j->st.removed += rc == 0;
	}
	if (jsync_policy(j))
		fsync(j->dirfd);
	return rc ? rc : (int)n;
}

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
