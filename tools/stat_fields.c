/*
 * The numbers of `shmbus stat`, once: each with its JSON key and its
 * Prometheus metric (counters end in _total, durations are in seconds), so
 * that the two outputs cannot drift apart. The latency histogram is
 * Prometheus's own type there (stat_prom.c), its summary figures JSON's.
 */
#define _GNU_SOURCE
#include <string.h>

#include "stat.h"

#define BUS(g, j, p, t, h, m, k)                                               \
	{LV_BUS, g, j, p, t, h, offsetof(struct snapshot, m), k}
#define CH(g, j, p, t, h, m, k)                                                \
	{LV_CHANNEL, g, j, p, t, h, offsetof(struct snap_channel, m), k}
#define PROD(j, p, t, h, m)                                                    \
	{LV_PRODUCER, NULL, j, p, t, h,                                        \
	 offsetof(shmbus_producer_info_t, m), K_U64}
#define SUB(j, p, t, h, m, k)                                                  \
	{LV_SUBSCRIBER, NULL, j, p, t, h,                                      \
	 offsetof(shmbus_sub_info_t, m), k}
/* latency in JSON only: Prometheus has it as a histogram (stat_prom.c) */
#define LAT(j, m, k)                                                           \
	{LV_SUBSCRIBER, "latency", j, NULL, NULL, NULL,                        \
	 offsetof(shmbus_sub_info_t, m), k}

const struct stat_field stat_fields[] = {
	BUS(NULL, "live_participants", "shmbus_live_participants", "gauge",
	    "Producers and subscribers held by live processes.", live, K_I32),
	BUS("watchdog", "passes", "shmbus_watchdog_passes_total", "counter",
	    "Watchdog passes over the bus.", wd.passes, K_U64),
	BUS("watchdog", "last_pass_age_ns",
	    "shmbus_watchdog_last_pass_age_seconds", "gauge",
	    "Time since the watchdog's last pass.", wd_age_ns, K_OPT_NS),
	BUS("watchdog", "tombstones", "shmbus_watchdog_tombstones_total",
	    "counter", "Holes of dead producers repaired by the watchdog.",
	    wd.tombstones, K_U64),
	BUS("watchdog", "evicted", "shmbus_watchdog_evicted_total", "counter",
	    "Stalled subscribers evicted.", wd.evicted, K_U64),
	BUS("watchdog", "expired", "shmbus_watchdog_expired_total", "counter",
	    "Abandoned subscriber names forgotten.", wd.expired, K_U64),
	BUS("watchdog", "reaped", "shmbus_watchdog_reaped_total", "counter",
	    "Rows of dead participants freed.", wd.reaped, K_U64),
	BUS("watchdog", "released", "shmbus_watchdog_released_total",
	    "counter", "Retry entries of dead processes handed back.",
	    wd.released, K_U64),
	BUS("watchdog", "stalled", "shmbus_watchdog_stalled", "gauge",
	    "Subscribers stalled at the last pass.", wd.stalled, K_U64),

	CH(NULL, "published", "shmbus_channel_published_total", "counter",
	   "Records claimed on the channel (published or being published).",
	   info.claimed, K_U64),
	CH(NULL, "tombstones", "shmbus_channel_tombstones_total", "counter",
	   "Holes of dead producers repaired on the channel.",
	   info.tombstones, K_U64),
	CH(NULL, "capacity", "shmbus_channel_capacity", "gauge",
	   "Slots in the channel's ring.", info.capacity, K_U32),
	CH(NULL, "record_size", "shmbus_channel_record_size_bytes", "gauge",
	   "Largest payload of the channel.", info.record_size, K_U32),
	CH("dlq", "count", "shmbus_dlq_entries", "gauge",
	   "Entries in the channel's dead-letter queue.", dlq.count, K_U64),
	CH("dlq", "capacity", "shmbus_dlq_capacity", "gauge",
	   "Capacity of the channel's dead-letter queue.", dlq.capacity,
	   K_U32),
	CH("dlq", "dropped", "shmbus_dlq_dropped_total", "counter",
	   "Dead letters overwritten while the queue was full.", dlq.dropped,
	   K_U64),
	CH("dlq", "refused", "shmbus_dlq_refused_total", "counter",
	   "Dead letters refused while the queue was full.", dlq.refused,
	   K_U64),

	PROD("published", "shmbus_producer_published_total", "counter",
	     "Records published by the producer.", published),
	PROD("waits", "shmbus_producer_waits_total", "counter",
	     "Times the producer found the ring full.", waits),

	SUB("live", "shmbus_subscriber_live", "gauge",
	    "Live processes holding the name (a group: live members).", live,
	    K_U32),
	SUB("cursor", "shmbus_subscriber_cursor", "gauge",
	    "Next sequence the subscriber reads (a group: its floor).", cursor,
	    K_U64),
	SUB("lag", "shmbus_subscriber_lag_records", "gauge",
	    "Records published and not yet consumed.", lag, K_U64),
	SUB("lag_ns", "shmbus_subscriber_lag_seconds", "gauge",
	    "Age of the oldest record not yet consumed.", lag_ns, K_NS),
	SUB("delivered", "shmbus_subscriber_delivered_total", "counter",
	    "Records handed to the handler, redeliveries included.", delivered,
	    K_U64),
	SUB("failed", "shmbus_subscriber_failed_total", "counter",
	    "Handler failures.", failed, K_U64),
	SUB("retried", "shmbus_subscriber_retried_total", "counter",
	    "Redeliveries of failed records.", retried, K_U64),
	SUB("dead_lettered", "shmbus_subscriber_dead_lettered_total",
	    "counter", "Records sent to the dead-letter queue.", dead_lettered,
	    K_U64),
	SUB("lost", "shmbus_subscriber_lost_total", "counter",
	    "Records lapped before they were read (overwrite channels).", lost,
	    K_U64),
	SUB("retry_pending", "shmbus_subscriber_retry_pending", "gauge",
	    "Failed records waiting in the retry segment.", retry_pending,
	    K_U32),
	SUB("holding", "shmbus_subscriber_holding", "gauge",
	    "1 while the subscriber holds at a failed record.", holding, K_U32),
	LAT("samples", lat_count, K_U64),
	LAT("p50_ns", lat_p50, K_LAT_NS),
	LAT("p99_ns", lat_p99, K_LAT_NS),
	LAT("p999_ns", lat_p999, K_LAT_NS),
	LAT("max_ns", lat_max, K_LAT_NS),
};
const size_t n_stat_fields = sizeof(stat_fields) / sizeof(stat_fields[0]);

int stat_value(const struct stat_field *f, const void *entity, uint64_t *v)
{
	const char *p = (const char *)entity + f->offset;
	uint32_t u32;
	int32_t i32;
	switch (f->kind) {
	case K_U32:
		memcpy(&u32, p, sizeof(u32));
		*v = u32;
		return 1;
	case K_I32:
		memcpy(&i32, p, sizeof(i32));
		*v = i32 < 0 ? 0 : (uint64_t)i32;
		return 1;
	case K_LAT_NS:
		memcpy(v, p, sizeof(*v));
		return ((const shmbus_sub_info_t *)entity)->lat_count > 0;
	default:
		memcpy(v, p, sizeof(*v));
		return f->kind != K_OPT_NS || *v != 0;
	}
}
