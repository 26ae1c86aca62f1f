/*
 * shmbus bridges: a bus's channels carried to Kafka topics and Redis
 * Streams, and back. A separate library (libshmbus_bridge), so that
 * libshmbus itself depends on neither librdkafka nor hiredis.
 *
 * Directions (key `direction`):
 *   to-kafka    a durable subscriber feeding an idempotent Kafka producer
 *   from-kafka  a Kafka consumer group publishing into channels
 *   to-redis    a durable subscriber feeding pipelined XADDs
 *   from-redis  a Redis consumer group (XREADGROUP, XACK, XAUTOCLAIM)
 *               publishing into channels
 *
 * Every direction is at-least-once: outbound, the subscriber's cursor
 * moves only past records the remote acknowledged, so a crash resends and
 * never drops; inbound, a record is acknowledged to the remote (offset
 * commit, XACK) only after shmbus accepted it. Duplicates are possible
 * after a failure, never losses; docs/bridges.md says why and how.
 *
 * Concurrency: a bridge runs on the thread that calls shmbus_bridge_run
 * (or _step); shmbus_bridge_stop and shmbus_bridge_get_stats may be called
 * from any thread, and stop from a signal handler.
 */
#ifndef SHMBUS_BRIDGE_H
#define SHMBUS_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include <shmbus/shmbus.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shmbus_bridge shmbus_bridge_t;
typedef struct shmbus_bridge_config shmbus_bridge_config_t;

/* ------------------------------------------------------- configuration */

/*
 * Configuration is a set of key = value strings, the same from a file,
 * from `shmbus bridge` flags and from code:
 *
 *   bus        = trading                 the bus (required)
 *   direction  = to-redis                to-kafka, from-kafka, to-redis,
 *                                        from-redis (required)
 *   channel    = OrderPlaced:orders      CHANNEL[:TARGET], repeatable; the
 *                                        topic or stream defaults to the
 *                                        channel's name
 *   name       = bridge-to-redis         durable subscriber name (out), or
 *                                        consumer group (in)
 *   window     = 8192                    out: records in flight per channel
 *   batch      = 256                     in: records per read / per commit
 *   backoff_min_ms = 100, backoff_max_ms = 5000   retries of a failing remote
 *   kafka.brokers = 127.0.0.1:9092       bootstrap servers
 *   kafka.group   = (name)               consumer group (from-kafka)
 *   kafka.null_values = skip             from-kafka: a message with a null
 *                                        value (a tombstone) is skipped
 *                                        (counted in `skipped`), or with
 *                                        `reject` refused (in `rejected`,
 *                                        logged); committed either way
 *   kafka.partitioner = murmur2_random   to-kafka: keys placed as the Java
 *                                        client places them, so that Java
 *                                        consumers and Kafka Streams
 *                                        co-partition with the bridge
 *   kafka.PROPERTY = VALUE               any other librdkafka property,
 *                                        except those the delivery
 *                                        guarantee rests on (acks,
 *                                        enable.idempotence,
 *                                        enable.auto.commit,
 *                                        enable.auto.offset.store,
 *                                        group.id): refused when set
 *   redis.host = 127.0.0.1, redis.port = 6379, redis.password = (none)
 *   redis.pipeline = 128                 XADDs in flight (to-redis)
 *   redis.maxlen = 0                     XADD MAXLEN ~ N; 0: never trim
 *   redis.group = (name), redis.consumer = (name)   from-redis
 *   redis.claim_idle_ms = 30000          XAUTOCLAIM entries idle this long
 *   redis.timeout_ms = 10000             a reply slower than this is a
 *                                        dead connection
 *
 * Remote addresses default to loopback.
 */
SHMBUS_API int shmbus_bridge_config_new(shmbus_bridge_config_t **out);
SHMBUS_API void shmbus_bridge_config_free(shmbus_bridge_config_t *c);
/* Set one key (`channel` adds one more). SHMBUS_EINVAL names a bad key or
 * value in shmbus_bridge_errmsg(). */
SHMBUS_API int shmbus_bridge_config_set(shmbus_bridge_config_t *c,
					const char *key, const char *value);
/* Read `key = value` lines from path; `#` starts a comment. */
SHMBUS_API int shmbus_bridge_config_load(shmbus_bridge_config_t *c,
					 const char *path);
/* The value of key ("" if unset and without default; the channels joined
 * by commas for `channel`). Valid until the next set on c. */
SHMBUS_API const char *shmbus_bridge_config_get(const shmbus_bridge_config_t *c,
						const char *key);
/* The i-th kafka.PROPERTY passed through to librdkafka, in the order set:
 * its key (with "kafka.") and *value, or NULL past the last. Valid until
 * the next set on c. */
SHMBUS_API const char *shmbus_bridge_config_prop(const shmbus_bridge_config_t *c,
						 uint32_t i,
						 const char **value);

/*
 * The payload hook. Outbound, encode turns a bus record into the remote
 * value; inbound, decode turns a remote value into a payload of at most
 * cap bytes. The default is raw bytes both ways. A JSON codec driven by
 * the channel's schema (shmbus_channel_fields) plugs in here. Return 0,
 * or SHMBUS_EPERMANENT for a value that can never be converted: it is
 * counted in `rejected`, logged, and acknowledged so that it does not
 * block the records behind it.
 */
typedef struct shmbus_bridge_codec {
	/* *out may point at rec->data (no copy) or into buf (cap bytes) */
	int (*encode)(void *ctx, const char *channel,
		      const shmbus_record_t *rec, void *buf, size_t cap,
		      const void **out, size_t *len);
	int (*decode)(void *ctx, const char *channel, const void *in,
		      size_t len, void *buf, uint32_t cap, uint32_t *out_len);
	void *ctx;
	size_t encode_cap; /* bytes of buf given to encode; 0 = 64 KiB */
	/* optional: why the last encode or decode on this thread failed
	 * ("no field 'qty' in the schema"), for the rejection's log line */
	const char *(*error)(void *ctx);
} shmbus_bridge_codec_t;
SHMBUS_API int shmbus_bridge_config_codec(shmbus_bridge_config_t *c,
					  const shmbus_bridge_codec_t *codec);

/* Where the bridge logs (state changes and errors, never per record);
 * default: stderr, prefixed "shmbus bridge: ". */
typedef void (*shmbus_bridge_log_fn)(void *ctx, int level, const char *msg);
enum { SHMBUS_BRIDGE_LOG_ERROR = 0, SHMBUS_BRIDGE_LOG_INFO = 1 };
SHMBUS_API int shmbus_bridge_config_log(shmbus_bridge_config_t *c,
					shmbus_bridge_log_fn fn, void *ctx);

/* ----------------------------------------------------------- the bridge */

/*
 * Open the bus, its channels (they must exist: their layout belongs to
 * the application) and, outbound, the durable subscriber name; inbound,
 * a producer per channel. The remote is not contacted yet: a dead remote
 * is a state the bridge retries, not an error of open. The configuration
 * is copied.
 */
SHMBUS_API int shmbus_bridge_open(const shmbus_bridge_config_t *c,
				  shmbus_bridge_t **out);
/* Run until shmbus_bridge_stop; 0, or a negative code for a failure the
 * bridge cannot retry (the bus is gone, a local resource failed). */
SHMBUS_API int shmbus_bridge_run(shmbus_bridge_t *b);
/* One round of the loop, waiting at most about timeout_ms for work:
 * for applications with a loop of their own. Returns records moved (>= 0)
 * or a negative code as run does. */
SHMBUS_API int shmbus_bridge_step(shmbus_bridge_t *b, uint32_t timeout_ms);
/* Ask run to return (any thread, or a signal handler). */
SHMBUS_API void shmbus_bridge_stop(shmbus_bridge_t *b);
/* Outbound: wait up to timeout_ms for every record read so far to be
 * acknowledged and the cursor stored; SHMBUS_ETIMEDOUT otherwise. */
SHMBUS_API int shmbus_bridge_flush(shmbus_bridge_t *b, uint32_t timeout_ms);
/* Close: outbound, records in flight are not waited for (they are sent
 * again by the next run under the same name: flush first for a clean
 * stop). */
SHMBUS_API void shmbus_bridge_close(shmbus_bridge_t *b);

typedef struct shmbus_bridge_stats {
	uint64_t read;	   /* records taken from the source side */
	uint64_t sent;	   /* out: handed to the remote; in: published */
	uint64_t acked;	   /* out: acknowledged by the remote; in:
			    * acknowledged to the remote (XACK, commit) */
	uint64_t resent;   /* out: sent again after a failure (each one
			    * may be a duplicate at the remote) */
	uint64_t rejected; /* records the codec refused (acknowledged) */
	uint64_t lost;	   /* records that were gone before the bridge
			    * read them: overwrite channels, eviction,
			    * entries trimmed from a stream (counted) */
	uint64_t remote_errors; /* failed requests and deliveries */
	uint64_t reconnects;	/* connections (re)established */
	uint64_t rewinds;	/* out: restarts from the oldest failure */
	uint64_t bus_waits;	/* in: publishes that found a ring full */
	uint64_t in_flight;	/* out: sent, not yet acknowledged (now) */
	uint64_t lag;	  /* out: records published and not yet acknowledged,
			   * all channels (the durable subscriber's lag) */
	uint32_t connected;   /* the remote answered last time */
	uint32_t backing_off; /* waiting before the next try */
	char last_error[200];
	uint64_t skipped; /* in: read and left out by choice: Kafka
			   * messages with a null value (kafka.null_values =
			   * skip), committed */
} shmbus_bridge_stats_t;
SHMBUS_API void shmbus_bridge_get_stats(shmbus_bridge_t *b,
					shmbus_bridge_stats_t *st);

/* The calling thread's message for its last failed bridge call. */
SHMBUS_API const char *shmbus_bridge_errmsg(void);

#ifdef __cplusplus
}
#endif
#endif /* SHMBUS_BRIDGE_H */
