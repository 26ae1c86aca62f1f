/*
 * JSON values for bridges: a record goes out as the JSON object of its
 * fields (the same encoding `shmbus tail` prints), and a JSON object comes
 * in as a record (as `shmbus pub` reads it). A value that cannot be
 * converted is SHMBUS_EPERMANENT: the bridge counts it as rejected and
 * goes on, rather than block the records behind it.
 */
#define _GNU_SOURCE
#include "bridge_json.h"

#include <stdio.h>
#include <string.h>

/* The codec of a channel, opened on first use (NULL: cannot). */
static struct codec *codec_for(struct bridge_json *j, const char *name)
{
	for (int i = 0; i < j->n; i++)
		if (strcmp(j->ch[i].name, name) == 0)
			return &j->ch[i].codec;
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

static int encode(void *ctx, const char *channel, const shmbus_record_t *rec,
		  void *buf, size_t cap, const void **out, size_t *len)
{
	struct codec *c = codec_for(ctx, channel);
	if (c == NULL)
		return SHMBUS_EPERMANENT;
	if (c->n == 0) { /* no schema: the bytes as they are */
		*out = rec->data;
		*len = rec->len;
		return 0;
	}
	json_t *o = codec_decode(c, rec->data, rec->len);
	size_t n = o ? json_dumpb(o, buf, cap, JSON_COMPACT) : 0;
	json_decref(o);
	if (n == 0 || n > cap)
		return SHMBUS_EPERMANENT;
	*out = buf;
	*len = n;
	return 0;
}

static int decode(void *ctx, const char *channel, const void *in, size_t len,
		  void *buf, uint32_t cap, uint32_t *out_len)
{
	struct codec *c = codec_for(ctx, channel);
	if (c == NULL || cap < c->record_size)
		return SHMBUS_EPERMANENT;
	if (c->n == 0) {
		if (len > cap)
			return SHMBUS_EPERMANENT;
		memcpy(buf, in, len);
		*out_len = (uint32_t)len;
		return 0;
	}
	json_t *o = json_loadb(in, len, 0, NULL);
	char err[160];
	int rc = o && json_is_object(o) &&
				 codec_encode(c, o, buf, err, sizeof(err)) == 0
			 ? 0
			 : SHMBUS_EPERMANENT;
	json_decref(o);
	*out_len = c->record_size;
	return rc;
}

int bridge_json_init(struct bridge_json *j, const char *bus,
		     shmbus_bridge_codec_t *codec)
{
	memset(j, 0, sizeof(*j));
	shmbus_opts_t o = {.flags = SHMBUS_OPEN_NO_PREFAULT};
	if (bus == NULL || shmbus_open(bus, &o, &j->bus) != 0) {
		fprintf(stderr, "shmbus bridge: --value json: %s\n",
			bus ? shmbus_errmsg() : "which bus?");
		return 1;
	}
	memset(codec, 0, sizeof(*codec));
	codec->encode = encode;
	codec->decode = decode;
	codec->ctx = j;
	return 0;
}

void bridge_json_fini(struct bridge_json *j)
{
	shmbus_close(j->bus); /* closes the channels too */
	j->bus = NULL;
}
