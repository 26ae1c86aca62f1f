/* The event record the examples exchange: a fixed C layout. */
#ifndef EXAMPLE_ORDER_H
#define EXAMPLE_ORDER_H

#include <stddef.h>
#include <stdint.h>

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

/* order_id of the last record: subscribers stop when they see it */
#define ORDER_END UINT64_MAX

#endif
