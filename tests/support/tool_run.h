/*
 * Running the shmbus tool from a test (tests/tool/): its stdout in `out`,
 * checks on that text, a live bus that another process feeds
 * (tool_feeder), a bus of the test's own, and what a test leaves behind
 * when an assertion ends it early (tidy, each suite's .fini).
 */
#ifndef SHMBUS_TEST_TOOL_RUN_H
#define SHMBUS_TEST_TOOL_RUN_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>

#include "helpers.h"

extern char out[1 << 21]; /* a journal dump of thousands of records */

int vrun(char *buf, size_t n, const char *program, const char *fmt,
	 va_list ap);
int tool(const char *fmt, ...);
int tool_as_nobody(const char *fmt, ...);

#define expect_out(s) cr_expect(strstr(out, s) != NULL, "no '%s' in:\n%s", s, out)

void expect_schema(const char *name, bool lines);
void expect_width(const char *text, size_t width);

/* What a test leaves behind when an assertion ends it early (the feeder
 * dies with the test, before it can remove its bus): removed after each. */
struct left {
	pid_t feeder;
	char bus[2][48];
	char tmux[64];
	char jdir[2][256];
};
extern struct left left;
void tidy(void);

/* tool_feeder on a bus of its own, running until its input closes. */
struct feeder {
	pid_t pid;
	int in; /* its standard input: closing it stops it */
	char bus[48];
};

void feeder_start(struct feeder *f, const char *tag);
shmbus_channel_t *feeder_channel(const struct feeder *f, const char *name,
				 shmbus_t **bus);
void feeder_stop(struct feeder *f);

int consume(const shmbus_record_t *r, void *ctx);

/* A bus of the test's own: channel C of `cap` 8-byte records, with a
 * subscriber (if sub) and the producer (if producer). */
struct own {
	const char *name;
	shmbus_t *bus;
	shmbus_channel_t *ch;
	shmbus_sub_t *sub;
	shmbus_producer_t *p;
};

void own_bus(struct own *o, const char *tag, uint32_t cap, const char *sub,
	     bool producer);
void own_close(struct own *o);

/* An object in /dev/shm with the given bytes (a damaged bus, say). */
void shm_file(const char *name, const void *data, size_t n);
void shm_remove(const char *name);

/* The integer at path ("a.b.c") of a JSON object; asserts it is one. */
json_int_t num(json_t *o, const char *path);
/* `shmbus stat BUS --json`, checked by its schema, parsed. */
json_t *stat_json(const char *bus);

/* A fresh directory (removed after the test, also after a failure); the
 * journal goes into DIR/j. */
void journal_dir(char dir[256], int which);

#endif
