/*
 * Processes of a run: fork, pin, meet at a barrier, reap.
 *
 * The parent only waits. It never hangs: an alarm (--timeout) or a signal
 * interrupts its waitpid, and a child that fails or dies takes the others
 * down with it (they may be spinning on a peer that will never answer).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static volatile sig_atomic_t got_alarm, got_int;
static int self_idx = -1; /* in a child: its index in the run */

static void on_signal(int sig)
{
	if (sig == SIGALRM)
		got_alarm = 1;
	else
		got_int = 1;
}

bool interrupted(void)
{
	return got_int != 0;
}

static void install_handlers(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: waitpid must return */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static size_t page_round(size_t v)
{
	return (v + 4095) / 4096 * 4096;
}

int run_init(struct run *r, const struct bench_opts *o, const char *name,
	     uint32_t size, int nprocs, size_t scratch)
{
	static unsigned seq;
	memset(r, 0, sizeof(*r));
	if (nprocs < 1 || nprocs > BENCH_MAX_PROCS)
		return -1;
	r->o = o;
	r->name = name;
	r->size = size;
	r->nprocs = nprocs;
	r->wait = wait_for_procs(o, nprocs);
	r->scratch_size = scratch;
	size_t ctl = page_round(sizeof(struct shared_ctl));
	void *m = mmap(NULL, ctl + page_round(scratch ? scratch : 1),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		       0);
	if (m == MAP_FAILED) {
		perror("shmbus_bench: mmap");
		return -1;
	}
	r->ctl = m;
	r->scratch = (uint8_t *)m + ctl;
	r->ctl->bar.n = (uint32_t)nprocs;
	/* unique per run, so that runs on one bus never share a channel */
	snprintf(r->chan, sizeof(r->chan), "%.20s.%u.%u", name, size, seq++);
	return 0;
}

void run_free(struct run *r)
{
	if (r->ctl)
		munmap(r->ctl, page_round(sizeof(struct shared_ctl)) +
				       page_round(r->scratch_size
							  ? r->scratch_size
							  : 1));
	r->ctl = NULL;
}

/* Sense-reversing: the last arrival resets the count, then bumps gen. */
static void passed(struct run *r)
{
	if (self_idx >= 0)
		atomic_fetch_add_explicit(&r->ctl->res[self_idx].barriers, 1,
					  memory_order_relaxed);
}

void barrier_wait(struct run *r)
{
	struct barrier *b = &r->ctl->bar;
	uint32_t g = atomic_load_explicit(&b->gen, memory_order_acquire);
	if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) + 1 ==
	    b->n) {
		atomic_store_explicit(&b->count, 0, memory_order_relaxed);
		atomic_store_explicit(&b->gen, g + 1, memory_order_release);
		passed(r);
		return;
	}
	/* spin briefly, then yield: with more processes than cores the
	 * last arrival may need our core */
	for (unsigned i = 0;
	     atomic_load_explicit(&b->gen, memory_order_acquire) == g; i++) {
		if (i < 20000)
			cpu_relax();
		else
			sched_yield();
	}
	passed(r);
}

int child_fail(struct run *r, int idx, const char *fmt, ...)
{
	struct proc_result *res = &r->ctl->res[idx];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->err, sizeof(res->err), fmt, ap);
	va_end(ap);
	res->failed = 1;
	return 1;
}

uint64_t minflt_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_minflt;
}

static int pin(const struct bench_opts *o, int idx)
{
	if (o->ncpus == 0)
		return 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(o->cpus[idx % o->ncpus], &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static void child_main(struct run *r, int idx, pid_t parent, child_fn fn)
{
	signal(SIGALRM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	/* an orphan spinning forever is the worst outcome of a benchmark */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(3);
	if (pin(r->o, idx) != 0) {
		child_fail(r, idx, "sched_setaffinity(cpu %d): %s",
			   r->o->cpus[idx % r->o->ncpus], strerror(errno));
		_exit(1);
	}
	self_idx = idx;
	int rc = fn(r, idx);
	atomic_store_explicit(&r->ctl->res[idx].returned, 1,
			      memory_order_relaxed);
	if (rc == 0 && r->ctl->res[idx].failed)
		rc = 1;
	/* exit, not _exit: libraries deregister in their destructors (an
	 * iceoryx runtime that does not makes RouDi abort at shutdown); our
	 * stdio buffers were flushed before fork */
	exit(rc ? 1 : 0);
}

static void kill_all(pid_t *pids, const bool *live, int n)
{
	for (int i = 0; i < n; i++)
		if (live[i])
			kill(pids[i], SIGKILL);
}

int run_procs(struct run *r, child_fn fn)
{
	install_handlers();
	pid_t pids[BENCH_MAX_PROCS];
	bool live[BENCH_MAX_PROCS] = {false};
	int n = r->nprocs, nlive = 0, failed = 0;
	pid_t self = getpid();
	fflush(stdout); /* children must not flush our buffer again */
	fflush(stderr);
	for (int i = 0; i < n; i++) {
		pid_t p = fork();
		if (p < 0) {
			perror("shmbus_bench: fork");
			kill_all(pids, live, i);
			failed = 1;
			n = i;
			break;
		}
		if (p == 0)
			child_main(r, i, self, fn);
		pids[i] = p;
		live[i] = true;
		nlive++;
	}
	got_alarm = 0;
	bool killed = false;
	alarm(r->o->timeout_s);
	while (nlive > 0) {
		int st;
		pid_t p = waitpid(-1, &st, 0);
		if (p < 0) {
			if (errno != EINTR)
				break;
			if ((got_alarm || got_int) && !killed) {
				fprintf(stderr,
					"shmbus_bench: %s: %s; killing its "
					"processes\n",
					r->name,
					got_alarm ? "timed out (--timeout)"
						  : "interrupted");
				kill_all(pids, live, n);
				killed = true;
				failed = 1;
			}
			continue;
		}
		int i = 0;
		while (i < n && pids[i] != p)
			i++;
		if (i == n)
			continue; /* not ours (a peer's helper) */
		live[i] = false;
		nlive--;
		struct proc_result *res = &r->ctl->res[i];
		bool bad = false;
		if (WIFSIGNALED(st)) {
			if (!failed) /* not one we killed */
				snprintf(res->err, sizeof(res->err),
					 "killed by signal %d (%s)",
					 WTERMSIG(st), strsignal(WTERMSIG(st)));
			bad = true;
		} else if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
			if (res->err[0] == 0)
				snprintf(res->err, sizeof(res->err),
					 "exited with status %d",
					 WEXITSTATUS(st));
			bad = true;
		}
		if (bad || res->failed) {
			res->failed = 1;
			if (!failed)
				kill_all(pids, live, n);
			failed = 1;
		}
	}
	alarm(0);
	return failed;
}
