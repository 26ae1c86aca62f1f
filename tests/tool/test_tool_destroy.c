/*
 * `shmbus destroy` and `shmbus watchdog`: a live bus refused, the daemon
 * watchdog's passes counted, another user's bus left whole and its owner
 * named.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "support/tool_run.h"

TestSuite(tool, .fini = tidy);

Test(tool, destroy_and_watchdog_on_a_live_bus)
{
	struct feeder f;
	feeder_start(&f, "dw");
	cr_expect_eq(tool("destroy %s 2>&1", f.bus), 1);
	expect_out("live");
	/* the feeder runs a watchdog thread: a second one is refused */
	cr_expect_eq(tool("watchdog %s 2>&1", f.bus), 1);
	feeder_stop(&f);

	struct own o;
	own_bus(&o, "wd", 16, NULL, false);
	const char *name = o.name;
	shmbus_close(o.bus);
	cr_assert_eq(tool("watchdog %s --period 5 2>&1 & sleep 0.5; "
			  "kill -TERM $!; wait $!",
			  name),
		     0, "%s", out);
	expect_out("shmbus watchdog: bus");
	expect_out("stopped after");
	cr_assert_eq(tool("stat %s --json", name), 0);
	json_t *doc = json_loads(out, 0, NULL);
	cr_assert_not_null(doc);
	cr_expect_gt(num(doc, "watchdog.passes"), 10);
	json_decref(doc);
	cr_assert_eq(tool("destroy %s", name), 0);
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm/shmbus.%s", name);
	cr_expect_neq(access(path, F_OK), 0);
}

/* Another user's bus: destroy, forced or not, says permission denied and
 * whose it is (forced, it said "does not exist"), and leaves it whole. */
Test(tool, destroy_of_another_users_bus_names_its_owner)
{
	struct own o;
	own_bus(&o, "du", 8, NULL, false);
	char bus[128], chan[160];
	snprintf(bus, sizeof(bus), "/dev/shm/shmbus.%s", o.name);
	snprintf(chan, sizeof(chan), "%s:C", bus);
	static const char *const forms[] = {"", "--force "};
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(tool_as_nobody("destroy %s%s 2>&1", forms[i],
					    o.name),
			     1, "%s", forms[i]);
		expect_out("permission denied");
		expect_out("belongs to uid 0 (root), not to us (uid 65534 "
			   "(nobody))");
		cr_expect(strstr(out, "does not exist") == NULL, "%s", out);
		cr_expect_eq(access(bus, F_OK), 0);
		cr_expect_eq(access(chan, F_OK), 0);
	}
	own_close(&o);
}
