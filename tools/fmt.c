/*
 * Numbers and names for people. Names come from shared memory that another
 * process wrote: they are printed only through fmt_name, so that a damaged
 * or hostile name cannot send escape sequences to a terminal.
 */
#define _GNU_SOURCE
#include "fmt.h"

#include <stdio.h>
#include <string.h>

static const char *scaled(char buf[FMT_LEN], double v)
{
	static const char suffix[] = "kMGTPE";
	int i = -1;
	while (v >= 999.95 && i < 5) {
		v /= 1000;
		i++;
	}
	if (i < 0)
		snprintf(buf, FMT_LEN, "%.0f", v);
	else
		snprintf(buf, FMT_LEN, v < 99.95 ? "%.1f%c" : "%.0f%c", v,
			 suffix[i]);
	return buf;
}

const char *fmt_count(char buf[FMT_LEN], uint64_t v, int width)
{
	int n = snprintf(buf, FMT_LEN, "%llu", (unsigned long long)v);
	return n <= width ? buf : scaled(buf, (double)v);
}

const char *fmt_ns(char buf[FMT_LEN], uint64_t ns)
{
	double v = (double)ns;
	if (ns < 1000)
		snprintf(buf, FMT_LEN, "%lluns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, FMT_LEN, v < 9995 ? "%.2fus" : "%.0fus", v / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, FMT_LEN, v < 9.995e6 ? "%.2fms" : "%.0fms",
			 v / 1e6);
	else if (ns < 60000000000ull)
		snprintf(buf, FMT_LEN, "%.2fs", v / 1e9);
	else
		snprintf(buf, FMT_LEN, "%llum%02llus",
			 (unsigned long long)(ns / 60000000000ull),
			 (unsigned long long)(ns / 1000000000ull % 60));
	return buf;
}

const char *fmt_bytes(char buf[FMT_LEN], uint64_t bytes)
{
	static const char suffix[] = "KMGTPE";
	if (bytes < 1024) {
		snprintf(buf, FMT_LEN, "%lluB", (unsigned long long)bytes);
		return buf;
	}
	double v = (double)bytes / 1024;
	int i = 0;
	while (v >= 1023.95 && i < 5) {
		v /= 1024;
		i++;
	}
	snprintf(buf, FMT_LEN, v < 99.95 ? "%.1f%c" : "%.0f%c", v, suffix[i]);
	return buf;
}

const char *fmt_rate(char buf[FMT_LEN], double per_s)
{
	if (per_s > 0 && per_s < 99.95) {
		snprintf(buf, FMT_LEN, "%.1f", per_s);
		return buf;
	}
	return scaled(buf, per_s > 0 ? per_s : 0);
}

const char *fmt_name(char *dst, const char *src, size_t width)
{
	size_t n = strlen(src), k;
	for (k = 0; k < n && k < width; k++) {
		unsigned char c = (unsigned char)src[k];
		dst[k] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (n > width && width > 0)
		dst[width - 1] = '~';
	dst[k] = '\0';
	return dst;
}

void fmt_wrap(FILE *out, int indent, const char *text, int width)
{
	int room = width - indent > 20 ? width - indent : 20;
	char safe[1024];
	const char *p = fmt_name(safe, text, sizeof(safe) - 1);
	while (*p) {
		int n = (int)strlen(p), cut = n;
		if (n > room) {
			for (cut = room; cut > 0 && p[cut] != ' '; cut--)
				;
			if (cut == 0)
				cut = room;
		}
		fprintf(out, "%*s%.*s\n", indent, "", cut, p);
		p += cut;
		while (*p == ' ')
			p++;
	}
}
