/*
 * The loss table in journal.ctl (journal_format.h draws it): ranges of
 * sequences that are gone and that a writer's open let through -- what a
 * machine restart took that had not been synced, or a loss it was told to
 * accept -- and which of them an operator acknowledged. Later writers do
 * not refuse a range the table holds; readers do not report one that was
 * acknowledged. docs/journal.md, "Damage", has the rules.
 *
 * The files show every loss by themselves (a link that names a missing
 * segment, a file that fails its checks, a seal that says its segment was
 * sealed short), so the table is never the only record of one: a table
 * that is lost or damaged makes writers refuse, and readers report, what
 * it had let through -- never the other way round. Two copies, written one
 * after the other, each msynced, make a torn write or a damaged byte cost
 * nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "journal_int.h"

#define CTL_NAME "journal.ctl"

static struct jctl_losses *copy_at(const shmbus_journal_t *j, int i)
{
	return (struct jctl_losses *)((uint8_t *)j->ctl + JCTL_LOSSES_OFF +
				      (size_t)i * sizeof(struct jctl_losses));
}

static uint32_t losses_crc(const struct jctl_losses *t)
{
	uint32_t c = crc32c(t, JCTL_LOSSES_CRC_TO, 0);
	return crc32c(t->r, t->n * sizeof(t->r[0]), c);
}

/* Copy i of the table, if it checks: its generation, else 0. A reader's
 * copy may catch the writer writing it: that one fails its CRC, and the
 * other copy is whole. */
static uint64_t copy_read(const shmbus_journal_t *j, int i,
			  struct jctl_losses *out)
{
	memcpy(out, copy_at(j, i), sizeof(*out));
	if (out->gen == 0 || out->n > JCTL_LOSSES_MAX ||
	    out->journal_id != j->journal_id || out->crc != losses_crc(out))
		return 0;
	return out->gen;
}

/* The copy holding the table (-1: none checks) and the table, or an
 * empty one. */
static int table_read(const shmbus_journal_t *j, struct jctl_losses *t)
{
	struct jctl_losses b;
	uint64_t ga = copy_read(j, 0, t), gb = copy_read(j, 1, &b);
	if (gb > ga) {
		*t = b;
		return 1;
	}
	if (ga)
		return 0;
	memset(t, 0, sizeof(*t));
	return -1;
}

void jlosses_read(const shmbus_journal_t *j, struct jctl_losses *t)
{
	table_read(j, t);
}

bool jlosses_covers(const struct jctl_losses *t, uint64_t from, uint64_t to,
		    bool acked)
{
	if (to == UINT64_MAX)
		return false; /* an end not known is never recorded */
	/* [from, to) within the union of the ranges (a range reported after
	 * a segment was removed may span two that were recorded) */
	uint64_t x = from;
	for (bool moved = true; x < to && moved;) {
		moved = false;
		for (uint32_t i = 0; i < t->n; i++)
			if ((!acked || (t->acked >> i & 1)) &&
			    t->r[i].from <= x && x < t->r[i].to) {
				x = t->r[i].to;
				moved = true;
			}
	}
	return x >= to;
}

bool jlosses_prune(struct jctl_losses *t, uint64_t oldest)
{
	uint32_t k = 0;
	uint64_t acked = 0;
	for (uint32_t i = 0; i < t->n; i++) {
		if (t->r[i].to <= oldest)
			continue; /* retention's now */
		acked |= (t->acked >> i & 1) << k;
		t->r[k++] = t->r[i];
	}
	bool changed = k != t->n;
	t->n = k;
	t->acked = acked;
	return changed;
}

int jlosses_add(struct jctl_losses *t, uint64_t from, uint64_t to,
		bool acked)
{
	if (jlosses_covers(t, from, to, acked))
		return 0;
	for (uint32_t i = 0; acked && i < t->n; i++)
		if (t->r[i].from == from && t->r[i].to == to) {
			t->acked |= UINT64_C(1) << i; /* recorded, now seen */
			return 1;
		}
	if (t->n == JCTL_LOSSES_MAX)
		return -1;
	t->acked &= ~(UINT64_C(1) << t->n);
	t->acked |= (uint64_t)acked << t->n;
	t->r[t->n].from = from;
	t->r[t->n++].to = to;
	return 1;
}

/* Both copies to the disk before the writer goes on: the one that does
 * not hold the table first, so that a crash in between leaves one of
 * them whole, the newer or the older. */
int jlosses_write(shmbus_journal_t *j, struct jctl_losses *t)
{
	struct jctl_losses had;
	int held = table_read(j, &had);
	t->gen = had.gen + 1;
	t->journal_id = j->journal_id;
	t->crc = losses_crc(t);
	for (int k = 0; k < 2; k++) {
		int i = held == 0 ? 1 - k : k; /* copy 0 holds it: 1 first */
		memcpy(copy_at(j, i), t, sizeof(*t));
		if (j->ctl_fd >= 0 && msync(j->ctl, JCTL_SIZE, MS_SYNC) != 0)
			return jerr_file(SHMBUS_ESYS, errno, j, UINT64_MAX,
					 CTL_NAME, "msync of the loss table");
	}
	return 0;
}
