/*
 * A durable subscriber to OrderPlaced: checks every order arrives once and
 * in order, measures publish-to-handler latency, and prints a summary when
 * the end marker arrives.
 *
 *   subscriber BUS NAME [spin|yield|backoff|block]
 *
 * Start it before the publisher: a new name sees what is published after it
 * joins. Killed and restarted with the same name, it resumes where it was.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/shmbus.h>

#include "hist.h" /* bench/: the benchmark's own percentile code */
#include "order.h"

struct state {
	shmbus_t *bus;
	struct samples lat;
	uint64_t next_id;
	uint64_t errors;
	int done;
};

static int on_order(const shmbus_record_t *rec, void *ctx)
{
	struct state *st = ctx;
	uint64_t now = shmbus_clock_ns(st->bus);
	const struct order_placed *o = rec->data;
	if (o->order_id == ORDER_END) {
		st->done = 1;
		return 0;
	}
	if (o->order_id != st->next_id)
		st->errors++;
	st->next_id = o->order_id + 1;
	samples_add(&st->lat, now - rec->timestamp);
	return 0;
}

static uint32_t parse_wait(const char *s)
{
	if (!s || !strcmp(s, "spin"))
		return SHMBUS_WAIT_SPIN;
	if (!strcmp(s, "yield"))
		return SHMBUS_WAIT_YIELD;
	if (!strcmp(s, "backoff"))
		return SHMBUS_WAIT_BACKOFF;
	return SHMBUS_WAIT_BLOCK;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr,
			"usage: subscriber BUS NAME [spin|yield|backoff|block]\n");
		return 2;
	}
	shmbus_t *bus;
	int rc = shmbus_open(argv[1], NULL, &bus);
	shmbus_channel_t *ch = NULL;
	shmbus_channel_opts_t co = {.record_size = sizeof(struct order_placed),
				    .capacity = ORDER_CAPACITY,
				    .layout_hash = ORDER_LAYOUT_HASH};
	if (rc == 0)
		rc = shmbus_channel_open(bus, ORDER_CHANNEL, &co, &ch);
	struct state st = {.bus = bus};
	shmbus_sub_opts_t so = {.name = argv[2], .wait = parse_wait(argv[3])};
	shmbus_sub_t *sub = NULL;
	if (rc == 0)
		rc = samples_init(&st.lat, 4u << 20) ? SHMBUS_ENOMEM : 0;
	if (rc == 0)
		rc = shmbus_subscribe(ch, on_order, &st, &so, &sub);
	if (rc) {
		fprintf(stderr, "subscriber %s: %s (%s)\n", argv[2],
			shmbus_strerror(rc), shmbus_errmsg());
		return 1;
	}
	printf("subscriber %s: ready\n", argv[2]);
	fflush(stdout);
	while (!st.done) {
		if (shmbus_poll(sub, 256) == 0)
			shmbus_sub_wait(sub, 0);
	}
	struct lat_summary s;
	samples_summary(&st.lat, &s);
	printf("subscriber %-6s %8llu orders, %llu out of order | latency ns "
	       "p50 %llu p99 %llu p99.9 %llu max %llu (wait %s)\n",
	       argv[2], (unsigned long long)s.n,
	       (unsigned long long)st.errors, (unsigned long long)s.p50,
	       (unsigned long long)s.p99, (unsigned long long)s.p999,
	       (unsigned long long)s.max, argv[3] ? argv[3] : "spin");
	shmbus_sub_close(sub, 0);
	shmbus_close(bus);
	return st.errors ? 1 : 0;
}
