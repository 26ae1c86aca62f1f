/* Shared helpers of the test programs: unique bus names, scale, children. */
#ifndef SHMBUS_TEST_HELPERS_H
#define SHMBUS_TEST_HELPERS_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* The shell line "PREFIX ARGS" (ARGS printed from fmt), its output in out
 * (at most n - 1 bytes); returns its exit status, 255 if it did not exit
 * (-1 if it could not start). */
static inline int test_vshell(char *out, size_t n, const char *prefix,
			      const char *fmt, va_list ap)
{
	char args[1024], cmd[1400];
	vsnprintf(args, sizeof(args), fmt, ap);
	snprintf(cmd, sizeof(cmd), "%s %s", prefix, args);
	FILE *f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	size_t got = fread(out, 1, n - 1, f);
	out[got] = '\0';
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
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

/* A wait that must time out: how late it returned, in ns, the least of up
 * to three runs (a loaded machine may delay one run; a wait that rounds its
 * time-out up is late every time). *bad counts runs that returned early or
 * with another code than SHMBUS_EAGAIN. */
static inline uint64_t wait_lateness(int (*wait)(void *h, uint64_t ns),
				     void *h, uint64_t timeout_ns, int *bad)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 3 && best > 2000000; i++) {
		uint64_t t0 = shmbus_now_ns();
		int rc = wait(h, timeout_ns);
		uint64_t took = shmbus_now_ns() - t0;
		if (rc != SHMBUS_EAGAIN || took < timeout_ns) {
			fprintf(stderr, "a %llu ns wait returned %d after "
					"%llu ns\n",
				(unsigned long long)timeout_ns, rc,
				(unsigned long long)took);
			(*bad)++;
		} else if (took - timeout_ns < best) {
			best = took - timeout_ns;
		}
	}
	return best;
}

/* Waits of 2, 10, 50 and 200 ms time out on time: none early or failed,
 * none more than 5 ms late. If not, false and why. */
static inline bool waits_on_time(int (*wait)(void *h, uint64_t ns), void *h,
				 char *why, size_t n)
{
	static const uint64_t ms[] = {2, 10, 50, 200};
	for (size_t k = 0; k < sizeof(ms) / sizeof(ms[0]); k++) {
		int bad = 0;
		uint64_t late = wait_lateness(wait, h, ms[k] * 1000000, &bad);
		if (bad || late > 5000000) {
			snprintf(why, n, "a %llu ms wait returned %.1f ms late "
					 "(%d early or failed)",
				 (unsigned long long)ms[k], (double)late / 1e6,
				 bad);
			return false;
		}
	}
	return true;
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

/* In a child process: a producer on channel ch_name of bus_name (the
 * child exits 90 if it cannot have one). */
static inline shmbus_producer_t *
child_producer(const char *bus_name, const char *ch_name,
	       const shmbus_producer_opts_t *po)
{
	shmbus_t *b;
	shmbus_channel_t *c;
	shmbus_producer_t *p;
	CHECK_OK(shmbus_open(bus_name, NULL, &b));
	CHECK_OK(shmbus_channel_open(b, ch_name, NULL, &c));
	CHECK_OK(shmbus_producer_open(c, po, &p));
	return p;
}

#endif
