/*
 * `shmbus stat` on a live bus that another process feeds (tool_feeder):
 * the table for 80 columns, JSON by its schema with counters that move,
 * Prometheus text by the format's rules, hostile names escaped in every
 * output, and --watch.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"
#include "support/prom.h"
#include "support/tool_run.h"

TestSuite(tool, .fini = tidy);

/* ----------------------------------------------------------------- stat */

Test(tool, stat_table_fits_80_columns)
{
	struct feeder f;
	feeder_start(&f, "st");
	cr_assert_eq(tool("stat %s", f.bus), 0, "%s", out);
	expect_width(out, 80);
	expect_out("channel Orders (id 0)");
	expect_out("single producer, block");
	expect_out("overwrite (one producer, never waits)");
	expect_out("PRODUCER");
	expect_out("  good ");
	expect_out("  bad ");
	expect_out("group/1");
	expect_out("gone"); /* the idle name of Plain */
	expect_out("DEAD-LTR");
	expect_out("watchdog: ");
	feeder_stop(&f);
}

static json_t *subscriber(json_t *doc, const char *channel, const char *name)
{
	size_t i, k;
	json_t *c, *s;
	json_array_foreach(json_object_get(doc, "channels"), i, c)
	{
		if (strcmp(json_string_value(json_object_get(c, "name")),
			   channel))
			continue;
		json_array_foreach(json_object_get(c, "subscribers"), k, s)
		{
			if (!strcmp(json_string_value(json_object_get(s, "name")),
				    name))
				return s;
		}
	}
	return NULL;
}

Test(tool, stat_json_parses_and_the_counters_move)
{
	struct feeder f;
	feeder_start(&f, "sj");
	json_t *a = stat_json(f.bus);
	cr_expect_str_eq(json_string_value(json_object_get(a, "bus")), f.bus);
	cr_expect_gt(num(a, "watchdog.passes"), 0);
	cr_expect_eq(num(a, "live_participants"), 5);
	json_t *orders = json_array_get(json_object_get(a, "channels"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(orders, "name")),
			 "Orders");
	cr_expect_eq(num(orders, "capacity"), 64);
	cr_expect_eq(num(orders, "schema_fields"), 15);
	json_t *prod = json_array_get(json_object_get(orders, "producers"), 0);
	cr_expect_gt(num(prod, "published"), 0);
	json_t *bad = subscriber(a, "Orders", "bad");
	cr_assert_not_null(bad);
	cr_expect_gt(num(bad, "failed"), 0);
	cr_expect_gt(num(bad, "retried"), 0);
	cr_expect_gt(num(bad, "dead_lettered"), 0);
	cr_expect_eq(num(bad, "live"), 1);
	cr_expect_gt(num(bad, "latency.samples"), 0);
	cr_expect_leq(num(bad, "latency.p50_ns"), num(bad, "latency.p99_ns"));
	cr_expect_leq(num(bad, "latency.p99_ns"),
		      num(bad, "latency.p999_ns"));
	json_t *idle = subscriber(a, "Plain", "idle");
	cr_assert_not_null(idle);
	cr_expect_eq(num(idle, "live"), 0);
	/* the table's word for a name no process holds, not "active" */
	cr_expect_str_eq(json_string_value(json_object_get(idle, "state")),
			 "gone");
	cr_expect_str_eq(json_string_value(json_object_get(bad, "state")),
			 "live");
	/* no sample: null figures, not 0 ns */
	json_t *lat = json_object_get(idle, "latency");
	cr_expect_eq(num(idle, "latency.samples"), 0);
	cr_expect(json_is_null(json_object_get(lat, "p50_ns")));
	cr_expect(json_is_null(json_object_get(lat, "max_ns")));
	/* Unix time beside the bus's clock */
	json_int_t unix_ns = num(a, "time_unix_ns");
	cr_expect_lt(llabs(unix_ns / 1000000000 - (json_int_t)time(NULL)), 60,
		     "time_unix_ns %lld", (long long)unix_ns);
	/* ls and stat: one key, one meaning (ls counts what stat lists) */
	cr_expect(json_is_array(json_object_get(orders, "producers")));
	cr_expect_str_eq(json_string_value(json_object_get(orders,
							   "producers_mode")),
			 "single");
	cr_expect_gt(num(orders, "dlq.count"), 0);
	json_int_t pub0 = num(orders, "published");
	json_int_t good0 = num(subscriber(a, "Orders", "good"), "delivered");
	usleep(200000);
	/* what docs/operating.md shows, through jq */
	cr_expect_eq(tool("stat %s --json | jq -e '[.channels[] | select(.name "
			  "== \"Orders\") | .subscribers[].name] == "
			  "[\"good\", \"bad\", \"workers\"]'",
			  f.bus),
		     0, "%s", out);
	json_t *b = stat_json(f.bus);
	json_t *orders2 = json_array_get(json_object_get(b, "channels"), 0);
	cr_expect_gt(num(orders2, "published"), pub0);
	cr_expect_gt(num(subscriber(b, "Orders", "good"), "delivered"), good0);
	json_decref(a);
	json_decref(b);
	feeder_stop(&f);
}

Test(tool, stat_prometheus_follows_the_exposition_format)
{
	struct feeder f;
	feeder_start(&f, "sp");
	cr_assert_eq(tool("stat %s --prometheus", f.bus), 0);
	char why[1200] = "";
	cr_expect(prom_ok(out, why), "%s", why);
	char want[256];
	snprintf(want, sizeof(want),
		 "shmbus_subscriber_failed_total{bus=\"%s\",channel=\"Orders\","
		 "subscriber=\"bad\"} ",
		 f.bus);
	expect_out(want);
	expect_out("# TYPE shmbus_channel_published_total counter");
	/* latency: a histogram, as promtool wants (tool_prometheus.sh runs
	 * promtool itself), not gauges with a quantile label */
	expect_out("# TYPE shmbus_subscriber_latency_seconds histogram");
	expect_out("le=\"+Inf\"");
	expect_out("shmbus_subscriber_latency_seconds_sum{");
	cr_expect(strstr(out, "quantile=") == NULL, "a quantile label");
	const char *v = strstr(out, want);
	cr_expect(v && strtod(v + strlen(want), NULL) > 0);
	/* the checker itself catches what it must */
	cr_expect(!prom_ok("x_total 1\n", why));
	cr_expect(!prom_ok("# TYPE x counter\nx 1\n", why));
	cr_expect(!prom_ok("# TYPE x_total counter\nx_total{a=\"\\q\"} 1\n",
			   why));
	cr_expect(!prom_ok("# TYPE 1x gauge\n1x 1\n", why));
	cr_expect(!prom_ok("# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"1\"} 2\n",
			   why));
	feeder_stop(&f);
}

/* Names come from shared memory: a hostile one is escaped or replaced. */
Test(tool, hostile_names_are_escaped_in_every_output)
{
	struct own o;
	own_bus(&o, "hn", 16, "plain", false);
	const char *name = o.name;
	static const char evil[] = "ev\"il\\\n\033[2J";
	memcpy(o.ch->subs[0].name, evil, sizeof(evil));
	cr_assert_eq(tool("stat %s", name), 0);
	cr_expect(strchr(out, '\033') == NULL, "an escape reached the table");
	expect_out("ev\"il\\??[2J");
	cr_assert_eq(tool("stat %s --prometheus", name), 0);
	char why[1200] = "";
	cr_expect(prom_ok(out, why), "%s", why);
	expect_out("subscriber=\"ev\\\"il\\\\\\n?[2J\"");
	json_t *doc = stat_json(name);
	cr_expect_not_null(subscriber(doc, "C", evil));
	json_decref(doc);
	own_close(&o);
}

Test(tool, stat_watch_repeats_until_interrupted)
{
	struct feeder f;
	feeder_start(&f, "sw");
	cr_assert_eq(tool("stat %s --watch 0.2 --json & sleep 1.1; kill -INT $!; wait $!",
			  f.bus),
		     0);
	int lines = 0;
	json_int_t last = 0;
	for (char *p = out, *nl; (nl = strchr(p, '\n')); p = nl + 1, lines++) {
		*nl = '\0';
		json_error_t e;
		json_t *doc = json_loads(p, 0, &e);
		cr_assert_not_null(doc, "line %d: %s", lines, e.text);
		cr_expect_gt(num(doc, "time_ns"), last);
		last = num(doc, "time_ns");
		json_decref(doc);
	}
	cr_expect_geq(lines, 2);
	cr_assert_eq(tool("stat %s --watch=0.2 & sleep 0.7; kill -TERM $!; wait $!",
			  f.bus),
		     0);
	int frames = 0;
	char head[64];
	snprintf(head, sizeof(head), "bus %s (epoch", f.bus);
	for (char *p = out; (p = strstr(p, head)); p++)
		frames++;
	cr_expect_geq(frames, 2);
	feeder_stop(&f);
}
