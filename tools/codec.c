/*
 * Records <-> JSON by a channel's schema (codec.h says the mapping). The
 * field descriptions come from shared memory through the library, which
 * has checked that each lies inside the record; values are copied out with
 * memcpy, since fields need not be aligned.
 */
#define _GNU_SOURCE
#include "codec.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXACT (1ull << 53) /* integers a double holds exactly */

int codec_open(struct codec *c, shmbus_channel_t *ch)
{
	shmbus_channel_info_t info;
	memset(c, 0, sizeof(*c));
	c->ch = ch;
	int rc = shmbus_channel_get_info(ch, &info);
	if (rc)
		return rc;
	c->record_size = info.record_size;
	int n = shmbus_channel_fields(ch, c->f, CODEC_MAX_FIELDS);
	if (n < 0)
		return n;
	c->n = n < CODEC_MAX_FIELDS ? n : CODEC_MAX_FIELDS;
	return 0;
}

json_t *codec_u64(uint64_t v)
{
	char buf[24];
	if (v <= EXACT)
		return json_integer((json_int_t)v);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return json_string(buf);
}

static json_t *codec_i64(int64_t v)
{
	char buf[24];
	if (v >= -(int64_t)EXACT && v <= (int64_t)EXACT)
		return json_integer((json_int_t)v);
	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return json_string(buf);
}

char *hex_encode(const void *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = p;
	char *s = malloc(2 * n + 1);
	for (size_t i = 0; s && i < n; i++) {
		s[2 * i] = digits[b[i] >> 4];
		s[2 * i + 1] = digits[b[i] & 15];
	}
	if (s)
		s[2 * n] = '\0';
	return s;
}

static int digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int hex_decode(const char *s, void *out, size_t max, size_t *n)
{
	unsigned char *b = out;
	int hi = -1;
	*n = 0;
	for (; *s; s++) {
		if (isspace((unsigned char)*s))
			continue;
		int d = digit(*s);
		if (d < 0)
			return -1;
		if (hi < 0) {
			hi = d;
			continue;
		}
		if (*n == max)
			return -1;
		b[(*n)++] = (unsigned char)(hi << 4 | d);
		hi = -1;
	}
	return hi < 0 ? 0 : -1;
}

/* An unsigned integer of size 1, 2, 4 or 8 bytes at p. */
static uint64_t load_u(const unsigned char *p, uint32_t size)
{
	uint8_t a;
	uint16_t b;
	uint32_t c;
	uint64_t d = 0;
	switch (size) {
	case 1: memcpy(&a, p, 1); return a;
	case 2: memcpy(&b, p, 2); return b;
	case 4: memcpy(&c, p, 4); return c;
	default: memcpy(&d, p, 8); return d;
	}
}

/* A signed integer of that size: load_u's bits, sign-extended. */
static int64_t load_i(const unsigned char *p, uint32_t size)
{
	uint64_t sign = 1ull << (8 * size - 1);
	return (int64_t)((load_u(p, size) ^ sign) - sign);
}

static json_t *real(double v)
{
	if (isnan(v))
		return json_string("NaN");
	if (isinf(v))
		return json_string(v > 0 ? "Infinity" : "-Infinity");
	return json_real(v);
}

static json_t *chars(const unsigned char *p, uint32_t size)
{
	size_t n = strnlen((const char *)p, size);
	json_t *s = json_stringn((const char *)p, n);
	if (s)
		return s;
	char *hex = hex_encode(p, size); /* not UTF-8: exact bytes */
	json_t *o = json_pack("{s:s}", "hex", hex ? hex : "");
	free(hex);
	return o;
}

static json_t *field(const struct codec *c, int i, const unsigned char *p)
{
	const shmbus_field_info_t *f = &c->f[i];
	float f32;
	double f64;
	switch (f->type) {
	case SHMBUS_F_U8: case SHMBUS_F_U16: case SHMBUS_F_U32:
	case SHMBUS_F_U64:
		return codec_u64(load_u(p, f->size));
	case SHMBUS_F_I8: case SHMBUS_F_I16: case SHMBUS_F_I32:
	case SHMBUS_F_I64:
		return codec_i64(load_i(p, f->size));
	case SHMBUS_F_F32:
		memcpy(&f32, p, sizeof(f32));
		return real(f32);
	case SHMBUS_F_F64:
		memcpy(&f64, p, sizeof(f64));
		return real(f64);
	case SHMBUS_F_CHARS:
		return chars(p, f->size);
	case SHMBUS_F_ENUM: {
		uint64_t v = load_u(p, f->size);
		const char *name = shmbus_channel_enum_name(c->ch, (uint32_t)i,
							    (int64_t)v);
		json_t *s = name ? json_string(name) : NULL;
		return s ? s : codec_u64(v);
	}
	case SHMBUS_F_BOOL:
		return p[0] <= 1 ? json_boolean(p[0]) : json_integer(p[0]);
	default: { /* BYTES */
		char *hex = hex_encode(p, f->size);
		json_t *s = json_string(hex ? hex : "");
		free(hex);
		return s;
	}
	}
}

json_t *codec_decode(const struct codec *c, const void *data, uint32_t len)
{
	json_t *o = json_object();
	for (int i = 0; o && i < c->n; i++) {
		const shmbus_field_info_t *f = &c->f[i];
		json_t *v = f->offset + f->size <= len
				    ? field(c, i, (const unsigned char *)data +
							  f->offset)
				    : json_null();
		json_object_set_new(o, f->name, v);
	}
	return o;
}

json_t *codec_header(const shmbus_record_t *r)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:I}", "seq", codec_u64(r->seq),
			 "key", codec_u64(r->key), "origin",
			 codec_u64(r->origin), "timestamp_ns",
			 codec_u64(r->timestamp), "producer",
			 (json_int_t)r->producer);
}

void codec_payload(const struct codec *c, json_t *o, const shmbus_record_t *r)
{
	if (c->n) {
		json_object_set_new(o, "record", codec_decode(c, r->data,
							      r->len));
	} else {
		char *hex = hex_encode(r->data, r->len);
		json_object_set_new(o, "hex", json_string(hex ? hex : ""));
		free(hex);
	}
}

json_t *codec_record(const struct codec *c, const shmbus_record_t *r)
{
	json_t *o = codec_header(r);
	if (o)
		codec_payload(c, o, r);
	return o;
}
