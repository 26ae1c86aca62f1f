/*
 * The shared-memory ABI: every structure another process reads or writes.
 *
 * Two kinds of object live in /dev/shm:
 *
 *   /shmbus.BUS            the bus: superblock, channel table, participant
 *                          table (see struct sb_superblock)
 *   /shmbus.BUS.CHANNEL    one channel: header, hot sequence lines,
 *                          subscriber table, slots (struct ch_header)
 *
 * Shared memory holds offsets, never pointers. Every offset and size in a
 * header is validated against the object's real size before use; fields are
 * fixed-width, and reserved space is zero. Creators write everything, then
 * publish with a release store of `state` = SB_READY; openers acquire-load it
 * and tell "not ready yet" (wait, bounded) from "incompatible" (error).
 *
 * Cache lines: each field written by a different process sits on its own
 * 64-byte line (claim sequence, each subscriber cursor, wait words).
 *
 * One header per object (abi_*.h), each pinned by static asserts; this one
 * includes them all.
 */
#ifndef SHMBUS_LAYOUT_H
#define SHMBUS_LAYOUT_H

#include "abi_bus.h"
#include "abi_channel.h"

#endif /* SHMBUS_LAYOUT_H */
