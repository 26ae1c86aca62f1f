/*
 * Output: a small table per result for people (80 columns), or one JSON
 * object per line for scripts (--json; notes then go to stderr).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

static void cpus_text(const struct bench_opts *o, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = 0;
	for (int i = 0; i < o->ncpus && off + 1 < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%d",
					i ? "," : "", o->cpus[i]);
}

/* Our strings hold no control characters; quotes and backslashes might. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

void result_init(struct result *res, const struct run *r)
{
	memset(res, 0, sizeof(*res));
	res->workload = r->name;
	res->size = r->size;
	res->count = r->count;
	res->wait = wait_name(r->wait);
}

void result_from_tp(struct result *res, uint64_t msgs, uint64_t elapsed_ns,
		    uint32_t size)
{
	res->kind = RES_TP;
	double s = elapsed_ns ? (double)elapsed_ns / 1e9 : 1e-9;
	res->msgs_per_s = (double)msgs / s;
	res->mb_per_s = (double)msgs * size / s / 1e6;
	res->elapsed_ms = (double)elapsed_ns / 1e6;
}

static void print_json(const struct bench_opts *o, const struct result *res)
{
	char cpus[256];
	cpus_text(o, cpus, sizeof(cpus));
	printf("{\"workload\":");
	json_str(stdout, res->workload);
	printf(",\"variant\":");
	json_str(stdout, res->variant);
	printf(",\"size\":%u,\"count\":%llu,\"wait\":\"%s\",\"cpus\":\"%s\"",
	       res->size, (unsigned long long)res->count, res->wait, cpus);
	if (res->slot_size)
		printf(",\"slot_size\":%u", res->slot_size);
	printf(",\"timer_overhead_ns\":%.1f", o->timer_overhead_ns);
	if (res->kind == RES_LAT) {
		const struct lat_summary *l = &res->lat;
		printf(",\"p50_ns\":%llu,\"p90_ns\":%llu,\"p99_ns\":%llu,"
		       "\"p999_ns\":%llu,\"p9999_ns\":%llu,\"max_ns\":%llu,"
		       "\"min_ns\":%llu,\"mean_ns\":%.1f",
		       (unsigned long long)l->p50, (unsigned long long)l->p90,
		       (unsigned long long)l->p99, (unsigned long long)l->p999,
		       (unsigned long long)l->p9999,
		       (unsigned long long)l->max, (unsigned long long)l->min,
		       l->mean);
	} else {
		printf(",\"msgs_per_s\":%.0f,\"mb_per_s\":%.1f,"
		       "\"elapsed_ms\":%.3f",
		       res->msgs_per_s, res->mb_per_s, res->elapsed_ms);
	}
	printf(",\"minflt\":%llu,\"minflt_peer\":%llu",
	       (unsigned long long)res->minflt,
	       (unsigned long long)res->minflt_peer);
	if (res->note[0]) {
		printf(",\"note\":");
		json_str(stdout, res->note);
	}
	printf("%s}\n", res->extra_json);
}

/* Word-wrapped to 80 columns, continuation lines indented. */
static void print_wrapped(const char *lead, const char *text)
{
	const int width = 79;
	size_t indent = strlen(lead);
	int col = printf("%s", lead);
	while (*text) {
		size_t w = strcspn(text, " ");
		if (col > (int)indent && col + 1 + (int)w > width)
			col = printf("\n%*s", (int)indent, "") - 1;
		else if (col > (int)indent)
			col += printf(" ");
		col += printf("%.*s", (int)w, text);
		text += w;
		while (*text == ' ')
			text++;
	}
	printf("\n");
}

static void print_human(const struct bench_opts *o, const struct result *res)
{
	char slot[32] = "";
	(void)o; /* the cpus are in the program's header line */
	if (res->slot_size)
		snprintf(slot, sizeof(slot), "  slot %u B", res->slot_size);
	printf("\n%s%s%s  size %u B%s  wait %s  count %llu\n", res->workload,
	       res->variant[0] ? " " : "", res->variant, res->size, slot,
	       res->wait, (unsigned long long)res->count);
	if (res->kind == RES_LAT) {
		const struct lat_summary *l = &res->lat;
		printf("  %8s %8s %8s %8s %8s %9s %9s %6s\n", "p50", "p90",
		       "p99", "p99.9", "p99.99", "max", "mean", "minflt");
		printf("  %8llu %8llu %8llu %8llu %8llu %9llu %9.1f %6llu"
		       "  ns\n",
		       (unsigned long long)l->p50, (unsigned long long)l->p90,
		       (unsigned long long)l->p99, (unsigned long long)l->p999,
		       (unsigned long long)l->p9999,
		       (unsigned long long)l->max, l->mean,
		       (unsigned long long)res->minflt);
	} else {
		printf("  %14s %12s %12s %8s %12s\n", "msgs/s", "MB/s",
		       "elapsed ms", "minflt", "minflt(peer)");
		printf("  %14.0f %12.1f %12.2f %8llu %12llu\n",
		       res->msgs_per_s, res->mb_per_s, res->elapsed_ms,
		       (unsigned long long)res->minflt,
		       (unsigned long long)res->minflt_peer);
	}
	if (res->note[0])
		print_wrapped("  note: ", res->note);
}

void report_result(const struct bench_opts *o, const struct result *res)
{
	if (o->json)
		print_json(o, res);
	else
		print_human(o, res);
	fflush(stdout);
}

void report_skip(const struct bench_opts *o, const char *workload,
		 const char *why)
{
	if (o->json) {
		printf("{\"workload\":");
		json_str(stdout, workload);
		printf(",\"skipped\":");
		json_str(stdout, why);
		printf("}\n");
	} else {
		printf("\n%s: skipped: %s\n", workload, why);
	}
	fflush(stdout);
}

void report_note(const struct bench_opts *o, const char *fmt, ...)
{
	FILE *f = o->json ? stderr : stdout;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fflush(f);
}

void report_failure(const struct bench_opts *o, const struct run *r)
{
	char msg[1024];
	size_t off = 0;
	msg[0] = 0;
	for (int i = 0; i < r->nprocs && off + 1 < sizeof(msg); i++) {
		const struct proc_result *res = &r->ctl->res[i];
		if (!res->failed && res->err[0] == 0)
			continue;
		char where[96] = "";
		if (res->err[0] == 0)
			snprintf(where, sizeof(where),
				 "stopped (a peer failed or timed out) after "
				 "%u barrier(s)%s",
				 (unsigned)res->barriers,
				 res->returned ? ", in exit" : "");
		off += (size_t)snprintf(msg + off, sizeof(msg) - off,
					"%sprocess %d: %s", off ? "; " : "", i,
					res->err[0] ? res->err : where);
	}
	if (msg[0] == 0)
		snprintf(msg, sizeof(msg), "failed (see above)");
	fprintf(stderr, "shmbus_bench: %s size %u: FAILED: %s\n", r->name,
		r->size, msg);
	if (o->json) {
		printf("{\"workload\":");
		json_str(stdout, r->name);
		printf(",\"size\":%u,\"error\":", r->size);
		json_str(stdout, msg);
		printf("}\n");
		fflush(stdout);
	}
}
