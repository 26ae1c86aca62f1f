/* Shared helpers of the test programs: unique bus names, scale, children. */
#ifndef SHMBUS_TEST_HELPERS_H
#define SHMBUS_TEST_HELPERS_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmbus/shmbus.h>

/* Iteration counts are multiplied by SHMBUS_TEST_SCALE (environment, in
 * percent; the sanitizer builds run at a fraction). */
static inline uint64_t scaled(uint64_t n)
{
	const char *e = getenv("SHMBUS_TEST_SCALE");
	long pct = e ? strtol(e, NULL, 10) : 100;
	if (pct <= 0)
		pct = 100;
	uint64_t v = n * (uint64_t)pct / 100;
	return v ? v : 1;
}

/* Buses made by test_bus in this process, removed when it exits (also
 * after a failed assertion: Criterion's workers exit normally). */
static char test_buses[32][48];
static int test_nbuses;
static inline void test_buses_unlink(void)
{
	for (int i = 0; i < test_nbuses; i++)
		shmbus_unlink(test_buses[i]);
}

/* A bus name unique to this process and test. */
static inline const char *test_bus(const char *tag)
{
	static char name[48];
	snprintf(name, sizeof(name), "t%d.%s", (int)getpid(), tag);
	shmbus_unlink(name);
	if (test_nbuses == 0)
		atexit(test_buses_unlink);
	if (test_nbuses < 32)
		memcpy(test_buses[test_nbuses++], name, sizeof(name));
	return name;
}

/* Anonymous shared memory for results that children report. */
static inline void *shared_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* fork() for tests: the child dies with its parent, so that a test killed
 * by its time-out leaves no spinning orphan behind. */
static inline pid_t test_fork(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
	}
	return pid;
}

/* Wait for a child; returns its exit status, or 128+signal. */
static inline int child_status(pid_t pid)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

/* A fresh bus and one channel on it (asserts inside a Criterion test). */
#define test_channel(bus_name, busp, ch_name, rsize, cap, chflags)            \
	test_channel_(bus_name, busp, ch_name, rsize, cap, chflags)
static inline shmbus_channel_t *test_channel_(const char *bus_name,
					      shmbus_t **bus,
					      const char *ch_name,
					      uint32_t record_size,
					      uint32_t capacity, uint32_t flags)
{
	shmbus_channel_opts_t o = {.record_size = record_size,
				   .capacity = capacity,
				   .flags = flags};
	shmbus_channel_t *ch = NULL;
	if (shmbus_open(bus_name, NULL, bus) != 0 ||
	    shmbus_channel_open(*bus, ch_name, &o, &ch) != 0) {
		fprintf(stderr, "test_channel %s/%s: %s\n", bus_name, ch_name,
			shmbus_errmsg());
		abort();
	}
	return ch;
}

#define CHECK_OK(expr)                                                         \
	do {                                                                   \
		int rc_ = (expr);                                              \
		if (rc_ != 0) {                                                \
			fprintf(stderr, "%s:%d: %s = %d (%s)\n", __FILE__,     \
				__LINE__, #expr, rc_, shmbus_errmsg());        \
			_exit(90);                                             \
		}                                                              \
	} while (0)

#endif
