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
#include "codec.h"

static const char help[] =
	"usage: shmbus dlq BUS CHANNEL list [--from ID]\n"
	"       shmbus dlq BUS CHANNEL show ID [--json]\n"
	"       shmbus dlq BUS CHANNEL replay ID [--to SUBSCRIBER]\n"
	"       shmbus dlq BUS CHANNEL purge ID|all\n"
	"\n"
	"The records a channel's handlers gave up on, with why.\n"
	"show prints an entry and its payload in hex; with --json, the entry\n"
	"and its record decoded by the channel's schema.\n"
	"replay re-publishes the record into the channel (it keeps its "
	"origin);\nwith --to it goes to that subscriber's retry segment only, "
	"attempts reset.\nA replayed or purged entry leaves the queue.\n";

struct dlq_opts {
	const char *to;
	uint64_t from;
	bool json;
};

static int on_opt(int key, const char *arg, void *ctx)
{
	struct dlq_opts *o = ctx;
	if (key == 'j')
		o->json = true;
	else if (key == 't')
		o->to = arg;
	else
		return cli_u64("dlq", "--from", arg, 0, UINT64_MAX, &o->from);
	return 0;
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

/* The entry as JSON: its record as `shmbus tail` prints it, and why. */
static int show_json(shmbus_channel_t *ch, const shmbus_dlq_entry_t *e)
{
	struct codec codec;
	if (codec_open(&codec, ch))
		return cli_fail("dlq", shmbus_errmsg());
	json_t *o = codec_record(&codec, &e->rec);
	if (o == NULL)
		return cli_fail("dlq", "out of memory");
	json_object_set_new(o, "id", codec_u64(e->id));
	json_object_set_new(o, "subscriber", json_string(e->subscriber));
	json_object_set_new(o, "error", json_integer(e->error));
	json_object_set_new(o, "note", json_string(e->text));
	json_object_set_new(o, "attempts", json_integer(e->attempts));
	json_object_set_new(o, "failed_realtime_ns",
			    codec_u64(e->failed_realtime_ns));
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(o);
	return 0;
}

static void show_text(const shmbus_dlq_entry_t *e, const uint8_t *buf)
{
	printf("id          %" PRIu64 "\n", e->id);
	printf("failed at   ");
	print_time(e->failed_realtime_ns);
	printf("\nsubscriber  %s\n", e->subscriber);
	printf("error       %d (%s)\n", e->error, shmbus_strerror(e->error));
	printf("note        %s\n", e->text);
	printf("attempts    %u\n", e->attempts);
	printf("seq         %" PRIu64 "\n", e->rec.seq);
	printf("origin      %" PRIu64 "\n", e->rec.origin);
	printf("key         %" PRIu64 "\n", e->rec.key);
	printf("producer    %u\n", e->rec.producer);
	printf("length      %u\n", e->rec.len);
	for (uint32_t off = 0; off < e->rec.len; off += 16) {
		printf("%08x ", off);
		for (uint32_t i = off; i < off + 16; i++)
			if (i < e->rec.len)
				printf(" %02x", buf[i]);
			else
				printf("   ");
		printf("  ");
		for (uint32_t i = off; i < off + 16 && i < e->rec.len; i++)
			putchar(isprint(buf[i]) ? buf[i] : '.');
		putchar('\n');
	}
}

static int show(shmbus_channel_t *ch, uint64_t id, bool json)
{
	shmbus_channel_info_t info;
	shmbus_channel_get_info(ch, &info);
	uint8_t *buf = malloc(info.record_size);
	if (buf == NULL)
		return cli_fail("dlq", "out of memory");
	shmbus_dlq_entry_t e;
	int rc = 0;
	if (shmbus_dlq_get(ch, id, &e, buf, info.record_size))
		rc = cli_fail("dlq", shmbus_errmsg());
	else if (json)
		rc = show_json(ch, &e);
	else
		show_text(&e, buf);
	free(buf);
	return rc;
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
	static const struct option opts[] = {
		{"to", required_argument, NULL, 't'},
		{"from", required_argument, NULL, 'F'},
		{"json", no_argument, NULL, 'j'},
		{0}};
	const struct cli_spec spec = {"dlq", "BUS CHANNEL VERB", help, opts,
				      3, 4, on_opt};
	struct dlq_opts o = {0};
	char *pos[4] = {0};
	int npos;
	int rc = cli_parse(&spec, argc, argv, &o, pos, &npos);
	if (rc != CLI_GO)
		return rc;
	const char *verb = pos[2];
	static const char *const verbs[] = {"list", "show", "replay", "purge"};
	bool known = false;
	for (size_t i = 0; i < 4; i++)
		known |= !strcmp(verb, verbs[i]);
	if (!known)
		return cli_usage_error("dlq", "unknown verb '%s'", verb);
	bool needs_id = strcmp(verb, "list") != 0;
	uint64_t id = 0;
	bool all = needs_id && pos[3] && !strcmp(pos[3], "all");
	if (needs_id && !pos[3])
		return cli_usage_error("dlq", "which entry? give its ID (see "
					      "`list`)");
	if (needs_id && !all &&
	    (rc = cli_u64("dlq", "ID", pos[3], 0, UINT64_MAX, &id)))
		return rc;
	shmbus_t *bus;
	shmbus_channel_t *ch;
	if (cli_open("dlq", pos[0], pos[1], &bus, &ch))
		return CLI_ERR;
	if (!strcmp(verb, "list")) {
		rc = list(ch, o.from);
	} else if (!strcmp(verb, "show")) {
		rc = show(ch, id, o.json);
	} else if (!strcmp(verb, "replay")) {
		rc = replay(ch, id, o.to);
	} else {
		int n = shmbus_dlq_purge(ch, all ? SHMBUS_DLQ_ALL : id);
		rc = n < 0 ? cli_fail("dlq", shmbus_errmsg()) : 0;
		if (n >= 0)
			printf("purged %d\n", n);
	}
	shmbus_close(bus);
	return rc;
}
