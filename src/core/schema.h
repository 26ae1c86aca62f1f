/*
 * Record schemas stored in the channel object (schema.c): checked when the
 * creator declares one, compared when an attacher does, read by tools.
 */
#ifndef SHMBUS_SCHEMA_H
#define SHMBUS_SCHEMA_H

#include <stdbool.h>

#include "internal.h"

/* 0, or SHMBUS_EINVAL saying which field is wrong. */
int schema_check(const char *channel, const shmbus_schema_t *sc,
		 uint32_t record_size);
/* Fill dst (zeroed first) from a checked schema. */
void schema_store(struct ch_schema *dst, const shmbus_schema_t *sc);
/* Does the stored schema equal sc? */
bool schema_equal(const struct ch_schema *stored, const shmbus_schema_t *sc);

#endif /* SHMBUS_SCHEMA_H */
