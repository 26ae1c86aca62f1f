/*
 * Records as JSON, by the channel's schema: what tail prints and pub reads.
 * Integers are JSON numbers, or decimal strings beyond 2^53 (where JSON
 * readers that use doubles would round them); floats are numbers, or
 * "NaN", "Infinity", "-Infinity"; CHARS are strings ({"hex": ...} if not
 * UTF-8); BYTES are hex strings; enums are names (a number if unnamed);
 * bools are true/false.
 */
#ifndef SHMBUS_TOOLS_CODEC_H
#define SHMBUS_TOOLS_CODEC_H

#include <jansson.h>
#include <stddef.h>

#include <shmbus/shmbus.h>

#define CODEC_MAX_FIELDS 64

struct codec {
	shmbus_channel_t *ch;
	uint32_t record_size;
	int n; /* fields; 0: the channel has no schema */
	shmbus_field_info_t f[CODEC_MAX_FIELDS];
};

/* The channel's schema: 0, or a code (a corrupt schema; errmsg says). */
int codec_open(struct codec *c, shmbus_channel_t *ch);
/* The fields of a record of len bytes (fields past len are null). */
json_t *codec_decode(const struct codec *c, const void *data, uint32_t len);
/* A record with its header: seq, key, origin, timestamp_ns, producer, and
 * "record" (decoded) or "hex" (no schema). A zeroed struct codec is one
 * without a schema. */
json_t *codec_record(const struct codec *c, const shmbus_record_t *r);
/* Its two halves, for a caller that adds fields between them: the header,
 * then "record" or "hex" set on o. */
json_t *codec_header(const shmbus_record_t *r);
void codec_payload(const struct codec *c, json_t *o, const shmbus_record_t *r);
/* A JSON object into rec (record_size bytes, zeroed first: fields not
 * given are 0). 0, or -1 with why in err, naming the field. */
int codec_encode(const struct codec *c, json_t *obj, void *rec, char *err,
		 size_t errlen);

/* n bytes as lowercase hex; malloc'd (NULL if out of memory). */
char *hex_encode(const void *p, size_t n);
/* Hex digits (whitespace ignored) into out: 0 with *n set, or -1 if a
 * digit is bad, one is missing, or there are more than max bytes. */
int hex_decode(const char *s, void *out, size_t max, size_t *n);

/* A 64-bit integer as codec.h says: a number, or a string beyond 2^53. */
json_t *codec_u64(uint64_t v);

#endif
