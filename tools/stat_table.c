/*
 * shmbus stat's table: the whole bus on one screen, 80 columns wide. Long
 * numbers shrink to 12.3k / 4.5M rather than push the columns apart, and
 * names are cut (ending in '~'); --json has everything exactly.
 */
#define _GNU_SOURCE
#include <inttypes.h>

#include "fmt.h"
#include "stat.h"

static void watchdog(FILE *out, const struct snapshot *s)
{
	char a[FMT_LEN], b[FMT_LEN], c[FMT_LEN];
	const shmbus_watchdog_stats_t *w = &s->wd;
	if (w->passes == 0) {
		fprintf(out, "watchdog: none has run on this bus (start one: "
			     "shmbus watchdog BUS)\n");
		return;
	}
	fprintf(out, "watchdog: %s passes, the last %s ago; %s stalled now\n",
		fmt_count(a, w->passes, 8), fmt_ns(b, s->wd_age_ns),
		fmt_count(c, w->stalled, 8));
	fprintf(out, "  repaired %s tombstones, evicted %s, ",
		fmt_count(a, w->tombstones, 8), fmt_count(b, w->evicted, 8));
	fprintf(out, "expired %s\n", fmt_count(c, w->expired, 8));
	fprintf(out, "  freed %s dead rows, handed back %s retries of the "
		     "dead\n",
		fmt_count(a, w->reaped, 8), fmt_count(b, w->released, 8));
}

static void producers(FILE *out, const struct snap_channel *c)
{
	char a[FMT_LEN], b[FMT_LEN];
	if (c->n_prod == 0) {
		fprintf(out, "  no live producer\n");
		return;
	}
	fprintf(out, "  %-10s %8s %14s %10s\n", "PRODUCER", "PID", "PUBLISHED",
		"WAITS");
	for (uint32_t i = 0; i < c->n_prod; i++)
		fprintf(out, "  %-10u %8d %14s %10s\n", c->prod[i].participant,
			(int)c->prod[i].pid,
			fmt_count(a, c->prod[i].published, 14),
			fmt_count(b, c->prod[i].waits, 10));
}

/* A full ring: who producers wait for, and what to do about it. */
static void gated(FILE *out, const char *bus, const struct snap_channel *c)
{
	const shmbus_sub_info_t *g = snap_gating(c);
	if (g == NULL)
		return;
	char text[512], name[SHMBUS_NAME_MAX + 1];
	fmt_name(name, g->name, SHMBUS_NAME_MAX);
	int n = snprintf(text, sizeof(text),
			 "full: producers wait for %s '%s' (cursor %" PRIu64
			 "), ",
			 g->group ? "group" : "subscriber", name, g->cursor);
	if (g->live)
		snprintf(text + n, sizeof(text) - (size_t)n, "%s",
			 g->group ? "whose live members do not keep up"
				  : "held by a live process that does not "
				    "keep up");
	else
		snprintf(text + n, sizeof(text) - (size_t)n,
			 "which %s: `shmbus unsubscribe %s %s %s` removes it",
			 g->group ? "has no live member"
				  : "no live process holds",
			 bus, c->info.name, name);
	fmt_wrap(out, 2, text, 80);
}

static const char *ns_or_dash(char buf[FMT_LEN], uint64_t ns, int have)
{
	return have ? fmt_ns(buf, ns) : "-";
}

static void progress(FILE *out, const struct snap_channel *c)
{
	fprintf(out, "  %-16s %-9s %10s %8s %7s %7s %7s %7s\n", "SUBSCRIBER",
		"STATE", "CURSOR", "LAG", "AGE", "P50", "P99", "P99.9");
	for (uint32_t i = 0; i < c->n_sub; i++) {
		const shmbus_sub_info_t *u = &c->sub[i];
		char name[17], st[16], cur[FMT_LEN], lag[FMT_LEN], age[FMT_LEN],
			p50[FMT_LEN], p99[FMT_LEN], p999[FMT_LEN];
		int lat = u->lat_count > 0;
		fprintf(out, "  %-16s %-9s %10s %8s %7s %7s %7s %7s\n",
			fmt_name(name, u->name, 16), snap_status(u, st),
			fmt_count(cur, u->cursor, 10), fmt_count(lag, u->lag, 8),
			ns_or_dash(age, u->lag_ns, u->lag_ns > 0),
			ns_or_dash(p50, u->lat_p50, lat),
			ns_or_dash(p99, u->lat_p99, lat),
			ns_or_dash(p999, u->lat_p999, lat));
	}
}

static void counters(FILE *out, const struct snap_channel *c)
{
	fprintf(out, "  %-16s %10s %9s %9s %9s %9s %6s\n", "SUBSCRIBER",
		"DELIVERED", "FAILED", "RETRIED", "DEAD-LTR", "LOST", "RETRY");
	for (uint32_t i = 0; i < c->n_sub; i++) {
		const shmbus_sub_info_t *u = &c->sub[i];
		char name[17], d[FMT_LEN], f[FMT_LEN], r[FMT_LEN], q[FMT_LEN],
			l[FMT_LEN], p[FMT_LEN];
		fprintf(out, "  %-16s %10s %9s %9s %9s %9s %6s\n",
			fmt_name(name, u->name, 16),
			fmt_count(d, u->delivered, 10),
			fmt_count(f, u->failed, 9), fmt_count(r, u->retried, 9),
			fmt_count(q, u->dead_lettered, 9),
			fmt_count(l, u->lost, 9),
			fmt_count(p, u->retry_pending, 6));
	}
}

static void channel(FILE *out, const char *bus, const struct snap_channel *c)
{
	const shmbus_channel_info_t *in = &c->info;
	char name[SHMBUS_NAME_MAX + 1], a[FMT_LEN], b[FMT_LEN], d[FMT_LEN];
	fprintf(out, "\nchannel %s (id %u)\n",
		fmt_name(name, in->name, SHMBUS_NAME_MAX), in->id);
	if (c->error) {
		fprintf(out, "  cannot be read:\n");
		fmt_wrap(out, 4, c->errmsg, 80);
		return;
	}
	if (in->flags & SHMBUS_CH_OVERWRITE)
		fprintf(out, "  overwrite (one producer, never waits)");
	else
		fprintf(out, "  %s producer, %s", snap_producers(in),
			snap_policy(in));
	fprintf(out, "; records of %s, %u slots; ",
		fmt_bytes(a, in->record_size), in->capacity);
	if (in->schema_fields)
		fprintf(out, "%u fields", in->schema_fields);
	else
		fprintf(out, "no schema");
	/* no publish times: no latency either (the columns say -) */
	fprintf(out, "%s\n", in->flags & SHMBUS_CH_COMPACT
				    ? "; compact slots (no timestamps, keys "
				      "or origins)"
			    : in->flags & SHMBUS_CH_NO_TIMESTAMP
				    ? "; no timestamps"
				    : "");
	fprintf(out, "  published %s, tombstones %s\n",
		fmt_count(a, in->claimed, 20), fmt_count(b, in->tombstones, 20));
	fprintf(out, "  dead letters %s of %u (dropped %s, refused %s)\n",
		fmt_count(a, c->dlq.count, 10), c->dlq.capacity,
		fmt_count(b, c->dlq.dropped, 10),
		fmt_count(d, c->dlq.refused, 10));
	producers(out, c);
	gated(out, bus, c);
	if (c->n_sub == 0) {
		fprintf(out, "  no subscribers\n");
		return;
	}
	progress(out, c);
	counters(out, c);
}

void stat_table(FILE *out, const struct snapshot *s)
{
	fprintf(out, "bus %s (epoch %016" PRIx64 ")\n", s->bus, s->epoch);
	fprintf(out, "%u channel%s, %d live participant%s\n", s->n_ch,
		s->n_ch == 1 ? "" : "s", s->live, s->live == 1 ? "" : "s");
	watchdog(out, s);
	for (uint32_t i = 0; i < s->n_ch; i++)
		channel(out, s->bus, &s->ch[i]);
}
