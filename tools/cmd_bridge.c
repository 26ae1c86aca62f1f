/*
 * shmbus bridge: carry channels to Kafka or Redis Streams, or back, in the
 * foreground until SIGTERM or SIGINT (libshmbus_bridge does the work).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shmbus/bridge.h>

#include "bridge_json.h"

int cmd_bridge(int argc, char **argv);

static int bridge_usage(FILE *f)
{
	fprintf(f,
		"usage: shmbus bridge DIRECTION BUS CHANNEL[:TARGET]... "
		"[OPTIONS]\n"
		"       shmbus bridge --config FILE [OPTIONS]\n"
		"\n"
		"DIRECTION is to-kafka, from-kafka, to-redis or from-redis. "
		"Each CHANNEL\nmaps to the Kafka topic or Redis stream TARGET "
		"(default: its own name).\nOutbound, the bridge is a durable "
		"subscriber (--name); inbound, it joins\na consumer group of "
		"that name and publishes into the channels.\n"
		"\n"
		"options:\n"
		"  --config FILE      key = value lines (docs/bridges.md); "
		"flags after it win\n"
		"  --name NAME        subscriber / consumer group (default "
		"bridge-DIRECTION)\n"
		"  --brokers LIST     Kafka bootstrap servers (default "
		"127.0.0.1:9092)\n"
		"  --redis HOST:PORT  Redis server (default 127.0.0.1:6379)\n"
		"  --pipeline N       XADDs in flight (default 128)\n"
		"  --maxlen N         XADD MAXLEN ~ N (default 0: never "
		"trim)\n"
		"  --set KEY=VALUE    any key; kafka.PROP passes a librdkafka "
		"property\n"
		"  --stats SECONDS    counters to stderr every SECONDS "
		"(default 10, 0: never)\n"
		"  --value json|raw   remote values: JSON by the channel's "
		"schema (the\n                     default; a channel without "
		"one: its bytes), or\n                     the record's bytes "
		"(raw)\n"
		"  --print-config     show the configuration and exit\n"
		"\n"
		"Runs until SIGTERM or SIGINT; a remote that is down is "
		"retried with back-off\nwhile records wait on the bus (or in "
		"the remote), none lost.\n");
	return f == stderr ? 2 : 0;
}

static shmbus_bridge_t *volatile running; /* read by on_stop */
static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
	shmbus_bridge_stop(running);
}

static int fail(const char *msg)
{
	fprintf(stderr, "shmbus bridge: %s\n", msg);
	return 2;
}

/* --redis HOST:PORT */
static int set_redis(shmbus_bridge_config_t *c, const char *v)
{
	char host[256];
	const char *colon = strrchr(v, ':');
	if (colon == NULL)
		return shmbus_bridge_config_set(c, "redis.host", v);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - v), v);
	int rc = shmbus_bridge_config_set(c, "redis.host", host);
	return rc ? rc : shmbus_bridge_config_set(c, "redis.port", colon + 1);
}

static int set_pair(shmbus_bridge_config_t *c, const char *kv)
{
	char key[128];
	const char *eq = strchr(kv, '=');
	if (eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof(key))
		return fail("--set takes KEY=VALUE"), -1;
	snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
	return shmbus_bridge_config_set(c, key, eq + 1);
}

/* A flag with a value; 1 if argv[*i] was one, -1 on error. */
static int flag(shmbus_bridge_config_t *c, int argc, char **argv, int *i,
		unsigned *stats)
{
	static const char *const keyed[][2] = {
		{"--name", "name"},	  {"--brokers", "kafka.brokers"},
		{"--pipeline", "redis.pipeline"}, {"--maxlen", "redis.maxlen"},
		{"--config", NULL},	  {"--set", NULL},
		{"--redis", NULL},	  {"--stats", NULL}};
	const char *a = argv[*i];
	for (size_t k = 0; k < sizeof(keyed) / sizeof(keyed[0]); k++) {
		if (strcmp(a, keyed[k][0]) != 0)
			continue;
		if (*i + 1 >= argc) {
			fprintf(stderr, "shmbus bridge: %s needs a value\n", a);
			return -1;
		}
		const char *v = argv[++*i];
		int rc;
		if (keyed[k][1])
			rc = shmbus_bridge_config_set(c, keyed[k][1], v);
		else if (!strcmp(a, "--config"))
			rc = shmbus_bridge_config_load(c, v);
		else if (!strcmp(a, "--set"))
			rc = set_pair(c, v);
		else if (!strcmp(a, "--redis"))
			rc = set_redis(c, v);
		else {
			char *end;
			*stats = (unsigned)strtoul(v, &end, 10);
			rc = *end ? -1 : 0;
			if (rc)
				fprintf(stderr, "shmbus bridge: --stats takes "
						"whole seconds\n");
			return rc ? -1 : 1;
		}
		if (rc)
			fprintf(stderr, "shmbus bridge: %s\n",
				shmbus_bridge_errmsg());
		return rc ? -1 : 1;
	}
	return 0;
}

/* Positional: DIRECTION BUS CHANNEL...; n counts them. */
static int positional(shmbus_bridge_config_t *c, const char *a, int n)
{
	const char *key = n == 0 ? "direction" : n == 1 ? "bus" : "channel";
	if (shmbus_bridge_config_set(c, key, a) == 0)
		return 0;
	fprintf(stderr, "shmbus bridge: %s\n", shmbus_bridge_errmsg());
	return -1;
}

static int parse(shmbus_bridge_config_t *c, int argc, char **argv,
		 unsigned *stats, int *print, int *json)
{
	int npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			exit(bridge_usage(stdout));
		if (!strcmp(a, "--print-config")) {
			*print = 1;
			continue;
		}
		if (!strcmp(a, "--value") && i + 1 < argc) {
			const char *v = argv[++i];
			*json = !strcmp(v, "json");
			if (*json || !strcmp(v, "raw"))
				continue;
			fprintf(stderr, "shmbus bridge: --value is raw or "
					"json, not '%s'\n",
				v);
			return -1;
		}
		int f = flag(c, argc, argv, &i, stats);
		if (f < 0)
			return -1;
		if (f > 0)
			continue;
		if (a[0] == '-') {
			fprintf(stderr, "shmbus bridge: unknown option '%s' "
					"(see --help)\n",
				a);
			return -1;
		}
		if (positional(c, a, npos++))
			return -1;
	}
	return 0;
}

static void print_config(const shmbus_bridge_config_t *c)
{
	static const char *const keys[] = {
		"bus", "direction", "channel", "name", "window", "batch",
		"backoff_min_ms", "backoff_max_ms", "kafka.brokers",
		"kafka.group", "kafka.null_values", "kafka.partitioner",
		"redis.host", "redis.port", "redis.pipeline",
		"redis.maxlen", "redis.group", "redis.consumer",
		"redis.claim_idle_ms", "redis.timeout_ms", NULL};
	for (const char *const *k = keys; *k; k++)
		printf("%s = %s\n", *k, shmbus_bridge_config_get(c, *k));
	/* the librdkafka properties passed through, as set */
	const char *k, *v;
	for (uint32_t i = 0; (k = shmbus_bridge_config_prop(c, i, &v)); i++)
		if (strcmp(k, "kafka.partitioner"))
			printf("%s = %s\n", k, v);
}

static void print_stats(shmbus_bridge_t *b)
{
	shmbus_bridge_stats_t st;
	shmbus_bridge_get_stats(b, &st);
	fprintf(stderr,
		"shmbus bridge: read %llu sent %llu acked %llu in-flight %llu "
		"lag %llu | resent %llu rejected %llu skipped %llu lost %llu | "
		"errors %llu reconnects %llu bus-waits %llu%s%s\n",
		(unsigned long long)st.read, (unsigned long long)st.sent,
		(unsigned long long)st.acked, (unsigned long long)st.in_flight,
		(unsigned long long)st.lag, (unsigned long long)st.resent,
		(unsigned long long)st.rejected, (unsigned long long)st.skipped,
		(unsigned long long)st.lost,
		(unsigned long long)st.remote_errors,
		(unsigned long long)st.reconnects,
		(unsigned long long)st.bus_waits,
		st.backing_off ? " | backing off: " : "",
		st.backing_off ? st.last_error : "");
}

/* Steps until a signal; counters every stats_s seconds. */
static int run(shmbus_bridge_t *b, unsigned stats_s)
{
	uint64_t period = stats_s * 1000000000ull;
	uint64_t next = shmbus_now_ns() + period;
	int rc = 0;
	while (!stop_requested && rc >= 0) {
		rc = shmbus_bridge_step(b, 100);
		if (stats_s && shmbus_now_ns() >= next) {
			print_stats(b);
			next = shmbus_now_ns() + period;
		}
	}
	return rc < 0 ? rc : 0;
}

int cmd_bridge(int argc, char **argv)
{
	shmbus_bridge_config_t *c;
	unsigned stats_s = 10;
	int print = 0, json = 1; /* --value json by default */
	if (argc < 2)
		return bridge_usage(stderr);
	if (shmbus_bridge_config_new(&c))
		return fail(shmbus_bridge_errmsg());
	if (parse(c, argc, argv, &stats_s, &print, &json)) {
		shmbus_bridge_config_free(c);
		return 2;
	}
	if (print) {
		print_config(c);
		shmbus_bridge_config_free(c);
		return 0;
	}
	static struct bridge_json bj;
	shmbus_bridge_codec_t codec;
	if (json && (bridge_json_init(&bj, shmbus_bridge_config_get(c, "bus"),
				      &codec) ||
		     shmbus_bridge_config_codec(c, &codec))) {
		shmbus_bridge_config_free(c);
		return 1;
	}
	/* before the open, which may take seconds (a Kafka group join): a
	 * stop asked for meanwhile ends the bridge cleanly once it is open,
	 * not by the signal's default action */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	shmbus_bridge_t *b;
	int rc = shmbus_bridge_open(c, &b);
	shmbus_bridge_config_free(c);
	if (rc) {
		fprintf(stderr, "shmbus bridge: %s\n", shmbus_bridge_errmsg());
		if (json)
			bridge_json_fini(&bj);
		return 1;
	}
	running = b;
	rc = run(b, stats_s);
	/* a clean stop sends what is in flight, so that the next start
	 * repeats nothing */
	if (rc == 0 && shmbus_bridge_flush(b, 5000))
		fprintf(stderr, "shmbus bridge: %s (they go again at the next "
				"start)\n",
			shmbus_bridge_errmsg());
	print_stats(b);
	if (rc)
		fprintf(stderr, "shmbus bridge: %s\n", shmbus_bridge_errmsg());
	running = NULL;
	shmbus_bridge_close(b);
	if (json)
		bridge_json_fini(&bj);
	return rc ? 1 : 0;
}
