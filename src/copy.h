/*
 * Copies of overwrite-channel slots. A reader may copy a slot while the
 * producer rewrites it (it detects that afterwards and discards the copy),
 * so both sides move the payload as relaxed atomic 8-byte words: plain moves
 * on every target, and race-free in the C11 model (TSan agrees). Slots are
 * 8-byte aligned and padded to 8 bytes, so a trailing partial word is safe.
 */
#ifndef SHMBUS_COPY_H
#define SHMBUS_COPY_H

#include <stdint.h>
#include <string.h>

static inline void copy_in_relaxed(void *dst, const void *src, uint32_t len)
{
	uint64_t *d = dst;
	const uint8_t *s = src;
	uint32_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		__atomic_store_n(d++, w, __ATOMIC_RELAXED);
	}
	if (i < len) {
		uint64_t w = 0;
		memcpy(&w, s + i, len - i);
		__atomic_store_n(d, w, __ATOMIC_RELAXED);
	}
}

static inline void copy_out_relaxed(void *dst, const void *src, uint32_t len)
{
	uint8_t *d = dst;
	const uint64_t *s = src;
	uint32_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = __atomic_load_n(s++, __ATOMIC_RELAXED);
		memcpy(d + i, &w, 8);
	}
	if (i < len) {
		uint64_t w = __atomic_load_n(s, __ATOMIC_RELAXED);
		memcpy(d + i, &w, len - i);
	}
}

#endif /* SHMBUS_COPY_H */
