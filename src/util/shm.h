/*
 * POSIX shared-memory objects: naming, creation with reserved memory,
 * attaching with ownership checks, pre-faulting, mlock and huge pages, and
 * the kernel-held byte locks that tell a live process from a dead one.
 */
#ifndef SHMBUS_SHM_H
#define SHMBUS_SHM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHM_PREFIX "/shmbus."
#define SHM_CHANNEL_SEP ':'
#define SHM_OBJNAME_MAX 128

struct shm_map {
	void *addr;
	size_t size;
	int fd;
};

/* 0, or SHMBUS_EINVAL with a message naming `what` (e.g. "bus name"). */
int shm_name_check(const char *name, const char *what);
/* "/shmbus.BUS" or "/shmbus.BUS:CHANNEL" (channel may be NULL). */
void shm_objname(char out[SHM_OBJNAME_MAX], const char *bus,
		 const char *channel);

/*
 * Create objname exclusively with `size` bytes reserved (posix_fallocate:
 * a full /dev/shm fails here, not with SIGBUS later) and mapped. Returns 0,
 * SHMBUS_EEXIST (someone else created it), or another error.
 */
int shm_create(const char *objname, size_t size, uint32_t mode,
	       uint32_t open_flags, int numa_node, struct shm_map *out);
/*
 * Attach an existing object. Returns 0, SHMBUS_ENOENT, SHMBUS_EAGAIN (it
 * exists but is still smaller than min_size: its creator is building it),
 * SHMBUS_EPERM (foreign owner without SHMBUS_OPEN_ANY_OWNER, or one whose
 * mode shuts us out: the message names the owner) or an error.
 */
int shm_attach(const char *objname, size_t min_size, uint32_t open_flags,
	       struct shm_map *out);
/* "uid U (NAME)", or "uid U" for a uid without a name. */
void shm_uid_str(uid_t uid, char *out, size_t n);
/*
 * We may not `verb` objname ("open", "remove"): SHMBUS_EPERM, with a
 * message naming its owner and us, then todo (what to do; may be NULL).
 */
int shm_foreign(const char *objname, const char *verb, const char *todo);
/* Pre-fault, mlock, huge pages as open_flags ask; after attach/create. */
int shm_prepare(struct shm_map *m, uint32_t open_flags, int numa_node);
void shm_unmap(struct shm_map *m);

/*
 * Kernel-held liveness locks: an open-file-description write lock on one
 * byte of the object. The kernel drops it when the holder dies. Locks taken
 * through the same mapping (same open file description) do not conflict
 * with each other: callers track their own.
 */
int shm_lock_byte(int fd, off_t byte);	  /* 0 or SHMBUS_EBUSY */
void shm_unlock_byte(int fd, off_t byte);
int shm_byte_held(int fd, off_t byte);	  /* 1 held by another, 0 free */

/*
 * Robust process-shared mutexes (control paths only). shm_mutex_lock
 * returns 0 or an errno; a holder that died (EOWNERDEAD) is recovered at
 * once, so every section under such a lock must publish its change with a
 * final store and leave nothing half-visible before it.
 */
int shm_mutex_init(pthread_mutex_t *m); /* 0 or an errno */
int shm_mutex_lock(pthread_mutex_t *m);

#endif /* SHMBUS_SHM_H */
