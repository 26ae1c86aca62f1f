/* A moment's view of a running bus: what ls, stat and top show. */
#ifndef SHMBUS_TOOLS_SNAPSHOT_H
#define SHMBUS_TOOLS_SNAPSHOT_H

#include <stdbool.h>
#include <sys/types.h>

#include <shmbus/shmbus.h>

struct snap_channel {
	shmbus_channel_info_t info;
	int error; /* 0, or why the channel could not be read: */
	char errmsg[256];
	shmbus_dlq_stats_t dlq;
	shmbus_producer_info_t *prod;
	uint32_t n_prod;
	shmbus_sub_info_t *sub;
	uint32_t n_sub;
};

struct snapshot {
	const char *bus;
	uint64_t epoch;
	uint64_t now_ns;  /* shmbus_now_ns() when it was taken */
	uint64_t unix_ns; /* and CLOCK_REALTIME then */
	int live;	 /* participants held by live processes */
	shmbus_watchdog_stats_t wd;
	uint64_t wd_age_ns; /* since the watchdog's last pass; 0: none ran */
	struct snap_channel *ch;
	uint32_t n_ch;
};

/* An attached bus whose channels stay open between snapshots. */
struct busview {
	char name[SHMBUS_NAME_MAX + 1];
	shmbus_t *bus;
	shmbus_channel_t **ch; /* by channel id, opened on first sight */
	uint32_t n_ch;
	dev_t dev; /* the object at open, to notice its removal */
	ino_t ino;
};

/* Attach the bus: 0, or CLI_ERR after telling stderr as cmd's; with cmd
 * NULL, the library's code (and shmbus_errmsg()) without a word. */
int busview_open(struct busview *v, const char *cmd, const char *name);
/* Read every counter now. A channel that cannot be opened is reported in
 * its entry, not as a failure. 0, or a negative code (out of memory). */
int busview_read(struct busview *v, struct snapshot *s);
/* The bus object was removed (or replaced) since busview_open. */
bool busview_gone(const struct busview *v);
void busview_close(struct busview *v);
void snapshot_free(struct snapshot *s);

/* "single", "multi" or "overwrite"; "block", "evict" or "spill" */
const char *snap_producers(const shmbus_channel_info_t *c);
const char *snap_policy(const shmbus_channel_info_t *c);
/* A subscriber row's state, the same word in the table and in JSON:
 * joining, evicted, gone (its name is kept, no process holds it; a group:
 * no live member), holding (at a failed record) or live */
const char *snap_state(const shmbus_sub_info_t *s);
/* The subscriber or group that holds producers back with a full ring
 * (the lowest cursor of those that gate, a ring or more behind), or NULL
 * if producers have room (or never wait: overwrite). */
const shmbus_sub_info_t *snap_gating(const struct snap_channel *c);
/* What a person wants to know of it, in at most 9 characters: live, gone
 * (its name is kept, no process holds it), holding (at a failed record),
 * group/N (N live members), joining, evicted */
const char *snap_status(const shmbus_sub_info_t *s, char buf[16]);

#endif
