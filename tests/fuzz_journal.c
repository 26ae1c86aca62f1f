/*
 * A fuzz target over the journal's reader: segment and index files as
 * written by anyone.
 *
 * Input: one selector byte, then a segment file's bytes (padded with zeros
 * to the 64 KiB segment size, or cut to it), then optionally the bytes of
 * its index file. They are planted next to a valid control file and opened
 * through the public API, read-only or as the writer (which recovers the
 * tail); whatever opens is read every way there is (everything, by key,
 * from a time, from a sequence, verify) and, by a writer, appended to. Any
 * error code is fine; a crash, a hang, an access out of bounds is not.
 *
 * One source, built two ways (tests/CMakeLists.txt), as fuzz_open.c:
 *   fuzz_journal        -DSHMBUS_LIBFUZZER, -fsanitize=fuzzer (SHMBUS_FUZZ)
 *   fuzz_journal_plain  runs files and directories through the same body:
 *                       the corpus as a test of the suite
 * and both write a starting corpus with --make-corpus DIR: real segments
 * and indexes made by this build, and damage at their framing boundaries.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmbus/journal.h>

#include "journal_format.h"

#define SEG (64u << 10)

/* The selector byte. */
#define SEL_STAMP 0x01u	 /* stamp journal id and header CRC: go deeper */
#define SEL_SEAL 0x02u	 /* stamp the seal block's CRC */
#define SEL_WRITER 0x04u /* open as the writer (recovery cuts, seals) */
#define SEL_INDEX 0x08u	 /* the bytes after the segment are its .idx */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char root[256];	   /* our directory; the journal is root/j */
static uint8_t ctl[JCTL_SIZE]; /* a valid control file */
static uint64_t journal_id;
static volatile uint64_t checksum; /* keeps the reads */

static void die(const char *what)
{
	fprintf(stderr, "fuzz_journal: %s: %s (%s)\n", what, shmbus_errmsg(),
		strerror(errno));
	abort();
}

static void write_file(const char *name, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/j/%s", root, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, p, n) != (ssize_t)n)
		die(path);
	close(fd);
}

static void clear_journal(void)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/j", root);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		char f[800];
		snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
		if (e->d_name[0] != '.')
			unlink(f);
	}
	if (d)
		closedir(d);
}

/* A new, empty journal in root/j, open as its writer. */
static shmbus_journal_t *fresh_journal(void)
{
	clear_journal();
	char path[300];
	snprintf(path, sizeof(path), "%s/j", root);
	shmbus_journal_opts_t o = {.segment_size = SEG};
	shmbus_journal_t *j;
	if (shmbus_journal_open(path, &o, &j))
		die("a new journal");
	return j;
}

/* A fresh journal in root/j: its control file is every input's. */
static void template_ctl(void)
{
	shmbus_journal_close(fresh_journal());
	char path[300];
	snprintf(path, sizeof(path), "%s/j/journal.ctl", root);
	int fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, ctl, sizeof(ctl)) != (ssize_t)sizeof(ctl))
		die("control file");
	close(fd);
	memcpy(&journal_id, ctl + offsetof(struct jctl, journal_id), 8);
}

/* Once: a directory and a control file from a real journal. */
static void setup(void)
{
	if (root[0])
		return;
	const char *base = getenv("SHMBUS_TEST_DIR");
	snprintf(root, sizeof(root), "%s/shmbus-fj.XXXXXX",
		 base ? base : "/var/tmp");
	if (mkdtemp(root) == NULL)
		die("mkdtemp");
	template_ctl();
}

static void cleanup(void)
{
	if (root[0] == 0)
		return;
	clear_journal();
	char path[300];
	snprintf(path, sizeof(path), "%s/j", root);
	rmdir(path);
	rmdir(root);
}

/* ------------------------------------------------------------ reading */

static void read_query(shmbus_journal_t *j, const shmbus_journal_query_t *q)
{
	shmbus_journal_iter_t *it;
	if (shmbus_journal_iter_open(j, q, &it))
		return;
	shmbus_journal_entry_t e;
	int rc, n = 0;
	while ((rc = shmbus_journal_iter_next(it, &e)) != 0 && n++ < 100000) {
		if (rc == 1 && e.rec.len)
			checksum += ((const uint8_t *)e.rec.data)[e.rec.len - 1];
		else if (rc < 0)
			checksum += strlen(shmbus_errmsg());
	}
	shmbus_journal_iter_close(it);
}

static void use(shmbus_journal_t *j, bool writer)
{
	shmbus_journal_query_t all = {.flags = SHMBUS_JOURNAL_SKIP_CORRUPT};
	read_query(j, &all);
	shmbus_journal_query_t q = {.key = 3,
				    .flags = SHMBUS_JOURNAL_BY_KEY |
					     SHMBUS_JOURNAL_SKIP_CORRUPT};
	read_query(j, &q);
	q = (shmbus_journal_query_t){.from_time = 1500,
				     .flags = SHMBUS_JOURNAL_BY_TIME};
	read_query(j, &q);
	q = (shmbus_journal_query_t){.from_seq = 20, .to_seq = 40};
	read_query(j, &q);
	shmbus_journal_verify(j);
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	checksum += st.end_seq;
	if (!writer)
		return;
	static uint8_t big[SEG / 2];
	shmbus_journal_append(j, SHMBUS_JOURNAL_NEXT, 1, 1, 3, "abc", 3);
	/* two big ones: the segment fills, is sealed, a next one made */
	shmbus_journal_append(j, SHMBUS_JOURNAL_NEXT, 2, 1, 3, big, sizeof(big));
	shmbus_journal_append(j, SHMBUS_JOURNAL_NEXT, 3, 1, 3, big, sizeof(big));
	read_query(j, &q);
}

/* ------------------------------------------------------------- target */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	data++;
	size--;
	static uint8_t seg[SEG];
	size_t n = size < SEG ? size : SEG;
	memset(seg, 0, sizeof(seg));
	memcpy(seg, data, n);
	struct jseg_header *h = (struct jseg_header *)seg;
	uint64_t first = 0;
	if (sel & SEL_STAMP) {
		h->journal_id = journal_id;
		h->header_crc =
			crc32c(h, offsetof(struct jseg_header, header_crc), 0);
		first = h->first_seq;
	}
	if (sel & SEL_SEAL)
		h->seal_crc = crc32c(seg + JSEG_SEAL_CRC_FROM,
				     JSEG_SEAL_CRC_TO - JSEG_SEAL_CRC_FROM, 0);
	clear_journal();
	write_file("journal.ctl", ctl, sizeof(ctl));
	char name[48];
	snprintf(name, sizeof(name), "%020llu.seg", (unsigned long long)first);
	write_file(name, seg, SEG);
	if ((sel & SEL_INDEX) && size > SEG) {
		snprintf(name, sizeof(name), "%020llu.idx",
			 (unsigned long long)first);
		write_file(name, data + SEG, size - SEG);
	}
	char path[300];
	snprintf(path, sizeof(path), "%s/j", root);
	bool writer = (sel & SEL_WRITER) != 0;
	shmbus_journal_opts_t o = {.flags = writer ? 0 : SHMBUS_JOURNAL_READONLY};
	shmbus_journal_t *j;
	int rc = shmbus_journal_open(path, &o, &j);
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

static void emit(struct sink *k, const char *tag, uint8_t sel,
		 const uint8_t *seg, const uint8_t *idx, size_t idx_size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/jn-%s-%02x", k->dir, tag, sel);
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		die(path);
	fputc(sel, f);
	fwrite(seg, 1, SEG, f);
	if (idx)
		fwrite(idx, 1, idx_size, f);
	fclose(f);
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

/* A real journal of n records in 64 KiB segments: its first segment
 * (sealed when n fills more than one) and that segment's index. */
static void gen(struct sink *k, const char *tag, uint64_t n, uint32_t base)
{
	shmbus_journal_t *j = fresh_journal();
	char path[300];
	static uint8_t buf[2048];
	for (uint64_t i = 0; i < n; i++) {
		uint32_t len = base + (uint32_t)(i * 37 % 301);
		memset(buf, (int)i, len);
		shmbus_journal_append(j, 10 + i, 1000 + i * 10, 1, i % 5, buf,
				      len);
	}
	shmbus_journal_close(j);
	size_t ssz = 0, isz = 0;
	snprintf(path, sizeof(path), "%s/j/%020llu.seg", root, 10ull);
	uint8_t *seg = slurp(path, &ssz);
	snprintf(path, sizeof(path), "%s/j/%020llu.idx", root, 10ull);
	uint8_t *idx = slurp(path, &isz);
	if (seg == NULL || ssz != SEG)
		die("generated segment");
	/* it was made under another journal id: the selector stamps ours */
	uint8_t sel = SEL_STAMP | SEL_SEAL | (idx ? SEL_INDEX : 0);
	emit(k, tag, sel, seg, idx, isz);
	emit(k, tag, sel | SEL_WRITER, seg, idx, isz);
	/* damage: a bit of every header field of the first records */
	uint64_t off = JSEG_DATA_OFF;
	for (int r = 0; r < 4 && off + 56 <= SEG; r++) {
		struct jrec_header rh;
		memcpy(&rh, seg + off, sizeof(rh));
		for (uint32_t f = 0; f < 56; f += 4) {
			char t[64];
			snprintf(t, sizeof(t), "%s-r%d-f%u", tag, r, f);
			seg[off + f] ^= 0x10;
			emit(k, t, sel | SEL_WRITER, seg, idx, isz);
			seg[off + f] ^= 0x10;
		}
		off += jrec_frame(rh.len);
	}
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
	gen(&k, "tail", 20, 0);	   /* one unsealed segment */
	gen(&k, "sealed", 80, 1000); /* a sealed one and its index */
	static uint8_t zero[SEG];
	emit(&k, "zero", SEL_STAMP | SEL_WRITER, zero, NULL, 0);
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
	if (argc < 2) {
		fprintf(stderr, "usage: fuzz_journal_plain FILE|DIR...\n"
				"       fuzz_journal_plain --make-corpus DIR\n");
		return 2;
	}
	atexit(cleanup);
	unsigned n = 0;
	for (int i = 1; i < argc; i++)
		n += run_path(argv[i]);
	printf("fuzz_journal: %u inputs, none crashed\n", n);
	return n ? 0 : 1;
}
#endif /* SHMBUS_LIBFUZZER */
