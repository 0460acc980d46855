/* SPDX-License-Identifier: MIT */
/*
 * Crash recovery: a producer that dies between claiming space and committing
 * leaves a record that holds the consumer back forever. Recovery turns such
 * a record into padding, which the consumer skips, and counts it.
 *
 * Two shapes of abandoned claim exist:
 *  - BUSY: the header was written, so its length and writer pid are known.
 *    Skipped once the writer is gone (kill(pid, 0) says ESRCH), or once it
 *    has blocked the consumer longer than a caller-chosen timeout.
 *  - unwritten: the writer died between the CAS on the producer position and
 *    its header store, so the length is unknown. Skipped after a timeout, up
 *    to the next valid record header; if there is none yet, nothing
 *    committed is held back and recovery waits for one.
 */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <time.h>

#include "handle.h"

static void count_recovered(struct mrb_handle *h, uint64_t bytes)
{
	atomic_fetch_add_explicit(&h->header->recovered_records, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->header->recovered_bytes, bytes, memory_order_relaxed);
}

static void write_padding(struct mrb_handle *h, uint64_t from, uint64_t to)
{
	struct mrb_record_header *rec =
	    (struct mrb_record_header *)(void *)(h->data + (from & h->mask));
	atomic_store_explicit(&rec->control,
	                      mrb_control(to - from - MRB_RECORD_HEADER_SIZE, 0, MRB_CONTROL_PAD),
	                      memory_order_relaxed);
	/* Pairs with the acquire load of the stamp in mrbi_next_message. */
	atomic_store_explicit(&rec->stamp, from ^ h->salt, memory_order_release);
}

/* Finds the first position after head holding a valid record header. */
static bool next_written_record(struct mrb_handle *h, uint64_t tail, uint64_t *found)
{
	for (uint64_t pos = h->head + MRB_RECORD_ALIGNMENT; pos < tail;
	     pos += MRB_RECORD_ALIGNMENT) {
		const struct mrb_record_header *rec =
		    (const struct mrb_record_header *)(const void *)(h->data + (pos & h->mask));
		if (atomic_load_explicit(&rec->stamp, memory_order_acquire) != (pos ^ h->salt))
			continue;
		uint64_t control = atomic_load_explicit(&rec->control, memory_order_acquire);
		uint64_t size = mrb_record_size(mrb_control_length(control));
		if (size <= tail - pos && size <= h->capacity - (pos & h->mask)) {
			*found = pos;
			return true;
		}
	}
	return false;
}

void mrbi_forget_dead_waiters(struct mrb_handle *h)
{
	for (int i = 0; i < MRB_SHARED_PRODUCER_SLOT; i++) {
		struct mrb_producer_slot *slot = &h->header->producers[i];
		uint32_t owner = atomic_load_explicit(&slot->owner_pid, memory_order_relaxed);
		uint32_t share = atomic_load_explicit(&slot->space_waiting, memory_order_relaxed);
		if (owner == 0 || share == 0 || mrbi_process_alive(owner))
			continue;
		/* A CAS, so that two auditors never subtract one share twice. */
		if (atomic_compare_exchange_strong_explicit(&slot->space_waiting, &share, 0,
		                                            memory_order_relaxed,
		                                            memory_order_relaxed))
			atomic_fetch_sub_explicit(&h->header->space_waiters, share,
			                          memory_order_seq_cst);
	}
}

bool mrbi_any_producer_dead(struct mrb_handle *h)
{
	for (int i = 0; i < MRB_SHARED_PRODUCER_SLOT; i++) {
		uint32_t owner =
		    atomic_load_explicit(&h->header->producers[i].owner_pid, memory_order_relaxed);
		if (owner != 0 && !mrbi_process_alive(owner))
			return true;
	}
	return false;
}

int mrbi_recover_head(struct mrb_handle *h, int64_t now_ns, int64_t busy_timeout_ns,
                      int64_t unwritten_timeout_ns, bool check_liveness)
{
	uint64_t tail = atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
	if (tail - h->head > h->capacity)
		return MRB_ECORRUPT;
	if (tail == h->head)
		return 0;
	struct mrb_record_header *rec =
	    (struct mrb_record_header *)(void *)(h->data + (h->head & h->mask));
	int64_t stuck_for =
	    h->stuck_position == h->head && h->stuck_since_ns != 0 ? now_ns - h->stuck_since_ns : 0;
	uint64_t stamp = atomic_load_explicit(&rec->stamp, memory_order_acquire);
	uint64_t control = atomic_load_explicit(&rec->control, memory_order_acquire);

	if (stamp == (h->head ^ h->salt)) {
		if ((control & MRB_CONTROL_BUSY) == 0)
			return 0; /* committed meanwhile */
		uint64_t length = mrb_control_length(control);
		uint64_t size = mrb_record_size(length);
		if (size > tail - h->head || size > h->capacity - (h->head & h->mask))
			return MRB_ECORRUPT;
		bool dead = check_liveness && !mrbi_process_alive(mrb_control_pid(control));
		bool hung = busy_timeout_ns >= 0 && stuck_for >= busy_timeout_ns;
		if (!dead && !hung)
			return 0;
		uint64_t padded = (control & ~MRB_CONTROL_BUSY) | MRB_CONTROL_PAD;
		/* A CAS: if the writer commits at the last moment, it wins. */
		if (!atomic_compare_exchange_strong_explicit(&rec->control, &control, padded,
		                                             memory_order_acq_rel,
		                                             memory_order_relaxed))
			return 0;
		count_recovered(h, length);
		return 1;
	}

	if (unwritten_timeout_ns < 0 || stuck_for < unwritten_timeout_ns)
		return 0;
	uint64_t next;
	if (!next_written_record(h, tail, &next))
		return 0;
	/* The dead claim may span the wrap point (its own padding plus a record
	 * at the start of the next lap, taken in one CAS): pad each side of
	 * the end separately, later piece first, so no padding record ever
	 * crosses the end of the data region. */
	uint64_t lap_end = h->head + (h->capacity - (h->head & h->mask));
	if (next > lap_end)
		write_padding(h, lap_end, next);
	write_padding(h, h->head, next < lap_end ? next : lap_end);
	count_recovered(h, next - h->head);
	return 1;
}

int mrb_recover(struct mrb_ring *ring, int64_t stale_after_ns)
{
	struct mrb_handle *h = mrb_handle_of(ring);
	if (ring == NULL)
		return MRB_EINVAL;
	int rc = mrbi_consumer_enter(h);
	if (rc != 0)
		return rc;
	const uint8_t *data;
	uint64_t length, next;
	/* Move past padding and see whether anything blocks the head at all;
	 * disable automatic recovery during the probe. */
	int64_t saved_timeout = h->recovery_timeout_ns;
	h->recovery_timeout_ns = -1;
	rc = mrbi_next_message(h, MRB_TAIL_ALWAYS, &data, &length, &next);
	h->recovery_timeout_ns = saved_timeout;
	if (rc == MRB_EEMPTY && h->head != h->tail_cache) {
		/* Something is claimed but unfinished: observe it for the
		 * stale period (a one-shot caller has no history), then act. */
		h->stuck_position = h->head;
		h->stuck_since_ns = mrbi_now_ns();
		rc = mrbi_recover_head(h, h->stuck_since_ns, -1, -1, true);
		if (rc == 0 && stale_after_ns >= 0) {
			struct timespec ts = {(time_t)(stale_after_ns / 1000000000),
			                      (long)(stale_after_ns % 1000000000)};
			nanosleep(&ts, NULL);
			rc = mrbi_recover_head(h, mrbi_now_ns(), stale_after_ns, stale_after_ns,
			                       true);
		}
	} else if (rc == 0 || rc == MRB_EEMPTY) {
		rc = 0;
	}
	mrbi_consumer_leave(h);
	return rc;
}

int mrb_set_recovery_timeout(struct mrb_ring *ring, int64_t stale_after_ns)
{
	struct mrb_handle *h = mrb_handle_of(ring);
	if (ring == NULL)
		return MRB_EINVAL;
	int rc = mrb_enter(h, MRB_CONSUMER_CALL);
	if (rc != 0)
		return rc;
	h->recovery_timeout_ns = stale_after_ns;
	mrb_leave(h, MRB_CONSUMER_CALL);
	return 0;
}
