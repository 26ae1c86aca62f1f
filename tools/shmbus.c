/*
 * shmbus: see and operate a bus. One program, one subcommand per verb;
 * each capability adds its verbs here.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include <shmbus/shmbus.h>

static int usage(FILE *f)
{
	fprintf(f, "usage: shmbus COMMAND [ARGS]\n"
		   "\n"
		   "commands:\n"
		   "  destroy BUS [--force]   remove a bus and its channels;\n"
		   "                          refused while live processes "
		   "use it\n"
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

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	const char *cmd = argv[1];
	if (!strcmp(cmd, "destroy"))
		return cmd_destroy(argc - 1, argv + 1);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "-h"))
		return usage(stdout);
	fprintf(stderr, "shmbus: unknown command '%s'\n\n", cmd);
	return usage(stderr);
}
