/*
 * shmbus stat --prometheus: the text exposition format (version 0.0.4).
 * Each metric family once, # HELP and # TYPE first, then all its samples;
 * labels bus, channel, producer, subscriber; the latency as a histogram
 * (_bucket with le, _sum, _count), so that rate() and histogram_quantile()
 * work across subscribers and processes.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <string.h>

#include "stat.h"

/* A label value: \ " and newline escaped as the format asks; names come
 * from shared memory, so anything else unprintable becomes '?'. */
static void label_value(FILE *out, const char *v)
{
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c == '\\' || c == '"')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else
			fputc(c >= 0x20 && c < 0x7f ? c : '?', out);
	}
}

struct labels {
	const char *bus, *channel, *who_key, *who;
};

/* name{bus="..",channel="..",WHO=".." -- the caller closes the braces */
static void series(FILE *out, const char *name, const struct labels *l)
{
	fprintf(out, "%s{bus=\"", name);
	label_value(out, l->bus);
	if (l->channel) {
		fputs("\",channel=\"", out);
		label_value(out, l->channel);
	}
	if (l->who_key) {
		fprintf(out, "\",%s=\"", l->who_key);
		label_value(out, l->who);
	}
	fputc('"', out);
}

static void sample(FILE *out, const struct stat_field *f,
		   const struct labels *l, const void *entity)
{
	uint64_t v;
	if (!stat_value(f, entity, &v))
		return;
	series(out, f->prom, l);
	if (f->kind == K_NS || f->kind == K_OPT_NS)
		fprintf(out, "} %.9g\n", (double)v / 1e9);
	else
		fprintf(out, "} %" PRIu64 "\n", v);
}

static void histogram(FILE *out, const struct labels *l,
		      const shmbus_sub_info_t *u)
{
	static const char name[] = "shmbus_subscriber_latency_seconds";
	char metric[64];
	snprintf(metric, sizeof(metric), "%s_bucket", name);
	for (uint32_t i = 0; i < SHMBUS_LAT_LE_N; i++) {
		series(out, metric, l);
		fprintf(out, ",le=\"%.10g\"} %" PRIu64 "\n",
			(double)SHMBUS_LAT_LE_NS(i) / 1e9, u->lat_le[i]);
	}
	series(out, metric, l);
	fprintf(out, ",le=\"+Inf\"} %" PRIu64 "\n", u->lat_count);
	snprintf(metric, sizeof(metric), "%s_sum", name);
	series(out, metric, l);
	fprintf(out, "} %.9g\n", (double)u->lat_sum_ns / 1e9);
	snprintf(metric, sizeof(metric), "%s_count", name);
	series(out, metric, l);
	fprintf(out, "} %" PRIu64 "\n", u->lat_count);
}

static void channel_samples(FILE *out, const struct stat_field *f,
			    const struct snapshot *s,
			    const struct snap_channel *c)
{
	struct labels l = {s->bus, c->info.name, NULL, NULL};
	char id[16];
	if (f->level == LV_CHANNEL)
		sample(out, f, &l, c);
	for (uint32_t k = 0; f->level == LV_PRODUCER && k < c->n_prod; k++) {
		snprintf(id, sizeof(id), "%u", c->prod[k].participant);
		l.who_key = "producer";
		l.who = id;
		sample(out, f, &l, &c->prod[k]);
	}
	for (uint32_t k = 0; f->level == LV_SUBSCRIBER && k < c->n_sub; k++) {
		l.who_key = "subscriber";
		l.who = c->sub[k].name;
		sample(out, f, &l, &c->sub[k]);
	}
}

static void latency(FILE *out, const struct snapshot *s)
{
	fputs("# HELP shmbus_subscriber_latency_seconds Publish-to-handler "
	      "latency, sampled once a batch, since the name was created "
	      "(_sum estimated from bucket midpoints).\n"
	      "# TYPE shmbus_subscriber_latency_seconds histogram\n",
	      out);
	for (uint32_t c = 0; c < s->n_ch; c++) {
		const struct snap_channel *ch = &s->ch[c];
		struct labels l = {s->bus, ch->info.name, "subscriber", NULL};
		for (uint32_t k = 0; ch->error == 0 && k < ch->n_sub; k++) {
			l.who = ch->sub[k].name;
			histogram(out, &l, &ch->sub[k]);
		}
	}
}

void stat_prometheus(FILE *out, const struct snapshot *s)
{
	const char *last = "";
	for (size_t i = 0; i < n_stat_fields; i++) {
		const struct stat_field *f = &stat_fields[i];
		if (f->prom == NULL)
			continue;
		if (strcmp(f->prom, last) != 0)
			fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", f->prom,
				f->help, f->prom, f->type);
		last = f->prom;
		if (f->level == LV_BUS) {
			struct labels l = {s->bus, NULL, NULL, NULL};
			sample(out, f, &l, s);
			continue;
		}
		for (uint32_t c = 0; c < s->n_ch; c++)
			if (s->ch[c].error == 0)
				channel_samples(out, f, s, &s->ch[c]);
	}
	latency(out, s);
}
