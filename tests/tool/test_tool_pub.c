/*
 * `shmbus pub`: every field type of a schema encoded and decoded back (by
 * `dlq show --json`), bad records refused naming the field, all or
 * nothing; hex records, a ring that stays full, NUL bytes, SIGTERM.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>

#include "helpers.h"
#include "tool_schema.h"
#include "support/tool_proc.h"
#include "support/tool_records.h"
#include "support/tool_run.h"

TestSuite(tool, .fini = tidy);

/* What the test's subscriber saw: each record, then it fails it for good,
 * so that `shmbus dlq show --json` decodes it again. */
struct seen {
	int n;
	struct all_types rec[8];
	uint64_t key[8];
};

static int keep_and_refuse(const shmbus_record_t *r, void *ctx)
{
	struct seen *s = ctx;
	if (s->n < 8) {
		memcpy(&s->rec[s->n], r->data, sizeof(struct all_types));
		s->key[s->n++] = r->key;
	}
	return SHMBUS_EPERMANENT;
}

static void poll_for(shmbus_sub_t *s, struct seen *seen, int n)
{
	for (int i = 0; i < 500 && seen->n < n; i++)
		if (shmbus_poll(s, 16) == 0)
			usleep(10000);
	cr_assert_eq(seen->n, n);
}

static void expect_fields_a(const struct all_types *a)
{
	cr_expect_eq(a->u64, UINT64_MAX);
	cr_expect_eq(a->i64, INT64_MIN);
	cr_expect_eq(a->f64, -2.5e300);
	cr_expect_eq(a->u32, UINT32_MAX);
	cr_expect_eq(a->i32, INT32_MIN);
	cr_expect_eq(a->f32, 1.5f);
	cr_expect_eq(a->u16, UINT16_MAX);
	cr_expect_eq(a->i16, INT16_MIN);
	cr_expect_eq(a->u8, UINT8_MAX);
	cr_expect_eq(a->i8, INT8_MIN);
	cr_expect_eq(a->side, 7);
	cr_expect_eq(a->flag, 1);
	cr_expect_eq(memcmp(a->sym, "ABCDEFGH", 8), 0);
	cr_expect_eq(memcmp(a->raw, "\xde\xad\xbe\xef", 4), 0);
	cr_expect_eq(a->venue, 300);
}

static void expect_fields_b(const struct all_types *b)
{
	cr_expect_eq(b->u64, (1ull << 53) + 1);
	cr_expect(isnan(b->f32));
	cr_expect(isinf(b->f64) && b->f64 < 0);
	cr_expect_eq(b->side, 5);
	cr_expect_eq(b->venue, 1);
	cr_expect_eq(b->i8, 127);
	cr_expect_str_eq(b->sym, "x");
	cr_expect_eq(b->i64, 0);
	cr_expect_eq(b->flag, 0);
}

/* The DLQ entry's record, decoded by `shmbus dlq show --json`, equals
 * the expected JSON. */
static void expect_decoded(const char *bus, shmbus_channel_t *ch, int k,
			   const char *expected)
{
	shmbus_dlq_entry_t e[8];
	cr_assert_gt(shmbus_dlq_list(ch, 0, e, 8), k);
	cr_assert_eq(tool("dlq %s Types show %llu --json", bus,
			  (unsigned long long)e[k].id),
		     0);
	expect_schema("dlq-entry", false);
	json_error_t je;
	json_t *doc = json_loads(out, 0, &je), *want = json_loads(expected, 0, &je);
	cr_assert_not_null(doc, "%s", out);
	cr_assert_not_null(want);
	json_t *got = json_object_get(doc, "record");
	char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(want, JSON_SORT_KEYS);
	cr_expect(json_equal(got, want), "decoded %s\nwanted  %s", g, w);
	cr_expect_eq(num(doc, "seq"), (json_int_t)e[k].rec.seq);
	free(g);
	free(w);
	json_decref(doc);
	json_decref(want);
}

Test(tool, pub_encodes_every_field_type_and_decodes_back)
{
	struct feeder f;
	feeder_start(&f, "pb");
	shmbus_t *bus;
	shmbus_channel_t *ch = feeder_channel(&f, "Types", &bus);
	static struct seen seen;
	shmbus_sub_opts_t so = {.name = "check"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, keep_and_refuse, &seen, &so, &s), 0);

	cr_assert_eq(tool("pub %s Types '%s' '%s' --key 9 2>&1", f.bus, rec_a,
			  rec_b),
		     0, "%s", out);
	expect_out("published 2 records to 'Types' (seq 0 to 1)");
	poll_for(s, &seen, 2);
	expect_fields_a(&seen.rec[0]);
	expect_fields_b(&seen.rec[1]);
	cr_expect_eq(seen.key[0], 9);
	expect_decoded(f.bus, ch, 0, rec_a_decoded);
	expect_decoded(f.bus, ch, 1, rec_b_decoded);

	/* from input: plain records and a line of tail output with its key */
	cr_assert_eq(tool("pub %s Types 2>&1 <<'EOF'\n%s\n\n"
			  "{\"seq\": 1, \"key\": 77, \"record\": %s}\nEOF",
			  f.bus, rec_a, rec_b_decoded),
		     0, "%s", out);
	poll_for(s, &seen, 4);
	expect_fields_a(&seen.rec[2]);
	expect_fields_b(&seen.rec[3]);
	cr_expect_eq(seen.key[3], 77);
	shmbus_close(bus);
	feeder_stop(&f);
}

Test(tool, pub_refuses_bad_records_naming_the_field)
{
	struct feeder f;
	feeder_start(&f, "pe");
	static const struct {
		const char *rec, *says;
	} bad[] = {
		{"{\"i8\": 128}", "field 'i8' (i8): 128: out of range (-128..127)"},
		{"{\"u8\": -1}", "field 'u8' (u8): -1: out of range (0..255)"},
		{"{\"u64\": \"18446744073709551616\"}", "field 'u64'"},
		{"{\"u32\": 1.5}", "wants an integer"},
		{"{\"f32\": 1e39}", "out of range for a float"},
		{"{\"f64\": \"fast\"}", "field 'f64'"},
		{"{\"sym\": \"ABCDEFGHI\"}", "9 bytes, the field holds 8"},
		{"{\"raw\": \"0102\"}", "wants 4 bytes as 8 hex digits"},
		{"{\"raw\": \"zz00zz00\"}", "field 'raw'"},
		{"{\"side\": \"HOLD\"}", "no value of that name"},
		{"{\"venue\": 70000}", "field 'venue' (enum): 70000: out of range"},
		{"{\"flag\": 2}", "wants true or false"},
		{"{\"nope\": 1}", "no field 'nope' in the schema (fields: u64,"},
		{"{\"u8\": 1, \"u8\": 2}", "not JSON: duplicate object key"},
		{"{bad", "not JSON"},
		{"[1, 2]", "a record is a JSON object"},
		{"{\"u64\": 18446744073709551616}", "as strings"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(tool("pub %s Types '{\"u8\": 1}' '%s' 2>&1", f.bus,
				  bad[i].rec),
			     1, "%s", bad[i].rec);
		expect_out("record 2: ");
		expect_out(bad[i].says);
	}
	/* all or nothing: the good first record was not published */
	shmbus_t *bus;
	shmbus_channel_t *ch = feeder_channel(&f, "Types", &bus);
	shmbus_channel_info_t info;
	cr_assert_eq(shmbus_channel_get_info(ch, &info), 0);
	cr_expect_eq(info.claimed, 0);
	/* from input, a bad line stops there and says which */
	cr_expect_eq(tool("pub %s Types 2>&1 <<'EOF'\n{\"u8\": 1}\n{\"u8\": 300}\n"
			  "{\"u8\": 2}\nEOF",
			  f.bus),
		     1);
	expect_out("line 2: field 'u8'");
	expect_out("published 1 record to 'Types'");
	/* the live single producer of Orders */
	cr_expect_eq(tool("pub %s Orders '{}' 2>&1", f.bus), 1);
	expect_out("single-producer and its producer (pid");
	expect_out("EBUSY");
	cr_expect_eq(tool("pub %s Plain '{}' 2>&1", f.bus), 1);
	expect_out("has no schema: give records in hex (--hex)");
	cr_expect_eq(tool("pub %s Nope '{}' 2>&1", f.bus), 1);
	expect_out("channel 'Nope' does not exist");
	expect_out("shmbus ls");
	shmbus_close(bus);
	feeder_stop(&f);
}

static uint8_t hex_got[20][16];
static uint32_t hex_len[20];
static int hex_n;

static int keep_hex(const shmbus_record_t *r, void *ctx)
{
	(void)ctx;
	memcpy(hex_got[hex_n], r->data, r->len);
	hex_len[hex_n++] = r->len;
	return 0;
}

Test(tool, pub_hex_and_a_ring_that_stays_full)
{
	struct feeder f;
	feeder_start(&f, "ph");
	char lines[2048] = "";
	for (int i = 0; i < 16; i++) /* i + 1 bytes of value i */
		for (int k = 0; k <= i; k++)
			snprintf(lines + strlen(lines),
				 sizeof(lines) - strlen(lines), "%02x%s", i,
				 k == i ? "\n" : " ");
	cr_assert_eq(tool("pub %s Plain --hex 2>&1 <<'EOF'\n%sEOF", f.bus, lines),
		     0, "%s", out);
	expect_out("published 16 records");
	/* the durable name idle gates Plain, and nobody holds it */
	cr_expect_eq(tool("pub %s Plain --hex 01 --timeout 200 2>&1", f.bus), 1);
	expect_out("the ring stayed full for 200 ms: subscriber 'idle' is 16 "
		   "records behind and no process holds it");
	cr_expect_eq(tool("pub %s Plain --hex 0g 2>&1", f.bus), 1);
	expect_out("wants 1 to 16 bytes in hex digits");
	cr_expect_eq(tool("pub %s Plain --hex 000102030405060708090a0b0c0d0e0f10 "
			  "2>&1",
			  f.bus),
		     1);
	/* what was published: take the name idle and read it */
	shmbus_t *bus;
	shmbus_channel_t *ch = feeder_channel(&f, "Plain", &bus);
	shmbus_sub_opts_t so = {.name = "idle"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, keep_hex, NULL, &so, &s), 0);
	cr_expect_eq(shmbus_poll(s, 64), 16);
	for (int i = 0; i < 16; i++) {
		cr_expect_eq(hex_len[i], (uint32_t)i + 1);
		cr_expect_eq(hex_got[i][i], i);
	}
	shmbus_close(bus);
	feeder_stop(&f);
}

/* A line with a NUL byte is refused whole, by its number, as any bad
 * line: the lines before it are published, it and those after are not
 * (it was published up to the NUL, and the rest dropped, silently). */
Test(tool, pub_refuses_a_line_with_a_nul_byte)
{
	static const char json[] = "{\"u8\": 1}\n{\"u8\": 2}\0{\"u8\": 3}\n"
				   "{\"u8\": 4}\n",
			  hex[] = "01\n02\n0304\0ff\n05\n";
	char in[64];
	snprintf(in, sizeof(in), "/tmp/shmbus-pubn-%d", (int)getpid());
	struct feeder f;
	feeder_start(&f, "pn");
	FILE *fi = fopen(in, "w");
	cr_assert_not_null(fi);
	fwrite(json, 1, sizeof(json) - 1, fi);
	fclose(fi);
	cr_expect_eq(tool("pub %s Types < %s 2>&1", f.bus, in), 1, "%s", out);
	expect_out("line 2: a NUL byte at column 10");
	expect_out("published 1 record to 'Types' (seq 0)");
	shmbus_t *bus;
	shmbus_channel_t *ch = feeder_channel(&f, "Types", &bus);
	shmbus_channel_info_t info;
	cr_assert_eq(shmbus_channel_get_info(ch, &info), 0);
	cr_expect_eq(info.claimed, 1);
	shmbus_close(bus);
	feeder_stop(&f);
	/* in hex the same */
	struct own o;
	own_bus(&o, "pnh", 8, NULL, false);
	fi = fopen(in, "w");
	cr_assert_not_null(fi);
	fwrite(hex, 1, sizeof(hex) - 1, fi);
	fclose(fi);
	cr_expect_eq(tool("pub %s C --hex < %s 2>&1", o.name, in), 1, "%s",
		     out);
	expect_out("line 3: a NUL byte at column 5");
	expect_out("published 2 records");
	cr_assert_eq(shmbus_channel_get_info(o.ch, &info), 0);
	cr_expect_eq(info.claimed, 2);
	unlink(in);
	own_close(&o);
}

/* SIGTERM while pub waits for its next line: it says so and exits 1,
 * with what it published (it ended as at the end of input, with 0). */
Test(tool, pub_says_it_was_interrupted)
{
	struct own o;
	own_bus(&o, "pi", 8, NULL, false);
	int in[2];
	cr_assert_eq(pipe(in), 0);
	char err[64];
	snprintf(err, sizeof(err), "/tmp/shmbus-pubi-%d.err", (int)getpid());
	pid_t pub = test_fork();
	if (pub == 0) {
		int fe = open(err, O_CREAT | O_TRUNC | O_WRONLY, 0600);
		dup2(in[0], STDIN_FILENO);
		dup2(fe, STDERR_FILENO);
		close(in[1]);
		execl(SHMBUS_TOOL, "shmbus", "pub", o.name, "C", "--hex",
		      (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	cr_assert_eq(write(in[1], "01\n02\n", 6), 6);
	shmbus_channel_info_t info = {0};
	for (int i = 0; i < 400 && info.claimed < 2; i++) {
		usleep(10000);
		cr_assert_eq(shmbus_channel_get_info(o.ch, &info), 0);
	}
	cr_assert_eq(info.claimed, 2);
	kill(pub, SIGTERM);
	usleep(100000);
	signal(SIGPIPE, SIG_IGN); /* EPIPE once pub is gone */
	ssize_t w = write(in[1], "03\n", 3);
	(void)w;
	close(in[1]);
	signal(SIGPIPE, SIG_DFL);
	cr_expect_eq(exit_within(pub, 5), 1);
	cr_assert_eq(shmbus_channel_get_info(o.ch, &info), 0);
	cr_expect_eq(info.claimed, 2);
	FILE *fe = fopen(err, "r");
	size_t n = fe ? fread(out, 1, sizeof(out) - 1, fe) : 0;
	out[n] = '\0';
	if (fe)
		fclose(fe);
	unlink(err);
	expect_out("interrupted before line 3");
	expect_out("published 2 records");
	own_close(&o);
}

/* A compact channel: `shmbus pub` refuses a key before it claims (its
 * records carry none), publishes without one, and `shmbus stat` says
 * what the channel is. */
Test(tool, pub_refuses_a_key_on_a_compact_channel)
{
	const char *name = test_bus("tcmp");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "C", 8, 16,
					    SHMBUS_CH_COMPACT);
	cr_expect_eq(tool("pub %s C --hex 01 --key 5 2>&1", name), 1, "%s",
		     out);
	expect_out("channel 'C' is compact: its records carry no key, and "
		   "this record has key 5; publish it with key 0 (--key 0)");
	shmbus_channel_info_t info;
	cr_assert_eq(shmbus_channel_get_info(ch, &info), 0);
	cr_expect_eq(info.claimed, 0, "the refused record claimed a slot");
	cr_expect_eq(tool("pub %s C --hex 0102 2>&1", name), 0, "%s", out);
	expect_out("published 1 record to 'C' (seq 0)");
	cr_expect_eq(tool("stat %s 2>&1", name), 0, "%s", out);
	expect_out("; compact slots (no timestamps, keys or origins)");
	shmbus_close(bus);
	shmbus_unlink(name);
}
