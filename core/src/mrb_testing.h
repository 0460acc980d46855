/* SPDX-License-Identifier: MIT */
/* Test-only entry points. Not part of the API; do not call from programs. */
#ifndef MRB_TESTING_H
#define MRB_TESTING_H

#include <stdint.h>

#include "mrb/mrb.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Moves an empty ring's producer and consumer positions to `position`
 * (16-byte aligned), so tests can reach 2^32 or 2^63 without writing that
 * much. MRB_EINVAL unless the ring is empty and has no consumer attached. */
int mrb__test_set_positions(struct mrb_ring *ring, uint64_t position);

/* Fixes the fields that are random or time-dependent (stamp salt, creation
 * time, creator pid, and the pid this handle writes into record headers), so
 * golden test vectors are reproducible byte for byte. Only on a ring nothing
 * has been written to yet (positions 0); `salt` must be odd. */
int mrb__test_set_identity(struct mrb_ring *ring, uint64_t salt, uint64_t created_unix_ns,
                           uint32_t pid);

/* How a handle orders its wake-up handshakes (barrier.c), for tests. */
enum mrb_test_barriers {
	/* What open found: membarrier(2) if the kernel allows it. */
	MRB_TEST_BARRIERS_DEFAULT = 0,
	/* As without membarrier: writers read the waiter counts with a
	 * read-modify-write, sleepers sleep in bounded slices, all producer
	 * calls count atomically. */
	MRB_TEST_BARRIERS_NONE = 1,
	/* As NONE, but sleepers sleep without bound, trusting every waker to
	 * use the read-modify-write: a lost wake-up then hangs, which is what
	 * a test of that protocol needs. All handles on the ring must use it. */
	MRB_TEST_BARRIERS_RMW_ONLY = 2,
};

/* Sets the handle's barrier mode. Before its first producer or consumer
 * call only: MRB_EINVAL after it (a producer thread or an adopted consumer
 * thread may already rely on membarrier). */
int mrb__test_set_barriers(struct mrb_ring *ring, enum mrb_test_barriers mode);

/* The file's mapping base, for tests that corrupt shared memory in place. */
void *mrb__test_mapping(struct mrb_ring *ring);

/* Kill points of a worker (workers.c): the worker's process stops itself
 * with SIGSTOP there, so that a test can SIGKILL it at exactly that point. */
enum mrb_test_worker_stop {
	MRB_TEST_WORKER_STOP_NONE = 0,
	/* Joining: a worker slot just made busy, before it is checked and
	 * set up (slot_take). */
	MRB_TEST_WORKER_STOP_SLOT_TAKE = 1,
	/* Freeing a slot (its own at close, a dead worker's in an audit or a
	 * join, a rescued one): the slot just made busy (slot_free). */
	MRB_TEST_WORKER_STOP_SLOT_FREE = 2,
};

/* mrb_worker_join, with the handle's kill point set before it joins (so
 * that the join itself can stop). */
int mrb__test_worker_join(struct mrb_ring *ring, const char *path, const char *group,
                          const struct mrb_worker_options *opts, enum mrb_test_worker_stop stop);

/* The ring's sole-producer lease word (header 0x088, lease.c): 0, or
 * generation << 32 | slot << 8 | 1 (held) or 2 (being revoked). */
uint64_t mrb__test_sole_producer(struct mrb_ring *ring);

/* This handle's next move of a fan-out ring's release position stops its
 * process (SIGSTOP) after it read the reader table and before its CAS, once:
 * a test joins a subscriber that this mover did not see, then SIGCONTs it
 * (subscriber.c, mrbi_fanout_release). */
int mrb__test_stop_next_release(struct mrb_ring *ring);

#ifdef __cplusplus
}
#endif

#endif /* MRB_TESTING_H */
