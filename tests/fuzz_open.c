/*
 * A fuzz target over the open/validate path of bus and channel objects.
 *
 * Input: one selector byte, then the bytes of one shared-memory object. The
 * object is planted in /dev/shm under the name the library itself uses, and
 * opened through the public API; if it opens, it is used a little (produce,
 * subscribe, poll, groups, barriers, retries, the dead-letter queue, a
 * poller, the tools' readers, the watchdog), since a field that passed
 * validation is trusted from then on. Any error code is fine;
 * a crash, a hang, an access out of bounds or a leak is not.
 *
 * Each input costs little besides the library's own work: the planted
 * objects are made once per process and rewritten in place, and a channel
 * image is opened on one bus made at the first (its bytes put back as
 * they were made before each input, so that no input sees another's).
 *
 * One source, built two ways (tests/CMakeLists.txt):
 *   fuzz_open        -DSHMBUS_LIBFUZZER, -fsanitize=fuzzer (SHMBUS_FUZZ=ON)
 *   fuzz_open_plain  a main that runs files and directories through the same
 *                    function: the corpus as a plain test of the suite
 * and both write a corpus with --make-corpus DIR: images of real objects
 * made by this build of the library, and systematic damage to them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmbus/shmbus.h>

#include "layout.h"
#include "shm.h"

#define MAX_OBJECT (1u << 20) /* larger inputs are ignored */
#define OPEN_TIMEOUT_MS 1     /* not-ready images time out quickly */

/* The selector byte. */
#define SEL_CHANNEL 0x01u    /* a channel object (else a bus object) */
#define SEL_KEEP_EPOCH 0x02u /* do not stamp the live bus's epoch */

static const char CHANNEL[] = "C";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char bus_name[32];	/* bus images: "fzPID" */
static char ch_bus_name[32];	/* the bus of channel images: "fzcPID" */
static struct {
	uint64_t bus_runs, bus_opened, ch_runs, ch_opened;
} counts;
static volatile uint64_t checksum; /* keeps the handlers' reads */
static bool verbose;		   /* plain driver -v: each open's result */

static void report(const char *what, int rc)
{
	if (rc)
		checksum += strlen(shmbus_errmsg()); /* a terminated message */
	if (verbose)
		fprintf(stderr, "  %s: %d %s\n", what, rc,
			rc ? shmbus_errmsg() : "");
}

static void die(const char *what)
{
	fprintf(stderr, "fuzz_open: %s: %s\n", what, shmbus_errmsg());
	abort();
}

/* --------------------------------------------------------- planting */

/* An object made once and rewritten for each input. */
struct planted {
	char obj[SHM_OBJNAME_MAX];
	int fd;
};
static struct planted bus_obj = {.fd = -1}, ch_obj = {.fd = -1};

/* p's object, holding exactly img. The library removes an object only
 * where it creates one (a bus name that does not exist, a channel not in
 * the table); if it ever did, the name is made again. */
static void plant(struct planted *p, const uint8_t *img, size_t size)
{
	struct stat st;
	if (p->fd >= 0 && (fstat(p->fd, &st) != 0 || st.st_nlink == 0)) {
		close(p->fd);
		p->fd = -1;
	}
	if (p->fd < 0)
		p->fd = shm_open(p->obj, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (p->fd < 0 || ftruncate(p->fd, (off_t)size) != 0) {
		perror(p->obj);
		abort();
	}
	for (size_t off = 0; off < size;) {
		ssize_t n = pwrite(p->fd, img + off, size - off, (off_t)off);
		if (n <= 0) {
			perror("writing the planted object");
			abort();
		}
		off += (size_t)n;
	}
}

/* A scribbled control-path mutex may hang control-path calls: the threat
 * model leaves that out (docs/architecture.md), so the bus's lock and a
 * channel's DLQ lock are replaced by fresh, unlocked ones. */
static void fresh_mutex(uint8_t *img, size_t size, uint64_t at)
{
	if (at > size || size - at < sizeof(pthread_mutex_t))
		return;
	pthread_mutexattr_t a;
	pthread_mutex_t m;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&m, &a);
	pthread_mutexattr_destroy(&a);
	memcpy(img + at, &m, sizeof(m));
}

/* ------------------------------------------------------------- use */

static int on_record(const shmbus_record_t *r, void *ctx)
{
	(void)ctx;
	/* touch every byte handed out: ASan checks the bounds */
	const uint8_t *p = r->data;
	uint64_t sum = r->seq ^ r->key ^ r->origin ^ r->flags;
	for (uint32_t i = 0; i < r->len; i++)
		sum += p[i];
	checksum += sum;
	/* some failures, for the retry and dead-letter paths */
	return (r->key & 3) == 3 ? -1 : 0;
}

static void use_channel(shmbus_t *bus, shmbus_channel_t *ch)
{
	shmbus_channel_info_t info;
	if (shmbus_channel_get_info(ch, &info) != 0)
		return;
	uint8_t rec[64];
	memset(rec, 0xa5, sizeof(rec));
	uint32_t len = info.record_size < sizeof(rec) ? info.record_size
						      : (uint32_t)sizeof(rec);

	shmbus_producer_t *p = NULL;
	if (shmbus_producer_open(ch, NULL, &p) == 0) {
		for (uint64_t k = 0; k < 3; k++)
			shmbus_try_publish(p, rec, len, k);
		/* fill whole payloads: the slot geometry must hold them */
		shmbus_claim_t c;
		if (shmbus_try_claim(p, 2, &c) == 0) {
			for (uint32_t i = 0; i < c.n; i++)
				memset(shmbus_claim_payload(p, &c, i), 0x5a,
				       info.record_size);
			shmbus_claim_set(p, &c, 0, len / 2, 7);
			shmbus_commit(p, &c);
		}
	}

	/* "fz" and "fzg" resume rows of the generated images; "fz2" runs
	 * after "fz" and dispatches through the handler registry */
	shmbus_sub_t *s1 = NULL, *s2 = NULL, *g = NULL;
	shmbus_sub_opts_t o1 = {.name = "fz", .batch = 4};
	shmbus_subscribe(ch, on_record, NULL, &o1, &s1);
	const char *const up[] = {"fz"};
	shmbus_sub_opts_t o2 = {.name = "fz2", .after = up, .n_after = 1};
	shmbus_handler_add(bus, info.name, on_record, NULL); /* or EEXIST */
	shmbus_subscribe(ch, NULL, NULL, &o2, &s2);
	shmbus_sub_opts_t og = {.name = "fzg", .flags = SHMBUS_GROUP_KEYED};
	shmbus_group_join(ch, on_record, NULL, &og, &g);

	shmbus_poller_t *pl = NULL;
	if (s1 && shmbus_poller_open(bus, SHMBUS_WAIT_SPIN, &pl) == 0)
		shmbus_poller_add(pl, s1);
	for (int round = 0; round < 3; round++) {
		if (p)
			for (uint64_t k = 0; k < 2; k++)
				shmbus_try_publish(p, rec, len, k + 5);
		if (pl)
			shmbus_poller_poll(pl, 16);
		if (s1)
			shmbus_poll(s1, 64);
		if (s2)
			shmbus_poll(s2, 64);
		if (g)
			shmbus_poll(g, 64);
		/* evict policy: a stalled reader is evicted on the second
		 * call with no grace, and rejoins at its next poll */
		shmbus_channel_evict(ch, 0);
	}
	/* the dead-letter queue, as the tools read and replay it */
	shmbus_dlq_stats_t ds;
	shmbus_dlq_entry_t de[4];
	shmbus_dlq_get_stats(ch, &ds);
	int n = shmbus_dlq_list(ch, 0, de, 4);
	if (n > 0) {
		uint8_t *buf = malloc(info.record_size);
		if (buf && shmbus_dlq_get(ch, de[0].id, &de[0], buf,
					  info.record_size) == 0)
			on_record(&de[0].rec, NULL);
		free(buf);
		/* (not shmbus_dlq_replay: it publishes as shmbus_publish does,
		 * and so waits, by design, while a durable name gates a full
		 * ring) */
		shmbus_dlq_replay_to(ch, de[n - 1].id, "fz");
	}
	shmbus_dlq_purge(ch, SHMBUS_DLQ_ALL);

	/* what the tools read: rows, producers, the schema, a spy */
	shmbus_sub_info_t si[4];
	shmbus_producer_info_t pi[4];
	shmbus_field_info_t fi[8];
	shmbus_sub_list(ch, si, 4);
	shmbus_producer_list(ch, pi, 4);
	n = shmbus_channel_fields(ch, fi, 8);
	for (int i = 0; i < n && i < 8; i++) {
		int64_t v;
		const char *e = shmbus_channel_enum_name(ch, (uint32_t)i, 1);
		if (e)
			checksum += strlen(e);
		if (shmbus_channel_enum_value(ch, (uint32_t)i, "SELL", &v) == 0)
			checksum += (uint64_t)v;
	}
	shmbus_spy_t *spy;
	uint8_t *copy = malloc(info.record_size);
	if (copy && shmbus_spy_open(ch, 1, &spy) == 0) {
		for (int i = 0; i < 8; i++) {
			shmbus_record_t r;
			uint64_t missed = 0;
			int rc = shmbus_spy_next(spy, &r, copy, info.record_size,
						 &missed);
			if (rc == 0)
				on_record(&r, NULL);
			else if (rc != SHMBUS_ELAPPED)
				break;
		}
		shmbus_spy_close(spy);
	}
	free(copy);

	shmbus_sub_stats_t st;
	if (s1) {
		shmbus_sub_get_stats(s1, &st);
		checksum += st.cursor + st.delivered;
	}
	shmbus_poller_close(pl);
	if (g)
		shmbus_sub_close(g, 1);
	if (s2)
		shmbus_sub_close(s2, 1);
	if (s1)
		shmbus_sub_close(s1, 0);
	shmbus_channel_expire(ch);
	shmbus_channel_evict(ch, 0);
	shmbus_unsubscribe(ch, "fz2");
	shmbus_unsubscribe(ch, "fz");
	shmbus_unsubscribe(ch, "fzg");

	/* the watchdog opens the channel again and repairs what it finds */
	shmbus_watchdog_t *w;
	if (shmbus_watchdog_open(bus, NULL, &w) == 0) {
		shmbus_watchdog_pass(w);
		shmbus_watchdog_close(w);
	}
	shmbus_producer_close(p);
}

/* ---------------------------------------------------------- targets */

static uint8_t copy[MAX_OBJECT]; /* the planted image */

static void fuzz_bus(const uint8_t *img, size_t size)
{
	memcpy(copy, img, size);
	fresh_mutex(copy, size, offsetof(struct sb_superblock, lock));
	plant(&bus_obj, copy, size);

	counts.bus_runs++;
	shmbus_opts_t o = {.open_timeout_ms = OPEN_TIMEOUT_MS};
	shmbus_t *bus;
	int rc = shmbus_open(bus_name, &o, &bus);
	report("bus open", rc);
	if (rc == 0) {
		counts.bus_opened++;
		checksum += shmbus_epoch(bus) + shmbus_clock_ns(bus);
		checksum += (uint64_t)shmbus_live_participants(bus);
		shmbus_channel_info_t ci[4];
		shmbus_watchdog_stats_t ws;
		shmbus_bus_channels(bus, ci, 4);
		shmbus_watchdog_counters(bus, &ws);
		shmbus_handler_add(bus, CHANNEL, on_record, NULL);
		/* a channel created in the image's tables */
		shmbus_channel_opts_t co = {.record_size = 16,
					    .capacity = 4,
					    .max_subscribers = 4,
					    .max_groups = 1,
					    .dlq_capacity = 2};
		shmbus_channel_t *ch;
		rc = shmbus_channel_open(bus, CHANNEL, &co, &ch);
		report("channel create", rc);
		if (rc == 0) {
			use_channel(bus, ch);
			shmbus_channel_close(ch);
		}
		shmbus_close(bus);
		/* the channel made in the image's table, if it was */
		char obj[SHM_OBJNAME_MAX];
		shm_objname(obj, bus_name, CHANNEL);
		shm_unlink(obj);
	}
}

/* The creator skips its 20 ms TSC calibration with this (clock.c). */
static void quick_clock(bool on)
{
	static int saved = -1; /* the caller's setting, restored after */
	static char value[64];
	if (saved < 0) {
		const char *v = getenv("SHMBUS_CLOCK");
		saved = v != NULL;
		if (v)
			snprintf(value, sizeof(value), "%s", v);
	}
	if (on)
		setenv("SHMBUS_CLOCK", "monotonic", 1);
	else if (saved)
		setenv("SHMBUS_CLOCK", value, 1);
	else
		unsetenv("SHMBUS_CLOCK");
}

/* The bus of channel images: valid, its table listing CHANNEL at row 0,
 * made at the first channel image and kept open. Its bytes as made (its
 * own mapping of them, and a copy) are put back before each image, which
 * leaves no handle, participant or lock behind it. */
static struct {
	shmbus_t *bus;
	uint8_t *map, *made;
	size_t size;
} cbus;

static shmbus_t *channel_bus(void)
{
	if (cbus.bus) {
		memcpy(cbus.map, cbus.made, cbus.size);
		return cbus.bus;
	}
	shmbus_opts_t bo = {.flags = SHMBUS_OPEN_CREATE | SHMBUS_OPEN_EXCL,
			    .max_channels = 2,
			    .max_participants = 16,
			    .open_timeout_ms = OPEN_TIMEOUT_MS};
	shmbus_t *bus;
	quick_clock(true);
	int rc = shmbus_open(ch_bus_name, &bo, &bus);
	quick_clock(false);
	if (rc)
		die("creating the bus for channel images");
	shmbus_handler_add(bus, CHANNEL, on_record, NULL);
	shmbus_channel_opts_t co = {.record_size = 8,
				    .capacity = 2,
				    .max_subscribers = 1,
				    .dlq_capacity = 2};
	shmbus_channel_t *ch;
	if (shmbus_channel_open(bus, CHANNEL, &co, &ch) != 0)
		die("creating the channel row");
	shmbus_channel_close(ch);
	char obj[SHM_OBJNAME_MAX];
	shm_objname(obj, ch_bus_name, NULL);
	int fd = shm_open(obj, O_RDWR | O_CLOEXEC, 0);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		die("the bus for channel images");
	cbus.size = (size_t)st.st_size;
	cbus.map = mmap(NULL, cbus.size, PROT_READ | PROT_WRITE, MAP_SHARED,
			fd, 0);
	close(fd);
	cbus.made = malloc(cbus.size);
	if (cbus.map == MAP_FAILED || cbus.made == NULL)
		die("the bus for channel images");
	memcpy(cbus.made, cbus.map, cbus.size);
	cbus.bus = bus;
	return bus;
}

/* The bus of channel images, whose table lists CHANNEL; the image
 * replaces the channel's object, so the library finds it as listed. */
static void fuzz_channel(const uint8_t *img, size_t size, uint8_t sel)
{
	shmbus_t *bus = channel_bus();
	shmbus_channel_t *ch;
	int rc;
	memcpy(copy, img, size);
	/* the epoch is random per bus: an image can only match if stamped */
	size_t at = offsetof(struct ch_header, bus_epoch);
	uint64_t epoch = shmbus_epoch(bus);
	if (!(sel & SEL_KEEP_EPOCH) && size >= at + sizeof(epoch))
		memcpy(copy + at, &epoch, sizeof(epoch));
	if (size >= sizeof(struct ch_header)) {
		uint64_t dlq;
		memcpy(&dlq, copy + offsetof(struct ch_header, dlq_off),
		       sizeof(dlq));
		if (dlq <= size - sizeof(struct ch_dlq))
			fresh_mutex(copy, size,
				    dlq + offsetof(struct ch_dlq, lock));
	}
	plant(&ch_obj, copy, size);

	counts.ch_runs++;
	bool opened = false;
	rc = shmbus_channel_open(bus, CHANNEL, NULL, &ch);
	report("channel open", rc);
	if (rc == 0) {
		opened = true;
		use_channel(bus, ch);
		shmbus_channel_close(ch);
	}
	/* attach again declaring what the header says (check_match) */
	if (size >= sizeof(struct ch_header)) {
		struct ch_header h;
		memcpy(&h, copy, sizeof(h));
		shmbus_channel_opts_t mo = {
			.record_size = h.record_size,
			.capacity = h.capacity,
			.layout_hash = h.layout_hash,
			.flags = h.flags,
			.stall_policy = h.stall_policy,
			.max_subscribers = h.max_subscribers,
			.max_groups = h.max_groups,
			.retry_capacity = h.retry_capacity,
			.dlq_capacity = h.dlq_capacity,
		};
		if (h.dlq_off <= size - sizeof(struct ch_dlq))
			memcpy(&mo.dlq_policy,
			       copy + h.dlq_off + offsetof(struct ch_dlq, policy),
			       sizeof(mo.dlq_policy));
		rc = shmbus_channel_open(bus, CHANNEL, &mo, &ch);
		report("channel open with its options", rc);
		if (rc == 0) {
			opened = true;
			use_channel(bus, ch);
			shmbus_channel_close(ch);
		}
	}
	counts.ch_opened += opened;
}

/* Objects of runs that died (a crash or a libFuzzer time-out skips the
 * clean-up): "fz<pid>", "fzc<pid>" and "fzmk<pid>" buses whose process is
 * gone. */
static void sweep_dead_runs(void)
{
	DIR *d = opendir("/dev/shm");
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *p = e->d_name;
		if (strncmp(p, "shmbus.fz", 9) != 0)
			continue;
		p += 9;
		if (strncmp(p, "mk", 2) == 0)
			p += 2;
		else if (*p == 'c')
			p++;
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p || (*end != '\0' && *end != ':') || pid <= 0 ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char bus[SHMBUS_NAME_BYTES];
		snprintf(bus, sizeof(bus), "%.*s", (int)(end - e->d_name - 7),
			 e->d_name + 7);
		shmbus_unlink(bus);
	}
	closedir(d);
}

/* At exit: our objects, and the bus of channel images. */
static void teardown(void)
{
	if (bus_name[0] == '\0')
		return;
	if (cbus.bus) {
		shmbus_close(cbus.bus);
		munmap(cbus.map, cbus.size);
		free(cbus.made);
		cbus.bus = NULL;
	}
	struct planted *planted[] = {&bus_obj, &ch_obj};
	for (int i = 0; i < 2; i++)
		if (planted[i]->fd >= 0) {
			close(planted[i]->fd);
			planted[i]->fd = -1;
		}
	shmbus_unlink(bus_name);
	shmbus_unlink(ch_bus_name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size - 1 > MAX_OBJECT)
		return 0;
	if (bus_name[0] == '\0') {
		snprintf(bus_name, sizeof(bus_name), "fz%d", (int)getpid());
		snprintf(ch_bus_name, sizeof(ch_bus_name), "fzc%d",
			 (int)getpid());
		shm_objname(bus_obj.obj, bus_name, NULL);
		shm_objname(ch_obj.obj, ch_bus_name, CHANNEL);
		sweep_dead_runs();
		atexit(teardown);
	}
	uint8_t sel = data[0];
	if (sel & SEL_CHANNEL)
		fuzz_channel(data + 1, size - 1, sel);
	else
		fuzz_bus(data + 1, size - 1);
	return 0;
}

/* ------------------------------------------------- corpus generator */

struct sink {
	const char *dir;
	unsigned files;
	bool failed;
};

static void emit(struct sink *k, const char *tag, uint8_t sel,
		 const uint8_t *img, size_t size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", k->dir, tag);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(&sel, 1, 1, f) != 1 ||
	    (size && fwrite(img, 1, size, f) != size)) {
		perror(path);
		k->failed = true;
	} else {
		k->files++;
	}
	if (f)
		fclose(f);
}

/* An image with one field set to v (width from the field's size). */
static void emit_set(struct sink *k, const char *tag, uint8_t sel,
		     const uint8_t *img, size_t size, size_t at, size_t width,
		     uint64_t v)
{
	if (at + width > size)
		return;
	uint8_t *m = malloc(size);
	if (m == NULL)
		abort();
	memcpy(m, img, size);
	if (width == 1) {
		m[at] = (uint8_t)v;
	} else if (width == 2) {
		uint16_t x = (uint16_t)v;
		memcpy(m + at, &x, sizeof(x));
	} else if (width == 4) {
		uint32_t x = (uint32_t)v;
		memcpy(m + at, &x, sizeof(x));
	} else {
		memcpy(m + at, &v, sizeof(v));
	}
	emit(k, tag, sel, m, size);
	free(m);
}

static void emit_size(struct sink *k, const char *tag, uint8_t sel,
		      const uint8_t *img, size_t size, size_t new_size)
{
	uint8_t *m = calloc(new_size ? new_size : 1, 1);
	if (m == NULL)
		abort();
	memcpy(m, img, new_size < size ? new_size : size);
	emit(k, tag, sel, m, new_size);
	free(m);
}

#define SET(tag, type, f, v)                                                   \
	emit_set(k, tag, sel, img, size, base + offsetof(type, f),             \
		 sizeof(((type *)0)->f), (uint64_t)(v))

static uint8_t *snapshot(const char *bus, const char *channel, size_t *size)
{
	char obj[SHM_OBJNAME_MAX];
	shm_objname(obj, bus, channel);
	int fd = shm_open(obj, O_RDONLY | O_CLOEXEC, 0);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		perror(obj);
		abort();
	}
	*size = (size_t)st.st_size;
	uint8_t *img = malloc(*size ? *size : 1);
	if (img == NULL || pread(fd, img, *size, 0) != (ssize_t)*size) {
		perror(obj);
		abort();
	}
	close(fd);
	return img;
}

static void mutate_bus(struct sink *k, const char *v, const uint8_t *img,
		       size_t size)
{
	typedef struct sb_superblock SB;
	const uint8_t sel = 0;
	const size_t base = 0;
	char tag[128];
	SB sb;
	memcpy(&sb, img, sizeof(sb));
#define T(s) (snprintf(tag, sizeof(tag), "bus-%s-%s", v, s), tag)
	emit(k, T("valid"), sel, img, size);
	/* truncated at each structure boundary, and grown */
	const size_t cut[] = {0, 1, offsetof(SB, state), sizeof(SB) - 1,
			      sizeof(SB), sb.channel_table_off +
					  sizeof(struct sb_channel_entry),
			      sb.participant_table_off, sb.poller_table_off,
			      size - 4096, size - 1};
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		char s[32];
		snprintf(s, sizeof(s), "cut%zu", cut[i]);
		emit_size(k, T(s), sel, img, size, cut[i]);
	}
	emit_size(k, T("grown"), sel, img, size, size + 4096);
	/* identity */
	SET(T("magic"), SB, magic, sb.magic ^ 1);
	SET(T("abi-next"), SB, abi_version, sb.abi_version + 1);
	SET(T("abi-zero"), SB, abi_version, 0);
	SET(T("sb-size"), SB, superblock_size, 128);
	SET(T("entry-size"), SB, channel_entry_size, 64);
	SET(T("part-size"), SB, participant_size, 256);
	SET(T("cacheline"), SB, cacheline, 128);
	SET(T("building"), SB, state, OBJ_BUILDING);
	SET(T("state7"), SB, state, 7);
	/* tables */
	SET(T("chans-zero"), SB, max_channels, 0);
	SET(T("chans-one-more"), SB, max_channels, sb.max_channels + 1);
	SET(T("chans-huge"), SB, max_channels, 1u << 30);
	SET(T("chans-max"), SB, max_channels, UINT32_MAX);
	SET(T("parts-zero"), SB, max_participants, 0);
	SET(T("parts-one-more"), SB, max_participants,
	    sb.max_participants + 1);
	SET(T("parts-limit"), SB, max_participants, SHMBUS_MAX_PARTICIPANTS + 1);
	SET(T("chtab-off"), SB, channel_table_off, sb.channel_table_off + 8);
	SET(T("parts-off-end"), SB, participant_table_off, size);
	SET(T("pollers-off-huge"), SB, poller_table_off, UINT64_MAX - 63);
	SET(T("pollers-count"), SB, max_pollers, SHMBUS_MAX_POLLERS - 1);
	SET(T("poller-size"), SB, poller_size, 0);
	SET(T("total-double"), SB, total_size, (uint64_t)size * 2);
	SET(T("total-zero"), SB, total_size, 0);
	/* clock */
	SET(T("clock-kind9"), SB, clock_kind, 9);
	SET(T("clock-mult-zero"), SB, clock_mult, 0);
	SET(T("clock-mult-huge"), SB, clock_mult, UINT64_MAX);
	/* shared state read after validation */
	size_t e0 = sb.channel_table_off;
	typedef struct sb_channel_entry CE;
	emit_set(k, T("row-C-ready"), sel, img, size,
		 e0 + offsetof(CE, name), 2, 'C');
	uint8_t *m = malloc(size);
	if (m == NULL)
		abort();
	memcpy(m, img, size);
	for (uint32_t i = 0; i < sb.max_channels; i++) {
		CE *e = (CE *)(m + e0 + i * sizeof(CE));
		atomic_store(&e->state, CHENT_READY);
		memset(e->name, i ? '/' : 'A', sizeof(e->name)); /* no NUL */
		e->id = UINT32_MAX;
	}
	emit(k, T("rows-unterminated"), sel, m, size);
	memcpy(m, img, size);
	for (uint32_t i = 0; i < sb.max_participants; i++) {
		struct sb_participant *p =
			(void *)(m + sb.participant_table_off +
				 i * sizeof(*p));
		atomic_store(&p->state, i & 1 ? PART_LIVE : 77);
		atomic_store(&p->claim_intent, 1);
		p->kind = UINT32_MAX;
	}
	emit(k, T("parts-all-live"), sel, m, size);
	memcpy(m, img, size);
	for (uint32_t i = 0; i < SHMBUS_MAX_POLLERS; i++) {
		struct sb_poller *pl =
			(void *)(m + sb.poller_table_off + i * sb.poller_size);
		atomic_store(&pl->state, PART_LIVE);
		atomic_store(&pl->blocking, 1);
		memset((uint8_t *)pl + offsetof(struct sb_poller, ready), 0xff,
		       sb.poller_size - offsetof(struct sb_poller, ready));
	}
	emit(k, T("pollers-live"), sel, m, size);
	memset(m + offsetof(SB, lock), 0xff, sizeof(pthread_mutex_t));
	emit(k, T("mutex-scribbled"), sel, m, size); /* the harness resets it */
	free(m);
#undef T
}

static void mutate_channel(struct sink *k, const char *v, const uint8_t *img,
			   size_t size)
{
	typedef struct ch_header H;
	typedef struct ch_subscriber S;
	typedef struct ch_group G;
	uint8_t sel = SEL_CHANNEL;
	size_t base = 0;
	char tag[128];
	H h;
	memcpy(&h, img, sizeof(h));
#define T(s) (snprintf(tag, sizeof(tag), "ch-%s-%s", v, s), tag)
	emit(k, T("valid"), sel, img, size);
	emit(k, T("other-epoch"), SEL_CHANNEL | SEL_KEEP_EPOCH, img, size);
	emit(k, T("as-bus"), 0, img, size);
	/* truncated at each structure boundary, and grown */
	const size_t cut[] = {0, 8, offsetof(H, bus_epoch), offsetof(H, claim),
			      sizeof(H) - 1, sizeof(H),
			      h.subscribers_off + sizeof(S), h.groups_off,
			      h.groups_off + sizeof(G), h.slots_off, size - 1};
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		char s[32];
		snprintf(s, sizeof(s), "cut%zu", cut[i]);
		if (cut[i] <= size)
			emit_size(k, T(s), sel, img, size, cut[i]);
	}
	emit_size(k, T("grown"), sel, img, size, size + 4096);
	/* identity */
	SET(T("magic"), H, magic, h.magic ^ 1);
	SET(T("abi-next"), H, abi_version, h.abi_version + 1);
	SET(T("header-size"), H, header_size, h.header_size + 64);
	SET(T("sub-size"), H, subscriber_size, h.subscriber_size / 2);
	SET(T("slothdr-size"), H, slot_header_size, 16);
	SET(T("cacheline"), H, cacheline, 128);
	SET(T("building"), H, state, OBJ_BUILDING);
	SET(T("state7"), H, state, 7);
	SET(T("id1"), H, channel_id, 1);
	SET(T("id-max"), H, channel_id, UINT32_MAX);
	/* geometry */
	SET(T("rsize-zero"), H, record_size, 0);
	SET(T("rsize-max"), H, record_size, SLOT_MAX_RECORD + 1);
	SET(T("rsize-plus8"), H, record_size, h.record_size + 8);
	SET(T("slot-size"), H, slot_size, h.slot_size + 8);
	SET(T("cap-zero"), H, capacity, 0);
	SET(T("cap-one"), H, capacity, 1);
	SET(T("cap-three"), H, capacity, 3);
	SET(T("cap-huge"), H, capacity, 1u << 30);
	SET(T("cap-top"), H, capacity, 1u << 31);
	SET(T("cap-double"), H, capacity, h.capacity * 2);
	SET(T("log2"), H, capacity_log2, h.capacity_log2 + 1);
	SET(T("flags-unknown"), H, flags, 8);
	SET(T("flags-ow-sync"), H, flags,
	    SHMBUS_CH_OVERWRITE | SHMBUS_CH_JOURNAL_SYNC);
	SET(T("flags-mp-ow"), H, flags,
	    SHMBUS_CH_MULTI_PRODUCER | SHMBUS_CH_OVERWRITE);
	SET(T("flags-mp"), H, flags, h.flags ^ SHMBUS_CH_MULTI_PRODUCER);
	/* the slot layout: the compact flag or the header size alone */
	SET(T("flags-compact"), H, flags, h.flags ^ SHMBUS_CH_COMPACT);
	SET(T("slot-header"), H, slot_header_size, 40 - h.slot_header_size);
	SET(T("policy-unknown"), H, stall_policy, SHMBUS_STALL_SPILL + 1);
	SET(T("policy-max"), H, stall_policy, UINT32_MAX);
	SET(T("subs-zero"), H, max_subscribers, 0);
	SET(T("subs-plus1"), H, max_subscribers, h.max_subscribers + 1);
	SET(T("subs-huge"), H, max_subscribers, 1u << 20);
	SET(T("groups-plus1"), H, max_groups, h.max_groups + 1);
	SET(T("groups-huge"), H, max_groups, UINT32_MAX);
	SET(T("group-size"), H, group_size, h.group_size + 64);
	SET(T("subs-off-end"), H, subscribers_off, size);
	SET(T("groups-off-huge"), H, groups_off, UINT64_MAX - 4095);
	SET(T("slots-off-end"), H, slots_off, size);
	SET(T("slots-off-zero"), H, slots_off, 0);
	SET(T("total-double"), H, total_size, (uint64_t)size * 2);
	SET(T("total-max"), H, total_size, UINT64_MAX);
	/* shared state that changes at run time */
	SET(T("claim-huge"), H, claim, UINT64_MAX - 1);
	SET(T("claim-half"), H, claim, UINT64_C(1) << 63);
	SET(T("hwm-max"), H, sub_hwm, UINT32_MAX);
	SET(T("sleepers"), H, data_sleepers, UINT32_MAX);
	SET(T("space-sleepers"), H, space_sleepers, UINT32_MAX);
	SET(T("pollers-all"), H, poller_mask, UINT64_MAX);
	base = h.subscribers_off; /* row 0 */
	SET(T("row-cursor-ahead"), S, cursor, h.claim + 5);
	SET(T("row-cursor-behind"), S, cursor, h.claim - 1000);
	SET(T("row-state9"), S, state, 9);
	SET(T("row-evicted"), S, state, SUB_EVICTED);
	SET(T("row-joining"), S, state, SUB_JOINING);
	SET(T("row-group-max"), S, group, UINT32_MAX);
	SET(T("row-group1"), S, group, 1);
	SET(T("row-after-n"), S, n_after, UINT32_MAX);
	SET(T("row-ttl"), S, ttl_ns, 1);
	SET(T("row-participant"), S, participant, UINT32_MAX);
	SET(T("row-holding"), S, holding, 1);
	SET(T("row-hold-attempts"), S, hold_attempts, UINT32_MAX);
	SET(T("row-retry-due"), S, retry_due, 0);
	base = 0; /* retry segments and the dead-letter queue */
	SET(T("retry-off"), H, retry_off, h.retry_off + 64);
	SET(T("retry-cap-zero"), H, retry_capacity, 0);
	SET(T("retry-cap-huge"), H, retry_capacity, UINT32_MAX);
	SET(T("retry-esize"), H, retry_entry_size, 8);
	SET(T("dlq-off-end"), H, dlq_off, size);
	SET(T("dlq-cap-three"), H, dlq_capacity, 3);
	SET(T("dlq-cap-huge"), H, dlq_capacity, 1u << 31);
	SET(T("dlq-esize"), H, dlq_entry_size, 0);
	SET(T("schema-off-end"), H, schema_off, size);
	base = h.dlq_off; /* more ids held than it has room for (a few) */
	SET(T("dlq-overfull"), struct ch_dlq, head, 5);
	SET(T("dlq-policy"), struct ch_dlq, policy, UINT32_MAX);
	/* retry entries: taken by nobody, due long ago, lengths past the
	 * record size, attempts at the limit */
	uint8_t *r = malloc(size);
	if (r == NULL)
		abort();
	memcpy(r, img, size);
	for (uint64_t i = 0; i < (uint64_t)h.max_subscribers *
					h.retry_capacity; i++) {
		struct retry_entry *e = (void *)(r + h.retry_off +
						 i * h.retry_entry_size);
		atomic_store(&e->state, i & 1 ? re_word(RE_TAKEN, 0xffffff)
					      : RE_READY);
		e->attempts = i & 2 ? UINT32_MAX : 0;
		e->due_ns = 0;
		e->len_flags = UINT32_MAX;
		e->seq = UINT64_MAX - i;
	}
	emit(k, T("retries-garbage"), sel, r, size);
	free(r);
	base = h.schema_off; /* a schema past its limits */
	typedef struct ch_schema SC;
	SET(T("schema-fields"), SC, n_fields, SHMBUS_SCHEMA_MAX_FIELDS + 1);
	SET(T("schema-enums"), SC, n_enums, UINT32_MAX);
	SET(T("schema-field-off"), SC, fields[0].offset, h.record_size);
	SET(T("schema-field-size"), SC, fields[0].size, UINT32_MAX);
	SET(T("schema-enum-off"), SC, fields[3].enum_off, UINT32_MAX);
	SET(T("schema-enum-count"), SC, fields[3].count, UINT32_MAX - 1);
	SET(T("schema-type"), SC, fields[1].type, UINT32_MAX);
	/* every row ACTIVE, named, gating, after rows past the table */
	uint8_t *m = malloc(size);
	if (m == NULL)
		abort();
	memcpy(m, img, size);
	for (uint32_t i = 0; i < h.max_subscribers; i++) {
		S *s = (S *)(m + h.subscribers_off + i * sizeof(S));
		atomic_store(&s->state, SUB_ACTIVE);
		snprintf(s->name, sizeof(s->name), "%s",
			 i == 0 ? "fz" : i == 1 ? "fzg" : "x");
		s->n_after = SHMBUS_MAX_AFTER;
		for (uint32_t a = 0; a < SHMBUS_MAX_AFTER; a++)
			s->after[a] = (uint16_t)(UINT16_MAX - a);
		s->group = i + 1;
	}
	emit(k, T("rows-all-active"), sel, m, size);
	/* group areas: wrong rows, members and partitions past the limits */
	memcpy(m, img, size);
	for (uint32_t gi = 0; gi < h.max_groups; gi++) {
		G *g = (G *)(m + h.groups_off + gi * h.group_size);
		atomic_store(&g->state, OBJ_READY);
		g->row = gi ? UINT32_MAX : 0;
		atomic_store(&g->next, UINT64_MAX - 3);
		for (uint32_t q = 0; q < KEY_PARTITIONS; q++)
			atomic_store(&g->part[q], UINT64_MAX - q);
		for (uint32_t mm = 0; mm < SHMBUS_MAX_MEMBERS; mm++)
			atomic_store(&g->members[mm].state, PART_LIVE);
		for (uint32_t w = 0; w < h.capacity; w++)
			atomic_store(&g->word[w],
				     gword(0, GW_TAKEN, 200 + w));
	}
	emit(k, T("groups-garbage"), sel, m, size);
	/* slots: committed at lap 0 with lengths past the record size, then
	 * claimed by participants that do not exist */
	memcpy(m, img, size);
	for (uint32_t i = 0; i < h.capacity; i++) {
		struct slot_header *sh =
			(void *)(m + h.slots_off + (size_t)i * h.slot_size);
		atomic_store(&sh->marker, marker_make(0, SLOT_COMMITTED, i));
		sh->len_flags = UINT32_MAX;
	}
	emit(k, T("slots-long"), sel, m, size);
	for (uint32_t i = 0; i < h.capacity; i++) {
		struct slot_header *sh =
			(void *)(m + h.slots_off + (size_t)i * h.slot_size);
		atomic_store(&sh->marker,
			     marker_make(0, SLOT_CLAIMED, MARKER_PART_MASK - i));
	}
	atomic_store(&((H *)m)->claim, h.capacity);
	emit(k, T("slots-claimed"), sel, m, size);
	free(m);
#undef T
}
#undef SET

/* Odd keys fail: the images then hold records waiting for redelivery. */
static int fail_odd(const shmbus_record_t *r, void *ctx)
{
	(void)ctx;
	return r->key & 1 ? -1 : 0;
}

static void must(int rc, const char *what)
{
	if (rc != 0)
		die(what);
}

/* Buses: the host's clock (TSC where the kernel trusts it) and
 * CLOCK_MONOTONIC, with a listed channel whose object is elsewhere, a
 * live producer and a poller (rows that look dead to the harness). */
static void gen_bus(struct sink *k, const char *name, const char *v,
		    bool mono)
{
	shmbus_unlink(name);
	shmbus_opts_t bo = {.max_channels = 2, .max_participants = 4};
	shmbus_t *bus;
	quick_clock(mono);
	int rc = shmbus_open(name, &bo, &bus);
	quick_clock(false);
	must(rc, "generator bus");
	shmbus_channel_opts_t co = {.record_size = 8, .capacity = 2};
	shmbus_channel_t *ch;
	shmbus_producer_t *p;
	shmbus_poller_t *pl;
	must(shmbus_channel_open(bus, "W", &co, &ch), "generator channel");
	must(shmbus_producer_open(ch, NULL, &p), "generator producer");
	must(shmbus_poller_open(bus, SHMBUS_WAIT_BLOCK, &pl), "poller");
	size_t size;
	uint8_t *img = snapshot(name, NULL, &size);
	shmbus_poller_close(pl);
	shmbus_close(bus);
	shmbus_unlink(name);
	mutate_bus(k, v, img, size);
	free(img);
}

enum ch_kind { CH_SP, CH_MP, CH_OVERWRITE, CH_EVICT, CH_COMPACT };

/* The multi-producer channel's record, described for the tools. */
struct gen_order {
	uint64_t id;
	int32_t qty;
	char sym[8];
	uint8_t side;
};
static const shmbus_enum_value_t gen_sides[] = {{"BUY", 0}, {"SELL", 1}};
static const shmbus_field_t gen_fields[] = {
	SHMBUS_FIELD(struct gen_order, id, SHMBUS_F_U64),
	SHMBUS_FIELD(struct gen_order, qty, SHMBUS_F_I32),
	SHMBUS_FIELD(struct gen_order, sym, SHMBUS_F_CHARS),
	SHMBUS_FIELD_ENUM(struct gen_order, side, gen_sides),
};
static const shmbus_schema_t gen_schema =
	SHMBUS_SCHEMA(struct gen_order, gen_fields);

/* A channel image in a state real use leaves: durable names, a group,
 * a barrier, records, failed records waiting for redelivery, a claimed
 * hole, a lapped or evicted reader. */
static void gen_channel(struct sink *k, const char *name, const char *v,
			enum ch_kind kind)
{
	shmbus_unlink(name);
	shmbus_opts_t bo = {.max_channels = 2, .max_participants = 8};
	shmbus_t *bus;
	quick_clock(true);
	int rc = shmbus_open(name, &bo, &bus);
	quick_clock(false);
	must(rc, "generator bus");
	/* small: the fuzzer's mutations then land on the structures, and a
	 * DLQ of 2 entries is full after two records */
	shmbus_channel_opts_t co = {.record_size = 8,
				    .capacity = 2,
				    .layout_hash = 0xf22,
				    .max_subscribers = 2,
				    .max_groups = 1,
				    .dlq_capacity = 2};
	if (kind == CH_MP) {
		co.record_size = sizeof(struct gen_order);
		co.schema = &gen_schema;
		co.capacity = 4;
		co.flags = SHMBUS_CH_MULTI_PRODUCER;
		co.max_subscribers = 3;
	} else if (kind == CH_OVERWRITE) {
		co.record_size = 16;
		co.capacity = 4;
		co.flags = SHMBUS_CH_OVERWRITE;
	} else if (kind == CH_EVICT) {
		co.stall_policy = SHMBUS_STALL_EVICT;
	} else if (kind == CH_COMPACT) { /* 8-byte slot headers */
		co.capacity = 4;
		co.flags = SHMBUS_CH_COMPACT | SHMBUS_CH_MULTI_PRODUCER;
		co.stall_policy = SHMBUS_STALL_EVICT;
	}
	shmbus_channel_t *ch;
	shmbus_producer_t *p;
	shmbus_sub_t *s, *s2 = NULL, *g = NULL;
	must(shmbus_channel_open(bus, CHANNEL, &co, &ch), "generator channel");
	must(shmbus_producer_open(ch, NULL, &p), "generator producer");
	shmbus_sub_opts_t so = {.name = "fz", .batch = 1};
	must(shmbus_subscribe(ch, fail_odd, NULL, &so, &s), "generator subscriber");
	uint64_t rec[4] = {1, 2, 3, 4};
	shmbus_claim_t c;
	switch (kind) {
	case CH_SP:
		shmbus_try_publish(p, rec, 8, 1);
		shmbus_try_publish(p, rec, 8, 2);
		shmbus_poll(s, 1);
		shmbus_try_publish(p, rec, 4, 3);
		break;
	case CH_MP: {
		const char *const up[] = {"fz"};
		/* one attempt only: its failures go to the DLQ */
		shmbus_sub_opts_t o2 = {.name = "fz2", .after = up,
					.n_after = 1,
					.retry = {.max_attempts = 1}};
		shmbus_sub_opts_t og = {.name = "fzg",
					.flags = SHMBUS_GROUP_KEYED};
		must(shmbus_subscribe(ch, fail_odd, NULL, &o2, &s2), "barrier");
		must(shmbus_group_join(ch, fail_odd, NULL, &og, &g), "group");
		for (uint64_t i = 0; i < 3; i++)
			shmbus_try_publish(p, rec, 24, i);
		shmbus_poll(s, 2);
		shmbus_poll(s2, 2);
		shmbus_poll(g, 2);
		/* a hole: claimed, never committed */
		shmbus_try_claim(p, 1, &c);
		break;
	}
	case CH_OVERWRITE:
		for (uint64_t i = 0; i < 9; i++)
			shmbus_try_publish(p, rec, 16, i);
		break;
	case CH_COMPACT:
		for (uint64_t i = 0; i < 3; i++)
			shmbus_try_publish(p, rec, 8, 0);
		shmbus_poll(s, 1);
		shmbus_try_claim(p, 1, &c); /* a hole */
		break;
	case CH_EVICT:
		shmbus_try_publish(p, rec, 8, 1);
		shmbus_try_publish(p, rec, 8, 2);
		shmbus_channel_evict(ch, 0);
		shmbus_channel_evict(ch, 0);
		break;
	}
	size_t size;
	uint8_t *img = snapshot(name, CHANNEL, &size);
	shmbus_close(bus); /* closes the handles; the names stay */
	shmbus_unlink(name);
	mutate_channel(k, v, img, size);
	free(img);
}

/* Generated files only (the prefixes below): a directory that is reused
 * loses the names an older generator wrote. */
static void clear_generated(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "bus-", 4) != 0 &&
		    strncmp(e->d_name, "ch-", 3) != 0)
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

static int make_corpus(const char *dir)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	clear_generated(dir);
	struct sink k = {.dir = dir};
	char name[32];
	snprintf(name, sizeof(name), "fzmk%d", (int)getpid());
	gen_bus(&k, name, "host", false);
	gen_bus(&k, name, "mono", true);
	gen_channel(&k, name, "sp", CH_SP);
	gen_channel(&k, name, "mp", CH_MP);
	gen_channel(&k, name, "ow", CH_OVERWRITE);
	gen_channel(&k, name, "ev", CH_EVICT);
	gen_channel(&k, name, "cp", CH_COMPACT);
	printf("fuzz_open: wrote %u inputs to %s\n", k.files, dir);
	return k.failed ? 1 : 0;
}

/* libFuzzer's main calls this first: the fuzzing binary can write its
 * own starting corpus (`fuzz_open --make-corpus DIR`). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	for (int i = 1; i + 1 < *argc; i++)
		if (strcmp((*argv)[i], "--make-corpus") == 0)
			exit(make_corpus((*argv)[i + 1]));
	return 0;
}

/* ---------------------------------------------------- plain driver */

#ifndef SHMBUS_LIBFUZZER

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	uint8_t *buf = malloc(MAX_OBJECT + 2);
	size_t n = buf ? fread(buf, 1, MAX_OBJECT + 2, f) : 0;
	fclose(f);
	if (buf == NULL)
		return -1;
	/* the name first: if the input crashes, the report follows it */
	fprintf(stderr, "run %s (%zu bytes)\n", path, n);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

static int skip_name(const char *name)
{
	return name[0] == '.' || strncmp(name, "README", 6) == 0;
}

/* Files of a directory in name order (a failure reproduces in order). */
static int run_path(const char *path, unsigned *ran)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (run_file(path) != 0)
			return -1;
		++*ran;
		return 0;
	}
	struct dirent **list;
	int n = scandir(path, &list, NULL, alphasort);
	if (n < 0) {
		perror(path);
		return -1;
	}
	int rc = 0;
	for (int i = 0; i < n; i++) {
		char file[4096];
		snprintf(file, sizeof(file), "%s/%s", path, list[i]->d_name);
		if (rc == 0 && !skip_name(list[i]->d_name) &&
		    stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(file) != 0)
				rc = -1;
			else
				++*ran;
		}
		free(list[i]);
	}
	free(list);
	return rc;
}

/* Objects of ours in /dev/shm after the run, besides the planted ones and
 * the bus of channel images, are a harness leak (a channel made in a bus
 * image's table and not removed, say). Then the clean-up, checked too. */
static bool ours(const char *name, const char *bus)
{
	size_t n = strlen(bus);
	return strncmp(name, "shmbus.", 7) == 0 &&
	       strncmp(name + 7, bus, n) == 0 &&
	       (name[7 + n] == '\0' || name[7 + n] == ':');
}

static int leftovers(bool after_teardown)
{
	int n = 0;
	DIR *d = opendir("/dev/shm");
	if (d == NULL)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!ours(e->d_name, bus_name) && !ours(e->d_name, ch_bus_name))
			continue;
		bool kept = strcmp(e->d_name, bus_obj.obj + 1) == 0 ||
			    strcmp(e->d_name, ch_obj.obj + 1) == 0 ||
			    strcmp(e->d_name + 7, ch_bus_name) == 0;
		if (kept && !after_teardown)
			continue;
		fprintf(stderr, "left in /dev/shm: %s\n", e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fuzz_open_plain [-v] [--expect-open] FILE|DIR...\n"
		"       fuzz_open_plain --make-corpus DIR\n"
		"Runs every file (of each directory) through the fuzz target;\n"
		"--expect-open fails unless some bus image and some channel\n"
		"image opened (a corpus of this build's valid objects);\n"
		"-v prints the result of each open.\n");
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--make-corpus") == 0)
		return make_corpus(argv[2]);
	bool expect_open = false;
	int first = 1;
	for (; first < argc; first++) {
		if (strcmp(argv[first], "--expect-open") == 0)
			expect_open = true;
		else if (strcmp(argv[first], "-v") == 0)
			verbose = true;
		else
			break;
	}
	if (first >= argc || argv[first][0] == '-') {
		usage();
		return 2;
	}
	unsigned ran = 0;
	int rc = 0;
	for (int i = first; i < argc && rc == 0; i++)
		rc = run_path(argv[i], &ran);
	printf("fuzz_open: ran %u inputs: %llu bus images (%llu opened), "
	       "%llu channel images (%llu opened)\n",
	       ran, (unsigned long long)counts.bus_runs,
	       (unsigned long long)counts.bus_opened,
	       (unsigned long long)counts.ch_runs,
	       (unsigned long long)counts.ch_opened);
	if (rc)
		return 1;
	if (ran == 0) {
		fprintf(stderr, "fuzz_open: no inputs found\n");
		return 1;
	}
	int left = leftovers(false);
	teardown();
	if (left + leftovers(true))
		return 1;
	/* a corpus of valid images that no longer opens means the harness
	 * lost track of the layout: it would fuzz nothing but refusals */
	if (expect_open && (counts.bus_opened == 0 || counts.ch_opened == 0)) {
		fprintf(stderr, "fuzz_open: no valid bus or channel image "
				"opened; is the corpus of this build?\n");
		return 1;
	}
	return 0;
}

#endif /* SHMBUS_LIBFUZZER */
