/* shmbus destroy BUS [--force]: remove a bus and its channels. */
#define _GNU_SOURCE
#include <stdio.h>

#include <shmbus/shmbus.h>

#include "cli.h"

static const char help[] =
	"usage: shmbus destroy BUS [--force]\n\n"
	"Removes the bus BUS and all its channels from /dev/shm.\n"
	"Refused while live processes hold participants of it, unless\n"
	"--force (their mappings stay valid until they exit). A bus that\n"
	"fails validation (another ABI, corrupt) is removed only with "
	"--force.\n";

int cmd_destroy(int argc, char **argv)
{
	static const struct option opts[] = {
		{"force", no_argument, NULL, 'f'}, {0}};
	const struct cli_spec spec = {"destroy", "BUS", help, opts, 1, 1,
				      cli_force_opt};
	char *pos[1];
	int npos, force = 0;
	int rc = cli_parse(&spec, argc, argv, &force, pos, &npos);
	if (rc != CLI_GO)
		return rc;
	if (shmbus_destroy(pos[0], force))
		return cli_fail("destroy", shmbus_errmsg());
	return CLI_OK;
}
