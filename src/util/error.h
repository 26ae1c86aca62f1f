/*
 * Error reporting: negative codes, and a per-thread detail message that each
 * layer can set or prefix (as Aeron's AERON_SET_ERR / AERON_APPEND_ERR do).
 */
#ifndef SHMBUS_ERROR_H
#define SHMBUS_ERROR_H

#include "shmbus/shmbus.h"

/* Set the thread's message and return code (for `return seterr(...)`). */
int shmbus_seterr(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Same, appending ": strerror(errno)" of the saved errno. */
int shmbus_seterr_sys(int code, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefix the current message with context; returns code. */
int shmbus_adderr(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* SHMBUS_ERROR_H */
