/*
 * POSIX shared-memory objects (shm.c) below the bus: names checked with
 * what, where and why; creation exclusive, sized and with the asked mode
 * whatever the umask; an object shorter than its reader needs refused
 * (SHMBUS_EAGAIN: still being built); the kernel's byte locks and the
 * robust mutexes released when their holder is killed (fork + SIGKILL).
 * (Truncated and forged bus and channel objects: test_open.c.)
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"
#include "shm.h"

Test(shm, names_are_checked_with_what_where_and_why)
{
	static const struct {
		const char *name, *says;
	} bad[] = {
		{NULL, "widget name is empty"},
		{"", "widget name is empty"},
		{"a/b", "widget name 'a/b' has character 0x2f at 1; use only "
			"letters, digits, '_', '-' and '.'"},
		{"ok ok", "has character 0x20 at 2"},
		{"x\n", "has character 0x0a at 1"},
		{"caf\xc3\xa9", "has character 0xc3 at 3"},
		{":", "has character 0x3a at 0"},
		{".", "widget name '.' is reserved"},
		{"..", "widget name '..' is reserved"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(shm_name_check(bad[i].name, "widget name"),
			     SHMBUS_EINVAL, "case %zu", i);
		cr_expect(strstr(shmbus_errmsg(), bad[i].says) != NULL,
			  "case %zu: %s", i, shmbus_errmsg());
	}
	char name[SHMBUS_NAME_MAX + 2];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	cr_expect_eq(shm_name_check(name, "bus name"), SHMBUS_EINVAL);
	char want[64];
	snprintf(want, sizeof(want), "bus name is longer than %d characters",
		 SHMBUS_NAME_MAX);
	cr_expect(strstr(shmbus_errmsg(), want) != NULL, "%s",
		  shmbus_errmsg());
	name[SHMBUS_NAME_MAX] = '\0';
	cr_expect_eq(shm_name_check(name, "bus name"), 0);
	cr_expect_eq(shm_name_check("A-z_0.9", "bus name"), 0);
	cr_expect_eq(shm_name_check("...", "bus name"), 0);
	char obj[SHM_OBJNAME_MAX];
	shm_objname(obj, "b", NULL);
	cr_expect_str_eq(obj, "/shmbus.b");
	shm_objname(obj, "b", "Orders");
	cr_expect_str_eq(obj, "/shmbus.b:Orders");
}

static void objname(char out[SHM_OBJNAME_MAX], const char *tag)
{
	char n[48];
	snprintf(n, sizeof(n), "t%d.%s", (int)getpid(), tag);
	shm_objname(out, n, NULL);
	shm_unlink(out);
}

Test(shm, create_is_exclusive_sized_and_keeps_its_mode)
{
	char obj[SHM_OBJNAME_MAX];
	objname(obj, "cr");
	mode_t old = umask(077);
	struct shm_map m, m2;
	cr_assert_eq(shm_create(obj, 3 * 4096 + 10, 0644, 0, -1, &m), 0, "%s",
		     shmbus_errmsg());
	umask(old);
	struct stat st;
	cr_assert_eq(fstat(m.fd, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0644, "mode %o", st.st_mode & 0777);
	cr_expect_eq(st.st_size, 3 * 4096 + 10);
	cr_expect_eq(m.size, 3 * 4096 + 10);
	memset(m.addr, 0x5a, m.size); /* every byte backed */
	cr_expect_eq(shm_create(obj, 4096, 0600, 0, -1, &m2), SHMBUS_EEXIST);
	/* attached: the same bytes */
	cr_assert_eq(shm_attach(obj, 4096, 0, &m2), 0);
	cr_expect_eq(m2.size, m.size);
	cr_expect_eq(((uint8_t *)m2.addr)[m.size - 1], 0x5a);
	shm_unmap(&m2);
	cr_expect_eq(m2.addr, NULL);
	cr_expect_eq(m2.fd, -1);
	shm_unmap(&m);
	shm_unlink(obj);
	cr_expect_eq(shm_attach(obj, 0, 0, &m2), SHMBUS_ENOENT);
}

/* An object shorter than its reader needs -- a creator still building it,
 * or one cut short -- is not mapped: SHMBUS_EAGAIN, never a SIGBUS. */
Test(shm, a_short_object_is_refused)
{
	char obj[SHM_OBJNAME_MAX], path[160];
	objname(obj, "sh");
	int fd = shm_open(obj, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	struct shm_map m;
	cr_expect_eq(shm_attach(obj, 1, 0, &m), SHMBUS_EAGAIN); /* empty */
	cr_assert_eq(ftruncate(fd, 8192), 0);
	cr_expect_eq(shm_attach(obj, 8193, 0, &m), SHMBUS_EAGAIN);
	cr_assert_eq(shm_attach(obj, 8192, 0, &m), 0);
	cr_expect_eq(m.size, 8192);
	shm_unmap(&m);
	close(fd);
	snprintf(path, sizeof(path), "/dev/shm%s", obj);
	cr_expect_eq(access(path, F_OK), 0, "attach removed it");
	shm_unlink(obj);
}

/* A child that takes byte 5 of obj through its own open, then waits to
 * be killed. */
static pid_t lock_holder(const char *obj)
{
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = test_fork();
	if (pid == 0) {
		int fd = shm_open(obj, O_RDWR, 0);
		if (fd < 0 || shm_lock_byte(fd, 5) != 0)
			_exit(3);
		(void)!write(ready[1], "r", 1);
		pause();
		_exit(0);
	}
	char x;
	close(ready[1]);
	cr_assert_eq(read(ready[0], &x, 1), 1, "the holder did not start");
	close(ready[0]);
	return pid;
}

Test(shm, a_byte_lock_is_released_when_its_holder_is_killed)
{
	char obj[SHM_OBJNAME_MAX];
	objname(obj, "lk");
	struct shm_map m;
	cr_assert_eq(shm_create(obj, 4096, 0600, 0, -1, &m), 0);
	pid_t pid = lock_holder(obj);
	cr_expect_eq(shm_byte_held(m.fd, 5), 1);
	cr_expect_eq(shm_lock_byte(m.fd, 5), SHMBUS_EBUSY);
	cr_expect_eq(shm_byte_held(m.fd, 4), 0); /* one byte only */
	cr_expect_eq(shm_byte_held(m.fd, 6), 0);
	cr_expect_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(child_status(pid), 128 + SIGKILL);
	cr_expect_eq(shm_byte_held(m.fd, 5), 0, "a dead holder's lock");
	cr_expect_eq(shm_lock_byte(m.fd, 5), 0);
	/* ours now: another open description sees it held, until unlock */
	int fd2 = shm_open(obj, O_RDWR, 0);
	cr_assert_geq(fd2, 0);
	cr_expect_eq(shm_byte_held(fd2, 5), 1);
	cr_expect_eq(shm_lock_byte(fd2, 5), SHMBUS_EBUSY);
	shm_unlock_byte(m.fd, 5);
	cr_expect_eq(shm_byte_held(fd2, 5), 0);
	close(fd2);
	shm_unmap(&m);
	shm_unlink(obj);
}

Test(shm, a_robust_mutex_is_recovered_from_a_killed_holder)
{
	pthread_mutex_t *mx = shared_alloc(sizeof(*mx));
	int *value = shared_alloc(sizeof(int));
	cr_assert(mx && value);
	cr_assert_eq(shm_mutex_init(mx), 0);
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = test_fork();
	if (pid == 0) {
		if (shm_mutex_lock(mx) != 0)
			_exit(3);
		*value = 1;
		(void)!write(ready[1], "r", 1);
		pause();
		_exit(0);
	}
	char x;
	cr_assert_eq(read(ready[0], &x, 1), 1);
	cr_expect_eq(pthread_mutex_trylock(mx), EBUSY);
	kill(pid, SIGKILL);
	cr_assert_eq(child_status(pid), 128 + SIGKILL);
	cr_assert_eq(shm_mutex_lock(mx), 0);
	cr_expect_eq(*value, 1);
	cr_assert_eq(pthread_mutex_unlock(mx), 0);
	/* consistent again: a plain lock works, no EOWNERDEAD */
	cr_expect_eq(pthread_mutex_lock(mx), 0);
	cr_expect_eq(pthread_mutex_unlock(mx), 0);
}
