/*
 * `shmbus ls`: live buses, stale and left-over objects, another ABI
 * version's bus, as a table and as JSON by its schema.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"
#include "support/tool_run.h"

TestSuite(tool, .fini = tidy);

/* ------------------------------------------------------------------- ls */


Test(tool, ls_lists_live_stale_and_left_over_objects)
{
	struct feeder f;
	feeder_start(&f, "ls");
	char junk[64], empty[64], lost[80];
	static char garbage[8192];
	memset(garbage, 0x5a, sizeof(garbage));
	snprintf(junk, sizeof(junk), "shmbus.t%d.junk", (int)getpid());
	snprintf(empty, sizeof(empty), "shmbus.t%d.empty", (int)getpid());
	snprintf(lost, sizeof(lost), "shmbus.%s:Lost", f.bus);
	shm_file(junk, garbage, sizeof(garbage));
	shm_file(empty, "", 0);
	shm_file(lost, garbage, 100);

	cr_assert_eq(tool("ls"), 0, "%s", out);
	expect_out("BUS ");
	cr_assert_eq(tool("ls %s", f.bus), 0);
	expect_width(out, 80);
	expect_out("in use");
	expect_out("root");
	expect_out("0600");
	expect_out("  Orders ");
	expect_out("single/block");
	expect_out("multi/block");
	expect_out("overwrite");
	expect_out("Lost");
	expect_out("not in the bus's table");
	/* the same as one JSON document */
	cr_assert_eq(tool("ls %s --json", f.bus), 0, "%s", out);
	expect_schema("ls", false);
	expect_out("\"producers_mode\": \"single\"");
	expect_out("\"subscriber_count\": 3");
	json_error_t je;
	json_t *doc = json_loads(out, 0, &je);
	cr_assert_not_null(doc, "%s: %s", je.text, out);
	json_t *buses = json_object_get(doc, "buses");
	cr_assert_eq(json_array_size(buses), 1);
	json_t *b = json_array_get(buses, 0);
	cr_expect_str_eq(json_string_value(json_object_get(b, "name")), f.bus);
	cr_expect_str_eq(json_string_value(json_object_get(b, "status")),
			 "in use");
	cr_expect_str_eq(json_string_value(json_object_get(b, "mode")),
			 "0600");
	cr_expect_gt(json_integer_value(json_object_get(b, "live")), 0);
	json_t *chs = json_object_get(b, "channels"), *c;
	size_t k;
	bool orders = false, ow = false;
	json_array_foreach(chs, k, c) {
		const char *name = json_string_value(json_object_get(c, "name"));
		if (!strcmp(name, "Orders")) {
			orders = true;
			cr_expect_str_eq(json_string_value(json_object_get(
						 c, "stall_policy")),
					 "block");
			cr_expect_gt(json_integer_value(
					     json_object_get(c, "record_size")),
				     0);
		}
		ow |= json_is_true(json_object_get(c, "overwrite"));
	}
	cr_expect(orders && ow, "%s", out);
	json_t *orph = json_array_get(json_object_get(b, "orphans"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(orph, "name")),
			 "Lost");
	json_decref(doc);
	cr_assert_eq(tool("ls t%d.junk --json", (int)getpid()), 0);
	expect_out("\"status\": \"stale\"");
	expect_out("is not a known state");
	cr_assert_eq(tool("ls t%d.junk", (int)getpid()), 0);
	expect_out("stale:");
	expect_out("is not a known state");
	cr_assert_eq(tool("ls t%d.empty", (int)getpid()), 0);
	expect_out("stale:");
	expect_out("not made ready");
	/* the advice is one that works: destroy without --force refuses a
	 * bus it cannot open (it said `shmbus destroy BUS`) */
	cr_expect_eq(tool("stat t%d.empty 2>&1", (int)getpid()), 1);
	char advice[64];
	snprintf(advice, sizeof(advice), "`shmbus destroy --force t%d.empty`",
		 (int)getpid());
	expect_out(advice);
	cr_expect_eq(tool("ls nosuchbus 2>&1"), 1);
	expect_out("no bus 'nosuchbus'");
	/* a bus of another ABI version, as a newer library would leave */
	const char *old = test_bus("abi");
	shmbus_t *bus;
	cr_assert_eq(shmbus_open(old, NULL, &bus), 0);
	bus->sb->abi_version = SHMBUS_ABI_VERSION + 1;
	cr_assert_eq(tool("ls %s", old), 0);
	expect_out("stale:");
	expect_out("has ABI version");
	cr_expect_eq(tool("stat %s 2>&1", old), 1);
	expect_out("shmbus destroy --force");
	shmbus_close(bus);
	shmbus_unlink(old);

	shm_remove(junk);
	shm_remove(empty);
	shm_remove(lost);
	feeder_stop(&f);
}
