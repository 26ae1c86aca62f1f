/*
 * JSON into records by a channel's schema (the reverse of codec.c). Every
 * value is checked against its field's type and size before it is stored;
 * an error names the field, the value and what would fit.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

/* An integer as sign and magnitude, so that all of u64 and i64 fit. */
struct num {
	bool neg;
	uint64_t mag;
};

static const char *type_name(uint32_t t)
{
	static const char *const names[] = {
		"?",   "u8",  "u16", "u32", "u64",   "i8",    "i16", "i32",
		"i64", "f32", "f64", "chars", "bytes", "enum", "bool"};
	return t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

static int bad(char *err, size_t n, const shmbus_field_info_t *f,
	       json_t *v, const char *fmt, ...)
{
	char *text = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
	int k = snprintf(err, n, "field '%s' (%s)%s%.40s%s: ", f->name,
			 type_name(f->type), text ? ": " : "",
			 text ? text : "", text && strlen(text) > 40 ? "..." : "");
	free(text);
	va_list ap;
	va_start(ap, fmt);
	if (k >= 0 && (size_t)k < n)
		vsnprintf(err + k, n - (size_t)k, fmt, ap);
	va_end(ap);
	return -1;
}

/* A JSON integer, an integral real, or a decimal string. */
static bool get_int(json_t *v, struct num *n)
{
	if (json_is_integer(v)) {
		json_int_t x = json_integer_value(v);
		n->neg = x < 0;
		n->mag = n->neg ? 0 - (uint64_t)x : (uint64_t)x;
		return true;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d != trunc(d) || fabs(d) >= 18446744073709551616.0)
			return false;
		n->neg = d < 0;
		n->mag = (uint64_t)fabs(d);
		return true;
	}
	if (!json_is_string(v))
		return false;
	const char *s = json_string_value(v);
	n->neg = s[0] == '-';
	if (!isdigit((unsigned char)s[n->neg]))
		return false;
	char *end;
	errno = 0;
	n->mag = strtoull(s + n->neg, &end, 10);
	return *end == '\0' && errno == 0;
}

/* The bits to store if n fits size bytes (signed or not). */
static bool fit(const struct num *n, uint32_t size, bool is_signed,
		uint64_t *bits)
{
	uint64_t umax = size >= 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
	uint64_t pmax = umax >> 1;
	if (!is_signed ? (n->neg && n->mag) || n->mag > umax
		       : n->mag > pmax + (n->neg ? 1 : 0))
		return false;
	*bits = n->neg ? 0 - n->mag : n->mag;
	return true;
}

static void store_u(unsigned char *p, uint32_t size, uint64_t bits)
{
	uint8_t a = (uint8_t)bits;
	uint16_t b = (uint16_t)bits;
	uint32_t c = (uint32_t)bits;
	switch (size) {
	case 1: memcpy(p, &a, 1); break;
	case 2: memcpy(p, &b, 2); break;
	case 4: memcpy(p, &c, 4); break;
	default: memcpy(p, &bits, 8); break;
	}
}

static int integer(const shmbus_field_info_t *f, json_t *v, bool is_signed,
		   unsigned char *p, char *err, size_t n)
{
	struct num x;
	uint64_t bits, umax = f->size >= 8 ? UINT64_MAX
					   : (1ull << (8 * f->size)) - 1;
	if (!get_int(v, &x))
		return bad(err, n, f, v, "wants an integer (a number, or a "
					 "decimal string)");
	if (!fit(&x, f->size, is_signed, &bits)) {
		if (is_signed)
			return bad(err, n, f, v, "out of range (-%llu..%llu)",
				   (unsigned long long)(umax >> 1) + 1,
				   (unsigned long long)(umax >> 1));
		return bad(err, n, f, v, "out of range (0..%llu)",
			   (unsigned long long)umax);
	}
	store_u(p, f->size, bits);
	return 0;
}

static int real(const shmbus_field_info_t *f, json_t *v, unsigned char *p,
		char *err, size_t n)
{
	double d;
	const char *s = json_string_value(v);
	if (json_is_number(v))
		d = json_number_value(v);
	else if (s && !strcmp(s, "NaN"))
		d = NAN;
	else if (s && (!strcmp(s, "Infinity") || !strcmp(s, "-Infinity")))
		d = s[0] == '-' ? -INFINITY : INFINITY;
	else
		return bad(err, n, f, v, "wants a number, \"NaN\", "
					 "\"Infinity\" or \"-Infinity\"");
	if (f->type == SHMBUS_F_F64) {
		memcpy(p, &d, sizeof(d));
		return 0;
	}
	if (isfinite(d) && fabs(d) > FLT_MAX)
		return bad(err, n, f, v, "out of range for a float (%g)",
			   (double)FLT_MAX);
	float x = (float)d;
	memcpy(p, &x, sizeof(x));
	return 0;
}

static int chars(const shmbus_field_info_t *f, json_t *v, unsigned char *p,
		 char *err, size_t n)
{
	json_t *hex = json_is_object(v) ? json_object_get(v, "hex") : NULL;
	size_t len;
	if (json_is_string(hex)) {
		if (hex_decode(json_string_value(hex), p, f->size, &len))
			return bad(err, n, f, v, "wants at most %u bytes of "
						 "hex digits",
				   f->size);
		return 0;
	}
	if (!json_is_string(v))
		return bad(err, n, f, v, "wants a string");
	len = json_string_length(v);
	if (len > f->size)
		return bad(err, n, f, v, "%zu bytes, the field holds %u", len,
			   f->size);
	memcpy(p, json_string_value(v), len);
	return 0;
}

static int bytes(const shmbus_field_info_t *f, json_t *v, unsigned char *p,
		 char *err, size_t n)
{
	size_t len;
	if (!json_is_string(v) ||
	    hex_decode(json_string_value(v), p, f->size, &len) ||
	    len != f->size)
		return bad(err, n, f, v, "wants %u bytes as %u hex digits",
			   f->size, 2 * f->size);
	return 0;
}

static int enumeration(const struct codec *c, int i, json_t *v,
		       unsigned char *p, char *err, size_t n)
{
	const shmbus_field_info_t *f = &c->f[i];
	int64_t e;
	json_t *num = NULL;
	if (json_is_string(v) &&
	    shmbus_channel_enum_value(c->ch, (uint32_t)i, json_string_value(v),
				      &e) == 0) {
		num = json_integer(e);
		v = num;
	} else if (json_is_string(v) &&
		   !isdigit((unsigned char)json_string_value(v)[0])) {
		return bad(err, n, f, v, "no value of that name (give one of "
					 "its names, or a number)");
	}
	int rc = integer(f, v, false, p, err, n);
	json_decref(num);
	return rc;
}

static int boolean(const shmbus_field_info_t *f, json_t *v, unsigned char *p,
		   char *err, size_t n)
{
	if (json_is_boolean(v))
		p[0] = json_is_true(v);
	else if (json_is_integer(v) && (json_integer_value(v) == 0 ||
					json_integer_value(v) == 1))
		p[0] = (unsigned char)json_integer_value(v);
	else
		return bad(err, n, f, v, "wants true or false");
	return 0;
}

static int field(const struct codec *c, int i, json_t *v, unsigned char *rec,
		 char *err, size_t n)
{
	const shmbus_field_info_t *f = &c->f[i];
	unsigned char *p = rec + f->offset;
	switch (f->type) {
	case SHMBUS_F_U8: case SHMBUS_F_U16: case SHMBUS_F_U32:
	case SHMBUS_F_U64:
		return integer(f, v, false, p, err, n);
	case SHMBUS_F_I8: case SHMBUS_F_I16: case SHMBUS_F_I32:
	case SHMBUS_F_I64:
		return integer(f, v, true, p, err, n);
	case SHMBUS_F_F32: case SHMBUS_F_F64:
		return real(f, v, p, err, n);
	case SHMBUS_F_CHARS:
		return chars(f, v, p, err, n);
	case SHMBUS_F_BYTES:
		return bytes(f, v, p, err, n);
	case SHMBUS_F_ENUM:
		return enumeration(c, i, v, p, err, n);
	case SHMBUS_F_BOOL:
		return boolean(f, v, p, err, n);
	default:
		return bad(err, n, f, NULL, "unknown type %u", f->type);
	}
}

static int find(const struct codec *c, const char *name)
{
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->f[i].name, name))
			return i;
	return -1;
}

static int unknown(const struct codec *c, const char *name, char *err,
		   size_t n)
{
	int k = snprintf(err, n, "no field '%.40s' in the schema (fields:",
			 name);
	for (int i = 0; i < c->n && k >= 0 && (size_t)k < n; i++)
		k += snprintf(err + k, n - (size_t)k, "%s %s", i ? "," : "",
			      c->f[i].name);
	if (k >= 0 && (size_t)k < n)
		snprintf(err + k, n - (size_t)k, ")");
	return -1;
}

int codec_encode(const struct codec *c, json_t *obj, void *rec, char *err,
		 size_t errlen)
{
	const char *key;
	json_t *v;
	memset(rec, 0, c->record_size);
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "a record is a JSON object of fields, "
				      "like {\"%s\": ...}",
			 c->n ? c->f[0].name : "field");
		return -1;
	}
	json_object_foreach(obj, key, v) {
		int i = find(c, key);
		if (i < 0)
			return unknown(c, key, err, errlen);
		if (field(c, i, v, rec, err, errlen))
			return -1;
	}
	return 0;
}
