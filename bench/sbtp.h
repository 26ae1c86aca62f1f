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
};

/* One run at one size, reported; 0 ok. */
int sbtp_run(const struct bench_opts *o, const struct sbtp_cfg *cfg,
	     uint32_t size);

#endif /* SHMBUS_BENCH_SBTP_H */
