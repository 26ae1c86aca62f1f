/*
 * hotpath: one thread publishes batches of records and polls them back,
 * for instruction counts under `valgrind --tool=callgrind` (repeatable,
 * unlike times on a shared VM). Run it at two counts and divide the
 * difference by the difference in records: set-up cancels.
 *
 *   valgrind --tool=callgrind build/bench/hotpath 1000 64 block
 *   valgrind --tool=callgrind build/bench/hotpath 2000 64 block
 *
 * Arguments: rounds (of 64 records), payload bytes, and the reader: block
 * (a subscriber of a block-policy channel), evict (of an evict-policy
 * channel: it copies each record out and checks it before its handler
 * sees it), group or keyed (a competing group of one member); and, if a
 * fourth argument `claim` is given, the producer claims the 64 slots at
 * once, fills them in place and commits once (as `throughput` does),
 * instead of publishing each record; with `single`, each record is
 * published and polled on its own (as a round trip does). A last word
 * `compact` makes the channel SHMBUS_CH_COMPACT (8-byte slot headers;
 * records then carry key 0, and keyed groups are refused).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmbus/shmbus.h>

#define BATCH 64u

static int count(const shmbus_record_t *r, void *ctx)
{
	uint64_t v;
	memcpy(&v, r->data, sizeof(v));
	*(uint64_t *)ctx += v; /* reads the payload, as a handler would */
	return 0;
}

int main(int argc, char **argv)
{
	int compact = argc > 4 && strcmp(argv[argc - 1], "compact") == 0;
	argc -= compact;
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: hotpath ROUNDS BYTES "
				"block|evict|group|keyed [claim|single] "
				"[compact]\n");
		return 2;
	}
	uint64_t rounds = strtoull(argv[1], NULL, 10);
	uint32_t size = (uint32_t)strtoul(argv[2], NULL, 10);
	int evict = strcmp(argv[3], "evict") == 0;
	int keyed = strcmp(argv[3], "keyed") == 0;
	int group = keyed || strcmp(argv[3], "group") == 0;
	int batch = argc == 5 && strcmp(argv[4], "claim") == 0;
	int single = argc == 5 && strcmp(argv[4], "single") == 0;
	if (size < 8 || size > 4096) {
		fprintf(stderr, "hotpath: BYTES is 8..4096\n");
		return 2;
	}
	char name[48];
	snprintf(name, sizeof(name), "hotpath.%d", (int)getpid());
	shmbus_t *bus;
	shmbus_channel_t *ch;
	shmbus_producer_t *p;
	shmbus_sub_t *s;
	shmbus_channel_opts_t co = {
		.record_size = size,
		.capacity = 4 * BATCH,
		.flags = compact ? SHMBUS_CH_COMPACT : 0,
		.stall_policy = evict ? SHMBUS_STALL_EVICT : SHMBUS_STALL_BLOCK};
	shmbus_sub_opts_t so = {
		.name = "hot",
		.flags = SHMBUS_SUB_NO_LATENCY | (keyed ? SHMBUS_GROUP_KEYED : 0)};
	uint64_t sum = 0;
	if (shmbus_open(name, NULL, &bus) ||
	    shmbus_channel_open(bus, "hot", &co, &ch) ||
	    shmbus_producer_open(ch, NULL, &p) ||
	    (group ? shmbus_group_join(ch, count, &sum, &so, &s)
		   : shmbus_subscribe(ch, count, &sum, &so, &s))) {
		fprintf(stderr, "hotpath: %s\n", shmbus_errmsg());
		shmbus_unlink(name);
		return 1;
	}
	uint8_t *buf = calloc(1, size);
	for (uint64_t r = 0; r < rounds; r++) {
		if (batch) {
			shmbus_claim_t c;
			if (shmbus_claim(p, BATCH, &c))
				return 1;
			for (uint32_t i = 0; i < BATCH; i++)
				memcpy(shmbus_claim_at(&c, i), &i, sizeof(i));
			if (shmbus_commit(p, &c) ||
			    shmbus_poll(s, BATCH) != (int)BATCH)
				return 1;
			continue;
		}
		for (uint32_t i = 0; i < BATCH; i++) {
			memcpy(buf, &i, sizeof(i));
			if (shmbus_publish(p, buf, size,
					   compact ? 0 : r * BATCH + i))
				return 1;
			if (single && shmbus_poll(s, 1) != 1)
				return 1;
		}
		if (single)
			continue;
		if (shmbus_poll(s, BATCH) != (int)BATCH)
			return 1;
	}
	printf("%llu records, checksum %llu\n",
	       (unsigned long long)(rounds * BATCH), (unsigned long long)sum);
	free(buf);
	shmbus_close(bus);
	shmbus_unlink(name);
	return 0;
}
