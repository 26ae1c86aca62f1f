#ifndef SHMBUS_VERSION_H
#define SHMBUS_VERSION_H

#define SHMBUS_VERSION_MAJOR 0
#define SHMBUS_VERSION_MINOR 4
#define SHMBUS_VERSION_PATCH 0
/* major << 16 | minor << 8 | patch, for one comparison */
#define SHMBUS_VERSION_NUMBER                                                  \
	((SHMBUS_VERSION_MAJOR << 16) | (SHMBUS_VERSION_MINOR << 8) |          \
	 SHMBUS_VERSION_PATCH)

/* Version of the shared-memory layout; objects of another ABI are refused. */
#define SHMBUS_ABI_VERSION 7

#endif /* SHMBUS_VERSION_H */
