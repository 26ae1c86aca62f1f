/*
 * shmbus journal dump and replay: a query's records out of a journal, as
 * JSON lines (decoded by a live channel's schema, the way `shmbus tail`
 * does, or in hex) or back into a live channel through a producer.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "fmt.h"
#include "cmd_journal.h"

/* ---------------------------------------------------------------- dump */

/* Ranges of sequences that could not be read and were skipped: said. */
static void lost_said(const char *cmd, const shmbus_journal_t *j,
		      const char *dir)
{
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	if (st.lost_ranges)
		fprintf(stderr, "shmbus %s: skipped %llu sequences in %llu "
				"ranges that cannot be read (`shmbus journal "
				"verify %s` lists them)\n",
			cmd, (unsigned long long)st.lost_seqs,
			(unsigned long long)st.lost_ranges, dir);
}

static int print(const struct codec *c, const shmbus_journal_entry_t *e)
{
	json_t *line = codec_header(&e->rec);
	if (line == NULL)
		return -1;
	json_object_set_new(line, "type", json_integer(e->type));
	json_object_set_new(line, "flags", json_integer(e->rec.flags));
	json_object_set_new(line, "len", json_integer(e->rec.len));
	codec_payload(c, line, &e->rec);
	json_dumpf(line, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(line);
	return 0;
}

/* At the end of what is appended: follow the writer? Not past --to, once
 * the writer has gone beyond it (every record below the end is readable,
 * so the iterator has said all it will). */
static bool wait_more(const struct jopts *o, const shmbus_journal_t *j,
		      int *idle)
{
	if (!o->follow || cli_stopping() ||
	    (o->q.to_seq && shmbus_journal_end(j) >= o->q.to_seq))
		return false;
	cli_sleep(*idle < 6 ? 0.0002 * (1 << *idle) : 0.01);
	(*idle)++;
	return true;
}

static int dump(const struct jopts *o, const char *dir, shmbus_journal_t *j,
		const struct codec *c)
{
	shmbus_journal_iter_t *it;
	shmbus_journal_entry_t e;
	if (shmbus_journal_iter_open(j, &o->q, &it))
		return cli_fail(o->cmd, shmbus_errmsg());
	uint64_t printed = 0, bad = 0, gone = 0;
	int idle = 0, rc = 0;
	/* a stop on every turn: a long journal must not hold the dump */
	while (rc == 0 && !cli_stopping() &&
	       (!o->count || printed < o->count)) {
		int r = shmbus_journal_iter_next(it, &e);
		uint64_t sk = shmbus_journal_iter_skipped(it);
		if (sk != gone) { /* we fell behind retention: said */
			fprintf(stderr,
				"shmbus %s: retention removed %llu sequences "
				"before they were read\n",
				o->cmd, (unsigned long long)(sk - gone));
			gone = sk;
		}
		if (r == 1) {
			idle = 0;
			printed++;
			if (print(c, &e))
				rc = cli_fail(o->cmd, "out of memory");
		} else if (r == SHMBUS_ECORRUPT && o->skip_corrupt) {
			bad += e.offset != 0; /* offset 0: a lost range */
			/* the iterator resumes after it */
			fprintf(stderr, "shmbus %s: skipped: %s\n", o->cmd,
				shmbus_errmsg());
		} else if (r == SHMBUS_ECORRUPT) {
			rc = cli_failf(o->cmd, "%s (--skip-corrupt reads past "
					       "it; `shmbus journal verify %s` "
					       "lists every one)",
				       shmbus_errmsg(), dir);
		} else if (r < 0) {
			rc = cli_fail(o->cmd, shmbus_errmsg());
		} else if (!wait_more(o, j, &idle)) {
			break;
		}
	}
	shmbus_journal_iter_close(it);
	if (bad)
		fprintf(stderr, "shmbus %s: skipped %llu corrupt records\n",
			o->cmd, (unsigned long long)bad);
	if (o->skip_corrupt)
		lost_said(o->cmd, j, dir);
	return rc;
}

/* Decoding by one channel's schema a journal of another is allowed (a
 * renamed channel, a copy on another bus), and said. */
static void check_channel(const struct jopts *o, shmbus_journal_t *j)
{
	shmbus_journal_info_t ji;
	char a[SHMBUS_NAME_MAX + 1], b[SHMBUS_NAME_MAX + 1];
	shmbus_journal_get_info(j, &ji);
	if (ji.channel[0] && strcmp(ji.channel, o->channel))
		fprintf(stderr, "shmbus %s: the journal was written from "
				"channel '%s': decoding by the schema of "
				"'%s'\n",
			o->cmd, fmt_name(a, ji.channel, SHMBUS_NAME_MAX),
			fmt_name(b, o->channel, SHMBUS_NAME_MAX));
}

int journal_dump(const struct jopts *o, char **pos)
{
	shmbus_journal_t *j;
	shmbus_t *bus = NULL;
	shmbus_channel_t *ch;
	struct codec codec = {0}; /* no schema: hex */
	if (jcli_open(o->cmd, pos[0], &j))
		return CLI_ERR;
	int rc = 0;
	if (o->bus && cli_open(o->cmd, o->bus, o->channel, &bus, &ch))
		rc = CLI_ERR;
	else if (bus && codec_open(&codec, ch))
		rc = cli_fail(o->cmd, shmbus_errmsg());
	if (rc == 0) {
		if (bus)
			check_channel(o, j);
		cli_catch_stop();
		if (o->follow)
			setvbuf(stdout, NULL, _IOLBF, 0); /* for pipes */
		rc = dump(o, pos[0], j, &codec);
	}
	shmbus_close(bus);
	shmbus_journal_close(j);
	return rc;
}

/* -------------------------------------------------------------- replay */

/* The n-th record (from 0) of a query: where republish stopped. */
static int nth(shmbus_journal_t *j, const shmbus_journal_query_t *q,
	       uint64_t n, shmbus_journal_entry_t *e)
{
	shmbus_journal_iter_t *it;
	int r = shmbus_journal_iter_open(j, q, &it);
	if (r)
		return r;
	while ((r = shmbus_journal_iter_next(it, e)) == 1 && n--)
		;
	shmbus_journal_iter_close(it);
	return r;
}

/* Republish failed after n records: say why, and for a record too long
 * for the channel (the API's SHMBUS_EINVAL), which and by how much. */
static int failed(const struct jopts *o, shmbus_journal_t *j,
		  const shmbus_journal_query_t *q, shmbus_channel_t *ch,
		  const char *channel, uint64_t n)
{
	char why[512];
	shmbus_channel_info_t info;
	shmbus_journal_entry_t e;
	snprintf(why, sizeof(why), "%s", shmbus_errmsg());
	if (shmbus_channel_get_info(ch, &info) == 0 && nth(j, q, n, &e) == 1 &&
	    e.rec.len > info.record_size)
		return cli_failf(o->cmd, "record seq %llu is %u bytes, and "
					 "channel '%s' holds records of at "
					 "most %u bytes: replay into a channel "
					 "whose records hold it (republished "
					 "%llu records before it)",
				 (unsigned long long)e.rec.seq, e.rec.len,
				 channel, info.record_size,
				 (unsigned long long)n);
	return cli_failf(o->cmd, "%s (republished %llu records before it)",
			 why, (unsigned long long)n);
}

static int republish(const struct jopts *o, shmbus_journal_t *j,
		     shmbus_channel_t *ch, char **pos)
{
	shmbus_producer_t *p;
	int rc = shmbus_producer_open(ch, NULL, &p);
	if (rc == SHMBUS_EBUSY)
		return cli_failf(o->cmd, "channel '%s' is single-producer and "
					 "its producer is alive, so a second "
					 "one is refused (EBUSY): replay from "
					 "that process, or into a "
					 "multi-producer channel",
				 pos[2]);
	if (rc)
		return cli_fail(o->cmd, shmbus_errmsg());
	shmbus_journal_query_t q = o->q;
	if (o->skip_corrupt)
		q.flags |= SHMBUS_JOURNAL_SKIP_CORRUPT;
	uint64_t n = 0;
	rc = shmbus_journal_republish(j, &q, p, &n);
	shmbus_producer_close(p);
	if (rc)
		return failed(o, j, &q, ch, pos[2], n);
	printf("republished %llu records from %s to '%s'\n",
	       (unsigned long long)n, pos[0], pos[2]);
	shmbus_journal_stats_t st;
	shmbus_journal_get_stats(j, &st);
	if (st.corrupt)
		fprintf(stderr, "shmbus %s: skipped %llu corrupt records "
				"(`shmbus journal verify %s` lists them)\n",
			o->cmd, (unsigned long long)st.corrupt, pos[0]);
	lost_said(o->cmd, j, pos[0]);
	return 0;
}

int journal_replay(const struct jopts *o, char **pos)
{
	shmbus_journal_t *j;
	shmbus_t *bus;
	shmbus_channel_t *ch;
	if (jcli_open(o->cmd, pos[0], &j))
		return CLI_ERR;
	int rc = CLI_ERR;
	if (cli_open(o->cmd, pos[1], pos[2], &bus, &ch) == 0) {
		rc = republish(o, j, ch, pos);
		shmbus_close(bus);
	}
	shmbus_journal_close(j);
	return rc;
}
