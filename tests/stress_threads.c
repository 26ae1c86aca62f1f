/*
 * Threaded stress for the TSan build: every role is a thread on ONE mapping
 * (TSan tracks addresses, so two mappings of one object would hide races).
 * Two producers feed a multi-producer channel read by two broadcast
 * subscribers (one through the handler registry), a group of two members
 * and a spy (which copies slots the producers may be writing); a single
 * producer feeds an overwrite channel read by a slow reader; another feeds
 * an evict-policy channel whose slow subscriber an evictor thread keeps
 * evicting. Every record is checked; exit status 0 only if all are right.
 * With --compact every channel is SHMBUS_CH_COMPACT (8-byte slot headers).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmbus/shmbus.h>

#define NPROD 2
#define NSUB 2

static uint64_t per_producer = 200000;
static shmbus_channel_t *mp_ch, *ow_ch, *ev_ch;
static atomic_int joined, ow_done, ow_joined, mp_done, ev_done, ev_joined;
static atomic_ulong failures;
static bool compact_mode; /* --compact: records carry no time, key, origin */

struct payload {
	uint64_t producer, counter;
};

static void fail(const char *what, unsigned long a, unsigned long b)
{
	fprintf(stderr, "stress_threads: %s (%lu, %lu)\n", what, a, b);
	atomic_fetch_add(&failures, 1);
}

struct order {
	uint64_t next[NPROD];
	uint64_t got;
};

static int on_record(const shmbus_record_t *r, void *ctx)
{
	struct order *o = ctx;
	struct payload p;
	memcpy(&p, r->data, sizeof(p));
	if (compact_mode && (r->timestamp || r->key || r->origin != r->seq))
		fail("compact record with a time, key or origin",
		     (unsigned long)r->seq, (unsigned long)r->origin);
	if (p.producer >= NPROD || p.counter != o->next[p.producer])
		fail("order", (unsigned long)p.producer,
		     (unsigned long)p.counter);
	else
		o->next[p.producer]++;
	o->got++;
	return 0;
}

static struct order orders[NSUB];

static int noop(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}

/* Subscriber 0 has its own handler; subscriber 1 dispatches through the
 * registry, whose handler set main() churns while records flow. */
static void *subscriber(void *arg)
{
	long i = (long)(intptr_t)arg;
	char name[16];
	snprintf(name, sizeof(name), "s%ld", i);
	struct order *o = &orders[i];
	shmbus_sub_opts_t so = {.name = name, .wait = SHMBUS_WAIT_BLOCK};
	shmbus_sub_t *s;
	if (shmbus_subscribe(mp_ch, i == 1 ? NULL : on_record,
			     i == 1 ? NULL : o, &so, &s) != 0) {
		fail(shmbus_errmsg(), 0, 0);
		atomic_fetch_add(&joined, 1);
		return NULL;
	}
	atomic_fetch_add(&joined, 1);
	while (o->got < NPROD * per_producer)
		if (shmbus_poll(s, 256) == 0)
			shmbus_sub_wait(s, 0);
	return NULL;
}

static void *producer(void *arg)
{
	uint64_t id = (uint64_t)(intptr_t)arg;
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_BLOCK};
	shmbus_producer_t *p;
	if (shmbus_producer_open(mp_ch, &po, &p) != 0) {
		fail(shmbus_errmsg(), id, 0);
		return NULL;
	}
	for (uint64_t k = 0; k < per_producer; k++) {
		struct payload pl = {id, k};
		if (k & 1) {
			int rc;
			while ((rc = shmbus_try_publish(p, &pl, sizeof(pl), 0)) ==
			       SHMBUS_EAGAIN)
				sched_yield();
			if (rc)
				fail("try_publish", (unsigned long)rc, k);
		} else if (shmbus_publish(p, &pl, sizeof(pl), 0) != 0) {
			fail("publish", id, k);
		}
	}
	return NULL;
}

/* Two members of a competing group on the same channel: together they
 * must see every record exactly once. */
static _Atomic unsigned char *group_seen;
static atomic_ulong group_total;

static int on_group(const shmbus_record_t *r, void *ctx)
{
	(void)ctx;
	struct payload p;
	memcpy(&p, r->data, sizeof(p));
	if (p.producer >= NPROD || p.counter >= per_producer)
		fail("group record", (unsigned long)p.producer,
		     (unsigned long)p.counter);
	else if (atomic_fetch_add(&group_seen[p.producer * per_producer +
					      p.counter],
				  1) != 0)
		fail("group duplicate", (unsigned long)p.producer,
		     (unsigned long)p.counter);
	atomic_fetch_add(&group_total, 1);
	return 0;
}

static void *group_worker(void *arg)
{
	shmbus_sub_t *s = arg;
	while (atomic_load(&group_total) < NPROD * per_producer)
		if (shmbus_poll(s, 32) == 0)
			shmbus_sub_wait(s, 1000000);
	return NULL;
}

static void *ow_producer(void *arg)
{
	(void)arg;
	while (!atomic_load(&ow_joined)) /* the reader is owed every record */
		sched_yield();
	shmbus_producer_t *p;
	if (shmbus_producer_open(ow_ch, NULL, &p) != 0) {
		fail(shmbus_errmsg(), 0, 0);
		atomic_store(&ow_done, 1);
		return NULL;
	}
	for (uint64_t k = 0; k < per_producer; k++) {
		uint64_t v[4] = {k, k, k, k};
		if (shmbus_try_publish(p, v, sizeof(v), 0) != 0)
			fail("overwrite publish", k, 0);
	}
	atomic_store(&ow_done, 1);
	return NULL;
}

static int on_ow(const shmbus_record_t *r, void *ctx)
{
	uint64_t v[4];
	memcpy(v, r->data, sizeof(v));
	for (int i = 0; i < 4; i++)
		if (v[i] != r->seq)
			fail("torn overwrite record", (unsigned long)r->seq,
			     (unsigned long)v[i]);
	(*(uint64_t *)ctx)++;
	return 0;
}

static void *ow_reader(void *arg)
{
	(void)arg;
	uint64_t got = 0;
	shmbus_sub_opts_t so = {.name = "ow"};
	shmbus_sub_t *s;
	int rc = shmbus_subscribe(ow_ch, on_ow, &got, &so, &s);
	atomic_store(&ow_joined, 1);
	if (rc != 0) {
		fail(shmbus_errmsg(), 0, 0);
		return NULL;
	}
	while (!atomic_load(&ow_done)) {
		shmbus_poll(s, 8);
		sched_yield(); /* slow: gets lapped */
	}
	while (shmbus_poll(s, 1000) > 0)
		;
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	if (got + st.lost != per_producer)
		fail("overwrite delivered + lost != published",
		     (unsigned long)got, (unsigned long)st.lost);
	printf("overwrite: delivered %lu lost %lu\n", (unsigned long)got,
	       (unsigned long)st.lost);
	return NULL;
}

/* A spy on the multi-producer channel: every record it returns is whole
 * (its copy raced with the producers' writes of later laps). */
static void *spy(void *arg)
{
	(void)arg;
	shmbus_spy_t *sp;
	if (shmbus_spy_open(mp_ch, 1, &sp) != 0) {
		fail(shmbus_errmsg(), 0, 0);
		return NULL;
	}
	uint64_t got = 0, missed = 0;
	struct payload buf;
	shmbus_record_t r;
	while (!atomic_load(&mp_done)) {
		int rc = shmbus_spy_next(sp, &r, &buf, sizeof(buf), &missed);
		if (rc == SHMBUS_EAGAIN) {
			sched_yield();
		} else if (rc == 0 && !(r.flags & SHMBUS_REC_TOMBSTONE)) {
			if (buf.producer >= NPROD || buf.counter >= per_producer)
				fail("spy record", (unsigned long)buf.producer,
				     (unsigned long)buf.counter);
			got++;
		} else if (rc != 0 && rc != SHMBUS_ELAPPED) {
			fail("spy", (unsigned long)-rc, 0);
		}
	}
	shmbus_spy_close(sp);
	printf("spy: %lu records, %lu missed\n", (unsigned long)got,
	       (unsigned long)missed);
	return NULL;
}

/* The evict channel: each payload word is its record's sequence. */
static void *ev_producer(void *arg)
{
	(void)arg;
	while (!atomic_load(&ev_joined))
		sched_yield();
	shmbus_producer_t *p;
	if (shmbus_producer_open(ev_ch, NULL, &p) != 0) {
		fail(shmbus_errmsg(), 0, 0);
		atomic_store(&ev_done, 1);
		return NULL;
	}
	for (uint64_t k = 0; k < per_producer; k++) {
		uint64_t v[4] = {k, k, k, k};
		while (shmbus_try_publish(p, v, sizeof(v), 0) == SHMBUS_EAGAIN)
			sched_yield(); /* until the evictor lets us past */
	}
	atomic_store(&ev_done, 1);
	return NULL;
}

static int on_ev(const shmbus_record_t *r, void *ctx)
{
	uint64_t v[4];
	memcpy(v, r->data, sizeof(v));
	for (int i = 0; i < 4; i++)
		if (v[i] != r->seq)
			fail("evicted reader saw a rewritten record",
			     (unsigned long)r->seq, (unsigned long)v[i]);
	(*(uint64_t *)ctx)++;
	return 0;
}

static void *ev_reader(void *arg)
{
	(void)arg;
	uint64_t got = 0;
	shmbus_sub_opts_t so = {.name = "ev", .batch = 8};
	shmbus_sub_t *s;
	int rc = shmbus_subscribe(ev_ch, on_ev, &got, &so, &s);
	atomic_store(&ev_joined, 1);
	if (rc != 0) {
		fail(shmbus_errmsg(), 0, 0);
		return NULL;
	}
	uint64_t lapped = 0;
	while (!atomic_load(&ev_done)) {
		lapped += shmbus_poll(s, 8) == SHMBUS_ELAPPED;
		sched_yield(); /* slow: gets evicted */
	}
	while ((rc = shmbus_poll(s, 1000)) > 0 || rc == SHMBUS_ELAPPED)
		lapped += rc == SHMBUS_ELAPPED;
	shmbus_sub_stats_t st;
	shmbus_sub_get_stats(s, &st);
	if (got + st.missed != per_producer)
		fail("evict: delivered + missed != published",
		     (unsigned long)got, (unsigned long)st.missed);
	printf("evict: delivered %lu missed %lu, %lu times evicted\n",
	       (unsigned long)got, (unsigned long)st.missed,
	       (unsigned long)lapped);
	return NULL;
}

static void *evictor(void *arg)
{
	(void)arg;
	while (!atomic_load(&ev_done)) {
		shmbus_channel_evict(ev_ch, 0);
		sched_yield();
	}
	return NULL;
}

int main(int argc, char **argv)
{
	uint32_t compact = argc > 1 && strcmp(argv[1], "--compact") == 0
				   ? SHMBUS_CH_COMPACT
				   : 0;
	compact_mode = compact != 0;
	const char *scale = getenv("SHMBUS_TEST_SCALE");
	if (scale && atoi(scale) > 0)
		per_producer = per_producer * (uint64_t)atoi(scale) / 100;
	char name[48];
	snprintf(name, sizeof(name), "tsan%d", (int)getpid());
	shmbus_t *bus;
	if (shmbus_open(name, NULL, &bus) != 0) {
		fprintf(stderr, "open: %s\n", shmbus_errmsg());
		return 1;
	}
	shmbus_channel_opts_t mo = {.record_size = sizeof(struct payload),
				    .capacity = 1024,
				    .flags = SHMBUS_CH_MULTI_PRODUCER | compact};
	shmbus_channel_opts_t oo = {.record_size = 32,
				    .capacity = 64,
				    .flags = SHMBUS_CH_OVERWRITE | compact};
	shmbus_channel_opts_t eo = {.record_size = 32,
				    .capacity = 64,
				    .flags = compact,
				    .stall_policy = SHMBUS_STALL_EVICT};
	if (shmbus_channel_open(bus, "mp", &mo, &mp_ch) != 0 ||
	    shmbus_channel_open(bus, "ow", &oo, &ow_ch) != 0 ||
	    shmbus_channel_open(bus, "ev", &eo, &ev_ch) != 0) {
		fprintf(stderr, "channel: %s\n", shmbus_errmsg());
		return 1;
	}
	if (shmbus_handler_add(bus, "mp", on_record, &orders[1]) != 0) {
		fprintf(stderr, "handler: %s\n", shmbus_errmsg());
		return 1;
	}
	group_seen = calloc(NPROD * per_producer, 1);
	shmbus_sub_t *members[2];
	shmbus_sub_opts_t go = {.name = "grp", .wait = SHMBUS_WAIT_BLOCK};
	for (int i = 0; i < 2; i++)
		if (shmbus_group_join(mp_ch, on_group, NULL, &go, &members[i])) {
			fprintf(stderr, "group: %s\n", shmbus_errmsg());
			return 1;
		}
	pthread_t gt[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&gt[i], NULL, group_worker, members[i]);
	pthread_t t[NSUB + NPROD + 6];
	for (long i = 0; i < NSUB; i++)
		pthread_create(&t[i], NULL, subscriber, (void *)(intptr_t)i);
	while (atomic_load(&joined) < NSUB)
		sched_yield();
	for (long i = 0; i < NPROD; i++)
		pthread_create(&t[NSUB + i], NULL, producer,
			       (void *)(intptr_t)i);
	pthread_create(&t[NSUB + NPROD], NULL, ow_reader, NULL);
	pthread_create(&t[NSUB + NPROD + 1], NULL, ow_producer, NULL);
	pthread_create(&t[NSUB + NPROD + 2], NULL, spy, NULL);
	pthread_create(&t[NSUB + NPROD + 3], NULL, ev_reader, NULL);
	pthread_create(&t[NSUB + NPROD + 4], NULL, ev_producer, NULL);
	pthread_create(&t[NSUB + NPROD + 5], NULL, evictor, NULL);
	/* churn the registry while subscriber 1 dispatches through it */
	for (int k = 0; k < 200; k++) {
		shmbus_handler_add(bus, "mp", noop, NULL);
		shmbus_handler_remove(bus, "mp", noop, NULL);
	}
	for (int i = 0; i < NSUB + NPROD; i++)
		pthread_join(t[i], NULL);
	atomic_store(&mp_done, 1); /* the spy stops */
	for (int i = NSUB + NPROD; i < NSUB + NPROD + 6; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(gt[i], NULL);
	if (atomic_load(&group_total) != NPROD * per_producer)
		fail("group total", atomic_load(&group_total), 0);
	shmbus_close(bus);
	shmbus_unlink(name);
	unsigned long f = atomic_load(&failures);
	printf("stress_threads%s: %lu records x %d subscribers, %lu "
	       "failures\n",
	       compact ? " --compact" : "",
	       (unsigned long)(NPROD * per_producer), NSUB, f);
	return f ? 1 : 0;
}
