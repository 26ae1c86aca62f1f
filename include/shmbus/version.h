#ifndef SHMBUS_VERSION_H
#define SHMBUS_VERSION_H

#define SHMBUS_VERSION_MAJOR 0
#define SHMBUS_VERSION_MINOR 3
#define SHMBUS_VERSION_PATCH 0

/* Version of the shared-memory layout; objects of another ABI are refused. */
#define SHMBUS_ABI_VERSION 6

#endif /* SHMBUS_VERSION_H */
