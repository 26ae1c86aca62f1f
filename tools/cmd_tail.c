/*
 * shmbus tail BUS CHANNEL: a channel's records as JSON lines, read by a spy
 * (shmbus_spy_*), never by a subscriber: a subscriber's row gates
 * back-pressure channels, so a stopped `tail` would stop the producers. A
 * spy gates nobody; when the producers lap it, it skips to the oldest
 * record still intact and says how many it missed.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "codec.h"

static const char help[] =
	"usage: shmbus tail BUS CHANNEL [--from-start] [--count N] [--follow]\n"
	"\n"
	"Prints records of CHANNEL as JSON lines, decoded by its schema:\n"
	"  {\"seq\":..,\"key\":..,\"origin\":..,\"timestamp_ns\":..,"
	"\"producer\":..,\n   \"record\":{\"field\":value,..}}\n"
	"(without a schema, \"hex\" holds the payload; a hole left by a dead\n"
	"producer is {\"seq\":..,\"tombstone\":true}). It never gates the\n"
	"producers: lapped, it skips to the oldest record still in the ring\n"
	"and says on stderr how many it missed.\n\n"
	"  --from-start   begin at the oldest record still in the ring\n"
	"  --follow       wait for new records until Ctrl-C (without\n"
	"                 --from-start: only new ones)\n"
	"  --count N      stop after N records\n\n"
	"Without --from-start or --follow, it prints the last N records\n"
	"(default 10); without --follow, it stops at the records published\n"
	"when it started.\n";

struct tail {
	bool from_start, follow;
	uint64_t count; /* 0: no limit */
	uint64_t skip_below, end; /* not before, and (unless follow) not at
				   * or after these sequences */
	uint64_t printed, missed;
};

static int on_opt(int key, const char *arg, void *ctx)
{
	struct tail *t = ctx;
	if (key == 's')
		t->from_start = true;
	else if (key == 'f')
		t->follow = true;
	else
		return cli_u64("tail", "--count", arg, 1, UINT64_MAX,
			       &t->count);
	return 0;
}

static void print(const struct codec *codec, const shmbus_record_t *r)
{
	json_t *line = r->flags & SHMBUS_REC_TOMBSTONE
			       ? json_pack("{s:o, s:b}", "seq",
					   codec_u64(r->seq), "tombstone", 1)
			       : codec_record(codec, r);
	if (line) {
		json_dumpf(line, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(line);
	}
}

/* Where to start and stop, from the claim when tail began. */
static void plan(struct tail *t, shmbus_channel_t *ch)
{
	shmbus_channel_info_t info;
	shmbus_channel_get_info(ch, &info);
	t->end = info.claimed;
	if (!t->from_start && !t->follow) { /* the last N */
		uint64_t n = t->count ? t->count : 10;
		t->skip_below = info.claimed > n ? info.claimed - n : 0;
	}
}

/* Nothing published yet at the spy: keep waiting? Without --follow only
 * for a moment, for a claim that was open when tail began. */
static bool wait_more(const struct tail *t, uint64_t seq, int *idle)
{
	if (cli_stopping() || (!t->follow && (seq >= t->end || *idle > 100)))
		return false;
	cli_sleep(*idle < 5 ? 0.0002 * (1 << *idle) : 0.005);
	(*idle)++;
	return true;
}

static void lapped(struct tail *t, uint64_t missed)
{
	t->missed += missed;
	fprintf(stderr, "shmbus tail: lapped by the producers: missed %llu "
			"records (%llu in all)\n",
		(unsigned long long)missed, (unsigned long long)t->missed);
}

static int run(struct tail *t, shmbus_channel_t *ch, const struct codec *c)
{
	shmbus_spy_t *sp;
	if (shmbus_spy_open(ch, t->from_start || !t->follow, &sp))
		return cli_fail("tail", shmbus_errmsg());
	plan(t, ch);
	uint8_t *buf = malloc(c->record_size);
	shmbus_record_t r;
	int idle = 0, rc = 0;
	uint64_t seq = t->skip_below;
	/* a stop is checked on every turn, not only when idle: a ring that
	 * never runs dry, or laps us on each call, must not hold tail */
	while (buf && !cli_stopping() && (!t->count || t->printed < t->count)) {
		uint64_t missed = 0;
		rc = shmbus_spy_next(sp, &r, buf, c->record_size, &missed);
		if (rc == SHMBUS_ELAPPED) {
			lapped(t, missed);
		} else if (rc == SHMBUS_EAGAIN) {
			if (!wait_more(t, seq, &idle))
				break;
		} else if (rc) {
			break;
		} else if ((seq = r.seq + 1) > t->end && !t->follow) {
			break; /* published after tail began */
		} else if (r.seq >= t->skip_below) {
			idle = 0;
			print(c, &r);
			t->printed++;
		}
	}
	shmbus_spy_close(sp);
	free(buf);
	if (buf == NULL)
		return cli_fail("tail", "out of memory");
	if (rc == SHMBUS_ECORRUPT)
		return cli_fail("tail", shmbus_errmsg());
	return rc && rc != SHMBUS_EAGAIN && rc != SHMBUS_ELAPPED
		       ? cli_failf("tail", "%s", shmbus_strerror(rc))
		       : CLI_OK;
}

int cmd_tail(int argc, char **argv)
{
	static const struct option opts[] = {
		{"from-start", no_argument, NULL, 's'},
		{"count", required_argument, NULL, 'n'},
		{"follow", no_argument, NULL, 'f'},
		{0}};
	const struct cli_spec spec = {"tail", "BUS CHANNEL", help, opts, 2, 2,
				      on_opt};
	struct tail t = {0};
	char *pos[2];
	int npos;
	int rc = cli_parse(&spec, argc, argv, &t, pos, &npos);
	if (rc != CLI_GO)
		return rc;
	shmbus_t *bus;
	shmbus_channel_t *ch;
	struct codec codec;
	if (cli_open("tail", pos[0], pos[1], &bus, &ch))
		return CLI_ERR;
	if (codec_open(&codec, ch)) {
		rc = cli_fail("tail", shmbus_errmsg());
	} else {
		cli_catch_stop();
		if (t.follow)
			setvbuf(stdout, NULL, _IOLBF, 0); /* for pipes */
		rc = run(&t, ch, &codec);
	}
	shmbus_close(bus);
	return rc;
}
