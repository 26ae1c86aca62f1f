/*
 * The shmbus tool as a whole (tool_feeder feeds a live bus): every
 * command's help and its refusal of bad options and arguments, bad buses
 * and damaged objects answered by every command with a clear error, never
 * a crash, and the commands that run until stopped ending promptly on
 * SIGTERM.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>

#include "helpers.h"
#include "support/tool_run.h"

TestSuite(tool, .fini = tidy);

/* ------------------------------------------------------- help and usage */

Test(tool, every_command_has_help_and_refuses_bad_options)
{
	static const char *const cmds[] = {
		"ls",	    "stat",	    "top",	       "tail",
		"pub",	    "dlq",	    "watchdog",	       "destroy",
		"unsubscribe",
		"journal",  "journal info", "journal dump",   "journal verify",
		"journal replay"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cr_expect_eq(tool("%s --help", cmds[i]), 0, "%s", cmds[i]);
		char want[64];
		snprintf(want, sizeof(want), "usage: shmbus %s", cmds[i]);
		expect_out(want);
		expect_width(out, 80);
		cr_expect_eq(tool("%s --bogus x y z 2>&1", cmds[i]), 2, "%s",
			     cmds[i]);
		expect_out("unknown option '--bogus'");
		expect_out("--help");
	}
	static const struct {
		const char *args;
		int status;
		const char *says;
	} lines[] = {
		{"2>&1", 2, "usage: shmbus COMMAND"},
		{"frobnicate 2>&1", 2, "unknown command 'frobnicate'"},
		{"--help", 0, "Run `shmbus COMMAND --help`"},
		{"--version", 0, "shmbus 0."},
		{"stat 2>&1", 2, "expects BUS"},
		{"stat a b 2>&1", 2, "unexpected 'b'"},
		{"stat x --watch=abc 2>&1", 2, "--watch wants seconds"},
		{"stat x --json --prometheus 2>&1", 2, "not both"},
		{"stat x --listen 9464 --json 2>&1", 2, "no --json"},
		{"tail x y --count 0 2>&1", 2, "--count wants a whole number"},
		{"tail x y --count -5 2>&1", 2, "--count wants a whole number"},
		{"tail x 2>&1", 2, "expects BUS CHANNEL"},
		{"pub x y --timeout 2>&1", 2, "option '--timeout' needs a value"},
		{"top x --interval 0 2>&1", 2, "--interval wants seconds"},
		{"dlq x y frob 2>&1", 2, "unknown verb 'frob'"},
		{"dlq x y show 2>&1", 2, "which entry?"},
		{"watchdog x --period 0 2>&1", 2, "--period wants a whole number"},
		{"destroy -x a 2>&1", 2, "unknown option '-x'"},
		{"unsubscribe a b 2>&1", 2, "expects BUS CHANNEL NAME"},
		{"journal 2>&1", 2, "expects VERB DIR"},
		{"journal frob d 2>&1", 2, "unknown verb 'frob'"},
		{"journal dump 2>&1", 2, "expects DIR"},
		{"journal info a b 2>&1", 2, "unexpected 'b'"},
		{"journal replay d b 2>&1", 2, "expects DIR BUS CHANNEL"},
		{"journal dump d --count 0 2>&1", 2, "--count wants a whole"},
		{"journal dump d --from x 2>&1", 2, "--from wants a whole"},
		{"journal dump d --from 5 --to 5 2>&1", 2, "nothing to read"},
		{"journal dump d --bus b 2>&1", 2, "--bus and --channel go"},
		{"journal verify d --key 1 2>&1", 2, "unknown option '--key'"},
		{"journal info d --follow 2>&1", 2, "unknown option '--follow'"},
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		cr_expect_eq(tool("%s", lines[i].args), lines[i].status, "%s",
			     lines[i].args);
		expect_out(lines[i].says);
	}
}

/* ------------------------------------------------- errors, never a crash */

Test(tool, bad_buses_and_objects_get_clear_errors)
{
	cr_expect_eq(tool("stat nosuchbus 2>&1"), 1);
	expect_out("shmbus stat: bus 'nosuchbus' does not exist; `shmbus ls` "
		   "lists the buses");
	cr_expect_eq(tool("stat 'bad/name' 2>&1"), 1);
	expect_out("bus name 'bad/name' has character");
	cr_expect_eq(tool("dlq nosuchbus C list 2>&1"), 1);
	cr_expect_eq(tool("pub nosuchbus C --hex 00 2>&1"), 1);
	cr_expect_eq(tool("destroy nosuchbus 2>&1"), 1);
	expect_out("does not exist");

	/* a damaged bus object */
	char junk[64], bus_name[48];
	static char garbage[8192];
	memset(garbage, 0xa5, sizeof(garbage));
	snprintf(bus_name, sizeof(bus_name), "t%d.bad", (int)getpid());
	snprintf(junk, sizeof(junk), "shmbus.%s", bus_name);
	shm_file(junk, garbage, sizeof(garbage));
	static const char *const cmds[] = {"stat %s", "stat %s --json",
					   "stat %s --prometheus",
					   "pub %s C --hex 00", "tail %s C",
					   "dlq %s C list", "watchdog %s"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char fmt[64];
		snprintf(fmt, sizeof(fmt), "%s 2>&1", cmds[i]);
		cr_expect_eq(tool(fmt, bus_name), 1, "%s", cmds[i]);
		expect_out("is not a known state");
	}
	expect_out("shmbus watchdog: bus");
	cr_expect_eq(tool("destroy %s 2>&1", bus_name), 1);
	expect_out("--force");
	cr_expect_eq(tool("destroy --force %s", bus_name), 0);
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm/%s", junk);
	cr_expect_neq(access(path, F_OK), 0);
	shm_remove(junk);

	/* a damaged channel object: the bus still shows, that channel says why */
	struct own o;
	own_bus(&o, "bc", 16, NULL, false);
	const char *name = o.name;
	shmbus_close(o.bus);
	snprintf(path, sizeof(path), "/dev/shm/shmbus.%s:C", name);
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, garbage, 64, 0), 64);
	close(fd);
	cr_assert_eq(tool("stat %s", name), 0);
	expect_out("cannot be read:");
	cr_assert_eq(tool("stat %s --prometheus", name), 0);
	cr_assert_eq(tool("ls %s", name), 0);
	expect_out("cannot be opened:");
	json_t *doc = stat_json(name);
	json_t *c = json_array_get(json_object_get(doc, "channels"), 0);
	cr_expect(json_is_string(json_object_get(c, "error")));
	json_decref(doc);
	cr_expect_eq(tool("pub %s C --hex 00 2>&1", name), 1);
	shmbus_unlink(name);
}

/* ms from SIGTERM to the exit of `shmbus ARGS`, started 0.4 s before
 * (stdout and stderr thrown away); *status: its exit status */
static double ms_to_stop(const char *args, int *status)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "exec %s %s >/dev/null 2>&1", SHMBUS_TOOL,
		 args);
	pid_t pid = test_fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	usleep(400000);
	uint64_t t0 = shmbus_now_ns();
	kill(pid, SIGTERM);
	*status = child_status(pid);
	return (double)(shmbus_now_ns() - t0) / 1e6;
}

/* Issue 13: idle processes took seconds to end after SIGTERM. The tools
 * that run until stopped end within tens of ms, also between sleeps. */
Test(tool, long_running_commands_end_promptly_on_sigterm)
{
	struct feeder f;
	feeder_start(&f, "term");
	struct own o;
	own_bus(&o, "termwd", 16, NULL, false);
	char args[4][160];
	snprintf(args[0], sizeof(args[0]), "stat %s --watch 10", f.bus);
	snprintf(args[1], sizeof(args[1]), "stat %s --watch 0.01 --json",
		 f.bus);
	snprintf(args[2], sizeof(args[2]), "tail %s Orders --follow", f.bus);
	snprintf(args[3], sizeof(args[3]), "watchdog %s --period 10000",
		 o.name);
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 4; i++) {
			int st;
			double ms = ms_to_stop(args[i], &st);
			cr_expect_eq(st, 0, "shmbus %s: exit status %d",
				     args[i], st);
			cr_expect_lt(ms, 100.0,
				     "shmbus %s: ended %.1f ms after SIGTERM",
				     args[i], ms);
		}
	own_close(&o);
	feeder_stop(&f);
}
