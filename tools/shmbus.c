/*
 * shmbus: see and operate a bus. One program, one subcommand per verb,
 * each in its own file (cmd_*.c); this file only dispatches.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include <shmbus/shmbus.h>

#include "cli.h"

static const struct command {
	const char *name, *args, *what;
	int (*run)(int argc, char **argv);
} commands[] = {
	{"ls", "[BUS]", "buses and channels of this host", cmd_ls},
	{"stat", "BUS", "counters, lag and latency (table, JSON, Prometheus)",
	 cmd_stat},
	{"top", "BUS", "a live view with rates, refreshed in place", cmd_top},
	{"tail", "BUS CHANNEL", "records as JSON lines, never gating producers",
	 cmd_tail},
	{"pub", "BUS CHANNEL", "publish records given as JSON or hex", cmd_pub},
	{"dlq", "BUS CHANNEL VERB", "list, show, replay or purge dead letters",
	 cmd_dlq},
	{"watchdog", "BUS", "repair, evict and expire, in the foreground",
	 cmd_watchdog},
	{"unsubscribe", "BUS CHANNEL NAME",
	 "remove a durable subscriber name nobody reads", cmd_unsubscribe},
	{"destroy", "BUS", "remove a bus and its channels", cmd_destroy},
	{"journal", "VERB DIR ...", "a journal on disk: info, dump, verify, "
	 "replay, accept-loss", cmd_journal},
#ifdef SHMBUS_HAVE_BRIDGE
	{"bridge", "DIRECTION ...", "to and from Kafka or Redis Streams",
	 cmd_bridge},
#endif
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static int usage(FILE *f)
{
	fprintf(f, "usage: shmbus COMMAND [ARGS] [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char head[40];
		snprintf(head, sizeof(head), "%s %s", commands[i].name,
			 commands[i].args);
		if (strlen(head) > 25) /* its own line; the text below */
			fprintf(f, "  %s\n  %-25s %s\n", head, "",
				commands[i].what);
		else
			fprintf(f, "  %-25s %s\n", head, commands[i].what);
	}
	fprintf(f, "\nRun `shmbus COMMAND --help` for a command's options, "
		   "`man shmbus` for more.\n");
	return f == stderr ? CLI_USAGE : CLI_OK;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	const char *cmd = argv[1];
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "-h"))
		return usage(stdout);
	if (!strcmp(cmd, "--version")) {
		/* the library's, which may be newer than the headers' */
		printf("shmbus %s (ABI %u)\n", shmbus_version(),
		       shmbus_abi_version());
		return CLI_OK;
	}
	fprintf(stderr, "shmbus: unknown command '%s'\n\n", cmd);
	return usage(stderr);
}
