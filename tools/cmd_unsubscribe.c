/*
 * shmbus unsubscribe BUS CHANNEL NAME [--force]: remove a durable
 * subscriber name (or a group) that nobody reads any more, so that it
 * stops holding producers back.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/shmbus.h>

#include "cli.h"

static const char help[] =
	"usage: shmbus unsubscribe BUS CHANNEL NAME [--force]\n\n"
	"Removes the durable subscriber (or competing group) NAME of\n"
	"CHANNEL: it stops holding producers back, and its pending retries\n"
	"go to the dead-letter queue. `shmbus stat` names the one a full\n"
	"ring waits for. Refused while a live process holds NAME (its pid\n"
	"is shown, a hint) or while other subscribers run after it.\n\n"
	"  --force   NAME held by a live process: on a channel with the\n"
	"            evict or spill policy, evict it now (producers go on;\n"
	"            its process learns at its next poll and rejoins at the\n"
	"            present, under NAME). Refused on a block-policy channel:\n"
	"            its process reads records in place, so producers must\n"
	"            not pass it; stop that process, then unsubscribe.\n";

/* NAME's live holders (a group's live members), or -1 if not found. */
static int live_holders(shmbus_channel_t *ch, const char *name)
{
	shmbus_channel_info_t ci;
	if (shmbus_channel_get_info(ch, &ci))
		return -1;
	shmbus_sub_info_t *in = calloc(ci.max_subscribers, sizeof(*in));
	int n = in ? shmbus_sub_list(ch, in, ci.max_subscribers) : 0, live = -1;
	for (int i = 0; i < n; i++)
		if (strncmp(in[i].name, name, sizeof(in[i].name)) == 0)
			live = (int)in[i].live;
	free(in);
	return live;
}

static int unsubscribe(shmbus_channel_t *ch, char **pos, int force)
{
	int rc = shmbus_unsubscribe(ch, pos[2]);
	if (rc == 0) {
		printf("removed '%s' from channel '%s'\n", pos[2], pos[1]);
		return CLI_OK;
	}
	if (rc != SHMBUS_EBUSY || live_holders(ch, pos[2]) <= 0)
		return cli_fail("unsubscribe", shmbus_errmsg());
	if (!force)
		return cli_failf("unsubscribe", "%s (--force evicts it on an "
						"evict or spill channel)",
				 shmbus_errmsg());
	if (shmbus_channel_evict_sub(ch, pos[2]))
		return cli_fail("unsubscribe", shmbus_errmsg());
	printf("evicted '%s' from channel '%s': producers go on; its live "
	       "process rejoins at the present at its next poll\n",
	       pos[2], pos[1]);
	return CLI_OK;
}

int cmd_unsubscribe(int argc, char **argv)
{
	static const struct option opts[] = {
		{"force", no_argument, NULL, 'f'}, {0}};
	const struct cli_spec spec = {"unsubscribe", "BUS CHANNEL NAME", help,
				      opts, 3, 3, cli_force_opt};
	char *pos[3];
	int npos, force = 0;
	int rc = cli_parse(&spec, argc, argv, &force, pos, &npos);
	if (rc != CLI_GO)
		return rc;
	shmbus_t *bus;
	shmbus_channel_t *ch;
	if (cli_open("unsubscribe", pos[0], pos[1], &bus, &ch))
		return CLI_ERR;
	rc = unsubscribe(ch, pos, force);
	shmbus_close(bus);
	return rc;
}
