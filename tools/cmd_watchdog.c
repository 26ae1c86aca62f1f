/*
 * shmbus watchdog BUS: the bus's watchdog as a foreground daemon (systemd:
 * tools/shmbus-watchdog@.service). It logs what it does, when it changes.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include <shmbus/shmbus.h>

#include "cli.h"

static const char help[] =
	"usage: shmbus watchdog BUS [--period MS] [--grace MS] [--stall MS]\n\n"
	"Runs the watchdog of bus BUS in the foreground until SIGTERM or\n"
	"SIGINT: repairs holes left by dead producers (tombstones), evicts\n"
	"subscribers stalled longer than --grace (evict-policy channels),\n"
	"forgets expired names, hands back retries of dead processes, and\n"
	"counts subscribers that have not moved for --stall while records\n"
	"wait. One watchdog per bus. Logs what it does to stderr.\n\n"
	"  --period MS   between passes (default 10)\n"
	"  --grace MS    eviction grace (default 1000)\n"
	"  --stall MS    a stalled subscriber's idle time (default 1000)\n";

static int on_opt(int key, const char *arg, void *ctx)
{
	shmbus_watchdog_opts_t *wo = ctx;
	uint64_t v;
	const char *what = key == 'p' ? "--period" : key == 'g' ? "--grace"
								: "--stall";
	int rc = cli_u64("watchdog", what, arg, 1, 3600000, &v);
	if (rc)
		return rc;
	if (key == 'p')
		wo->period_ms = (uint32_t)v;
	else if (key == 'g')
		wo->evict_grace_ms = (uint32_t)v;
	else
		wo->stall_ms = (uint32_t)v;
	return 0;
}

static void log_change(const shmbus_watchdog_stats_t *st)
{
	fprintf(stderr,
		"shmbus watchdog: tombstones %llu, evicted %llu, expired "
		"%llu, dead rows freed %llu, retries handed back %llu, "
		"stalled now %llu\n",
		(unsigned long long)st->tombstones,
		(unsigned long long)st->evicted,
		(unsigned long long)st->expired, (unsigned long long)st->reaped,
		(unsigned long long)st->released,
		(unsigned long long)st->stalled);
}

static bool changed(const shmbus_watchdog_stats_t *a,
		    const shmbus_watchdog_stats_t *b)
{
	return a->tombstones != b->tombstones || a->evicted != b->evicted ||
	       a->expired != b->expired || a->reaped != b->reaped ||
	       a->released != b->released || a->stalled != b->stalled;
}

int cmd_watchdog(int argc, char **argv)
{
	static const struct option opts[] = {
		{"period", required_argument, NULL, 'p'},
		{"grace", required_argument, NULL, 'g'},
		{"stall", required_argument, NULL, 's'},
		{0}};
	const struct cli_spec spec = {"watchdog", "BUS", help, opts, 1, 1,
				      on_opt};
	shmbus_watchdog_opts_t wo = {.period_ms = 10, .evict_grace_ms = 1000};
	char *pos[1];
	int npos;
	int rc = cli_parse(&spec, argc, argv, &wo, pos, &npos);
	if (rc != CLI_GO)
		return rc;
	/* the default open time-out: a service may start with its bus */
	shmbus_opts_t bo = {.flags = SHMBUS_OPEN_NO_PREFAULT};
	shmbus_t *bus = NULL;
	shmbus_watchdog_t *w;
	if (shmbus_open(pos[0], &bo, &bus) != 0 ||
	    shmbus_watchdog_open(bus, &wo, &w) != 0) {
		rc = cli_fail("watchdog", shmbus_errmsg());
		shmbus_close(bus);
		return rc;
	}
	cli_catch_stop();
	fprintf(stderr, "shmbus watchdog: bus '%s', every %u ms, grace %u ms\n",
		pos[0], wo.period_ms, wo.evict_grace_ms);
	shmbus_watchdog_stats_t last = {0}, st = {0};
	while (!cli_stopping()) {
		shmbus_watchdog_pass(w);
		shmbus_watchdog_get_stats(w, &st);
		if (changed(&st, &last))
			log_change(&st);
		last = st;
		cli_sleep(wo.period_ms / 1000.0);
	}
	fprintf(stderr, "shmbus watchdog: stopped after %llu passes\n",
		(unsigned long long)st.passes);
	shmbus_watchdog_close(w);
	shmbus_close(bus);
	return CLI_OK;
}
