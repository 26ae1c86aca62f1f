/*
 * shmbus journal info|dump|verify|replay|accept-loss DIR ...: a journal
 * directory (include/shmbus/journal.h), through a read-only handle, which
 * may run next to the writer and never changes a file -- but for
 * accept-loss, which opens the writer. This file dispatches the verbs,
 * parses the options they share and does info, verify and accept-loss;
 * journal_dump.c reads records out (dump, replay).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "fmt.h"
#include "cmd_journal.h"

static const char help[] =
	"usage: shmbus journal info DIR [--json]\n"
	"       shmbus journal dump DIR [QUERY] [--count N] [--follow]\n"
	"                          [--skip-corrupt] [--bus BUS --channel "
	"NAME]\n"
	"       shmbus journal verify DIR\n"
	"       shmbus journal replay DIR BUS CHANNEL [QUERY] "
	"[--skip-corrupt]\n"
	"       shmbus journal accept-loss DIR [FROM]\n"
	"\n"
	"A journal directory, as shmbus_journal_open or a journaler made it,\n"
	"read without changing anything, also while its writer runs (but\n"
	"accept-loss, which writes).\n"
	"QUERY is any of --from SEQ, --to SEQ (exclusive), --since NS (the\n"
	"bus clock) and --key K. `shmbus journal VERB --help` says more.\n";

static const char info_help[] =
	"usage: shmbus journal info DIR [--json]\n"
	"\n"
	"The journal in DIR: the channel it was written from (its newest\n"
	"segment's header), its segments and their size on disk, the first\n"
	"sequence kept, the end (the last appended + 1) and how far syncs\n"
	"have reached, what a writer's open would cut from the unsealed\n"
	"tail (a torn or corrupt record and any records after it), and the\n"
	"damage found: segments missing (the sequences lost), segment files\n"
	"that fail their checks, seal blocks that fail their CRC, a missing\n"
	"journal.ctl. `shmbus journal verify` also checks every record.\n\n"
	"  --json   one JSON document\n";

static const char dump_help[] =
	"usage: shmbus journal dump DIR [--from SEQ] [--to SEQ] [--since NS]\n"
	"                          [--key K] [--count N] [--follow]\n"
	"                          [--skip-corrupt] [--bus BUS --channel "
	"NAME]\n"
	"\n"
	"Prints records as JSON lines, in sequence order:\n"
	"  {\"seq\":..,\"key\":..,\"origin\":..,\"timestamp_ns\":..,"
	"\"producer\":..,\n"
	"   \"type\":..,\"flags\":..,\"len\":..,\"hex\":\"..\"}\n"
	"With --bus and --channel, \"record\" holds the payload decoded by "
	"that\n"
	"channel's schema, as `shmbus tail` prints it (and `shmbus pub` reads\n"
	"such a line).\n\n"
	"  --from SEQ       begin at sequence SEQ\n"
	"  --to SEQ         stop before sequence SEQ\n"
	"  --since NS       begin at the first record stamped NS or later\n"
	"                   (the bus clock, as timestamp_ns)\n"
	"  --key K          only the records of key K (the key index)\n"
	"  --count N        stop after N records\n"
	"  --follow         then wait for new records until Ctrl-C\n"
	"  --skip-corrupt   report a corrupt record on stderr and go on\n"
	"                   (default: stop there, exit status 1)\n"
	"  --bus BUS        with --channel: decode by that channel's schema\n"
	"  --channel NAME\n";

static const char verify_help[] =
	"usage: shmbus journal verify DIR\n"
	"\n"
	"Reads every record of every segment, checking its frame and CRC, and\n"
	"prints each corrupt record (segment, byte offset, why), then the\n"
	"records and segments checked. A corrupt record in the unsealed tail\n"
	"is the one a writer's open would cut there. Damage beyond records is\n"
	"printed too: segments missing (the sequences lost), segment files\n"
	"that fail their checks (the sequences that cannot be read), seal\n"
	"blocks that fail their CRC, a missing journal.ctl.\n"
	"Exit status: 0 clean, 1 corrupt records or damage found, 2 unreadable.\n";

static const char replay_help[] =
	"usage: shmbus journal replay DIR BUS CHANNEL [--from SEQ] [--to SEQ]\n"
	"                             [--since NS] [--key K] [--skip-corrupt]\n"
	"\n"
	"Publishes a query's records (all, without one) into CHANNEL of the\n"
	"live bus BUS, in sequence order, each once, and says how many. They\n"
	"keep their origin, so consumers can de-duplicate. It waits while the\n"
	"ring is full (Ctrl-C stops it). A record longer than the channel's\n"
	"records stops the replay there. Options as `shmbus journal dump`'s;\n"
	"--skip-corrupt counts corrupt records and goes on.\n";

static const char accept_help[] =
	"usage: shmbus journal accept-loss DIR [FROM]\n"
	"\n"
	"Says that sequences lost from the journal in DIR are known to be\n"
	"gone, for good: reads, verify and info no longer report them. It\n"
	"opens the writer with SHMBUS_JOURNAL_ACCEPT_LOSS (stop the journaler\n"
	"first) -- what the open then lets through is printed -- and\n"
	"acknowledges the lost range that begins at FROM (`info` lists each\n"
	"from its first sequence), or without FROM the sequences missing\n"
	"before the first segment file: the journal then starts after them.\n"
	"A file of another journal is not acknowledged: move it out of DIR.\n"
	"What is still reported is printed.\n"
	"Exit status: 0 nothing left to report, 1 damage left, 2 failed.\n";

/* A number option: its value, checked, where it goes. */
static int number(struct jopts *o, int key, const char *arg)
{
	if (key == 'F')
		return cli_u64(o->cmd, "--from", arg, 0, UINT64_MAX,
			       &o->q.from_seq);
	if (key == 'T')
		return cli_u64(o->cmd, "--to", arg, 1, UINT64_MAX,
			       &o->q.to_seq);
	if (key == 's') {
		o->q.flags |= SHMBUS_JOURNAL_BY_TIME;
		return cli_u64(o->cmd, "--since", arg, 0, UINT64_MAX,
			       &o->q.from_time);
	}
	if (key == 'k') {
		o->q.flags |= SHMBUS_JOURNAL_BY_KEY;
		return cli_u64(o->cmd, "--key", arg, 0, UINT64_MAX, &o->q.key);
	}
	return cli_u64(o->cmd, "--count", arg, 1, UINT64_MAX, &o->count);
}

static int on_opt(int key, const char *arg, void *ctx)
{
	struct jopts *o = ctx;
	if (key == 'j')
		o->json = true;
	else if (key == 'f')
		o->follow = true;
	else if (key == 'c')
		o->skip_corrupt = true;
	else if (key == 'b')
		o->bus = arg;
	else if (key == 'C')
		o->channel = arg;
	else
		return number(o, key, arg);
	return 0;
}

#define QUERY_OPTS                                                             \
	{"from", required_argument, NULL, 'F'},                                \
		{"to", required_argument, NULL, 'T'},                          \
		{"since", required_argument, NULL, 's'},                       \
		{"key", required_argument, NULL, 'k'},                         \
		{"skip-corrupt", no_argument, NULL, 'c'}

static const struct option info_opts[] = {
	{"json", no_argument, NULL, 'j'}, {0}};
static const struct option dump_opts[] = {
	QUERY_OPTS,
	{"count", required_argument, NULL, 'n'},
	{"follow", no_argument, NULL, 'f'},
	{"bus", required_argument, NULL, 'b'},
	{"channel", required_argument, NULL, 'C'},
	{0}};
static const struct option replay_opts[] = {QUERY_OPTS, {0}};

static const struct verb {
	const char *name, *args, *help;
	const struct option *opts;
	int npos, more; /* positional arguments, and optional ones after */
	int (*run)(const struct jopts *o, char **pos);
} verbs[] = {
	{"info", "DIR", info_help, info_opts, 1, 0, journal_info},
	{"dump", "DIR", dump_help, dump_opts, 1, 0, journal_dump},
	{"verify", "DIR", verify_help, NULL, 1, 0, journal_verify},
	{"replay", "DIR BUS CHANNEL", replay_help, replay_opts, 3, 0,
	 journal_replay},
	{"accept-loss", "DIR [FROM]", accept_help, NULL, 1, 1,
	 journal_accept_loss},
};

/* After the command line parsed: what the options say together. */
static int check(const struct jopts *o)
{
	if (o->q.to_seq && o->q.from_seq >= o->q.to_seq)
		return cli_usage_error(o->cmd, "--from %llu is not below --to "
					       "%llu: nothing to read",
				       (unsigned long long)o->q.from_seq,
				       (unsigned long long)o->q.to_seq);
	if (!o->bus != !o->channel)
		return cli_usage_error(o->cmd, "--bus and --channel go "
					       "together");
	return 0;
}

int cmd_journal(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("journal", "expects VERB DIR: info, "
						  "dump, verify, replay or "
						  "accept-loss");
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
		fputs(help, stdout);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		const struct verb *v = &verbs[i];
		if (strcmp(name, v->name))
			continue;
		char cmd[32];
		snprintf(cmd, sizeof(cmd), "journal %s", v->name);
		struct jopts o = {.cmd = cmd};
		const struct cli_spec spec = {
			cmd,	 v->args,		v->help, v->opts,
			v->npos, v->npos + v->more, on_opt};
		char *pos[3] = {NULL}; /* an optional one not given: NULL */
		int npos;
		int rc = cli_parse(&spec, argc - 1, argv + 1, &o, pos, &npos);
		if (rc != CLI_GO)
			return rc;
		return check(&o) ? CLI_USAGE : v->run(&o, pos);
	}
	if (name[0] == '-')
		return cli_usage_error("journal", "unknown option '%s'", name);
	return cli_usage_error("journal", "unknown verb '%s': info, dump, "
					  "verify, replay or accept-loss",
			       name);
}

/* ------------------------------------------------------------- opening */

int jcli_open(const char *cmd, const char *dir, shmbus_journal_t **j)
{
	shmbus_journal_opts_t jo = {.flags = SHMBUS_JOURNAL_READONLY};
	int rc = shmbus_journal_open(dir, &jo, j);
	if (rc == 0)
		return 0;
	const char *hint = NULL;
	if (rc == SHMBUS_ENOENT)
		hint = "give the directory a journal was made in (it holds "
		       "journal.ctl and the *.seg files)";
	else if (rc == SHMBUS_EPERM)
		hint = "run as the journal's owner";
	else if (rc == SHMBUS_ECORRUPT || rc == SHMBUS_EVERSION)
		hint = "the file named is damaged or of another version; "
		       "docs/journal.md says what each check means";
	fprintf(stderr, "shmbus %s: %s%s%s\n", cmd, shmbus_errmsg(),
		hint ? "; " : "", hint ? hint : "");
	return CLI_ERR;
}

/* ---------------------------------------------------------------- info */

struct info {
	const char *dir;
	shmbus_journal_t *j; /* for its damage */
	shmbus_journal_info_t ji;
	shmbus_journal_stats_t st;
	shmbus_journal_recovery_t rec;
};

static uint32_t damage_count(shmbus_journal_t *j)
{
	shmbus_journal_damage_t d;
	uint32_t n = 0;
	while (shmbus_journal_get_damage(j, n, &d))
		n++;
	return n;
}

static void damage_text(const struct info *in)
{
	shmbus_journal_damage_t d;
	uint32_t n = damage_count(in->j);
	if (n == 0) {
		printf("damage     none found\n");
		return;
	}
	printf("damage     %u found (reads stop at a range that cannot be "
	       "read):\n",
	       n);
	for (uint32_t i = 0; shmbus_journal_get_damage(in->j, i, &d); i++)
		fmt_wrap(stdout, 11, d.text, 80);
}

static void info_text(const struct info *in)
{
	char a[FMT_LEN], b[FMT_LEN], name[SHMBUS_NAME_MAX + 1], text[512];
	printf("journal    %s\n", in->dir);
	if (in->ji.channel[0])
		printf("channel    %s (id %u)\n",
		       fmt_name(name, in->ji.channel, SHMBUS_NAME_MAX),
		       in->ji.channel_id);
	else
		printf("channel    - (none named)\n");
	printf("segments   %llu of %s each, %s on disk\n",
	       (unsigned long long)in->st.segments,
	       fmt_bytes(a, in->ji.segment_size), fmt_bytes(b, in->st.bytes));
	printf("sequences  first %llu, end %llu, synced to %llu\n",
	       (unsigned long long)in->st.first_seq,
	       (unsigned long long)in->st.end_seq,
	       (unsigned long long)in->st.synced_seq);
	damage_text(in);
	if (in->rec.cut_records == 0) {
		printf("recovery   nothing to cut\n");
		return;
	}
	printf("recovery   a writer's open would cut the unsealed tail:\n");
	snprintf(text, sizeof(text), "%llu records (%s) at offset %llu of "
				     "segment %llu",
		 (unsigned long long)in->rec.cut_records,
		 fmt_bytes(a, in->rec.bytes),
		 (unsigned long long)in->rec.offset,
		 (unsigned long long)in->rec.segment);
	fmt_wrap(stdout, 11, text, 80);
	fmt_wrap(stdout, 11, in->rec.reason, 80);
}

/* A damage's text as JSON: the library cuts it at its buffer's size,
 * maybe inside a character (a directory's name in UTF-8): cut before
 * that character; bytes that are not UTF-8 at all become '?'. */
static json_t *text_json(const char *text)
{
	char buf[sizeof(((shmbus_journal_damage_t *)0)->text)];
	snprintf(buf, sizeof(buf), "%s", text);
	json_t *v = json_string(buf);
	size_t n = strlen(buf), k = n;
	/* the last character's lead byte, up to 3 continuation bytes back */
	while (v == NULL && k > 0 && n - k < 4 &&
	       ((unsigned char)buf[k - 1] & 0xc0) == 0x80)
		k--;
	if (v == NULL && k > 0 && (unsigned char)buf[k - 1] >= 0xc0) {
		buf[k - 1] = '\0';
		v = json_string(buf);
	}
	if (v == NULL) {
		char safe[sizeof(buf)];
		v = json_string(fmt_name(safe, text, sizeof(safe) - 1));
	}
	return v;
}

static int info_json(const struct info *in)
{
	const shmbus_journal_recovery_t *r = &in->rec;
	json_t *doc = json_pack(
		"{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "dir",
		in->dir, "channel",
		in->ji.channel[0] ? json_string(in->ji.channel) : json_null(),
		"channel_id",
		in->ji.channel[0] ? json_integer(in->ji.channel_id)
				  : json_null(),
		"segment_size", codec_u64(in->ji.segment_size),
		"segments", codec_u64(in->st.segments), "bytes",
		codec_u64(in->st.bytes), "first_seq",
		codec_u64(in->st.first_seq), "end_seq",
		codec_u64(in->st.end_seq), "synced_seq",
		codec_u64(in->st.synced_seq));
	/* reason: null when there is nothing to cut, as elsewhere */
	json_t *rec = json_pack("{s:o, s:o, s:o, s:o, s:o}", "cut_records",
				codec_u64(r->cut_records), "segment",
				codec_u64(r->segment), "offset",
				codec_u64(r->offset), "bytes",
				codec_u64(r->bytes), "reason",
				r->reason[0] ? json_string(r->reason)
					     : json_null());
	if (doc == NULL || rec == NULL) {
		json_decref(doc);
		json_decref(rec);
		return cli_fail("journal info", "out of memory, or a name "
						"that is not UTF-8");
	}
	json_object_set_new(doc, "recovery", rec);
	json_t *dmg = json_array();
	shmbus_journal_damage_t d;
	static const char *const kinds[] = {"unknown", "missing", "unreadable",
					    "seal", "control"};
	for (uint32_t i = 0;
	     dmg && shmbus_journal_get_damage(in->j, i, &d); i++) {
		bool range = d.kind == SHMBUS_JOURNAL_DAMAGE_MISSING ||
			     d.kind == SHMBUS_JOURNAL_DAMAGE_UNREADABLE;
		json_array_append_new(
			dmg,
			json_pack("{s:s, s:o, s:o, s:o, s:o}", "kind",
				  kinds[d.kind < 5 ? d.kind : 0], "from",
				  range ? codec_u64(d.from) : json_null(),
				  "to",
				  range && d.to != UINT64_MAX
					  ? codec_u64(d.to)
					  : json_null(),
				  "segment",
				  d.segment != UINT64_MAX ? codec_u64(d.segment)
							  : json_null(),
				  "text", text_json(d.text)));
	}
	json_object_set_new(doc, "damage", dmg ? dmg : json_null());
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(doc);
	return 0;
}

int journal_info(const struct jopts *o, char **pos)
{
	shmbus_journal_t *j;
	if (jcli_open(o->cmd, pos[0], &j))
		return CLI_ERR;
	struct info in = {.dir = pos[0], .j = j};
	shmbus_journal_get_info(j, &in.ji);
	shmbus_journal_get_stats(j, &in.st);
	shmbus_journal_get_recovery(j, &in.rec);
	int rc = 0;
	if (o->json)
		rc = info_json(&in);
	else
		info_text(&in);
	shmbus_journal_close(j);
	return rc;
}

/* -------------------------------------------------------------- verify */

/*
 * shmbus_journal_verify's loop (every record of every segment through an
 * iterator, which resumes after each corrupt record where that is safe),
 * done here because that call returns only a count and describes only the
 * first: verify prints each one and the records checked. A read-only
 * handle stops silently at a bad frame of the unsealed tail; its recovery
 * report says where, so that is added, and so is the damage the listing
 * found (the lost ranges among it the iterator met too: said once).
 */
int journal_verify(const struct jopts *o, char **pos)
{
	shmbus_journal_t *j;
	shmbus_journal_iter_t *it = NULL;
	shmbus_journal_entry_t e;
	if (jcli_open(o->cmd, pos[0], &j))
		return 2;
	uint64_t records = 0, bad = 0, damaged = 0;
	shmbus_journal_damage_t d;
	shmbus_journal_recovery_t r;
	shmbus_journal_get_recovery(j, &r);
	bool seen = false; /* the report's record, met by the reads */
	int rc = shmbus_journal_iter_open(j, NULL, &it);
	while (rc == 0 && (rc = shmbus_journal_iter_next(it, &e)) != 0) {
		if (rc == SHMBUS_ECORRUPT && e.offset == 0) {
			; /* a lost range: in the damage, below */
		} else if (rc == SHMBUS_ECORRUPT) {
			bad++;
			seen |= e.segment == r.segment && e.offset == r.offset;
			printf("corrupt: segment %llu, offset %llu: %s\n",
			       (unsigned long long)e.segment,
			       (unsigned long long)e.offset, shmbus_errmsg());
		} else if (rc < 0) {
			break;
		} else {
			records++;
		}
		rc = 0;
	}
	if (it)
		shmbus_journal_iter_close(it);
	if (rc < 0) {
		cli_fail(o->cmd, shmbus_errmsg());
		shmbus_journal_close(j);
		return 2;
	}
	for (; shmbus_journal_get_damage(j, (uint32_t)damaged, &d); damaged++)
		printf("damaged: %s\n", d.text);
	if (r.cut_records && !seen) {
		bad++;
		printf("corrupt: segment %llu, offset %llu: %s (the unsealed "
		       "tail: a writer's open would cut %llu records there)\n",
		       (unsigned long long)r.segment,
		       (unsigned long long)r.offset, r.reason,
		       (unsigned long long)r.cut_records);
	}
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	printf("checked %llu records in %llu segments: ",
	       (unsigned long long)records, (unsigned long long)st.segments);
	if (bad)
		printf("%llu corrupt%s", (unsigned long long)bad,
		       damaged ? ", " : "\n");
	if (damaged)
		printf("%llu damaged\n", (unsigned long long)damaged);
	if (!bad && !damaged)
		printf("clean\n");
	shmbus_journal_close(j);
	return bad || damaged ? 1 : 0;
}

/* --------------------------------------------------------- accept-loss */

/* The range [from, to) acknowledged: at FROM, or the loss at the head. */
static int acknowledge(const struct jopts *o, shmbus_journal_t *j,
		       const char *at)
{
	uint64_t from = 0, to = 0;
	if (at && cli_u64(o->cmd, "FROM", at, 0, UINT64_MAX - 1, &from))
		return -1;
	int rc = at ? shmbus_journal_accept_range(j, from, &to)
		    : shmbus_journal_accept_loss(j, &from, &to);
	if (rc < 0) {
		fprintf(stderr, "shmbus %s: %s\n", o->cmd, shmbus_errmsg());
		return -1;
	}
	if (rc && at)
		printf("acknowledged: sequences %llu to %llu are gone; reads, "
		       "verify and info no longer report them\n",
		       (unsigned long long)from, (unsigned long long)to - 1);
	else if (rc)
		printf("acknowledged: sequences %llu to %llu are gone; the "
		       "journal starts at %llu\n",
		       (unsigned long long)from, (unsigned long long)to - 1,
		       (unsigned long long)to);
	else
		printf("acknowledged: nothing (no loss before the first "
		       "segment file)\n");
	return 0;
}

/* The writer opened with SHMBUS_JOURNAL_ACCEPT_LOSS; a loss acknowledged
 * (pos[1], or the one at the head); what is still reported, listed. */
int journal_accept_loss(const struct jopts *o, char **pos)
{
	shmbus_journal_opts_t jo = {.flags = SHMBUS_JOURNAL_ACCEPT_LOSS};
	shmbus_journal_t *j;
	int rc = shmbus_journal_open(pos[0], &jo, &j);
	if (rc == SHMBUS_EBUSY) {
		fprintf(stderr, "shmbus %s: %s; stop its writer (the "
				"journaler) and run this again\n",
			o->cmd, shmbus_errmsg());
		return 2;
	}
	if (rc) {
		fprintf(stderr, "shmbus %s: %s\n", o->cmd, shmbus_errmsg());
		return 2;
	}
	shmbus_journal_recovery_t r;
	shmbus_journal_get_recovery(j, &r);
	if (r.reason[0])
		printf("opened: %s\n", r.reason);
	if (acknowledge(o, j, pos[1])) {
		shmbus_journal_close(j);
		return 2;
	}
	uint32_t left = damage_count(j);
	shmbus_journal_damage_t d;
	for (uint32_t i = 0; shmbus_journal_get_damage(j, i, &d); i++)
		printf("still reported: %s\n", d.text);
	if (left)
		printf("acknowledge each with `shmbus %s %s FROM` (its first "
		       "sequence), once you know it is gone; or restore the "
		       "files\n",
		       o->cmd, pos[0]);
	if (shmbus_journal_close(j)) {
		fprintf(stderr, "shmbus %s: %s\n", o->cmd, shmbus_errmsg());
		return 2;
	}
	return left ? 1 : 0;
}
