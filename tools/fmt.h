/* Numbers and names for people: short, fixed-width, terminal-safe. */
#ifndef SHMBUS_TOOLS_FMT_H
#define SHMBUS_TOOLS_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FMT_LEN 24

/* v exactly if it fits width characters, else 12.3k / 4.5M / 6.7G / 8.9T */
const char *fmt_count(char buf[FMT_LEN], uint64_t v, int width);
/* a duration: 850ns, 1.25us, 127us, 1.79ms, 2.10s, 3m05s */
const char *fmt_ns(char buf[FMT_LEN], uint64_t ns);
/* a size: 512B, 4.0K, 2.1M, 1.0G */
const char *fmt_bytes(char buf[FMT_LEN], uint64_t bytes);
/* a rate per second: 0, 12.5, 1234, 12.3k, 4.5M */
const char *fmt_rate(char buf[FMT_LEN], double per_s);
/* src for a terminal: non-printable bytes as '?', at most width characters
 * (a cut name ends in '~'); dst holds width + 1 bytes */
const char *fmt_name(char *dst, const char *src, size_t width);

/* text on lines of at most width columns, each after indent spaces,
 * broken at spaces (a longer word is cut) */
void fmt_wrap(FILE *out, int indent, const char *text, int width);

#endif
