/* What the shmbus tool's subcommands share: arguments, errors, opening. */
#ifndef SHMBUS_TOOLS_CLI_H
#define SHMBUS_TOOLS_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include <shmbus/shmbus.h>

/* Exit codes: 0 done, 1 failed, 2 wrong command line. CLI_GO is not an exit
 * code: the command line parsed, go on. */
enum { CLI_OK = 0, CLI_ERR = 1, CLI_USAGE = 2, CLI_GO = -1 };

/* "shmbus CMD: msg" on stderr; returns CLI_ERR. */
int cli_fail(const char *cmd, const char *msg);
int cli_failf(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "shmbus CMD: msg (see `shmbus CMD --help`)" on stderr; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One subcommand's command line. */
struct cli_spec {
	const char *cmd;	   /* "stat" */
	const char *args;	   /* "BUS CHANNEL", for errors */
	const char *help;	   /* printed by --help and -h */
	const struct option *opts; /* getopt_long table ending in {0}, or NULL */
	int min_pos, max_pos;	   /* how many positional arguments */
	/* an option (its val, and its value or NULL): 0, or an exit code */
	int (*on_opt)(int key, const char *arg, void *ctx);
};

/*
 * Parse argv (argv[0] is the subcommand). Options may come anywhere; an
 * option declared optional_argument also takes the next word as its value
 * if that is a number (`--watch 2`). Returns CLI_GO with the positional
 * arguments in pos[0..*npos), 0 after printing --help, or CLI_USAGE after
 * a usage error (unknown option, missing value, wrong count of arguments).
 */
int cli_parse(const struct cli_spec *s, int argc, char **argv, void *ctx,
	      char **pos, int *npos);

/* The on_opt of a command whose one option is --force (key 'f'): ctx is
 * an int, set to 1. */
int cli_force_opt(int key, const char *arg, void *ctx);

/* Numbers from the command line: the whole word, in [min, max]; else a usage
 * error naming `what`. */
int cli_u64(const char *cmd, const char *what, const char *s, uint64_t min,
	    uint64_t max, uint64_t *out);
/* Seconds, > 0 and at most a day (fractions allowed). */
int cli_seconds(const char *cmd, const char *what, const char *s,
		double *out);

/* Attach bus (and channel, if channel is not NULL) for a tool: attach
 * only, no pre-fault, waiting at most 100 ms for a creator. Errors go to
 * stderr with what to do next; returns 0 or CLI_ERR. */
int cli_open(const char *cmd, const char *bus_name, const char *channel,
	     shmbus_t **bus, shmbus_channel_t **ch);
/* The same options, for a caller that reports errors itself. */
int cli_attach(const char *bus_name, shmbus_t **bus);

/* Sleep; ends within 10 ms of a stop signal (cli_catch_stop). */
void cli_sleep(double seconds);
/* SIGINT and SIGTERM set the flag that cli_stopping() reads. */
void cli_catch_stop(void);
bool cli_stopping(void);

int cmd_ls(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_tail(int argc, char **argv);
int cmd_pub(int argc, char **argv);
int cmd_dlq(int argc, char **argv);
int cmd_watchdog(int argc, char **argv);
int cmd_destroy(int argc, char **argv);
int cmd_unsubscribe(int argc, char **argv);
int cmd_journal(int argc, char **argv);
int cmd_bridge(int argc, char **argv); /* with SHMBUS_HAVE_BRIDGE */

#endif
