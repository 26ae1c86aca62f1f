/*
 * The core's functions that libshmbus_journal calls: each is exported from
 * libshmbus as shmbus__NAME, an alias of the hidden function, so that it
 * is no API (no installed header names it) and a program's own function
 * of the same name never takes its place. The journal's sources are
 * compiled with journal_imports.h, which calls them by those names.
 */
#ifndef SHMBUS_PRIVATE_EXPORT_H
#define SHMBUS_PRIVATE_EXPORT_H

/* After the definition of f, in the same file (an alias's rule). */
#define SHMBUS_PRIVATE_EXPORT(f)                                               \
	extern __typeof__(f) shmbus__##f                                       \
		__attribute__((alias(#f), visibility("default")))

#endif
