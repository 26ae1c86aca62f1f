/*
 * shmbus set-up inside a child, with the library's own error text passed on
 * to the report, plus the run defaults every workload shares.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <time.h>

#include "bench.h"

uint32_t bench_max_channels = 2048; /* room for manychannels in `all` */

int sb_open_bus(struct run *r, int idx, shmbus_t **bus)
{
	shmbus_opts_t bo = {0};
	bo.max_channels = bench_max_channels;
	bo.open_timeout_ms = 5000; /* several children race to create it */
	int rc = shmbus_open(r->o->bus, &bo, bus);
	if (rc)
		return child_fail(r, idx, "shmbus_open(%s): %s: %s", r->o->bus,
				  shmbus_strerror(rc), shmbus_errmsg());
	return 0;
}

int sb_channel(struct run *r, int idx, shmbus_t *bus, const char *suffix,
	       uint32_t capacity, uint32_t flags, shmbus_channel_t **out)
{
	char name[2 * SHMBUS_NAME_MAX];
	int len = snprintf(name, sizeof(name), "%s%s%s", r->chan,
			   suffix[0] ? "." : "", suffix);
	if (len < 0 || len > (int)SHMBUS_NAME_MAX)
		return child_fail(r, idx, "channel name %s too long", name);
	shmbus_channel_opts_t co = {0};
	co.record_size = r->size;
	co.capacity = capacity;
	co.flags = flags | (r->o->no_timestamp ? SHMBUS_CH_NO_TIMESTAMP : 0) |
		   (r->o->compact ? SHMBUS_CH_COMPACT : 0);
	if (!(flags & SHMBUS_CH_OVERWRITE))
		co.stall_policy = r->o->stall_policy;
	co.layout_hash = 0x62656e6368ull ^ r->size; /* "bench", per size */
	int rc = shmbus_channel_open(bus, name, &co, out);
	if (rc)
		return child_fail(r, idx, "shmbus_channel_open(%s): %s: %s",
				  name, shmbus_strerror(rc), shmbus_errmsg());
	shmbus_channel_info_t info;
	if (shmbus_channel_get_info(*out, &info) == 0)
		r->ctl->res[idx].slot_size = info.slot_size;
	return 0;
}

int sb_producer(struct run *r, int idx, shmbus_channel_t *ch,
		shmbus_producer_t **out)
{
	shmbus_producer_opts_t po = {.wait = r->wait};
	int rc = shmbus_producer_open(ch, &po, out);
	if (rc)
		return child_fail(r, idx, "shmbus_producer_open: %s: %s",
				  shmbus_strerror(rc), shmbus_errmsg());
	return 0;
}

int sb_subscribe(struct run *r, int idx, shmbus_channel_t *ch,
		 const char *name, shmbus_handler_fn fn, void *ctx,
		 shmbus_sub_t **out)
{
	shmbus_sub_opts_t so = {.name = name, .wait = r->wait};
#ifdef BENCH_NO_LATENCY /* -DBENCH_NO_LATENCY: what sampling costs */
	so.flags = SHMBUS_SUB_NO_LATENCY;
#endif
	int rc = shmbus_subscribe(ch, fn, ctx, &so, out);
	if (rc)
		return child_fail(r, idx, "shmbus_subscribe(%s): %s: %s", name,
				  shmbus_strerror(rc), shmbus_errmsg());
	return 0;
}

int sb_idle(shmbus_sub_t *s, uint32_t wait)
{
	if (wait == SHMBUS_WAIT_SPIN) {
		cpu_relax();
		return 0;
	}
	/* bounded, so that the caller can notice a peer that is done */
	int rc = shmbus_sub_wait(s, 100000000u);
	/* a time-out, or a signal (the caller looks at its flags) */
	return rc == SHMBUS_EAGAIN || rc == SHMBUS_EINTR ? 0 : rc;
}

const char *wait_name(uint32_t wait)
{
	static const char *names[] = {"spin", "yield", "backoff", "block"};
	return wait <= SHMBUS_WAIT_BLOCK ? names[wait] : "?";
}

uint32_t wait_for_procs(const struct bench_opts *o, int nprocs)
{
	int cpus = o->ncpus > 0 ? o->ncpus : 1;
	if (nprocs > cpus && o->wait == SHMBUS_WAIT_SPIN)
		return SHMBUS_WAIT_YIELD;
	return o->wait;
}

uint64_t default_count(const struct bench_opts *o, bool latency)
{
	if (o->count)
		return o->count;
	return latency ? 100000u : 2000000u;
}

uint64_t default_warmup(const struct bench_opts *o, uint64_t count)
{
	if (o->warmup != UINT64_MAX)
		return o->warmup;
	uint64_t w = count / 10;
	return w < 1000 ? 1000 : w;
}

int tp_sizes(const struct bench_opts *o, uint32_t *sizes, int max)
{
	static const uint32_t sweep[] = {8, 64, 256, 1024, 4096};
	if (o->size) {
		sizes[0] = o->size;
		return 1;
	}
	int n = 0;
	for (size_t i = 0; i < sizeof(sweep) / sizeof(sweep[0]) && n < max;
	     i++)
		sizes[n++] = sweep[i];
	return n;
}

void sb_idle_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u),
			      (long)(ns % 1000000000u)};
	nanosleep(&ts, NULL);
}

static int rm1(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

void bench_rmrf(const char *path)
{
	nftw(path, rm1, 16, FTW_DEPTH | FTW_PHYS);
}
