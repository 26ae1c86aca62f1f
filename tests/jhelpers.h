/* Shared helpers of the journal tests: directories on disk, payloads that
 * say which record they belong to, file surgery. */
#ifndef SHMBUS_TEST_JHELPERS_H
#define SHMBUS_TEST_JHELPERS_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmbus/journal.h>

/* An assertion for loops of millions: sent to the runner only when it
 * fails (ctest runs with --full-stats, which reports every passing one).
 * The including file includes <criterion/criterion.h>. */
#define QUIET(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			cr_assert_fail(__VA_ARGS__);                           \
	} while (0)

/* A fresh directory on disk (not tmpfs: /var/tmp, or $SHMBUS_TEST_DIR);
 * the journal goes into its subdirectory "j". */
static inline const char *jt_tmpdir(char out[256])
{
	const char *base = getenv("SHMBUS_TEST_DIR");
	snprintf(out, 256, "%s/shmbus-jt.XXXXXX", base ? base : "/var/tmp");
	if (mkdtemp(out) == NULL) {
		perror(out);
		abort();
	}
	return out;
}

static inline int jt_rm1(const char *p, const struct stat *st, int flag,
			 struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static inline void jt_rmrf(const char *path)
{
	nftw(path, jt_rm1, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory for a test (jt_tmpdir) and its journal's, DIR/j. */
static inline void jt_dirs(char dir[256], char jdir[300])
{
	jt_tmpdir(dir);
	snprintf(jdir, 300, "%s/j", dir);
}

/* A read-only handle of the journal in dir, or NULL (shmbus_errmsg). */
static inline shmbus_journal_t *jt_open_ro(const char *dir)
{
	shmbus_journal_opts_t ro = {.flags = SHMBUS_JOURNAL_READONLY};
	shmbus_journal_t *j;
	return shmbus_journal_open(dir, &ro, &j) == 0 ? j : NULL;
}

/* Payload bytes that depend on the sequence and the position. */
static inline uint8_t jt_byte(uint64_t seq, uint32_t i)
{
	return (uint8_t)(seq * 131u + i * 7u + (seq >> 9) + (i >> 8));
}

static inline void jt_fill(uint8_t *buf, uint64_t seq, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		buf[i] = jt_byte(seq, i);
}

static inline int jt_same(const void *data, uint64_t seq, uint32_t len)
{
	const uint8_t *b = data;
	for (uint32_t i = 0; i < len; i++)
		if (b[i] != jt_byte(seq, i))
			return 0;
	return 1;
}

/* A journal file's path: DIR/j/NAME */
static inline const char *jt_path(char out[512], const char *dir,
				  const char *name)
{
	snprintf(out, 512, "%s/j/%s", dir, name);
	return out;
}

static inline const char *jt_seg(char out[512], const char *dir,
				 uint64_t first, const char *ext)
{
	char name[48];
	snprintf(name, sizeof(name), "%020" PRIu64 "%s", first, ext);
	return jt_path(out, dir, name);
}

/* The first sequences of the segment files in the journal directory
 * jdir, sorted; how many (at most max). */
static inline uint32_t jt_seg_firsts(const char *jdir, uint64_t *firsts,
				     uint32_t max)
{
	DIR *d = opendir(jdir);
	uint32_t n = 0;
	if (d == NULL) {
		perror(jdir);
		abort();
	}
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (strlen(e->d_name) == 24 && !strcmp(e->d_name + 20, ".seg") &&
		    n < max)
			firsts[n++] = strtoull(e->d_name, NULL, 10);
	closedir(d);
	for (uint32_t i = 1; i < n; i++) /* insertion sort: a few dozen */
		for (uint32_t k = i; k > 0 && firsts[k - 1] > firsts[k]; k--) {
			uint64_t t = firsts[k];
			firsts[k] = firsts[k - 1];
			firsts[k - 1] = t;
		}
	return n;
}

/* Overwrite n bytes of a file at off. */
static inline void jt_poke(const char *path, uint64_t off, const void *p,
			   size_t n)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0 || pwrite(fd, p, n, (off_t)off) != (ssize_t)n) {
		perror(path);
		abort();
	}
	close(fd);
}

static inline void jt_flip(const char *path, uint64_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	if (fd < 0 || pread(fd, &b, 1, (off_t)off) != 1) {
		perror(path);
		abort();
	}
	b ^= mask;
	if (pwrite(fd, &b, 1, (off_t)off) != 1)
		abort();
	close(fd);
}

static inline void jt_copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	static char buf[1 << 16];
	ssize_t n;
	if (in < 0 || out < 0)
		abort();
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			abort();
	close(in);
	close(out);
}

/* Copy directory `from` to `to`, made anew (files only). */
static inline void jt_copy_dir(const char *from, const char *to)
{
	jt_rmrf(to);
	mkdir(to, 0700);
	DIR *d = opendir(from);
	struct dirent *e;
	if (d == NULL)
		abort();
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char a[800], b[800];
		snprintf(a, sizeof(a), "%s/%s", from, e->d_name);
		snprintf(b, sizeof(b), "%s/%s", to, e->d_name);
		jt_copy_file(a, b);
	}
	closedir(d);
}

/* Copy directory src/j to dst/j (files only). */
static inline void jt_copy(const char *src, const char *dst)
{
	char from[512], to[512];
	snprintf(from, sizeof(from), "%s/j", src);
	snprintf(to, sizeof(to), "%s/j", dst);
	jt_copy_dir(from, to);
}

/* Record i of the v1 fixture (tests/data/journal-v1, made by
 * tests/data/make_journal_v1.c with the version 1 writer): sequences with
 * gaps, time stamps not monotonic, keys, types, origins, flags and
 * producers zero and not, payloads of 0 to 2000 bytes (jt_fill). */
#define JT_V1_RECORDS 700u
static inline void jt_v1_rec(uint32_t i, shmbus_record_t *r, uint32_t *type,
			     uint8_t *buf)
{
	memset(r, 0, sizeof(*r));
	r->seq = 10 + i + 2 * (i / 97);
	r->timestamp = 1000000 + (uint64_t)i * 1000 - (i % 5 == 3 ? 1500 : 0);
	r->key = i % 3 ? i % 11 + 1 : 0;
	r->origin = i % 6 == 0 ? r->seq + 5000 : r->seq;
	r->flags = i % 7 == 0 ? 1 : 0;
	r->producer = i % 5 == 0 ? 42 + i : 0;
	r->len = i % 13 == 0 ? 0 : i % 50 == 1 ? 2000 : (i * 37) % 300 + 1;
	*type = i % 4 ? 7 : 9;
	jt_fill(buf, r->seq, r->len);
	r->data = buf;
}

/* ------------------------------------- processes around a journaled bus
 * (these need helpers.h, included before this file) */
#ifdef SHMBUS_TEST_HELPERS_H
#include <stdatomic.h>

/* A suite's teardown: its directory, and the bus it made, gone. */
static inline void jt_cleanup(const char *dir, const char *bus_name)
{
	jt_rmrf(dir);
	if (bus_name[0])
		shmbus_unlink(bus_name);
}

/* In a child process: channel `name` of bus `bus_name`. */
static inline shmbus_channel_t *jt_child_channel(const char *bus_name,
						 const char *name,
						 shmbus_t **bus)
{
	shmbus_channel_t *ch = NULL;
	CHECK_OK(shmbus_open(bus_name, NULL, bus));
	CHECK_OK(shmbus_channel_open(*bus, name, NULL, &ch));
	return ch;
}

/* A journaler process (default name "journal", 64 KiB segments, block
 * wait) on channel `name`, journaling into jdir until *stop; it stops
 * polling while *pause (pause may be NULL). */
static inline pid_t jt_start_journaler(const char *bus_name, const char *name,
				       const char *jdir, atomic_int *stop,
				       atomic_int *pause)
{
	pid_t pid = test_fork();
	if (pid)
		return pid;
	shmbus_t *bus;
	shmbus_channel_t *ch = jt_child_channel(bus_name, name, &bus);
	shmbus_journal_opts_t jo = {.segment_size = 65536};
	shmbus_journal_attach_opts_t ao = {.wait = SHMBUS_WAIT_BLOCK,
					   .journal = &jo};
	shmbus_journal_t *j;
	CHECK_OK(shmbus_journal_attach(ch, jdir, &ao, &j));
	while (!atomic_load(stop)) {
		if (pause && atomic_load(pause)) {
			usleep(1000);
			continue;
		}
		if (shmbus_journal_poll(j, 512) <= 0)
			shmbus_journal_wait(j, 2000000);
	}
	CHECK_OK(shmbus_journal_close(j));
	shmbus_close(bus);
	_exit(0);
}
#endif

#endif
