/*
 * The command line of every subcommand: one parser (getopt_long, so that
 * `--count=5`, `--count 5` and options after arguments all work), numbers
 * checked whole, errors that say what to do, and attaching a bus the way
 * a tool should (never creating one, never touching every page).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_OPTS 24

int cli_fail(const char *cmd, const char *msg)
{
	fprintf(stderr, "shmbus %s: %s\n", cmd, msg);
	return CLI_ERR;
}

static void say(const char *cmd, const char *fmt, va_list ap,
		const char *after)
{
	fprintf(stderr, "shmbus %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "%s\n", after);
}

int cli_failf(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(cmd, fmt, ap, "");
	va_end(ap);
	return CLI_ERR;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	char after[64];
	va_list ap;
	snprintf(after, sizeof(after), " (see `shmbus %s --help`)", cmd);
	va_start(ap, fmt);
	say(cmd, fmt, ap, after);
	va_end(ap);
	return CLI_USAGE;
}

static bool is_number(const char *s)
{
	char *end;
	errno = 0;
	strtod(s, &end);
	return *s && !isspace((unsigned char)*s) && *end == '\0' && !errno;
}

/* The short options of a table: the vals that are letters. */
static void short_opts(const struct option *o, char *out, size_t n)
{
	size_t k = 0;
	out[k++] = ':'; /* a missing value is ':', not '?' */
	out[k++] = 'h';
	for (; o && o->name && k + 3 < n; o++) {
		if (o->flag || !isalpha(o->val) || o->val == 'h')
			continue;
		out[k++] = (char)o->val;
		if (o->has_arg == required_argument)
			out[k++] = ':';
	}
	out[k] = '\0';
}

static int bad_option(const char *cmd, int c, char **argv)
{
	const char *word = argv[optind - 1];
	/* optopt names a bad short option; a long one is the word itself */
	if (c == ':')
		return optopt && word[1] != '-'
			       ? cli_usage_error(cmd, "option '-%c' needs a "
						      "value",
						 optopt)
			       : cli_usage_error(cmd, "option '%s' needs a "
						      "value",
						 word);
	if (optopt)
		return cli_usage_error(cmd, "unknown option '-%c'", optopt);
	return cli_usage_error(cmd, "unknown option '%s'", word);
}

int cli_parse(const struct cli_spec *s, int argc, char **argv, void *ctx,
	      char **pos, int *npos)
{
	struct option all[MAX_OPTS + 2];
	int n = 0;
	for (const struct option *o = s->opts; o && o->name && n < MAX_OPTS;)
		all[n++] = *o++;
	all[n++] = (struct option){"help", no_argument, NULL, 'h'};
	all[n] = (struct option){0};
	char shorts[2 * MAX_OPTS + 4];
	short_opts(all, shorts, sizeof(shorts));
	opterr = 0;
	optind = 0; /* glibc: start afresh, permuting */
	for (;;) {
		int li = -1;
		int c = getopt_long(argc, argv, shorts, all, &li);
		if (c == -1)
			break;
		if (c == 'h') {
			fputs(s->help, stdout);
			return CLI_OK;
		}
		if (c == '?' || c == ':')
			return bad_option(s->cmd, c, argv);
		const char *arg = optarg;
		if (li >= 0 && all[li].has_arg == optional_argument && !arg &&
		    optind < argc && is_number(argv[optind]))
			arg = argv[optind++];
		int rc = s->on_opt ? s->on_opt(c, arg, ctx) : CLI_USAGE;
		if (rc)
			return rc;
	}
	*npos = 0;
	for (int i = optind; i < argc; i++) {
		if (*npos >= s->max_pos)
			return cli_usage_error(s->cmd, "unexpected '%s'",
					       argv[i]);
		pos[(*npos)++] = argv[i];
	}
	if (*npos < s->min_pos)
		return cli_usage_error(s->cmd, "expects %s", s->args);
	return CLI_GO;
}

int cli_u64(const char *cmd, const char *what, const char *s, uint64_t min,
	    uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	/* strtoull takes "-5" and "  5": only digits will do */
	if (isdigit((unsigned char)s[0]) && !*end && !errno && v >= min &&
	    v <= max) {
		*out = v;
		return 0;
	}
	if (max == UINT64_MAX)
		return cli_usage_error(cmd, "%s wants a whole number of at "
					    "least %llu, not '%s'",
				       what, (unsigned long long)min, s);
	return cli_usage_error(cmd, "%s wants a whole number from %llu to "
				    "%llu, not '%s'",
			       what, (unsigned long long)min,
			       (unsigned long long)max, s);
}

int cli_seconds(const char *cmd, const char *what, const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (!*s || *end || !isfinite(v) || v < 0.01 || v > 86400)
		return cli_usage_error(cmd, "%s wants seconds from 0.01 to "
					    "86400, not '%s'",
				       what, s);
	*out = v;
	return 0;
}

int cli_attach(const char *bus_name, shmbus_t **bus)
{
	shmbus_opts_t bo = {.flags = SHMBUS_OPEN_NO_PREFAULT,
			    .open_timeout_ms = 100};
	return shmbus_open(bus_name, &bo, bus);
}

/* What to do about an error opening a bus or channel. */
static const char *hint(int rc, bool channel)
{
	switch (rc) {
	case SHMBUS_ENOENT:
		return channel ? "`shmbus ls` lists the channels of each bus"
			       : "`shmbus ls` lists the buses of this host";
	case SHMBUS_EVERSION:
	case SHMBUS_ECORRUPT:
		return "if nothing uses it, remove it with `shmbus destroy "
		       "--force BUS`";
	case SHMBUS_EPERM:
		return "run as the bus's owner (`shmbus ls` shows it)";
	default:
		return NULL;
	}
}

int cli_open(const char *cmd, const char *bus_name, const char *channel,
	     shmbus_t **bus, shmbus_channel_t **ch)
{
	*bus = NULL;
	int rc = cli_attach(bus_name, bus);
	if (rc == 0 && channel)
		rc = shmbus_channel_open(*bus, channel, NULL, ch);
	if (rc == 0)
		return 0;
	const char *h = hint(rc, *bus != NULL);
	fprintf(stderr, "shmbus %s: %s%s%s\n", cmd, shmbus_errmsg(),
		h ? "; " : "", h ? h : "");
	shmbus_close(*bus);
	*bus = NULL;
	return CLI_ERR;
}

int cli_force_opt(int key, const char *arg, void *ctx)
{
	(void)arg;
	*(int *)ctx = key == 'f';
	return key == 'f' ? 0 : CLI_USAGE;
}

static volatile sig_atomic_t stop_flag;

/* In naps of at most 10 ms: a stop signal that came after the caller last
 * looked, before the sleep began, ends it at the next nap, not after the
 * whole time (a signal during a nap ends that nap at once). */
void cli_sleep(double seconds)
{
	uint64_t end = shmbus_now_ns() + (uint64_t)(seconds * 1e9);
	for (uint64_t now; !stop_flag && (now = shmbus_now_ns()) < end;) {
		uint64_t ns = end - now < 10000000 ? end - now : 10000000;
		struct timespec ts = {0, (long)ns};
		nanosleep(&ts, NULL);
	}
}

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

void cli_catch_stop(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop; /* no SA_RESTART: sleeps end at once */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

bool cli_stopping(void)
{
	return stop_flag != 0;
}
