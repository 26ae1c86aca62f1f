/*
 * shmbus ls [BUS]: the buses of this host, from the objects in /dev/shm
 * (shmbus.BUS, and shmbus.BUS:CHANNEL for each channel). A bus that does
 * not open (another ABI, corrupt, a creator that died half-way) is listed
 * with the reason; so are channel objects that its table does not name.
 * --json: the same as one document, for scripts and monitoring.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli.h"
#include "fmt.h"
#include "snapshot.h"

#define SHM_DIR "/dev/shm"
#define PREFIX "shmbus."
#define BUS_COLS "%-32s %5s %-10s %4s %5s %s\n"
#define CH_COLS "  %-22s %6s %6s %6s %-14s %4s %10s\n"

static const char help[] =
	"usage: shmbus ls [BUS] [--json]\n\n"
	"Lists the buses of this host (or only BUS) with their channels:\n"
	"object sizes, owner and permissions, live participants and status\n"
	"(in use, idle, or why the bus cannot be opened: another ABI, corrupt,\n"
	"not made ready), and per channel its record size, slots, producer\n"
	"mode and stall policy, subscribers and records published.\n\n"
	"  --json   one JSON document: {\"buses\": [{name, size, owner, mode,\n"
	"           live, status, error, channels: [...], orphans: [...]}]}\n"
	"           (sizes in bytes; a field that is not known is null;\n"
	"           docs/schema/ls.schema.json)\n";

/* --json: the document being built, and the bus being listed */
static json_t *jbuses, *jbus;

/* An object of /dev/shm: a bus (channel "") or a channel. */
struct object {
	char bus[SHMBUS_NAME_MAX + 1];
	char channel[SHMBUS_NAME_MAX + 1];
	struct stat st;
	bool listed; /* a channel that its bus's table names */
};

static int by_name(const void *a, const void *b)
{
	const struct object *x = a, *y = b;
	int c = strcmp(x->bus, y->bus);
	return c ? c : strcmp(x->channel, y->channel);
}

/* Parse "shmbus.BUS[:CHANNEL]"; false for names of other programs. */
static bool parse(const char *file, struct object *o)
{
	if (strncmp(file, PREFIX, strlen(PREFIX)) != 0)
		return false;
	const char *name = file + strlen(PREFIX), *sep = strchr(name, ':');
	size_t bl = sep ? (size_t)(sep - name) : strlen(name);
	if (bl == 0 || bl > SHMBUS_NAME_MAX ||
	    (sep && (strlen(sep + 1) == 0 || strlen(sep + 1) > SHMBUS_NAME_MAX)))
		return false;
	memset(o, 0, sizeof(*o));
	memcpy(o->bus, name, bl);
	if (sep)
		strcpy(o->channel, sep + 1);
	return true;
}

static int scan(struct object **out, size_t *n)
{
	DIR *d = opendir(SHM_DIR);
	if (d == NULL)
		return cli_failf("ls", "cannot read %s: %m", SHM_DIR);
	size_t cap = 64;
	*n = 0;
	*out = malloc(cap * sizeof(**out));
	struct dirent *e;
	while (*out && (e = readdir(d)) != NULL) {
		struct object o;
		if (!parse(e->d_name, &o) ||
		    fstatat(dirfd(d), e->d_name, &o.st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (*n == cap) {
			struct object *a = realloc(*out, 2 * cap * sizeof(*a));
			if (a == NULL)
				break;
			*out = a;
			cap *= 2;
		}
		(*out)[(*n)++] = o;
	}
	closedir(d);
	if (*out == NULL)
		return cli_fail("ls", "out of memory");
	qsort(*out, *n, sizeof(**out), by_name);
	return 0;
}

static void owner(char *buf, size_t n, uid_t uid)
{
	struct passwd pw, *r = NULL;
	char tmp[1024];
	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &r) == 0 && r)
		snprintf(buf, n, "%.10s", pw.pw_name);
	else
		snprintf(buf, n, "%u", (unsigned)uid);
}

/* --json: a bus's object; live < 0: not known */
static void bus_json(const char *bus, const struct object *o, long live,
		     const char *status, const char *error)
{
	char who[16], mode[8];
	if (o) {
		owner(who, sizeof(who), o->st.st_uid);
		snprintf(mode, sizeof(mode), "%04o",
			 (unsigned)(o->st.st_mode & 07777));
	}
	jbus = json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:[], s:[]}",
			 "name", bus,
			 "size", o ? json_integer(o->st.st_size) : json_null(),
			 "owner", o ? json_string(who) : json_null(),
			 "mode", o ? json_string(mode) : json_null(),
			 "live", live >= 0 ? json_integer(live) : json_null(),
			 "status", status,
			 "error", error ? json_string(error) : json_null(),
			 "channels", "orphans");
	json_array_append_new(jbuses, jbus);
}

static void bus_line(const char *bus, const struct object *o,
		     const char *live, const char *status)
{
	char size[FMT_LEN] = "-", who[16] = "-", mode[8] = "-";
	if (o) {
		fmt_bytes(size, (uint64_t)o->st.st_size);
		owner(who, sizeof(who), o->st.st_uid);
		snprintf(mode, sizeof(mode), "%04o",
			 (unsigned)(o->st.st_mode & 07777));
	}
	char name[33];
	printf(BUS_COLS, fmt_name(name, bus, 32), size, who, mode, live,
	       status);
}

/* The object of channel name among objs[0..n), marked as listed. */
static const struct object *channel_object(struct object *objs, size_t n,
					   const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(objs[i].channel, name)) {
			objs[i].listed = true;
			return &objs[i];
		}
	return NULL;
}

static void channel_json(const struct snap_channel *c,
			 const struct object *o)
{
	const shmbus_channel_info_t *in = &c->info;
	json_t *size = o ? json_integer(o->st.st_size) : json_null();
	json_t *ch;
	if (c->error) {
		ch = json_pack("{s:s, s:o, s:s}", "name", in->name, "size",
			       size, "error", c->errmsg);
	} else {
		bool ow = in->flags & SHMBUS_CH_OVERWRITE;
		/* the keys and words of `stat --json`'s channels; counts
		 * where stat has the arrays */
		ch = json_pack("{s:s, s:I, s:I, s:o, s:s, s:b, s:o, s:I, s:I, "
			       "s:I}",
			       "name", in->name,
			       "record_size", (json_int_t)in->record_size,
			       "capacity", (json_int_t)in->capacity,
			       "size", size,
			       "producers_mode", snap_producers(in),
			       "overwrite", (int)ow,
			       "stall_policy",
			       ow ? json_null() : json_string(snap_policy(in)),
			       "producer_count", (json_int_t)c->n_prod,
			       "subscriber_count", (json_int_t)c->n_sub,
			       "published", (json_int_t)in->claimed);
	}
	json_array_append_new(json_object_get(jbus, "channels"), ch);
}

static void channel_line(const struct snap_channel *c,
			 const struct object *o)
{
	const shmbus_channel_info_t *in = &c->info;
	if (jbuses) {
		channel_json(c, o);
		return;
	}
	char name[23], rec[FMT_LEN], slots[FMT_LEN], size[FMT_LEN] = "-",
		mode[32], subs[FMT_LEN], pub[FMT_LEN];
	fmt_name(name, in->name, 22);
	if (o)
		fmt_bytes(size, (uint64_t)o->st.st_size);
	if (c->error) {
		printf("  %-22s %6s cannot be opened:\n", name, size);
		fmt_wrap(stdout, 4, c->errmsg, 80);
		return;
	}
	if (in->flags & SHMBUS_CH_OVERWRITE) /* never waits: no policy */
		snprintf(mode, sizeof(mode), "overwrite");
	else
		snprintf(mode, sizeof(mode), "%s/%s", snap_producers(in),
			 snap_policy(in));
	printf(CH_COLS, name,
	       fmt_bytes(rec, in->record_size),
	       fmt_count(slots, in->capacity, 6), size, mode,
	       fmt_count(subs, c->n_sub, 4), fmt_count(pub, in->claimed, 10));
}

/* A bus that cannot be listed in full: its status, and why (live < 0:
 * not known). */
static void bus_report(const char *bus, const struct object *o, long live,
		       const char *status, const char *why)
{
	if (jbuses) {
		bus_json(bus, o, live, status, why);
		return;
	}
	char line[64];
	snprintf(line, sizeof(line), "%s%s", status, why ? ":" : "");
	bus_line(bus, o, "-", line);
	if (why)
		fmt_wrap(stdout, 2, why, 80);
}

/* A bus that opens: its status and its channels, from its table. */
static void open_bus(struct busview *v, const struct object *bo,
		     struct object *objs, size_t n)
{
	struct snapshot s;
	char live[FMT_LEN];
	if (busview_read(v, &s) != 0) {
		bus_report(bo->bus, bo, -1, "unreadable", shmbus_errmsg());
		return;
	}
	const char *status = s.live > 0 ? "in use" : "idle";
	if (jbuses)
		bus_json(bo->bus, bo, (long)s.live, status, NULL);
	else
		bus_line(bo->bus, bo, fmt_count(live, (uint64_t)s.live, 5),
			 status);
	if (s.n_ch && !jbuses)
		printf(CH_COLS, "CHANNEL", "RECORD", "SLOTS", "SIZE", "MODE",
		       "SUBS", "PUBLISHED");
	for (uint32_t i = 0; i < s.n_ch; i++)
		channel_line(&s.ch[i],
			     channel_object(objs, n, s.ch[i].info.name));
	snapshot_free(&s);
}

/* Channel objects that no table row named: left over, if the bus could
 * be read; else all of them, for what they are. */
static void orphans(const struct object *objs, size_t n, bool bus_read)
{
	for (size_t i = 0; i < n; i++)
		if (objs[i].channel[0] && !objs[i].listed && jbuses) {
			json_array_append_new(
				json_object_get(jbus, "orphans"),
				json_pack("{s:s, s:I, s:b}", "name",
					  objs[i].channel, "size",
					  (json_int_t)objs[i].st.st_size,
					  "left_over", bus_read));
		} else if (objs[i].channel[0] && !objs[i].listed) {
			char name[23], size[FMT_LEN];
			printf("  %-22s %6s %s\n",
			       fmt_name(name, objs[i].channel, 22),
			       fmt_bytes(size, (uint64_t)objs[i].st.st_size),
			       bus_read ? "object not in the bus's table "
					  "(left over)"
					: "channel object");
		}
}

/* One bus: objs[0..n) are its objects, the bus's own first if present. */
static void list_bus(struct object *objs, size_t n)
{
	const struct object *bo = objs[0].channel[0] ? NULL : &objs[0];
	struct busview v;
	int rc = bo ? busview_open(&v, NULL, bo->bus) : SHMBUS_ENOENT;
	if (rc == 0) {
		open_bus(&v, bo, objs, n);
		busview_close(&v);
	} else if (bo == NULL) {
		bus_report(objs[0].bus, NULL, -1, "no bus object", NULL);
	} else if (rc == SHMBUS_ENOENT) { /* since the scan */
		bus_report(bo->bus, bo, -1, "removed just now", NULL);
	} else {
		bus_report(bo->bus, bo, -1,
			   rc == SHMBUS_EPERM ? "not yours" : "stale",
			   shmbus_errmsg());
	}
	orphans(objs, n, rc == 0);
}

static int on_opt(int key, const char *arg, void *ctx)
{
	(void)key;
	(void)arg;
	*(bool *)ctx = true;
	return 0;
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {0}};
	const struct cli_spec spec = {"ls", "[BUS]", help, opts, 0, 1, on_opt};
	char *pos[1];
	int npos;
	bool json = false;
	int rc = cli_parse(&spec, argc, argv, &json, pos, &npos);
	if (rc != CLI_GO)
		return rc;
	struct object *objs;
	size_t n = 0, shown = 0;
	if (scan(&objs, &n))
		return CLI_ERR;
	if (json)
		jbuses = json_array();
	else
		printf(BUS_COLS, "BUS", "SIZE", "OWNER", "MODE", "LIVE",
		       "STATUS");
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && !strcmp(objs[j].bus, objs[i].bus); j++)
			;
		if (npos && strcmp(objs[i].bus, pos[0]))
			continue;
		list_bus(&objs[i], j - i);
		shown++;
	}
	free(objs);
	if (npos && shown == 0) {
		json_decref(jbuses);
		return cli_failf("ls", "no bus '%s' on this host", pos[0]);
	}
	if (jbuses) {
		json_t *doc = json_pack("{s:o}", "buses", jbuses);
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(doc);
	}
	return CLI_OK;
}
