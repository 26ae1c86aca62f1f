/* The shared-memory ABI (layout.h): a channel's record schema. */
#ifndef SHMBUS_ABI_SCHEMA_H
#define SHMBUS_ABI_SCHEMA_H

#include "abi_common.h"

/*
 * A channel's record schema (optional): the fields of its payload, for
 * tools to decode records by. Written by the channel's creator.
 */
#define SHMBUS_SCHEMA_MAX_FIELDS 64u
struct ch_schema_field {
	char name[32];
	uint32_t type; /* shmbus_field_type */
	uint32_t offset;
	uint32_t size;
	uint32_t count; /* enum: values in the enum table; else 0 */
	uint32_t enum_off; /* first value in the enum table */
	uint8_t reserved[12];
};
_Static_assert(sizeof(struct ch_schema_field) == 64, "schema ABI");
#define SHMBUS_SCHEMA_MAX_ENUMS 128u
struct ch_schema_enum {
	int64_t value;
	char name[24];
};
struct ch_schema {
	uint32_t n_fields; /* 0: no schema */
	uint32_t n_enums;
	char type_name[48];
	uint8_t reserved[8];
	struct ch_schema_field fields[SHMBUS_SCHEMA_MAX_FIELDS];
	struct ch_schema_enum enums[SHMBUS_SCHEMA_MAX_ENUMS];
};
_Static_assert(sizeof(struct ch_schema) == 64 + 64 * 64 + 128 * 32,
	       "schema ABI");

#endif /* SHMBUS_ABI_SCHEMA_H */
