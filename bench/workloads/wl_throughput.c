/*
 * throughput, multiproducer, fanout: the shmbus throughput harness (sbtp.c)
 * in its three shapes.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "bench.h"
#include "sbtp.h"

int wl_throughput(const struct bench_opts *o)
{
	struct sbtp_cfg cfg = {.name = "throughput", .producers = 1,
			       .subscribers = 1};
	uint32_t sizes[8];
	int n = tp_sizes(o, sizes, 8), failed = 0;
	for (int i = 0; i < n && !interrupted(); i++)
		failed |= sbtp_run(o, &cfg, sizes[i]);
	return failed;
}

int wl_multiproducer(const struct bench_opts *o)
{
	struct sbtp_cfg cfg = {.name = "multiproducer", .producers = 2,
			       .subscribers = 1,
			       .chflags = SHMBUS_CH_MULTI_PRODUCER,
			       .tagged = true};
	snprintf(cfg.variant, sizeof(cfg.variant), "producers=2");
	uint32_t size = o->size ? o->size : 64;
	if (size < 16) {
		report_note(o, "multiproducer: size %u is too small for "
			       "producer id + counter; using 16",
			    size);
		size = 16;
	}
	return sbtp_run(o, &cfg, size);
}

/*
 * failing: does a failing subscriber slow anyone else? 1 producer -> 2
 * subscribers, both healthy (clean), then the second one failing one
 * record in 100 on every attempt (fail: retries, then the DLQ). The
 * figures are the healthy subscriber's rate and the producer's own
 * claim-to-commit time; the runs alternate, compare their ratios. Flat
 * out, the failing subscriber's extra work (copies, redeliveries, dead
 * letters) can make it the slowest, and back-pressure hands that to
 * everyone; paced at 10 M records/s, which it sustains, what is left is
 * any blocking it causes.
 */
int wl_failing(const struct bench_opts *o)
{
	static const uint64_t paces[] = {0, 10000000};
	int failed = 0;
	for (int k = 0; k < 2; k++)
		for (int f = 0; f < 2 && !interrupted(); f++) {
			struct sbtp_cfg cfg = {.name = "failing",
					       .producers = 1,
					       .subscribers = 2,
					       .fail_every = f ? 100 : 0,
					       .time_claims = true,
					       .rate_of_first = true,
					       .pace = paces[k]};
			snprintf(cfg.variant, sizeof(cfg.variant), "%s%s",
				 f ? "fail=1/100" : "clean",
				 k ? ",paced=10M/s" : "");
			failed |= sbtp_run(o, &cfg, o->size ? o->size : 64);
		}
	return failed;
}

int wl_fanout(const struct bench_opts *o)
{
	static const int subs[] = {1, 2, 4};
	int failed = 0;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (interrupted())
			break;
		struct sbtp_cfg cfg = {.name = "fanout", .producers = 1,
				       .subscribers = subs[i]};
		snprintf(cfg.variant, sizeof(cfg.variant), "subs=%d",
			 subs[i]);
		failed |= sbtp_run(o, &cfg, o->size ? o->size : 64);
	}
	return failed;
}

/*
 * journaled: what the journal costs a producer. 1 producer -> 1
 * subscriber, alone ("off"), beside an asynchronous journaler ("async":
 * a durable subscriber that appends, so the producer's claim-to-commit
 * should not move), and on a SHMBUS_CH_JOURNAL_SYNC channel ("sync":
 * each commit waits for the journaler's append). The figure is the
 * producer's own claim-to-commit time (on 2 cores a journaler is a third
 * busy process: end-to-end figures would measure the scheduler), paced at
 * 1 M records/s, which the journal sustains. Rounds alternate.
 */
int wl_journaled(const struct bench_opts *o)
{
	static const char *const names[] = {"off", "async", "sync"};
	int failed = 0;
	for (int round = 0; round < 2; round++)
		for (int v = 0; v < 3 && !interrupted(); v++) {
			struct sbtp_cfg cfg = {
				.name = "journaled",
				.producers = 1,
				.subscribers = v ? 2 : 1,
				.chflags = v == 2 ? SHMBUS_CH_JOURNAL_SYNC : 0,
				.time_claims = true,
				.rate_of_first = true,
				.pace = 1000000,
				.journal = v > 0};
			snprintf(cfg.variant, sizeof(cfg.variant),
				 "%s,paced=1M/s", names[v]);
			failed |= sbtp_run(o, &cfg, o->size ? o->size : 64);
		}
	return failed;
}

/*
 * journal-tp: does a journaled channel keep up? 1 producer -> the
 * journaler alone (an asynchronous durable subscriber that appends,
 * buffered, flushed per batch; policy none), flat out; the figure is the
 * journaler's sustained rate, every record appended. Two rounds.
 */
int wl_journal_tp(const struct bench_opts *o)
{
	int failed = 0;
	for (int round = 0; round < 2 && !interrupted(); round++) {
		struct sbtp_cfg cfg = {.name = "journal-tp",
				       .producers = 1,
				       .subscribers = 1,
				       .journal = true};
		snprintf(cfg.variant, sizeof(cfg.variant), "journaler");
		failed |= sbtp_run(o, &cfg, o->size ? o->size : 64);
	}
	return failed;
}

/*
 * journal-group: group commit. 4 producers -> a SHMBUS_CH_JOURNAL_SYNC
 * channel whose journaler syncs under EVERY_N with N = 1: each commit
 * returns once its records are on the disk. Claims of 64 and of 1 record;
 * the figure is records/s synced (compare the journal workload's every-1
 * line: one fdatasync per append).
 */
int wl_journal_group(const struct bench_opts *o)
{
	static const uint32_t batches[] = {64, 1};
	static const uint64_t counts[] = {40000, 4000};
	int failed = 0;
	for (int b = 0; b < 2 && !interrupted(); b++) {
		struct sbtp_cfg cfg = {
			.name = "journal-group",
			.producers = 4,
			.subscribers = 1,
			.chflags = SHMBUS_CH_JOURNAL_SYNC |
				   SHMBUS_CH_MULTI_PRODUCER,
			.tagged = true,
			.time_claims = true,
			.journal = true,
			.sync_every = 1,
			.batch = batches[b],
			.count = counts[b]};
		snprintf(cfg.variant, sizeof(cfg.variant),
			 "every-1,producers=4,claims=%u", batches[b]);
		failed |= sbtp_run(o, &cfg, o->size ? o->size : 64);
	}
	return failed;
}

/*
 * journal-latency: Chronicle Queue's measure. 1 producer -> a
 * SHMBUS_CH_JOURNAL_SYNC channel and its journaler (two processes; policy
 * none: "journaled" is in the file, as Chronicle's writer-to-reader), 40 B
 * records, one a claim, paced at each rate; the producer's claim-to-commit
 * (the commit returns once the journaler appended the record) p50, p99,
 * p99.9 at each. The answer is the highest rate whose p99 <= 10 us.
 */
int wl_journal_latency(const struct bench_opts *o)
{
	static const uint64_t paces[] = {100000,  250000,  500000, 1000000,
					 1600000, 2400000, 3200000};
	int failed = 0;
	for (size_t i = 0; i < sizeof(paces) / sizeof(paces[0]) &&
			   !interrupted();
	     i++) {
		struct sbtp_cfg cfg = {.name = "journal-latency",
				       .producers = 1,
				       .subscribers = 1,
				       .chflags = SHMBUS_CH_JOURNAL_SYNC,
				       .time_claims = true,
				       .journal = true,
				       .pace = paces[i],
				       .batch = 1,
				       .count = 200000};
		snprintf(cfg.variant, sizeof(cfg.variant), "paced=%llu/s",
			 (unsigned long long)paces[i]);
		failed |= sbtp_run(o, &cfg, o->size ? o->size : 40);
	}
	return failed;
}
