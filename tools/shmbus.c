/*
 * shmbus: see and operate a bus. One program, one subcommand per verb;
 * each capability adds its verbs here.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shmbus/shmbus.h>

#include "cli.h"

int cli_fail(const char *cmd, const char *msg)
{
	fprintf(stderr, "shmbus %s: %s\n", cmd, msg);
	return 1;
}

int cli_open(const char *bus_name, const char *channel, shmbus_t **bus,
	     shmbus_channel_t **ch)
{
	shmbus_opts_t bo = {.flags = SHMBUS_OPEN_NO_PREFAULT,
			    .open_timeout_ms = 100};
	*bus = NULL;
	if (shmbus_open(bus_name, &bo, bus) != 0 ||
	    (ch && shmbus_channel_open(*bus, channel, NULL, ch) != 0)) {
		fprintf(stderr, "shmbus: %s\n", shmbus_errmsg());
		shmbus_close(*bus);
		return 1;
	}
	return 0;
}

static int usage(FILE *f)
{
	fprintf(f, "usage: shmbus COMMAND [ARGS]\n"
		   "\n"
		   "commands:\n"
		   "  destroy BUS [--force]   remove a bus and its channels;\n"
		   "                          refused while live processes "
		   "use it\n"
		   "  watchdog BUS [OPTIONS]  repair, evict and expire, in the\n"
		   "                          foreground (SIGTERM stops it)\n"
		   "  dlq BUS CHANNEL VERB    list, show, replay or purge dead\n"
		   "                          letters\n"
		   "  help                    this text\n"
		   "\n"
		   "Run `shmbus COMMAND --help` for a command's options.\n");
	return f == stderr ? 2 : 0;
}

static int cmd_destroy(int argc, char **argv)
{
	const char *bus = NULL;
	int force = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
			force = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: shmbus destroy BUS [--force]\n\n"
			       "Removes the bus BUS and all its channels from "
			       "/dev/shm.\nRefused while live processes hold "
			       "participants of it,\nunless --force (their "
			       "mappings stay valid until they exit).\n");
			return 0;
		} else if (!bus && argv[i][0] != '-')
			bus = argv[i];
		else {
			fprintf(stderr, "shmbus destroy: unexpected '%s' "
					"(see --help)\n",
				argv[i]);
			return 2;
		}
	}
	if (!bus) {
		fprintf(stderr, "shmbus destroy: which bus? (see --help)\n");
		return 2;
	}
	int rc = shmbus_destroy(bus, force);
	if (rc) {
		fprintf(stderr, "shmbus destroy: %s\n", shmbus_errmsg());
		return 1;
	}
	return 0;
}

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int cmd_watchdog(int argc, char **argv)
{
	const char *bus_name = NULL;
	shmbus_watchdog_opts_t wo = {.period_ms = 10, .evict_grace_ms = 1000};
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: shmbus watchdog BUS [--period MS] "
			       "[--grace MS]\n\n"
			       "Runs the watchdog of bus BUS in the foreground "
			       "until SIGTERM or SIGINT:\nrepairs holes left by "
			       "dead producers (tombstones), evicts subscribers\n"
			       "stalled longer than --grace (evict-policy "
			       "channels), forgets expired\nnames. One watchdog "
			       "per bus. Logs what it does to stderr.\n");
			return 0;
		} else if (!strcmp(argv[i], "--period") && i + 1 < argc) {
			wo.period_ms = (uint32_t)strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--grace") && i + 1 < argc) {
			wo.evict_grace_ms =
				(uint32_t)strtoul(argv[++i], NULL, 10);
		} else if (!bus_name && argv[i][0] != '-') {
			bus_name = argv[i];
		} else {
			fprintf(stderr, "shmbus watchdog: unexpected '%s' "
					"(see --help)\n",
				argv[i]);
			return 2;
		}
	}
	if (!bus_name || wo.period_ms == 0) {
		fprintf(stderr, "shmbus watchdog: which bus, and a period "
				"above 0? (see --help)\n");
		return 2;
	}
	shmbus_opts_t bo = {.flags = SHMBUS_OPEN_NO_PREFAULT};
	shmbus_t *bus;
	shmbus_watchdog_t *w;
	if (shmbus_open(bus_name, &bo, &bus) != 0 ||
	    shmbus_watchdog_open(bus, &wo, &w) != 0) {
		fprintf(stderr, "shmbus watchdog: %s\n", shmbus_errmsg());
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "shmbus watchdog: bus '%s', every %u ms, grace %u ms\n",
		bus_name, wo.period_ms, wo.evict_grace_ms);
	struct timespec ts = {(time_t)(wo.period_ms / 1000),
			      (long)(wo.period_ms % 1000) * 1000000L};
	shmbus_watchdog_stats_t last = {0}, st;
	while (!stop_requested) {
		shmbus_watchdog_pass(w);
		shmbus_watchdog_get_stats(w, &st);
		if (st.tombstones != last.tombstones ||
		    st.evicted != last.evicted || st.expired != last.expired ||
		    st.reaped != last.reaped || st.released != last.released ||
		    st.stalled != last.stalled)
			fprintf(stderr,
				"shmbus watchdog: tombstones %llu, evicted "
				"%llu, expired %llu, dead rows freed %llu, "
				"retries handed back %llu, stalled now %llu\n",
				(unsigned long long)st.tombstones,
				(unsigned long long)st.evicted,
				(unsigned long long)st.expired,
				(unsigned long long)st.reaped,
				(unsigned long long)st.released,
				(unsigned long long)st.stalled);
		last = st;
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "shmbus watchdog: stopped after %llu passes\n",
		(unsigned long long)st.passes);
	shmbus_watchdog_close(w);
	shmbus_close(bus);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	const char *cmd = argv[1];
	if (!strcmp(cmd, "destroy"))
		return cmd_destroy(argc - 1, argv + 1);
	if (!strcmp(cmd, "watchdog"))
		return cmd_watchdog(argc - 1, argv + 1);
	if (!strcmp(cmd, "dlq"))
		return cmd_dlq(argc - 1, argv + 1);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "-h"))
		return usage(stdout);
	fprintf(stderr, "shmbus: unknown command '%s'\n\n", cmd);
	return usage(stderr);
}
