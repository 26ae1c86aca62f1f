/* The record of the tool tests: one field of every schema type. */
#ifndef SHMBUS_TEST_TOOL_SCHEMA_H
#define SHMBUS_TEST_TOOL_SCHEMA_H

#include <stdint.h>

#include <shmbus/shmbus.h>

struct all_types {
	uint64_t u64;
	int64_t i64;
	double f64;
	uint32_t u32;
	int32_t i32;
	float f32;
	uint16_t u16;
	int16_t i16;
	uint8_t u8;
	int8_t i8;
	uint8_t side; /* enum */
	uint8_t flag; /* bool */
	char sym[8];
	uint8_t raw[4];
	uint16_t venue; /* a 2-byte enum */
	uint8_t pad[6];
};

static const shmbus_enum_value_t all_sides[] = {
	{"BUY", 0}, {"SELL", 1}, {"SHORT", 7}};
static const shmbus_enum_value_t all_venues[] = {{"XNAS", 1},
						 {"XLON", 300}};
static const shmbus_field_t all_fields[] = {
	SHMBUS_FIELD(struct all_types, u64, SHMBUS_F_U64),
	SHMBUS_FIELD(struct all_types, i64, SHMBUS_F_I64),
	SHMBUS_FIELD(struct all_types, f64, SHMBUS_F_F64),
	SHMBUS_FIELD(struct all_types, u32, SHMBUS_F_U32),
	SHMBUS_FIELD(struct all_types, i32, SHMBUS_F_I32),
	SHMBUS_FIELD(struct all_types, f32, SHMBUS_F_F32),
	SHMBUS_FIELD(struct all_types, u16, SHMBUS_F_U16),
	SHMBUS_FIELD(struct all_types, i16, SHMBUS_F_I16),
	SHMBUS_FIELD(struct all_types, u8, SHMBUS_F_U8),
	SHMBUS_FIELD(struct all_types, i8, SHMBUS_F_I8),
	SHMBUS_FIELD_ENUM(struct all_types, side, all_sides),
	SHMBUS_FIELD(struct all_types, flag, SHMBUS_F_BOOL),
	SHMBUS_FIELD(struct all_types, sym, SHMBUS_F_CHARS),
	SHMBUS_FIELD(struct all_types, raw, SHMBUS_F_BYTES),
	SHMBUS_FIELD_ENUM(struct all_types, venue, all_venues),
};
static const shmbus_schema_t all_schema =
	SHMBUS_SCHEMA(struct all_types, all_fields);

#endif
