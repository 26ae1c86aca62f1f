/*
 * Reading a bus for the tools, through the library's introspection calls
 * only: lock-free loads of counters that every producer and subscriber
 * keeps on its own lines, so looking never slows the bus. Channel handles
 * are kept between reads (top and stat --watch read every interval).
 */
#define _GNU_SOURCE
#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

static void object_id(const char *name, dev_t *dev, ino_t *ino)
{
	char path[128];
	struct stat st;
	snprintf(path, sizeof(path), "/dev/shm/shmbus.%s", name);
	if (stat(path, &st) == 0) {
		*dev = st.st_dev;
		*ino = st.st_ino;
	} else {
		*dev = 0;
		*ino = 0;
	}
}

int busview_open(struct busview *v, const char *cmd, const char *name)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	int rc = cmd ? cli_open(cmd, name, NULL, &v->bus, NULL)
		     : cli_attach(name, &v->bus);
	if (rc == 0)
		object_id(name, &v->dev, &v->ino);
	return rc;
}

bool busview_gone(const struct busview *v)
{
	dev_t dev;
	ino_t ino;
	object_id(v->name, &dev, &ino);
	return dev != v->dev || ino != v->ino;
}

void busview_close(struct busview *v)
{
	shmbus_close(v->bus); /* closes the channels too */
	free(v->ch);
	memset(v, 0, sizeof(*v));
}

/* The channel handle for id, opened if new; NULL with errmsg set. */
static shmbus_channel_t *channel(struct busview *v, const char *name,
				 uint32_t id)
{
	if (id >= v->n_ch) {
		uint32_t n = id + 16;
		shmbus_channel_t **a = realloc(v->ch, n * sizeof(*a));
		if (a == NULL)
			return NULL;
		memset(a + v->n_ch, 0, (n - v->n_ch) * sizeof(*a));
		v->ch = a;
		v->n_ch = n;
	}
	if (v->ch[id] == NULL)
		shmbus_channel_open(v->bus, name, NULL, &v->ch[id]);
	return v->ch[id];
}

/* The introspection calls fill a caller's array up to max: adapters to
 * one signature, and a buffer that grows until it holds everything. */
typedef int (*list_fn)(void *obj, void *out, uint32_t max);

static int producers(void *ch, void *out, uint32_t max)
{
	return shmbus_producer_list(ch, out, max);
}

static int subscribers(void *ch, void *out, uint32_t max)
{
	return shmbus_sub_list(ch, out, max);
}

static int channels(void *bus, void *out, uint32_t max)
{
	return shmbus_bus_channels(bus, out, max);
}

/* outp: the address of the caller's typed array pointer */
static int grow_list(list_fn list, void *obj, size_t size, void *outp,
		     uint32_t *n)
{
	for (uint32_t cap = 16;; cap *= 2) {
		void *buf = calloc(cap, size);
		if (buf == NULL)
			return SHMBUS_ENOMEM;
		int got = list(obj, buf, cap);
		if (got < 0 || (uint32_t)got < cap || cap >= 65536) {
			memcpy(outp, &buf, sizeof(buf));
			*n = got < 0 ? 0 : (uint32_t)got;
			return got < 0 ? got : 0;
		}
		free(buf);
	}
}

static void read_channel(struct busview *v, struct snap_channel *c)
{
	shmbus_channel_t *ch = channel(v, c->info.name, c->info.id);
	int rc = ch ? shmbus_channel_get_info(ch, &c->info) : SHMBUS_ENOENT;
	if (rc == 0)
		rc = shmbus_dlq_get_stats(ch, &c->dlq);
	if (rc == 0)
		rc = grow_list(producers, ch, sizeof(*c->prod), &c->prod,
			       &c->n_prod);
	if (rc == 0)
		rc = grow_list(subscribers, ch, sizeof(*c->sub), &c->sub,
			       &c->n_sub);
	if (rc) {
		c->error = rc;
		snprintf(c->errmsg, sizeof(c->errmsg), "%s", shmbus_errmsg());
	}
}

int busview_read(struct busview *v, struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->bus = v->name;
	s->epoch = shmbus_epoch(v->bus);
	s->now_ns = shmbus_now_ns();
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	s->unix_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	s->live = shmbus_live_participants(v->bus);
	shmbus_watchdog_counters(v->bus, &s->wd);
	if (s->wd.passes && s->now_ns > s->wd.last_pass_ns)
		s->wd_age_ns = s->now_ns - s->wd.last_pass_ns;
	shmbus_channel_info_t *infos;
	uint32_t n;
	int rc = grow_list(channels, v->bus, sizeof(*infos), &infos, &n);
	if (rc)
		return rc;
	s->ch = calloc(n ? n : 1, sizeof(*s->ch));
	if (s->ch == NULL) {
		free(infos);
		return SHMBUS_ENOMEM;
	}
	s->n_ch = n;
	for (uint32_t i = 0; i < n; i++) {
		s->ch[i].info = infos[i];
		read_channel(v, &s->ch[i]);
	}
	free(infos);
	return 0;
}

void snapshot_free(struct snapshot *s)
{
	for (uint32_t i = 0; i < s->n_ch; i++) {
		free(s->ch[i].prod);
		free(s->ch[i].sub);
	}
	free(s->ch);
	memset(s, 0, sizeof(*s));
}

const char *snap_producers(const shmbus_channel_info_t *c)
{
	if (c->flags & SHMBUS_CH_OVERWRITE)
		return "overwrite";
	return c->flags & SHMBUS_CH_MULTI_PRODUCER ? "multi" : "single";
}

const char *snap_policy(const shmbus_channel_info_t *c)
{
	switch (c->stall_policy) {
	case SHMBUS_STALL_BLOCK: return "block";
	case SHMBUS_STALL_EVICT: return "evict";
	case SHMBUS_STALL_SPILL: return "spill";
	default: return "?";
	}
}

const char *snap_state(const shmbus_sub_info_t *s)
{
	switch (s->state) {
	case 1: return "joining";
	case 2: break;
	case 3: return "evicted";
	default: return "?";
	}
	if (!s->live)
		return "gone";
	return s->holding ? "holding" : "live";
}

const shmbus_sub_info_t *snap_gating(const struct snap_channel *c)
{
	const shmbus_sub_info_t *low = NULL;
	if (c->info.flags & SHMBUS_CH_OVERWRITE)
		return NULL;
	for (uint32_t i = 0; i < c->n_sub; i++) {
		const shmbus_sub_info_t *u = &c->sub[i];
		if ((u->state == 1 || u->state == 2) &&
		    (low == NULL || (int64_t)(u->cursor - low->cursor) < 0))
			low = u;
	}
	return low && low->lag >= c->info.capacity ? low : NULL;
}

const char *snap_status(const shmbus_sub_info_t *s, char buf[16])
{
	if (s->state == 2 && s->group) {
		snprintf(buf, 16, "group/%u", s->live > 99 ? 99 : s->live);
		return buf;
	}
	return snap_state(s);
}
