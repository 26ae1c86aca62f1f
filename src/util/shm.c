#define _GNU_SOURCE
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "error.h"
#include "private_export.h"
#include "shmbus/shmbus.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define MPOL_BIND_MODE 2 /* <numaif.h> MPOL_BIND, without libnuma */

int shm_name_check(const char *name, const char *what)
{
	if (name == NULL || name[0] == '\0')
		return shmbus_seterr(SHMBUS_EINVAL, "%s is empty", what);
	size_t n = strnlen(name, SHMBUS_NAME_MAX + 1);
	if (n > SHMBUS_NAME_MAX)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "%s is longer than %d characters", what,
				     SHMBUS_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '_' || c == '-' ||
			 c == '.';
		if (!ok)
			return shmbus_seterr(
				SHMBUS_EINVAL,
				"%s '%.*s' has character 0x%02x at %zu; use "
				"only letters, digits, '_', '-' and '.'",
				what, (int)n, name, (unsigned char)c, i);
	}
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return shmbus_seterr(SHMBUS_EINVAL, "%s '%s' is reserved",
				     what, name);
	return 0;
}

void shm_objname(char out[SHM_OBJNAME_MAX], const char *bus,
		 const char *channel)
{
	if (channel)
		snprintf(out, SHM_OBJNAME_MAX, SHM_PREFIX "%s%c%s", bus,
			 SHM_CHANNEL_SEP, channel);
	else
		snprintf(out, SHM_OBJNAME_MAX, SHM_PREFIX "%s", bus);
}

void shm_uid_str(uid_t uid, char *out, size_t n)
{
	struct passwd pw, *r = NULL;
	char tmp[1024];
	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &r) == 0 && r)
		snprintf(out, n, "uid %u (%s)", (unsigned)uid, pw.pw_name);
	else
		snprintf(out, n, "uid %u", (unsigned)uid);
}

int shm_foreign(const char *objname, const char *verb, const char *todo)
{
	char path[300], them[300], us[300];
	struct stat st;
	snprintf(path, sizeof(path), "/dev/shm%s", objname);
	shm_uid_str(geteuid(), us, sizeof(us));
	if (stat(path, &st) == 0)
		shm_uid_str(st.st_uid, them, sizeof(them));
	else /* gone meanwhile, or /dev/shm is not where it lives */
		snprintf(them, sizeof(them), "another user");
	return shmbus_seterr(SHMBUS_EPERM,
			     "%s belongs to %s, not to us (%s): permission "
			     "denied to %s it%s%s",
			     objname, them, us, verb, todo ? "; " : "",
			     todo ? todo : "");
}

static int map_fd(int fd, size_t size, const char *objname,
		  struct shm_map *out)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return shmbus_seterr_sys(SHMBUS_ENOMEM, errno,
					 "mmap of %zu bytes of %s", size,
					 objname);
	out->addr = p;
	out->size = size;
	out->fd = fd;
	return 0;
}

static int bind_numa(void *addr, size_t size, int numa_node)
{
	char path[64];
	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d",
		 numa_node);
	if (numa_node < 0 || numa_node >= 64 || access(path, F_OK) != 0)
		return shmbus_seterr(SHMBUS_EINVAL,
				     "NUMA node %d does not exist on this "
				     "machine (see /sys/devices/system/node)",
				     numa_node);
	unsigned long mask = 1ul << numa_node;
	if (syscall(SYS_mbind, addr, size, MPOL_BIND_MODE, &mask,
		    sizeof(mask) * 8, 0) != 0)
		return shmbus_seterr_sys(SHMBUS_ESYS, errno,
					 "mbind to NUMA node %d", numa_node);
	return 0;
}

int shm_create(const char *objname, size_t size, uint32_t mode,
	       uint32_t open_flags, int numa_node, struct shm_map *out)
{
	int fd = shm_open(objname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			  (mode_t)mode);
	if (fd < 0) {
		if (errno == EEXIST)
			return SHMBUS_EEXIST;
		return shmbus_seterr_sys(errno == EACCES ? SHMBUS_EPERM
							 : SHMBUS_ESYS,
					 errno, "shm_open(%s)", objname);
	}
	int rc;
	/* The umask must not narrow or widen what the caller asked for. */
	if (fchmod(fd, (mode_t)mode) != 0) {
		rc = shmbus_seterr_sys(SHMBUS_ESYS, errno, "fchmod %s",
				       objname);
		goto fail;
	}
	/* Reserve every page now: a full /dev/shm is ENOSPC here, never a
	 * SIGBUS on first touch. */
	int err = posix_fallocate(fd, 0, (off_t)size);
	if (err != 0) {
		rc = shmbus_seterr_sys(
			err == ENOSPC ? SHMBUS_ENOMEM : SHMBUS_ESYS, err,
			"reserving %zu bytes for %s (is /dev/shm large "
			"enough? `df -h /dev/shm`)",
			size, objname);
		goto fail;
	}
	rc = map_fd(fd, size, objname, out);
	if (rc)
		goto fail;
	rc = shm_prepare(out, open_flags, numa_node);
	if (rc) {
		shm_unmap(out);
		shm_unlink(objname);
		return rc;
	}
	return 0;
fail:
	close(fd);
	shm_unlink(objname);
	return rc;
}

int shm_attach(const char *objname, size_t min_size, uint32_t open_flags,
	       struct shm_map *out)
{
	int fd = shm_open(objname, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return SHMBUS_ENOENT;
		if (errno == EACCES)
			return shm_foreign(objname, "open", NULL);
		return shmbus_seterr_sys(SHMBUS_ESYS, errno, "shm_open(%s)",
					 objname);
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return shmbus_seterr_sys(SHMBUS_ESYS, e, "fstat %s", objname);
	}
	if (st.st_uid != geteuid() && !(open_flags & SHMBUS_OPEN_ANY_OWNER)) {
		char them[300], us[300];
		close(fd);
		shm_uid_str(st.st_uid, them, sizeof(them));
		shm_uid_str(geteuid(), us, sizeof(us));
		return shmbus_seterr(SHMBUS_EPERM,
				     "%s belongs to %s, not to us (%s); pass "
				     "SHMBUS_OPEN_ANY_OWNER to accept it",
				     objname, them, us);
	}
	if (st.st_size < 0 || (size_t)st.st_size < min_size) {
		close(fd);
		return SHMBUS_EAGAIN;
	}
	int rc = map_fd(fd, (size_t)st.st_size, objname, out);
	if (rc)
		close(fd);
	return rc;
}

int shm_prepare(struct shm_map *m, uint32_t open_flags, int numa_node)
{
	if (numa_node >= 0) {
		int rc = bind_numa(m->addr, m->size, numa_node);
		if (rc)
			return rc;
	}
	if (open_flags & SHMBUS_OPEN_HUGEPAGES) {
		if (madvise(m->addr, m->size, MADV_HUGEPAGE) != 0)
			return shmbus_seterr_sys(
				SHMBUS_ENOTSUP, errno,
				"transparent huge pages for shared memory "
				"(check /sys/kernel/mm/transparent_hugepage/"
				"shmem_enabled is 'advise' or 'always')");
	}
	if (!(open_flags & SHMBUS_OPEN_NO_PREFAULT)) {
		/* Map every page writable now, so the first records do not
		 * pay page faults. Older kernels: touch by reading. */
		if (madvise(m->addr, m->size, MADV_POPULATE_WRITE) != 0) {
			volatile const uint8_t *p = m->addr;
			long pg = sysconf(_SC_PAGESIZE);
			for (size_t off = 0; off < m->size; off += (size_t)pg)
				(void)p[off];
		}
	}
	if (open_flags & SHMBUS_OPEN_MLOCK) {
		if (mlock(m->addr, m->size) != 0) {
			int e = errno;
			struct rlimit rl = {0, 0};
			getrlimit(RLIMIT_MEMLOCK, &rl);
			return shmbus_seterr_sys(
				SHMBUS_ENOMEM, e,
				"mlock of %zu bytes (RLIMIT_MEMLOCK is %llu "
				"bytes; raise it with `ulimit -l` or "
				"LimitMEMLOCK=)",
				m->size, (unsigned long long)rl.rlim_cur);
		}
	}
	return 0;
}

void shm_unmap(struct shm_map *m)
{
	if (m->addr)
		munmap(m->addr, m->size);
	if (m->fd >= 0)
		close(m->fd);
	m->addr = NULL;
	m->fd = -1;
}

static struct flock byte_lock(short type, off_t byte)
{
	struct flock fl;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = byte;
	fl.l_len = 1;
	return fl;
}

int shm_lock_byte(int fd, off_t byte)
{
	struct flock fl = byte_lock(F_WRLCK, byte);
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		return SHMBUS_EBUSY;
	return shmbus_seterr_sys(SHMBUS_ESYS, errno, "F_OFD_SETLK");
}
SHMBUS_PRIVATE_EXPORT(shm_lock_byte);

void shm_unlock_byte(int fd, off_t byte)
{
	struct flock fl = byte_lock(F_UNLCK, byte);
	(void)fcntl(fd, F_OFD_SETLK, &fl);
}

int shm_byte_held(int fd, off_t byte)
{
	struct flock fl = byte_lock(F_WRLCK, byte);
	if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
		return 1; /* cannot tell: assume alive, never steal */
	return fl.l_type != F_UNLCK;
}
SHMBUS_PRIVATE_EXPORT(shm_byte_held);

int shm_mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	int err = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return err;
}

int shm_mutex_lock(pthread_mutex_t *m)
{
	int err = pthread_mutex_lock(m);
	if (err == EOWNERDEAD) {
		pthread_mutex_consistent(m);
		return 0;
	}
	return err;
}
