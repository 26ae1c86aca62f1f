/* What the `shmbus journal` verbs share (cmd_journal.c, journal_dump.c). */
#ifndef SHMBUS_TOOLS_CMD_JOURNAL_H
#define SHMBUS_TOOLS_CMD_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <shmbus/journal.h>

/* The options of every verb; each verb's table admits its own. */
struct jopts {
	const char *cmd; /* "journal dump", for messages */
	shmbus_journal_query_t q;
	uint64_t count; /* dump: stop after this many; 0: no limit */
	bool json, follow, skip_corrupt;
	const char *bus, *channel; /* dump: decode by this channel's schema */
};

/* Open dir read-only (never changes a file, may run next to the writer).
 * Errors go to stderr with what to do; returns 0 or CLI_ERR. */
int jcli_open(const char *cmd, const char *dir, shmbus_journal_t **j);

int journal_info(const struct jopts *o, char **pos);
int journal_verify(const struct jopts *o, char **pos);
int journal_dump(const struct jopts *o, char **pos);
int journal_replay(const struct jopts *o, char **pos);
int journal_accept_loss(const struct jopts *o, char **pos);

#endif
