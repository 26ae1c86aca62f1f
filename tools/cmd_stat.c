/*
 * shmbus stat BUS: every counter of a bus, as a table, JSON or Prometheus
 * text; with --watch, again every S seconds (in place on a terminal, one
 * document a line for --json, for logs and pipes).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "stat.h"
#include "term.h"

static const char help[] =
	"usage: shmbus stat BUS [--json | --prometheus] [--watch [S]]\n"
	"       shmbus stat BUS --listen [ADDR:]PORT\n\n"
	"Counters, lag and latency of bus BUS: per channel, records published\n"
	"(claimed), tombstones, dead letters and each live producer's\n"
	"published and waits; per subscriber its cursor, lag (records and age\n"
	"of the oldest unread), delivered, failed, retried, dead-lettered and\n"
	"lost records, retries pending, and p50/p99/p99.9 publish-to-handler\n"
	"latency; the watchdog's totals.\n\n"
	"  --json         one JSON document (durations in ns)\n"
	"  --prometheus   Prometheus text exposition format (for a textfile\n"
	"                 collector: write it at least every scrape interval)\n"
	"  --listen [ADDR:]PORT  serve the Prometheus text over HTTP at\n"
	"                 /metrics for a Prometheus server to scrape, a fresh\n"
	"                 reading each time; ADDR defaults to 127.0.0.1\n"
	"  --watch [S]    again every S seconds (default 1) until Ctrl-C;\n"
	"                 in place on a terminal, one JSON document a line\n";

enum format { TABLE, JSON, PROMETHEUS };

struct opts {
	enum format format;
	double watch;	    /* 0: once */
	const char *listen; /* --listen's ADDR:PORT, or NULL */
};

static int on_opt(int key, const char *arg, void *ctx)
{
	struct opts *o = ctx;
	enum format f = key == 'j' ? JSON : PROMETHEUS;
	if (key == 'l') {
		o->listen = arg;
		return 0;
	}
	if (key == 'w') {
		o->watch = 1.0;
		return arg ? cli_seconds("stat", "--watch", arg, &o->watch) : 0;
	}
	if (o->format != TABLE && o->format != f)
		return cli_usage_error("stat", "--json or --prometheus, not "
					       "both");
	o->format = f;
	return 0;
}

static int render(FILE *out, const struct snapshot *s, const struct opts *o)
{
	switch (o->format) {
	case JSON:
		return stat_json(out, s, o->watch > 0);
	case PROMETHEUS:
		stat_prometheus(out, s);
		return 0;
	default:
		stat_table(out, s);
		return 0;
	}
}

/* One frame of a table on a terminal: drawn over the previous one. */
static int paint(const struct snapshot *s, const struct opts *o)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f == NULL)
		return cli_fail("stat", "out of memory");
	int rc = render(f, s, o);
	fclose(f);
	term_paint(text, len);
	free(text);
	return rc;
}

static int show(struct busview *v, const struct opts *o, bool in_place)
{
	struct snapshot s;
	int rc = busview_read(v, &s);
	if (rc)
		return cli_fail("stat", shmbus_errmsg());
	rc = in_place ? paint(&s, o) : render(stdout, &s, o);
	snapshot_free(&s);
	fflush(stdout);
	return rc;
}

static int watch(struct busview *v, const struct opts *o)
{
	bool in_place = o->format == TABLE && term_is_tty();
	int rc = 0;
	cli_catch_stop();
	if (in_place) { /* clear once; term_paint writes past stdio */
		fputs("\033[H\033[2J", stdout);
		fflush(stdout);
	}
	while (rc == 0 && !cli_stopping()) {
		if (busview_gone(v))
			return cli_failf("stat", "bus '%s' was removed",
					 v->name);
		rc = show(v, o, in_place);
		if (!in_place && o->format == TABLE)
			putchar('\n');
		cli_sleep(o->watch);
	}
	if (in_place)
		putchar('\n');
	return rc;
}

int cmd_stat(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"prometheus", no_argument, NULL, 'p'},
		{"watch", optional_argument, NULL, 'w'},
		{"listen", required_argument, NULL, 'l'},
		{0}};
	const struct cli_spec spec = {"stat", "BUS", help, opts, 1, 1, on_opt};
	struct opts o = {TABLE, 0, NULL};
	char *pos[1];
	int npos;
	int rc = cli_parse(&spec, argc, argv, &o, pos, &npos);
	if (rc != CLI_GO)
		return rc;
	if (o.listen && (o.format != TABLE || o.watch > 0))
		return cli_usage_error("stat", "--listen serves Prometheus "
					       "text on each scrape: no --json, "
					       "--prometheus or --watch with "
					       "it");
	struct busview v;
	if (busview_open(&v, "stat", pos[0]))
		return CLI_ERR;
	if (o.listen)
		rc = stat_listen(&v, o.listen);
	else
		rc = o.watch > 0 ? watch(&v, &o) : show(&v, &o, false);
	busview_close(&v);
	return rc;
}
