/*
 * Threaded stress of the journal's protocols with the bus, for the TSan
 * build: on ONE bus mapping, two producer threads publish on a
 * SHMBUS_CH_JOURNAL_SYNC channel (each commit waits for the journaler's
 * cursor), a journaler thread appends, and a late subscriber thread starts
 * in the journal and switches to the ring. Checked: every commit returned
 * only once its record was journaled; the late subscriber saw every
 * sequence from 0 once and in order; each producer's records in order.
 * Beside them, an event-store writer appends through its mapping (its
 * sealer thread touching pages ahead, sealing, reserving files) and is
 * read back whole. (Journal files are mapped once per handle, so TSan
 * sees the channel's side of these protocols and the writer's hand-offs
 * to its sealer; the files' side is tested across processes.)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmbus/journal.h>

#define NPROD 2

static uint64_t per_producer = 20000;
static shmbus_channel_t *ch;
static char jdir[64];
static atomic_int attached, producers_done, stop_journaler;
static atomic_ulong failures, published;

struct payload {
	uint64_t producer, counter;
};

static void fail(const char *what, unsigned long a, unsigned long b)
{
	if (atomic_fetch_add(&failures, 1) < 10)
		fprintf(stderr, "stress_journal: %s (%lu, %lu)\n", what, a, b);
}

static void *journaler(void *arg)
{
	(void)arg;
	/* small segments and write-back: the sealer thread's hand-offs
	 * (index, next segment, write-back) happen dozens of times */
	shmbus_journal_opts_t jo = {.segment_size = 65536,
				    .writeback_bytes = 16384};
	shmbus_journal_attach_opts_t ao = {.wait = SHMBUS_WAIT_YIELD,
					   .journal = &jo};
	shmbus_journal_t *j;
	if (shmbus_journal_attach(ch, jdir, &ao, &j)) {
		fail(shmbus_errmsg(), 0, 0);
		atomic_store(&attached, -1);
		return NULL;
	}
	atomic_store(&attached, 1);
	while (!atomic_load(&stop_journaler))
		if (shmbus_journal_poll(j, 256) <= 0)
			shmbus_journal_wait(j, 1000000);
	shmbus_journal_close(j);
	return NULL;
}

static void *producer(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	shmbus_producer_opts_t po = {.wait = SHMBUS_WAIT_YIELD};
	shmbus_producer_t *p;
	shmbus_journal_opts_t ro = {.flags = SHMBUS_JOURNAL_READONLY};
	shmbus_journal_t *j;
	if (shmbus_producer_open(ch, &po, &p) ||
	    shmbus_journal_open(jdir, &ro, &j)) {
		fail(shmbus_errmsg(), id, 0);
		return NULL;
	}
	for (uint64_t i = 0; i < per_producer; i++) {
		shmbus_claim_t c;
		struct payload pl = {id, i};
		if (shmbus_claim(p, 1, &c) ||
		    shmbus_claim_set(p, &c, 0, sizeof(pl), i) ||
		    (memcpy(shmbus_claim_payload(p, &c, 0), &pl, sizeof(pl)),
		     shmbus_commit(p, &c))) {
			fail(shmbus_errmsg(), id, i);
			break;
		}
		if (shmbus_journal_end(j) <= c.seq)
			fail("a commit returned before its record was journaled",
			     c.seq, shmbus_journal_end(j));
		atomic_fetch_add(&published, 1);
	}
	shmbus_journal_close(j);
	shmbus_producer_close(p);
	atomic_fetch_add(&producers_done, 1);
	return NULL;
}

struct seen {
	uint64_t next_seq, next[NPROD];
};

static int check(const shmbus_record_t *r, void *ctx)
{
	struct seen *v = ctx;
	struct payload pl;
	memcpy(&pl, r->data, sizeof(pl));
	if (r->seq != v->next_seq)
		fail("late subscriber: sequence", r->seq, v->next_seq);
	else if (pl.producer >= NPROD || pl.counter != v->next[pl.producer])
		fail("late subscriber: a producer's order", pl.producer,
		     pl.counter);
	else
		v->next[pl.producer]++;
	v->next_seq = r->seq + 1;
	return 0;
}

static void *late(void *arg)
{
	(void)arg;
	while (atomic_load(&published) < per_producer / 2 &&
	       atomic_load(&producers_done) < NPROD)
		sched_yield();
	struct seen v = {0};
	shmbus_sub_opts_t so = {.name = "late", .wait = SHMBUS_WAIT_YIELD};
	shmbus_sub_t *s;
	if (shmbus_journal_subscribe(ch, jdir, NULL, check, &v, &so, &s)) {
		fail(shmbus_errmsg(), 0, 0);
		return NULL;
	}
	uint64_t total = per_producer * NPROD;
	while (v.next_seq < total && atomic_load(&failures) == 0)
		if (shmbus_poll(s, 256) == 0)
			shmbus_sub_wait(s, 1000000);
	if (shmbus_sub_replaying(s))
		fail("late subscriber never switched to the ring", 0, 0);
	shmbus_sub_close(s, 0);
	shmbus_unsubscribe(ch, "late");
	return NULL;
}

/* A mapped writer: small segments, so that rolls, seals, reserved files
 * and pages touched ahead come often; every record read back. */
static void *store(void *arg)
{
	(void)arg;
	char dir[96];
	snprintf(dir, sizeof(dir), "%s.store", jdir);
	shmbus_journal_opts_t jo = {.segment_size = 65536};
	shmbus_journal_t *j;
	if (shmbus_journal_open(dir, &jo, &j)) {
		fail(shmbus_errmsg(), 0, 0);
		return NULL;
	}
	uint64_t n = per_producer * NPROD;
	struct payload p = {0};
	for (uint64_t i = 0; i < n; i++) {
		p.counter = i;
		if (shmbus_journal_append(j, i, i, 1, i % 7, &p, sizeof(p))) {
			fail(shmbus_errmsg(), i, 0);
			break;
		}
	}
	shmbus_journal_iter_t *it;
	shmbus_journal_entry_t e;
	uint64_t want = 0;
	if (shmbus_journal_iter_open(j, NULL, &it) == 0) {
		while (shmbus_journal_iter_next(it, &e) == 1) {
			memcpy(&p, e.rec.data, sizeof(p));
			if (e.rec.seq != want || p.counter != want)
				fail("store: read back", e.rec.seq, want);
			want++;
		}
		shmbus_journal_iter_close(it);
	}
	if (want != n)
		fail("store: records read back", want, n);
	shmbus_journal_close(j);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fail("store: could not remove the directory", 0, 0);
	return NULL;
}

int main(void)
{
	const char *e = getenv("SHMBUS_TEST_SCALE");
	if (e && atoi(e) > 0)
		per_producer = per_producer * (uint64_t)atoi(e) / 100;
	char bus_name[48];
	snprintf(bus_name, sizeof(bus_name), "stressj.%d", (int)getpid());
	snprintf(jdir, sizeof(jdir), "/var/tmp/stress_journal.%d",
		 (int)getpid());
	shmbus_unlink(bus_name);
	shmbus_t *bus;
	shmbus_channel_opts_t o = {.record_size = 64,
				   .capacity = 256,
				   .flags = SHMBUS_CH_MULTI_PRODUCER |
					    SHMBUS_CH_JOURNAL_SYNC};
	if (shmbus_open(bus_name, NULL, &bus) ||
	    shmbus_channel_open(bus, "orders", &o, &ch)) {
		fprintf(stderr, "stress_journal: %s\n", shmbus_errmsg());
		return 1;
	}
	pthread_t jt, lt, st, pt[NPROD];
	pthread_create(&st, NULL, store, NULL);
	pthread_create(&jt, NULL, journaler, NULL);
	while (atomic_load(&attached) == 0)
		sched_yield();
	for (uintptr_t i = 0; i < NPROD && atomic_load(&attached) > 0; i++)
		pthread_create(&pt[i], NULL, producer, (void *)i);
	pthread_create(&lt, NULL, late, NULL);
	for (int i = 0; i < NPROD && atomic_load(&attached) > 0; i++)
		pthread_join(pt[i], NULL);
	pthread_join(lt, NULL);
	pthread_join(st, NULL);
	atomic_store(&stop_journaler, 1);
	pthread_join(jt, NULL);
	shmbus_close(bus);
	shmbus_unlink(bus_name);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", jdir);
	if (system(cmd) != 0)
		fprintf(stderr, "stress_journal: could not remove %s\n", jdir);
	unsigned long f = atomic_load(&failures);
	printf("stress_journal: %llu records x %d producers, %lu failures\n",
	       (unsigned long long)per_producer, NPROD, f);
	return f ? 1 : 0;
}
