/*
 * A program that links the bus alone (libshmbus, not libshmbus_journal):
 * everything but the journal works, and a subscriber of a spill channel,
 * which would read what it skipped from the journal, is refused at
 * subscribe with a message that says which library to link. Exit 0 when
 * it is so.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <shmbus/shmbus.h>

static int handled(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(*(int *)ctx)++;
	return 0;
}

int main(void)
{
	char name[48];
	snprintf(name, sizeof(name), "nojournal%d", (int)getpid());
	shmbus_t *bus;
	if (shmbus_open(name, NULL, &bus)) {
		fprintf(stderr, "open: %s\n", shmbus_errmsg());
		return 1;
	}
	int fail = 1, n = 0;
	shmbus_channel_opts_t o = {.record_size = 8, .capacity = 64};
	shmbus_channel_t *plain, *spill;
	shmbus_sub_t *s;
	shmbus_sub_opts_t po = {.name = "plain"};
	shmbus_producer_t *p;
	uint64_t v = 42;
	/* the bus alone: publish and poll */
	if (shmbus_channel_open(bus, "plain", &o, &plain) ||
	    shmbus_subscribe(plain, handled, &n, &po, &s) ||
	    shmbus_producer_open(plain, NULL, &p) ||
	    shmbus_publish(p, &v, sizeof(v), 0) || shmbus_poll(s, 8) != 1 ||
	    n != 1) {
		fprintf(stderr, "the bus alone: %s\n", shmbus_errmsg());
		goto out;
	}
	o.stall_policy = SHMBUS_STALL_SPILL;
	shmbus_sub_opts_t so = {.name = "sp", .journal = "/tmp"};
	shmbus_sub_t *t = NULL;
	if (shmbus_channel_open(bus, "spill", &o, &spill)) {
		fprintf(stderr, "spill channel: %s\n", shmbus_errmsg());
		goto out;
	}
	int rc = shmbus_subscribe(spill, handled, &n, &so, &t);
	if (rc != SHMBUS_ENOTSUP || t != NULL ||
	    strstr(shmbus_errmsg(), "link libshmbus_journal") == NULL) {
		fprintf(stderr, "spill subscribe: rc %d, '%s'\n", rc,
			shmbus_errmsg());
		goto out;
	}
	printf("refused: %s\n", shmbus_errmsg());
	fail = 0;
out:
	shmbus_close(bus);
	shmbus_unlink(name);
	return fail;
}
