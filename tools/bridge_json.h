/*
 * `shmbus bridge --value json`: remote values as JSON by each channel's
 * schema (codec.h), both ways; channels without a schema stay raw.
 */
#ifndef SHMBUS_TOOLS_BRIDGE_JSON_H
#define SHMBUS_TOOLS_BRIDGE_JSON_H

#include <shmbus/bridge.h>

#include "codec.h"

#define BRIDGE_JSON_CHANNELS 64

struct bridge_json {
	char bus_name[SHMBUS_NAME_MAX + 1];
	shmbus_t *bus; /* our own handle, for the schemas: at first use,
			* when the bridge has opened the bus */
	char err[200]; /* why the last conversion failed */
	int n;
	struct bridge_json_channel {
		char name[SHMBUS_NAME_MAX + 1];
		struct codec codec;
	} ch[BRIDGE_JSON_CHANNELS];
};

/* Fill codec with callbacks on j for the bus (attached at first use). 0,
 * or 1 (said why). */
int bridge_json_init(struct bridge_json *j, const char *bus,
		     shmbus_bridge_codec_t *codec);
void bridge_json_fini(struct bridge_json *j);

#endif
