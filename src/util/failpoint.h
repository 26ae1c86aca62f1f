/*
 * Failpoints for crash tests: with SHMBUS_FAILPOINT=NAME:N in its
 * environment, a process kills itself (SIGKILL) the N-th time it passes the
 * named place, so tests reach the nanoseconds between two steps of a
 * protocol that random kills almost never hit. Compiled only into the
 * library the tests link (SHMBUS_FAILPOINTS, CMake's shmbus_test): the
 * installed libraries have none, so no environment can kill a production
 * process. There, unarmed, one costs a load and a predicted branch.
 */
#ifndef SHMBUS_FAILPOINT_H
#define SHMBUS_FAILPOINT_H

enum failpoint_id {
	FP_GROUP_AFTER_TAKE,  /* "group_after_take": word TAKEN, no handler */
	FP_GROUP_BEFORE_DONE, /* "group_before_done": handled, not DONE */
	FP_BEFORE_COMMIT,     /* "before_commit": claimed, not committed */
	FP_MP_AFTER_CLAIM,    /* "mp_after_claim": fetched, not yet named */
	FP_SUB_BEFORE_CURSOR, /* "sub_before_cursor": batch handled, cursor
			       * not stored */
	FP_RETRY_MID_COPY,    /* "retry_mid_copy": retry entry half made */
	FP_COUNT
};

extern int shmbus_failpoints_armed;
void failpoint_hit(int id);
/* Arm from a spec "NAME:N" (as the environment variable does); tests call
 * it in a forked child. NULL disarms. */
void failpoint_arm(const char *spec);

#ifdef SHMBUS_FAILPOINTS /* the tests' build of the library only */
#define FAILPOINT(id)                                                          \
	do {                                                                   \
		if (__builtin_expect(shmbus_failpoints_armed, 0))             \
			failpoint_hit(id);                                     \
	} while (0)
#else
#define FAILPOINT(id) ((void)0)
#endif

#endif /* SHMBUS_FAILPOINT_H */
