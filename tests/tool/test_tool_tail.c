/*
 * `shmbus tail`: the last records decoded by the channel's schema (hex
 * without one), what pub published, laps said, never gating a producer,
 * a corrupt claim word ending it, SIGTERM ending it between records.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"
#include "support/tool_proc.h"
#include "support/tool_records.h"
#include "support/tool_run.h"

TestSuite(tool, .fini = tidy);

Test(tool, tail_prints_the_last_records_decoded)
{
	struct feeder f;
	feeder_start(&f, "tl");
	cr_assert_eq(tool("tail %s Orders --count 3", f.bus), 0);
	cr_expect_eq(lines_of(out), 3, "%s", out);
	expect_schema("record", true);
	json_t *line = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
	cr_assert_not_null(line, "%s", out);
	json_t *rec = json_object_get(line, "record");
	cr_expect_eq(json_object_size(rec), 15);
	cr_expect_eq(num(rec, "u64"), num(line, "key"));
	cr_expect_str_eq(json_string_value(json_object_get(rec, "raw")),
			 "deadbeef");
	cr_expect_str_eq(json_string_value(json_object_get(rec, "venue")),
			 "XLON");
	json_decref(line);
	cr_assert_eq(tool("tail %s Orders", f.bus), 0);
	cr_expect_eq(lines_of(out), 10);
	/* without a schema: hex */
	cr_assert_eq(tool("pub %s Plain --hex 0a0b 2>&1", f.bus), 0);
	cr_assert_eq(tool("tail %s Plain --from-start", f.bus), 0);
	expect_out("\"hex\":\"0a0b\"");
	expect_schema("record", true);
	/* Types is empty until then: from the start, whenever tail starts */
	cr_expect_eq(tool("tail %s Types --from-start --follow --count 1 & "
			  "sleep 0.5; "
			  "%s pub %s Types '{\"u8\": 42}' 2>/dev/null; wait $!",
			  f.bus, SHMBUS_TOOL, f.bus),
		     0);
	expect_out("\"u8\":42");
	cr_expect_eq(tool("tail %s Nope 2>&1", f.bus), 1);
	expect_out("does not exist");
	cr_expect_eq(tool("tail nosuchbus Orders 2>&1"), 1);
	expect_out("bus 'nosuchbus' does not exist");
	feeder_stop(&f);
}

/* Stopped while producers go a ring past it: it says what it missed. */
Test(tool, tail_says_how_many_it_missed)
{
	struct own o;
	own_bus(&o, "lp", 8, NULL, true);
	const char *name = o.name;
	for (uint64_t v = 0; v < 4; v++)
		cr_assert_eq(shmbus_publish(o.p, &v, 8, v), 0);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "/tmp/shmbus-tail-%d", (int)getpid());
	const char *args[] = {"tail",	  name,	  "C",	"--from-start",
			      "--follow", "--count", "12", NULL};
	pid_t tail = tool_bg(prefix, args);
	for (int i = 0; i < 400 && lines_of(out) < 4; i++) {
		usleep(25000);
		slurp(prefix, "out");
	}
	cr_assert_eq(lines_of(out), 4, "%s", out);
	kill(tail, SIGSTOP);
	for (uint64_t v = 4; v < 44; v++) /* nobody gates: no subscriber */
		cr_assert_eq(shmbus_publish(o.p, &v, 8, v), 0);
	kill(tail, SIGCONT);
	cr_expect_eq(child_status(tail), 0);
	slurp(prefix, "out");
	cr_expect_eq(lines_of(out), 12, "%s", out);
	expect_out("{\"seq\":3,");
	expect_out("{\"seq\":36,");
	expect_out("{\"seq\":43,");
	cr_expect(strstr(out, "{\"seq\":35,") == NULL);
	slurp(prefix, "err");
	expect_out("lapped by the producers: missed 32 records");
	bg_remove(prefix);
	own_close(&o);
}

/* pub -> tail round trip, every field type */
Test(tool, tail_prints_what_pub_published)
{
	struct feeder f;
	feeder_start(&f, "tr");
	cr_assert_eq(tool("pub %s Types '%s' '%s' 2>&1", f.bus, rec_a, rec_b),
		     0, "%s", out);
	cr_assert_eq(tool("tail %s Types --from-start --count 2", f.bus), 0);
	const char *want[2] = {rec_a_decoded, rec_b_decoded};
	char *p = out;
	for (int i = 0; i < 2; i++) {
		char *nl = strchr(p, '\n');
		cr_assert_not_null(nl, "%s", out);
		*nl = '\0';
		json_error_t e;
		json_t *line = json_loads(p, 0, &e), *w = json_loads(want[i], 0, &e);
		cr_assert_not_null(line, "%s", p);
		cr_expect(json_equal(json_object_get(line, "record"), w), "%s", p);
		cr_expect_eq(num(line, "seq"), i);
		json_decref(line);
		json_decref(w);
		p = nl + 1;
	}
	feeder_stop(&f);
}

/* A stalled tail never holds a back-pressure channel's producer. */
Test(tool, tail_never_gates_the_producer)
{
	struct own o;
	own_bus(&o, "tg", 8, "real", true);
	const char *name = o.name;
	shmbus_producer_t *p = o.p;
	uint64_t none = 0;
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "/tmp/shmbus-tailg-%d", (int)getpid());
	const char *args[] = {"tail", name, "C", "--from-start", "--follow",
			      NULL};
	pid_t tail = tool_bg(prefix, args);
	for (uint64_t v = 0; v < 8; v++) /* the ring is full */
		cr_assert_eq(shmbus_try_publish(p, &v, 8, v), 0);
	cr_expect_eq(shmbus_try_publish(p, &none, 8, 0), SHMBUS_EAGAIN);
	for (int i = 0; i < 400 && lines_of(out) < 8; i++) {
		usleep(25000);
		slurp(prefix, "out");
	}
	cr_expect_eq(lines_of(out), 8, "the tail read %s", out);
	kill(tail, SIGSTOP); /* a stalled tail */
	cr_expect_eq(shmbus_poll(o.sub, 64), 8); /* the real subscriber reads */
	for (uint64_t v = 8; v < 16; v++)
		cr_expect_eq(shmbus_try_publish(p, &v, 8, v), 0,
			     "record %llu held back", (unsigned long long)v);
	cr_expect_eq(shmbus_try_publish(p, &none, 8, 0), SHMBUS_EAGAIN);
	kill(tail, SIGKILL);
	child_status(tail);
	bg_remove(prefix);
	own_close(&o);
}

/* A claim word 2^63 and more past the tail is no lap but a corrupt
 * channel: said once, with the values, and tail ends with 1 (it skipped
 * one record a call, for ever, deaf to SIGTERM). */
Test(tool, tail_ends_on_a_claim_no_lap_reaches)
{
	struct own o;
	own_bus(&o, "tc", 8, NULL, true);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "/tmp/shmbus-tailc-%d", (int)getpid());
	const char *args[] = {"tail", o.name, "C", "--follow", NULL};
	pid_t tail = tool_bg(prefix, args);
	out[0] = '\0';
	for (uint64_t v = 0; v < 400 && lines_of(out) < 1; v++) {
		cr_assert_eq(shmbus_publish(o.p, &v, 8, v), 0);
		usleep(25000);
		slurp(prefix, "out");
	}
	cr_assert_geq(lines_of(out), 1, "tail printed nothing");
	_Atomic uint64_t *claim = &o.ch->hdr->claim;
	uint64_t real = atomic_load(claim);
	uint64_t bad = real + (1ull << 63) + (1ull << 40);
	atomic_store(claim, bad);
	int st = exit_within(tail, 5);
	slurp(prefix, "err");
	cr_expect_eq(st, 1, "exit %d; %zu bytes on stderr: %.300s", st,
		     strlen(out), out);
	char want[64];
	snprintf(want, sizeof(want), "claim sequence %llu",
		 (unsigned long long)bad);
	/* short of the 2 MiB that the old loop fills out with */
	const char *const says[] = {want, "channel 'C' of bus",
					   "corrupt", NULL};
	for (int i = 0; says[i]; i++)
		cr_expect(strstr(out, says[i]) != NULL, "no '%s' in %.300s",
			  says[i], out);
	cr_expect(strstr(out, "lapped") == NULL, "%.300s", out);
	atomic_store(claim, real);
	bg_remove(prefix);
	own_close(&o);
}

/* SIGTERM ends tail between two records, not once it has read them all. */
Test(tool, tail_stops_on_sigterm_while_it_reads)
{
	struct own o;
	uint64_t n = 1 << 16;
	own_bus(&o, "ts", (uint32_t)n, NULL, true);
	for (uint64_t v = 0; v < n; v++)
		cr_assert_eq(shmbus_publish(o.p, &v, 8, v), 0);
	const char *args[] = {"tail", o.name, "C", "--from-start", NULL};
	uint64_t lines = lines_after_sigterm(args);
	cr_expect_lt(lines, n / 2, "tail printed %llu of %llu records after "
				   "SIGTERM",
		     (unsigned long long)lines, (unsigned long long)n);
	own_close(&o);
}
