/*
 * A live bus for the tool tests, run as its own process:
 *   tool_feeder BUS
 * creates BUS with channels
 *   Orders  single producer (this process), every field type in its schema;
 *           subscribers good, bad (fails every record whose u64 is a
 *           multiple of 4, retried once, then dead-lettered) and the group
 *           workers; a record published every 2 ms
 *   Types   multi-producer, the same schema, no subscriber (for `pub`)
 *   Plain   multi-producer, 16 bytes, no schema, 16 slots; the durable
 *           name idle, closed, gates it (so it fills up)
 *   Ticks   overwrite, the same schema, a record every 2 ms
 * and a watchdog thread; prints "ready" once records flowed, and runs
 * until its standard input closes or SIGTERM, then removes the bus.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool_schema.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int ok(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}

static int fails_fourths(const shmbus_record_t *r, void *ctx)
{
	(void)ctx;
	const struct all_types *a = r->data;
	if (a->u64 % 4)
		return 0;
	shmbus_fail_note("u64 %llu is a multiple of 4",
			 (unsigned long long)a->u64);
	return -1;
}

static void die(const char *what)
{
	fprintf(stderr, "tool_feeder: %s: %s\n", what, shmbus_errmsg());
	exit(1);
}

static shmbus_channel_t *channel(shmbus_t *bus, const char *name,
				 uint32_t size, uint32_t cap, uint32_t flags,
				 const shmbus_schema_t *schema)
{
	shmbus_channel_opts_t o = {.record_size = size,
				   .capacity = cap,
				   .flags = flags,
				   .schema = schema};
	shmbus_channel_t *ch;
	if (shmbus_channel_open(bus, name, &o, &ch))
		die(name);
	return ch;
}

static shmbus_sub_t *sub(shmbus_channel_t *ch, const char *name,
			 shmbus_handler_fn fn, int group)
{
	shmbus_sub_opts_t so = {.name = name,
				.retry = {.max_attempts = 2,
					  .base_us = 100,
					  .cap_us = 1000}};
	shmbus_sub_t *s;
	if ((group ? shmbus_group_join : shmbus_subscribe)(ch, fn, NULL, &so,
							   &s))
		die(name);
	return s;
}

static void record(struct all_types *a, uint64_t n)
{
	memset(a, 0, sizeof(*a));
	a->u64 = n;
	a->i64 = -(int64_t)n;
	a->f64 = (double)n / 4;
	a->u32 = (uint32_t)n * 3;
	a->i32 = -(int32_t)n;
	a->f32 = (float)n / 2;
	a->u16 = (uint16_t)n;
	a->i16 = (int16_t)-n;
	a->u8 = (uint8_t)n;
	a->i8 = (int8_t)-n;
	a->side = n % 2;
	a->flag = n % 3 == 0;
	snprintf(a->sym, sizeof(a->sym), "S%llu", (unsigned long long)n % 1000);
	memcpy(a->raw, "\xde\xad\xbe\xef", 4);
	a->venue = 300;
}

static bool input_closed(int timeout_ms)
{
	struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
	char c;
	return poll(&p, 1, timeout_ms) > 0 && read(STDIN_FILENO, &c, 1) <= 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: tool_feeder BUS\n");
		return 2;
	}
	signal(SIGTERM, on_term);
	shmbus_t *bus;
	if (shmbus_open(argv[1], NULL, &bus))
		die(argv[1]);
	uint32_t size = sizeof(struct all_types);
	shmbus_channel_t *orders = channel(bus, "Orders", size, 64, 0,
					   &all_schema);
	channel(bus, "Types", size, 64, SHMBUS_CH_MULTI_PRODUCER, &all_schema);
	shmbus_channel_t *plain = channel(bus, "Plain", 16, 16,
					  SHMBUS_CH_MULTI_PRODUCER, NULL);
	shmbus_channel_t *ticks = channel(bus, "Ticks", size, 64,
					  SHMBUS_CH_OVERWRITE, &all_schema);
	shmbus_sub_close(sub(plain, "idle", ok, 0), 0);
	shmbus_sub_t *subs[] = {sub(orders, "good", ok, 0),
				sub(orders, "bad", fails_fourths, 0),
				sub(orders, "workers", ok, 1)};
	shmbus_producer_t *p, *tp;
	shmbus_watchdog_t *w;
	shmbus_watchdog_opts_t wo = {.period_ms = 50};
	if (shmbus_producer_open(orders, NULL, &p) ||
	    shmbus_producer_open(ticks, NULL, &tp) ||
	    shmbus_watchdog_start(bus, &wo, &w))
		die("producers and watchdog");
	struct all_types a;
	for (uint64_t n = 1; !stop && !input_closed(2); n++) {
		record(&a, n);
		shmbus_try_publish(p, &a, sizeof(a), n);
		shmbus_try_publish(tp, &a, sizeof(a), n);
		for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
			shmbus_poll(subs[i], 64);
		if (n == 50) {
			printf("ready\n");
			fflush(stdout);
		}
	}
	shmbus_watchdog_close(w);
	shmbus_close(bus);
	shmbus_unlink(argv[1]);
	return 0;
}
