/*
 * `shmbus top` driven under tmux: it shows the bus, colours a failing
 * subscriber, quits by key or Ctrl-C and restores the terminal.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "support/tmux.h"
#include "support/tool_run.h"

TestSuite(tool, .fini = tidy);

/* top in a tmux session of its own (a server per session: no race with
 * the previous one's shutdown), quit by key; then the shell shows top's
 * exit status and the terminal's modes. */
static void top_session(const char *bus, const char *key)
{
	char sock[64], script[96], line[512];
	snprintf(sock, sizeof(sock), "shmbus-test-%d-%s", (int)getpid(), key);
	snprintf(script, sizeof(script), "/tmp/%s.sh", sock);
	snprintf(left.tmux, sizeof(left.tmux), "%s", sock);
	FILE *s = fopen(script, "w");
	cr_assert_not_null(s);
	/* the shell outlives a Ctrl-C meant for top (trap, not ignore: top
	 * must get the default action, which it replaces) */
	fprintf(s, "trap : INT\n%s top %s --interval 0.3\necho exit=$?\n"
		   "stty -a\necho modes-shown\nsleep 20\n",
		SHMBUS_TOOL, bus);
	fclose(s);
	tmux(sock, "new-session -d -s top -x 100 -y 30 'sh %s'", script);
	cr_assert(pane_shows(sock, "CHANNEL / SUBSCRIBER", false), "%s",
		  screen);
	cr_expect(pane_shows(sock, "  bad ", false));
	cr_expect(pane_shows(sock, "Orders ", false));
	cr_expect(pane_shows(sock, "every 0.3s", false));
	usleep(700000); /* rates from the second frame; bad always fails */
	tmux(sock, "capture-pane -p -e -t top");
	cr_expect(strstr(pane_line("  bad ", line, sizeof(line)), "31m"),
		  "bad is not red: %s", line);
	tmux(sock, "send-keys -t top %s", key);
	cr_expect(pane_shows(sock, "modes-shown", false), "%s", screen);
	cr_expect(strstr(screen, "exit=0"), "%s", screen);
	cr_expect(strstr(screen, "CHANNEL / SUBSCRIBER") == NULL,
		  "the view stayed on the screen");
	cr_expect(strstr(screen, " icanon") && strstr(screen, " echo "),
		  "terminal not restored: %s", screen);
	tmux(sock, "kill-server");
	unlink(script);
}

Test(tool, top_runs_under_tmux_and_restores_the_terminal)
{
	if (system("command -v tmux >/dev/null 2>&1") != 0)
		cr_skip_test("tmux is not installed (tools/install-deps.sh)");
	struct feeder f;
	feeder_start(&f, "tp");
	top_session(f.bus, "q");
	top_session(f.bus, "C-c");
	cr_expect_eq(tool("top %s 2>&1", f.bus), 1);
	expect_out("needs a terminal");
	feeder_stop(&f);
}
