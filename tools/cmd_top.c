/*
 * shmbus top BUS: the bus live, full screen. Rates are counter deltas over
 * the refresh interval; a subscriber whose handler failed during the last
 * interval (or that holds at a failed record) is drawn in red, a name that
 * no live process holds is dimmed.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "fmt.h"
#include "snapshot.h"
#include "term.h"

static const char help[] =
	"usage: shmbus top BUS [--interval S]\n\n"
	"A live view of bus BUS, redrawn in place every S seconds (default 1):\n"
	"per channel its publish rate, live producers and dead letters; per\n"
	"subscriber its delivery and failure rates, lag in records and in\n"
	"time, p99 latency and records dead-lettered. Subscribers failing in\n"
	"the last interval are red; names no live process holds are dim.\n"
	"q quits (so do Ctrl-C and SIGTERM); the terminal is restored.\n";

#define COLS "%-22s %-8s %8s %7s %8s %7s %7s %6s\n"

static int on_opt(int key, const char *arg, void *ctx)
{
	(void)key;
	return cli_seconds("top", "--interval", arg, ctx);
}

/* The same subscriber in the previous snapshot, or NULL. */
static const shmbus_sub_info_t *before(const struct snapshot *prev,
				       uint32_t channel_id,
				       const shmbus_sub_info_t *u)
{
	for (uint32_t i = 0; prev && i < prev->n_ch; i++) {
		const struct snap_channel *c = &prev->ch[i];
		if (c->info.id != channel_id)
			continue;
		for (uint32_t k = 0; k < c->n_sub; k++)
			if (c->sub[k].row == u->row &&
			    !strcmp(c->sub[k].name, u->name))
				return &c->sub[k];
	}
	return NULL;
}

static const struct snap_channel *channel_before(const struct snapshot *prev,
						 uint32_t id)
{
	for (uint32_t i = 0; prev && i < prev->n_ch; i++)
		if (prev->ch[i].info.id == id && prev->ch[i].error == 0)
			return &prev->ch[i];
	return NULL;
}

/* A rate from two readings dt seconds apart, or "-" without the first. */
static const char *rate(char buf[FMT_LEN], uint64_t now, const uint64_t *then,
			double dt)
{
	if (then == NULL || dt <= 0)
		return "-";
	return fmt_rate(buf, now >= *then ? (double)(now - *then) / dt : 0);
}

static void sub_row(FILE *f, const shmbus_sub_info_t *u,
		    const shmbus_sub_info_t *p, double dt)
{
	char name[24], st[16], d[FMT_LEN], fl[FMT_LEN], lag[FMT_LEN],
		age[FMT_LEN], p99[FMT_LEN], q[FMT_LEN];
	bool failing = u->holding ||
		       (p && (u->failed > p->failed ||
			      u->dead_lettered > p->dead_lettered));
	fmt_name(name + 2, u->name, 20);
	name[0] = name[1] = ' ';
	if (failing)
		fputc(TERM_ALERT, f);
	else if (!u->live)
		fputc(TERM_DIM, f);
	fprintf(f, COLS, name, snap_status(u, st),
		rate(d, u->delivered, p ? &p->delivered : NULL, dt),
		rate(fl, u->failed, p ? &p->failed : NULL, dt),
		fmt_count(lag, u->lag, 8),
		u->lag_ns ? fmt_ns(age, u->lag_ns) : "-",
		u->lat_count ? fmt_ns(p99, u->lat_p99) : "-",
		fmt_count(q, u->dead_lettered, 6));
}

static void channel_rows(FILE *f, const struct snap_channel *c,
			 const struct snapshot *prev, double dt)
{
	char name[23], prod[16], r[FMT_LEN], q[FMT_LEN];
	fmt_name(name, c->info.name, 22);
	if (c->error) {
		fprintf(f, "%c%-22s cannot be read (shmbus stat says why)\n",
			TERM_ALERT, name);
		return;
	}
	const struct snap_channel *p = channel_before(prev, c->info.id);
	snprintf(prod, sizeof(prod), "%u prod", c->n_prod);
	fprintf(f, COLS, name, prod,
		rate(r, c->info.claimed, p ? &p->info.claimed : NULL, dt), "",
		"", "", "", fmt_count(q, c->dlq.count, 6));
	for (uint32_t k = 0; k < c->n_sub; k++)
		sub_row(f, &c->sub[k], before(prev, c->info.id, &c->sub[k]),
			dt);
}

static void frame(FILE *f, const struct snapshot *s,
		  const struct snapshot *prev, double interval)
{
	char when[16], n[FMT_LEN], st[FMT_LEN];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	fprintf(f, "shmbus top: bus %s   %s   every %.1fs   q quits\n", s->bus,
		when, interval);
	fprintf(f, "%d live participants; watchdog: ", s->live);
	if (s->wd.passes)
		fprintf(f, "%s passes, %s stalled now\n\n",
			fmt_count(n, s->wd.passes, 10),
			fmt_count(st, s->wd.stalled, 6));
	else
		fprintf(f, "none running\n\n");
	fprintf(f, COLS, "CHANNEL / SUBSCRIBER", "STATE", "MSGS/S", "FAIL/S",
		"LAG", "AGE", "P99", "DLQ");
	double dt = prev ? (double)(s->now_ns - prev->now_ns) / 1e9 : 0;
	for (uint32_t i = 0; i < s->n_ch; i++)
		channel_rows(f, &s->ch[i], prev, dt);
	if (s->n_ch == 0)
		fprintf(f, "no channels yet\n");
}

/* Read and draw one frame: 0, or a negative code (errmsg says why). */
static int draw(struct busview *v, struct snapshot *cur,
		const struct snapshot *prev, double interval)
{
	int rc = busview_read(v, cur);
	if (rc)
		return rc;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f == NULL)
		return SHMBUS_ENOMEM;
	frame(f, cur, prev->now_ns ? prev : NULL, interval);
	fclose(f);
	term_paint(text, len);
	free(text);
	return 0;
}

/* Until q, a stop signal, an error or the bus's removal; errors are told
 * after the terminal is restored, where they stay visible. */
static int run(struct busview *v, double interval)
{
	struct snapshot a = {0}, b = {0}, *cur = &a, *prev = &b;
	int rc = 0, key = 0;
	bool gone = false;
	term_enter();
	while (rc == 0 && key != 'q' && key != 'Q' && key >= 0 &&
	       !(gone = busview_gone(v))) {
		struct snapshot *t = prev;
		snapshot_free(t);
		prev = cur;
		cur = t;
		rc = draw(v, cur, prev, interval);
		key = rc ? 0 : term_key(interval);
	}
	term_leave();
	snapshot_free(&a);
	snapshot_free(&b);
	if (gone)
		return cli_failf("top", "bus '%s' was removed", v->name);
	return rc ? cli_fail("top", shmbus_errmsg()) : CLI_OK;
}

int cmd_top(int argc, char **argv)
{
	static const struct option opts[] = {
		{"interval", required_argument, NULL, 'i'}, {0}};
	const struct cli_spec spec = {"top", "BUS", help, opts, 1, 1, on_opt};
	double interval = 1.0;
	char *pos[1];
	int npos;
	int rc = cli_parse(&spec, argc, argv, &interval, pos, &npos);
	if (rc != CLI_GO)
		return rc;
	if (!term_is_tty())
		return cli_fail("top", "needs a terminal; for a log, use "
				       "`shmbus stat BUS --watch`");
	struct busview v;
	if (busview_open(&v, "top", pos[0]))
		return CLI_ERR;
	rc = run(&v, interval);
	busview_close(&v);
	return rc;
}
