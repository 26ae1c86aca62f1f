/*
 * shmbus pub BUS CHANNEL [RECORD...]: publish records given as JSON (by the
 * channel's schema) or hex, from the arguments or one a line from standard
 * input. Arguments are all parsed before the first is published, so a bad
 * one publishes nothing; from input, a bad line (a NUL byte in it too)
 * stops there, as does a stop signal, after the lines before it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"

static const char help[] =
	"usage: shmbus pub BUS CHANNEL [RECORD...] [--hex] [--key K]\n"
	"                  [--timeout MS]\n\n"
	"Publishes records to CHANNEL: one per RECORD argument or, without\n"
	"any, one per line of standard input (empty lines are skipped).\n"
	"Arguments are all checked before the first is published; from\n"
	"input, a bad line (one with a NUL byte too) stops there, after the\n"
	"lines before it.\n"
	"A record is a JSON object of the schema's fields, for example\n"
	"  {\"id\": 7, \"px\": 101.25, \"sym\": \"ACME\", \"side\": \"SELL\"}\n"
	"(fields left out are 0; enums by name or number; bytes in hex;\n"
	"64-bit integers beyond 2^53 may be decimal strings), or a line of\n"
	"`shmbus tail` output, whose \"record\" and \"key\" are used.\n"
	"With --hex, or on a channel without a schema, a record is its bytes\n"
	"in hex, at most the record size: the length published is the\n"
	"bytes given.\n\n"
	"  --hex          records in hex\n"
	"  --key K        the records' key (default 0, or a tail line's)\n"
	"  --timeout MS   give up when the ring stays full this long\n"
	"                 (default 5000; 0 waits for ever)\n\n"
	"A single-producer channel whose producer is alive refuses a second\n"
	"one (EBUSY): publish from that process, or use a multi-producer\n"
	"channel.\n";

struct pub {
	const char *bus, *channel;
	bool hex, have_key;
	bool compact; /* SHMBUS_CH_COMPACT: its records carry no key */
	uint64_t key, timeout_ms;
	struct codec codec;
	shmbus_producer_t *p;
	uint8_t *buf;
	uint64_t done, first_seq, last_seq;
};

static int on_opt(int key, const char *arg, void *ctx)
{
	struct pub *ps = ctx;
	if (key == 'x') {
		ps->hex = true;
		return 0;
	}
	if (key == 'k') {
		ps->have_key = true;
		return cli_u64("pub", "--key", arg, 0, UINT64_MAX, &ps->key);
	}
	return cli_u64("pub", "--timeout", arg, 0, 86400000, &ps->timeout_ms);
}

/* A JSON record (or a tail line) into ps->buf; its key in *key. */
static int from_json(struct pub *ps, const char *text, uint64_t *key,
		     char *err, size_t n)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		snprintf(err, n, "not JSON: %s at column %d%s", je.text,
			 je.column,
			 strstr(je.text, "too big")
				 ? " (give integers beyond 2^63 as strings)"
				 : "");
		return -1;
	}
	json_t *rec = json_object_get(j, "record"), *k;
	if (json_is_object(rec)) { /* a line of shmbus tail */
		k = json_object_get(j, "key");
		if (!ps->have_key && json_is_integer(k))
			*key = (uint64_t)json_integer_value(k);
		else if (!ps->have_key && json_is_string(k)) /* beyond 2^53 */
			*key = strtoull(json_string_value(k), NULL, 10);
	} else {
		rec = j;
	}
	int rc = codec_encode(&ps->codec, rec, ps->buf, err, n);
	json_decref(j);
	return rc;
}

/* One record's text into ps->buf: its length, or -1 with err set. */
static int parse(struct pub *ps, const char *text, uint64_t *key, char *err,
		 size_t n)
{
	size_t len;
	*key = ps->key;
	if (ps->hex) {
		if (hex_decode(text, ps->buf, ps->codec.record_size, &len) ||
		    len == 0) {
			snprintf(err, n, "wants 1 to %u bytes in hex digits",
				 ps->codec.record_size);
			return -1;
		}
		return (int)len;
	}
	if (ps->codec.n == 0) {
		snprintf(err, n, "channel '%s' has no schema: give records in "
				 "hex (--hex)",
			 ps->channel);
		return -1;
	}
	return from_json(ps, text, key, err, n) ? -1
						: (int)ps->codec.record_size;
}

/* Why the ring stays full: the subscriber furthest behind. */
static int full(struct pub *ps, shmbus_channel_t *ch)
{
	shmbus_sub_info_t subs[64];
	int n = shmbus_sub_list(ch, subs, 64), worst = -1;
	for (int i = 0; i < n; i++)
		if (worst < 0 || subs[i].lag > subs[worst].lag)
			worst = i;
	if (worst < 0)
		return cli_failf("pub", "the ring stayed full for %llu ms",
				 (unsigned long long)ps->timeout_ms);
	return cli_failf("pub", "the ring stayed full for %llu ms: "
				"subscriber '%s' is %llu records behind%s "
				"(see `shmbus stat %s`)",
			 (unsigned long long)ps->timeout_ms, subs[worst].name,
			 (unsigned long long)subs[worst].lag,
			 subs[worst].live ? "" : " and no process holds it",
			 ps->bus);
}

/* Publish ps->buf (len bytes) by claim and commit, to learn its sequence;
 * waits while the ring is full, up to the time-out. */
static int put(struct pub *ps, shmbus_channel_t *ch, uint32_t len,
	       uint64_t key)
{
	/* refused before the claim: a claimed slot must be committed */
	if (key && ps->compact)
		return cli_failf("pub", "channel '%s' is compact: its records "
					"carry no key, and this record has key "
					"%llu; publish it with key 0 "
					"(--key 0)",
				 ps->channel, (unsigned long long)key);
	shmbus_claim_t c;
	uint64_t deadline = shmbus_now_ns() + ps->timeout_ms * 1000000ull;
	int rc;
	while ((rc = shmbus_try_claim(ps->p, 1, &c)) == SHMBUS_EAGAIN) {
		if (cli_stopping())
			return cli_fail("pub", "interrupted while the ring was "
					       "full");
		if (ps->timeout_ms && shmbus_now_ns() >= deadline)
			return full(ps, ch);
		cli_sleep(0.0002);
	}
	if (rc)
		return cli_failf("pub", "claim: %s", shmbus_strerror(rc));
	/* relaxed words, as shmbus_publish writes: a spy may read it */
	shmbus_claim_write(ps->p, &c, 0, ps->buf, len, key);
	shmbus_commit(ps->p, &c);
	if (ps->done++ == 0)
		ps->first_seq = c.seq;
	ps->last_seq = c.seq;
	return 0;
}

static int one(struct pub *ps, shmbus_channel_t *ch, const char *text,
	       const char *where)
{
	char err[512];
	uint64_t key;
	int len = parse(ps, text, &key, err, sizeof(err));
	if (len < 0)
		return cli_failf("pub", "%s: %s", where, err);
	return put(ps, ch, (uint32_t)len, key);
}

static int from_args(struct pub *ps, shmbus_channel_t *ch, char **recs,
		     int n)
{
	char err[512], where[32];
	uint64_t key;
	for (int i = 0; i < n; i++) /* all or nothing */
		if (parse(ps, recs[i], &key, err, sizeof(err)) < 0)
			return cli_failf("pub", "record %d: %s", i + 1, err);
	for (int i = 0; i < n; i++) {
		snprintf(where, sizeof(where), "record %d", i + 1);
		if (one(ps, ch, recs[i], where))
			return CLI_ERR;
	}
	return 0;
}

/* From input, a bad line stops there: the lines before it are published,
 * it and those after it are not. */
static int bad_line(unsigned long no, const char *why)
{
	return cli_failf("pub", "line %lu: %s; stopped there: the lines "
				"before it are published, it and those after "
				"it are not",
			 no, why);
}

static int from_stdin(struct pub *ps, shmbus_channel_t *ch)
{
	char *line = NULL, err[512];
	size_t cap = 0;
	ssize_t n;
	unsigned long no = 1;
	int rc = 0;
	for (; rc == 0 && !cli_stopping() &&
	       (n = getline(&line, &cap, stdin)) >= 0;
	     no++) {
		if (line[n - 1] != '\n' && ferror(stdin))
			break; /* cut short by a signal or an error: not it */
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (strspn(line, " \t") == (size_t)n)
			continue; /* strspn stops at a NUL: such is not blank */
		/* parsed as text, the line would end at a NUL */
		const char *nul = memchr(line, '\0', (size_t)n);
		uint64_t key;
		int len = -1;
		if (nul)
			snprintf(err, sizeof(err), "a NUL byte at column %zu: "
						   "a record is a line of text",
				 (size_t)(nul - line) + 1);
		else
			len = parse(ps, line, &key, err, sizeof(err));
		rc = len < 0 ? bad_line(no, err)
			     : put(ps, ch, (uint32_t)len, key);
	}
	int e = errno;
	free(line);
	if (rc == 0 && cli_stopping()) /* also a read that EINTR cut */
		rc = cli_failf("pub", "interrupted before line %lu: the "
				      "lines before it are published, none "
				      "after",
			       no);
	else if (rc == 0 && ferror(stdin))
		rc = cli_failf("pub", "reading line %lu of standard input: "
				      "%s; the lines before it are published",
			       no, strerror(e));
	return rc;
}

static int refused(struct pub *ps, shmbus_channel_t *ch)
{
	shmbus_producer_info_t p[1];
	char pid[32] = "";
	if (shmbus_producer_list(ch, p, 1) == 1)
		snprintf(pid, sizeof(pid), " (pid %d)", (int)p[0].pid);
	return cli_failf("pub", "channel '%s' is single-producer and its "
				"producer%s is alive, so a second one is "
				"refused (EBUSY): publish from that process, "
				"or create the channel with "
				"SHMBUS_CH_MULTI_PRODUCER",
			 ps->channel, pid);
}

static int publish(struct pub *ps, shmbus_channel_t *ch, char **recs, int n)
{
	if (codec_open(&ps->codec, ch))
		return cli_fail("pub", shmbus_errmsg());
	ps->buf = malloc(ps->codec.record_size);
	if (ps->buf == NULL)
		return cli_fail("pub", "out of memory");
	shmbus_channel_info_t info;
	if (shmbus_channel_get_info(ch, &info))
		return cli_fail("pub", shmbus_errmsg());
	ps->compact = (info.flags & SHMBUS_CH_COMPACT) != 0;
	int rc = shmbus_producer_open(ch, NULL, &ps->p);
	if (rc == SHMBUS_EBUSY)
		return refused(ps, ch);
	if (rc)
		return cli_fail("pub", shmbus_errmsg());
	cli_catch_stop();
	rc = n ? from_args(ps, ch, recs, n) : from_stdin(ps, ch);
	shmbus_producer_close(ps->p);
	if (ps->done == 1)
		fprintf(stderr, "published 1 record to '%s' (seq %llu)\n",
			ps->channel, (unsigned long long)ps->first_seq);
	else if (ps->done)
		fprintf(stderr, "published %llu records to '%s' (seq %llu to "
				"%llu)\n",
			(unsigned long long)ps->done, ps->channel,
			(unsigned long long)ps->first_seq,
			(unsigned long long)ps->last_seq);
	return rc;
}

int cmd_pub(int argc, char **argv)
{
	static const struct option opts[] = {
		{"hex", no_argument, NULL, 'x'},
		{"key", required_argument, NULL, 'k'},
		{"timeout", required_argument, NULL, 't'},
		{0}};
	const struct cli_spec spec = {"pub", "BUS CHANNEL", help, opts, 2,
				      4096, on_opt};
	struct pub ps = {.timeout_ms = 5000};
	char *pos[4096];
	int npos;
	int rc = cli_parse(&spec, argc, argv, &ps, pos, &npos);
	if (rc != CLI_GO)
		return rc;
	ps.bus = pos[0];
	ps.channel = pos[1];
	shmbus_t *bus;
	shmbus_channel_t *ch;
	if (cli_open("pub", ps.bus, ps.channel, &bus, &ch))
		return CLI_ERR;
	rc = publish(&ps, ch, pos + 2, npos - 2);
	free(ps.buf);
	shmbus_close(bus);
	return rc;
}
