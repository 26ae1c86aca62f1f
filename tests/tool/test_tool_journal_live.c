/*
 * `shmbus journal` beside live writers and buses: dump decoded by a
 * channel's schema, following a live writer, stopped by SIGTERM, told
 * what retention took; replay republishing into a bus.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "jhelpers.h"
#include "tool_schema.h"
#include "support/tool_proc.h"
#include "support/tool_run.h"

TestSuite(tool, .fini = tidy);

/* The journaler on a live channel (the feeder's Orders), dumped decoded by
 * its schema as tail decodes it. */
Test(tool, journal_dump_decodes_by_the_channel_schema)
{
	struct feeder f;
	char dir[256], path[300];
	feeder_start(&f, "jd");
	journal_dir(dir, 0);
	snprintf(path, sizeof(path), "%s/j", dir);
	shmbus_t *bus;
	shmbus_channel_t *ch = feeder_channel(&f, "Orders", &bus);
	shmbus_journal_attach_opts_t ao = {.name = "jt"};
	shmbus_journal_t *j;
	cr_assert_eq(shmbus_journal_attach(ch, path, &ao, &j), 0, "%s",
		     shmbus_errmsg());
	int journaled = 0;
	for (int i = 0; i < 2000 && journaled < 40; i++) {
		int n = shmbus_journal_poll(j, 64);
		cr_assert_geq(n, 0, "%s", shmbus_errmsg());
		journaled += n;
		usleep(2000);
	}
	cr_assert_eq(shmbus_journal_close(j), 0);
	cr_assert_eq(shmbus_unsubscribe(ch, "jt"), 0);
	json_t *doc;
	cr_assert_eq(tool("journal info %s --json", path), 0);
	cr_assert_not_null(doc = json_loads(out, 0, NULL), "%s", out);
	cr_expect_str_eq(json_string_value(json_object_get(doc, "channel")),
			 "Orders");
	json_decref(doc);
	/* what the library reads back (close drained a few more) */
	static uint64_t seqs[4096];
	int n_seqs = 0;
	shmbus_journal_iter_t *it;
	shmbus_journal_entry_t e;
	shmbus_journal_opts_t ro = {.flags = SHMBUS_JOURNAL_READONLY};
	cr_assert_eq(shmbus_journal_open(path, &ro, &j), 0);
	cr_assert_eq(shmbus_journal_iter_open(j, NULL, &it), 0);
	while (n_seqs < 4096 && shmbus_journal_iter_next(it, &e) == 1)
		seqs[n_seqs++] = e.rec.seq;
	shmbus_journal_iter_close(it);
	shmbus_journal_close(j);
	cr_assert_geq(n_seqs, journaled);
	int records = 0;

	cr_assert_eq(tool("journal dump %s --bus %s --channel Orders", path,
			  f.bus),
		     0, "%s", out);
	char *p = out;
	for (char *nl; (nl = strchr(p, '\n')); p = nl + 1, records++) {
		*nl = '\0';
		json_t *line = json_loads(p, 0, NULL);
		cr_assert_not_null(line, "%s", p);
		json_t *rec = json_object_get(line, "record");
		cr_expect_eq(json_object_size(rec), 15, "%s", p);
		cr_expect_eq(num(rec, "u64"), num(line, "key"));
		cr_expect_eq(num(rec, "i64"), -num(line, "key"));
		cr_expect_str_eq(json_string_value(json_object_get(rec, "raw")),
				 "deadbeef");
		json_t *venue = json_object_get(rec, "venue");
		cr_expect_str_eq(json_string_value(venue), "XLON");
		cr_assert_lt(records, n_seqs, "more lines than records");
		cr_expect_eq(num(line, "seq"), (json_int_t)seqs[records]);
		cr_expect_eq(num(line, "type"), 0); /* the channel id */
		cr_expect_eq(num(line, "len"), sizeof(struct all_types));
		cr_expect_null(json_object_get(line, "hex"));
		json_decref(line);
	}
	cr_expect_eq(records, n_seqs);
	/* without a schema: hex, the u64 first, little-endian */
	cr_assert_eq(tool("journal dump %s --count 1", path), 0);
	cr_assert_not_null(doc = json_loads(out, 0, NULL), "%s", out);
	const char *hex = json_string_value(json_object_get(doc, "hex"));
	cr_assert_not_null(hex, "%s", out);
	cr_expect_eq(strlen(hex), 2 * sizeof(struct all_types));
	uint64_t key = (uint64_t)num(doc, "key"), u64 = 0;
	for (int i = 7; i >= 0; i--) {
		unsigned byte;
		cr_assert_eq(sscanf(hex + 2 * i, "%2x", &byte), 1);
		u64 = u64 << 8 | byte;
	}
	cr_expect_eq(u64, key);
	json_decref(doc);
	/* decoding by another channel's schema is said on stderr */
	cr_expect_eq(tool("journal dump %s --count 1 --bus %s --channel Types "
			  "2>&1 >/dev/null",
			  path, f.bus),
		     0);
	expect_out("written from channel 'Orders'");
	cr_expect_eq(tool("journal dump %s --bus %s --channel Nope 2>&1", path,
			  f.bus),
		     1);
	expect_out("does not exist");
	shmbus_close(bus);
	feeder_stop(&f);
}

/* A writer of 64 KiB segments (retain_bytes: retention) in a fresh
 * DIR/j (path), with records 0..4 of 8 bytes, and `journal dump --follow`
 * on it in the background (its output in PREFIX.out, .err; tag names
 * them), seen to print them; the next record to append is 5. */
static pid_t follow_started(char path[300], char prefix[64], const char *tag,
			    uint64_t retain_bytes, shmbus_journal_t **j)
{
	char dir[256];
	journal_dir(dir, 0);
	snprintf(path, 300, "%s/j", dir);
	snprintf(prefix, 64, "/tmp/shmbus-%s-%d", tag, (int)getpid());
	shmbus_journal_opts_t jo = {.segment_size = 65536,
				    .retain_bytes = retain_bytes};
	cr_assert_eq(shmbus_journal_open(path, &jo, j), 0);
	for (uint64_t v = 0; v < 5; v++)
		cr_assert_eq(shmbus_journal_append(*j, v, v, 1, v, &v, 8), 0);
	const char *args[] = {"journal", "dump", path, "--follow", NULL};
	pid_t dump = tool_bg(prefix, args);
	for (int i = 0; i < 400 && lines_of(out) < 5; i++) {
		usleep(25000);
		slurp(prefix, "out");
	}
	cr_assert_eq(lines_of(out), 5, "%s", out);
	return dump;
}

Test(tool, journal_dump_follows_a_live_writer)
{
	char path[300], prefix[64];
	shmbus_journal_t *j;
	pid_t dump = follow_started(path, prefix, "jf", 0, &j);
	uint64_t v = 5;
	/* into new segments: 64-byte frames, about 1000 a segment */
	for (; v < 2500; v++)
		cr_assert_eq(shmbus_journal_append(j, v, v, 1, v, &v, 8), 0);
	for (int i = 0; i < 400 && lines_of(out) < 2500; i++) {
		usleep(25000);
		slurp(prefix, "out");
	}
	kill(dump, SIGTERM);
	cr_expect_eq(exit_within(dump, 10), 0, "not a clean exit on SIGTERM");
	slurp(prefix, "out");
	cr_expect_eq(lines_of(out), 2500);
	char *p = out;
	for (uint64_t k = 0; k < 2500; k++) {
		char want[32];
		int n = snprintf(want, sizeof(want), "{\"seq\":%llu,",
				 (unsigned long long)k);
		QUIET(!strncmp(p, want, (size_t)n), "line %llu: %.80s",
		      (unsigned long long)k, p);
		p = strchr(p, '\n');
		QUIET(p != NULL, "line %llu missing", (unsigned long long)k);
		p++;
	}
	/* --to ends a follow once the writer passed it */
	cr_assert_eq(tool("journal dump %s --follow --from 2490 --to 2495",
			  path),
		     0);
	cr_expect_eq(lines_of(out), 5, "%s", out);
	cr_assert_eq(shmbus_journal_close(j), 0);
	bg_remove(prefix);
}

/* SIGTERM ends a dump between two records, not at the journal's end. */
Test(tool, journal_dump_stops_on_sigterm_while_it_reads)
{
	char dir[256], path[300];
	journal_dir(dir, 0);
	snprintf(path, sizeof(path), "%s/j", dir);
	shmbus_journal_t *j;
	shmbus_journal_opts_t jo = {.segment_size = 1 << 22};
	cr_assert_eq(shmbus_journal_open(path, &jo, &j), 0);
	uint64_t n = 1 << 16;
	for (uint64_t v = 0; v < n; v++)
		cr_assert_eq(shmbus_journal_append(j, v, v, 1, v, &v, 8), 0);
	cr_assert_eq(shmbus_journal_close(j), 0);
	const char *args[] = {"journal", "dump", path, NULL};
	uint64_t lines = lines_after_sigterm(args);
	cr_expect_lt(lines, n / 2, "dump printed %llu of %llu records after "
				   "SIGTERM",
		     (unsigned long long)lines, (unsigned long long)n);
}

/* A follower that retention passes says how much it lost, on stderr,
 * and what it printed plus that is every sequence. */
Test(tool, journal_dump_says_what_retention_took_from_a_follower)
{
	char path[300], prefix[64];
	shmbus_journal_t *j;
	pid_t dump = follow_started(path, prefix, "jr", 3 * 65536, &j);
	uint64_t v = 5;
	kill(dump, SIGSTOP); /* asleep while 20 segments go by */
	for (; v < 20000; v++)
		cr_assert_eq(shmbus_journal_append(j, v, v, 1, v, &v, 8), 0);
	kill(dump, SIGCONT);
	uint64_t printed = 0, lost = 0;
	for (int i = 0; i < 400 && printed + lost < v; i++) {
		usleep(25000);
		slurp(prefix, "err");
		lost = 0;
		for (const char *e = out; (e = strstr(e, "retention removed "));
		     e++)
			lost += strtoull(e + 18, NULL, 10);
		slurp(prefix, "out");
		printed = lines_of(out);
	}
	kill(dump, SIGTERM);
	cr_expect_eq(exit_within(dump, 10), 0);
	cr_expect_gt(lost, 10000, "lost %llu", (unsigned long long)lost);
	cr_expect_eq(printed + lost, v, "printed %llu + lost %llu",
		     (unsigned long long)printed, (unsigned long long)lost);
	cr_assert_eq(shmbus_journal_close(j), 0);
	bg_remove(prefix);
}

static struct {
	uint64_t seq[512], key[512], origin[512];
	uint32_t flags[512];
	int n;
} replayed;

static int keep_replayed(const shmbus_record_t *r, void *ctx)
{
	(void)ctx;
	if (replayed.n < 512) {
		memcpy(&replayed.seq[replayed.n], r->data, 8);
		replayed.key[replayed.n] = r->key;
		replayed.origin[replayed.n] = r->origin;
		replayed.flags[replayed.n] = r->flags;
	}
	replayed.n++;
	return 0;
}

/* A journal of n records of len bytes: seq 3i, key i % 4, the payload's
 * first 8 bytes the sequence. */
static void journal_small(char dir[256], int which, int n, uint32_t len)
{
	char path[300];
	uint8_t buf[32] = {0};
	journal_dir(dir, which);
	snprintf(path, sizeof(path), "%s/j", dir);
	shmbus_journal_t *j;
	cr_assert_eq(shmbus_journal_open(path, NULL, &j), 0);
	for (uint64_t i = 0; i < (uint64_t)n; i++) {
		uint64_t seq = 3 * i;
		memcpy(buf, &seq, 8);
		cr_assert_eq(shmbus_journal_append(j, seq, i, 1, i % 4, buf,
						   len),
			     0);
	}
	cr_assert_eq(shmbus_journal_close(j), 0);
}

static void expect_replayed(shmbus_sub_t *s, int n, uint64_t first,
			    uint64_t step, uint64_t key)
{
	memset(&replayed, 0, sizeof(replayed));
	while (shmbus_poll(s, 512) > 0)
		;
	cr_assert_eq(replayed.n, n);
	for (int i = 0; i < n; i++) {
		uint64_t seq = first + step * (uint64_t)i;
		QUIET(replayed.seq[i] == seq && replayed.origin[i] == seq &&
			      (key == UINT64_MAX ? seq / 3 % 4 : key) ==
				      replayed.key[i] &&
			      (replayed.flags[i] & SHMBUS_REC_REPUBLISHED),
		      "record %d: seq %llu key %llu origin %llu flags %u", i,
		      (unsigned long long)replayed.seq[i],
		      (unsigned long long)replayed.key[i],
		      (unsigned long long)replayed.origin[i],
		      replayed.flags[i]);
	}
}

Test(tool, journal_replay_republishes_each_record_once)
{
	char dir[256], longer[256];
	journal_small(dir, 0, 300, 8);
	struct own o;
	own_bus(&o, "jr", 512, NULL, false);
	shmbus_sub_opts_t so = {.name = "check"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(o.ch, keep_replayed, NULL, &so, &s), 0);
	cr_assert_eq(tool("journal replay %s/j %s C --key 1 2>&1", dir, o.name),
		     0, "%s", out);
	expect_out("republished 75 records");
	expect_replayed(s, 75, 3, 12, 1);
	cr_assert_eq(tool("journal replay %s/j %s C --from 30 --to 90 2>&1",
			  dir, o.name),
		     0, "%s", out);
	expect_out("republished 20 records");
	expect_replayed(s, 20, 30, 3, UINT64_MAX);
	cr_assert_eq(tool("journal replay %s/j %s C --since 295 2>&1", dir,
			  o.name),
		     0, "%s", out);
	expect_replayed(s, 5, 885, 3, UINT64_MAX);

	/* records of 16 bytes do not fit the channel's 8: refused, said */
	journal_small(longer, 1, 10, 16);
	cr_expect_eq(tool("journal replay %s/j %s C 2>&1", longer, o.name), 1);
	expect_out("is 16 bytes");
	expect_out("records of at most 8 bytes");
	expect_out("republished 0 records before it");
	expect_replayed(s, 0, 0, 0, 0);
	cr_expect_eq(tool("journal replay %s/j %s Nope 2>&1", dir, o.name), 1);
	expect_out("does not exist");
	/* a live single producer holds the channel */
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(o.ch, NULL, &p), 0);
	cr_expect_eq(tool("journal replay %s/j %s C 2>&1", dir, o.name), 1);
	expect_out("single-producer");
	shmbus_producer_close(p);
	own_close(&o);
}
