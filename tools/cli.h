/* What the shmbus tool's subcommands share (shmbus.c). */
#ifndef SHMBUS_TOOLS_CLI_H
#define SHMBUS_TOOLS_CLI_H

#include <stdbool.h>

#include <shmbus/shmbus.h>

/* "shmbus CMD: msg" on stderr; returns 1 (the exit code). */
int cli_fail(const char *cmd, const char *msg);
/* Attach bus and channel for a tool: no pre-fault, attach only. */
int cli_open(const char *bus_name, const char *channel, shmbus_t **bus,
	     shmbus_channel_t **ch);

int cmd_dlq(int argc, char **argv);

#endif
