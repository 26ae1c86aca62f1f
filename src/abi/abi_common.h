/*
 * The shared-memory ABI (layout.h): the basics every shared object uses: the
 * line size, magics, object states, name bytes.
 */
#ifndef SHMBUS_ABI_COMMON_H
#define SHMBUS_ABI_COMMON_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <ck_ec.h>

#include "shmbus/shmbus.h"

#define SHMBUS_CACHELINE 64u
#define SB_MAGIC UINT64_C(0x3142535542484d53)	/* "SMHBUSB1" little-endian */
#define CH_MAGIC UINT64_C(0x3143535542484d53)	/* "SMHBUSC1" */

/* Object states, published last by the creator with a release store. */
enum obj_state { OBJ_BUILDING = 0, OBJ_READY = 1 };

#define SHMBUS_NAME_BYTES 48 /* SHMBUS_NAME_MAX + NUL */

#endif /* SHMBUS_ABI_COMMON_H */
