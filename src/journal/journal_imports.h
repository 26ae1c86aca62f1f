/*
 * What the journal library (libshmbus_journal) calls in the core besides
 * its public API: the core exports these as shmbus__NAME
 * (private_export.h). CMake compiles every journal source with this
 * header first (-include), so that declarations and calls alike take the
 * exported names. A name missing here fails the journal library's link
 * (--no-undefined); one added must be exported in the core too.
 */
#ifndef SHMBUS_JOURNAL_IMPORTS_H
#define SHMBUS_JOURNAL_IMPORTS_H

#define barrier_min shmbus__barrier_min
#define bus_lock shmbus__bus_lock
#define bus_unlock shmbus__bus_unlock
#define follower_attach shmbus__follower_attach
#define follower_detach shmbus__follower_detach
#define follower_row shmbus__follower_row
#define retry_failed shmbus__retry_failed
#define retry_poll shmbus__retry_poll
#define shm_byte_held shmbus__shm_byte_held
#define shm_lock_byte shmbus__shm_lock_byte
#define shmbus_adderr shmbus__shmbus_adderr
#define shmbus_seterr shmbus__shmbus_seterr
#define shmbus_seterr_sys shmbus__shmbus_seterr_sys
#define sub_find_row shmbus__sub_find_row
#define sub_source_set shmbus__sub_source_set
#define sub_spill_register shmbus__sub_spill_register
#define wait_until shmbus__wait_until

#endif
