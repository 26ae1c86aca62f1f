/* Running the shmbus tool from a test: see tool_run.h. */
#include <fcntl.h>
#include <poll.h>
#include <string.h>

#include "jhelpers.h"
#include "tool_run.h"

char out[1 << 21];

/* Run the shell line "program args" with its stdout in buf (n bytes).
 * Returns its exit status. */
int vrun(char *buf, size_t n, const char *program, const char *fmt,
	 va_list ap)
{
	char args[4096], cmd[4608];
	vsnprintf(args, sizeof(args), fmt, ap);
	snprintf(cmd, sizeof(cmd), "%s %s", program, args);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	size_t got = fread(buf, 1, n - 1, f);
	buf[got] = '\0';
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

/* Run the tool with args (a shell line: quote, redirect); its stdout in
 * out. Returns its exit status. */
int tool(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vrun(out, sizeof(out), SHMBUS_TOOL, fmt, ap);
	va_end(ap);
	return rc;
}

/* The same, as the user nobody (65534). */
int tool_as_nobody(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vrun(out, sizeof(out),
		      "setpriv --reuid=65534 --regid=65534 --clear-groups "
		      SHMBUS_TOOL,
		      fmt, ap);
	va_end(ap);
	return rc;
}

/* out holds a document (lines: one a line) that must follow its JSON
 * Schema, docs/schema/NAME.schema.json, as python3-jsonschema checks it
 * (tests/json_schema_check.py). */
void expect_schema(const char *name, bool lines)
{
	char file[] = "/tmp/shmbus-json.XXXXXX", cmd[1024], why[4096] = "";
	int fd = mkstemp(file);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, out, strlen(out)), (ssize_t)strlen(out));
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 %s/tests/json_schema_check.py "
		 "%s/docs/schema/%s.schema.json %s %s 2>&1",
		 SHMBUS_SRC, SHMBUS_SRC, name, file, lines ? "--lines" : "");
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	size_t n = fread(why, 1, sizeof(why) - 1, p);
	why[n] = '\0';
	int rc = pclose(p);
	unlink(file);
	cr_expect_eq(rc, 0, "%s schema: %s\nin:\n%.2000s", name, why, out);
}

/* Every line of text fits width columns. */
void expect_width(const char *text, size_t width)
{
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\n");
		cr_expect_leq(n, width, "%zu columns: %.*s", n, (int)n, p);
		p += n + (p[n] == '\n');
	}
}

struct left left;

void tidy(void)
{
	char cmd[128];
	if (left.feeder > 0) {
		kill(left.feeder, SIGKILL);
		child_status(left.feeder);
	}
	for (int i = 0; i < 2; i++)
		if (left.bus[i][0])
			shmbus_unlink(left.bus[i]);
	if (left.tmux[0]) {
		snprintf(cmd, sizeof(cmd), "tmux -L %s kill-server 2>/dev/null",
			 left.tmux);
		int gone = system(cmd); /* non-zero: it ended already */
		(void)gone;
	}
	for (int i = 0; i < 2; i++)
		if (left.jdir[i][0])
			jt_rmrf(left.jdir[i]);
	memset(&left, 0, sizeof(left));
}

void feeder_start(struct feeder *f, const char *tag)
{
	int in[2], fo[2];
	snprintf(f->bus, sizeof(f->bus), "%s", test_bus(tag));
	cr_assert_eq(pipe(in), 0);
	cr_assert_eq(pipe(fo), 0);
	f->pid = test_fork();
	if (f->pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(fo[1], STDOUT_FILENO);
		close(in[1]);
		close(fo[0]);
		execl(TOOL_FEEDER, "tool_feeder", f->bus, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(fo[1]);
	f->in = in[1];
	left.feeder = f->pid;
	snprintf(left.bus[0], sizeof(left.bus[0]), "%s", f->bus);
	char buf[16] = "";
	struct pollfd p = {.fd = fo[0], .events = POLLIN};
	cr_assert_gt(poll(&p, 1, 20000), 0, "the feeder did not start");
	cr_assert_gt(read(fo[0], buf, sizeof(buf) - 1), 0);
	cr_assert(strstr(buf, "ready") != NULL, "feeder said '%s'", buf);
	close(fo[0]);
}

/* The feeder's bus and one of its channels, attached by the test. */
shmbus_channel_t *feeder_channel(const struct feeder *f, const char *name,
				 shmbus_t **bus)
{
	shmbus_channel_t *ch;
	cr_assert_eq(shmbus_open(f->bus, NULL, bus), 0);
	cr_assert_eq(shmbus_channel_open(*bus, name, NULL, &ch), 0, "%s",
		     shmbus_errmsg());
	return ch;
}

void feeder_stop(struct feeder *f)
{
	close(f->in);
	cr_expect_eq(child_status(f->pid), 0);
	left.feeder = 0;
	shmbus_unlink(f->bus);
}

int consume(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}

void own_bus(struct own *o, const char *tag, uint32_t cap, const char *sub,
	     bool producer)
{
	memset(o, 0, sizeof(*o));
	o->name = test_bus(tag);
	snprintf(left.bus[1], sizeof(left.bus[1]), "%s", o->name);
	o->ch = test_channel(o->name, &o->bus, "C", 8, cap, 0);
	shmbus_sub_opts_t so = {.name = sub};
	if (sub)
		cr_assert_eq(shmbus_subscribe(o->ch, consume, NULL, &so,
					      &o->sub),
			     0);
	if (producer)
		cr_assert_eq(shmbus_producer_open(o->ch, NULL, &o->p), 0);
}

void own_close(struct own *o)
{
	shmbus_close(o->bus);
	shmbus_unlink(o->name);
}

void shm_file(const char *name, const void *data, size_t n)
{
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm/%s", name);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, n), (ssize_t)n);
	close(fd);
}

void shm_remove(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm/%s", name);
	unlink(path);
}

json_int_t num(json_t *o, const char *path)
{
	char key[64];
	const char *dot = strchr(path, '.');
	if (dot) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		return num(json_object_get(o, key), dot + 1);
	}
	json_t *v = json_object_get(o, path);
	cr_assert(json_is_integer(v), "no integer '%s'", path);
	return json_integer_value(v);
}

json_t *stat_json(const char *bus)
{
	cr_assert_eq(tool("stat %s --json", bus), 0);
	expect_schema("stat", false);
	json_error_t e;
	json_t *doc = json_loads(out, 0, &e);
	cr_assert_not_null(doc, "%s at %d: %s", e.text, e.line, out);
	return doc;
}

void journal_dir(char dir[256], int which)
{
	jt_tmpdir(dir);
	snprintf(left.jdir[which], sizeof(left.jdir[which]), "%s", dir);
}
