/* The shmbus throughput harness (sbtp.c). */
#ifndef SHMBUS_BENCH_SBTP_H
#define SHMBUS_BENCH_SBTP_H

#include "bench.h"

struct sbtp_cfg {
	const char *name; /* reported workload name */
	char variant[48];
	int producers, subscribers;
	uint32_t chflags; /* shmbus_channel_flags */
	bool tagged;	  /* payload carries the producer id */
	/* the last subscriber's handler fails every fail_every-th record on
	 * every attempt (retries, then the DLQ); 0: none fail */
	uint32_t fail_every;
	bool time_claims; /* the producer times each claim-to-commit */
	/* report the first subscriber's rate, not the slowest one's */
	bool rate_of_first;
	/* the producer publishes at most this many records/s (0: flat out),
	 * so that a subscriber's own extra work does not set the rate */
	uint64_t pace;
	/* the last subscriber is a journaler (shmbus_journal_attach) into a
	 * fresh directory under the bench's --dir */
	bool journal;
	/* the journaler's policy: EVERY_N with this N (0: NONE) */
	uint32_t sync_every;
	uint32_t batch;	   /* records a claim (0: BENCH_BATCH) */
	uint64_t count;	   /* records a producer without --count (0: usual) */
};

/* One run at one size, reported; 0 ok. */
int sbtp_run(const struct bench_opts *o, const struct sbtp_cfg *cfg,
	     uint32_t size);

#endif /* SHMBUS_BENCH_SBTP_H */
