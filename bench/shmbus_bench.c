/*
 * shmbus_bench: latency and throughput of shmbus against the machine's
 * floor and against other local transports. See bench/README.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "peer.h"
#include "timer.h"

static int wl_uds_pp(const struct bench_opts *o)
{
	return peer_pingpong(o, &transport_uds);
}
static int wl_uds_tp(const struct bench_opts *o)
{
	return peer_throughput(o, &transport_uds);
}
static int wl_zmq_pp(const struct bench_opts *o)
{
	return peer_pingpong(o, &transport_zmq);
}
static int wl_zmq_tp(const struct bench_opts *o)
{
	return peer_throughput(o, &transport_zmq);
}
static int wl_nng_pp(const struct bench_opts *o)
{
	return peer_pingpong(o, &transport_nng);
}
static int wl_nng_tp(const struct bench_opts *o)
{
	return peer_throughput(o, &transport_nng);
}
static int wl_iox_pp(const struct bench_opts *o)
{
	return peer_pingpong(o, &transport_iox);
}
static int wl_iox_tp(const struct bench_opts *o)
{
	return peer_throughput(o, &transport_iox);
}

static const struct workload {
	const char *name;
	int (*fn)(const struct bench_opts *o);
	const char *what;
	const char *skip; /* never runs: why */
	const struct transport *peer;
} workloads[] = {
	{"floor", wl_floor, "cache-line ping-pong: the latency floor"},
	{"floorring", wl_floorring, "minimal SPSC ring: the throughput floor"},
	{"pingpong", wl_pingpong, "round trip over two shmbus channels"},
	{"pingpong-handler", wl_pingpong_handler,
	 "round trip, B replying from its handler (as Aeron's pong)"},
	{"pingpong-after", wl_pingpong_after,
	 "pingpong, B's reader behind a dependency barrier"},
	{"throughput", wl_throughput, "1 producer -> 1 subscriber"},
	{"multiproducer", wl_multiproducer, "2 producers -> 1 subscriber"},
	{"fanout", wl_fanout, "1 producer -> 1, 2, 4 subscribers"},
	{"failing", wl_failing,
	 "1 producer -> 2 subscribers, one failing 1/100 (retries, DLQ)"},
	{"journaled", wl_journaled,
	 "producer claim-to-commit: no journal, async journaler, sync mode"},
	{"overwrite", wl_overwrite, "never-waiting producer, lapped reader"},
	{"overwrite-stalled", wl_overwrite_stalled,
	 "never-waiting producer, a reader that never polls"},
	{"overwrite-alone", wl_overwrite_alone, "never-waiting producer, no reader"},
	{"uds-pingpong", wl_uds_pp, "pingpong over a SEQPACKET socketpair",
	 NULL, &transport_uds},
	{"uds-throughput", wl_uds_tp, "throughput over a socketpair", NULL,
	 &transport_uds},
	{"zmq-pingpong", wl_zmq_pp, "pingpong over libzmq PAIR ipc://", NULL,
	 &transport_zmq},
	{"zmq-throughput", wl_zmq_tp, "throughput over libzmq", NULL,
	 &transport_zmq},
	{"nng-pingpong", wl_nng_pp, "pingpong over nng pair1 ipc://", NULL,
	 &transport_nng},
	{"nng-throughput", wl_nng_tp, "throughput over nng", NULL,
	 &transport_nng},
	{"iox-pingpong", wl_iox_pp, "pingpong over iceoryx (starts RouDi)",
	 NULL, &transport_iox},
	{"iox-throughput", wl_iox_tp, "throughput over iceoryx", NULL,
	 &transport_iox},
	{"group", wl_group, "1 producer -> a group of 2 members"},
	{"group-keyed", wl_group_keyed,
	 "1 producer -> a keyed group of 2 (1,024 keys)"},
	{"group1", wl_group1, "1 producer -> a group of 1 member"},
	{"group1-plain", wl_group1_plain,
	 "group1's harness with a plain subscriber: group1's baseline"},
	{"group1-keyed", wl_group1_keyed,
	 "1 producer -> a keyed group of 1 member"},
	{"manychannels", wl_manychannels,
	 "pingpong, B polling 1000 channels (1 active)"},
	{"manychannels-tp", wl_manychannels_tp, "16 channels -> 1 poller"},
	{"bridge-redis", wl_bridge_redis, "bus -> Redis XADD vs redis-benchmark"},
	{"journal", wl_journal,
	 "journal write (each sync policy) and replay vs raw disk"},
	{"journal-tp", wl_journal_tp, "1 producer -> journaler: its sustained rate"},
	{"journal-group", wl_journal_group,
	 "4 sync producers -> journaler, every-1: group commit"},
	{"journal-latency", wl_journal_latency,
	 "sync single-record publish, paced: p50/p99/p99.9"},
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

/* For scripts: every workload, and whether this build can run it. */
static void list_workloads(void)
{
	for (size_t i = 0; i < NWORKLOADS; i++) {
		const struct workload *w = &workloads[i];
		const char *skip = w->skip ? w->skip
				   : w->peer ? peer_skip_reason(w->peer)
					     : NULL;
		printf("%s\t%s%s\n", w->name, skip ? "skipped: " : "available",
		       skip ? skip : "");
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmbus_bench WORKLOAD [--size BYTES] [--count N] "
		"[--warmup N]\n"
		"                    [--wait spin|yield|backoff|block] "
		"[--cpus A,B] [--json]\n"
		"                    [--bus NAME] [--keep] [--capacity SLOTS] "
		"[--stall block|evict]\n"
		"                    [--no-timestamp] [--compact] [--timeout S]\n\n"
		"workloads:\n");
	for (size_t i = 0; i < NWORKLOADS; i++)
		fprintf(f, "  %-15s %s\n", workloads[i].name,
			workloads[i].what);
	fprintf(f,
		"  %-15s both of uds-, zmq-, nng-, iox-\n"
		"  %-15s every workload once (the smoke test)\n\n"
		"  --size     payload bytes (>= 8); throughput workloads "
		"sweep 8..4096 without it\n"
		"  --count    timed messages (default 100000 round trips, "
		"2000000 messages)\n"
		"  --warmup   untimed first (default 10%% of count, at least "
		"1000)\n"
		"  --wait     how an idle side waits (default spin); more "
		"processes than\n"
		"             cpus turn spin into yield\n"
		"  --cpus     cpu list to pin the processes to, in turn "
		"(default: first two)\n"
		"  --json     one JSON object per result line; notes go to "
		"stderr\n"
		"  --bus      bus name (default bench.PID); removed first, "
		"and at exit\n"
		"  --keep     leave the bus in /dev/shm at exit\n"
		"  --capacity ring slots, a power of two >= 128 (default "
		"4096)\n"
		"  --stall    the channels' stall policy (default block; "
		"evict: subscribers\n"
		"             copy each record out and check it)\n"
		"  --no-timestamp  channels whose records carry no publish time "
		"(no clock read\n"
		"             per commit)\n"
		"  --compact  channels with 8-byte slot headers (SHMBUS_CH_COMPACT: "
		"no time,\n"
		"             key or origin; a 64 B record takes 72 B, not 96)\n"
		"  --timeout  seconds one run may take before its "
		"processes are killed (120)\n"
		"  --dir      journal: directory on the disk to measure "
		"(default /var/tmp)\n"
		"  --list     workloads and whether this build has them\n",
		"uds|zmq|nng|iox", "all");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static int parse_cpus(const char *s, struct bench_opts *o)
{
	cpu_set_t allowed;
	sched_getaffinity(0, sizeof(allowed), &allowed);
	o->ncpus = 0;
	while (*s) {
		char *end;
		long c = strtol(s, &end, 10);
		if (end == s || c < 0 || c >= CPU_SETSIZE ||
		    o->ncpus == BENCH_MAX_CPUS)
			return -1;
		if (!CPU_ISSET((int)c, &allowed)) {
			fprintf(stderr, "shmbus_bench: cpu %ld is not ours "
					"to use\n",
				c);
			return -1;
		}
		o->cpus[o->ncpus++] = (int)c;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return o->ncpus ? 0 : -1;
}

static void default_cpus(struct bench_opts *o)
{
	cpu_set_t allowed;
	sched_getaffinity(0, sizeof(allowed), &allowed);
	o->ncpus = 0;
	for (int c = 0; c < CPU_SETSIZE && o->ncpus < 2; c++)
		if (CPU_ISSET(c, &allowed))
			o->cpus[o->ncpus++] = c;
}

static int parse_wait(const char *s, uint32_t *w)
{
	static const char *names[] = {"spin", "yield", "backoff", "block"};
	for (uint32_t i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*w = i;
			return 0;
		}
	return -1;
}

static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const struct option lo[] = {
		{"size", required_argument, 0, 's'},
		{"count", required_argument, 0, 'n'},
		{"warmup", required_argument, 0, 'w'},
		{"wait", required_argument, 0, 'W'},
		{"cpus", required_argument, 0, 'c'},
		{"json", no_argument, 0, 'j'},
		{"bus", required_argument, 0, 'b'},
		{"keep", no_argument, 0, 'k'},
		{"capacity", required_argument, 0, 'C'},
		{"stall", required_argument, 0, 'S'},
		{"no-timestamp", no_argument, 0, 'T'},
		{"compact", no_argument, 0, 'P'},
		{"timeout", required_argument, 0, 't'},
		{"dir", required_argument, 0, 'D'},
		{"help", no_argument, 0, 'h'},
		{"list", no_argument, 0, 'l'},
		{0, 0, 0, 0},
	};
	uint64_t v;
	int c;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_u64(optarg, &v) || v < 8 || v > 0xffffff) {
				fprintf(stderr, "shmbus_bench: --size must be "
						"8..16777215\n");
				return -1;
			}
			o->size = (uint32_t)v;
			break;
		case 'n':
			if (parse_u64(optarg, &o->count) || o->count == 0) {
				fprintf(stderr, "shmbus_bench: bad --count\n");
				return -1;
			}
			break;
		case 'w':
			if (parse_u64(optarg, &o->warmup)) {
				fprintf(stderr, "shmbus_bench: bad --warmup\n");
				return -1;
			}
			break;
		case 'W':
			if (parse_wait(optarg, &o->wait)) {
				fprintf(stderr, "shmbus_bench: --wait is spin, "
						"yield, backoff or block\n");
				return -1;
			}
			break;
		case 'c':
			if (parse_cpus(optarg, o)) {
				fprintf(stderr, "shmbus_bench: bad --cpus\n");
				return -1;
			}
			break;
		case 'j':
			o->json = true;
			break;
		case 'b':
			snprintf(o->bus, sizeof(o->bus), "%s", optarg);
			break;
		case 'k':
			o->keep = true;
			break;
		case 'C':
			if (parse_u64(optarg, &v) || v < 2 * BENCH_BATCH ||
			    v > (1u << 24) || (v & (v - 1))) {
				fprintf(stderr, "shmbus_bench: --capacity is a "
						"power of two, 128..2^24\n");
				return -1;
			}
			o->capacity = (uint32_t)v;
			break;
		case 'T':
			o->no_timestamp = true;
			break;
		case 'P':
			o->compact = true;
			break;
		case 'S':
			if (strcmp(optarg, "block") == 0) {
				o->stall_policy = SHMBUS_STALL_BLOCK;
			} else if (strcmp(optarg, "evict") == 0) {
				o->stall_policy = SHMBUS_STALL_EVICT;
			} else {
				fprintf(stderr, "shmbus_bench: --stall is block "
						"or evict\n");
				return -1;
			}
			break;
		case 't':
			if (parse_u64(optarg, &v) || v == 0 || v > 86400) {
				fprintf(stderr, "shmbus_bench: bad --timeout\n");
				return -1;
			}
			o->timeout_s = (unsigned)v;
			break;
		case 'D':
			snprintf(o->dir, sizeof(o->dir), "%s", optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'l':
			list_workloads();
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return -1;
	}
	o->workload = argv[optind];
	return 0;
}

/* Runs workloads matching `want`: a name, a peer prefix, or "all". */
static int run_selected(const struct bench_opts *o, const char *want,
			int *ran)
{
	static const char *peers[] = {"uds", "zmq", "nng", "iox"};
	bool all = strcmp(want, "all") == 0;
	size_t plen = 0;
	for (size_t i = 0; i < 4; i++)
		if (strcmp(want, peers[i]) == 0)
			plen = strlen(want);
	int failed = 0;
	for (size_t i = 0; i < NWORKLOADS && !interrupted(); i++) {
		const char *n = workloads[i].name;
		if (all || strcmp(n, want) == 0 ||
		    (plen && strncmp(n, want, plen) == 0 && n[plen] == '-')) {
			(*ran)++;
			failed |= workloads[i].fn(o);
		}
	}
	return failed;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	memset(&o, 0, sizeof(o));
	o.warmup = UINT64_MAX;
	o.wait = SHMBUS_WAIT_SPIN;
	o.capacity = 4096;
	o.timeout_s = 120;
	default_cpus(&o);
	if (parse_args(argc, argv, &o))
		return 2;
	if (o.bus[0] == 0)
		snprintf(o.bus, sizeof(o.bus), "bench.%d", (int)getpid());
	o.timer_overhead_ns = timer_overhead_ns();
	/* a fresh bus: stale channels or durable cursors would skew runs */
	shmbus_unlink(o.bus);
	if (!o.json) {
		printf("shmbus_bench %d.%d.%d: bus %s, cpus", SHMBUS_VERSION_MAJOR,
		       SHMBUS_VERSION_MINOR, SHMBUS_VERSION_PATCH, o.bus);
		for (int i = 0; i < o.ncpus; i++)
			printf("%s%d", i ? "," : " ", o.cpus[i]);
		printf(" (%ld online)\n", sysconf(_SC_NPROCESSORS_ONLN));
		printf("timer: CLOCK_MONOTONIC via clock_gettime (vDSO), "
		       "%.1f ns per read\n"
		       "       (mean of 1M back-to-back reads; each latency "
		       "sample includes one)\n",
		       o.timer_overhead_ns);
	}
	int ran = 0;
	int failed = run_selected(&o, o.workload, &ran);
	if (ran == 0) {
		fprintf(stderr, "shmbus_bench: no workload '%s' (--help)\n",
			o.workload);
		failed = 2;
	}
	if (!o.keep)
		shmbus_unlink(o.bus);
	else if (!o.json)
		printf("\nbus %s kept (/dev/shm/shmbus.%s*)\n", o.bus, o.bus);
	if (interrupted())
		failed = 1;
	if (failed && ran && !o.json)
		fprintf(stderr, "shmbus_bench: FAILED\n");
	return failed;
}
