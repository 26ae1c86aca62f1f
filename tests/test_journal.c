/*
 * The journal in one process: CRC conventions, a round trip of millions of
 * records read back by sequence, time and key against an in-memory model,
 * bad files, the writer lock, durability counters, retention, indexes,
 * tail recovery, and damage at every framing boundary of a small journal.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "helpers.h"
#include "jhelpers.h"

#include "journal_format.h"

#define KB 1024ull

static shmbus_journal_t *jopen(const char *dir, uint32_t flags,
			       uint64_t seg)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/j", dir);
	shmbus_journal_opts_t o = {.flags = flags, .segment_size = seg};
	shmbus_journal_t *j = NULL;
	int rc = shmbus_journal_open(p, &o, &j);
	cr_assert_eq(rc, 0, "open %s: %d %s", p, rc, shmbus_errmsg());
	return j;
}

static int jopen_rc(const char *dir, uint32_t flags, shmbus_journal_t **j)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/j", dir);
	shmbus_journal_opts_t o = {.flags = flags};
	*j = NULL;
	return shmbus_journal_open(p, &o, j);
}

/* Append seq with a jt_fill payload of len bytes, key, ts. */
static void put(shmbus_journal_t *j, uint64_t seq, uint32_t len, uint64_t key,
		uint64_t ts)
{
	static uint8_t buf[64 * KB];
	jt_fill(buf, seq, len);
	int rc = shmbus_journal_append(j, seq, ts, 7, key, buf, len);
	QUIET(rc == 0, "append %llu: %d %s", (unsigned long long)seq, rc,
	      shmbus_errmsg());
}

/* Read a query; check every payload; return the sequences (up to max). */
static uint64_t collect(shmbus_journal_t *j, const shmbus_journal_query_t *q,
			uint64_t *seqs, uint64_t max)
{
	shmbus_journal_iter_t *it;
	cr_assert_eq(shmbus_journal_iter_open(j, q, &it), 0);
	shmbus_journal_entry_t e;
	uint64_t n = 0;
	int rc;
	while ((rc = shmbus_journal_iter_next(it, &e)) == 1) {
		QUIET(jt_same(e.rec.data, e.rec.seq, e.rec.len),
		      "payload of %llu", (unsigned long long)e.rec.seq);
		if (n < max)
			seqs[n] = e.rec.seq;
		n++;
	}
	cr_assert_eq(rc, 0, "iter: %d %s", rc, shmbus_errmsg());
	shmbus_journal_iter_close(it);
	return n;
}

Test(journal, crc32c_is_the_standard_one)
{
	cr_assert_eq(crc32c("123456789", 9, 0), 0xE3069283u);
	/* chained == whole */
	uint32_t a = crc32c("1234", 4, 0);
	cr_assert_eq(crc32c("56789", 5, a), 0xE3069283u);
	cr_assert_eq(crc32c("", 0, 0), 0u);
}

/* Short buffers take the crc32 instruction, long ones ISA-L: the same
 * CRC for every length, alignment and seed either way. */
Test(journal, both_crc32c_paths_agree)
{
#if defined(__x86_64__)
	if (!journal_crc_hw)
		cr_skip_test("no SSE4.2");
	static uint8_t b[1024 + 8];
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(i * 131 + 7);
	for (size_t n = 0; n <= 1024; n++)
		for (size_t at = 0; at < 8; at += 3) {
			uint32_t seed = (uint32_t)(n * 2654435761u);
			QUIET(crc32c_hw(b + at, n, seed) ==
				      crc32c_isal(b + at, n, seed),
			      "length %zu at %zu", n, at);
		}
	cr_assert_eq(crc32c_hw("123456789", 9, 0), 0xE3069283u);
#else
	cr_skip_test("x86-64 only");
#endif
}

/* ------------------------------------------------- the model round trip */

struct model {
	uint64_t n;
	uint64_t *seq, *ts, *key, *pmax; /* pmax: prefix max of ts */
	uint32_t *len;
	uint64_t *next_same_key; /* index of the next record of its key */
};

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint32_t rnd_len(void)
{
	uint64_t r = rnd() % 100;
	if (r < 70)
		return (uint32_t)(rnd() % 65);
	if (r < 97)
		return (uint32_t)(64 + rnd() % 449);
	return (uint32_t)(512 + rnd() % 3585);
}

static void model_build(struct model *m, uint64_t n, uint32_t keys)
{
	m->n = n;
	m->seq = malloc(n * 8);
	m->ts = malloc(n * 8);
	m->key = malloc(n * 8);
	m->pmax = malloc(n * 8);
	m->len = malloc(n * 4);
	m->next_same_key = malloc(n * 8);
	cr_assert(m->seq && m->ts && m->key && m->pmax && m->len &&
		  m->next_same_key);
	uint64_t seq = 5, hi = 0;
	for (uint64_t i = 0; i < n; i++) {
		seq += 1 + (rnd() % 8 == 0 ? rnd() % 5 : 0); /* gaps */
		m->seq[i] = seq;
		uint64_t ts = seq * 1000;
		if (rnd() % 16 == 0) /* time stamps are not monotonic */
			ts -= rnd() % 5000;
		m->ts[i] = ts;
		hi = ts > hi ? ts : hi;
		m->pmax[i] = hi;
		m->key[i] = rnd() % keys;
		m->len[i] = rnd_len();
	}
	uint64_t *last = malloc(keys * 8);
	for (uint32_t k = 0; k < keys; k++)
		last[k] = UINT64_MAX;
	for (uint64_t i = n; i-- > 0;) {
		m->next_same_key[i] = last[m->key[i]];
		last[m->key[i]] = i;
	}
	free(last);
}

/* The first index whose a[i] >= v (a sorted, or a prefix maximum). */
static uint64_t first_geq(const uint64_t *a, uint64_t n, uint64_t v)
{
	uint64_t lo = 0, hi = n;
	while (lo < hi) {
		uint64_t mid = (lo + hi) / 2;
		if (a[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* First model index with seq >= s */
static uint64_t model_seq(const struct model *m, uint64_t s)
{
	return first_geq(m->seq, m->n, s);
}

/* First model index with ts >= t: the prefix max is monotonic, and the
 * first record where it reaches t is the first with ts >= t */
static uint64_t model_time(const struct model *m, uint64_t t)
{
	return first_geq(m->pmax, m->n, t);
}

static void check_range(shmbus_journal_t *j, const struct model *m,
			uint64_t *buf, uint64_t from, uint64_t to)
{
	shmbus_journal_query_t q = {.from_seq = from, .to_seq = to};
	uint64_t n = collect(j, &q, buf, m->n);
	uint64_t i = model_seq(m, from), want = 0, end = to ? to : UINT64_MAX;
	for (uint64_t k = i; k < m->n && m->seq[k] < end; k++)
		QUIET(buf[want++] == m->seq[k], "range [%llu, %llu): #%llu",
		      (unsigned long long)from, (unsigned long long)to,
		      (unsigned long long)(k - i));
	cr_assert_eq(n, want, "range [%llu, %llu): %llu records, want %llu",
		     (unsigned long long)from, (unsigned long long)to,
		     (unsigned long long)n, (unsigned long long)want);
}

static void check_time(shmbus_journal_t *j, const struct model *m,
		       uint64_t *buf, uint64_t t)
{
	shmbus_journal_query_t q = {.from_time = t,
				    .flags = SHMBUS_JOURNAL_BY_TIME};
	shmbus_journal_iter_t *it;
	cr_assert_eq(shmbus_journal_iter_open(j, &q, &it), 0);
	uint64_t i = model_time(m, t);
	shmbus_journal_entry_t e;
	for (int k = 0; k < 40 && i < m->n; k++, i++) {
		QUIET(shmbus_journal_iter_next(it, &e) == 1, "time %llu",
		      (unsigned long long)t);
		QUIET(e.rec.seq == m->seq[i] && e.rec.timestamp == m->ts[i],
		      "time %llu: #%d", (unsigned long long)t, k);
	}
	if (i == m->n)
		cr_assert_eq(shmbus_journal_iter_next(it, &e), 0);
	shmbus_journal_iter_close(it);
	(void)buf;
}

static void check_key(shmbus_journal_t *j, const struct model *m,
		      uint64_t *buf, uint64_t key, uint64_t from)
{
	shmbus_journal_query_t q = {.key = key,
				    .from_seq = from,
				    .flags = SHMBUS_JOURNAL_BY_KEY};
	uint64_t n = collect(j, &q, buf, m->n);
	uint64_t want = 0, i = 0;
	while (i < m->n && m->key[i] != key)
		i++;
	for (; i != UINT64_MAX && i < m->n; i = m->next_same_key[i])
		if (m->seq[i] >= from)
			QUIET(buf[want++] == m->seq[i], "key %llu #%llu",
			      (unsigned long long)key,
			      (unsigned long long)want);
	cr_assert_eq(n, want, "key %llu", (unsigned long long)key);
}

static void check_all(shmbus_journal_t *j, const struct model *m,
		      uint64_t *buf)
{
	check_range(j, m, buf, 0, 0);
	for (int k = 0; k < 200; k++) {
		uint64_t from = m->seq[0] - 3 + rnd() % (m->seq[m->n - 1] + 10);
		check_range(j, m, buf, from, from + rnd() % 3000);
	}
	for (int k = 0; k < 200; k++)
		check_time(j, m, buf,
			   rnd() % (m->ts[m->n - 1] + m->ts[m->n - 1] / 100));
	for (int k = 0; k < 30; k++)
		check_key(j, m, buf, rnd() % 5001, k % 3 ? 0 : rnd() % m->n);
}

/* Buffered: with write-back started every 64 KiB too. */
static void round_trip(uint32_t flags, uint64_t n)
{
	char dir[256], p[300];
	jt_tmpdir(dir);
	snprintf(p, sizeof(p), "%s/j", dir);
	static struct model m;
	model_build(&m, n, 5000);
	shmbus_journal_opts_t o = {.flags = flags,
				   .segment_size = 1 << 20,
				   .writeback_bytes = 64 * KB};
	shmbus_journal_t *j;
	cr_assert_eq(shmbus_journal_open(p, &o, &j), 0, "%s", shmbus_errmsg());
	for (uint64_t i = 0; i < m.n; i++)
		put(j, m.seq[i], m.len[i], m.key[i], m.ts[i]);
	if (flags & SHMBUS_JOURNAL_BUFFERED) {
		/* the last records are in the buffer, not yet the file's */
		cr_assert_lt(shmbus_journal_end(j), m.seq[m.n - 1] + 1);
		cr_assert_eq(shmbus_journal_flush(j), 0, "%s",
			     shmbus_errmsg());
	}
	cr_assert_eq(shmbus_journal_end(j), m.seq[m.n - 1] + 1);
	uint64_t *buf = malloc(m.n * 8);
	check_all(j, &m, buf); /* the writer's own handle */
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	cr_assert_gt(st.sealed, 1, "several segments sealed");
	cr_assert_eq(st.appended, m.n);
	shmbus_journal_t *r = jopen(dir, SHMBUS_JOURNAL_READONLY, 0);
	check_all(r, &m, buf); /* a reader next to it */
	cr_assert_eq(shmbus_journal_verify(r), 0, "%s", shmbus_errmsg());
	shmbus_journal_close(r);
	cr_assert_eq(shmbus_journal_close(j), 0);
	j = jopen(dir, 0, 0); /* reopened: indexes from their files */
	shmbus_journal_recovery_t rec;
	shmbus_journal_get_recovery(j, &rec);
	cr_assert_eq(rec.cut_records, 0);
	check_all(j, &m, buf);
	shmbus_journal_get_stats(j, &st);
	cr_assert_eq(st.indexes_rebuilt, 0);
	shmbus_journal_close(j);
	free(buf);
	jt_rmrf(dir);
}

Test(journal, round_trip_by_sequence_time_and_key, .timeout = 240)
{
	round_trip(0, scaled(2000000));
}

Test(journal, buffered_round_trip_by_sequence_time_and_key, .timeout = 240)
{
	round_trip(SHMBUS_JOURNAL_BUFFERED, scaled(1000000));
}

/* A reader that retention passes: what it read plus what it says it
 * skipped is every sequence, exactly (the sequences have no gaps here);
 * the segment it had mapped is still read whole. */
Test(journal, a_reader_passed_by_retention_counts_what_it_skipped)
{
	char dir[256], p[300];
	jt_tmpdir(dir);
	snprintf(p, sizeof(p), "%s/j", dir);
	shmbus_journal_opts_t o = {.segment_size = 64 * KB,
				   .retain_bytes = 3 * 64 * KB};
	shmbus_journal_t *j;
	cr_assert_eq(shmbus_journal_open(p, &o, &j), 0, "%s", shmbus_errmsg());
	uint64_t seq = 0;
	for (; seq < 100; seq++)
		put(j, seq, 200, 0, seq);
	shmbus_journal_t *r = jopen(dir, SHMBUS_JOURNAL_READONLY, 0);
	shmbus_journal_iter_t *it;
	cr_assert_eq(shmbus_journal_iter_open(r, NULL, &it), 0);
	shmbus_journal_entry_t e;
	cr_assert_eq(shmbus_journal_iter_next(it, &e), 1);
	cr_assert_eq(e.rec.seq, 0);
	for (; seq < 5000; seq++) /* about 20 segments; 3 kept */
		put(j, seq, 200, 0, seq);
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	cr_assert_gt(st.removed, 10);
	uint64_t got = 1, want = 1, skipped = 0;
	int rc;
	while ((rc = shmbus_journal_iter_next(it, &e)) == 1) {
		/* a skip is counted as the reader moves past it */
		uint64_t sk = shmbus_journal_iter_skipped(it);
		want += sk - skipped;
		skipped = sk;
		cr_assert_eq(e.rec.seq, want, "read %llu, want %llu",
			     (unsigned long long)e.rec.seq,
			     (unsigned long long)want);
		got++;
		want++;
	}
	cr_assert_eq(rc, 0, "%s", shmbus_errmsg());
	cr_assert_gt(skipped, 0);
	cr_assert_eq(got + skipped, seq, "read %llu + skipped %llu",
		     (unsigned long long)got, (unsigned long long)skipped);
	shmbus_journal_iter_close(it);
	shmbus_journal_close(r);
	shmbus_journal_close(j);
	jt_rmrf(dir);
}

static bool reserved_ahead(const char *jdir)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/%020llu.seg.tmp", jdir,
		 (unsigned long long)UINT64_MAX);
	return access(p, F_OK) == 0;
}

/* A journal that fills segments has the next one's file reserved ahead
 * (the roll only writes its header and renames it); a journal that never
 * filled one has none; close removes an unused one, and so does the next
 * open after a crash, without counting it as a segment removed. */
Test(journal, the_next_segment_is_reserved_ahead_and_cleaned_up)
{
	char dir[256], p[300];
	jt_tmpdir(dir);
	snprintf(p, sizeof(p), "%s/j", dir);
	shmbus_journal_t *j = jopen(dir, SHMBUS_JOURNAL_BUFFERED, 64 * KB);
	put(j, 0, 100, 0, 0);
	cr_assert_eq(shmbus_journal_flush(j), 0);
	cr_assert_not(reserved_ahead(p), "not before a segment filled");
	uint64_t seq = 1;
	for (; seq < 2000; seq++) /* about three segments */
		put(j, seq, 100, seq % 7, seq);
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	cr_assert_geq(st.sealed, 2);
	uint64_t t0 = shmbus_now_ns();
	while (!reserved_ahead(p) && shmbus_now_ns() - t0 < 5000000000ull)
		usleep(1000);
	cr_assert(reserved_ahead(p), "reserved after a roll");
	cr_assert_eq(shmbus_journal_close(j), 0);
	cr_assert_not(reserved_ahead(p), "close removes it");

	pid_t pid = test_fork();
	if (pid == 0) { /* fill a segment, wait for the next, die */
		shmbus_journal_opts_t o = {.segment_size = 64 * KB};
		shmbus_journal_t *w;
		CHECK_OK(shmbus_journal_open(p, &o, &w));
		static uint8_t buf[100];
		for (uint64_t q = seq; q < seq + 1000; q++)
			CHECK_OK(shmbus_journal_append(w, q, q, 7, 0, buf, 100));
		while (!reserved_ahead(p))
			usleep(1000);
		kill(getpid(), SIGKILL);
	}
	cr_assert_eq(child_status(pid), 128 + SIGKILL);
	cr_assert(reserved_ahead(p));
	j = jopen(dir, 0, 0);
	shmbus_journal_recovery_t rec;
	shmbus_journal_get_recovery(j, &rec);
	cr_assert_not(reserved_ahead(p), "the open cleaned it up");
	cr_assert_eq(rec.removed, 0, "not a segment");
	cr_assert_eq(shmbus_journal_end(j), seq + 1000);
	cr_assert_eq(shmbus_journal_verify(j), 0, "%s", shmbus_errmsg());
	shmbus_journal_close(j);
	jt_rmrf(dir);
}

/* A buffered writer: readers see nothing of a chunk before its flush and
 * all of it after; frames too large for the buffer go around it, in
 * order; close flushes. */
Test(journal, buffered_appends_are_seen_when_flushed)
{
	char dir[256];
	jt_tmpdir(dir);
	shmbus_journal_t *j = jopen(dir, SHMBUS_JOURNAL_BUFFERED, 1 << 20);
	shmbus_journal_t *r = jopen(dir, SHMBUS_JOURNAL_READONLY, 0);
	shmbus_journal_iter_t *it;
	cr_assert_eq(shmbus_journal_iter_open(r, NULL, &it), 0);
	shmbus_journal_entry_t e;
	uint64_t seq = 0, got = 0;
	for (int round = 0; round < 40; round++) {
		uint64_t from = seq;
		for (int k = 0; k <= round % 7; k++, seq++)
			put(j, seq,
			    seq % 5 == 4 ? 20000 + (uint32_t)(seq * 977 % 40000)
					 : (uint32_t)(seq * 37 % 700),
			    seq % 3, seq);
		/* a frame over a quarter of the buffer flushes what was
		 * before it and goes to the mapping: seen at once */
		uint64_t last_big = from;
		for (uint64_t q = from; q < seq; q++)
			if (q % 5 == 4)
				last_big = q + 1;
		cr_assert_eq(shmbus_journal_end(r), last_big,
			     "round %d: end %llu", round,
			     (unsigned long long)shmbus_journal_end(r));
		if (round % 2)
			cr_assert_eq(shmbus_journal_flush(j), 0);
		else
			cr_assert_eq(shmbus_journal_tick(j), 0);
		cr_assert_eq(shmbus_journal_end(r), seq);
		int rc;
		while ((rc = shmbus_journal_iter_next(it, &e)) == 1) {
			cr_assert_eq(e.rec.seq, got);
			cr_assert(jt_same(e.rec.data, got, e.rec.len));
			got++;
		}
		cr_assert_eq(rc, 0, "%s", shmbus_errmsg());
		cr_assert_eq(got, seq, "round %d", round);
	}
	put(j, seq++, 10, 0, 0);
	cr_assert_eq(shmbus_journal_close(j), 0);
	cr_assert_eq(shmbus_journal_end(r), seq, "close flushed");
	cr_assert_eq(shmbus_journal_flush(r), SHMBUS_EINVAL, "a reader");
	shmbus_journal_iter_close(it);
	shmbus_journal_close(r);
	jt_rmrf(dir);
}

/* ------------------------------------------------------ small journals */

/* n records, seq 10.., sizes cycling base..base+300, key seq % 5, in
 * 64 KiB segments; returns the journal closed. */
static void sized_journal(const char *dir, uint64_t n, uint32_t base)
{
	shmbus_journal_t *j = jopen(dir, 0, 64 * KB);
	for (uint64_t i = 0; i < n; i++)
		put(j, 10 + i, base + (uint32_t)(i * 37 % 301), i % 5, 1000 + i);
	cr_assert_eq(shmbus_journal_close(j), 0);
}

static void small_journal(const char *dir, uint64_t n)
{
	sized_journal(dir, n, 0);
}

Test(journal, a_second_writer_is_refused_readers_are_not)
{
	char dir[256];
	jt_tmpdir(dir);
	small_journal(dir, 10);
	shmbus_journal_t *w = jopen(dir, 0, 0), *w2, *r;
	cr_assert_eq(jopen_rc(dir, 0, &w2), SHMBUS_EBUSY);
	cr_assert(strstr(shmbus_errmsg(), "another process writes"), "%s",
		  shmbus_errmsg());
	cr_assert_eq(jopen_rc(dir, SHMBUS_JOURNAL_READONLY, &r), 0);
	cr_assert_eq(shmbus_journal_append(r, 100, 0, 0, 0, "x", 1),
		     SHMBUS_EINVAL, "a reader cannot append");
	shmbus_journal_close(r);
	shmbus_journal_close(w);
	cr_assert_eq(jopen_rc(dir, 0, &w2), 0, "the lock went with close");
	shmbus_journal_close(w2);
	jt_rmrf(dir);
}

Test(journal, appends_refuse_old_sequences_and_oversized_records)
{
	char dir[256];
	jt_tmpdir(dir);
	shmbus_journal_t *j = jopen(dir, 0, 64 * KB);
	cr_assert_eq(shmbus_journal_end(j), 0);
	put(j, 0, 8, 1, 1);
	cr_assert_eq(shmbus_journal_append(j, 0, 0, 0, 0, "x", 1),
		     SHMBUS_EINVAL);
	static uint8_t big[64 * KB];
	cr_assert_eq(shmbus_journal_append(j, 5, 0, 0, 0, big, 60 * KB),
		     SHMBUS_EINVAL);
	cr_assert_eq(shmbus_journal_append(j, SHMBUS_JOURNAL_NEXT, 9, 0, 0,
					   NULL, 0),
		     0);
	cr_assert_eq(shmbus_journal_end(j), 2);
	cr_assert_eq(shmbus_journal_append(j, SHMBUS_JOURNAL_NEXT, 9, 0, 0,
					   NULL, 4),
		     SHMBUS_EINVAL, "data NULL with a length");
	shmbus_journal_close(j);
	jt_rmrf(dir);
}

Test(journal, bad_files_are_named_with_their_offset)
{
	static char cmd_buf[512];
	char dir[256], p[512];
	jt_tmpdir(dir);
	small_journal(dir, 400); /* several sealed segments */
	shmbus_journal_t *j;
	uint64_t magic = 42;
	jt_poke(jt_path(p, dir, "journal.ctl"), 0, &magic, 8);
	cr_assert_eq(jopen_rc(dir, 0, &j), SHMBUS_ECORRUPT);
	cr_assert(strstr(shmbus_errmsg(), "journal.ctl: bad magic") &&
			  strstr(shmbus_errmsg(), "offset 0"),
		  "%s", shmbus_errmsg());
	magic = JCTL_MAGIC;
	jt_poke(p, 0, &magic, 8);
	uint32_t version = 9;
	jt_poke(jt_seg(p, dir, 10, ".seg"), 8, &version, 4);
	cr_assert_eq(jopen_rc(dir, SHMBUS_JOURNAL_READONLY, &j),
		     SHMBUS_EVERSION);
	cr_assert(strstr(shmbus_errmsg(), "00000000000000000010.seg") &&
			  strstr(shmbus_errmsg(), "offset 8"),
		  "%s", shmbus_errmsg());
	version = JOURNAL_VERSION;
	jt_poke(p, 8, &version, 4);
	jt_flip(p, 50, 0x10); /* the channel name: header CRC */
	cr_assert_eq(jopen_rc(dir, 0, &j), SHMBUS_ECORRUPT);
	cr_assert(strstr(shmbus_errmsg(), "header fails its CRC"), "%s",
		  shmbus_errmsg());
	jt_flip(p, 50, 0x10);
	cr_assert_eq(truncate(p, 40000), 0); /* a sealed segment cut short */
	cr_assert_eq(jopen_rc(dir, 0, &j), SHMBUS_ECORRUPT);
	cr_assert(strstr(shmbus_errmsg(), "truncated: 40000 bytes"), "%s",
		  shmbus_errmsg());
	/* a segment of another journal, and one under another name */
	char other[256], q[1100];
	jt_tmpdir(other);
	small_journal(other, 3);
	jt_rmrf(dir);
	jt_tmpdir(dir);
	small_journal(dir, 400);
	snprintf(q, sizeof(q), "cp '%s' '%s'", jt_seg(p, other, 10, ".seg"),
		 jt_seg(cmd_buf, dir, 10, ".seg"));
	cr_assert_eq(system(q), 0);
	cr_assert_eq(jopen_rc(dir, 0, &j), SHMBUS_ECORRUPT);
	cr_assert(strstr(shmbus_errmsg(), "belongs to another journal"), "%s",
		  shmbus_errmsg());
	snprintf(q, sizeof(q), "mv '%s' '%s'", jt_seg(p, dir, 10, ".seg"),
		 jt_seg(cmd_buf, dir, 5, ".seg"));
	cr_assert_eq(system(q), 0);
	cr_assert_eq(jopen_rc(dir, 0, &j), SHMBUS_ECORRUPT);
	cr_assert(strstr(shmbus_errmsg(), "first sequence 10 at offset 24"),
		  "%s", shmbus_errmsg());
	jt_rmrf(other);
	jt_rmrf(dir);
}

Test(journal, permission_denied_is_an_error_naming_the_path)
{
	char dir[256];
	jt_tmpdir(dir);
	small_journal(dir, 3); /* the journal is 0700, its files 0600 */
	chmod(dir, 0755);
	pid_t pid = test_fork();
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(3);
		shmbus_journal_t *j;
		int rc = jopen_rc(dir, SHMBUS_JOURNAL_READONLY, &j);
		_exit(rc == SHMBUS_EPERM &&
				      strstr(shmbus_errmsg(), "Permission denied")
			      ? 0
			      : 1);
	}
	cr_assert_eq(child_status(pid), 0);
	jt_rmrf(dir);
}

Test(journal, a_full_disk_is_an_error_and_loses_nothing)
{
	char dir[256];
	jt_tmpdir(dir);
	pid_t pid = test_fork();
	if (pid == 0) {
		/* a 1 MiB tmpfs of our own: room for three segments */
		char opt[] = "size=1m";
		if (unshare(CLONE_NEWNS) || mount("none", "/", NULL,
						  MS_REC | MS_PRIVATE, NULL) ||
		    mount("tmpfs", dir, "tmpfs", 0, opt))
			_exit(77);
		char p[512];
		snprintf(p, sizeof(p), "%s/j", dir);
		shmbus_journal_opts_t o = {.segment_size = 256 * KB};
		shmbus_journal_t *j;
		if (shmbus_journal_open(p, &o, &j))
			_exit(4);
		uint64_t n = 0;
		int rc;
		uint8_t buf[1000];
		while ((rc = shmbus_journal_append(j, n, n, 0, n, buf,
						   sizeof(buf))) == 0)
			n++;
		if (rc != SHMBUS_ENOMEM ||
		    !strstr(shmbus_errmsg(), "No space left on device"))
			_exit(1);
		/* everything appended before is there, and appends resume
		 * once there is room */
		if (shmbus_journal_end(j) != n || shmbus_journal_verify(j))
			_exit(2);
		shmbus_journal_close(j);
		_exit(0);
	}
	int st = child_status(pid);
	if (st == 77)
		cr_skip("cannot mount a tmpfs here");
	cr_assert_eq(st, 0, "child %d", st);
	jt_rmrf(dir);
}

Test(journal, durability_policies_sync_when_they_say)
{
	char dir[256], p[512];
	jt_tmpdir(dir);
	snprintf(p, sizeof(p), "%s/j", dir);
	shmbus_journal_opts_t o = {.sync = SHMBUS_JOURNAL_SYNC_EVERY_N,
				   .sync_every = 10};
	shmbus_journal_t *j;
	cr_assert_eq(shmbus_journal_open(p, &o, &j), 0);
	for (uint64_t i = 0; i < 95; i++)
		put(j, i, 100, 0, i);
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	cr_assert_eq(st.syncs, 9);
	cr_assert_eq(shmbus_journal_synced(j), 90);
	cr_assert_eq(shmbus_journal_close(j), 0); /* syncs the rest */
	o = (shmbus_journal_opts_t){.sync = SHMBUS_JOURNAL_SYNC_INTERVAL,
				    .sync_interval_us = 50000};
	cr_assert_eq(shmbus_journal_open(p, &o, &j), 0);
	cr_assert_eq(shmbus_journal_synced(j), 95, "synced at open");
	usleep(60000);
	put(j, 95, 10, 0, 0); /* the interval passed: synced */
	put(j, 96, 10, 0, 0); /* not yet */
	cr_assert_eq(shmbus_journal_synced(j), 96);
	cr_assert_eq(shmbus_journal_tick(j), 0);
	cr_assert_eq(shmbus_journal_synced(j), 96, "tick before the interval");
	usleep(60000);
	cr_assert_eq(shmbus_journal_tick(j), 0);
	cr_assert_eq(shmbus_journal_synced(j), 97);
	shmbus_journal_close(j);
	o = (shmbus_journal_opts_t){0};
	cr_assert_eq(shmbus_journal_open(p, &o, &j), 0);
	put(j, 97, 10, 0, 0);
	shmbus_journal_get_stats(j, &st);
	cr_assert_eq(st.syncs, 0, "policy none never syncs by itself");
	cr_assert_eq(shmbus_journal_sync(j), 0);
	cr_assert_eq(shmbus_journal_synced(j), 98);
	shmbus_journal_close(j);
	jt_rmrf(dir);
}

Test(journal, retention_removes_whole_old_segments_only)
{
	char dir[256], p[512];
	jt_tmpdir(dir);
	snprintf(p, sizeof(p), "%s/j", dir);
	shmbus_journal_opts_t o = {.segment_size = 64 * KB,
				   .retain_bytes = 4 * 64 * KB};
	shmbus_journal_t *j;
	cr_assert_eq(shmbus_journal_open(p, &o, &j), 0);
	for (uint64_t i = 0; i < 2000; i++)
		put(j, i, 500, i % 3, i);
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	cr_assert_leq(st.segments, 4);
	cr_assert_gt(st.removed, 5);
	cr_assert_gt(st.first_seq, 0);
	/* reading from 0 starts at the oldest record kept */
	uint64_t *seqs = malloc(2000 * 8);
	uint64_t n = collect(j, NULL, seqs, 2000);
	cr_assert_eq(seqs[0], st.first_seq);
	cr_assert_eq(n, 2000 - st.first_seq);
	shmbus_journal_close(j);
	/* by age: everything but the active segment */
	o.retain_bytes = 0;
	o.retain_age_ms = 1;
	cr_assert_eq(shmbus_journal_open(p, &o, &j), 0);
	usleep(5000);
	cr_assert_eq(shmbus_journal_retain(j), 3);
	shmbus_journal_get_stats(j, &st);
	cr_assert_eq(st.segments, 1);
	cr_assert_eq(collect(j, NULL, seqs, 2000), 2000 - st.first_seq);
	cr_assert_eq(shmbus_journal_end(j), 2000);
	shmbus_journal_close(j);
	free(seqs);
	jt_rmrf(dir);
}

Test(journal, missing_or_bad_index_files_are_rebuilt)
{
	char dir[256], p[512];
	jt_tmpdir(dir);
	small_journal(dir, 400);
	cr_assert_eq(unlink(jt_seg(p, dir, 10, ".idx")), 0);
	shmbus_journal_t *j = jopen(dir, 0, 0);
	uint64_t seqs[400];
	shmbus_journal_query_t q = {.key = 3, .flags = SHMBUS_JOURNAL_BY_KEY};
	cr_assert_eq(collect(j, &q, seqs, 400), 80);
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	cr_assert_eq(st.indexes_rebuilt, 1);
	struct stat sb;
	cr_assert_eq(stat(p, &sb), 0, "the writer wrote it again");
	shmbus_journal_close(j);
	jt_flip(p, 100, 1); /* inside the sparse entries */
	j = jopen(dir, SHMBUS_JOURNAL_READONLY, 0);
	cr_assert_eq(collect(j, &q, seqs, 400), 80);
	for (int i = 0; i < 80; i++)
		cr_assert_eq(seqs[i], 10 + 3 + 5 * (uint64_t)i);
	shmbus_journal_get_stats(j, &st);
	cr_assert_eq(st.indexes_rebuilt, 1);
	shmbus_journal_close(j);
	jt_rmrf(dir);
}

Test(journal, a_reader_follows_the_writer_across_segments)
{
	char dir[256];
	jt_tmpdir(dir);
	shmbus_journal_t *w = jopen(dir, 0, 64 * KB);
	shmbus_journal_t *r = jopen(dir, SHMBUS_JOURNAL_READONLY, 0);
	shmbus_journal_iter_t *it;
	cr_assert_eq(shmbus_journal_iter_open(r, NULL, &it), 0);
	shmbus_journal_entry_t e;
	cr_assert_eq(shmbus_journal_iter_next(it, &e), 0, "nothing yet");
	uint64_t got = 0;
	for (uint64_t i = 0; i < 3000; i++) {
		put(w, i, (uint32_t)(i % 700), i, i);
		if (i % 7)
			continue;
		int rc;
		while ((rc = shmbus_journal_iter_next(it, &e)) == 1)
			QUIET(e.rec.seq == got++, "sequence");
		QUIET(rc == 0 && got == i + 1, "caught up at %llu: rc %d",
		      (unsigned long long)i, rc);
	}
	shmbus_journal_iter_close(it);
	shmbus_journal_close(r);
	shmbus_journal_close(w);
	jt_rmrf(dir);
}

/* ------------------------------------------------------ tail recovery */

Test(journal, a_torn_last_record_is_cut_and_reported)
{
	char dir[256], p[512];
	jt_tmpdir(dir);
	shmbus_journal_t *j = jopen(dir, 0, 64 * KB);
	for (uint64_t i = 0; i < 20; i++)
		put(j, i, 40, 0, i);
	uint64_t end_off = JSEG_DATA_OFF + 20 * jrec_frame(40);
	shmbus_journal_close(j);
	/* a record begun and never finished: header, no marker */
	struct jrec_header h = {.len = 40, .seq = 20};
	jt_poke(jt_seg(p, dir, 0, ".seg"), end_off, &h, sizeof(h));
	j = jopen(dir, 0, 0);
	shmbus_journal_recovery_t rec;
	shmbus_journal_get_recovery(j, &rec);
	cr_assert_eq(rec.cut_records, 1);
	cr_assert_eq(rec.segment, 0);
	cr_assert_eq(rec.offset, end_off);
	cr_assert(strstr(rec.reason, "never finished"), "%s", rec.reason);
	cr_assert_eq(shmbus_journal_end(j), 20);
	put(j, 20, 8, 0, 0); /* appends go on where the cut was */
	shmbus_journal_close(j);
	j = jopen(dir, 0, 0);
	shmbus_journal_get_recovery(j, &rec);
	cr_assert_eq(rec.cut_records, 0);
	cr_assert_eq(shmbus_journal_end(j), 21);
	shmbus_journal_close(j);
	jt_rmrf(dir);
}

/* Damage at every framing boundary (each header field, first and last
 * payload byte) of every record of a small journal: a sealed segment and
 * the active one. Each is detected and reported with its offset; reads
 * never return the damaged record, and resume where the rules say. */
struct frame {
	uint64_t seg, off, seq;
	uint32_t len;
};

static uint32_t frames_of(const char *dir, struct frame *f, uint32_t max)
{
	shmbus_journal_t *j = jopen(dir, SHMBUS_JOURNAL_READONLY, 0);
	shmbus_journal_iter_t *it;
	cr_assert_eq(shmbus_journal_iter_open(j, NULL, &it), 0);
	shmbus_journal_entry_t e;
	uint32_t n = 0;
	while (n < max && shmbus_journal_iter_next(it, &e) == 1)
		f[n++] = (struct frame){e.segment, e.offset, e.rec.seq,
					e.rec.len};
	shmbus_journal_iter_close(it);
	shmbus_journal_close(j);
	return n;
}

static void damaged_sealed(const char *dir, const struct frame *f, uint32_t n,
			   uint32_t k)
{
	shmbus_journal_t *j = jopen(dir, 0, 0);
	cr_assert_eq(shmbus_journal_verify(j), 1, "record %u", k);
	char want[64];
	snprintf(want, sizeof(want), "offset %llu:",
		 (unsigned long long)f[k].off);
	cr_assert(strstr(shmbus_errmsg(), want), "%u: %s", k, shmbus_errmsg());
	/* the index gives the framing: every other record is read */
	shmbus_journal_query_t q = {.flags = SHMBUS_JOURNAL_SKIP_CORRUPT};
	static uint64_t seqs[1000];
	uint64_t got = collect(j, &q, seqs, 1000);
	cr_assert_eq(got, n - 1, "record %u: read %llu", k,
		     (unsigned long long)got);
	for (uint32_t i = 0, g = 0; i < n; i++)
		if (i != k)
			QUIET(seqs[g++] == f[i].seq, "record %u", i);
	shmbus_journal_close(j);
}

static void damaged_active(const char *dir, const struct frame *f, uint32_t n,
			   uint32_t k, uint32_t first_active)
{
	shmbus_journal_t *j;
	if (k != n - 1) /* valid records follow: STRICT refuses to cut */
		cr_assert_eq(jopen_rc(dir, SHMBUS_JOURNAL_STRICT, &j),
			     SHMBUS_ECORRUPT, "%u: %s", k, shmbus_errmsg());
	j = jopen(dir, 0, 0);
	shmbus_journal_recovery_t rec;
	shmbus_journal_get_recovery(j, &rec);
	cr_assert_eq(rec.offset, f[k].off, "record %u at %llu: cut at %llu (%s)",
		     k, (unsigned long long)f[k].off,
		     (unsigned long long)rec.offset, rec.reason);
	cr_assert_eq(rec.segment, f[k].seg);
	cr_assert_eq(rec.cut_records, n - k, "record %u: %s", k, rec.reason);
	static uint64_t seqs[1000];
	cr_assert_eq(collect(j, NULL, seqs, 1000), first_active + k);
	cr_assert_eq(shmbus_journal_verify(j), 0);
	shmbus_journal_close(j);
}

Test(journal, damage_at_every_framing_boundary_is_detected)
{
	char dir[256], work[256], p[512];
	jt_tmpdir(dir);
	jt_tmpdir(work);
	/* 64 KiB segments: one sealed, one active, 1-1.3 KiB records */
	sized_journal(dir, 80, 1000);
	static struct frame f[200];
	uint32_t n = frames_of(dir, f, 200), first_active = 0;
	while (first_active < n && f[first_active].seg == f[0].seg)
		first_active++;
	cr_assert(first_active > 0 && first_active < n, "two segments");
	static const uint32_t fields[] = {0, 4, 8, 12, 16, 24, 32, 40, 48, 52};
	for (uint32_t k = 0; k < n; k++) {
		uint32_t nf = sizeof(fields) / sizeof(fields[0]);
		for (uint32_t fi = 0; fi < nf + 2; fi++) {
			uint64_t at = fi < nf ? fields[fi]
				      : fi == nf ? 56
						 : 56 + f[k].len - 1;
			if (fi >= nf && f[k].len == 0)
				continue;
			jt_copy(dir, work);
			jt_flip(jt_seg(p, work, f[k].seg, ".seg"), f[k].off + at,
				0x04);
			if (k < first_active)
				damaged_sealed(work, f, n, k);
			else
				damaged_active(work, f + first_active,
					       n - first_active, k - first_active,
					       first_active);
		}
	}
	/* truncation of the active segment at every record boundary and in
	 * the middle of every record: the writer extends the file and cuts
	 * the tail there */
	for (uint32_t k = first_active; k < n; k++)
		for (int mid = 0; mid < 2; mid++) {
			jt_copy(dir, work);
			uint64_t at = f[k].off + (mid ? 30 : 0);
			cr_assert_eq(truncate(jt_seg(p, work, f[k].seg, ".seg"),
					      (off_t)at),
				     0);
			shmbus_journal_t *j;
			cr_assert_eq(jopen_rc(work, SHMBUS_JOURNAL_READONLY,
					      &j),
				     SHMBUS_ECORRUPT, "a reader refuses");
			cr_assert(strstr(shmbus_errmsg(), "truncated"));
			j = jopen(work, 0, 0);
			shmbus_journal_recovery_t rec;
			shmbus_journal_get_recovery(j, &rec);
			cr_assert(strstr(rec.reason, "truncated"), "%s",
				  rec.reason);
			cr_assert_eq(rec.cut_records, mid ? 1 : 0);
			static uint64_t seqs[1000];
			cr_assert_eq(collect(j, NULL, seqs, 1000), k);
			shmbus_journal_close(j);
		}
	jt_rmrf(work);
	jt_rmrf(dir);
}
