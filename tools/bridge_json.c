/*
 * JSON values for bridges: a record goes out as the JSON object of its
 * fields (the same encoding `shmbus tail` prints), and a JSON object comes
 * in as a record (as `shmbus pub` reads it). A value that cannot be
 * converted is SHMBUS_EPERMANENT: the bridge counts it as rejected and
 * goes on, rather than block the records behind it.
 */
#define _GNU_SOURCE
#include "bridge_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The codec of a channel, opened on first use (NULL: cannot). */
static struct codec *codec_for(struct bridge_json *j, const char *name)
{
	for (int i = 0; i < j->n; i++)
		if (strcmp(j->ch[i].name, name) == 0)
			return &j->ch[i].codec;
	shmbus_opts_t o = {.flags = SHMBUS_OPEN_NO_PREFAULT};
	if (j->bus == NULL && shmbus_open(j->bus_name, &o, &j->bus) != 0)
		return NULL;
	shmbus_channel_t *ch;
	if (j->n == BRIDGE_JSON_CHANNELS ||
	    shmbus_channel_open(j->bus, name, NULL, &ch) != 0)
		return NULL;
	struct bridge_json_channel *c = &j->ch[j->n];
	if (codec_open(&c->codec, ch) != 0) {
		shmbus_channel_close(ch);
		return NULL;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	j->n++;
	return &c->codec;
}

static int refuse(struct bridge_json *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int refuse(struct bridge_json *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->err, sizeof(j->err), fmt, ap);
	va_end(ap);
	return SHMBUS_EPERMANENT;
}

/* Up to 40 bytes of a remote value, for a message: unprintable bytes as
 * '?'. */
static const char *printable(const void *p, size_t len)
{
	static char s[41];
	size_t n = len < 40 ? len : 40;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = ((const unsigned char *)p)[i];
		s[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	s[n] = '\0';
	return s;
}

static int encode(void *ctx, const char *channel, const shmbus_record_t *rec,
		  void *buf, size_t cap, const void **out, size_t *len)
{
	struct bridge_json *j = ctx;
	struct codec *c = codec_for(j, channel);
	if (c == NULL)
		return refuse(j, "cannot read the channel's schema");
	if (c->n == 0) { /* no schema: the bytes as they are */
		*out = rec->data;
		*len = rec->len;
		return 0;
	}
	json_t *o = codec_decode(c, rec->data, rec->len);
	size_t n = o ? json_dumpb(o, buf, cap, JSON_COMPACT) : 0;
	json_decref(o);
	if (n == 0 || n > cap)
		return refuse(j, "its JSON is longer than %zu bytes", cap);
	*out = buf;
	*len = n;
	return 0;
}

static int decode(void *ctx, const char *channel, const void *in, size_t len,
		  void *buf, uint32_t cap, uint32_t *out_len)
{
	struct bridge_json *j = ctx;
	struct codec *c = codec_for(j, channel);
	if (c == NULL || cap < c->record_size)
		return refuse(j, "cannot read the channel's schema");
	if (c->n == 0) {
		if (len > cap)
			return refuse(j, "a value of %zu bytes does not fit "
					 "its records of %u bytes",
				      len, cap);
		memcpy(buf, in, len);
		*out_len = (uint32_t)len;
		return 0;
	}
	json_error_t je;
	json_t *o = json_loadb(in, len, 0, &je);
	int rc = 0;
	if (o == NULL || !json_is_object(o))
		rc = refuse(j, "a value that is not a JSON object (%s): "
			       "'%.40s'",
			    o ? "another JSON value" : je.text,
			    printable(in, len));
	else if (codec_encode(c, o, buf, j->err, sizeof(j->err)))
		rc = SHMBUS_EPERMANENT; /* j->err names the field */
	json_decref(o);
	*out_len = c->record_size;
	return rc;
}

static const char *error(void *ctx)
{
	return ((struct bridge_json *)ctx)->err;
}

int bridge_json_init(struct bridge_json *j, const char *bus,
		     shmbus_bridge_codec_t *codec)
{
	memset(j, 0, sizeof(*j));
	if (bus == NULL || strlen(bus) > SHMBUS_NAME_MAX) {
		fprintf(stderr, "shmbus bridge: --value json: which bus?\n");
		return 1;
	}
	snprintf(j->bus_name, sizeof(j->bus_name), "%s", bus);
	memset(codec, 0, sizeof(*codec));
	codec->encode = encode;
	codec->decode = decode;
	codec->error = error;
	codec->ctx = j;
	return 0;
}

void bridge_json_fini(struct bridge_json *j)
{
	if (j->bus)
		shmbus_close(j->bus); /* closes the channels too */
	j->bus = NULL;
}
