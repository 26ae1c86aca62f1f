/*
 * Bridge configuration: key = value, from files, flags or code. Every
 * key is checked when it is set, so a typo fails at start with the key's
 * name and the line, never later as a silently ignored setting.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const directions[] = {NULL, "to-kafka", "from-kafka",
					 "to-redis", "from-redis"};

const char *br_direction_name(int d)
{
	return d >= BR_TO_KAFKA && d <= BR_FROM_REDIS ? directions[d] : "none";
}

void br_config_defaults(shmbus_bridge_config_t *c)
{
	memset(c, 0, sizeof(*c));
	c->window = 8192;
	c->batch = 256;
	c->backoff_min_ms = 100;
	c->backoff_max_ms = 5000;
	snprintf(c->kafka_brokers, sizeof(c->kafka_brokers), "127.0.0.1:9092");
	snprintf(c->redis_host, sizeof(c->redis_host), "127.0.0.1");
	c->redis_port = 6379;
	c->redis_pipeline = 128;
	c->redis_claim_idle_ms = 30000;
	c->redis_timeout_ms = 10000;
}

int shmbus_bridge_config_new(shmbus_bridge_config_t **out)
{
	if (out == NULL)
		return br_seterr(SHMBUS_EINVAL, "out is NULL");
	shmbus_bridge_config_t *c = malloc(sizeof(*c));
	if (c == NULL)
		return br_seterr(SHMBUS_ENOMEM, "bridge config: out of memory");
	br_config_defaults(c);
	*out = c;
	return 0;
}

void br_config_clear(shmbus_bridge_config_t *c)
{
	for (uint32_t i = 0; i < c->n_props; i++) {
		free(c->props[i].key);
		free(c->props[i].value);
	}
	free(c->props);
	c->props = NULL;
	c->n_props = 0;
}

void shmbus_bridge_config_free(shmbus_bridge_config_t *c)
{
	if (c == NULL)
		return;
	br_config_clear(c);
	free(c);
}

static int add_prop(shmbus_bridge_config_t *c, const char *key,
		    const char *value)
{
	for (uint32_t i = 0; i < c->n_props; i++)
		if (strcmp(c->props[i].key, key) == 0) {
			char *v = strdup(value);
			if (v == NULL)
				return br_seterr(SHMBUS_ENOMEM, "out of memory");
			free(c->props[i].value);
			c->props[i].value = v;
			return 0;
		}
	struct br_prop *p = realloc(c->props, (c->n_props + 1) * sizeof(*p));
	if (p == NULL)
		return br_seterr(SHMBUS_ENOMEM, "out of memory");
	c->props = p;
	p[c->n_props].key = strdup(key);
	p[c->n_props].value = strdup(value);
	if (!p[c->n_props].key || !p[c->n_props].value) {
		free(p[c->n_props].key);
		free(p[c->n_props].value);
		return br_seterr(SHMBUS_ENOMEM, "out of memory");
	}
	c->n_props++;
	return 0;
}

int br_config_copy(shmbus_bridge_config_t *dst,
		   const shmbus_bridge_config_t *src)
{
	*dst = *src;
	dst->props = NULL;
	dst->n_props = 0;
	for (uint32_t i = 0; i < src->n_props; i++)
		if (add_prop(dst, src->props[i].key, src->props[i].value)) {
			br_config_clear(dst);
			return SHMBUS_ENOMEM;
		}
	return 0;
}

static int parse_u64(const char *key, const char *v, uint64_t min,
		     uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || x < min || x > max)
		return br_seterr(SHMBUS_EINVAL,
				 "%s = '%s': expected a whole number in "
				 "%llu..%llu",
				 key, v, (unsigned long long)min,
				 (unsigned long long)max);
	*out = x;
	return 0;
}

static int set_u32(const char *key, const char *v, uint32_t min,
		   uint32_t max, uint32_t *out)
{
	uint64_t x = 0; /* parse_u64 sets it when it returns 0 */
	int rc = parse_u64(key, v, min, max, &x);
	if (rc == 0)
		*out = (uint32_t)x;
	return rc;
}

static int set_str(const char *key, const char *v, char *out, size_t n)
{
	if (strlen(v) >= n)
		return br_seterr(SHMBUS_EINVAL, "%s: longer than %zu bytes",
				 key, n - 1);
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

/* Bus and channel names: [A-Za-z0-9_.-]{1,47}, as the core checks. */
static bool valid_name(const char *s, size_t len)
{
	if (len == 0 || len > SHMBUS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

/* bus and name: shmbus names */
static int set_name(const char *key, const char *v, const char *what,
		    char out[SHMBUS_NAME_MAX + 1])
{
	if (!valid_name(v, strlen(v)))
		return br_seterr(SHMBUS_EINVAL,
				 "%s = '%s': %s is 1..%d of [A-Za-z0-9_.-]",
				 key, v, what, SHMBUS_NAME_MAX);
	return set_str(key, v, out, SHMBUS_NAME_MAX + 1);
}

/* channel = CHANNEL[:TARGET]; the target defaults to the channel name */
static int add_channel(shmbus_bridge_config_t *c, const char *v)
{
	const char *colon = strchr(v, ':');
	size_t nlen = colon ? (size_t)(colon - v) : strlen(v);
	if (!valid_name(v, nlen))
		return br_seterr(SHMBUS_EINVAL,
				 "channel = '%s': a channel name is 1..%d of "
				 "[A-Za-z0-9_.-], then optionally "
				 ":TOPIC_OR_STREAM",
				 v, SHMBUS_NAME_MAX);
	const char *t = colon ? colon + 1 : v;
	size_t tlen = colon ? strlen(t) : nlen;
	if (tlen == 0 || tlen >= BR_TARGET_MAX)
		return br_seterr(SHMBUS_EINVAL,
				 "channel = '%s': the topic or stream after "
				 "':' must be 1..%d bytes",
				 v, BR_TARGET_MAX - 1);
	for (uint32_t i = 0; i < c->n_chan; i++)
		if (strlen(c->chan[i]) == nlen && !strncmp(c->chan[i], v, nlen))
			return br_seterr(SHMBUS_EINVAL,
					 "channel '%.*s' is given twice",
					 (int)nlen, v);
	if (c->n_chan == BR_MAX_CHANNELS)
		return br_seterr(SHMBUS_EINVAL,
				 "at most %d channels per bridge: run another "
				 "bridge for the rest",
				 BR_MAX_CHANNELS);
	memcpy(c->chan[c->n_chan], v, nlen);
	c->chan[c->n_chan][nlen] = '\0';
	memcpy(c->target[c->n_chan], t, tlen);
	c->target[c->n_chan][tlen] = '\0';
	c->n_chan++;
	return 0;
}

static int set_direction(shmbus_bridge_config_t *c, const char *v)
{
	for (int d = BR_TO_KAFKA; d <= BR_FROM_REDIS; d++)
		if (strcmp(v, directions[d]) == 0) {
			c->direction = d;
			return 0;
		}
	return br_seterr(SHMBUS_EINVAL,
			 "direction = '%s': expected to-kafka, from-kafka, "
			 "to-redis or from-redis",
			 v);
}

const char *const br_kafka_fixed[] = {
	"enable.idempotence", "acks", "enable.auto.commit",
	"enable.auto.offset.store", "group.id", NULL};

static int set_kafka(shmbus_bridge_config_t *c, const char *key,
		     const char *v)
{
	const char *k = key + strlen("kafka.");
	if (strcmp(k, "brokers") == 0)
		return set_str(key, v, c->kafka_brokers,
			       sizeof(c->kafka_brokers));
	if (strcmp(k, "group") == 0)
		return set_str(key, v, c->kafka_group, sizeof(c->kafka_group));
	if (strcmp(k, "null_values") == 0) {
		if (strcmp(v, "skip") && strcmp(v, "reject"))
			return br_seterr(SHMBUS_EINVAL,
					 "kafka.null_values = '%s': skip or "
					 "reject",
					 v);
		c->kafka_null_reject = v[0] == 'r';
		return 0;
	}
	if (*k == '\0')
		return br_seterr(SHMBUS_EINVAL, "kafka.: which property?");
	for (const char *const *f = br_kafka_fixed; *f; f++)
		if (strcmp(k, *f) == 0)
			return br_seterr(SHMBUS_EINVAL,
					 "kafka.%s is set by the bridge (its "
					 "delivery guarantee rests on it)%s",
					 *f,
					 !strcmp(*f, "group.id")
						 ? ": use kafka.group"
						 : "");
	/* librdkafka checks the rest when the client is made */
	return add_prop(c, k, v);
}

/* redis.* keys: strings, and numbers within bounds */
#define RS(k, f) {k, offsetof(shmbus_bridge_config_t, f), 0, 0, sizeof(((shmbus_bridge_config_t *)0)->f)}
#define RN(k, f, lo, hi) {k, offsetof(shmbus_bridge_config_t, f), lo, hi, 0}
static const struct {
	const char *key;
	size_t off;
	uint32_t min, max;
	size_t str_size; /* 0: a u32 */
} redis_keys[] = {
	RS("host", redis_host),
	RN("port", redis_port, 1, 65535),
	RS("password", redis_password),
	RN("pipeline", redis_pipeline, 1, 65536),
	RS("group", redis_group),
	RS("consumer", redis_consumer),
	RN("claim_idle_ms", redis_claim_idle_ms, 1, 86400000),
	RN("timeout_ms", redis_timeout_ms, 10, 3600000),
};
#undef RS
#undef RN

static int set_redis(shmbus_bridge_config_t *c, const char *key,
		     const char *v)
{
	const char *k = key + strlen("redis.");
	char *base = (char *)c;
	if (!strcmp(k, "maxlen"))
		return parse_u64(key, v, 0, UINT64_MAX / 2, &c->redis_maxlen);
	for (size_t i = 0; i < sizeof(redis_keys) / sizeof(redis_keys[0]); i++) {
		if (strcmp(k, redis_keys[i].key) != 0)
			continue;
		if (redis_keys[i].str_size)
			return set_str(key, v, base + redis_keys[i].off,
				       redis_keys[i].str_size);
		return set_u32(key, v, redis_keys[i].min, redis_keys[i].max,
			       (uint32_t *)(void *)(base + redis_keys[i].off));
	}
	return br_seterr(SHMBUS_EINVAL,
			 "unknown key '%s' (redis.host, .port, .password, "
			 ".pipeline, .maxlen, .group, .consumer, "
			 ".claim_idle_ms, .timeout_ms)",
			 key);
}

int shmbus_bridge_config_set(shmbus_bridge_config_t *c, const char *key,
			     const char *v)
{
	if (c == NULL || key == NULL || v == NULL)
		return br_seterr(SHMBUS_EINVAL, "config, key or value NULL");
	if (!strcmp(key, "bus"))
		return set_name(key, v, "a bus name", c->bus);
	if (!strcmp(key, "direction"))
		return set_direction(c, v);
	if (!strcmp(key, "channel"))
		return add_channel(c, v);
	if (!strcmp(key, "name"))
		return set_name(key, v, "a subscriber name", c->name);
	if (!strcmp(key, "window"))
		return set_u32(key, v, 1, 1u << 20, &c->window);
	if (!strcmp(key, "batch"))
		return set_u32(key, v, 1, 65536, &c->batch);
	if (!strcmp(key, "backoff_min_ms"))
		return set_u32(key, v, 1, 3600000, &c->backoff_min_ms);
	if (!strcmp(key, "backoff_max_ms"))
		return set_u32(key, v, 1, 3600000, &c->backoff_max_ms);
	if (!strncmp(key, "kafka.", 6))
		return set_kafka(c, key, v);
	if (!strncmp(key, "redis.", 6))
		return set_redis(c, key, v);
	return br_seterr(SHMBUS_EINVAL,
			 "unknown key '%s' (bus, direction, channel, name, "
			 "window, batch, backoff_min_ms, backoff_max_ms, "
			 "kafka.*, redis.*)",
			 key);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* One line of a config file; 0 for blank lines and comments. */
static int load_line(shmbus_bridge_config_t *c, char *line)
{
	char *hash = strchr(line, '#');
	if (hash)
		*hash = '\0';
	char *s = trim(line);
	if (*s == '\0')
		return 0;
	char *eq = strchr(s, '=');
	if (eq == NULL)
		return br_seterr(SHMBUS_EINVAL, "expected 'key = value', "
						"found '%s'",
				 s);
	*eq = '\0';
	return shmbus_bridge_config_set(c, trim(s), trim(eq + 1));
}

int shmbus_bridge_config_load(shmbus_bridge_config_t *c, const char *path)
{
	if (c == NULL || path == NULL)
		return br_seterr(SHMBUS_EINVAL, "config or path NULL");
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return br_seterr(SHMBUS_ENOENT, "cannot read %s: %s", path,
				 strerror(errno));
	char line[1024];
	int rc = 0;
	for (unsigned no = 1; rc == 0 && fgets(line, sizeof(line), f); no++) {
		if (strlen(line) == sizeof(line) - 1 && !strchr(line, '\n')) {
			rc = br_seterr(SHMBUS_EINVAL, "%s:%u: line longer "
						      "than %zu bytes",
				       path, no, sizeof(line) - 2);
			break;
		}
		rc = load_line(c, line);
		if (rc)
			br_seterr(rc, "%s:%u: %s", path, no,
				  shmbus_bridge_errmsg());
	}
	fclose(f);
	return rc;
}

static const char *get_channels(shmbus_bridge_config_t *c)
{
	size_t off = 0;
	c->get_buf[0] = '\0';
	for (uint32_t i = 0; i < c->n_chan && off < sizeof(c->get_buf); i++)
		off += (size_t)snprintf(c->get_buf + off,
					sizeof(c->get_buf) - off, "%s%s:%s",
					i ? "," : "", c->chan[i],
					c->target[i]);
	return c->get_buf;
}

/* The keys shmbus_bridge_config_get answers from fields: numbers (u32
 * or u64) and strings; `dflt` names the field used when one is empty. */
#define F(key, field, kind, dflt)                                              \
	{key, offsetof(shmbus_bridge_config_t, field), kind,                   \
	 offsetof(shmbus_bridge_config_t, dflt)}
enum { K_U32, K_U64, K_STR };
static const struct {
	const char *key;
	size_t off;
	int kind;
	size_t dflt;
} fields[] = {
	F("bus", bus, K_STR, bus),
	F("name", name, K_STR, name),
	F("window", window, K_U32, window),
	F("batch", batch, K_U32, batch),
	F("backoff_min_ms", backoff_min_ms, K_U32, backoff_min_ms),
	F("backoff_max_ms", backoff_max_ms, K_U32, backoff_max_ms),
	F("kafka.brokers", kafka_brokers, K_STR, kafka_brokers),
	F("kafka.group", kafka_group, K_STR, name),
	F("redis.host", redis_host, K_STR, redis_host),
	F("redis.port", redis_port, K_U32, redis_port),
	F("redis.pipeline", redis_pipeline, K_U32, redis_pipeline),
	F("redis.maxlen", redis_maxlen, K_U64, redis_maxlen),
	F("redis.group", redis_group, K_STR, name),
	F("redis.consumer", redis_consumer, K_STR, name),
	F("redis.claim_idle_ms", redis_claim_idle_ms, K_U32,
	  redis_claim_idle_ms),
	F("redis.timeout_ms", redis_timeout_ms, K_U32, redis_timeout_ms),
};
#undef F

static const char *get_field(shmbus_bridge_config_t *c, size_t i)
{
	const char *base = (const char *)c;
	uint64_t v;
	if (fields[i].kind == K_STR) {
		const char *str = base + fields[i].off;
		return *str ? str : base + fields[i].dflt;
	}
	if (fields[i].kind == K_U32)
		v = *(const uint32_t *)(base + fields[i].off);
	else
		v = *(const uint64_t *)(base + fields[i].off);
	snprintf(c->get_buf, sizeof(c->get_buf), "%llu", (unsigned long long)v);
	return c->get_buf;
}

const char *shmbus_bridge_config_get(const shmbus_bridge_config_t *cc,
				     const char *key)
{
	/* get_buf is scratch for the answer, as documented */
	shmbus_bridge_config_t *c = (shmbus_bridge_config_t *)cc;
	if (c == NULL || key == NULL)
		return "";
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (!strcmp(key, fields[i].key))
			return get_field(c, i);
	if (!strcmp(key, "direction"))
		return c->direction ? br_direction_name(c->direction) : "";
	if (!strcmp(key, "channel"))
		return get_channels(c);
	if (!strcmp(key, "kafka.null_values"))
		return c->kafka_null_reject ? "reject" : "skip";
	if (!strncmp(key, "kafka.", 6))
		for (uint32_t i = 0; i < c->n_props; i++)
			if (!strcmp(c->props[i].key, key + 6))
				return c->props[i].value;
	if (!strcmp(key, "kafka.partitioner")) /* the Java client's */
		return "murmur2_random";
	return "";
}

const char *shmbus_bridge_config_prop(const shmbus_bridge_config_t *cc,
				      uint32_t i, const char **value)
{
	shmbus_bridge_config_t *c = (shmbus_bridge_config_t *)cc;
	if (c == NULL || i >= c->n_props)
		return NULL;
	if (value)
		*value = c->props[i].value;
	snprintf(c->get_buf, sizeof(c->get_buf), "kafka.%s", c->props[i].key);
	return c->get_buf;
}

int shmbus_bridge_config_codec(shmbus_bridge_config_t *c,
			       const shmbus_bridge_codec_t *codec)
{
	if (c == NULL)
		return br_seterr(SHMBUS_EINVAL, "config NULL");
	if (codec)
		c->codec = *codec;
	else
		memset(&c->codec, 0, sizeof(c->codec));
	return 0;
}

int shmbus_bridge_config_log(shmbus_bridge_config_t *c,
			     shmbus_bridge_log_fn fn, void *ctx)
{
	if (c == NULL)
		return br_seterr(SHMBUS_EINVAL, "config NULL");
	c->log = fn;
	c->log_ctx = ctx;
	return 0;
}
