/* Compiled by the schema_size_check test: with -DBAD it must not compile
 * (a 4-byte member declared as U64); without, it must. */
#include <shmbus/shmbus.h>

struct rec {
	uint64_t a;
	uint32_t b;
};

static const shmbus_field_t fields[] = {
	SHMBUS_FIELD(struct rec, a, SHMBUS_F_U64),
#ifdef BAD
	SHMBUS_FIELD(struct rec, b, SHMBUS_F_U64),
#else
	SHMBUS_FIELD(struct rec, b, SHMBUS_F_U32),
#endif
};
const shmbus_schema_t rec_schema = SHMBUS_SCHEMA(struct rec, fields);
