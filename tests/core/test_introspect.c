/*
 * What tools read: schemas stored in the channel, the channel and
 * subscriber lists with their counters, producers' counters and the
 * latency histogram.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

struct order {
	uint64_t id;
	int32_t qty;
	float f;
	double px;
	char sym[8];
	uint8_t side;
	uint8_t flag;
	uint8_t raw[4];
};

static const shmbus_enum_value_t sides[] = {{"BUY", 0}, {"SELL", 1}};
static const shmbus_field_t order_fields[] = {
	SHMBUS_FIELD(struct order, id, SHMBUS_F_U64),
	SHMBUS_FIELD(struct order, qty, SHMBUS_F_I32),
	SHMBUS_FIELD(struct order, f, SHMBUS_F_F32),
	SHMBUS_FIELD(struct order, px, SHMBUS_F_F64),
	SHMBUS_FIELD(struct order, sym, SHMBUS_F_CHARS),
	SHMBUS_FIELD_ENUM(struct order, side, sides),
	SHMBUS_FIELD(struct order, flag, SHMBUS_F_BOOL),
	SHMBUS_FIELD(struct order, raw, SHMBUS_F_BYTES),
};
static const shmbus_schema_t order_schema =
	SHMBUS_SCHEMA(struct order, order_fields);

Test(schema, stored_compared_and_read_back)
{
	const char *name = test_bus("sc");
	shmbus_t *bus;
	cr_assert_eq(shmbus_open(name, NULL, &bus), 0);
	shmbus_channel_opts_t o = {.record_size = sizeof(struct order),
				   .capacity = 16,
				   .schema = &order_schema};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_channel_open(bus, "Orders", &o, &ch), 0, "%s",
		     shmbus_errmsg());
	shmbus_field_info_t f[16];
	cr_assert_eq(shmbus_channel_fields(ch, f, 16), 8);
	cr_expect_str_eq(f[3].name, "px");
	cr_expect_eq(f[3].type, SHMBUS_F_F64);
	cr_expect_eq(f[3].offset, offsetof(struct order, px));
	cr_expect_eq(f[4].size, 8);
	cr_expect_eq(f[5].n_enums, 2);
	cr_expect_str_eq(shmbus_channel_enum_name(ch, 5, 1), "SELL");
	cr_expect_null(shmbus_channel_enum_name(ch, 5, 7));
	int64_t v = -1;
	cr_expect_eq(shmbus_channel_enum_value(ch, 5, "BUY", &v), 0);
	cr_expect_eq(v, 0);
	cr_expect_eq(shmbus_channel_enum_value(ch, 5, "HOLD", &v),
		     SHMBUS_ENOENT);
	shmbus_channel_info_t info;
	cr_assert_eq(shmbus_channel_get_info(ch, &info), 0);
	cr_expect_eq(info.schema_fields, 8);

	/* another process sees the same schema; a different one is refused */
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_t *b;
		shmbus_channel_t *c;
		CHECK_OK(shmbus_open(name, NULL, &b));
		CHECK_OK(shmbus_channel_open(b, "Orders", NULL, &c));
		shmbus_field_info_t g[16];
		_exit(shmbus_channel_fields(c, g, 16) == 8 &&
			      !strcmp(g[7].name, "raw")
		      ? 0
		      : 1);
	}
	cr_expect_eq(child_status(pid), 0);
	shmbus_field_t other[8];
	memcpy(other, order_fields, sizeof(other));
	other[1].name = "quantity";
	shmbus_schema_t os = {"struct order", sizeof(struct order), 8, other};
	o.schema = &os;
	shmbus_channel_t *c2;
	cr_expect_eq(shmbus_channel_open(bus, "Orders", &o, &c2),
		     SHMBUS_EEXIST);
	cr_expect(strstr(shmbus_errmsg(), "schema") != NULL);

	/* bad schemas are refused with the field named */
	other[1].name = "qty";
	other[2].offset = 200;
	cr_expect_eq(shmbus_channel_open(bus, "Bad", &o, &c2), SHMBUS_EINVAL);
	cr_expect(strstr(shmbus_errmsg(), "'f'") != NULL, "%s",
		  shmbus_errmsg());
	other[2].offset = 12;
	other[2].name = "id";
	cr_expect_eq(shmbus_channel_open(bus, "Bad", &o, &c2), SHMBUS_EINVAL);
	cr_expect(strstr(shmbus_errmsg(), "twice") != NULL);
	/* no schema: zero fields */
	o.schema = NULL;
	cr_assert_eq(shmbus_channel_open(bus, "Plain", &o, &c2), 0);
	cr_expect_eq(shmbus_channel_fields(c2, f, 16), 0);
	shmbus_close(bus);
}

Test(schema, a_corrupt_stored_schema_is_an_error)
{
	shmbus_t *bus;
	shmbus_channel_opts_t o = {.record_size = sizeof(struct order),
				   .capacity = 16,
				   .schema = &order_schema};
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_open(test_bus("scc"), NULL, &bus), 0);
	cr_assert_eq(shmbus_channel_open(bus, "Orders", &o, &ch), 0);
	/* scribble as a buggy peer could: a field past the record */
	struct ch_schema *sc = ch->schema;
	sc->fields[2].offset = 1000;
	shmbus_field_info_t f[16];
	cr_expect_eq(shmbus_channel_fields(ch, f, 16), SHMBUS_ECORRUPT);
	sc->fields[2].offset = 12;
	sc->fields[5].enum_off = 127;
	cr_expect_null(shmbus_channel_enum_name(ch, 5, 1));
	sc->n_fields = 65;
	cr_expect_eq(shmbus_channel_fields(ch, f, 16), SHMBUS_ECORRUPT);
	shmbus_close(bus);
}

static int slow(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(*(uint64_t *)ctx)++;
	return r->seq == 3 ? -1 : 0;
}

Test(introspect, counters_lag_and_latency)
{
	const char *name = test_bus("in");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "C", 8, 16, 0);
	uint64_t got = 0;
	shmbus_sub_opts_t so = {.name = "risk",
				.retry = {.max_attempts = 1}};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, slow, &got, &so, &s), 0);
	shmbus_sub_opts_t qo = {.name = "quiet",
				.flags = SHMBUS_SUB_NO_LATENCY};
	shmbus_sub_t *q;
	cr_assert_eq(shmbus_subscribe(ch, slow, &got, &qo, &q), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	for (uint64_t v = 0; v < 10; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, v), 0);
	/* poll in batches of 2: five batches, of which the first and then
	 * one in 16 are sampled */
	while (shmbus_poll(s, 2) > 0)
		;
	shmbus_sub_info_t in[4];
	cr_assert_eq(shmbus_sub_list(ch, in, 4), 2);
	cr_expect_str_eq(in[0].name, "risk");
	cr_expect_eq(in[0].live, 1);
	cr_expect_eq(in[0].cursor, 10);
	cr_expect_eq(in[0].lag, 0);
	cr_expect_eq(in[0].delivered, 10);
	cr_expect_eq(in[0].failed, 1);
	cr_expect_eq(in[0].dead_lettered, 1);
	cr_expect_eq(in[0].lat_count, 1);
	cr_expect_gt(in[0].lat_p50, 0);
	cr_expect_geq(in[0].lat_max, in[0].lat_p99);
	cr_expect_str_eq(in[1].name, "quiet");
	cr_expect_eq(in[1].lag, 10);
	cr_expect_gt(in[1].lag_ns, 0);
	cr_expect_eq(in[1].lat_count, 0);
	shmbus_producer_info_t pi[4];
	cr_assert_eq(shmbus_producer_list(ch, pi, 4), 1);
	cr_expect_eq(pi[0].published, 10);
	cr_expect_eq(pi[0].waits, 0);
	/* a full ring makes the producer wait once it is a ring ahead */
	for (uint64_t v = 10; v < 16; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, v), 0);
	cr_expect_eq(shmbus_try_publish(p, &got, 8, 0), SHMBUS_EAGAIN);
	cr_assert_eq(shmbus_producer_list(ch, pi, 4), 1);
	cr_expect_eq(pi[0].published, 16);
	shmbus_channel_info_t ci[4];
	cr_assert_eq(shmbus_bus_channels(bus, ci, 4), 1);
	cr_expect_str_eq(ci[0].name, "C");
	cr_expect_eq(ci[0].capacity, 16);

	/* the histogram's buckets invert */
	for (uint64_t ns = 1; ns < (1ull << 33); ns = ns * 3 + 1) {
		uint32_t b = lat_bucket(ns);
		cr_expect_leq(lat_bucket_floor(b), ns);
		if (b + 1 < SHMBUS_LAT_BUCKETS)
			cr_expect_gt(lat_bucket_floor(b + 1), ns);
	}
	/* a dead process's name is not live */
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_t *b;
		shmbus_channel_t *c;
		CHECK_OK(shmbus_open(name, NULL, &b));
		CHECK_OK(shmbus_channel_open(b, "C", NULL, &c));
		shmbus_sub_opts_t o2 = {.name = "gone"};
		shmbus_sub_t *x;
		CHECK_OK(shmbus_subscribe(c, slow, &got, &o2, &x));
		raise(SIGKILL);
	}
	cr_assert_eq(child_status(pid), 128 + SIGKILL);
	cr_assert_eq(shmbus_sub_list(ch, in, 4), 3);
	cr_expect_str_eq(in[2].name, "gone");
	cr_expect_eq(in[2].live, 0);
	shmbus_close(bus);
}

Test(spy, reads_without_gating_and_counts_what_it_missed)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(test_bus("sp"), &bus, "C", 8, 16,
					    0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	shmbus_spy_t *sp;
	cr_assert_eq(shmbus_spy_open(ch, 1, &sp), 0);
	uint64_t buf[2], missed = 0;
	shmbus_record_t r;
	cr_expect_eq(shmbus_spy_next(sp, &r, buf, 8, &missed), SHMBUS_EAGAIN);
	/* no subscriber: the producer laps the spy freely */
	for (uint64_t v = 0; v < 40; v++)
		cr_assert_eq(shmbus_try_publish(p, &v, 8, v), 0);
	cr_expect_eq(shmbus_spy_next(sp, &r, buf, 8, &missed),
		     SHMBUS_ELAPPED);
	cr_expect_eq(missed, 24);
	for (uint64_t v = 24; v < 40; v++) {
		cr_assert_eq(shmbus_spy_next(sp, &r, buf, 8, &missed), 0);
		cr_expect_eq(r.seq, v);
		cr_expect_eq(buf[0], v);
	}
	cr_expect_eq(shmbus_spy_next(sp, &r, buf, 8, &missed), SHMBUS_EAGAIN);
	cr_expect_eq(shmbus_spy_next(sp, &r, buf, 4, &missed), SHMBUS_EINVAL);
	shmbus_spy_close(sp);
	/* a spy that never reads does not hold a back-pressure ring */
	uint64_t got = 0;
	shmbus_sub_opts_t so = {.name = "real"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, slow, &got, &so, &s), 0);
	cr_assert_eq(shmbus_spy_open(ch, 0, &sp), 0);
	for (uint64_t v = 0; v < 16; v++)
		cr_assert_eq(shmbus_try_publish(p, &v, 8, v), 0);
	cr_expect_eq(shmbus_try_publish(p, &got, 8, 0), SHMBUS_EAGAIN);
	cr_expect_eq(shmbus_poll(s, 64), 16);
	cr_expect_eq(shmbus_try_publish(p, &got, 8, 0), 0);
	shmbus_spy_close(sp);
	shmbus_close(bus);
}

/* A spy racing a producer that laps it never returns a torn record
 * (single-producer: the claim tells; multi-producer: the marker does). */
static void torn_check(uint32_t flags)
{
	const char *name = test_bus(flags ? "spm" : "spt");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "C", 256, 8, flags);
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_t *b;
		shmbus_channel_t *c;
		shmbus_producer_t *p;
		CHECK_OK(shmbus_open(name, NULL, &b));
		CHECK_OK(shmbus_channel_open(b, "C", NULL, &c));
		CHECK_OK(shmbus_producer_open(c, NULL, &p));
		uint64_t rec[32];
		for (uint64_t v = 0;; v++) {
			for (int i = 0; i < 32; i++)
				rec[i] = v;
			CHECK_OK(shmbus_publish(p, rec, sizeof(rec), v));
		}
	}
	shmbus_spy_t *sp;
	cr_assert_eq(shmbus_spy_open(ch, 1, &sp), 0);
	uint64_t buf[32], missed = 0, good = 0, last = 0;
	shmbus_record_t r;
	uint64_t end = shmbus_now_ns() + 1000000000ull;
	while (good < scaled(200000) && shmbus_now_ns() < end) {
		int rc = shmbus_spy_next(sp, &r, buf, sizeof(buf), &missed);
		if (rc != 0)
			continue;
		for (int i = 1; i < 32; i++)
			cr_assert_eq(buf[i], buf[0], "torn at seq %llu",
				     (unsigned long long)r.seq);
		cr_assert_eq(buf[0], r.seq);
		cr_assert(good == 0 || r.seq > last);
		last = r.seq;
		good++;
	}
	kill(pid, SIGKILL);
	child_status(pid);
	cr_expect_gt(good, 0);
	cr_log_info("spy: %llu intact, %llu missed",
		    (unsigned long long)good, (unsigned long long)missed);
	shmbus_spy_close(sp);
	shmbus_close(bus);
}

Test(spy, never_returns_a_torn_record)
{
	torn_check(0);
	torn_check(SHMBUS_CH_MULTI_PRODUCER);
}

Test(introspect, a_groups_counters_add_up_its_members)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(test_bus("ig"), &bus, "C", 8, 64,
					    0);
	uint64_t got = 0;
	shmbus_sub_opts_t so = {.name = "workers",
				.retry = {.max_attempts = 1}};
	shmbus_sub_t *m1, *m2;
	cr_assert_eq(shmbus_group_join(ch, slow, &got, &so, &m1), 0);
	cr_assert_eq(shmbus_group_join(ch, slow, &got, &so, &m2), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	for (uint64_t v = 0; v < 40; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, v), 0);
	while (shmbus_poll(m1, 7) + shmbus_poll(m2, 5) > 0)
		;
	cr_expect_eq(got, 40);
	shmbus_sub_info_t in;
	cr_assert_eq(shmbus_sub_list(ch, &in, 1), 1);
	cr_expect_eq(in.group, 1);
	cr_expect_eq(in.live, 2);
	cr_expect_eq(in.delivered, 40);
	cr_expect_eq(in.failed, 1);
	cr_expect_eq(in.dead_lettered, 1);
	shmbus_close(bus);
}

/* A spy 65,536 laps behind sees a marker whose 16 lap bits match its own
 * lap: the claim must tell it that it was lapped (found by CI, where the
 * spy of the test above was descheduled that long). */
Test(spy, is_not_fooled_by_the_marker_lap_wrapping)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(test_bus("spw"), &bus, "C", 8, 2,
					    SHMBUS_CH_MULTI_PRODUCER);
	shmbus_spy_t *sp;
	cr_assert_eq(shmbus_spy_open(ch, 0, &sp), 0);
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	for (uint64_t v = 0; v <= 2ull * 65536; v++)
		cr_assert_eq(shmbus_publish(p, &v, 8, v), 0);
	uint64_t buf = 0, missed = 0;
	shmbus_record_t r;
	cr_expect_eq(shmbus_spy_next(sp, &r, &buf, 8, &missed),
		     SHMBUS_ELAPPED);
	cr_expect_eq(missed, 2ull * 65536 - 1);
	cr_assert_eq(shmbus_spy_next(sp, &r, &buf, 8, &missed), 0);
	cr_expect_eq(buf, r.seq);
	shmbus_spy_close(sp);
	shmbus_close(bus);
}

/* The cumulative histogram and the sum, from a forged row histogram: one
 * sample just under 16 ns, two at 100 ns (bucket [96, 112)), one at 1 ms
 * (bucket [917504, 1048576)) and one in the last bucket. */
Test(introspect, latency_histogram_is_cumulative_with_a_sum)
{
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(test_bus("lh"), &bus, "C", 8, 16,
					    0);
	shmbus_sub_opts_t so = {.name = "h"};
	shmbus_sub_t *s;
	uint64_t got = 0;
	cr_assert_eq(shmbus_subscribe(ch, slow, &got, &so, &s), 0);
	uint32_t last = SHMBUS_LAT_BUCKETS - 1;
	atomic_store(&ch->stats[0].lat[lat_bucket(15)], 1);
	atomic_store(&ch->stats[0].lat[lat_bucket(100)], 2);
	atomic_store(&ch->stats[0].lat[lat_bucket(1000000)], 1);
	atomic_store(&ch->stats[0].lat[last], 1);
	shmbus_sub_info_t in;
	cr_assert_eq(shmbus_sub_list(ch, &in, 1), 1);
	cr_expect_eq(in.lat_count, 5);
	uint64_t want[SHMBUS_LAT_LE_N];
	for (uint32_t i = 0; i < SHMBUS_LAT_LE_N; i++) {
		uint64_t le = SHMBUS_LAT_LE_NS(i);
		want[i] = (15 < le) + 2 * (100 < le) + (1000000 < le);
		cr_expect_eq(in.lat_le[i], want[i], "below %llu ns: %llu, not %llu",
			     (unsigned long long)le,
			     (unsigned long long)in.lat_le[i],
			     (unsigned long long)want[i]);
	}
	cr_expect_eq(in.lat_le[SHMBUS_LAT_LE_N - 1], 4,
		     "the last bucket is above every bound");
	uint64_t sum = 14 + 2 * 104 + (917504 + 1048576) / 2 +
		       lat_bucket_floor(last);
	cr_expect_eq(in.lat_sum_ns, sum, "sum %llu, not %llu",
		     (unsigned long long)in.lat_sum_ns,
		     (unsigned long long)sum);
	shmbus_sub_close(s, 0);
	shmbus_close(bus);
}
