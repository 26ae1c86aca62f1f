/*
 * Kafka, both directions, with librdkafka.
 *
 * to-kafka: an idempotent producer (enable.idempotence=true, so acks=all
 * and librdkafka's own retries neither reorder nor duplicate within a
 * producer session). Each record is produced with its key (the aggregate
 * id, as decimal text), its payload (the codec's value) and headers
 * shmbus.type, shmbus.seq, shmbus.origin and shmbus.time; the delivery
 * report acknowledges it (outbound.c moves the cursor). A delivery that
 * fails for good (message.timeout.ms passed, a fatal producer error)
 * rewinds: the record and those after it go again.
 *
 * from-kafka: a consumer group with enable.auto.commit=false. A message's
 * offset is committed only after shmbus_publish accepted it: in batches,
 * asynchronously, and synchronously when partitions are revoked or the
 * bridge stops.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <librdkafka/rdkafka.h>

#include "internal.h"

struct kf_state {
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt[BR_MAX_CHANNELS];
	bool fatal;   /* the producer must be made again */
	bool closing; /* delivery reports after close are not ours */
	/* from-kafka: offsets published and not yet committed */
	rd_kafka_topic_partition_list_t *done;
	uint32_t uncommitted;
	uint64_t committed_at_ns;
};

static void on_log(const rd_kafka_t *rk, int level, const char *fac,
		   const char *buf)
{
	struct shmbus_bridge *b = rd_kafka_opaque(rk);
	if (b && level <= LOG_ERR)
		br_log(b, SHMBUS_BRIDGE_LOG_ERROR, "kafka %s: %s", fac, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *op)
{
	struct shmbus_bridge *b = op;
	struct kf_state *ks = b->rs;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char why[256];
		rd_kafka_fatal_error(rk, why, sizeof(why));
		br_remote_error(b, "kafka: fatal producer error: %s; making "
				   "a new producer",
				why);
		ks->fatal = true;
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		br_connected(b, false);
	br_remote_error(b, "kafka %s: %s", b->cfg.kafka_brokers, reason);
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char err[256];
	if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		return br_seterr(SHMBUS_EINVAL, "kafka.%s = '%s': %s", k, v,
				 err);
	return 0;
}

static rd_kafka_conf_t *make_conf(struct shmbus_bridge *b)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const shmbus_bridge_config_t *c = &b->cfg;
	int rc = set(conf, "bootstrap.servers", c->kafka_brokers);
	/* the fixed properties were refused when set (config.c) */
	for (uint32_t i = 0; rc == 0 && i < c->n_props; i++)
		rc = set(conf, c->props[i].key, c->props[i].value);
	if (rc) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_opaque(conf, b);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_log_cb(conf, on_log);
	return conf;
}

static rd_kafka_t *make_client(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
	char err[512];
	rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		br_seterr(SHMBUS_EINVAL, "kafka client: %s", err);
	}
	return rk;
}

/* ------------------------------------------------------------ to-kafka */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *op)
{
	(void)rk;
	struct shmbus_bridge *b = op;
	struct kf_state *ks = b->rs;
	if (ks->closing)
		return;
	uintptr_t tag = (uintptr_t)m->_private;
	struct br_chan *c = &b->chans[tag & 0xff];
	uint64_t seq = br_out_seq(c, (uint64_t)tag >> 8);
	if (m->err) {
		br_remote_error(b, "kafka delivery to '%s': %s", c->target,
				rd_kafka_err2str(m->err));
		br_out_failed(b, c, seq);
		br_backoff(b);
		return;
	}
	br_out_acked(b, c, seq);
	br_connected(b, true);
	if (b->backoff_ms)
		br_backoff_reset(b);
}

static void drop_producer(struct kf_state *ks)
{
	ks->closing = true;
	for (int i = 0; i < BR_MAX_CHANNELS; i++)
		if (ks->rkt[i]) {
			rd_kafka_topic_destroy(ks->rkt[i]);
			ks->rkt[i] = NULL;
		}
	if (ks->rk) {
		rd_kafka_purge(ks->rk, RD_KAFKA_PURGE_F_QUEUE |
					       RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_destroy(ks->rk);
	}
	ks->rk = NULL;
	ks->closing = false;
}

static int make_producer(struct shmbus_bridge *b, struct kf_state *ks)
{
	rd_kafka_conf_t *conf = make_conf(b);
	if (conf == NULL)
		return SHMBUS_EINVAL;
	/* keys placed as by the Java client (murmur2_random), unless
	 * kafka.partitioner says otherwise */
	if (set(conf, "enable.idempotence", "true") ||
	    set(conf, "partitioner",
		shmbus_bridge_config_get(&b->cfg, "kafka.partitioner"))) {
		rd_kafka_conf_destroy(conf);
		return SHMBUS_EINVAL;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	ks->rk = make_client(RD_KAFKA_PRODUCER, conf);
	if (ks->rk == NULL)
		return SHMBUS_EINVAL;
	for (uint32_t i = 0; i < b->n_chan; i++) {
		ks->rkt[i] = rd_kafka_topic_new(ks->rk, b->chans[i].target,
						NULL);
		if (ks->rkt[i] == NULL)
			return br_seterr(SHMBUS_EINVAL, "kafka topic '%s': %s",
					 b->chans[i].target,
					 rd_kafka_err2str(rd_kafka_last_error()));
	}
	return 0;
}

static int out_open(struct shmbus_bridge *b)
{
	struct kf_state *ks = br_remote_state(b, sizeof(*ks));
	return ks ? make_producer(b, ks) : SHMBUS_ENOMEM;
}

static void out_close(struct shmbus_bridge *b)
{
	struct kf_state *ks = b->rs;
	if (ks == NULL)
		return;
	drop_producer(ks);
	free(ks);
	b->rs = NULL;
}

/* After a fatal error: a new producer; what the old one had in flight is
 * sent again from the oldest unacknowledged record. */
static int renew_producer(struct shmbus_bridge *b, struct kf_state *ks)
{
	drop_producer(ks);
	ks->fatal = false;
	for (uint32_t i = 0; i < b->n_chan; i++) {
		struct br_chan *c = &b->chans[i];
		if (c->in_flight == 0)
			continue;
		uint32_t n = c->in_flight;
		for (uint64_t s = c->floor; n && s != c->next; s++)
			if (!c->acked[s & (c->window - 1)]) {
				br_out_failed(b, c, s);
				n--;
			}
		c->in_flight = 0;
	}
	br_backoff(b);
	return make_producer(b, ks);
}

static bool out_ready(struct shmbus_bridge *b)
{
	struct kf_state *ks = b->rs;
	return ks->rk && !ks->fatal;
}

static int out_send(struct shmbus_bridge *b, struct br_chan *c,
		    const shmbus_record_t *r, const void *val, size_t len)
{
	struct kf_state *ks = b->rs;
	char seq[24], origin[64], when[24], key[24];
	snprintf(seq, sizeof(seq), "%" PRIu64, r->seq);
	br_origin_id(b, r, origin, sizeof(origin));
	uint64_t t = br_realtime_ns(b, r->timestamp);
	snprintf(when, sizeof(when), "%" PRIu64, t);
	int klen = br_key_text(r->key, key, sizeof(key));
	uintptr_t tag = (uintptr_t)((r->seq & ((1ull << 56) - 1)) << 8) |
			c->index;
	rd_kafka_resp_err_t err;
	for (;;) {
		err = rd_kafka_producev(
			ks->rk, RD_KAFKA_V_RKT(ks->rkt[c->index]),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_KEY(key, (size_t)klen),
			RD_KAFKA_V_VALUE((void *)val, len),
			RD_KAFKA_V_TIMESTAMP((int64_t)(t / 1000000)),
			RD_KAFKA_V_HEADER("shmbus.type", c->name, -1),
			RD_KAFKA_V_HEADER("shmbus.seq", seq, -1),
			RD_KAFKA_V_HEADER("shmbus.origin", origin, -1),
			RD_KAFKA_V_HEADER("shmbus.time", when, -1),
			RD_KAFKA_V_OPAQUE((void *)tag), RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || br_stopping(b))
			break;
		/* librdkafka's queue is full: serve delivery reports */
		rd_kafka_poll(ks->rk, 10);
	}
	if (err) {
		br_remote_error(b, "kafka produce to '%s': %s", c->target,
				rd_kafka_err2str(err));
		br_out_failed(b, c, r->seq);
		br_backoff(b);
	}
	return 0;
}

static int out_service(struct shmbus_bridge *b, uint32_t wait_ms)
{
	struct kf_state *ks = b->rs;
	if (ks->fatal)
		return renew_producer(b, ks);
	return rd_kafka_poll(ks->rk, (int)wait_ms);
}

const struct br_remote br_kafka_out = {"kafka",  out_open, out_close,
					out_ready, out_send, out_service};

/* ---------------------------------------------------------- from-kafka */

/* Commit what was published: asynchronously in the stream of work,
 * synchronously before partitions go to another consumer and at close. */
static void commit_done(struct shmbus_bridge *b, struct kf_state *ks,
			bool sync)
{
	if (ks->done == NULL || ks->done->cnt == 0)
		return;
	rd_kafka_resp_err_t err = rd_kafka_commit(ks->rk, ks->done, !sync);
	if (err)
		br_remote_error(b, "kafka commit: %s (the records come again "
				   "after a restart: duplicates, not losses)",
				rd_kafka_err2str(err));
	else
		br_count(&b->n.acked, ks->uncommitted);
	rd_kafka_topic_partition_list_destroy(ks->done);
	ks->done = NULL;
	ks->uncommitted = 0;
	ks->committed_at_ns = shmbus_now_ns();
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
		      rd_kafka_topic_partition_list_t *offsets, void *op)
{
	(void)rk;
	struct shmbus_bridge *b = op;
	if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		br_remote_error(b, "kafka commit: %s", rd_kafka_err2str(err));
	else if (!err && offsets)
		br_connected(b, true);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *op)
{
	struct shmbus_bridge *b = op;
	bool coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		if (coop)
			rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
		else
			rd_kafka_assign(rk, parts);
		return;
	}
	commit_done(b, b->rs, true);
	if (coop)
		rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
	else
		rd_kafka_assign(rk, NULL);
}

static int in_open(struct shmbus_bridge *b)
{
	struct kf_state *ks = br_remote_state(b, sizeof(*ks));
	if (ks == NULL)
		return SHMBUS_ENOMEM;
	rd_kafka_conf_t *conf = make_conf(b);
	const char *grp = b->cfg.kafka_group[0] ? b->cfg.kafka_group
						: b->cfg.name;
	if (conf == NULL)
		return SHMBUS_EINVAL;
	if (set(conf, "group.id", grp) ||
	    set(conf, "enable.auto.commit", "false") ||
	    set(conf, "enable.auto.offset.store", "false")) {
		rd_kafka_conf_destroy(conf);
		return SHMBUS_EINVAL;
	}
	/* a new group starts at the oldest record (nothing skipped), unless
	 * kafka.auto.offset.reset says otherwise */
	if (!*shmbus_bridge_config_get(&b->cfg, "kafka.auto.offset.reset"))
		set(conf, "auto.offset.reset", "earliest");
	rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
	rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
	ks->rk = make_client(RD_KAFKA_CONSUMER, conf);
	if (ks->rk == NULL)
		return SHMBUS_EINVAL;
	rd_kafka_poll_set_consumer(ks->rk);
	rd_kafka_topic_partition_list_t *topics =
		rd_kafka_topic_partition_list_new((int)b->n_chan);
	for (uint32_t i = 0; i < b->n_chan; i++)
		rd_kafka_topic_partition_list_add(topics, b->chans[i].target,
						  RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(ks->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (e)
		return br_seterr(SHMBUS_EINVAL, "kafka subscribe: %s",
				 rd_kafka_err2str(e));
	ks->committed_at_ns = shmbus_now_ns();
	return 0;
}

static void in_close(struct shmbus_bridge *b)
{
	struct kf_state *ks = b->rs;
	if (ks == NULL)
		return;
	if (ks->rk) {
		commit_done(b, ks, true);
		rd_kafka_consumer_close(ks->rk);
		rd_kafka_destroy(ks->rk);
	}
	if (ks->done)
		rd_kafka_topic_partition_list_destroy(ks->done);
	free(ks);
	b->rs = NULL;
}

/* Remember offset + 1 of a published message for the next commit. */
static void mark_done(struct kf_state *ks, const rd_kafka_message_t *m)
{
	if (ks->done == NULL)
		ks->done = rd_kafka_topic_partition_list_new(8);
	const char *topic = rd_kafka_topic_name(m->rkt);
	rd_kafka_topic_partition_t *p =
		rd_kafka_topic_partition_list_find(ks->done, topic,
						   m->partition);
	if (p == NULL)
		p = rd_kafka_topic_partition_list_add(ks->done, topic,
						      m->partition);
	p->offset = m->offset + 1;
	ks->uncommitted++;
}

/* One message: 0 done, < 0 stop (not committed: delivered again). */
static int take_message(struct shmbus_bridge *b, struct kf_state *ks,
			rd_kafka_message_t *m)
{
	if (m->err) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			br_remote_error(b, "kafka consume: %s",
					rd_kafka_message_errstr(m));
		return 0;
	}
	const char *topic = rd_kafka_topic_name(m->rkt);
	struct br_chan *c = br_chan_by_target(b, topic, strlen(topic));
	if (c == NULL)
		return 0;
	br_connected(b, true);
	if (m->payload == NULL) { /* a null value: a tombstone, no record */
		br_count(&b->n.read, 1);
		if (b->cfg.kafka_null_reject)
			br_rejected(b, "%s -> channel '%s': a message with a "
				       "null value (kafka.null_values = "
				       "reject)",
				    c->target, c->name);
		else
			br_count(&b->n.skipped, 1);
		mark_done(ks, m);
		return 0;
	}
	int rc = br_in_publish(b, c, m->payload, m->len,
			       br_key_parse(m->key, m->key_len));
	if (rc < 0)
		return rc;
	mark_done(ks, m);
	return 0;
}

static int in_service(struct shmbus_bridge *b, uint32_t wait_ms)
{
	struct kf_state *ks = b->rs;
	int moved = 0, failed = 0;
	rd_kafka_message_t *m = rd_kafka_consumer_poll(ks->rk, (int)wait_ms);
	while (m) {
		int rc = take_message(b, ks, m);
		rd_kafka_message_destroy(m);
		if (rc < 0) {
			/* the bus refused it (a key into a compact channel):
			 * the bridge stops, its message says why. Going on
			 * would commit the messages after it, and its offset
			 * with them: a loss nobody is told of */
			failed = rc == SHMBUS_ECLOSED ? 0 : rc;
			break;
		}
		moved++;
		if ((uint32_t)moved >= b->cfg.batch)
			break;
		m = rd_kafka_consumer_poll(ks->rk, 0);
	}
	if (ks->uncommitted >= b->cfg.batch ||
	    (ks->uncommitted &&
	     shmbus_now_ns() - ks->committed_at_ns > 200000000ull))
		commit_done(b, ks, false);
	return failed ? failed : moved;
}

const struct br_remote br_kafka_in = {"kafka", in_open,	in_close,
				       NULL,	NULL,	in_service};
