/*
 * A fuzz target over the journal's reader and recovery: segment and index
 * files as written by anyone.
 *
 * Input: one selector byte, a 32-bit little-endian length n, the first n
 * bytes of a segment file (at most its 64 KiB; the rest is zeros, as a
 * writer leaves it), then the bytes of its index file. They are planted
 * next to a valid control file that announces the segment, and opened
 * through the public API, read-only or as the writer (which recovers the
 * tail); whatever opens is read every way there is (everything, by key,
 * from a time, from a sequence, verify) and, by a writer, appended to
 * until it seals the segment and rolls. Any error code is fine; a crash, a
 * hang, an access out of bounds is not. Selector bits stamp what a mutated
 * byte cannot match (the journal's id, CRCs), so that inputs get past
 * those checks to the ones behind them.
 *
 * Fast enough for a million inputs in minutes: the journal is a directory
 * on tmpfs (/dev/shm, or $SHMBUS_TEST_DIR), one per process, emptied
 * between inputs; inputs are as long as their non-zero bytes; and writers
 * do their sealer thread's jobs themselves (jsealer_disable: the same
 * index writing and file reserving, without a thread to start and hand
 * off to for every short-lived handle).
 *
 * One source, built two ways (tests/CMakeLists.txt), as fuzz_open.c:
 *   fuzz_journal        -DSHMBUS_LIBFUZZER, -fsanitize=fuzzer (SHMBUS_FUZZ)
 *   fuzz_journal_plain  runs files and directories through the same body:
 *                       the corpus as a test of the suite
 * and both write a starting corpus with --make-corpus DIR: real segments
 * and indexes made by this build, and damage to their records and indexes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmbus/journal.h>

#include "journal_int.h"

#define SEG (64u << 10)	     /* the smallest segment size */
#define IDX_MAX (256u << 10) /* index bytes past it are ignored */
#define IN_HDR 5u	     /* selector and n */

/* The selector byte. */
#define SEL_STAMP 0x01u	  /* segment and index: journal id, header CRC */
#define SEL_SEAL 0x02u	  /* the seal block's CRC */
#define SEL_WRITER 0x04u  /* open as the writer (recovery cuts, seals) */
#define SEL_INDEX 0x08u	  /* the bytes after the segment's: its .idx */
#define SEL_BODY 0x10u	  /* the index's body CRC */
#define SEL_RECORDS 0x20u /* every framed record's CRC */
#define SEL_BUFFERED 0x40u /* the writer is SHMBUS_JOURNAL_BUFFERED */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char root[256];	   /* ours, BASE/shmbus-fj.PID; the journal: j */
static char jdir[300];
static _Alignas(64) uint8_t ctl[JCTL_SIZE]; /* a valid control file */
static int ctl_fd = -1; /* jdir's, rewritten for each input */
static uint64_t journal_id;
static volatile uint64_t checksum; /* keeps the reads */
/* inputs whose read-only handle read a record, and whose sealed segment
 * was read by key through its index file (the plain driver's check) */
static struct {
	uint64_t ro_read, index_read;
} counts;

static void die(const char *what)
{
	fprintf(stderr, "fuzz_journal: %s: %s (%s)\n", what, shmbus_errmsg(),
		strerror(errno));
	abort();
}

static void write_file(const char *name, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", jdir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, p, n) != (ssize_t)n)
		die(path);
	close(fd);
}

/* Every file of the journal directory dir but `keep` (may be NULL);
 * then the directory and its parent, if rmdirs. */
static void clear_dir(const char *dir, const char *keep, bool rmdirs)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		char f[800];
		snprintf(f, sizeof(f), "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.' &&
		    (keep == NULL || strcmp(e->d_name, keep) != 0))
			unlink(f);
	}
	if (d)
		closedir(d);
	if (rmdirs) {
		rmdir(dir);
		char *slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
			rmdir(dir);
			*slash = '/';
		}
	}
}

/* A new, empty journal in jdir, open as its writer. */
static shmbus_journal_t *fresh_journal(void)
{
	clear_dir(jdir, NULL, false);
	shmbus_journal_opts_t o = {.segment_size = SEG};
	shmbus_journal_t *j;
	if (shmbus_journal_open(jdir, &o, &j))
		die("a new journal");
	return j;
}

/* A fresh journal in jdir: its control file is every input's (the
 * library never replaces one that exists: it is kept, and rewritten). */
static void template_ctl(void)
{
	shmbus_journal_close(fresh_journal());
	char path[400];
	snprintf(path, sizeof(path), "%s/journal.ctl", jdir);
	if (ctl_fd >= 0)
		close(ctl_fd);
	ctl_fd = open(path, O_RDWR | O_CLOEXEC);
	if (ctl_fd < 0 ||
	    pread(ctl_fd, ctl, sizeof(ctl), 0) != (ssize_t)sizeof(ctl))
		die("control file");
	memcpy(&journal_id, ctl + offsetof(struct jctl, journal_id), 8);
}

/* Directories of runs that died (a crash skips the clean-up): named by
 * a process that is gone. */
static void sweep_dead_runs(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "shmbus-fj.", 10) != 0)
			continue;
		char *end;
		long pid = strtol(e->d_name + 10, &end, 10);
		if (end == e->d_name + 10 || *end != '\0' || pid <= 0 ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char dir[600];
		snprintf(dir, sizeof(dir), "%s/%s/j", base, e->d_name);
		clear_dir(dir, NULL, true);
	}
	if (d)
		closedir(d);
}

/* Once: our directory, a control file from a real journal, and no
 * sealer threads. */
static void setup(void)
{
	if (root[0])
		return;
	const char *base = getenv("SHMBUS_TEST_DIR");
	if (base == NULL)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/var/tmp";
	sweep_dead_runs(base);
	snprintf(root, sizeof(root), "%s/shmbus-fj.%d", base, (int)getpid());
	snprintf(jdir, sizeof(jdir), "%s/j", root);
	if (mkdir(root, 0700) != 0 && errno != EEXIST)
		die(root);
	jsealer_disable();
	template_ctl();
}

static void cleanup(void)
{
	if (root[0])
		clear_dir(jdir, NULL, true);
}

/* ------------------------------------------------------------ reading */

/* The records read (up to a bound). */
static int read_query(shmbus_journal_t *j, const shmbus_journal_query_t *q)
{
	shmbus_journal_iter_t *it;
	if (shmbus_journal_iter_open(j, q, &it))
		return 0;
	shmbus_journal_entry_t e;
	int rc, n = 0, read = 0;
	while ((rc = shmbus_journal_iter_next(it, &e)) != 0 && n++ < 100000) {
		read += rc == 1;
		if (rc == 1 && e.rec.len)
			checksum += ((const uint8_t *)e.rec.data)[e.rec.len - 1];
		else if (rc < 0)
			checksum += strlen(shmbus_errmsg());
	}
	shmbus_journal_iter_close(it);
	return read;
}

static void use(shmbus_journal_t *j, bool writer)
{
	shmbus_journal_query_t all = {.flags = SHMBUS_JOURNAL_SKIP_CORRUPT};
	counts.ro_read += read_query(j, &all) > 0 && !writer;
	shmbus_journal_query_t q = {.key = 3,
				    .flags = SHMBUS_JOURNAL_BY_KEY |
					     SHMBUS_JOURNAL_SKIP_CORRUPT};
	int by_key = read_query(j, &q);
	q = (shmbus_journal_query_t){.from_time = 1500,
				     .flags = SHMBUS_JOURNAL_BY_TIME};
	read_query(j, &q);
	q = (shmbus_journal_query_t){.from_seq = 20, .to_seq = 40};
	read_query(j, &q);
	shmbus_journal_verify(j);
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	checksum += st.end_seq;
	counts.index_read += by_key > 0 && j->nsegs && j->segs[0]->idx_map;
	if (!writer)
		return;
	/* one record after the recovered ones; if they were in an unsealed
	 * segment, one that fills it to its last byte and one more: it is
	 * sealed (its index from what recovery noted), the next one made */
	static const uint8_t zeros[SEG];
	const struct jseg *recovered = j->active;
	shmbus_journal_append(j, SHMBUS_JOURNAL_NEXT, 1, 1, 3, "abc", 3);
	if (recovered && j->active == recovered) {
		/* the filler's header, in the recovered segment's format */
		struct jrec f = {.type = 1, .key = 3};
		uint64_t hsz = jrec_hsz_of(recovered->version,
					   recovered->chan, &f);
		if (j->end_off <= SEG - hsz)
			shmbus_journal_append(
				j, SHMBUS_JOURNAL_NEXT, 2, 1, 3, zeros,
				(uint32_t)(SEG - j->end_off - hsz));
		shmbus_journal_append(j, SHMBUS_JOURNAL_NEXT, 3, 1, 4, "x", 1);
	}
	read_query(j, &q);
}

/* ------------------------------------------------------------- target */

/* The header of the record at seg + off decoded, in the format of seg's
 * header (whatever it says: a version it does not have reads as 2);
 * false if it does not fit. */
static bool frame_at(const uint8_t *seg, uint64_t off, struct jrec *r)
{
	struct jseg_header h;
	memcpy(&h, seg, sizeof(h));
	uint32_t v = h.version == 1 ? 1 : 2;
	if (off + jrec_hmin(v) > SEG ||
	    off + jrec_hsz(v, seg + off) > SEG)
		return false;
	jrec_decode(v, h.first_seq, h.channel_id, seg + off, r);
	return r->len <= SEG - off - r->hsz;
}

/* Each framed record's CRC, as far as the frames chain (SEL_RECORDS). */
static void stamp_records(uint8_t *seg)
{
	struct jrec r;
	for (uint64_t off = JSEG_DATA_OFF; frame_at(seg, off, &r);) {
		uint32_t m, crc = jrec_crc(seg + off, r.hsz, r.len);
		memcpy(&m, seg + off, 4);
		if (m != JREC_MARKER)
			break;
		memcpy(seg + off + 4, &crc, 4);
		off += jrec_span(r.hsz, r.len);
	}
}

/* The index's journal id and CRCs, as the selector says. */
static void stamp_index(uint8_t *idx, size_t n, uint8_t sel)
{
	struct jidx_header h;
	if (n < sizeof(h))
		return;
	memcpy(&h, idx, sizeof(h));
	uint64_t body = (uint64_t)h.n_sparse * sizeof(struct jidx_sparse) +
			(h.count <= IDX_MAX ? h.count : IDX_MAX) *
				sizeof(struct jidx_key);
	if ((sel & SEL_BODY) && body <= n - sizeof(h))
		h.body_crc = crc32c(idx + sizeof(h), body, 0);
	if (sel & SEL_STAMP) {
		h.journal_id = journal_id;
		h.header_crc =
			crc32c(&h, offsetof(struct jidx_header, header_crc), 0);
	}
	memcpy(idx, &h, sizeof(h));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size < IN_HDR)
		return 0;
	uint8_t sel = data[0];
	uint32_t n;
	memcpy(&n, data + 1, sizeof(n));
	data += IN_HDR;
	size -= IN_HDR;
	if (n > SEG)
		n = SEG;
	if (n > size)
		n = (uint32_t)size;
	static _Alignas(64) uint8_t seg[SEG], idx[IDX_MAX];
	memset(seg, 0, sizeof(seg));
	memcpy(seg, data, n);
	size_t idx_size = size - n < IDX_MAX ? size - n : IDX_MAX;
	memcpy(idx, data + n, idx_size);

	struct jseg_header *h = (struct jseg_header *)seg;
	uint64_t first = 0;
	if (sel & SEL_RECORDS)
		stamp_records(seg);
	if (sel & SEL_STAMP) {
		h->journal_id = journal_id;
		h->header_crc =
			crc32c(h, offsetof(struct jseg_header, header_crc), 0);
		first = h->first_seq;
	}
	if (sel & SEL_SEAL)
		h->seal_crc = crc32c(seg + JSEG_SEAL_CRC_FROM,
				     JSEG_SEAL_CRC_TO - JSEG_SEAL_CRC_FROM, 0);
	stamp_index(idx, idx_size, sel);

	clear_dir(jdir, "journal.ctl", false);
	/* the segment announced, as its writer would have: readers list
	 * segments up to it */
	struct jctl *c = (struct jctl *)ctl;
	atomic_store_explicit(&c->seg_first, first, memory_order_relaxed);
	if (pwrite(ctl_fd, ctl, sizeof(ctl), 0) != (ssize_t)sizeof(ctl))
		die("control file");
	char name[48];
	snprintf(name, sizeof(name), "%020llu.seg", (unsigned long long)first);
	write_file(name, seg, SEG);
	if ((sel & SEL_INDEX) && idx_size) {
		snprintf(name, sizeof(name), "%020llu.idx",
			 (unsigned long long)first);
		write_file(name, idx, idx_size);
	}
	bool writer = (sel & SEL_WRITER) != 0;
	shmbus_journal_opts_t o = {
		.flags = !writer		 ? SHMBUS_JOURNAL_READONLY
			 : sel & SEL_BUFFERED ? SHMBUS_JOURNAL_BUFFERED
					      : 0};
	shmbus_journal_t *j;
	int rc = shmbus_journal_open(jdir, &o, &j);
	if (rc) {
		checksum += strlen(shmbus_errmsg());
		return 0;
	}
	use(j, writer);
	shmbus_journal_close(j);
	return 0;
}

/* -------------------------------------------------------------- corpus */

struct sink {
	const char *dir;
	unsigned files;
};

/* An input: the segment without its trailing zeros. */
static void emit(struct sink *k, const char *tag, uint8_t sel,
		 const uint8_t *seg, const uint8_t *idx, size_t idx_size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/jn-%s-%02x", k->dir, tag, sel);
	uint32_t n = SEG;
	while (n > 0 && seg[n - 1] == 0)
		n--;
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		die(path);
	fputc(sel, f);
	fwrite(&n, sizeof(n), 1, f);
	fwrite(seg, 1, n, f);
	if (idx)
		fwrite(idx, 1, idx_size, f);
	if (fclose(f) != 0)
		die(path);
	k->files++;
}

static uint8_t *slurp(const char *path, size_t *size)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		return NULL;
	uint8_t *b = malloc((size_t)st.st_size + 1);
	if (b == NULL || read(fd, b, (size_t)st.st_size) != st.st_size)
		die(path);
	close(fd);
	*size = (size_t)st.st_size;
	return b;
}

enum gen_end {
	GEN_TAIL,   /* unsealed: a crash's tail */
	GEN_SEALED, /* sealed by a record too big for the rest */
	GEN_FULL,   /* filled to its last byte, then sealed */
};

/* Flip a bit in each 4-byte word of the first records' headers: with
 * their CRCs as they are (the corrupt-record paths), and stamped again
 * (the checks behind the CRC: lengths, sequences, markers). */
static void damage_records(struct sink *k, const char *tag, uint8_t sel,
			   uint8_t *seg, const uint8_t *idx, size_t isz)
{
	uint64_t off = JSEG_DATA_OFF;
	struct jrec rh;
	for (int r = 0; r < 4 && frame_at(seg, off, &rh); r++) {
		for (uint32_t f = 0; f < rh.hsz; f += 4) {
			char t[64];
			snprintf(t, sizeof(t), "%s-r%d-f%u", tag, r, f);
			seg[off + f] ^= 0x10;
			emit(k, t, sel | SEL_WRITER, seg, idx, isz);
			emit(k, t, sel, seg, idx, isz);
			if (f != offsetof(struct jrec2_header, crc))
				emit(k, t, sel | SEL_WRITER | SEL_RECORDS,
				     seg, idx, isz);
			seg[off + f] ^= 0x10;
		}
		off += jrec_span(rh.hsz, rh.len);
	}
}

/* Flip a bit in each 8-byte word of the index (its header, the first
 * sparse entry and key entries), its CRCs stamped again. */
static void damage_index(struct sink *k, const char *tag, uint8_t sel,
			 const uint8_t *seg, uint8_t *idx, size_t isz)
{
	size_t upto = sizeof(struct jidx_header) +
		      sizeof(struct jidx_sparse) + 4 * sizeof(struct jidx_key);
	for (size_t w = 0; w + 8 <= isz && w < upto; w += 8) {
		char t[64];
		snprintf(t, sizeof(t), "%s-idx-w%zu", tag, w);
		idx[w] ^= 0x01;
		emit(k, t, sel | SEL_BODY, seg, idx, isz);
		emit(k, t, sel | SEL_BODY | SEL_WRITER, seg, idx, isz);
		idx[w] ^= 0x01;
	}
	char t[64];
	snprintf(t, sizeof(t), "%s-idx-cut", tag);
	emit(k, t, sel | SEL_BODY, seg, idx, isz - 8);
}

/* A real journal of n records in 64 KiB segments, its first segment ended
 * as `end` says, and that segment's index (if sealed). The payloads that
 * fill are zeros, so that inputs stay short. */
static void gen(struct sink *k, const char *tag, uint64_t n, uint32_t base,
		enum gen_end end)
{
	shmbus_journal_t *j = fresh_journal();
	static uint8_t buf[SEG];
	uint64_t off = JSEG_DATA_OFF;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t len = base + (uint32_t)(i * 37 % 301);
		memset(buf, (int)i + 1, len);
		if (shmbus_journal_append(j, 10 + i, 1000 + i * 10, 1, i % 5,
					  buf, len))
			die("generating records");
		struct jrec r = {.type = 1, .key = i % 5};
		off += jrec_span(jrec_hsz_of(JOURNAL_VERSION, 0, &r), len);
	}
	struct jrec fr = {.type = 1, .key = 7};
	uint32_t fhsz = jrec_hsz_of(JOURNAL_VERSION, 0, &fr);
	memset(buf, 0, sizeof(buf));
	uint32_t fill = (uint32_t)(end == GEN_FULL ? SEG - off : SEG - off + 8);
	if (end != GEN_TAIL &&
	    (shmbus_journal_append(j, SHMBUS_JOURNAL_NEXT, 1000 + n * 10, 1, 7,
				   buf, fill - fhsz) ||
	     (end == GEN_FULL &&
	      shmbus_journal_append(j, SHMBUS_JOURNAL_NEXT, 1000 + n * 10, 1,
				    2, "x", 1))))
		die("filling a segment");
	shmbus_journal_close(j);
	char path[400];
	size_t ssz = 0, isz = 0;
	snprintf(path, sizeof(path), "%s/%020llu.seg", jdir, 10ull);
	uint8_t *seg = slurp(path, &ssz);
	snprintf(path, sizeof(path), "%s/%020llu.idx", jdir, 10ull);
	uint8_t *idx = slurp(path, &isz);
	if (seg == NULL || ssz != SEG || (end != GEN_TAIL) != (idx != NULL))
		die("generated segment");
	/* it was made under another journal id: the selector stamps ours */
	uint8_t sel = SEL_STAMP | SEL_SEAL | (idx ? SEL_INDEX : 0);
	emit(k, tag, sel, seg, idx, isz);
	emit(k, tag, sel | SEL_WRITER, seg, idx, isz);
	emit(k, tag, sel | SEL_WRITER | SEL_BUFFERED, seg, idx, isz);
	damage_records(k, tag, sel, seg, idx, isz);
	if (idx)
		damage_index(k, tag, sel, seg, idx, isz);
	free(seg);
	free(idx);
	template_ctl(); /* for the inputs to come */
}

static int make_corpus(const char *dir)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	setup();
	struct sink k = {.dir = dir};
	gen(&k, "tail", 20, 0, GEN_TAIL);
	gen(&k, "sealed", 30, 100, GEN_SEALED);
	gen(&k, "full", 12, 0, GEN_FULL);
	static uint8_t zero[SEG];
	emit(&k, "zero", SEL_STAMP | SEL_WRITER, zero, NULL, 0);
	emit(&k, "zero", SEL_STAMP, zero, NULL, 0);
	printf("fuzz_journal: wrote %u inputs to %s\n", k.files, dir);
	cleanup();
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	atexit(cleanup);
	for (int i = 1; i + 1 < *argc; i++)
		if (strcmp((*argv)[i], "--make-corpus") == 0)
			exit(make_corpus((*argv)[i + 1]));
	return 0;
}

/* ---------------------------------------------------- plain driver */

#ifndef SHMBUS_LIBFUZZER
static unsigned run_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		exit(1);
	}
	if (S_ISDIR(st.st_mode)) {
		unsigned n = 0;
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.' ||
			    strcmp(e->d_name, "README") == 0)
				continue;
			char f[4096];
			snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
			n += run_path(f);
		}
		if (d)
			closedir(d);
		return n;
	}
	size_t size;
	uint8_t *b = slurp(path, &size);
	if (b == NULL) {
		perror(path);
		exit(1);
	}
	LLVMFuzzerTestOneInput(b, size);
	free(b);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--make-corpus") == 0)
		return make_corpus(argv[2]);
	int first = 1;
	bool expect_read = argc > 1 && strcmp(argv[1], "--expect-read") == 0;
	first += expect_read;
	if (argc <= first) {
		fprintf(stderr,
			"usage: fuzz_journal_plain [--expect-read] "
			"FILE|DIR...\n"
			"       fuzz_journal_plain --make-corpus DIR\n"
			"--expect-read fails unless some read-only open read "
			"records and some\nsealed segment was read by key "
			"through its index file (a corpus of\nthis build's "
			"journals).\n");
		return 2;
	}
	atexit(cleanup);
	unsigned n = 0;
	for (int i = first; i < argc; i++)
		n += run_path(argv[i]);
	printf("fuzz_journal: %u inputs, none crashed; %llu read by a "
	       "read-only handle, %llu by key through an index file\n",
	       n, (unsigned long long)counts.ro_read,
	       (unsigned long long)counts.index_read);
	if (n == 0)
		return 1;
	/* a corpus of real journals that no reader gets into means the
	 * harness lost track of the format: it would fuzz refusals only */
	if (expect_read && (counts.ro_read == 0 || counts.index_read == 0)) {
		fprintf(stderr, "fuzz_journal: no read-only open read a "
				"record, or no index file was used; is the "
				"corpus of this build?\n");
		return 1;
	}
	return 0;
}
#endif /* SHMBUS_LIBFUZZER */
