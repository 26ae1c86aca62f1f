/*
 * shmbus_bench: the vocabulary shared by the workloads.
 *
 * A workload forks its processes (proc.c), each opens what it needs itself
 * after fork, they meet at a barrier in an anonymous shared mapping, run,
 * and leave their figures in that mapping for the parent to report.
 */
#ifndef SHMBUS_BENCH_H
#define SHMBUS_BENCH_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <shmbus/shmbus.h>

#include "hist.h"

#define BENCH_MAX_PROCS 8
#define BENCH_MAX_CPUS 64
#define BENCH_CACHELINE 64
#define BENCH_BATCH 64u /* producer claims and ring index publications */

/* The pause instruction: lets the sibling hyperthread run and stops the
 * spinning core from flooding the line with speculative loads. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

struct bench_opts {
	const char *workload;
	uint32_t size; /* payload bytes; 0 = the workload's default */
	uint64_t count;	 /* 0 = default by kind */
	uint64_t warmup; /* UINT64_MAX = 10% of count, at least 1000 */
	uint32_t wait;	 /* enum shmbus_wait */
	int cpus[BENCH_MAX_CPUS];
	int ncpus;
	bool json;
	bool keep;
	char bus[SHMBUS_NAME_MAX + 1];
	uint32_t capacity; /* ring slots for throughput workloads */
	uint32_t stall_policy; /* shmbus_stall_policy of every channel */
	bool no_timestamp;     /* channels with SHMBUS_CH_NO_TIMESTAMP */
	bool compact;	       /* channels with SHMBUS_CH_COMPACT */
	unsigned timeout_s;
	double timer_overhead_ns;
	char dir[256]; /* journal: where its files go; "" = /var/tmp */
};

/* What one process leaves for the parent. */
struct proc_result {
	int failed;
	char err[240];
	uint64_t seq_errors;
	uint64_t msgs;	     /* messages received (or sent) in the timed part */
	uint64_t elapsed_ns; /* timed part */
	uint64_t minflt;     /* page faults in the timed part */
	bool has_lat;
	struct lat_summary lat;
	uint64_t delivered, lost, tombstones, unread, published;
	uint32_t slot_size;
	/* where a process that had to be killed was: barriers it passed,
	 * and whether its work had returned (then it hung on exit) */
	_Atomic uint32_t barriers;
	_Atomic uint32_t returned;
};

/* The anonymous MAP_SHARED block, made before fork. */
struct barrier {
	_Atomic uint32_t count;
	_Atomic uint32_t gen;
	uint32_t n;
};

struct shared_ctl {
	alignas(BENCH_CACHELINE) struct barrier bar;
	/* producers that finished, so that consumers can tell "late" from
	 * "never" (a lost record must not hang the run) */
	alignas(BENCH_CACHELINE) _Atomic uint32_t producers_done;
	alignas(BENCH_CACHELINE) struct proc_result res[BENCH_MAX_PROCS];
};

/* One run of a workload: a set of processes at one size. */
struct run {
	const struct bench_opts *o;
	const char *name; /* as reported: "pingpong", "uds-throughput" */
	uint32_t size;
	uint64_t count, warmup;
	uint32_t wait; /* may differ from o->wait (oversubscribed) */
	int nprocs;
	struct shared_ctl *ctl;
	void *scratch; /* page-aligned shared area after ctl */
	size_t scratch_size;
	void *arg; /* workload-specific, set before fork */
	char chan[SHMBUS_NAME_MAX + 1]; /* channel name prefix, unique */
};

/* proc.c */
int run_init(struct run *r, const struct bench_opts *o, const char *name,
	     uint32_t size, int nprocs, size_t scratch);
void run_free(struct run *r);
typedef int (*child_fn)(struct run *r, int idx);
/* Fork nprocs children running fn(r, idx), pinned, and reap them all;
 * 0 only if every child exited 0 and reported no failure. */
int run_procs(struct run *r, child_fn fn);
void barrier_wait(struct run *r);
int child_fail(struct run *r, int idx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t minflt_now(void);
bool interrupted(void);

/* sbutil.c: a directory and everything in it, gone (journal runs) */
void bench_rmrf(const char *path);

/* sbutil.c: shmbus set-up inside a child */
extern uint32_t bench_max_channels; /* for every bus the bench creates */
int sb_open_bus(struct run *r, int idx, shmbus_t **bus);
/* Sleep ns (a waiting helper process, off the measured path). */
void sb_idle_ns(uint64_t ns);
int sb_channel(struct run *r, int idx, shmbus_t *bus, const char *suffix,
	       uint32_t capacity, uint32_t flags, shmbus_channel_t **out);
int sb_producer(struct run *r, int idx, shmbus_channel_t *ch,
		shmbus_producer_t **out);
int sb_subscribe(struct run *r, int idx, shmbus_channel_t *ch,
		 const char *name, shmbus_handler_fn fn, void *ctx,
		 shmbus_sub_t **out);
/* Block until the subscriber has something (or 100 ms pass); spin: pause. */
int sb_idle(shmbus_sub_t *s, uint32_t wait);
const char *wait_name(uint32_t wait);
/* Wait strategy for r->nprocs processes on o->ncpus cpus: a spinner that
 * shares a core with its peer only burns the peer's time slice. */
uint32_t wait_for_procs(const struct bench_opts *o, int nprocs);
uint64_t default_count(const struct bench_opts *o, bool latency);
uint64_t default_warmup(const struct bench_opts *o, uint64_t count);

/* report.c */
enum result_kind { RES_LAT, RES_TP };
struct result {
	const char *workload;
	char variant[48]; /* "", "subs=2", "producers=2" */
	uint32_t size;
	uint64_t count;
	const char *wait;
	enum result_kind kind;
	struct lat_summary lat;
	double msgs_per_s, mb_per_s, elapsed_ms;
	uint64_t minflt, minflt_peer;
	uint32_t slot_size; /* 0 = not applicable */
	char note[256];	    /* one human line, also "note" in JSON */
	char extra_json[320]; /* ,"key":value pairs */
};
void result_init(struct result *res, const struct run *r);
void result_from_tp(struct result *res, uint64_t msgs, uint64_t elapsed_ns,
		    uint32_t size);
void report_result(const struct bench_opts *o, const struct result *res);
void report_skip(const struct bench_opts *o, const char *workload,
		 const char *why);
void report_note(const struct bench_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void report_failure(const struct bench_opts *o, const struct run *r);

/* workloads: 0 ok, non-zero on a failure (already reported) */
int wl_floor(const struct bench_opts *o);
int wl_floorring(const struct bench_opts *o);
int wl_pingpong(const struct bench_opts *o);
int wl_pingpong_after(const struct bench_opts *o);
int wl_pingpong_handler(const struct bench_opts *o);
int wl_throughput(const struct bench_opts *o);
int wl_multiproducer(const struct bench_opts *o);
int wl_fanout(const struct bench_opts *o);
int wl_failing(const struct bench_opts *o);
int wl_journaled(const struct bench_opts *o);
int wl_journal_tp(const struct bench_opts *o);
int wl_journal_group(const struct bench_opts *o);
int wl_journal_latency(const struct bench_opts *o);
int wl_overwrite(const struct bench_opts *o);
int wl_overwrite_stalled(const struct bench_opts *o);
int wl_overwrite_alone(const struct bench_opts *o);
int wl_group(const struct bench_opts *o);
int wl_group_keyed(const struct bench_opts *o);
int wl_group1(const struct bench_opts *o);
int wl_group1_plain(const struct bench_opts *o);
int wl_group1_keyed(const struct bench_opts *o);
int wl_manychannels(const struct bench_opts *o);
int wl_manychannels_tp(const struct bench_opts *o);
int wl_bridge_redis(const struct bench_opts *o); /* wl_bridge.c */
int wl_journal(const struct bench_opts *o);

/* The sizes a throughput workload runs: --size, or the default sweep. */
int tp_sizes(const struct bench_opts *o, uint32_t *sizes, int max);

#endif /* SHMBUS_BENCH_H */
