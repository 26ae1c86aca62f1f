/*
 * Opening buses and channels: names, configuration, and forged or stale
 * shared state. Every bad input must give a clear error code, never a crash.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"
#include "internal.h"

static const shmbus_channel_opts_t CH = {
	.record_size = 64, .capacity = 256, .layout_hash = 0xabc};

Test(names, rejects_bad_names)
{
	shmbus_t *bus = NULL;
	cr_expect_eq(shmbus_open("", NULL, &bus), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_open(NULL, NULL, &bus), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_open("a/b", NULL, &bus), SHMBUS_EINVAL);
	cr_expect(strstr(shmbus_errmsg(), "character") != NULL, "%s",
		  shmbus_errmsg());
	cr_expect_eq(shmbus_open("a:b", NULL, &bus), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_open("..", NULL, &bus), SHMBUS_EINVAL);
	char longname[64];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[63] = 0;
	cr_expect_eq(shmbus_open(longname, NULL, &bus), SHMBUS_EINVAL);
	cr_expect(strstr(shmbus_errmsg(), "longer") != NULL);
	longname[SHMBUS_NAME_MAX] = 0; /* exactly the limit is fine */
	shmbus_unlink(longname);
	cr_assert_eq(shmbus_open(longname, NULL, &bus), 0, "%s",
		     shmbus_errmsg());
	shmbus_channel_t *ch;
	cr_expect_eq(shmbus_channel_open(bus, "x/y", &CH, &ch), SHMBUS_EINVAL);
	cr_expect_eq(shmbus_channel_open(bus, "", &CH, &ch), SHMBUS_EINVAL);
	shmbus_close(bus);
	cr_expect_eq(shmbus_unlink(longname), 0);
	cr_expect_eq(shmbus_unlink(longname), SHMBUS_ENOENT);
	cr_expect(strcmp(shmbus_strerror(SHMBUS_EBUSY), "unknown error") != 0);
}

Test(open, create_attach_and_permissions)
{
	const char *name = test_bus("perm");
	shmbus_t *a, *b;
	cr_assert_eq(shmbus_open(name, NULL, &a), 0, "%s", shmbus_errmsg());
	cr_assert_eq(shmbus_open(name, NULL, &b), 0, "%s", shmbus_errmsg());
	cr_expect_eq(shmbus_epoch(a), shmbus_epoch(b));
	cr_expect_neq(shmbus_epoch(a), 0);
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm/shmbus.%s", name);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
	shmbus_opts_t excl = {.flags = SHMBUS_OPEN_CREATE | SHMBUS_OPEN_EXCL};
	shmbus_t *c;
	cr_expect_eq(shmbus_open(name, &excl, &c), SHMBUS_EEXIST);
	shmbus_close(b);
	shmbus_close(a);
	uint64_t old_epoch;
	cr_assert_eq(shmbus_open(name, NULL, &a), 0);
	old_epoch = shmbus_epoch(a);
	shmbus_close(a);
	cr_assert_eq(shmbus_unlink(name), 0);
	/* attach-only open of a missing bus */
	shmbus_opts_t attach = {.flags = SHMBUS_OPEN_NO_PREFAULT};
	cr_expect_eq(shmbus_open(name, &attach, &a), SHMBUS_ENOENT);
	/* a re-created bus has a new epoch */
	cr_assert_eq(shmbus_open(name, NULL, &a), 0);
	cr_expect_neq(shmbus_epoch(a), old_epoch);
	shmbus_close(a);
	shmbus_unlink(name);
}

Test(open, channel_config_checked)
{
	const char *name = test_bus("cfg");
	shmbus_t *bus;
	cr_assert_eq(shmbus_open(name, NULL, &bus), 0);
	shmbus_channel_t *ch, *ch2;
	shmbus_channel_opts_t o = CH;
	o.capacity = 100;
	cr_expect_eq(shmbus_channel_open(bus, "C", &o, &ch), SHMBUS_EINVAL);
	cr_expect(strstr(shmbus_errmsg(), "power of two") != NULL);
	o = CH;
	o.record_size = 0;
	cr_expect_eq(shmbus_channel_open(bus, "C", &o, &ch), SHMBUS_EINVAL);
	o = CH;
	o.flags = SHMBUS_CH_OVERWRITE | SHMBUS_CH_MULTI_PRODUCER;
	cr_expect_eq(shmbus_channel_open(bus, "C", &o, &ch), SHMBUS_EINVAL);
	o = CH;
	o.stall_policy = SHMBUS_STALL_SPILL + 1;
	cr_expect_eq(shmbus_channel_open(bus, "C", &o, &ch), SHMBUS_EINVAL);
	o = CH;
	o.stall_policy = SHMBUS_STALL_SPILL; /* spill needs back-pressure */
	o.flags = SHMBUS_CH_OVERWRITE;
	cr_expect_eq(shmbus_channel_open(bus, "C", &o, &ch), SHMBUS_EINVAL);
	o = CH;
	o.flags = SHMBUS_CH_OVERWRITE | SHMBUS_CH_JOURNAL_SYNC;
	cr_expect_eq(shmbus_channel_open(bus, "C", &o, &ch), SHMBUS_EINVAL);
	o = CH;
	o.flags = 1u << 5; /* unknown */
	cr_expect_eq(shmbus_channel_open(bus, "C", &o, &ch), SHMBUS_EINVAL);

	cr_assert_eq(shmbus_channel_open(bus, "C", &CH, &ch), 0, "%s",
		     shmbus_errmsg());
	o = CH;
	o.record_size = 32;
	cr_expect_eq(shmbus_channel_open(bus, "C", &o, &ch2), SHMBUS_EEXIST);
	cr_expect(strstr(shmbus_errmsg(), "record_size") != NULL, "%s",
		  shmbus_errmsg());
	o = CH;
	o.layout_hash = 0xabd;
	cr_expect_eq(shmbus_channel_open(bus, "C", &o, &ch2), SHMBUS_EEXIST);
	cr_expect(strstr(shmbus_errmsg(), "layout_hash") != NULL);
	/* attach without declaring: whatever exists */
	cr_assert_eq(shmbus_channel_open(bus, "C", NULL, &ch2), 0);
	shmbus_channel_info_t info;
	cr_assert_eq(shmbus_channel_get_info(ch2, &info), 0);
	cr_expect_eq(info.record_size, 64);
	cr_expect_eq(info.capacity, 256);
	cr_expect_eq(info.slot_size, 96);
	cr_expect_eq(info.layout_hash, 0xabc);
	shmbus_close(bus);

	/* attach-only of a channel nobody creates: bounded wait, ENOENT */
	shmbus_opts_t quick = {.open_timeout_ms = 50};
	cr_assert_eq(shmbus_open(name, &quick, &bus), 0);
	cr_expect_eq(shmbus_channel_open(bus, "Nope", NULL, &ch),
		     SHMBUS_ENOENT);
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(open, full_tables)
{
	const char *name = test_bus("full");
	shmbus_opts_t bo = {.max_channels = 2};
	shmbus_t *bus;
	cr_assert_eq(shmbus_open(name, &bo, &bus), 0);
	shmbus_channel_t *a, *b, *c;
	cr_assert_eq(shmbus_channel_open(bus, "A", &CH, &a), 0);
	cr_assert_eq(shmbus_channel_open(bus, "B", &CH, &b), 0);
	cr_expect_eq(shmbus_channel_open(bus, "C", &CH, &c), SHMBUS_EFULL);
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* Map the bus object directly, to forge its state. */
static void *map_object(const char *obj, size_t *size)
{
	int fd = shm_open(obj, O_RDWR, 0);
	cr_assert(fd >= 0);
	struct stat st;
	fstat(fd, &st);
	*size = (size_t)st.st_size;
	void *p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	cr_assert(p != MAP_FAILED);
	return p;
}

static int reopen(const char *name)
{
	shmbus_opts_t o = {.open_timeout_ms = 100};
	shmbus_t *bus = NULL;
	int rc = shmbus_open(name, &o, &bus);
	if (rc == 0)
		shmbus_close(bus);
	return rc;
}

Test(forged, bus_superblock)
{
	const char *name = test_bus("forge");
	shmbus_t *bus;
	cr_assert_eq(shmbus_open(name, NULL, &bus), 0);
	shmbus_close(bus);
	char obj[128];
	snprintf(obj, sizeof(obj), "/shmbus.%s", name);
	size_t size;
	struct sb_superblock *sb = map_object(obj, &size);

	sb->magic ^= 1;
	cr_expect_eq(reopen(name), SHMBUS_ECORRUPT);
	sb->magic ^= 1;

	sb->abi_version = 99;
	cr_expect_eq(reopen(name), SHMBUS_EVERSION);
	cr_expect(strstr(shmbus_errmsg(), "ABI version 99") != NULL);
	sb->abi_version = SHMBUS_ABI_VERSION;

	sb->participant_size = 64;
	cr_expect_eq(reopen(name), SHMBUS_EVERSION);
	sb->participant_size = sizeof(struct sb_participant);

	sb->max_channels = 1u << 30;
	cr_expect_eq(reopen(name), SHMBUS_ECORRUPT);
	sb->max_channels = 256;

	sb->participant_table_off += 8;
	cr_expect_eq(reopen(name), SHMBUS_ECORRUPT);
	sb->participant_table_off -= 8;

	uint32_t kind = sb->clock_kind;
	sb->clock_kind = 9;
	cr_expect_eq(reopen(name), SHMBUS_ECORRUPT);
	sb->clock_kind = kind;

	sb->state = 7;
	cr_expect_eq(reopen(name), SHMBUS_ECORRUPT);
	/* a creator that died half-way: never becomes ready */
	sb->state = OBJ_BUILDING;
	cr_expect_eq(reopen(name), SHMBUS_ETIMEDOUT);
	cr_expect(strstr(shmbus_errmsg(), "shmbus destroy") != NULL);
	sb->state = OBJ_READY;
	cr_expect_eq(reopen(name), 0, "%s", shmbus_errmsg());
	munmap(sb, size);

	/* truncated object: the advice is --force, for destroy refuses a
	 * bus it cannot open (it said `shmbus destroy NAME`) */
	int fd = shm_open(obj, O_RDWR, 0);
	cr_assert_eq(ftruncate(fd, 4096), 0);
	close(fd);
	cr_expect_eq(reopen(name), SHMBUS_ECORRUPT);
	cr_expect(strstr(shmbus_errmsg(), "shmbus destroy --force") != NULL,
		  "%s", shmbus_errmsg());
	cr_expect_eq(shmbus_destroy(name, 0), SHMBUS_ECORRUPT);
	fd = shm_open(obj, O_RDWR, 0);
	cr_assert_eq(ftruncate(fd, 16), 0); /* shorter than a superblock */
	close(fd);
	cr_expect_eq(reopen(name), SHMBUS_ETIMEDOUT);
	cr_expect(strstr(shmbus_errmsg(), "shmbus destroy --force") != NULL,
		  "%s", shmbus_errmsg());
	cr_expect_eq(shmbus_destroy(name, 1), 0);
}

Test(forged, channel_header)
{
	const char *name = test_bus("forgech");
	shmbus_t *bus;
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_open(name, NULL, &bus), 0);
	cr_assert_eq(shmbus_channel_open(bus, "C", &CH, &ch), 0);
	shmbus_channel_close(ch);
	char obj[128];
	snprintf(obj, sizeof(obj), "/shmbus.%s:C", name);
	size_t size;
	struct ch_header *h = map_object(obj, &size);

	struct {
		void *field;
		size_t len;
		uint64_t bad;
		int want;
	} cases[] = {
		{&h->magic, 8, 1, SHMBUS_ECORRUPT},
		{&h->abi_version, 4, SHMBUS_ABI_VERSION + 1, SHMBUS_EVERSION},
		{&h->bus_epoch, 8, 5, SHMBUS_ECORRUPT},
		{&h->capacity, 4, 100, SHMBUS_ECORRUPT},
		{&h->capacity, 4, 512, SHMBUS_ECORRUPT},
		{&h->slot_size, 4, 7, SHMBUS_ECORRUPT},
		{&h->record_size, 4, 1u << 30, SHMBUS_ECORRUPT},
		{&h->slots_off, 8, 1ull << 40, SHMBUS_ECORRUPT},
		{&h->subscribers_off, 8, 8, SHMBUS_ECORRUPT},
		{&h->max_subscribers, 4, 0, SHMBUS_ECORRUPT},
		/* the slot layout follows the compact flag: each alone is
		 * another layout */
		{&h->flags, 4, SHMBUS_CH_COMPACT, SHMBUS_EVERSION},
		{&h->slot_header_size, 4, 8, SHMBUS_EVERSION},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t saved = 0;
		memcpy(&saved, cases[i].field, cases[i].len);
		memcpy(cases[i].field, &cases[i].bad, cases[i].len);
		int rc = shmbus_channel_open(bus, "C", NULL, &ch);
		cr_expect_eq(rc, cases[i].want, "case %zu: rc %d (%s)", i, rc,
			     shmbus_errmsg());
		if (rc == 0)
			shmbus_channel_close(ch);
		memcpy(cases[i].field, &saved, cases[i].len);
	}
	cr_assert_eq(shmbus_channel_open(bus, "C", NULL, &ch), 0, "%s",
		     shmbus_errmsg());
	shmbus_channel_close(ch);
	munmap(h, size);

	/* truncated channel object: in part, or whole (which said "mmap of
	 * 0 bytes: Invalid argument", SHMBUS_ENOMEM) */
	int fd = shm_open(obj, O_RDWR, 0);
	cr_assert_eq(ftruncate(fd, 8192), 0);
	cr_expect_eq(shmbus_channel_open(bus, "C", NULL, &ch), SHMBUS_ECORRUPT);
	cr_expect(strstr(shmbus_errmsg(), "truncated") != NULL, "%s",
		  shmbus_errmsg());
	cr_assert_eq(ftruncate(fd, 0), 0);
	close(fd);
	cr_expect_eq(shmbus_channel_open(bus, "C", NULL, &ch), SHMBUS_ECORRUPT,
		     "%s", shmbus_errmsg());
	cr_expect(strstr(shmbus_errmsg(), "shorter than a channel header: "
					  "truncated") != NULL,
		  "%s", shmbus_errmsg());
	/* removed behind the bus's back */
	shm_unlink(obj);
	cr_expect_eq(shmbus_channel_open(bus, "C", NULL, &ch), SHMBUS_ECORRUPT);
	cr_expect(strstr(shmbus_errmsg(), "gone") != NULL, "%s",
		  shmbus_errmsg());
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(forged, stale_channel_object_replaced)
{
	/* An object left by an earlier bus of the same name is replaced, not
	 * attached: its sequences belong to another epoch. */
	const char *name = test_bus("stale");
	shmbus_t *bus;
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_open(name, NULL, &bus), 0);
	cr_assert_eq(shmbus_channel_open(bus, "C", &CH, &ch), 0);
	shmbus_close(bus);
	char obj[128];
	snprintf(obj, sizeof(obj), "/shmbus.%s", name);
	shm_unlink(obj); /* bus gone, channel object left behind */
	cr_assert_eq(shmbus_open(name, NULL, &bus), 0);
	cr_assert_eq(shmbus_channel_open(bus, "C", &CH, &ch), 0, "%s",
		     shmbus_errmsg());
	shmbus_close(bus);
	shmbus_unlink(name);
}

/* As root: become uid, its group too. 0, or -1. */
static int become(uid_t uid)
{
	return setgroups(0, NULL) || setresgid(uid, uid, uid) ||
			       setresuid(uid, uid, uid)
		       ? -1
		       : 0;
}

/* nobody (65534) made the object of channel C before the bus was made:
 * user 65533, who makes the bus, may neither use nor remove it, and is
 * told whose it is (it was told "keeps reappearing", a live process). */
Test(forged, channel_object_of_another_user_names_its_owner)
{
	const char *name = test_bus("squat");
	char obj[128];
	snprintf(obj, sizeof(obj), "/shmbus.%s:C", name);
	pid_t pid = test_fork();
	if (pid == 0) {
		if (become(65534))
			_exit(3);
		int fd = shm_open(obj, O_RDWR | O_CREAT | O_EXCL, 0600);
		_exit(fd >= 0 && ftruncate(fd, 4096) == 0 ? 0 : 4);
	}
	cr_assert_eq(child_status(pid), 0);
	char *msg = shared_alloc(4096);
	cr_assert_not_null(msg);
	pid = test_fork();
	if (pid == 0) {
		shmbus_t *bus;
		shmbus_channel_t *ch;
		if (become(65533) || shmbus_open(name, NULL, &bus))
			_exit(3);
		int rc = shmbus_channel_open(bus, "C", &CH, &ch);
		snprintf(msg, 4096, "%s", shmbus_errmsg());
		_exit(rc == SHMBUS_EPERM ? 0 : rc == SHMBUS_EBUSY ? 5 : 6);
	}
	int st = child_status(pid);
	cr_expect_eq(st, 0, "exit %d (5: EBUSY): %s", st, msg);
	static const char *const says[] = {
		"uid 65534 (nobody)", "not to us (uid 65533)", "/shmbus.",
		"ask its owner or root to remove /dev/shm/shmbus.", NULL};
	for (int i = 0; says[i]; i++)
		cr_expect(strstr(msg, says[i]) != NULL, "no '%s' in: %s",
			  says[i], msg);
	munmap(msg, 4096);
	shmbus_unlink(name); /* root removes both */
}

Test(open, memory_options)
{
	const char *name = test_bus("memopt");
	shmbus_t *bus;
	shmbus_opts_t o = {.numa_node = 1 + 63};
	cr_expect_eq(shmbus_open(name, &o, &bus), SHMBUS_EINVAL);
	cr_expect(strstr(shmbus_errmsg(), "NUMA node 63") != NULL, "%s",
		  shmbus_errmsg());
	shmbus_unlink(name);
	o.numa_node = 1; /* node 0 exists on every Linux machine */
	o.flags = SHMBUS_OPEN_CREATE | SHMBUS_OPEN_MLOCK;
	int rc = shmbus_open(name, &o, &bus);
	cr_expect(rc == 0 || (rc == SHMBUS_ENOMEM &&
			      strstr(shmbus_errmsg(), "RLIMIT_MEMLOCK")),
		  "rc %d: %s", rc, shmbus_errmsg());
	if (rc == 0)
		shmbus_close(bus);
	shmbus_unlink(name);
	o.numa_node = 0;
	o.flags = SHMBUS_OPEN_CREATE | SHMBUS_OPEN_HUGEPAGES;
	rc = shmbus_open(name, &o, &bus);
	cr_expect(rc == 0 || (rc == SHMBUS_ENOTSUP &&
			      strstr(shmbus_errmsg(), "shmem_enabled")),
		  "rc %d: %s", rc, shmbus_errmsg());
	if (rc == 0)
		shmbus_close(bus);
	shmbus_unlink(name);
}

static int nop_handler(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}

/* Random damage to a channel's header and subscriber table: every open
 * either fails with a code or yields a channel that can be used without a
 * crash (what a buggy or hostile peer of the same user can do, short of
 * truncation). A seeded, repeatable fuzz over the validation path. */
Test(forged, random_header_damage_never_crashes, .timeout = 120)
{
	const char *name = test_bus("fuzz");
	shmbus_t *bus;
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_open(name, NULL, &bus), 0);
	cr_assert_eq(shmbus_channel_open(bus, "C", &CH, &ch), 0);
	shmbus_channel_close(ch);
	char obj[128];
	snprintf(obj, sizeof(obj), "/shmbus.%s:C", name);
	size_t size;
	uint8_t *base = map_object(obj, &size);
	/* the header and the first subscriber rows */
	size_t span = sizeof(struct ch_header) + 4 * sizeof(struct ch_subscriber);
	uint8_t *pristine = malloc(span);
	memcpy(pristine, base, span);
	unsigned seed = 12345;
	int opened = 0, refused = 0;
	for (int iter = 0; iter < 3000; iter++) {
		int flips = 1 + rand_r(&seed) % 4;
		for (int f = 0; f < flips; f++) {
			size_t at = (size_t)rand_r(&seed) % span;
			base[at] = (uint8_t)rand_r(&seed);
		}
		int rc = shmbus_channel_open(bus, "C", NULL, &ch);
		if (rc == 0) {
			opened++;
			shmbus_sub_opts_t so = {.name = "f"};
			shmbus_sub_t *s;
			if (shmbus_subscribe(ch, nop_handler, NULL, &so, &s) == 0) {
				shmbus_poll(s, 16);
				shmbus_sub_close(s, 0);
			}
			shmbus_producer_t *p;
			if (shmbus_producer_open(ch, NULL, &p) == 0) {
				uint64_t v = 0;
				shmbus_try_publish(p, &v, 8, 0);
				shmbus_producer_close(p);
			}
			shmbus_channel_close(ch);
		} else {
			refused++;
			cr_assert(rc < 0 && strcmp(shmbus_strerror(rc),
						  "unknown error") != 0);
		}
		memcpy(base, pristine, span);
	}
	cr_log_info("%d opened, %d refused", opened, refused);
	cr_expect_gt(refused, 0);
	free(pristine);
	munmap(base, size);
	shmbus_close(bus);
	shmbus_unlink(name);
}

Test(open, the_library_says_its_version_at_run_time)
{
	/* as the headers this test was built with say it, and the version
	 * string and number agree with each other */
	cr_assert_eq(shmbus_version_number(), SHMBUS_VERSION_NUMBER);
	cr_assert_eq(shmbus_abi_version(), SHMBUS_ABI_VERSION);
	unsigned ma, mi, pa;
	cr_assert_eq(sscanf(shmbus_version(), "%u.%u.%u", &ma, &mi, &pa), 3,
		     "'%s'", shmbus_version());
	cr_assert_eq((ma << 16) | (mi << 8) | pa, shmbus_version_number(),
		     "'%s' against 0x%06x", shmbus_version(),
		     shmbus_version_number());
	cr_assert_eq(ma, SHMBUS_VERSION_MAJOR);
	cr_assert_eq(mi, SHMBUS_VERSION_MINOR);
}
