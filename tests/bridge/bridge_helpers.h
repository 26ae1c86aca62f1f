/*
 * What the bridge tests share: a real redis-server in a temporary
 * directory, bridge processes (tests/bridge_cli, i.e. `shmbus bridge`),
 * records that carry their number, and a tally of what arrived.
 */
#ifndef SHMBUS_TEST_BRIDGE_HELPERS_H
#define SHMBUS_TEST_BRIDGE_HELPERS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "helpers.h"

#define REC_SIZE 64u

/* The records the tests publish: a number, then filler bytes derived
 * from it (checked on arrival). */
struct rec {
	uint64_t v;
	uint8_t fill[REC_SIZE - 8];
};

static inline void rec_make(struct rec *r, uint64_t v)
{
	r->v = v;
	for (size_t i = 0; i < sizeof(r->fill); i++)
		r->fill[i] = (uint8_t)(v * 7 + i);
}

static inline bool rec_ok(const void *p, size_t len, uint64_t *v)
{
	struct rec r;
	if (len != sizeof(r))
		return false;
	memcpy(&r, p, sizeof(r));
	*v = r.v;
	for (size_t i = 0; i < sizeof(r.fill); i++)
		if (r.fill[i] != (uint8_t)(r.v * 7 + i))
			return false;
	return true;
}

/* What arrived: each number once at least; the rest are duplicates. */
struct tally {
	uint64_t n, distinct, dups, bad;
	uint8_t *seen;
};

static inline void tally_init(struct tally *t, uint64_t n)
{
	memset(t, 0, sizeof(*t));
	t->n = n;
	t->seen = calloc(n, 1);
}

static inline void tally_add(struct tally *t, const void *p, size_t len)
{
	uint64_t v;
	if (!rec_ok(p, len, &v) || v >= t->n) {
		t->bad++;
		return;
	}
	if (t->seen[v])
		t->dups++;
	else
		t->distinct++;
	t->seen[v] = 1;
}

/* A subscriber's handler that tallies; the key must be the number. */
static inline int tally_handler(const shmbus_record_t *r, void *ctx)
{
	struct tally *t = ctx;
	uint64_t v;
	tally_add(t, r->data, r->len);
	if (rec_ok(r->data, r->len, &v) && r->key != v)
		t->bad++;
	return 0;
}

/* The first number that never arrived, or n. */
static inline uint64_t tally_first_missing(const struct tally *t)
{
	for (uint64_t i = 0; i < t->n; i++)
		if (!t->seen[i])
			return i;
	return t->n;
}

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A loopback port nobody listens on (bound once to ask the kernel). */
static inline int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &l)) {
		perror("free_port");
		abort();
	}
	close(fd);
	return ntohs(a.sin_port);
}

/* ---------------------------------------------------------------- redis */

struct redis_srv {
	pid_t pid;
	int port;
	char dir[96];
};

/* Remove the directories of earlier test processes that died before
 * they could (a time-out kills a test without its clean-up). */
static inline void redis_sweep(void)
{
	if (system("for d in /dev/shm/redis-test.shmbus.*; do "
		   "[ -d \"$d\" ] || continue; p=${d#*.shmbus.}; p=${p%%.*}; "
		   "kill -0 \"$p\" 2>/dev/null || rm -rf \"$d\"; done") != 0)
		fprintf(stderr, "redis_sweep failed\n");
}

/*
 * Start redis-server (Debian's) with an append-only file written before
 * every reply and fsynced (appendfsync always), no snapshots; in srv->dir
 * (made on the first start) and on srv->port (chosen on the first start).
 * It dies with the test process. The directory is on tmpfs: the tests kill
 * redis-server, never the machine, so what they rely on is that a reply
 * comes after the write to the append-only file; an fsync to a shared disk
 * would only make them slow and erratic.
 */
static inline void redis_start(struct redis_srv *r)
{
	if (r->dir[0] == '\0') {
		redis_sweep();
		snprintf(r->dir, sizeof(r->dir),
			 "/dev/shm/redis-test.shmbus.%d.XXXXXX", (int)getpid());
		if (mkdtemp(r->dir) == NULL) {
			perror("mkdtemp");
			abort();
		}
	}
	if (r->port == 0)
		r->port = free_port();
	char port[16], log[128];
	snprintf(port, sizeof(port), "%d", r->port);
	snprintf(log, sizeof(log), "%s/redis.log", r->dir);
	r->pid = test_fork();
	if (r->pid == 0) {
		execlp("redis-server", "redis-server", "--port", port, "--bind",
		       "127.0.0.1", "--dir", r->dir, "--appendonly", "yes",
		       "--appendfsync", "always", "--save", "", "--daemonize",
		       "no", "--logfile", log, (char *)NULL);
		_exit(127);
	}
}

static inline void redis_kill(struct redis_srv *r, int sig)
{
	if (r->pid > 0) {
		kill(r->pid, sig);
		child_status(r->pid);
	}
	r->pid = 0;
}

/* Stop the server and remove its directory. */
static inline void redis_stop(struct redis_srv *r)
{
	redis_kill(r, SIGKILL);
	if (r->dir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", r->dir);
	}
	r->dir[0] = '\0';
}

#ifdef SHMBUS_TEST_REDIS
#include <hiredis/hiredis.h>

/* A connection once the server answers PING (it may be loading its
 * append-only file after a restart); NULL after 10 s. */
static inline redisContext *redis_conn(const struct redis_srv *r)
{
	for (int i = 0; i < 1000; i++) {
		redisContext *c = redisConnect("127.0.0.1", r->port);
		if (c && !c->err) {
			redisReply *p = redisCommand(c, "PING");
			bool ok = p && p->type == REDIS_REPLY_STATUS;
			freeReplyObject(p);
			if (ok)
				return c;
		}
		redisFree(c);
		sleep_ms(10);
	}
	return NULL;
}
#endif

/* ------------------------------------------------------------ bridges */

/* Run `shmbus bridge ARGS...` (tests/bridge_cli) in a child process. */
static inline pid_t bridge_spawn(const char *const *args)
{
	const char *argv[40] = {SHMBUS_BRIDGE_CLI};
	int n = 1;
	for (; args[n - 1] && n < 38; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid_t pid = test_fork();
	if (pid == 0) {
		execv(SHMBUS_BRIDGE_CLI, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Run `shmbus bridge ARGS...` to its end; its stdout and stderr in out.
 * Returns its exit status. */
static inline int bridge_output(char *out, size_t n, const char *const *args)
{
	int fds[2];
	if (pipe(fds))
		return -1;
	pid_t pid = test_fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		const char *argv[40] = {SHMBUS_BRIDGE_CLI};
		for (int i = 0; args[i] && i < 38; i++)
			argv[i + 1] = args[i];
		execv(SHMBUS_BRIDGE_CLI, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	size_t got = 0;
	ssize_t r;
	while (got + 1 < n && (r = read(fds[0], out + got, n - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(fds[0]);
	return child_status(pid);
}

/* `shmbus bridge ARGS...` in a child process, its stdout and stderr into
 * the file log (read it with slurp once the bridge stopped). */
static inline pid_t bridge_spawn_logged(const char *log,
					const char *const *args)
{
	const char *argv[40] = {SHMBUS_BRIDGE_CLI};
	for (int i = 0; args[i] && i < 38; i++)
		argv[i + 1] = args[i];
	pid_t pid = test_fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(SHMBUS_BRIDGE_CLI, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* The file at path into out ("" if none). */
static inline void slurp(const char *path, char *out, size_t n)
{
	FILE *f = fopen(path, "r");
	size_t got = f ? fread(out, 1, n - 1, f) : 0;
	out[got] = '\0';
	if (f)
		fclose(f);
}

/* SIGTERM: the bridge flushes and exits 0. Returns its status. */
static inline int bridge_stop(pid_t pid)
{
	kill(pid, SIGTERM);
	return child_status(pid);
}

static inline void bridge_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	child_status(pid);
}

/*
 * A watchdog on the test's bus, as every bus that has processes killed
 * needs: an inbound bridge SIGKILLed inside shmbus_publish leaves a
 * claimed slot that nobody else may fill. The watchdog tombstones it once
 * the kernel confirms the death; the record itself was never acknowledged
 * to the remote, so the next bridge publishes it again.
 */
static inline shmbus_watchdog_t *bridge_watchdog(shmbus_t *bus)
{
	shmbus_watchdog_opts_t wo = {.period_ms = 5};
	shmbus_watchdog_t *w = NULL;
	if (shmbus_watchdog_start(bus, &wo, &w) != 0) {
		fprintf(stderr, "watchdog: %s\n", shmbus_errmsg());
		abort();
	}
	return w;
}

/* Stop it; the holes it repaired, at most one per kill. */
static inline uint64_t bridge_watchdog_close(shmbus_watchdog_t *w)
{
	shmbus_watchdog_stats_t st;
	shmbus_watchdog_get_stats(w, &st);
	shmbus_watchdog_close(w);
	return st.tombstones;
}

/* The durable subscriber `name` of a channel: its lag (UINT64_MAX if it
 * does not exist). */
static inline uint64_t sub_lag(shmbus_channel_t *ch, const char *name)
{
	shmbus_sub_info_t info[32];
	int n = shmbus_sub_list(ch, info, 32);
	for (int i = 0; i < n; i++)
		if (strcmp(info[i].name, name) == 0)
			return info[i].lag;
	return UINT64_MAX;
}

static inline int consume_nothing(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}

/* Make the durable name now, so that it gates from the next record on. */
static inline int make_name(shmbus_channel_t *ch, const char *name)
{
	shmbus_sub_opts_t so = {.name = name};
	shmbus_sub_t *s;
	int rc = shmbus_subscribe(ch, consume_nothing, NULL, &so, &s);
	if (rc == 0)
		shmbus_sub_close(s, 0);
	return rc;
}

#endif
