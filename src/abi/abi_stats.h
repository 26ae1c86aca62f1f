/* The shared-memory ABI (layout.h): a subscriber row's latency histogram. */
#ifndef SHMBUS_ABI_STATS_H
#define SHMBUS_ABI_STATS_H

#include "abi_common.h"

/*
 * A subscriber row's latency histogram: publish time stamp to handler
 * start, sampled once per batch (its first record), in log-linear buckets
 * (lat_bucket below). Written by the row's holder with relaxed load+store
 * (one writer; a group's members share it and may lose a count), read by
 * tools.
 */
#define SHMBUS_LAT_BUCKETS 128u
struct ch_sub_stats {
	_Atomic uint64_t lat[SHMBUS_LAT_BUCKETS];
};
_Static_assert(sizeof(struct ch_sub_stats) == 1024, "stats ABI");

/* 4 buckets per power of two from 16 ns; below 16 ns, 4 ns wide; the last
 * bucket takes everything from about 12 s up. */
static inline uint32_t lat_bucket(uint64_t ns)
{
	if (ns < 16)
		return (uint32_t)ns >> 2;
	uint32_t msb = 63u - (uint32_t)__builtin_clzll(ns);
	uint32_t b = (msb - 3) * 4 + (uint32_t)((ns >> (msb - 2)) & 3);
	return b < SHMBUS_LAT_BUCKETS ? b : SHMBUS_LAT_BUCKETS - 1;
}

/* The smallest value of bucket b (the inverse of lat_bucket). */
static inline uint64_t lat_bucket_floor(uint32_t b)
{
	if (b < 4)
		return (uint64_t)b << 2;
	uint32_t msb = b / 4 + 3;
	return (1ull << msb) | (uint64_t)(b & 3) << (msb - 2);
}

#endif /* SHMBUS_ABI_STATS_H */
