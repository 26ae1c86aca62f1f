/*
 * The bridge object: open, the run loop, stop, stats, and what every
 * direction shares (errors, logging, back-off, keys and identities).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static _Thread_local char errbuf[512];

int br_seterr(int code, const char *fmt, ...)
{
	char tmp[sizeof(errbuf)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap); /* fmt may use errbuf */
	va_end(ap);
	memcpy(errbuf, tmp, sizeof(errbuf));
	return code;
}

const char *shmbus_bridge_errmsg(void)
{
	return errbuf;
}

uint64_t br_count(_Atomic uint64_t *c, uint64_t n)
{
	/* relaxed: counters for other threads' reading, no ordering */
	return atomic_fetch_add_explicit(c, n, memory_order_relaxed) + n;
}

void br_rejected(struct shmbus_bridge *b, const char *fmt, ...)
{
	uint64_t k = br_count(&b->n.rejected, 1);
	if ((k & (k - 1)) != 0)
		return; /* the 1st, 2nd, 4th, 8th ... */
	char what[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	br_log(b, SHMBUS_BRIDGE_LOG_ERROR,
	       "%s; acknowledged and skipped, %llu rejected so far", what,
	       (unsigned long long)k);
}

void *br_remote_state(struct shmbus_bridge *b, size_t size)
{
	b->rs = calloc(1, size);
	if (b->rs == NULL)
		br_seterr(SHMBUS_ENOMEM, "out of memory");
	return b->rs;
}

static void log_stderr(void *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)level;
	fprintf(stderr, "shmbus bridge: %s\n", msg);
}

void br_log(struct shmbus_bridge *b, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	shmbus_bridge_log_fn fn = b->cfg.log ? b->cfg.log : log_stderr;
	fn(b->cfg.log_ctx, level, msg);
}

void br_remote_error(struct shmbus_bridge *b, const char *fmt, ...)
{
	char msg[sizeof(b->last_error)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	br_count(&b->n.remote_errors, 1);
	pthread_mutex_lock(&b->err_lock);
	/* one line per new failure, not per retry of the same one */
	bool same = strcmp(msg, b->last_error) == 0;
	memcpy(b->last_error, msg, sizeof(msg));
	pthread_mutex_unlock(&b->err_lock);
	bool out = b->cfg.direction == BR_TO_KAFKA ||
		   b->cfg.direction == BR_TO_REDIS;
	if (!same)
		br_log(b, SHMBUS_BRIDGE_LOG_ERROR,
		       "%s (retrying with back-off up to %u ms; records wait "
		       "%s, none is lost)",
		       msg, b->cfg.backoff_max_ms,
		       out ? "on the bus" : "in the remote");
}

void br_connected(struct shmbus_bridge *b, bool up)
{
	uint32_t was = atomic_exchange_explicit(&b->n.connected, up ? 1 : 0,
						memory_order_relaxed);
	if (up && !was) {
		br_count(&b->n.reconnects, 1);
		br_log(b, SHMBUS_BRIDGE_LOG_INFO, "%s: connected (%s)",
		       b->remote->what, br_direction_name(b->cfg.direction));
		pthread_mutex_lock(&b->err_lock);
		b->last_error[0] = '\0';
		pthread_mutex_unlock(&b->err_lock);
	}
}

void br_backoff(struct shmbus_bridge *b)
{
	if (b->backoff_ms == 0)
		b->backoff_ms = b->cfg.backoff_min_ms;
	else if (b->backoff_ms < b->cfg.backoff_max_ms / 2)
		b->backoff_ms *= 2;
	else
		b->backoff_ms = b->cfg.backoff_max_ms;
	b->pause_until_ns = shmbus_now_ns() + b->backoff_ms * 1000000ull;
	atomic_store_explicit(&b->n.backing_off, 1, memory_order_relaxed);
}

void br_backoff_reset(struct shmbus_bridge *b)
{
	b->backoff_ms = 0;
	b->pause_until_ns = 0;
	atomic_store_explicit(&b->n.backing_off, 0, memory_order_relaxed);
}

bool br_paused(struct shmbus_bridge *b)
{
	if (b->pause_until_ns == 0)
		return false;
	if (shmbus_now_ns() < b->pause_until_ns)
		return true;
	b->pause_until_ns = 0;
	atomic_store_explicit(&b->n.backing_off, 0, memory_order_relaxed);
	return false;
}

bool br_stopping(struct shmbus_bridge *b)
{
	/* relaxed: a flag polled by the loop */
	return atomic_load_explicit(&b->stop, memory_order_relaxed) != 0;
}

void br_sleep_ms(uint32_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

uint64_t br_realtime_ns(struct shmbus_bridge *b, uint64_t bus_ts)
{
	return bus_ts + b->realtime_off;
}

/* Bus clock to wall clock: refreshed once per round (the bus clock may
 * be the TSC, meaningless on another host). */
static void refresh_realtime(struct shmbus_bridge *b)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t real = (uint64_t)ts.tv_sec * 1000000000ull +
			(uint64_t)ts.tv_nsec;
	b->realtime_off = real - shmbus_clock_ns(b->bus);
}

size_t br_u64_text(uint64_t v, char *out)
{
	char tmp[20];
	size_t n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}

/* By hand, not snprintf: this runs for every record sent. */
int br_origin_id(struct shmbus_bridge *b, const shmbus_record_t *r,
		 char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	if (n < 16 + 1 + 10 + 1 + 20 + 1)
		return snprintf(out, n, "?");
	uint64_t e = shmbus_epoch(b->bus);
	for (int i = 15; i >= 0; i--, e >>= 4)
		out[i] = hex[e & 15];
	size_t len = 16;
	out[len++] = ':';
	len += br_u64_text(r->channel_id, out + len);
	out[len++] = ':';
	len += br_u64_text(r->origin, out + len);
	return (int)len;
}

int br_key_text(uint64_t key, char *out, size_t n)
{
	if (n < 21)
		return snprintf(out, n, "%" PRIu64, key);
	return (int)br_u64_text(key, out);
}

uint64_t br_key_parse(const void *k, size_t len)
{
	const unsigned char *p = k;
	if (p == NULL || len == 0)
		return 0;
	uint64_t v = 0;
	bool dec = len <= 20;
	for (size_t i = 0; dec && i < len; i++) {
		if (p[i] < '0' || p[i] > '9' ||
		    v > (UINT64_MAX - (p[i] - '0')) / 10)
			dec = false;
		else
			v = v * 10 + (p[i] - '0');
	}
	if (dec)
		return v;
	/* a foreign key: spread it like one (FNV-1a, 64 bits) */
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static const struct br_remote *remote_of(int direction)
{
	switch (direction) {
	case BR_TO_KAFKA:
		return &br_kafka_out;
	case BR_FROM_KAFKA:
		return &br_kafka_in;
	case BR_TO_REDIS:
		return &br_redis_out;
	case BR_FROM_REDIS:
		return &br_redis_in;
	}
	return NULL;
}

static int check_config(const shmbus_bridge_config_t *c)
{
	if (c->bus[0] == '\0')
		return br_seterr(SHMBUS_EINVAL, "which bus? (set bus = NAME)");
	if (c->direction == 0)
		return br_seterr(SHMBUS_EINVAL,
				 "which direction? (to-kafka, from-kafka, "
				 "to-redis or from-redis)");
	if (c->n_chan == 0)
		return br_seterr(SHMBUS_EINVAL,
				 "which channels? (channel = NAME[:TARGET])");
	if (c->backoff_min_ms > c->backoff_max_ms)
		return br_seterr(SHMBUS_EINVAL,
				 "backoff_min_ms %u is above backoff_max_ms %u",
				 c->backoff_min_ms, c->backoff_max_ms);
	return 0;
}

/* The bus and each channel: attach only (the application creates them). */
static int open_channels(shmbus_bridge_t *b)
{
	/* attach only (no CREATE flag): a bridge started before its
	 * application, or with a typo, must not make an empty bus */
	shmbus_opts_t bo = {.flags = SHMBUS_OPEN_NO_PREFAULT};
	int rc = shmbus_open(b->cfg.bus, &bo, &b->bus);
	if (rc)
		return br_seterr(rc, "bus '%s': %s (the bridge attaches a "
				     "bus that the application created)",
				 b->cfg.bus, shmbus_errmsg());
	b->n_chan = b->cfg.n_chan;
	b->chans = calloc(b->n_chan, sizeof(*b->chans));
	if (b->chans == NULL)
		return br_seterr(SHMBUS_ENOMEM, "out of memory");
	bool out = b->cfg.direction == BR_TO_KAFKA ||
		   b->cfg.direction == BR_TO_REDIS;
	for (uint32_t i = 0; i < b->n_chan; i++) {
		struct br_chan *c = &b->chans[i];
		c->index = i;
		memcpy(c->name, b->cfg.chan[i], sizeof(c->name));
		memcpy(c->target, b->cfg.target[i], sizeof(c->target));
		rc = shmbus_channel_open(b->bus, c->name, NULL, &c->ch);
		if (rc)
			return br_seterr(rc,
					 "channel '%s' on bus '%s': %s (the "
					 "bridge attaches channels that the "
					 "application created)",
					 c->name, b->cfg.bus, shmbus_errmsg());
		shmbus_channel_info_t info;
		shmbus_channel_get_info(c->ch, &info);
		c->record_size = info.record_size;
		c->channel_id = info.id;
		c->buf = calloc(1, info.record_size + 8);
		if (c->buf == NULL)
			return br_seterr(SHMBUS_ENOMEM, "out of memory");
		rc = out ? br_out_open(b, c) : br_in_open(b, c);
		if (rc)
			return rc;
	}
	return 0;
}

int shmbus_bridge_open(const shmbus_bridge_config_t *cfg,
		       shmbus_bridge_t **out)
{
	if (cfg == NULL || out == NULL)
		return br_seterr(SHMBUS_EINVAL, "config or out NULL");
	int rc = check_config(cfg);
	if (rc)
		return rc;
	shmbus_bridge_t *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return br_seterr(SHMBUS_ENOMEM, "out of memory");
	pthread_mutex_init(&b->err_lock, NULL);
	if (br_config_copy(&b->cfg, cfg)) {
		free(b);
		return br_seterr(SHMBUS_ENOMEM, "out of memory");
	}
	if (b->cfg.name[0] == '\0')
		snprintf(b->cfg.name, sizeof(b->cfg.name), "bridge-%s",
			 br_direction_name(b->cfg.direction));
	b->remote = remote_of(b->cfg.direction);
	b->enc_cap = b->cfg.codec.encode_cap ? b->cfg.codec.encode_cap
					      : 65536;
	b->enc_buf = b->cfg.codec.encode ? malloc(b->enc_cap) : NULL;
	if ((b->cfg.codec.encode && b->enc_buf == NULL) ||
	    (rc = open_channels(b)) != 0 || (rc = b->remote->open(b)) != 0) {
		char keep[sizeof(errbuf)];
		memcpy(keep, errbuf, sizeof(keep));
		shmbus_bridge_close(b);
		br_seterr(rc ? rc : SHMBUS_ENOMEM, "%s", keep);
		return rc ? rc : SHMBUS_ENOMEM;
	}
	refresh_realtime(b);
	*out = b;
	return 0;
}

/* Outbound lag: published and not yet acknowledged, every channel; at
 * most every 20 ms while busy, and before each idle wait. */
void br_refresh_lag(shmbus_bridge_t *b, bool now_please)
{
	uint64_t now = shmbus_now_ns();
	if (!now_please && now - b->lag_at_ns < 20000000ull)
		return;
	b->lag_at_ns = now;
	uint64_t lag = 0;
	for (uint32_t i = 0; i < b->n_chan; i++) {
		struct br_chan *c = &b->chans[i];
		if (c->sub == NULL)
			continue;
		shmbus_channel_info_t info;
		if (shmbus_channel_get_info(c->ch, &info) == 0)
			lag += info.claimed - c->committed;
	}
	atomic_store_explicit(&b->n.lag, lag, memory_order_relaxed);
}

int shmbus_bridge_step(shmbus_bridge_t *b, uint32_t timeout_ms)
{
	if (b == NULL)
		return br_seterr(SHMBUS_EINVAL, "bridge NULL");
	refresh_realtime(b);
	int n = b->chans[0].sub ? br_out_step(b, timeout_ms)
				: b->remote->service(b, timeout_ms);
	br_refresh_lag(b, false);
	return n;
}

int shmbus_bridge_run(shmbus_bridge_t *b)
{
	if (b == NULL)
		return br_seterr(SHMBUS_EINVAL, "bridge NULL");
	while (!br_stopping(b)) {
		int rc = shmbus_bridge_step(b, 100);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void shmbus_bridge_stop(shmbus_bridge_t *b)
{
	if (b)
		atomic_store_explicit(&b->stop, 1, memory_order_relaxed);
}

int shmbus_bridge_flush(shmbus_bridge_t *b, uint32_t timeout_ms)
{
	if (b == NULL)
		return br_seterr(SHMBUS_EINVAL, "bridge NULL");
	uint64_t end = shmbus_now_ns() + timeout_ms * 1000000ull;
	while (b->chans[0].sub && br_out_pending(b) > 0) {
		if (shmbus_now_ns() >= end)
			return br_seterr(SHMBUS_ETIMEDOUT,
					 "%llu records still unacknowledged "
					 "after %u ms",
					 (unsigned long long)br_out_pending(b),
					 timeout_ms);
		int rc = br_out_step(b, 10);
		if (rc < 0)
			return rc;
	}
	br_refresh_lag(b, false);
	return 0;
}

void shmbus_bridge_close(shmbus_bridge_t *b)
{
	if (b == NULL)
		return;
	if (b->remote)
		b->remote->close(b);
	for (uint32_t i = 0; b->chans && i < b->n_chan; i++) {
		struct br_chan *c = &b->chans[i];
		br_out_close(c);
		if (c->prod)
			shmbus_producer_close(c->prod);
		free(c->buf);
	}
	free(b->chans);
	shmbus_close(b->bus);
	free(b->enc_buf);
	br_config_clear(&b->cfg);
	pthread_mutex_destroy(&b->err_lock);
	free(b);
}

void shmbus_bridge_get_stats(shmbus_bridge_t *b, shmbus_bridge_stats_t *st)
{
	if (b == NULL || st == NULL)
		return;
	memset(st, 0, sizeof(*st));
	/* relaxed: each counter alone, a moment's view */
#define LOAD(f) st->f = atomic_load_explicit(&b->n.f, memory_order_relaxed)
	LOAD(read), LOAD(sent), LOAD(acked), LOAD(resent), LOAD(rejected);
	LOAD(skipped);
	LOAD(lost), LOAD(remote_errors), LOAD(reconnects), LOAD(rewinds);
	LOAD(bus_waits), LOAD(in_flight), LOAD(lag), LOAD(connected);
	LOAD(backing_off);
#undef LOAD
	pthread_mutex_lock(&b->err_lock);
	memcpy(st->last_error, b->last_error, sizeof(st->last_error));
	pthread_mutex_unlock(&b->err_lock);
}
