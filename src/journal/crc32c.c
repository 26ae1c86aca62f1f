/*
 * CRC32C for the journal: ISA-L's crc32_iscsi, except for short buffers.
 *
 * ISA-L folds with carry-less multiplies, 57 ns for 4 KiB here, but below
 * 256 bytes it falls back to a path that costs more than the work: 25 ns
 * for the 120 bytes of a 64-byte record's frame, where the CPU's own crc32
 * instruction, 8 bytes a step, takes 16 (bench: a loop of each over the
 * same buffers). A journal of small records pays that on every append, so
 * short buffers take the instruction directly.
 */
#include <stdint.h>
#include <string.h>

#include "journal_format.h"

int journal_vzeroupper;
int journal_crc_hw;

__attribute__((constructor)) static void journal_cpu(void)
{
#if defined(__x86_64__)
	journal_vzeroupper = __builtin_cpu_supports("avx");
	journal_crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) uint32_t crc32c_hw(const void *p, size_t n,
						     uint32_t crc)
{
	const uint8_t *b = p;
	uint64_t c = ~crc;
	/* one dependent chain either way: unrolled for the loop's own
	 * instructions, half of them at 8 bytes a step */
	for (; n >= 32; n -= 32, b += 32) {
		/* word by word: one memcpy of 32 bytes compiled to vector
		 * stores on the stack, read back 8 bytes at a time */
		uint64_t w0, w1, w2, w3;
		memcpy(&w0, b, 8);
		memcpy(&w1, b + 8, 8);
		memcpy(&w2, b + 16, 8);
		memcpy(&w3, b + 24, 8);
		c = _mm_crc32_u64(c, w0);
		c = _mm_crc32_u64(c, w1);
		c = _mm_crc32_u64(c, w2);
		c = _mm_crc32_u64(c, w3);
	}
	for (; n >= 8; n -= 8, b += 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		c = _mm_crc32_u64(c, w);
	}
	uint32_t c32 = (uint32_t)c;
	for (; n; n--, b++)
		c32 = _mm_crc32_u8(c32, *b);
	return ~c32;
}
#endif
