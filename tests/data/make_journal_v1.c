/*
 * Made tests/data/journal-v1: a journal in format version 1, written by
 * the version 1 writer (main at bcda7f6) so that later versions' readers
 * are tested against the real thing. Not built: kept to say how the
 * fixture was made.
 *
 *   cc -Iinclude -Itests tests/data/make_journal_v1.c build/libshmbus.so \
 *      -Wl,-rpath,$PWD/build -o /tmp/mk && /tmp/mk tests/data/journal-v1
 *
 * 64 KiB segments, JT_V1_RECORDS records (jt_v1_rec): some segments
 * sealed with their index, the last one not.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include <shmbus/journal.h>

#include "jhelpers.h"

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	shmbus_journal_opts_t o = {.segment_size = 64u << 10,
				   .channel = "fixture",
				   .channel_id = 7};
	shmbus_journal_t *j;
	if (shmbus_journal_open(argv[1], &o, &j) != 0)
		return 1;
	static uint8_t buf[4096];
	for (uint32_t i = 0; i < JT_V1_RECORDS; i++) {
		shmbus_record_t r;
		uint32_t type;
		jt_v1_rec(i, &r, &type, buf);
		if (shmbus_journal_append_record(j, &r, type) != 0)
			return 1;
	}
	/* synced: a writer of another boot trusts it all */
	return shmbus_journal_sync(j) != 0 || shmbus_journal_close(j) != 0;
}
