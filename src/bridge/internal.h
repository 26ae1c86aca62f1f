/* What the bridge's modules share: the bridge, its channels, remotes. */
#ifndef SHMBUS_BRIDGE_INTERNAL_H
#define SHMBUS_BRIDGE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <shmbus/bridge.h>

#define BR_MAX_CHANNELS 64
#define BR_TARGET_MAX 256

enum br_direction { BR_TO_KAFKA = 1, BR_FROM_KAFKA, BR_TO_REDIS, BR_FROM_REDIS };

/* One passthrough librdkafka property (kafka.X = V). */
struct br_prop {
	char *key, *value;
};

struct shmbus_bridge_config {
	char bus[SHMBUS_NAME_MAX + 1];
	int direction;
	char name[SHMBUS_NAME_MAX + 1];
	uint32_t n_chan;
	char chan[BR_MAX_CHANNELS][SHMBUS_NAME_MAX + 1];
	char target[BR_MAX_CHANNELS][BR_TARGET_MAX];
	uint32_t window, batch;
	uint32_t backoff_min_ms, backoff_max_ms;
	char kafka_brokers[512];
	char kafka_group[128];
	bool kafka_null_reject; /* kafka.null_values = reject */
	struct br_prop *props;
	uint32_t n_props;
	char redis_host[256];
	uint32_t redis_port;
	char redis_password[128];
	uint32_t redis_pipeline;
	uint64_t redis_maxlen;
	char redis_group[128], redis_consumer[128];
	uint32_t redis_claim_idle_ms, redis_timeout_ms;
	shmbus_bridge_codec_t codec;
	shmbus_bridge_log_fn log;
	void *log_ctx;
	char get_buf[4096]; /* shmbus_bridge_config_get's answer */
};

/* One channel of a bridge and its remote target. */
struct br_chan {
	uint32_t index;
	char name[SHMBUS_NAME_MAX + 1];
	char target[BR_TARGET_MAX];
	shmbus_channel_t *ch;
	uint32_t record_size;
	uint32_t channel_id;
	uint8_t *buf; /* record_size bytes: spy copies, decoded payloads */
	/* outbound: the durable subscriber holds the cursor, a spy reads
	 * ahead; acked[] covers [floor, next), window slots */
	shmbus_sub_t *sub;
	shmbus_spy_t *spy;
	uint64_t floor;	    /* every record below is acknowledged */
	uint64_t next;	    /* next sequence to send */
	uint64_t committed; /* the durable cursor */
	uint64_t rewind_to; /* lowest failed sequence, or BR_NO_REWIND */
	uint32_t in_flight;
	uint32_t window; /* a power of two */
	uint8_t *acked;
	bool held; /* `rec` was read but not sent yet */
	shmbus_record_t rec;
	/* inbound */
	shmbus_producer_t *prod;
	bool has_schema; /* raw values must then be whole records */
	void *remote; /* the remote's per-channel object */
};
#define BR_NO_REWIND UINT64_MAX

struct shmbus_bridge;

/* A remote: Kafka or Redis, in one direction. */
struct br_remote {
	const char *what; /* "kafka", "redis" */
	int (*open)(struct shmbus_bridge *b);
	void (*close)(struct shmbus_bridge *b);
	/* outbound only (NULL inbound): can records be sent now? */
	bool (*ready)(struct shmbus_bridge *b);
	/* outbound: queue one record; its fate comes back through
	 * br_out_acked / br_out_failed. 0, or < 0 if the bridge must stop */
	int (*send)(struct shmbus_bridge *b, struct br_chan *c,
		    const shmbus_record_t *rec, const void *val, size_t len);
	/* outbound: collect acknowledgements, waiting up to wait_ms for one;
	 * inbound: one round of receive, publish, acknowledge. Returns
	 * records moved, or < 0 to stop */
	int (*service)(struct shmbus_bridge *b, uint32_t wait_ms);
};

struct br_counters {
	_Atomic uint64_t read, sent, acked, resent, rejected, skipped, lost,
		remote_errors, reconnects, rewinds, bus_waits, in_flight, lag;
	_Atomic uint32_t connected, backing_off;
};

struct shmbus_bridge {
	shmbus_bridge_config_t cfg;
	shmbus_t *bus;
	struct br_chan *chans;
	uint32_t n_chan;
	const struct br_remote *remote;
	void *rs; /* the remote's state */
	_Atomic int stop;
	struct br_counters n;
	pthread_mutex_t err_lock; /* last_error only: read by other threads */
	char last_error[200];
	/* back-off of the remote as a whole */
	uint32_t backoff_ms;
	uint64_t pause_until_ns;
	uint64_t realtime_off; /* CLOCK_REALTIME - bus clock, ns */
	uint64_t lag_at_ns;
	uint8_t *enc_buf;
	size_t enc_cap;
};

/* bridge.c */
void br_log(struct shmbus_bridge *b, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A remote failure: counted, kept as last_error, logged when it changes */
void br_remote_error(struct shmbus_bridge *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void br_connected(struct shmbus_bridge *b, bool up);
/* Schedule the next try after the back-off, which doubles up to its cap;
 * a success resets it. */
void br_backoff(struct shmbus_bridge *b);
void br_backoff_reset(struct shmbus_bridge *b);
bool br_paused(struct shmbus_bridge *b);
bool br_stopping(struct shmbus_bridge *b);
void br_refresh_lag(struct shmbus_bridge *b, bool now_please);
/* Add n; returns the new value. */
uint64_t br_count(_Atomic uint64_t *c, uint64_t n);
/* A record the codec or the format refused: counted in rejected, logged
 * at its 1st, 2nd, 4th, 8th ... occurrence. */
void br_rejected(struct shmbus_bridge *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The remote's state, zeroed, in b->rs (NULL, message set, if no memory) */
void *br_remote_state(struct shmbus_bridge *b, size_t size);
uint64_t br_realtime_ns(struct shmbus_bridge *b, uint64_t bus_ts);
int br_seterr(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void br_sleep_ms(uint32_t ms);
/* v in decimal into out (21 bytes at least); returns its length. */
size_t br_u64_text(uint64_t v, char *out);
/* The record's identity across buses: "EPOCH:CHANNEL_ID:ORIGIN". */
int br_origin_id(struct shmbus_bridge *b, const shmbus_record_t *r,
		 char *out, size_t n);
/* The remote key of an aggregate id, and back: decimal text; a key that
 * is not a decimal number maps by a hash (FNV-1a). */
int br_key_text(uint64_t key, char *out, size_t n);
uint64_t br_key_parse(const void *k, size_t len);

/* outbound.c: the durable-subscriber side of to-kafka and to-redis */
int br_out_open(struct shmbus_bridge *b, struct br_chan *c);
void br_out_close(struct br_chan *c);
int br_out_step(struct shmbus_bridge *b, uint32_t timeout_ms);
void br_out_acked(struct shmbus_bridge *b, struct br_chan *c, uint64_t seq);
void br_out_failed(struct shmbus_bridge *b, struct br_chan *c, uint64_t seq);
/* The full sequence of a send whose low 56 bits the remote carried. */
uint64_t br_out_seq(const struct br_chan *c, uint64_t low56);
uint64_t br_out_pending(const struct shmbus_bridge *b);

/* inbound.c: publishing what a remote delivered */
int br_in_open(struct shmbus_bridge *b, struct br_chan *c);
/* Decode and publish one remote value: 0 published, 1 rejected (ack it
 * all the same), < 0 the bridge is stopping or the bus failed (do not
 * ack: the remote delivers it again). */
int br_in_publish(struct shmbus_bridge *b, struct br_chan *c,
		  const void *val, size_t len, uint64_t key);
struct br_chan *br_chan_by_target(struct shmbus_bridge *b, const char *t,
				  size_t len);

/* config.c */
/* librdkafka properties the delivery guarantee rests on: set by the
 * bridge, refused as kafka.* (NULL-terminated) */
extern const char *const br_kafka_fixed[];
void br_config_defaults(shmbus_bridge_config_t *c);
int br_config_copy(shmbus_bridge_config_t *dst,
		   const shmbus_bridge_config_t *src);
void br_config_clear(shmbus_bridge_config_t *c);
const char *br_direction_name(int d);

extern const struct br_remote br_kafka_out, br_kafka_in;
extern const struct br_remote br_redis_out, br_redis_in;

#endif
