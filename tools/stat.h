/* shmbus stat's three outputs of one snapshot, and the fields they share. */
#ifndef SHMBUS_TOOLS_STAT_H
#define SHMBUS_TOOLS_STAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "snapshot.h"

enum stat_level { LV_BUS, LV_CHANNEL, LV_PRODUCER, LV_SUBSCRIBER };
enum stat_kind {
	K_U64,
	K_U32,
	K_I32,
	K_NS,	  /* nanoseconds: seconds in Prometheus */
	K_OPT_NS, /* the same, absent when 0 */
	K_LAT_NS, /* a subscriber's latency figure: absent without samples */
};

/*
 * One number that --json and --prometheus both show. Its entity is the
 * struct snapshot (bus), struct snap_channel, shmbus_producer_info_t or
 * shmbus_sub_info_t; the value is at offset.
 */
struct stat_field {
	enum stat_level level;
	const char *group;    /* JSON sub-object, or NULL */
	const char *json;     /* JSON key */
	const char *prom;     /* Prometheus metric, or NULL: JSON only */
	const char *type;     /* "counter" or "gauge" */
	const char *help;
	size_t offset;
	enum stat_kind kind;
};

extern const struct stat_field stat_fields[];
extern const size_t n_stat_fields;

/* The field's value in entity; false if absent (K_OPT_NS at 0, K_LAT_NS of
 * a subscriber with no latency sample). */
int stat_value(const struct stat_field *f, const void *entity, uint64_t *v);

void stat_table(FILE *out, const struct snapshot *s);
/* 0, or CLI_ERR if the JSON could not be built */
int stat_json(FILE *out, const struct snapshot *s, int compact);
void stat_prometheus(FILE *out, const struct snapshot *s);
/* Serve stat_prometheus over HTTP on spec (ADDR:PORT, or PORT on
 * 127.0.0.1) until SIGINT or SIGTERM: 0, or a CLI exit code after saying
 * why. */
int stat_listen(struct busview *v, const char *spec);

#endif
