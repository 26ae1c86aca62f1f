/*
 * journal: how fast the journal writes and replays, next to the disk's own
 * speed measured in the same run, in the same directory.
 *
 * Write: shmbus_journal_append of --count records (64 B and 1 KiB payloads
 * by default) under each durability policy (policy none both through the
 * mapping and buffered; the others buffered, as the journaler writes),
 * against a plain write() loop
 * of the same number of bytes (the frames' bytes: header + payload +
 * padding) to a file beside it. Replay: shmbus_journal_replay to a handler
 * that reads each payload's first and last byte, against a read() loop of
 * the raw file, both from a cold page cache (the files' pages dropped with
 * POSIX_FADV_DONTNEED after an fdatasync) and again warm.
 *
 * One process, no fork: the disk is the subject. The directory is --dir,
 * or a new one in /var/tmp; a tmpfs would measure memory, so statfs is
 * checked and the filesystem named in the output.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <shmbus/journal.h>

#include "bench.h"
#include "timer.h"

#define RAW_CHUNK (1u << 20)
/* format 2's header for these records: the base 24, a key (i & 1023: 0
 * once in 1024, 8 bytes less then); type 1 is the channel id written in
 * the segments (a journaler's records are so), so no type; 56 in
 * format 1, whose figures were framed with it */
#define FRAME_HEADER 32u
#define CHANNEL_ID 1u

struct fsname {
	long magic;
	const char *name;
};

static const char *fs_name(long magic)
{
	static const struct fsname names[] = {
		{0xEF53, "ext4 (ext2/3/4)"}, {0x58465342, "xfs"},
		{0x9123683E, "btrfs"},	     {0x01021994, "tmpfs"},
		{0x858458f6, "ramfs"},	     {0x2fc12fc1, "zfs"},
		{0x794c7630, "overlayfs"},   {0x6969, "nfs"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].magic == magic)
			return names[i].name;
	return "unknown";
}

/* Sync a file and drop its pages: the next read comes from the disk. */
static void drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	fdatasync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}

static void drop_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		char path[900];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.')
			drop_cache(path);
	}
	if (d)
		closedir(d);
}

/* ----------------------------------------------------------------- raw */

static double raw_write(const char *path, uint64_t bytes, bool sync)
{
	static uint8_t buf[RAW_CHUNK];
	memset(buf, 0x5a, sizeof(buf));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 0;
	uint64_t t0 = now_ns();
	for (uint64_t done = 0; done < bytes;) {
		size_t n = bytes - done < RAW_CHUNK ? (size_t)(bytes - done)
						    : RAW_CHUNK;
		ssize_t w = write(fd, buf, n);
		if (w <= 0)
			break;
		done += (uint64_t)w;
	}
	if (sync)
		fdatasync(fd);
	uint64_t t = now_ns() - t0;
	close(fd);
	return (double)bytes / ((double)t / 1e9);
}

static double raw_read(const char *path, uint64_t *bytes)
{
	static uint8_t buf[RAW_CHUNK];
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	uint64_t t0 = now_ns(), total = 0;
	ssize_t n;
	volatile uint8_t sink = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		total += (uint64_t)n;
		sink ^= buf[0];
	}
	uint64_t t = now_ns() - t0;
	close(fd);
	*bytes = total;
	return (double)total / ((double)t / 1e9);
}

/* ------------------------------------------------------------- journal */

struct policy {
	const char *name;
	uint32_t sync, every, interval_us;
	uint64_t count_div; /* a fraction of --count: syncs are slow */
};

static const struct policy policies[] = {
	{"none", SHMBUS_JOURNAL_SYNC_NONE, 0, 0, 1},
	{"interval-1ms", SHMBUS_JOURNAL_SYNC_INTERVAL, 0, 1000, 4},
	{"every-1024", SHMBUS_JOURNAL_SYNC_EVERY_N, 1024, 0, 4},
	{"every-1", SHMBUS_JOURNAL_SYNC_EVERY_N, 1, 0, 1000},
};

static uint64_t frame_bytes(uint32_t size)
{
	return (FRAME_HEADER + size + 7) & ~7ull;
}

/* The journaler's batch: a buffered writer flushes after so many. */
#define FLUSH_EVERY 256u

/* Append count records; 0 and the elapsed time, or -1. to_disk: a final
 * shmbus_journal_sync also under policy none (inside the time).
 * buffered: SHMBUS_JOURNAL_BUFFERED, flushed every FLUSH_EVERY records
 * as the journaler does at the end of each batch. */
enum writer { MAPPED, BUFFERED, WRITEBACK, WRITERS };
static const char *const writer_name[WRITERS] = {"", ", buffered",
						 ", buffered+writeback"};
#define WRITEBACK_BYTES (4u << 20)

static int journal_write(const struct bench_opts *o, const char *dir,
			 const struct policy *p, uint32_t size,
			 uint64_t count, bool to_disk, enum writer w,
			 uint64_t *ns, uint64_t *worst)
{
	bool buffered = w != MAPPED;
	shmbus_journal_opts_t jo = {.flags = buffered ? SHMBUS_JOURNAL_BUFFERED
						      : 0,
				    .channel_id = CHANNEL_ID,
				    .writeback_bytes = w == WRITEBACK
							       ? WRITEBACK_BYTES
							       : 0,
				    .sync = p->sync,
				    .sync_every = p->every,
				    .sync_interval_us = p->interval_us};
	shmbus_journal_t *j;
	if (shmbus_journal_open(dir, &jo, &j)) {
		report_note(o, "journal: %s", shmbus_errmsg());
		return -1;
	}
	uint8_t *buf = calloc(1, size);
	int rc = 0;
	uint64_t t0 = now_ns(), tb = t0;
	*worst = 0;
	for (uint64_t i = 0; i < count && rc == 0; i++) {
		memcpy(buf, &i, size < 8 ? size : 8);
		rc = shmbus_journal_append(j, i, i, CHANNEL_ID, i & 1023, buf,
					   size);
		if (i % FLUSH_EVERY != FLUSH_EVERY - 1)
			continue;
		if (rc == 0 && buffered)
			rc = shmbus_journal_flush(j);
		/* the longest stretch of FLUSH_EVERY appends: a segment's
		 * seal stops the writer inside one */
		uint64_t t = now_ns();
		if (t - tb > *worst)
			*worst = t - tb;
		tb = t;
	}
	if (rc == 0 && buffered)
		rc = shmbus_journal_flush(j); /* the last records too */
	if (rc == 0 && (to_disk || p->sync != SHMBUS_JOURNAL_SYNC_NONE))
		rc = shmbus_journal_sync(j); /* the last records too */
	*ns = now_ns() - t0;
	if (rc)
		report_note(o, "journal: append: %s", shmbus_errmsg());
	shmbus_journal_close(j);
	free(buf);
	return rc ? -1 : 0;
}

struct touch {
	uint64_t n, sum;
};

static int touch(const shmbus_record_t *r, void *ctx)
{
	struct touch *t = ctx;
	const uint8_t *d = r->data;
	t->n++;
	if (r->len)
		t->sum += d[0] + d[r->len - 1];
	return 0;
}

static double journal_replay(const char *dir, uint64_t *records)
{
	shmbus_journal_opts_t jo = {.flags = SHMBUS_JOURNAL_READONLY};
	shmbus_journal_t *j;
	if (shmbus_journal_open(dir, &jo, &j))
		return 0;
	struct touch t = {0};
	uint64_t t0 = now_ns();
	int rc = shmbus_journal_replay(j, NULL, touch, &t, NULL);
	uint64_t ns = now_ns() - t0;
	shmbus_journal_close(j);
	*records = rc ? 0 : t.n;
	return (double)t.n / ((double)ns / 1e9);
}

/* ----------------------------------------------------------- reporting */

static void report_tp(const struct bench_opts *o, const char *variant,
		      uint32_t size, uint64_t count, double rec_s,
		      double raw_bps, const char *raw_what)
{
	struct result res;
	memset(&res, 0, sizeof(res));
	res.workload = "journal";
	snprintf(res.variant, sizeof(res.variant), "%s", variant);
	res.size = size;
	res.count = count;
	res.wait = "-";
	res.kind = RES_TP;
	res.msgs_per_s = rec_s;
	res.mb_per_s = rec_s * size / 1e6;
	res.elapsed_ms = rec_s > 0 ? (double)count / rec_s * 1e3 : 0;
	double framed = rec_s * (double)frame_bytes(size);
	snprintf(res.note, sizeof(res.note),
		 "framed %.0f MB/s = %.2f x %s (%.0f MB/s)", framed / 1e6,
		 raw_bps > 0 ? framed / raw_bps : 0, raw_what, raw_bps / 1e6);
	snprintf(res.extra_json, sizeof(res.extra_json),
		 ",\"framed_mb_per_s\":%.1f,\"raw_mb_per_s\":%.1f,"
		 "\"ratio_to_raw\":%.3f",
		 framed / 1e6, raw_bps / 1e6,
		 raw_bps > 0 ? framed / raw_bps : 0);
	report_result(o, &res);
}

/* Nothing dirty left from the run before: each starts from the same
 * state of the page cache and the disk. */
static void settle(const char *base)
{
	int fd = open(base, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
}

static double median3(double a, double b, double c)
{
	return a > b ? (b > c ? b : a > c ? c : a) : (a > c ? a : b > c ? c : b);
}

/* Write rounds, alternating raw and each journal writer (policy none), so
 * that all see the same disk: medians of ROUNDS. to_disk: all end with
 * their data on the disk (raw: fdatasync; journal: shmbus_journal_sync),
 * the disk's sequential speed; else all end in the page cache. */
#define ROUNDS 3
static int write_none(const struct bench_opts *o, const char *base,
		      uint32_t size, uint64_t count, bool to_disk,
		      double *raw_bps, double rec_s[WRITERS],
		      uint64_t *worst /* [WRITERS], or NULL */)
{
	char raw[600], dir[600];
	snprintf(raw, sizeof(raw), "%s/raw", base);
	snprintf(dir, sizeof(dir), "%s/j-none", base);
	uint64_t bytes = count * frame_bytes(size);
	double r[ROUNDS], jr[WRITERS][ROUNDS];
	if (worst)
		memset(worst, 0, WRITERS * sizeof(*worst));
	for (int k = 0; k < ROUNDS; k++) {
		unlink(raw);
		settle(base);
		r[k] = raw_write(raw, bytes, to_disk);
		for (int w = 0; w < WRITERS; w++) {
			bench_rmrf(dir);
			settle(base);
			uint64_t ns, wt;
			if (journal_write(o, dir, &policies[0], size, count,
					  to_disk, (enum writer)w, &ns, &wt))
				return 1;
			jr[w][k] = (double)count / ((double)ns / 1e9);
			if (worst && wt > worst[w])
				worst[w] = wt;
		}
	}
	*raw_bps = median3(r[0], r[1], r[2]);
	for (int w = 0; w < WRITERS; w++)
		rec_s[w] = median3(jr[w][0], jr[w][1], jr[w][2]);
	return 0;
}

static int one_size(const struct bench_opts *o, const char *base,
		    uint32_t size)
{
	uint64_t count = o->count ? o->count
				  : (512ull << 20) / frame_bytes(size);
	char raw[600], dir[600];
	snprintf(raw, sizeof(raw), "%s/raw", base);
	uint64_t bytes = count * frame_bytes(size);
	double raw_w, rec_s[WRITERS], raw_ws, rec_ds[WRITERS];
	/* stalls are reported from the page-cache rounds: the ones ending
	 * on the disk measure the same appends */
	uint64_t worst[WRITERS];
	if (write_none(o, base, size, count, true, &raw_ws, rec_ds, NULL) ||
	    write_none(o, base, size, count, false, &raw_w, rec_s, worst))
		return 1;
	report_note(o,
		    "\njournal %u B: raw write() of %.0f MB: %.0f MB/s to the "
		    "disk (a final fdatasync), %.0f MB/s to the page cache "
		    "(medians of %d, alternating with the journal)",
		    size, bytes / 1e6, raw_ws / 1e6, raw_w / 1e6, ROUNDS);
	char v[48];
	for (int w = 0; w < WRITERS; w++) {
		snprintf(v, sizeof(v), "write none+sync%s", writer_name[w]);
		report_tp(o, v, size, count, rec_ds[w], raw_ws,
			  "raw write+fdatasync");
	}
	for (int w = 0; w < WRITERS; w++) {
		snprintf(v, sizeof(v), "write none%s", writer_name[w]);
		report_tp(o, v, size, count, rec_s[w], raw_w,
			  "raw write to the page cache");
	}
	report_tp(o, "write none, buffered, vs the disk", size, count,
		  rec_s[BUFFERED], raw_ws, "raw write+fdatasync");
	report_note(o,
		    "journal %u B: longest stretch of %u appends (the "
		    "writer stopped by a seal or the kernel), to the page "
		    "cache: mapped %.2f ms, buffered %.2f, with write-back "
		    "%.2f",
		    size, FLUSH_EVERY, worst[MAPPED] / 1e6,
		    worst[BUFFERED] / 1e6, worst[WRITEBACK] / 1e6);
	for (size_t i = 1; i < sizeof(policies) / sizeof(policies[0]); i++) {
		const struct policy *p = &policies[i];
		uint64_t n = count / p->count_div ? count / p->count_div : 1;
		snprintf(dir, sizeof(dir), "%s/j-%s", base, p->name);
		uint64_t ns, wt;
		settle(base);
		if (journal_write(o, dir, p, size, n, false, BUFFERED, &ns,
				  &wt))
			return 1;
		snprintf(v, sizeof(v), "write %s", p->name);
		report_tp(o, v, size, n, (double)n / ((double)ns / 1e9), raw_ws,
			  "raw write+fdatasync");
		bench_rmrf(dir);
	}
	/* replay the policy-none journal: cold, then warm */
	snprintf(dir, sizeof(dir), "%s/j-none", base);
	uint64_t got, rb;
	drop_cache(raw);
	double raw_cold = raw_read(raw, &rb);
	drop_dir(dir);
	double cold = journal_replay(dir, &got);
	if (got != count) {
		report_note(o, "journal: replayed %llu of %llu records",
			    (unsigned long long)got, (unsigned long long)count);
		return 1;
	}
	report_tp(o, "replay cold", size, count, cold, raw_cold,
		  "raw read, cold");
	double raw_warm = raw_read(raw, &rb);
	double warm = journal_replay(dir, &got);
	report_tp(o, "replay warm", size, count, warm, raw_warm,
		  "raw read, warm");
	bench_rmrf(dir);
	unlink(raw);
	return 0;
}

int wl_journal(const struct bench_opts *o)
{
	char base[512];
	if (o->dir[0])
		snprintf(base, sizeof(base), "%s/shmbus-bench.XXXXXX", o->dir);
	else
		snprintf(base, sizeof(base), "/var/tmp/shmbus-bench.XXXXXX");
	if (mkdtemp(base) == NULL) {
		report_note(o, "journal: mkdtemp %s: %s", base,
			    strerror(errno));
		return 1;
	}
	struct statfs sf;
	if (statfs(base, &sf) == 0)
		report_note(o, "journal: directory %s on %s (statfs type "
			       "0x%lx)%s",
			    base, fs_name((long)sf.f_type), (long)sf.f_type,
			    sf.f_type == 0x01021994 || sf.f_type == 0x858458f6
				    ? ": memory, not a disk (use --dir)"
				    : "");
	uint32_t sizes[2] = {64, 1024};
	int n = 2, failed = 0;
	if (o->size) {
		sizes[0] = o->size;
		n = 1;
	}
	for (int i = 0; i < n && !failed && !interrupted(); i++)
		failed = one_size(o, base, sizes[i]);
	bench_rmrf(base);
	return failed;
}
