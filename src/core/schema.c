/*
 * Record schemas: a descriptor of a channel's payload fields, copied into
 * the channel object by its creator, so that any process (tools, bridges)
 * can decode records without the C headers. Stored fields are re-checked
 * on every read: the object is shared memory, another process may have
 * damaged it.
 */
#define _GNU_SOURCE
#include "schema.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

static bool int_size(uint32_t size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

/* The size a type needs, 0 for any (CHARS, BYTES), or UINT32_MAX if the
 * type is unknown. */
static uint32_t type_size(uint32_t type)
{
	switch (type) {
	case SHMBUS_F_U8: case SHMBUS_F_I8: case SHMBUS_F_BOOL: return 1;
	case SHMBUS_F_U16: case SHMBUS_F_I16: return 2;
	case SHMBUS_F_U32: case SHMBUS_F_I32: case SHMBUS_F_F32: return 4;
	case SHMBUS_F_U64: case SHMBUS_F_I64: case SHMBUS_F_F64: return 8;
	case SHMBUS_F_CHARS: case SHMBUS_F_BYTES: case SHMBUS_F_ENUM:
		return 0;
	default: return UINT32_MAX;
	}
}

/* Is one field's description consistent with a record of record_size? */
static bool field_ok(uint32_t type, uint32_t offset, uint32_t size,
		     uint32_t record_size)
{
	uint32_t need = type_size(type);
	if (need == UINT32_MAX || size == 0 || offset > record_size ||
	    size > record_size - offset)
		return false;
	if (type == SHMBUS_F_ENUM)
		return int_size(size);
	return need == 0 || need == size;
}

int schema_check(const char *channel, const shmbus_schema_t *sc,
		 uint32_t record_size)
{
	if (sc->n_fields == 0 || sc->n_fields > SHMBUS_SCHEMA_MAX_FIELDS ||
	    sc->fields == NULL)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': a schema has 1..%u fields",
				     channel, SHMBUS_SCHEMA_MAX_FIELDS);
	if (sc->size > record_size)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': schema type is %u bytes, "
				     "the record_size %u",
				     channel, sc->size, record_size);
	if (sc->type_name && strlen(sc->type_name) >= 48)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': schema type name longer "
				     "than 47 bytes",
				     channel);
	uint32_t enums = 0;
	for (uint32_t i = 0; i < sc->n_fields; i++) {
		const shmbus_field_t *f = &sc->fields[i];
		if (f->name == NULL || f->name[0] == '\0' ||
		    strlen(f->name) >= 32)
			return shmbus_seterr(SHMBUS_EINVAL,
					     "channel '%s': schema field %u "
					     "needs a name of 1..31 bytes",
					     channel, i);
		if (!field_ok(f->type, f->offset, f->size, record_size))
			return shmbus_seterr(SHMBUS_EINVAL,
					     "channel '%s': field '%s' (type "
					     "%u, offset %u, size %u) does not "
					     "fit a %u-byte record or its type",
					     channel, f->name, f->type,
					     f->offset, f->size, record_size);
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(sc->fields[j].name, f->name) == 0)
				return shmbus_seterr(SHMBUS_EINVAL,
						     "channel '%s': field '%s' "
						     "appears twice",
						     channel, f->name);
		if (f->type != SHMBUS_F_ENUM)
			continue;
		if (f->n_enums && f->enums == NULL)
			return shmbus_seterr(SHMBUS_EINVAL,
					     "channel '%s': enum '%s' has no "
					     "values",
					     channel, f->name);
		for (uint32_t k = 0; k < f->n_enums; k++)
			if (f->enums[k].name == NULL ||
			    strlen(f->enums[k].name) >= 24)
				return shmbus_seterr(SHMBUS_EINVAL,
						     "channel '%s': enum '%s': "
						     "value names are 1..23 "
						     "bytes",
						     channel, f->name);
		enums += f->n_enums;
	}
	if (enums > SHMBUS_SCHEMA_MAX_ENUMS)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "channel '%s': %u enum values in all, "
				     "at most %u",
				     channel, enums, SHMBUS_SCHEMA_MAX_ENUMS);
	return 0;
}

void schema_store(struct ch_schema *dst, const shmbus_schema_t *sc)
{
	memset(dst, 0, sizeof(*dst));
	if (sc->type_name)
		strncpy(dst->type_name, sc->type_name,
			sizeof(dst->type_name) - 1);
	uint32_t e = 0;
	for (uint32_t i = 0; i < sc->n_fields; i++) {
		const shmbus_field_t *f = &sc->fields[i];
		struct ch_schema_field *d = &dst->fields[i];
		strncpy(d->name, f->name, sizeof(d->name) - 1);
		d->type = f->type;
		d->offset = f->offset;
		d->size = f->size;
		if (f->type == SHMBUS_F_ENUM) {
			d->enum_off = e;
			d->count = f->n_enums;
			for (uint32_t k = 0; k < f->n_enums; k++, e++) {
				dst->enums[e].value = f->enums[k].value;
				strncpy(dst->enums[e].name, f->enums[k].name,
					sizeof(dst->enums[e].name) - 1);
			}
		}
	}
	dst->n_enums = e;
	dst->n_fields = sc->n_fields; /* last: readers check it first */
}

bool schema_equal(const struct ch_schema *stored, const shmbus_schema_t *sc)
{
	struct ch_schema *mine = malloc(sizeof(*mine));
	if (mine == NULL)
		return false;
	schema_store(mine, sc);
	bool eq = memcmp(mine, stored, sizeof(*mine)) == 0;
	free(mine);
	return eq;
}

/* The stored schema if it is consistent, else NULL (and an error set). */
static const struct ch_schema *stored(shmbus_channel_t *ch)
{
	const struct ch_schema *s = ch->schema;
	uint32_t n = s->n_fields, ne = s->n_enums;
	if (n > SHMBUS_SCHEMA_MAX_FIELDS || ne > SHMBUS_SCHEMA_MAX_ENUMS)
		goto corrupt;
	for (uint32_t i = 0; i < n; i++) {
		const struct ch_schema_field *f = &s->fields[i];
		if (!field_ok(f->type, f->offset, f->size, ch->record_size) ||
		    (f->type == SHMBUS_F_ENUM &&
		     (f->enum_off > ne || f->count > ne - f->enum_off)))
			goto corrupt;
	}
	return s;
corrupt:
	shmbus_seterr(SHMBUS_ECORRUPT, "channel '%s': its schema is corrupt",
		      ch->name);
	return NULL;
}

int shmbus_channel_fields(shmbus_channel_t *ch, shmbus_field_info_t *out,
			  uint32_t max)
{
	if (ch == NULL || (out == NULL && max))
		return shmbus_seterr(SHMBUS_EINVAL, "channel or out NULL");
	const struct ch_schema *s = stored(ch);
	if (s == NULL)
		return SHMBUS_ECORRUPT;
	uint32_t n = s->n_fields < max ? s->n_fields : max;
	for (uint32_t i = 0; i < n; i++) {
		const struct ch_schema_field *f = &s->fields[i];
		memset(&out[i], 0, sizeof(out[i]));
		memcpy(out[i].name, f->name, sizeof(out[i].name) - 1);
		out[i].type = f->type;
		out[i].offset = f->offset;
		out[i].size = f->size;
		out[i].n_enums = f->type == SHMBUS_F_ENUM ? f->count : 0;
	}
	return (int)s->n_fields;
}

/* The enum values of field i, or NULL. */
static const struct ch_schema_enum *enum_values(shmbus_channel_t *ch,
						uint32_t i, uint32_t *n)
{
	const struct ch_schema *s = stored(ch);
	if (s == NULL || i >= s->n_fields ||
	    s->fields[i].type != SHMBUS_F_ENUM)
		return NULL;
	*n = s->fields[i].count;
	return &s->enums[s->fields[i].enum_off];
}

const char *shmbus_channel_enum_name(shmbus_channel_t *ch, uint32_t field,
				     int64_t value)
{
	uint32_t n = 0;
	const struct ch_schema_enum *e = ch ? enum_values(ch, field, &n) : NULL;
	for (uint32_t k = 0; e && k < n; k++)
		if (e[k].value == value)
			return e[k].name[sizeof(e[k].name) - 1] == '\0'
				       ? e[k].name
				       : NULL;
	return NULL;
}

int shmbus_channel_enum_at(shmbus_channel_t *ch, uint32_t field, uint32_t k,
			   const char **name, int64_t *value)
{
	uint32_t n = 0;
	const struct ch_schema_enum *e = ch ? enum_values(ch, field, &n) : NULL;
	if (e == NULL || k >= n || e[k].name[sizeof(e[k].name) - 1] != '\0')
		return SHMBUS_ENOENT;
	*name = e[k].name;
	*value = e[k].value;
	return 0;
}

int shmbus_channel_enum_value(shmbus_channel_t *ch, uint32_t field,
			      const char *name, int64_t *value)
{
	uint32_t n = 0;
	const struct ch_schema_enum *e =
		ch && name ? enum_values(ch, field, &n) : NULL;
	for (uint32_t k = 0; e && k < n; k++)
		if (strncmp(e[k].name, name, sizeof(e[k].name)) == 0) {
			*value = e[k].value;
			return 0;
		}
	return SHMBUS_ENOENT;
}
