/*
 * Copies of slot payloads that a reader may make while a producer rewrites
 * the slot: spies and overwrite readers on any channel, a subscriber
 * evicted from an evict channel. Such a reader detects the rewrite
 * afterwards and discards its copy; for the copy to be no data race in the
 * C11 model (and for TSan), both sides move the payload as relaxed atomic
 * 8-byte words -- plain moves on every target. So every producer path
 * writes payloads this way (shmbus_publish, shmbus_claim_write), whatever
 * the channel. Slots are 8-byte aligned and padded to 8 bytes, so a
 * trailing partial word is safe to move whole. The loops move four words
 * a turn: a relaxed store is never merged into a wider one, so the loop
 * overhead is what can be cut.
 */
#ifndef SHMBUS_COPY_H
#define SHMBUS_COPY_H

#include <stdint.h>
#include <string.h>

static inline uint64_t copy_word(const uint8_t *s)
{
	uint64_t w;
	memcpy(&w, s, 8);
	return w;
}

static inline void copy_in_relaxed(void *dst, const void *src, uint32_t len)
{
	uint64_t *d = dst;
	const uint8_t *s = src;
	uint32_t n = len >> 3, i = 0;
	for (; i + 4 <= n; i += 4, s += 32) {
		uint64_t a = copy_word(s), b = copy_word(s + 8),
			 c = copy_word(s + 16), e = copy_word(s + 24);
		__atomic_store_n(&d[i], a, __ATOMIC_RELAXED);
		__atomic_store_n(&d[i + 1], b, __ATOMIC_RELAXED);
		__atomic_store_n(&d[i + 2], c, __ATOMIC_RELAXED);
		__atomic_store_n(&d[i + 3], e, __ATOMIC_RELAXED);
	}
	for (; i < n; i++, s += 8)
		__atomic_store_n(&d[i], copy_word(s), __ATOMIC_RELAXED);
	if (len & 7) {
		uint64_t w = 0;
		memcpy(&w, s, len & 7);
		__atomic_store_n(&d[i], w, __ATOMIC_RELAXED);
	}
}

static inline void copy_out_relaxed(void *dst, const void *src, uint32_t len)
{
	uint8_t *d = dst;
	const uint64_t *s = src;
	uint32_t n = len >> 3, i = 0;
	for (; i + 4 <= n; i += 4, d += 32) {
		uint64_t a = __atomic_load_n(&s[i], __ATOMIC_RELAXED),
			 b = __atomic_load_n(&s[i + 1], __ATOMIC_RELAXED),
			 c = __atomic_load_n(&s[i + 2], __ATOMIC_RELAXED),
			 e = __atomic_load_n(&s[i + 3], __ATOMIC_RELAXED);
		memcpy(d, &a, 8);
		memcpy(d + 8, &b, 8);
		memcpy(d + 16, &c, 8);
		memcpy(d + 24, &e, 8);
	}
	for (; i < n; i++, d += 8) {
		uint64_t w = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
		memcpy(d, &w, 8);
	}
	if (len & 7) {
		uint64_t w = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
		memcpy(d, &w, len & 7);
	}
}

#endif /* SHMBUS_COPY_H */
