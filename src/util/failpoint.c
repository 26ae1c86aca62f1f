#define _GNU_SOURCE
#include "failpoint.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const names[FP_COUNT] = {
	[FP_GROUP_AFTER_TAKE] = "group_after_take",
	[FP_GROUP_BEFORE_DONE] = "group_before_done",
	[FP_BEFORE_COMMIT] = "before_commit",
	[FP_MP_AFTER_CLAIM] = "mp_after_claim",
	[FP_SUB_BEFORE_CURSOR] = "sub_before_cursor",
	[FP_RETRY_MID_COPY] = "retry_mid_copy",
};

int shmbus_failpoints_armed;
static int armed_id = -1;
static long remaining;

void failpoint_arm(const char *e)
{
	shmbus_failpoints_armed = 0;
	armed_id = -1;
	if (e == NULL)
		return;
	const char *colon = strchr(e, ':');
	size_t n = colon ? (size_t)(colon - e) : strlen(e);
	for (int i = 0; i < FP_COUNT; i++)
		if (strlen(names[i]) == n && strncmp(e, names[i], n) == 0)
			armed_id = i;
	remaining = colon ? strtol(colon + 1, NULL, 10) : 1;
	shmbus_failpoints_armed = armed_id >= 0 && remaining > 0;
}

__attribute__((constructor)) static void failpoint_init(void)
{
	failpoint_arm(getenv("SHMBUS_FAILPOINT"));
}

void failpoint_hit(int id)
{
	if (id == armed_id && --remaining == 0)
		kill(getpid(), SIGKILL);
}
