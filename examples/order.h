/* The event record the examples exchange: a fixed C layout. */
#ifndef EXAMPLE_ORDER_H
#define EXAMPLE_ORDER_H

#include <stddef.h>
#include <stdint.h>

#include <shmbus/shmbus.h>

struct order_placed {
	uint64_t order_id;
	int64_t price_e8; /* price x 1e8 */
	uint32_t quantity;
	uint8_t side; /* 'B' or 'S' */
	uint8_t pad[3];
	char symbol[8];
};
_Static_assert(sizeof(struct order_placed) == 32, "layout");
_Static_assert(offsetof(struct order_placed, symbol) == 24, "layout");

/* Bump the first number whenever the layout changes: a process built
 * against another layout then gets SHMBUS_EEXIST, not garbage. */
#define ORDER_LAYOUT_HASH ((UINT64_C(1) << 32) | sizeof(struct order_placed))
#define ORDER_CHANNEL "OrderPlaced"
#define ORDER_CAPACITY 4096u

/* The layout's schema, stored in the channel, so that `shmbus tail` and
 * `shmbus pub` speak JSON. The macros take offsets and sizes from the
 * compiler. */
static const shmbus_enum_value_t order_sides[] = {{"BUY", 'B'},
						  {"SELL", 'S'}};
static const shmbus_field_t order_fields[] = {
	SHMBUS_FIELD(struct order_placed, order_id, SHMBUS_F_U64),
	SHMBUS_FIELD(struct order_placed, price_e8, SHMBUS_F_I64),
	SHMBUS_FIELD(struct order_placed, quantity, SHMBUS_F_U32),
	SHMBUS_FIELD_ENUM(struct order_placed, side, order_sides),
	SHMBUS_FIELD(struct order_placed, symbol, SHMBUS_F_CHARS),
};
static const shmbus_schema_t order_schema =
	SHMBUS_SCHEMA(struct order_placed, order_fields);

/* order_id of the last record: subscribers stop when they see it */
#define ORDER_END UINT64_MAX

#endif
