/*
 * An OrderPlaced subscriber: checks what arrives, measures publish-to-handler
 * latency, and prints a summary at the end marker.
 *
 *   subscriber BUS NAME [--wait spin|yield|backoff|block] [--after UPSTREAM]
 *                       [--group]
 *
 * A durable broadcast subscriber by default: it sees every order, once and
 * in order. --after UPSTREAM runs it after another subscriber (a dependency
 * barrier). --group makes it a member of the competing group NAME: each
 * order goes to one member; a member stops once the stream has been idle
 * for a second after the publisher's end marker reached any member.
 * Start subscribers before the publisher: a new name sees what is published
 * after it joins. Killed and restarted with the same name, it resumes.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/shmbus.h>

#include "order.h"

/* Latencies, kept whole and sorted at the end for exact percentiles. */
#define MAX_SAMPLES (4u << 20)

struct state {
	shmbus_t *bus;
	uint64_t *lat;
	size_t n_lat;
	uint64_t next_id;
	uint64_t errors;
	int group;
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
	/* broadcast: every order, in order (a group member gets a share,
	 * and may take over records another member had fetched) */
	if (!st->group && o->order_id != st->next_id)
		st->errors++;
	st->next_id = o->order_id + 1;
	/* the publisher stamped on another cpu: a TSC a few ns ahead reads
	 * as "before" it -- count that as 0, not as 2^64 */
	if (st->n_lat < MAX_SAMPLES)
		st->lat[st->n_lat++] = now > rec->timestamp ?
					       now - rec->timestamp : 0;
	return 0;
}

static int by_value(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The nearest-rank percentile (per mille) of n sorted values: the smallest
 * value that at least pm/1000 of them do not exceed. */
static unsigned long long percentile(const uint64_t *v, size_t n,
				     unsigned pm)
{
	if (n == 0)
		return 0;
	size_t k = (n * pm + 999) / 1000;
	return v[k ? k - 1 : 0];
}

static uint32_t parse_wait(const char *s)
{
	if (!strcmp(s, "spin"))
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
		fprintf(stderr, "usage: subscriber BUS NAME [--wait W] "
				"[--after UPSTREAM] [--group]\n");
		return 2;
	}
	const char *wait = "spin", *after = NULL;
	int group = 0;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--wait") && i + 1 < argc)
			wait = argv[++i];
		else if (!strcmp(argv[i], "--after") && i + 1 < argc)
			after = argv[++i];
		else if (!strcmp(argv[i], "--group"))
			group = 1;
		else {
			fprintf(stderr, "subscriber: unknown option %s\n",
				argv[i]);
			return 2;
		}
	}
	shmbus_t *bus;
	int rc = shmbus_open(argv[1], NULL, &bus);
	shmbus_channel_t *ch = NULL;
	shmbus_channel_opts_t co = {.record_size = sizeof(struct order_placed),
				    .capacity = ORDER_CAPACITY,
				    .layout_hash = ORDER_LAYOUT_HASH,
				    .schema = &order_schema};
	if (rc == 0)
		rc = shmbus_channel_open(bus, ORDER_CHANNEL, &co, &ch);
	struct state st = {.bus = bus, .group = group};
	const char *ups[1] = {after};
	shmbus_sub_opts_t so = {.name = argv[2],
				.wait = parse_wait(wait),
				.after = after ? ups : NULL,
				.n_after = after ? 1 : 0};
	shmbus_sub_t *sub = NULL;
	if (rc == 0)
		rc = (st.lat = malloc(MAX_SAMPLES * sizeof(*st.lat))) ?
			     0 : SHMBUS_ENOMEM;
	if (rc == 0)
		rc = group ? shmbus_group_join(ch, on_order, &st, &so, &sub)
			   : shmbus_subscribe(ch, on_order, &st, &so, &sub);
	if (rc) {
		fprintf(stderr, "subscriber %s: %s (%s)\n", argv[2],
			shmbus_strerror(rc), shmbus_errmsg());
		return 1;
	}
	printf("subscriber %s: ready\n", argv[2]);
	fflush(stdout);
	for (;;) {
		if (shmbus_poll(sub, 256) > 0)
			continue;
		if (st.done && !group)
			break;
		/* a group member: the end marker reached one member; stop once
		 * the stream stays idle */
		if (shmbus_sub_wait(sub, st.done || st.next_id ? 1000000000ull
							       : 0) &&
		    group)
			break;
	}
	uint64_t *v = st.lat;
	size_t n = st.n_lat;
	qsort(v, n, sizeof(*v), by_value);
	printf("%-5s %-8s %7zu orders, %llu errors | latency ns p50 %6llu "
	       "p99 %7llu p99.9 %8llu max %8llu | %s%s%s\n",
	       group ? "group" : "sub", argv[2], n,
	       (unsigned long long)st.errors, percentile(v, n, 500),
	       percentile(v, n, 990), percentile(v, n, 999),
	       percentile(v, n, 1000), wait, after ? ", after " : "",
	       after ? after : "");
	free(v);
	shmbus_sub_close(sub, 0);
	shmbus_close(bus);
	return st.errors ? 1 : 0;
}
