/*
 * shmbus stat --prometheus: the text exposition format (version 0.0.4).
 * Each metric family once, # HELP and # TYPE first, then all its samples;
 * labels bus, channel, producer, subscriber, quantile.
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

static void sample(FILE *out, const struct stat_field *f,
		   const struct labels *l, const void *entity)
{
	uint64_t v;
	if (!stat_value(f, entity, &v))
		return;
	fprintf(out, "%s{bus=\"", f->prom);
	label_value(out, l->bus);
	if (l->channel) {
		fputs("\",channel=\"", out);
		label_value(out, l->channel);
	}
	if (l->who_key) {
		fprintf(out, "\",%s=\"", l->who_key);
		label_value(out, l->who);
	}
	if (f->quantile)
		fprintf(out, "\",quantile=\"%s", f->quantile);
	if (f->kind == K_NS || f->kind == K_OPT_NS)
		fprintf(out, "\"} %.9g\n", (double)v / 1e9);
	else
		fprintf(out, "\"} %" PRIu64 "\n", v);
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

void stat_prometheus(FILE *out, const struct snapshot *s)
{
	for (size_t i = 0; i < n_stat_fields; i++) {
		const struct stat_field *f = &stat_fields[i];
		if (i == 0 || strcmp(f->prom, stat_fields[i - 1].prom) != 0)
			fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", f->prom,
				f->help, f->prom, f->type);
		if (f->level == LV_BUS) {
			struct labels l = {s->bus, NULL, NULL, NULL};
			sample(out, f, &l, s);
			continue;
		}
		for (uint32_t c = 0; c < s->n_ch; c++)
			if (s->ch[c].error == 0)
				channel_samples(out, f, s, &s->ch[c]);
	}
}
