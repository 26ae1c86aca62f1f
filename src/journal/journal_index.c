/*
 * Indexes. Every segment has a sparse index (one entry per JIDX_STRIDE
 * bytes of records: sequence, offset, and the highest time stamp before
 * it), built as records are appended or scanned; when the segment is
 * sealed, its records are walked once more (headers only) for the key
 * index, every (key, offset) sorted by key then offset, and both are
 * written to the segment's .idx file. Reading one aggregate is then a
 * binary search per sealed segment and a scan of the unsealed one.
 *
 * An index file is trusted only when it matches its sealed segment and
 * its CRCs pass; otherwise it is rebuilt from the segment (every record's
 * CRC checked), and a writer writes it again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "journal_int.h"

/* -------------------------------------------------------------- build */

/* Stable LSD radix sort by key through tmp (n entries), 11 bits a pass
 * (a 16 KiB histogram stays in L1): one pass finds the digits where keys
 * differ, one counts them all, then one scatter per such digit. A
 * segment's aggregate ids often differ in the low bits only: 1,024 keys
 * take a single scatter. The histograms (up to 96 KiB) are allocated per
 * sort, once a segment: not thread-local, which a library would impose
 * on every thread of the application. 0 or SHMBUS_ENOMEM. */
#define KEY_BITS 11
#define KEY_DIGITS ((64 + KEY_BITS - 1) / KEY_BITS)
static int sort_keys(struct jidx_key *a, struct jidx_key *tmp, uint64_t n)
{
	if (n < 2)
		return 0;
	const uint64_t mask = (1u << KEY_BITS) - 1;
	uint64_t differ = 0;
	for (uint64_t i = 1; i < n; i++)
		differ |= a[i].key ^ a[0].key;
	int digit[KEY_DIGITS], nd = 0;
	for (int d = 0; d < KEY_DIGITS; d++)
		if ((differ >> (d * KEY_BITS)) & mask)
			digit[nd++] = d * KEY_BITS;
	uint64_t(*count)[1u << KEY_BITS] = calloc(nd ? (size_t)nd : 1,
						   sizeof(*count));
	if (count == NULL)
		return shmbus_seterr(SHMBUS_ENOMEM, "journal: out of memory "
						    "sorting an index");
	for (uint64_t i = 0; i < n; i++)
		for (int k = 0; k < nd; k++)
			count[k][(a[i].key >> digit[k]) & mask]++;
	struct jidx_key *src = a, *dst = tmp;
	for (int k = 0; k < nd; k++) {
		uint64_t *c = count[k], sum = 0;
		for (uint64_t v = 0; v <= mask; v++) {
			uint64_t x = c[v];
			c[v] = sum;
			sum += x;
		}
		for (uint64_t i = 0; i < n; i++)
			dst[c[(src[i].key >> digit[k]) & mask]++] = src[i];
		struct jidx_key *t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
	free(count);
	return 0;
}

/* Reserved once per writer, for segments of the smallest records: two
 * key arrays (the writer fills one while the sealer thread sorts the
 * other) and the sort's scratch. Anonymous memory touched as used, kept
 * from one segment to the next (faulted in once, not per segment). */
static uint64_t keys_cap(const shmbus_journal_t *j)
{
	/* every record takes at least a header */
	return (j->seg_size - JSEG_DATA_OFF) / JREC_HMIN;
}

int jwkeys_init(shmbus_journal_t *j, struct jseg *s)
{
	uint64_t cap = keys_cap(j);
	if (j->keybuf == NULL) {
		void *m = mmap(NULL, 3 * cap * sizeof(struct jidx_key),
			       PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			       -1, 0);
		if (m == MAP_FAILED)
			return shmbus_seterr(SHMBUS_ENOMEM,
					     "journal: out of memory for a "
					     "key index");
		j->keybuf = m;
	}
	s->wkeys = j->keybuf + cap * j->keys_turn;
	s->cap_wkeys = cap;
	s->n_wkeys = 0;
	return 0;
}

void jwkeys_handed(shmbus_journal_t *j, struct jseg *s)
{
	jwkeys_free(s);
	j->keys_turn ^= 1; /* the next segment fills the other array */
}

struct jidx_key *jkeybuf_tmp(const shmbus_journal_t *j)
{
	return j->keybuf + 2 * keys_cap(j);
}

void jkeybuf_free(shmbus_journal_t *j)
{
	if (j->keybuf)
		munmap(j->keybuf, 3 * keys_cap(j) * sizeof(struct jidx_key));
	j->keybuf = NULL;
}

int jindex_write_noted(shmbus_journal_t *j, uint64_t first_seq,
		       const struct jindex *ix, struct jidx_key *tmp)
{
	int rc = sort_keys(ix->keys, tmp, ix->n_keys);
	return rc ? rc : jindex_write(j, first_seq, ix);
}

/* The writer's index of a segment it is sealing, here and now: the keys
 * it noted as records went in, the sparse entries it kept; or, if it did
 * not note them all, a walk of the segment. */
int jindex_seal(shmbus_journal_t *j, struct jseg *s)
{
	if (s->wkeys == NULL || s->n_wkeys != s->count || s->live.e == NULL) {
		struct jindex ix;
		int rc = jindex_build(j, s, s->end_off, false, &ix);
		if (rc == 0)
			rc = jindex_write(j, s->first_seq, &ix);
		jindex_free(&ix);
		return rc;
	}
	struct jindex ix = {.sparse = s->live.e,
			    .n_sparse = s->live.n,
			    .keys = s->wkeys,
			    .n_keys = s->n_wkeys,
			    .end_off = s->end_off};
	/* ix borrows: nothing to free */
	return jindex_write_noted(j, s->first_seq, &ix, jkeybuf_tmp(j));
}

void jindex_free(struct jindex *ix)
{
	free(ix->sparse);
	free(ix->keys);
	memset(ix, 0, sizeof(*ix));
}

int jindex_build(shmbus_journal_t *j, struct jseg *s, uint64_t limit,
		 bool verify, struct jindex *ix)
{
	memset(ix, 0, sizeof(*ix));
	struct jsparse_acc acc;
	int rc = jsparse_init(j, &acc);
	if (rc)
		return rc;
	/* every record takes at least a header */
	uint64_t cap = (limit - JSEG_DATA_OFF) / jrec_hmin(s->version);
	if (s->count && s->count < cap)
		cap = s->count;
	ix->keys = malloc((cap ? cap : 1) * sizeof(*ix->keys));
	ix->sparse = acc.e;
	if (ix->keys == NULL) {
		jindex_free(ix);
		return shmbus_seterr(SHMBUS_ENOMEM, "journal: out of memory");
	}
	ix->ts_min = UINT64_MAX;
	uint64_t off = JSEG_DATA_OFF, after = s->first_seq - 1;
	unsigned fl = (s->first_seq == 0 ? JFC_ANY_SEQ : 0u) |
		      (verify ? 0u : JFC_NO_CRC);
	const char *why = "";
	struct jrec h;
	int r;
	while ((r = jframe_check(s, off, limit, after, fl, &why, &h)) ==
		       JF_OK &&
	       ix->n_keys < cap) {
		ix->keys[ix->n_keys++] = (struct jidx_key){h.key, off};
		jsparse_add(&acc, h.seq, h.timestamp, off);
		if (h.timestamp < ix->ts_min)
			ix->ts_min = h.timestamp;
		after = ix->last_seq = h.seq;
		fl &= ~(unsigned)JFC_ANY_SEQ;
		off += jrec_span(h.hsz, h.len);
	}
	ix->sparse = acc.e;
	ix->n_sparse = acc.n;
	ix->ts_max = acc.ts_hi;
	ix->end_off = off;
	if (r == JF_BAD || off != limit ||
	    (s->count && ix->n_keys != s->count)) {
		rc = jerr_file(SHMBUS_ECORRUPT, 0, j, s->first_seq, ".seg",
			       "indexing: record at offset %" PRIu64 ": %s "
			       "(%" PRIu64 " of %" PRIu64 " records walked)",
			       off, r == JF_BAD ? why : "the records end early",
			       ix->n_keys, s->count);
		jindex_free(ix);
		return rc;
	}
	struct jidx_key *tmp = malloc((ix->n_keys ? ix->n_keys : 1) *
				      sizeof(*tmp));
	if (tmp == NULL) {
		jindex_free(ix);
		return shmbus_seterr(SHMBUS_ENOMEM, "journal: out of memory "
						    "sorting an index");
	}
	rc = sort_keys(ix->keys, tmp, ix->n_keys);
	free(tmp);
	if (rc)
		jindex_free(ix);
	return rc;
}

/* -------------------------------------------------------------- files */

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static uint32_t body_crc(const struct jidx_sparse *sp, uint64_t n_sparse,
			 const struct jidx_key *k, uint64_t n_keys)
{
	uint32_t c = crc32c(sp, n_sparse * sizeof(*sp), 0);
	/* in chunks: crc32_iscsi takes an int length */
	const uint8_t *b = (const uint8_t *)k;
	for (uint64_t left = n_keys * sizeof(*k); left;) {
		size_t n = left > (1u << 30) ? (1u << 30) : (size_t)left;
		c = crc32c(b, n, c);
		b += n;
		left -= n;
	}
	return c;
}

int jindex_write(shmbus_journal_t *j, uint64_t first_seq,
		 const struct jindex *ix)
{
	struct jidx_header h = {
		.magic = JIDX_MAGIC,
		.version = JIDX_VERSION,
		.header_size = sizeof(h),
		.journal_id = j->journal_id,
		.first_seq = first_seq,
		.end_off = ix->end_off,
		.count = ix->n_keys,
		.n_sparse = ix->n_sparse,
		.stride = JIDX_STRIDE,
	};
	h.body_crc = body_crc(ix->sparse, ix->n_sparse, ix->keys, ix->n_keys);
	h.header_crc = crc32c(&h, offsetof(struct jidx_header, header_crc), 0);
	char tmp[48], name[40];
	jname(tmp, first_seq, ".idx.tmp");
	jname(name, first_seq, ".idx");
	int fd = openat(j->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			j->mode);
	if (fd < 0)
		return jerr_file(errno == EACCES ? SHMBUS_EPERM : SHMBUS_ESYS,
				 errno, j, first_seq, ".idx.tmp", "create");
	int rc = 0;
	if (fchmod(fd, j->mode) != 0 || write_all(fd, &h, sizeof(h)) ||
	    write_all(fd, ix->sparse, ix->n_sparse * sizeof(*ix->sparse)) ||
	    write_all(fd, ix->keys, ix->n_keys * sizeof(*ix->keys)) ||
	    (jsync_policy(j) && fdatasync(fd) != 0))
		rc = jerr_file(errno == ENOSPC || errno == EDQUOT
				       ? SHMBUS_ENOMEM
				       : SHMBUS_ESYS,
			       errno, j, first_seq, ".idx.tmp", "write");
	close(fd);
	if (rc == 0 && renameat(j->dirfd, tmp, j->dirfd, name) != 0)
		rc = jerr_file(SHMBUS_ESYS, errno, j, first_seq, ".idx",
			       "rename");
	if (rc)
		unlinkat(j->dirfd, tmp, 0);
	else if (jsync_policy(j))
		fsync(j->dirfd);
	return rc;
}

static void use_index(struct jseg *s, const struct jidx_sparse *sp,
		      uint32_t n_sparse, const struct jidx_key *k,
		      uint64_t n_keys)
{
	s->sparse = sp;
	s->n_sparse = n_sparse;
	s->keys = k;
	s->n_keys = n_keys;
}

/* The .idx file, mapped, if it is whole and matches the sealed segment;
 * else a reason. */
static const char *map_index(shmbus_journal_t *j, struct jseg *s)
{
	char name[40];
	jname(name, s->first_seq, ".idx");
	int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "missing";
	struct stat st;
	void *m = MAP_FAILED;
	if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(struct jidx_header))
		m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return "unreadable or shorter than its header";
	const struct jidx_header *h = m;
	const char *why = NULL;
	uint64_t size = (uint64_t)st.st_size;
	if (h->magic != JIDX_MAGIC || h->version != JIDX_VERSION ||
	    h->header_size != sizeof(*h) ||
	    h->header_crc !=
		    crc32c(h, offsetof(struct jidx_header, header_crc), 0))
		why = "bad header";
	else if (h->journal_id != j->journal_id ||
		 h->first_seq != s->first_seq || h->end_off != s->end_off ||
		 h->count != s->count)
		why = "does not match its segment";
	else if (size != sizeof(*h) + h->n_sparse * sizeof(struct jidx_sparse) +
				h->count * sizeof(struct jidx_key))
		why = "truncated";
	if (why) {
		munmap(m, size);
		return why;
	}
	const struct jidx_sparse *sp = (const void *)(h + 1);
	const struct jidx_key *k = (const void *)(sp + h->n_sparse);
	if (body_crc(sp, h->n_sparse, k, h->count) != h->body_crc) {
		munmap(m, size);
		return "fails its CRC";
	}
	s->idx_map = m;
	s->idx_size = size;
	use_index(s, sp, h->n_sparse, k, h->count);
	return NULL;
}

int jindex_load(shmbus_journal_t *j, struct jseg *s)
{
	if (s->keys || !s->sealed)
		return s->keys ? 0 : SHMBUS_EINVAL;
	if (s->idx_tried) /* neither the file nor a rebuild worked */
		return SHMBUS_ECORRUPT;
	if (map_index(j, s) == NULL)
		return 0;
	s->idx_tried = true;
	struct jindex ix;
	int rc = jseg_map(j, s);
	if (rc == 0)
		rc = jindex_build(j, s, s->end_off, true, &ix);
	if (rc)
		return rc;
	j->st.indexes_rebuilt++;
	if (j->writer)
		jindex_write(j, s->first_seq, &ix); /* else rebuilt again */
	s->heap_sparse = ix.sparse;
	s->heap_keys = ix.keys;
	use_index(s, ix.sparse, ix.n_sparse, ix.keys, ix.n_keys);
	return 0;
}

/* ------------------------------------------------------------ lookups */

/* The first of n entries (stride bytes apart) whose u64 at field is >=
 * v: the arrays are sorted by that field. */
static uint64_t lower(const void *base, uint64_t n, size_t stride,
		      size_t field, uint64_t v)
{
	const uint8_t *b = (const uint8_t *)base + field;
	uint64_t lo = 0, hi = n;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		uint64_t x;
		memcpy(&x, b + mid * stride, sizeof(x));
		if (x < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int jsparse_seq(const struct jidx_sparse *e, uint32_t n, uint64_t seq)
{
	/* the last entry whose seq <= seq */
	if (seq == UINT64_MAX)
		return (int)n - 1;
	return (int)lower(e, n, sizeof(*e), offsetof(struct jidx_sparse, seq),
			  seq + 1) - 1;
}

int jsparse_time(const struct jidx_sparse *e, uint32_t n, uint64_t ts)
{
	/* before the first entry with ts_before >= ts: some record before
	 * it is late enough, none before the entry ahead of it is */
	return (int)lower(e, n, sizeof(*e),
			  offsetof(struct jidx_sparse, ts_before), ts) - 1;
}

uint64_t jkeys_lower(const struct jidx_key *k, uint64_t n, uint64_t key)
{
	return lower(k, n, sizeof(*k), offsetof(struct jidx_key, key), key);
}
