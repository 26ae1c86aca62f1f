#include "error.h"
#include "private_export.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A message longer than the buffer is cut short on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define ERRMSG_MAX 512

static _Thread_local char errmsg[ERRMSG_MAX];

const char *shmbus_strerror(int code)
{
	switch (code) {
	case SHMBUS_OK: return "success";
	case SHMBUS_EAGAIN: return "would wait (ring full or empty)";
	case SHMBUS_EINVAL: return "invalid argument";
	case SHMBUS_ENOENT: return "no such bus, channel or subscriber";
	case SHMBUS_EEXIST: return "exists with another layout or configuration";
	case SHMBUS_EBUSY: return "held by a live process";
	case SHMBUS_ENOMEM: return "out of memory (or /dev/shm full, or mlock limit)";
	case SHMBUS_EVERSION: return "shared object of another ABI version";
	case SHMBUS_ECORRUPT: return "shared state failed validation";
	case SHMBUS_ETIMEDOUT: return "timed out";
	case SHMBUS_EPERM: return "permission denied or foreign owner";
	case SHMBUS_EFULL: return "table full";
	case SHMBUS_ELAPPED: return "reader was lapped (loss counted)";
	case SHMBUS_ENOTSUP: return "not supported";
	case SHMBUS_ESYS: return "system call failed";
	case SHMBUS_ECLOSED: return "closed";
	case SHMBUS_EHANDLER: return "handler failed";
	case SHMBUS_EPERMANENT: return "handler failed for good (not retried)";
	case SHMBUS_EINTR: return "wait ended by a signal handler";
	case SHMBUS_ENOHANDLER: return "no handler registered for the channel";
	default: return "unknown error";
	}
}

const char *shmbus_errmsg(void)
{
	return errmsg[0] ? errmsg : "no error";
}

static void vset(const char *fmt, va_list ap)
{
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
}

int shmbus_seterr(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(fmt, ap);
	va_end(ap);
	return code;
}
SHMBUS_PRIVATE_EXPORT(shmbus_seterr);

int shmbus_seterr_sys(int code, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(fmt, ap);
	va_end(ap);
	size_t n = strlen(errmsg);
	snprintf(errmsg + n, sizeof(errmsg) - n, ": %s", strerror(err));
	return code;
}
SHMBUS_PRIVATE_EXPORT(shmbus_seterr_sys);

int shmbus_adderr(int code, const char *fmt, ...)
{
	char prefix[ERRMSG_MAX], old[ERRMSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, errmsg, sizeof(old));
	snprintf(errmsg, sizeof(errmsg), "%s: %s", prefix, old);
	return code;
}
SHMBUS_PRIVATE_EXPORT(shmbus_adderr);
