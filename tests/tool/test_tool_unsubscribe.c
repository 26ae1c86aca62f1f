/*
 * `shmbus unsubscribe`: the abandoned durable name that stat says gates a
 * full ring is removed; a live holder's name is refused, and --force
 * evicts it where the stall policy allows that.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "support/tool_run.h"

TestSuite(tool, .fini = tidy);

/* The gated_by of channel ch in `stat BUS --json` (NULL: none). */
static json_t *gated_by(const char *bus, const char *ch)
{
	cr_assert_eq(tool("stat %s --json", bus), 0);
	json_error_t e;
	json_t *doc = json_loads(out, 0, &e);
	cr_assert_not_null(doc, "%s", e.text);
	json_t *chans = json_object_get(doc, "channels"), *c, *g = NULL;
	size_t i;
	json_array_foreach(chans, i, c)
		if (!strcmp(json_string_value(json_object_get(c, "name")), ch))
			g = json_incref(json_object_get(c, "gated_by"));
	json_decref(doc);
	cr_assert_not_null(g, "channel %s has no gated_by", ch);
	return g;
}

/* out says s, its lines wrapped or not (a line break and the indent of
 * the next line read as one space) */
static void expect_said(const char *s)
{
	static char flat[sizeof(out)];
	size_t n = 0;
	for (const char *p = out; *p; p++) {
		if (*p != '\n') {
			flat[n++] = *p;
			continue;
		}
		flat[n++] = ' ';
		while (p[1] == ' ')
			p++;
	}
	flat[n] = '\0';
	cr_expect(strstr(flat, s) != NULL, "no '%s' in:\n%s", s, out);
}

/* Fill ring ch (16 slots) through p; the last try must be refused. */
static void fill(shmbus_producer_t *p)
{
	uint64_t v = 0;
	while (shmbus_try_publish(p, &v, 8, 0) == 0)
		v++;
	cr_assert_eq(v, 16, "the ring took %llu records", (unsigned long long)v);
}

/* Issue 13: an abandoned durable name blocked every producer for ever and
 * nothing in the tool could remove it. stat names the one a full ring
 * waits for, and unsubscribe removes it; a live holder's name is refused,
 * and --force evicts it where the stall policy allows that. */
Test(tool, unsubscribe_removes_the_name_that_stat_says_gates_the_ring)
{
	struct own o;
	own_bus(&o, "unsub", 16, NULL, true);
	shmbus_sub_opts_t so = {.name = "ghost"};
	shmbus_sub_t *s;
	cr_assert_eq(shmbus_subscribe(o.ch, consume, NULL, &so, &s), 0);
	shmbus_sub_close(s, 0); /* abandoned: no process holds it */
	fill(o.p);
	cr_expect_eq(tool("stat %s", o.name), 0);
	expect_said("full: producers wait for subscriber 'ghost' (cursor 0)");
	expect_said("no live process holds");
	char want[160];
	snprintf(want, sizeof(want), "`shmbus unsubscribe %s C ghost`", o.name);
	expect_said(want);
	expect_width(out, 80);
	json_t *g = gated_by(o.name, "C");
	cr_expect_str_eq(json_string_value(g), "ghost");
	json_decref(g);

	cr_expect_eq(tool("unsubscribe %s C nobody 2>&1", o.name), 1);
	expect_out("no subscriber 'nobody'");
	cr_expect_eq(tool("unsubscribe %s C ghost", o.name), 0, "%s", out);
	expect_out("removed 'ghost' from channel 'C'");
	uint64_t v = 16;
	cr_expect_eq(shmbus_try_publish(o.p, &v, 8, 0), 0, "still gated");
	g = gated_by(o.name, "C");
	cr_expect(json_is_null(g));
	json_decref(g);

	/* a name this (live) process holds: refused, --force too (block) */
	so.name = "alive";
	cr_assert_eq(shmbus_subscribe(o.ch, consume, NULL, &so, &s), 0);
	fill(o.p);
	cr_expect_eq(tool("stat %s", o.name), 0);
	expect_said("full: producers wait for subscriber 'alive' (cursor 17)");
	expect_said("held by a live process");
	cr_expect_eq(tool("unsubscribe %s C alive 2>&1", o.name), 1);
	snprintf(want, sizeof(want), "held by a live process (pid %d",
		 (int)getpid());
	expect_out(want);
	expect_out("--force evicts it");
	cr_expect_eq(tool("unsubscribe %s C alive --force 2>&1", o.name), 1);
	expect_out("block policy");
	cr_expect_eq(shmbus_try_publish(o.p, &v, 8, 0), SHMBUS_EAGAIN);

	/* an evict-policy channel: --force evicts the live holder now */
	shmbus_channel_opts_t eo = {.record_size = 8, .capacity = 16,
				    .stall_policy = SHMBUS_STALL_EVICT};
	shmbus_channel_t *ech;
	cr_assert_eq(shmbus_channel_open(o.bus, "E", &eo, &ech), 0);
	shmbus_sub_t *es;
	so.name = "stuck";
	cr_assert_eq(shmbus_subscribe(ech, consume, NULL, &so, &es), 0);
	shmbus_producer_t *ep;
	cr_assert_eq(shmbus_producer_open(ech, NULL, &ep), 0);
	fill(ep);
	cr_expect_eq(tool("unsubscribe %s E stuck 2>&1", o.name), 1);
	cr_expect_eq(tool("unsubscribe %s E stuck --force", o.name), 0, "%s",
		     out);
	expect_out("evicted 'stuck' from channel 'E'");
	cr_expect_eq(shmbus_try_publish(ep, &v, 8, 0), 0, "still gated");
	cr_expect_eq(shmbus_poll(es, 100), SHMBUS_ELAPPED);
	own_close(&o);
}
