/*
 * Publishes OrderPlaced events: bursts of 16 records (zero-copy claim of a
 * batch), then a short sleep, COUNT records in all, then an end marker.
 *
 *   publisher BUS [COUNT]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shmbus/shmbus.h>

#include "order.h"

static int die(const char *what, int rc)
{
	fprintf(stderr, "publisher: %s: %s (%s)\n", what, shmbus_strerror(rc),
		shmbus_errmsg());
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: publisher BUS [COUNT]\n");
		return 2;
	}
	uint64_t count = argc > 2 ? strtoull(argv[2], NULL, 10) : 200000;
	shmbus_t *bus;
	int rc = shmbus_open(argv[1], NULL, &bus);
	if (rc)
		return die("open bus", rc);
	shmbus_channel_opts_t co = {.record_size = sizeof(struct order_placed),
				    .capacity = ORDER_CAPACITY,
				    .layout_hash = ORDER_LAYOUT_HASH,
				    .schema = &order_schema};
	shmbus_channel_t *ch;
	if ((rc = shmbus_channel_open(bus, ORDER_CHANNEL, &co, &ch)))
		return die("open channel", rc);
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BACKOFF};
	shmbus_producer_t *p;
	if ((rc = shmbus_producer_open(ch, &po, &p)))
		return die("producer", rc);

	const struct timespec pause = {0, 20000}; /* 20 us between bursts */
	uint64_t id = 0;
	while (id < count) {
		uint32_t n = count - id < 16 ? (uint32_t)(count - id) : 16;
		shmbus_claim_t c;
		if ((rc = shmbus_claim(p, n, &c)))
			return die("claim", rc);
		for (uint32_t i = 0; i < n; i++, id++) {
			struct order_placed *o = shmbus_claim_at(&c, i);
			o->order_id = id;
			o->price_e8 = 10000000000 + (int64_t)(id % 1000) * 1000000;
			o->quantity = 100;
			o->side = id & 1 ? 'S' : 'B';
			memcpy(o->symbol, "ACME\0\0\0", 8);
			/* key: the instrument; here one of 16 */
			shmbus_claim_set(p, &c, i, sizeof(*o), id % 16);
		}
		shmbus_commit(p, &c);
		nanosleep(&pause, NULL);
	}
	struct order_placed end = {.order_id = ORDER_END};
	if ((rc = shmbus_publish(p, &end, sizeof(end), 0)))
		return die("publish", rc);
	printf("publisher: %llu orders published\n", (unsigned long long)count);
	shmbus_close(bus);
	return 0;
}
