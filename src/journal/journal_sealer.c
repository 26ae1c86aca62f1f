/*
 * The writer's sealer: a thread that sorts a sealed segment's key index
 * and writes its index file while the writer goes on in the next segment.
 *
 * Sealing in the appending thread stopped it for 14-41 ms at every 64 MiB
 * segment of 64-byte records (half a million keys to sort, 9 MB to write):
 * a journaler that producers of a sync channel wait for cannot stop that
 * long, and the sort was a tenth of the append time. The index is derived
 * data: until its file is written (or if writing it fails), readers build
 * it from the sealed segment, as they do for a missing file.
 *
 * One job at a time: the keys the writer noted (the keybuf array it fills
 * is handed over, and it goes on in the other) and the sparse entries. The
 * writer waits for the last job before it hands the next, before it reads
 * or rewrites an index itself, before retention and at close.
 *
 * It starts the disk writing what a buffered writer flushed (opts'
 * writeback_bytes): sync_file_range blocks while the device's queue is
 * full, 80-390 ms in the appending thread on this project's VM, so the
 * writer only queues the range (with its own descriptor of the file, a
 * dup, since the writer closes its own at the seal) and goes on.
 *
 * For a writer that appends through the mapping, it touches the pages
 * ahead of the writer (MADV_POPULATE_WRITE): the page faults and the
 * kernel's zero-fill of each new page happen here, not in the appending
 * thread, as Chronicle Queue's pretoucher does. (The writer's own faults,
 * with read-ahead, also stopped it for 25-38 ms where the kernel put
 * large folios together: read-ahead is off on a writer's mapping.)
 *
 * It also reserves and maps the next segment's file ahead of the roll (a
 * fallocate of the whole segment, 0.3-0.6 ms of the append that filled
 * one), once the journal has filled a segment: the file waits under a
 * temporary name that an open cleans up, and the roll writes its header
 * and renames it into place.
 *
 * Under policy NONE a second thread, the syncer, gives synced_seq a floor:
 * each segment, once sealed, is fdatasynced (records, header, seal), then
 * the directory, and synced_seq is raised past its records, so that a
 * machine crash can take only what the active segment and the segments
 * sealed last held (docs/journal.md, "Damage", relies on it). A thread of
 * its own, because an fdatasync of a segment can take long and the writer
 * waits for the sealer's other jobs; the writer never waits for it: it
 * posts the newest sealed segment (a newer one replaces one not started:
 * one pass syncs every segment from where the last ended) and goes on.
 * The data would reach the disk within the kernel's write-back delay
 * anyway; the syncer only has it done sooner, for files the writer no
 * longer writes (their write-back write-protects no page it touches, and
 * takes no lock of the file it appends to). A failed fdatasync is sticky:
 * the writer's next seal and sync report it (after a write-back error the
 * page cache's state is not known, and a later fdatasync may succeed).
 *
 * The threads block every signal (they are the application's) and belong
 * to the process that opened the handle.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "journal_int.h"

#define WB_SLOTS 16u

struct jsealer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool pending; /* a job handed and not done */
	/* write-back to start: a ring; a full one drops the request (a
	 * hint; the kernel or the next sync writes those pages) */
	struct {
		int fd; /* ours: a dup */
		uint64_t from, to;
	} wb[WB_SLOTS];
	uint32_t wb_head, wb_tail;
	/* pages to touch ahead of a mapped writer (one range: a newer
	 * request replaces an older one still waiting) */
	uint8_t *touch_at;
	size_t touch_len;
	bool touching; /* a range is being touched, outside mu */
	bool no_populate; /* the kernel has no MADV_POPULATE_WRITE */
	bool want_next; /* reserve the next segment's file */
	int next_fd;	/* reserved and mapped, not taken yet; or -1 */
	uint8_t *next_map;
	/* the job: written by the writer under mu while !pending, read by
	 * the thread after it saw pending under mu */
	uint64_t first_seq;
	struct jindex ix; /* keys: in the writer's keybuf; sparse: ours */
	struct jidx_key *tmp;
	/* the syncer (policy NONE), under mu: sync the segment files named
	 * from sync_from up to sync_last, then raise synced_seq to
	 * sync_upto; done: the synced_seq it raised last */
	pthread_t syncer;
	pthread_cond_t scv;
	bool syncer_on;
	uint64_t sync_from, sync_last, sync_upto, sync_done;
	int sync_err; /* an fdatasync's errno: sticky */
};

static void *sealing(void *arg)
{
	shmbus_journal_t *j = arg;
	struct jsealer *z = j->sealer;
	pthread_mutex_lock(&z->mu);
	for (;;) {
		while (z->wb_head == z->wb_tail && !z->pending &&
		       !z->want_next && z->touch_len == 0 && !z->stop)
			pthread_cond_wait(&z->cv, &z->mu);
		/* first what the writer may wait for: the next file (a
		 * roll), the pages it is about to write, the index (the
		 * next hand-off); write-back, which can block for long in
		 * the device's queue, last */
		if (z->want_next) {
			pthread_mutex_unlock(&z->mu);
			char tmp[48];
			jname(tmp, JSEG_PREPARED, ".seg.tmp");
			int fd = -1;
			uint8_t *m = NULL;
			/* a failure (a full disk) is the roll's to report:
			 * it reserves the file itself */
			if (jseg_reserve(j, tmp, JSEG_PREPARED, &fd, &m) != 0)
				fd = -1;
			pthread_mutex_lock(&z->mu);
			z->next_fd = fd;
			z->next_map = m;
			z->want_next = false;
			pthread_cond_broadcast(&z->cv);
		} else if (z->touch_len) {
			uint8_t *at = z->touch_at;
			size_t len = z->touch_len;
			z->touch_len = 0;
			z->touching = true;
			pthread_mutex_unlock(&z->mu);
			bool unsupported =
				madvise(at, len, MADV_POPULATE_WRITE) != 0 &&
				errno == EINVAL;
			pthread_mutex_lock(&z->mu);
			z->no_populate |= unsupported;
			z->touching = false;
			pthread_cond_broadcast(&z->cv);
		} else if (z->pending) {
			pthread_mutex_unlock(&z->mu);
			/* a failure leaves no index file: readers build the
			 * index from the segment, the writer writes it again
			 * on use */
			(void)jindex_write_noted(j, z->first_seq, &z->ix,
						 z->tmp);
			free(z->ix.sparse);
			pthread_mutex_lock(&z->mu);
			z->ix.sparse = NULL;
			z->pending = false;
			pthread_cond_broadcast(&z->cv);
		} else if (z->wb_head != z->wb_tail) {
			uint32_t i = z->wb_head++ % WB_SLOTS;
			int fd = z->wb[i].fd;
			uint64_t from = z->wb[i].from, to = z->wb[i].to;
			pthread_mutex_unlock(&z->mu);
			/* a hint: a write-back error is reported by the
			 * next sync */
			(void)sync_file_range(fd, (off_t)from, (off_t)(to - from),
					      SYNC_FILE_RANGE_WRITE);
			close(fd);
			pthread_mutex_lock(&z->mu);
		} else {
			break; /* stopped, nothing left */
		}
	}
	pthread_mutex_unlock(&z->mu);
	return NULL;
}

/* The segment files named from..last, then the directory: 0, an errno
 * of an fdatasync, or -1 if it could not look now (no descriptor left:
 * the next job tries again). Its own descriptor of the directory: the
 * writer's is shared with listings that move its offset. */
static int sync_named(shmbus_journal_t *j, uint64_t from, uint64_t last)
{
	int dfd = openat(j->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d == NULL) {
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	int err = 0;
	for (struct dirent *e; err == 0 && (e = readdir(d)) != NULL;) {
		uint64_t first;
		const char *ext;
		if (!jseg_name(e->d_name, &first, &ext) ||
		    strcmp(ext, ".seg") != 0 || first < from || first > last)
			continue;
		int fd = openat(dfd, e->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			err = errno == ENOENT ? 0 : -1; /* retention's */
			continue;
		}
		if (fdatasync(fd) != 0)
			err = errno;
		close(fd);
	}
	if (err == 0 && fsync(dfd) != 0)
		err = errno;
	closedir(d);
	return err;
}

static void *syncing(void *arg)
{
	shmbus_journal_t *j = arg;
	struct jsealer *z = j->sealer;
	uint64_t tried = 0; /* a job that could not look: wait for the next */
	pthread_mutex_lock(&z->mu);
	for (;;) {
		while (!z->stop && (z->sync_upto <= z->sync_done ||
				    z->sync_upto == tried))
			pthread_cond_wait(&z->scv, &z->mu);
		if (z->stop)
			break;
		uint64_t from = z->sync_from, last = z->sync_last;
		uint64_t upto = z->sync_upto;
		pthread_mutex_unlock(&z->mu);
		int err = sync_named(j, from, last);
		if (err == 0) {
			/* relaxed: a statement about the disk; a max, as the
			 * writer stores its own (never below ours) */
			uint64_t had = atomic_load_explicit(
				&j->ctl->synced_seq, memory_order_relaxed);
			while (had < upto &&
			       !atomic_compare_exchange_weak_explicit(
				       &j->ctl->synced_seq, &had, upto,
				       memory_order_relaxed,
				       memory_order_relaxed))
				;
		}
		pthread_mutex_lock(&z->mu);
		if (err > 0) {
			z->sync_err = err;
			break;
		}
		tried = err ? upto : 0;
		if (err == 0) {
			z->sync_done = upto;
			z->sync_from = last + 1;
		}
	}
	pthread_mutex_unlock(&z->mu);
	return NULL;
}

static bool disabled; /* jsealer_disable: written before any writer */

void jsealer_disable(void)
{
	disabled = true;
}

static struct jsealer *start(shmbus_journal_t *j)
{
	if (disabled)
		return NULL;
	struct jsealer *z = calloc(1, sizeof(*z));
	if (z == NULL)
		return NULL;
	pthread_mutex_init(&z->mu, NULL);
	pthread_cond_init(&z->cv, NULL);
	pthread_cond_init(&z->scv, NULL);
	z->next_fd = -1;
	j->sealer = z;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&z->thread, NULL, sealing, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err == 0)
		return z;
	pthread_cond_destroy(&z->scv);
	pthread_cond_destroy(&z->cv);
	pthread_mutex_destroy(&z->mu);
	free(z);
	j->sealer = NULL;
	return NULL;
}

void jsealer_wait(shmbus_journal_t *j)
{
	struct jsealer *z = j->sealer;
	if (z == NULL)
		return;
	pthread_mutex_lock(&z->mu);
	z->touch_len = 0; /* not after a segment is gone */
	while (z->pending || z->touching)
		pthread_cond_wait(&z->cv, &z->mu);
	pthread_mutex_unlock(&z->mu);
}

bool jsealer_touch(shmbus_journal_t *j, uint8_t *at, size_t len)
{
	struct jsealer *z = j->sealer ? j->sealer : start(j);
	if (z == NULL)
		return false;
	pthread_mutex_lock(&z->mu);
	bool can = !z->no_populate;
	if (can) {
		z->touch_at = at;
		z->touch_len = len;
		pthread_cond_signal(&z->cv);
	}
	pthread_mutex_unlock(&z->mu);
	return can;
}

bool jsealer_take(shmbus_journal_t *j, struct jseg *s)
{
	if (s->wkeys == NULL || s->n_wkeys != s->count || s->live.e == NULL)
		return false; /* not noted whole: jindex_seal walks it */
	struct jsealer *z = j->sealer ? j->sealer : start(j);
	if (z == NULL)
		return false; /* no thread: sealed in the writer's */
	jsealer_wait(j);
	pthread_mutex_lock(&z->mu);
	z->first_seq = s->first_seq;
	z->ix = (struct jindex){.sparse = s->live.e,
				.n_sparse = s->live.n,
				.keys = s->wkeys,
				.n_keys = s->n_wkeys,
				.end_off = s->end_off};
	z->tmp = jkeybuf_tmp(j);
	z->pending = true;
	pthread_cond_signal(&z->cv);
	pthread_mutex_unlock(&z->mu);
	memset(&s->live, 0, sizeof(s->live));
	jwkeys_handed(j, s);
	return true;
}

void jsealer_writeback(shmbus_journal_t *j, int fd, uint64_t from,
		       uint64_t to)
{
	struct jsealer *z = j->sealer ? j->sealer : start(j);
	if (z == NULL)
		return;
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (own < 0)
		return;
	pthread_mutex_lock(&z->mu);
	bool full = z->wb_tail - z->wb_head == WB_SLOTS;
	if (!full) {
		uint32_t i = z->wb_tail++ % WB_SLOTS;
		z->wb[i].fd = own;
		z->wb[i].from = from;
		z->wb[i].to = to;
		pthread_cond_signal(&z->cv);
	}
	pthread_mutex_unlock(&z->mu);
	if (full)
		close(own);
}

void jsealer_prepare(shmbus_journal_t *j)
{
	struct jsealer *z = j->sealer ? j->sealer : start(j);
	if (z == NULL)
		return; /* each roll reserves its own file */
	pthread_mutex_lock(&z->mu);
	if (z->next_fd < 0 && !z->want_next) {
		z->want_next = true;
		pthread_cond_signal(&z->cv);
	}
	pthread_mutex_unlock(&z->mu);
}

bool jsealer_next(shmbus_journal_t *j, int *fd, uint8_t **map)
{
	struct jsealer *z = j->sealer;
	if (z == NULL)
		return false;
	pthread_mutex_lock(&z->mu);
	while (z->want_next) /* under way: no slower than doing it here */
		pthread_cond_wait(&z->cv, &z->mu);
	bool took = z->next_fd >= 0;
	if (took) {
		*fd = z->next_fd;
		*map = z->next_map;
		z->next_fd = -1;
		z->next_map = NULL;
	}
	pthread_mutex_unlock(&z->mu);
	return took;
}

void jsealer_durable(shmbus_journal_t *j, uint64_t from, uint64_t last,
		     uint64_t upto)
{
	struct jsealer *z = j->sealer ? j->sealer : start(j);
	if (z == NULL)
		return; /* no floor: synced_seq stays where it was */
	pthread_mutex_lock(&z->mu);
	if (!z->syncer_on) {
		z->sync_from = from;
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		z->syncer_on =
			pthread_create(&z->syncer, NULL, syncing, j) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (upto > z->sync_upto) {
		z->sync_last = last;
		z->sync_upto = upto;
		pthread_cond_signal(&z->scv);
	}
	pthread_mutex_unlock(&z->mu);
}

int jsealer_sync_error(shmbus_journal_t *j)
{
	struct jsealer *z = j->sealer;
	if (z == NULL)
		return 0;
	pthread_mutex_lock(&z->mu);
	int err = z->sync_err;
	pthread_mutex_unlock(&z->mu);
	return err;
}

void jsealer_stop(shmbus_journal_t *j)
{
	struct jsealer *z = j->sealer;
	if (z == NULL)
		return;
	pthread_mutex_lock(&z->mu);
	z->stop = true; /* the jobs under way are finished first */
	pthread_cond_broadcast(&z->cv);
	pthread_cond_broadcast(&z->scv);
	pthread_mutex_unlock(&z->mu);
	pthread_join(z->thread, NULL); /* the write-backs queued started */
	if (z->syncer_on) /* a sync under way ends; one waiting is dropped */
		pthread_join(z->syncer, NULL);
	if (z->next_fd >= 0) { /* reserved and never used */
		char tmp[48];
		jname(tmp, JSEG_PREPARED, ".seg.tmp");
		munmap(z->next_map, j->seg_size);
		close(z->next_fd);
		unlinkat(j->dirfd, tmp, 0);
	}
	pthread_cond_destroy(&z->scv);
	pthread_cond_destroy(&z->cv);
	pthread_mutex_destroy(&z->mu);
	free(z);
	j->sealer = NULL;
}
