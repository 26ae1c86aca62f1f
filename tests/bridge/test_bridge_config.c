/*
 * Bridge configuration and the bridge without its remote: keys, files
 * and flags, errors that say what to do, and a bridge whose remote is
 * dead (it retries, counts, and holds its records on the bus).
 */
#include <criterion/criterion.h>
#include <shmbus/bridge.h>
#include <string.h>

#include "bridge_helpers.h"

/* the buses the tests make, removed even when a test fails */
static void remove_buses(void)
{
	static const char *const tags[] = {"bc1", "bc2", "bc3"};
	for (int i = 0; i < 3; i++)
		shmbus_unlink(test_bus(tags[i]));
}

TestSuite(bridge_config, .fini = remove_buses, .timeout = 60);

static shmbus_bridge_config_t *config(void)
{
	shmbus_bridge_config_t *c;
	cr_assert_eq(shmbus_bridge_config_new(&c), 0);
	return c;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(bridge_config, file_keys_defaults_and_channels)
{
	shmbus_bridge_config_t *c = config();
	cr_expect_str_eq(shmbus_bridge_config_get(c, "redis.host"), "127.0.0.1");
	cr_expect_str_eq(shmbus_bridge_config_get(c, "kafka.brokers"),
			 "127.0.0.1:9092");
	char path[] = "/tmp/shmbus-bridge-conf.XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	write_file(path, "# a bridge\n"
			 "bus = trading\n"
			 "direction = to-kafka   # out\n"
			 "\n"
			 "channel = OrderPlaced:orders\n"
			 "channel = Trades\n"
			 "kafka.brokers = 10.0.0.1:9092\n"
			 "kafka.linger.ms = 20\n"
			 "redis.stream.unused = x\n");
	int rc = shmbus_bridge_config_load(c, path);
	/* the last line is wrong: its line number and the keys are named */
	cr_expect_eq(rc, SHMBUS_EINVAL);
	cr_expect(strstr(shmbus_bridge_errmsg(), ":9: unknown key "
						 "'redis.stream.unused'") != NULL,
		  "%s", shmbus_bridge_errmsg());
	cr_expect_str_eq(shmbus_bridge_config_get(c, "bus"), "trading");
	cr_expect_str_eq(shmbus_bridge_config_get(c, "direction"), "to-kafka");
	cr_expect_str_eq(shmbus_bridge_config_get(c, "channel"),
			 "OrderPlaced:orders,Trades:Trades");
	cr_expect_str_eq(shmbus_bridge_config_get(c, "kafka.brokers"),
			 "10.0.0.1:9092");
	cr_expect_str_eq(shmbus_bridge_config_get(c, "kafka.linger.ms"), "20");
	unlink(path);
	cr_expect_eq(shmbus_bridge_config_load(c, path), SHMBUS_ENOENT);
	cr_expect(strstr(shmbus_bridge_errmsg(), "cannot read") != NULL);
	shmbus_bridge_config_free(c);
}

Test(bridge_config, bad_values_say_what_is_expected)
{
	shmbus_bridge_config_t *c = config();
	static const char *const bad[][3] = {
		{"direction", "sideways", "to-kafka, from-kafka"},
		{"bus", "no/slash", "a bus name is"},
		{"channel", "A:", "topic or stream after ':'"},
		{"channel", "bad name", "a channel name is"},
		{"redis.port", "70000", "1..65535"},
		{"redis.pipeline", "-3", "whole number"},
		{"window", "12x", "whole number"},
		{"nonsense", "1", "unknown key 'nonsense'"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(shmbus_bridge_config_set(c, bad[i][0], bad[i][1]),
			     SHMBUS_EINVAL, "%s = %s", bad[i][0], bad[i][1]);
		cr_expect(strstr(shmbus_bridge_errmsg(), bad[i][2]) != NULL,
			  "%s = %s: %s", bad[i][0], bad[i][1],
			  shmbus_bridge_errmsg());
	}
	cr_expect_eq(shmbus_bridge_config_set(c, "channel", "A"), 0);
	cr_expect_eq(shmbus_bridge_config_set(c, "channel", "A:x"),
		     SHMBUS_EINVAL);
	/* open says what is missing */
	shmbus_bridge_t *b;
	cr_expect_eq(shmbus_bridge_open(c, &b), SHMBUS_EINVAL);
	cr_expect(strstr(shmbus_bridge_errmsg(), "which bus?") != NULL);
	shmbus_bridge_config_free(c);
}

/* A config for to-redis on bus name, channel A, at a dead port. */
static shmbus_bridge_config_t *dead_redis(const char *bus, int port)
{
	shmbus_bridge_config_t *c = config();
	char p[16];
	snprintf(p, sizeof(p), "%d", port);
	cr_assert_eq(shmbus_bridge_config_set(c, "bus", bus), 0);
	cr_assert_eq(shmbus_bridge_config_set(c, "direction", "to-redis"), 0);
	cr_assert_eq(shmbus_bridge_config_set(c, "channel", "A:s"), 0);
	cr_assert_eq(shmbus_bridge_config_set(c, "redis.port", p), 0);
	cr_assert_eq(shmbus_bridge_config_set(c, "backoff_min_ms", "10"), 0);
	cr_assert_eq(shmbus_bridge_config_set(c, "backoff_max_ms", "50"), 0);
	return c;
}

static void quiet(void *ctx, int level, const char *msg)
{
	(void)level;
	snprintf(ctx, 256, "%s", msg);
}

Test(bridge_config, missing_channel_and_busy_name)
{
	const char *name = test_bus("bc1");
	shmbus_bridge_config_t *c = dead_redis(name, free_port());
	shmbus_bridge_t *b;
	cr_expect_eq(shmbus_bridge_open(c, &b), SHMBUS_ENOENT);
	cr_expect(strstr(shmbus_bridge_errmsg(), "application created") !=
			  NULL,
		  "%s", shmbus_bridge_errmsg());
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "A", 64, 64, 0);
	shmbus_sub_opts_t so = {.name = "bridge-to-redis"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(ch, consume_nothing, NULL, &so, &s), 0);
	/* the name is held by this process: a second holder is refused, and
	 * told why */
	pid_t pid = test_fork();
	if (pid == 0) {
		shmbus_bridge_t *b2;
		int rc = shmbus_bridge_open(c, &b2);
		_exit(rc == SHMBUS_EBUSY &&
			      strstr(shmbus_bridge_errmsg(), "another bridge")
		      ? 0
		      : 1);
	}
	cr_expect_eq(child_status(pid), 0);
	shmbus_sub_close(s, 0);
	shmbus_bridge_config_free(c);
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(bridge_config, dead_remote_is_retried_and_its_lag_counted)
{
	const char *name = test_bus("bc2");
	shmbus_t *bus;
	shmbus_channel_t *ch = test_channel(name, &bus, "A", 64, 64, 0);
	shmbus_bridge_config_t *c = dead_redis(name, free_port());
	char last[256] = "";
	shmbus_bridge_config_log(c, quiet, last);
	shmbus_bridge_t *b;
	cr_assert_eq(shmbus_bridge_open(c, &b), 0, "%s", shmbus_bridge_errmsg());
	shmbus_producer_t *p;
	cr_assert_eq(shmbus_producer_open(ch, NULL, &p), 0);
	for (uint64_t v = 0; v < 10; v++)
		cr_assert_eq(shmbus_publish(p, &v, sizeof(v), v), 0);
	for (int i = 0; i < 20; i++)
		cr_assert_geq(shmbus_bridge_step(b, 10), 0);
	shmbus_bridge_stats_t st;
	shmbus_bridge_get_stats(b, &st);
	cr_expect_eq(st.connected, 0);
	cr_expect_eq(st.lag, 10);
	cr_expect_eq(st.acked, 0);
	cr_expect_geq(st.remote_errors, 2, "retried");
	cr_expect(strstr(st.last_error, "Connection refused") != NULL, "%s",
		  st.last_error);
	cr_expect(strstr(last, "none is lost") != NULL, "%s", last);
	cr_expect_eq(sub_lag(ch, "bridge-to-redis"), 10);
	/* nothing was read from the bus yet: nothing to wait for */
	cr_expect_eq(shmbus_bridge_flush(b, 50), 0);
	shmbus_bridge_close(b);
	shmbus_bridge_config_free(c);
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(bridge_config, command_line)
{
	static char out[8192];
	const char *print[] = {"to-redis", "trading", "A:orders", "B",
			       "--redis", "10.1.1.1:7000", "--pipeline", "32",
			       "--set", "redis.maxlen=1000", "--print-config",
			       NULL};
	cr_expect_eq(bridge_output(out, sizeof(out), print), 0, "%s", out);
	cr_expect(strstr(out, "channel = A:orders,B:B\n") != NULL, "%s", out);
	cr_expect(strstr(out, "redis.host = 10.1.1.1\n") != NULL, "%s", out);
	cr_expect(strstr(out, "redis.port = 7000\n") != NULL, "%s", out);
	cr_expect(strstr(out, "redis.pipeline = 32\n") != NULL, "%s", out);
	cr_expect(strstr(out, "redis.maxlen = 1000\n") != NULL, "%s", out);
	/* the librdkafka pass-through properties, and the bridge's own
	 * Kafka defaults */
	const char *kprint[] = {"to-kafka", "trading", "A", "--set",
				"kafka.linger.ms=5", "--set",
				"kafka.compression.type=zstd",
				"--print-config", NULL};
	cr_expect_eq(bridge_output(out, sizeof(out), kprint), 0, "%s", out);
	cr_expect(strstr(out, "kafka.linger.ms = 5\n") != NULL, "%s", out);
	cr_expect(strstr(out, "kafka.compression.type = zstd\n") != NULL,
		  "%s", out);
	cr_expect(strstr(out, "kafka.partitioner = murmur2_random\n") != NULL,
		  "%s", out);
	cr_expect(strstr(out, "kafka.null_values = skip\n") != NULL, "%s",
		  out);
	/* a property the guarantee rests on is refused as it is parsed:
	 * a usage error, before any bus is looked at */
	const char *acks[] = {"to-kafka", "nosuchbus.bc", "A", "--set",
			      "kafka.acks=1", "--print-config", NULL};
	cr_expect_eq(bridge_output(out, sizeof(out), acks), 2, "%s", out);
	cr_expect(strstr(out, "kafka.acks is set by the bridge") != NULL,
		  "%s", out);
	const char *nulls[] = {"from-kafka", "trading", "A", "--set",
			       "kafka.null_values=drop", NULL};
	cr_expect_eq(bridge_output(out, sizeof(out), nulls), 2, "%s", out);
	cr_expect(strstr(out, "skip or reject") != NULL, "%s", out);
	/* each bad command line: its exit status and what it says */
	static const struct {
		const char *args[5];
		int status;
		const char *says;
	} bad[] = {
		{{"to-redis", "trading", "A", "--bogus"}, 2,
		 "unknown option '--bogus'"},
		{{"to-redis", "trading", "A", "--maxlen"}, 2,
		 "--maxlen needs a value"},
		{{"upwards", "trading", "A"}, 2, "to-kafka, from-kafka"},
		{{"to-redis", "nosuchbus.bc", "A"}, 1, "application created"},
		{{"--help"}, 0, "usage: shmbus bridge"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(bridge_output(out, sizeof(out), bad[i].args),
			     bad[i].status, "%s: %s", bad[i].args[0], out);
		cr_expect(strstr(out, bad[i].says) != NULL, "%s", out);
	}
	/* a property the guarantee rests on cannot be overridden */
	const char *name = test_bus("bc3");
	shmbus_t *bus;
	test_channel(name, &bus, "A", 64, 64, SHMBUS_CH_MULTI_PRODUCER);
	const char *fixed[] = {"from-kafka", name, "A", "--set",
			       "kafka.enable.auto.commit=true", NULL};
	cr_expect_eq(bridge_output(out, sizeof(out), fixed), 2, "%s", out);
	cr_expect(strstr(out, "kafka.enable.auto.commit is set by the bridge") !=
			  NULL,
		  "%s", out);
	shmbus_close(bus);
	shmbus_unlink(name);
}
