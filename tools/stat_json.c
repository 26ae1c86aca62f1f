/*
 * shmbus stat --json: one document per snapshot, built with jansson so
 * that names from shared memory are escaped correctly whatever they hold.
 * Durations are in nanoseconds (keys end in _ns).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "fmt.h"
#include "stat.h"

/* jansson's integers are signed 64-bit: a counter beyond stays a number */
static json_t *ju64(uint64_t v)
{
	return v <= INT64_MAX ? json_integer((json_int_t)v)
			      : json_real((double)v);
}

/* Text from shared memory: damaged bytes (not UTF-8) become '?'. */
static json_t *jname(const char *name)
{
	char safe[256];
	json_t *j = json_string(name);
	return j ? j : json_string(fmt_name(safe, name, sizeof(safe) - 1));
}

static json_t *hex64(uint64_t v)
{
	char buf[20];
	snprintf(buf, sizeof(buf), "%016" PRIx64, v);
	return json_string(buf);
}

/* The table's numbers of one level into obj (or its group objects). */
static void fields(json_t *obj, enum stat_level level, const void *entity)
{
	for (size_t i = 0; i < n_stat_fields; i++) {
		const struct stat_field *f = &stat_fields[i];
		uint64_t v;
		if (f->level != level)
			continue;
		json_t *dst = obj;
		if (f->group) {
			dst = json_object_get(obj, f->group);
			if (dst == NULL) {
				dst = json_object();
				json_object_set_new(obj, f->group, dst);
			}
		}
		json_object_set_new(dst, f->json,
				    stat_value(f, entity, &v) ? ju64(v)
							      : json_null());
	}
}

static json_t *producer(const shmbus_producer_info_t *p)
{
	json_t *o = json_pack("{s:I, s:i}", "participant",
			      (json_int_t)p->participant, "pid", (int)p->pid);
	fields(o, LV_PRODUCER, p);
	return o;
}

static json_t *subscriber(const shmbus_sub_info_t *u)
{
	json_t *o = json_pack("{s:o, s:I, s:s, s:b}", "name", jname(u->name),
			      "row", (json_int_t)u->row, "state",
			      snap_state(u), "group", (int)u->group);
	fields(o, LV_SUBSCRIBER, u);
	return o;
}

static json_t *channel(const struct snap_channel *c)
{
	const shmbus_channel_info_t *in = &c->info;
	json_t *o = json_pack("{s:o, s:I}", "name", jname(in->name), "id",
			      (json_int_t)in->id);
	if (c->error) {
		json_object_set_new(o, "error", jname(c->errmsg));
		return o;
	}
	bool ow = in->flags & SHMBUS_CH_OVERWRITE;
	json_object_set_new(o, "producers_mode",
			    json_string(snap_producers(in)));
	json_object_set_new(o, "overwrite", json_boolean(ow));
	json_object_set_new(o, "stall_policy",
			    ow ? json_null() : json_string(snap_policy(in)));
	json_object_set_new(o, "slot_size", ju64(in->slot_size));
	json_object_set_new(o, "max_subscribers", ju64(in->max_subscribers));
	json_object_set_new(o, "layout_hash", hex64(in->layout_hash));
	json_object_set_new(o, "schema_fields", ju64(in->schema_fields));
	fields(o, LV_CHANNEL, c);
	/* a full ring: the name producers wait for */
	const shmbus_sub_info_t *g = snap_gating(c);
	json_object_set_new(o, "gated_by", g ? jname(g->name) : json_null());
	json_t *prods = json_array(), *subs = json_array();
	for (uint32_t i = 0; i < c->n_prod; i++)
		json_array_append_new(prods, producer(&c->prod[i]));
	for (uint32_t i = 0; i < c->n_sub; i++)
		json_array_append_new(subs, subscriber(&c->sub[i]));
	json_object_set_new(o, "producers", prods);
	json_object_set_new(o, "subscribers", subs);
	return o;
}

int stat_json(FILE *out, const struct snapshot *s, int compact)
{
	/* time_ns: the bus's clock (the records' timestamps); time_unix_ns:
	 * the wall clock, for a person and for joining other data */
	json_t *doc = json_pack("{s:s, s:o, s:o, s:o}", "bus", s->bus, "epoch",
				hex64(s->epoch), "time_ns", ju64(s->now_ns),
				"time_unix_ns", ju64(s->unix_ns));
	if (doc == NULL)
		return cli_fail("stat", "out of memory");
	fields(doc, LV_BUS, s);
	json_t *chans = json_array();
	for (uint32_t i = 0; i < s->n_ch; i++)
		json_array_append_new(chans, channel(&s->ch[i]));
	json_object_set_new(doc, "channels", chans);
	size_t flags = JSON_PRESERVE_ORDER |
		       (compact ? JSON_COMPACT : JSON_INDENT(2));
	int rc = json_dumpf(doc, out, flags);
	fputc('\n', out);
	json_decref(doc);
	return rc ? cli_fail("stat", "JSON output failed") : 0;
}
