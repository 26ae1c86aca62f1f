/*
 * shmbus dlq BUS CHANNEL list|show|replay|purge: the dead-letter queue of
 * a channel, from any process.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shmbus/shmbus.h>

#include "cli.h"

static int dlq_usage(FILE *f)
{
	fprintf(f,
		"usage: shmbus dlq BUS CHANNEL list [--from ID]\n"
		"       shmbus dlq BUS CHANNEL show ID\n"
		"       shmbus dlq BUS CHANNEL replay ID [--to SUBSCRIBER]\n"
		"       shmbus dlq BUS CHANNEL purge ID|all\n"
		"\n"
		"The records a channel's handlers gave up on, with why.\n"
		"replay re-publishes the record into the channel (it keeps "
		"its origin);\nwith --to it goes to that subscriber's retry "
		"segment only, attempts reset.\nA replayed or purged entry "
		"leaves the queue.\n");
	return f == stderr ? 2 : 0;
}

static void print_time(uint64_t realtime_ns)
{
	time_t t = (time_t)(realtime_ns / 1000000000u);
	struct tm tm;
	char buf[32];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	printf("%s.%03uZ", buf, (unsigned)(realtime_ns / 1000000u % 1000u));
}

static int list(shmbus_channel_t *ch, uint64_t from)
{
	shmbus_dlq_stats_t st;
	if (shmbus_dlq_get_stats(ch, &st))
		return cli_fail("dlq", shmbus_errmsg());
	printf("%" PRIu64 " entries (capacity %u, %s when full; dropped %" PRIu64
	       ", refused %" PRIu64 ")\n",
	       st.count, st.capacity,
	       st.policy == SHMBUS_DLQ_REFUSE ? "refuse" : "drop oldest",
	       st.dropped, st.refused);
	if (st.count == 0)
		return 0;
	printf("%-8s %-10s %-10s %4s %5s %-16s %s\n", "ID", "SEQ", "KEY",
	       "ATT", "ERR", "SUBSCRIBER", "NOTE");
	shmbus_dlq_entry_t e[64];
	for (;;) {
		int n = shmbus_dlq_list(ch, from, e, 64);
		if (n < 0)
			return cli_fail("dlq", shmbus_errmsg());
		for (int i = 0; i < n; i++)
			printf("%-8" PRIu64 " %-10" PRIu64 " %-10" PRIu64
			       " %4u %5d %-16.16s %.20s\n",
			       e[i].id, e[i].rec.seq, e[i].rec.key,
			       e[i].attempts, e[i].error, e[i].subscriber,
			       e[i].text);
		if (n < 64)
			return 0;
		from = e[n - 1].id + 1;
	}
}

static int show(shmbus_channel_t *ch, uint64_t id)
{
	shmbus_channel_info_t info;
	shmbus_channel_get_info(ch, &info);
	uint8_t *buf = malloc(info.record_size);
	if (buf == NULL)
		return cli_fail("dlq", "out of memory");
	shmbus_dlq_entry_t e;
	if (shmbus_dlq_get(ch, id, &e, buf, info.record_size)) {
		free(buf);
		return cli_fail("dlq", shmbus_errmsg());
	}
	printf("id          %" PRIu64 "\n", e.id);
	printf("failed at   ");
	print_time(e.failed_realtime_ns);
	printf("\nsubscriber  %s\n", e.subscriber);
	printf("error       %d (%s)\n", e.error, shmbus_strerror(e.error));
	printf("note        %s\n", e.text);
	printf("attempts    %u\n", e.attempts);
	printf("seq         %" PRIu64 "\n", e.rec.seq);
	printf("origin      %" PRIu64 "\n", e.rec.origin);
	printf("key         %" PRIu64 "\n", e.rec.key);
	printf("producer    %u\n", e.rec.producer);
	printf("length      %u\n", e.rec.len);
	for (uint32_t off = 0; off < e.rec.len; off += 16) {
		printf("%08x ", off);
		for (uint32_t i = off; i < off + 16; i++)
			if (i < e.rec.len)
				printf(" %02x", buf[i]);
			else
				printf("   ");
		printf("  ");
		for (uint32_t i = off; i < off + 16 && i < e.rec.len; i++)
			putchar(isprint(buf[i]) ? buf[i] : '.');
		putchar('\n');
	}
	free(buf);
	return 0;
}

static int replay(shmbus_channel_t *ch, uint64_t id, const char *to)
{
	int rc;
	if (to) {
		rc = shmbus_dlq_replay_to(ch, id, to);
	} else {
		shmbus_producer_t *p;
		rc = shmbus_producer_open(ch, NULL, &p);
		if (rc == SHMBUS_EBUSY)
			return cli_fail("dlq",
					"the channel is single-producer and "
					"its producer is alive: replay --to "
					"SUBSCRIBER instead");
		if (rc == 0) {
			rc = shmbus_dlq_replay(ch, id, p);
			shmbus_producer_close(p);
		}
	}
	if (rc)
		return cli_fail("dlq", shmbus_errmsg());
	printf("replayed %" PRIu64 "%s%s\n", id, to ? " to " : "",
	       to ? to : "");
	return 0;
}

int cmd_dlq(int argc, char **argv)
{
	const char *pos[4] = {0}, *to = NULL;
	int npos = 0;
	uint64_t from = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return dlq_usage(stdout);
		if (!strcmp(argv[i], "--to") && i + 1 < argc)
			to = argv[++i];
		else if (!strcmp(argv[i], "--from") && i + 1 < argc)
			from = strtoull(argv[++i], NULL, 10);
		else if (npos < 4 && argv[i][0] != '-')
			pos[npos++] = argv[i];
		else
			return dlq_usage(stderr);
	}
	if (npos < 3)
		return dlq_usage(stderr);
	const char *verb = pos[2];
	bool needs_id = strcmp(verb, "list") != 0;
	uint64_t id = 0;
	bool all = needs_id && pos[3] && !strcmp(pos[3], "all");
	if (needs_id && !all) {
		char *end;
		if (!pos[3] || (id = strtoull(pos[3], &end, 10), *end))
			return cli_fail("dlq", "which entry? give its ID "
					       "(see `list`)");
	}
	shmbus_t *bus;
	shmbus_channel_t *ch;
	if (cli_open(pos[0], pos[1], &bus, &ch))
		return 1;
	int rc;
	if (!strcmp(verb, "list")) {
		rc = list(ch, from);
	} else if (!strcmp(verb, "show")) {
		rc = show(ch, id);
	} else if (!strcmp(verb, "replay")) {
		rc = replay(ch, id, to);
	} else if (!strcmp(verb, "purge")) {
		int n = shmbus_dlq_purge(ch, all ? SHMBUS_DLQ_ALL : id);
		rc = n < 0 ? cli_fail("dlq", shmbus_errmsg()) : 0;
		if (n >= 0)
			printf("purged %d\n", n);
	} else {
		rc = dlq_usage(stderr);
	}
	shmbus_close(bus);
	return rc;
}
