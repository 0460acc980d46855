/* SPDX-License-Identifier: MIT */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "handle.h"
#include "mrb_testing.h"

int mrb__test_set_positions(struct mrb_ring *ring, uint64_t position)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || position % MRB_RECORD_ALIGNMENT != 0)
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_PRODUCER_CALL);
	if (rc != 0)
		return rc;
	struct mrb_file_header *hdr = h->header;
	uint64_t head = atomic_load_explicit(&hdr->consumer_position, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&hdr->producer_position, memory_order_acquire);
	if (head != tail || h->is_consumer ||
	    atomic_load_explicit(&hdr->consumer_owner, memory_order_acquire) != 0) {
		rc = MRB_EINVAL;
	} else {
		atomic_store_explicit(&hdr->consumer_position, position, memory_order_release);
		atomic_store_explicit(&hdr->consumer_position_cache, position,
		                      memory_order_release);
		atomic_store_explicit(&hdr->producer_position, position, memory_order_release);
	}
	role_leave(h, MRB_PRODUCER_CALL);
	return rc;
}

int mrb__test_set_barriers(struct mrb_ring *ring, enum mrb_test_barriers mode)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || mode < MRB_TEST_BARRIERS_DEFAULT || mode > MRB_TEST_BARRIERS_RMW_ONLY)
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_STATE_CALL);
	if (rc != 0)
		return rc;
	bool writable =
	    (atomic_load_explicit(&h->flags, memory_order_relaxed) & MRB_STATE_READONLY) == 0;
	if (atomic_load_explicit(&h->producer_thread, memory_order_relaxed) != 0 ||
	    atomic_load_explicit(&h->consumer_thread, memory_order_relaxed) != 0)
		rc = MRB_EINVAL;
	else if (mode == MRB_TEST_BARRIERS_DEFAULT)
		h->barriers = writable ? mrbi_barrier_register() : 0;
	else
		h->barriers = mode == MRB_TEST_BARRIERS_RMW_ONLY ? MRB_BARRIER_TRUST_WAKERS : 0;
	role_leave(h, MRB_STATE_CALL);
	return rc;
}

void *mrb__test_mapping(struct mrb_ring *ring)
{
	struct mrb_handle *h = handle_of(ring);
	return h->header;
}

int mrb__test_set_identity(struct mrb_ring *ring, uint64_t salt, uint64_t created_unix_ns,
                           uint32_t pid)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || (salt & 1) == 0 || pid == 0 || pid > MRB_MAX_PID)
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_PRODUCER_CALL);
	if (rc != 0)
		return rc;
	struct mrb_file_header *hdr = h->header;
	if (atomic_load_explicit(&hdr->producer_position, memory_order_acquire) != 0) {
		rc = MRB_EINVAL;
	} else {
		hdr->stamp_salt = salt;
		hdr->created_unix_ns = created_unix_ns;
		hdr->creator_pid = pid;
		h->salt = salt;
	}
	role_leave(h, MRB_PRODUCER_CALL);
	return rc;
}

_Static_assert(MRB_TEST_WORKER_STOP_SLOT_TAKE == MRBI_TEST_STOP_SLOT_TAKE, "stop points");
_Static_assert(MRB_TEST_WORKER_STOP_SLOT_FREE == MRBI_TEST_STOP_SLOT_FREE, "stop points");

int mrb__test_worker_join(struct mrb_ring *ring, const char *path, const char *group,
                          const struct mrb_worker_options *opts, enum mrb_test_worker_stop stop)
{
	if (stop < MRB_TEST_WORKER_STOP_NONE || stop > MRB_TEST_WORKER_STOP_SLOT_FREE)
		return MRB_EINVAL;
	return mrbi_worker_join(ring, path, group, opts, (uint32_t)stop);
}

uint64_t mrb__test_sole_producer(struct mrb_ring *ring)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL)
		return 0;
	return atomic_load_explicit(&h->header->sole_producer, memory_order_seq_cst);
}

int mrb__test_stop_next_release(struct mrb_ring *ring)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL)
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_STATE_CALL);
	if (rc != 0)
		return rc;
	atomic_store_explicit(&h->test_release_stop, 1, memory_order_relaxed);
	role_leave(h, MRB_STATE_CALL);
	return 0;
}
