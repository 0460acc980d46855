/* SPDX-License-Identifier: MIT */
/*
 * The producer side: claim space by CAS on the 64-bit producer position,
 * write the record header, fill the payload, commit by clearing BUSY.
 * Lock-free; any number of threads and processes.
 */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <string.h>

#include "handle.h"

static struct mrb_record_header *record_at(struct mrb_handle *h, uint64_t position)
{
	return (struct mrb_record_header *)(void *)(h->data + (position & h->mask));
}

/* Control first, stamp second: the release on the stamp makes the control
 * value visible to a reader whose acquire load sees the stamp (consumer.c,
 * read_header). */
static void write_header(struct mrb_handle *h, uint64_t position, uint64_t control)
{
	struct mrb_record_header *rec = record_at(h, position);
	atomic_store_explicit(&rec->control, control, memory_order_relaxed);
	atomic_store_explicit(&rec->stamp, position ^ h->salt, memory_order_release);
}

struct mrb_producer_slot *mrbi_producer_slot(struct mrb_handle *h)
{
	int32_t index = atomic_load_explicit(&h->producer_slot, memory_order_relaxed);
	if (index >= 0)
		return &h->header->producers[index];
	struct mrb_producer_slot *slots = h->header->producers;
	index = MRB_SHARED_PRODUCER_SLOT;
	for (int pass = 0; pass < 2 && index == MRB_SHARED_PRODUCER_SLOT; pass++) {
		for (int i = 0; i < MRB_SHARED_PRODUCER_SLOT; i++) {
			uint32_t owner =
			    atomic_load_explicit(&slots[i].owner_pid, memory_order_relaxed);
			if (owner == h->pid) {
				index = i;
				break;
			}
			/* First pass takes a free slot, second a dead process's. */
			bool takeable = pass == 0 ? owner == 0 : !mrbi_process_alive(owner);
			if (takeable && atomic_compare_exchange_strong_explicit(
			                    &slots[i].owner_pid, &owner, h->pid,
			                    memory_order_relaxed, memory_order_relaxed)) {
				index = i;
				break;
			}
		}
	}
	atomic_store_explicit(&h->producer_slot, index, memory_order_relaxed);
	return &slots[index];
}

/*
 * Claims space for a record of `record_size` bytes. If the record does not
 * fit before the end of the data region, the same claim takes the gap and
 * fills it with a padding record, so records never wrap. On success returns
 * 0 and the record's position; MRB_EFULL if there is no room.
 */
static int claim(struct mrb_handle *h, uint64_t record_size, uint64_t *position)
{
	struct mrb_file_header *hdr = h->header;
	const uint64_t capacity = h->capacity;
	uint64_t tail = atomic_load_explicit(&hdr->producer_position, memory_order_relaxed);
	for (;;) {
		/* The tail comes from shared memory (initially or from a failed
		 * CAS): a misaligned one would put an atomic header off its
		 * natural alignment. */
		if (tail % MRB_RECORD_ALIGNMENT != 0)
			return MRB_ECORRUPT;
		uint64_t offset = tail & h->mask;
		uint64_t to_end = capacity - offset;
		uint64_t pad = record_size > to_end ? to_end : 0;
		uint64_t need = pad + record_size;
		/* Pairs with the release store of the cache below and in other
		 * producers, which carry the consumer's release of the space. */
		uint64_t head =
		    atomic_load_explicit(&hdr->consumer_position_cache, memory_order_acquire);
		if (tail - head > capacity || tail - head + need > capacity) {
			/* Pairs with the consumer's store in mrbi_publish_head: its
			 * reads of the freed space happen before our writes. */
			uint64_t fresh;
			if (mrb_read_positions(hdr, capacity, &head, &fresh) != 0)
				return MRB_ECORRUPT;
			atomic_store_explicit(&hdr->consumer_position_cache, head,
			                      memory_order_release);
			if (fresh != tail) {
				tail = fresh;
				continue;
			}
			if (tail - head + need > capacity) {
				/* A record longer than half the ring may never fit
				 * behind a gap; taking the gap alone lets the
				 * consumer skip it so that the next try fits. */
				if (pad == 0 || tail - head + pad > capacity)
					return MRB_EFULL;
				if (atomic_compare_exchange_weak_explicit(
				        &hdr->producer_position, &tail, tail + pad,
				        memory_order_acq_rel, memory_order_relaxed)) {
					write_header(h, tail,
					             mrb_control(pad - MRB_RECORD_HEADER_SIZE,
					                         h->pid, MRB_CONTROL_PAD));
					tail += pad;
				}
				continue;
			}
		}
		if (atomic_compare_exchange_weak_explicit(&hdr->producer_position, &tail,
		                                          tail + need, memory_order_acq_rel,
		                                          memory_order_relaxed)) {
			if (pad != 0)
				write_header(h, tail,
				             mrb_control(pad - MRB_RECORD_HEADER_SIZE, h->pid,
				                         MRB_CONTROL_PAD));
			*position = tail + pad;
			return 0;
		}
	}
}

static int reserve(struct mrb_handle *h, size_t len, uint64_t *position)
{
	if (len == 0 || len > h->max_message_size)
		return MRB_EMSGSIZE;
	/* Registered before the first claim, so that recovery can tell a
	 * producer that died inside its very first write. */
	struct mrb_producer_slot *slot = mrbi_producer_slot(h);
	int rc = claim(h, mrb_record_size(len), position);
	if (rc == 0) {
		write_header(h, *position, mrb_control(len, h->pid, MRB_CONTROL_BUSY));
	} else if (rc == MRB_EFULL) {
		atomic_fetch_add_explicit(&slot->full, 1, memory_order_relaxed);
	}
	return rc;
}

/*
 * Clears BUSY with a release store (the payload is visible to a reader that
 * sees the new control word). Checked first: if recovery already turned the
 * record into padding (its writer looked dead or hung), the commit must not
 * resurrect it. Not a CAS: a locked instruction here would stall until this
 * line, which the consumer is polling, had crossed to its core, on every
 * message. Only a recovery that skips a live writer (a grace period, see
 * docs/ROBUSTNESS.md) can fall between the check and the store, and such a
 * writer's late payload stores are as unsafe.
 */
static int commit(struct mrb_handle *h, uint64_t position, uint64_t len, uint64_t final_flags)
{
	struct mrb_record_header *rec = record_at(h, position);
	if (atomic_load_explicit(&rec->stamp, memory_order_relaxed) != (position ^ h->salt))
		return MRB_ESTALE;
	if (atomic_load_explicit(&rec->control, memory_order_relaxed) !=
	    mrb_control(len, h->pid, MRB_CONTROL_BUSY))
		return MRB_ESTALE;
	atomic_store_explicit(&rec->control, mrb_control(len, h->pid, final_flags),
	                      memory_order_release);
	return 0;
}

static int write_one(struct mrb_handle *h, const void *data, size_t len)
{
	uint64_t position;
	int rc = reserve(h, len, &position);
	if (rc != 0)
		return rc;
	memcpy(h->data + (position & h->mask) + MRB_RECORD_HEADER_SIZE, data, len);
	return commit(h, position, len, 0);
}

int mrb_write(struct mrb_ring *ring, const void *data, size_t len)
{
	struct mrb_handle *h = mrb_handle_of(ring);
	if (ring == NULL || (data == NULL && len != 0))
		return MRB_EINVAL;
	bool owner;
	int rc = mrb_producer_enter(h, &owner);
	if (rc != 0)
		return rc;
	rc = write_one(h, data, len);
	if (rc == 0)
		mrbi_wake_consumer(h);
	mrb_producer_leave(h, owner);
	return rc;
}

/* Messages and bytes one claim of mrb_write_batch takes at most: a bounded
 * run keeps the time a claimed-but-uncommitted run blocks the consumer short,
 * and stays far below half the ring, where claims may have to wait. */
#define MRB_BATCH_RUN_MESSAGES 64
#define MRB_BATCH_RUN_BYTES    (64 * 1024)

/* How many of msgs[0..count) form the next run, and its size in bytes. */
static size_t batch_run(struct mrb_handle *h, const struct mrb_iovec *msgs, size_t count,
                        uint64_t *run_size)
{
	uint64_t limit =
	    h->capacity / 4 < MRB_BATCH_RUN_BYTES ? h->capacity / 4 : MRB_BATCH_RUN_BYTES;
	size_t n = 0;
	uint64_t size = 0;
	for (; n < count && n < MRB_BATCH_RUN_MESSAGES; n++) {
		if (msgs[n].len == 0 || msgs[n].len > h->max_message_size || (msgs[n].data == NULL))
			break;
		uint64_t record = mrb_record_size(msgs[n].len);
		if (n > 0 && size + record > limit)
			break;
		size += record;
	}
	*run_size = size;
	return n;
}

/*
 * Writes a run of messages with one claim: consecutive records in one space
 * taken by a single CAS. All headers are written BUSY first; the records are
 * committed last to first, so a consumer waiting at the first one finds the
 * whole run ready at once instead of chasing the producer record by record.
 */
static int64_t write_run(struct mrb_handle *h, const struct mrb_iovec *msgs, size_t n,
                         uint64_t run_size)
{
	uint64_t position;
	struct mrb_producer_slot *slot = mrbi_producer_slot(h);
	int rc = claim(h, run_size, &position);
	if (rc != 0) {
		if (rc == MRB_EFULL)
			atomic_fetch_add_explicit(&slot->full, 1, memory_order_relaxed);
		return rc;
	}
	uint64_t at = position;
	for (size_t i = 0; i < n; i++) {
		write_header(h, at, mrb_control(msgs[i].len, h->pid, MRB_CONTROL_BUSY));
		memcpy(h->data + (at & h->mask) + MRB_RECORD_HEADER_SIZE, msgs[i].data,
		       msgs[i].len);
		at += mrb_record_size(msgs[i].len);
	}
	int64_t committed = (int64_t)n;
	for (size_t i = n; i-- > 0;) {
		at -= mrb_record_size(msgs[i].len);
		if (commit(h, at, msgs[i].len, 0) != 0)
			committed = MRB_ESTALE; /* recovery took it: report, go on */
	}
	return committed;
}

int64_t mrb_write_batch(struct mrb_ring *ring, const struct mrb_iovec *msgs, size_t count)
{
	struct mrb_handle *h = mrb_handle_of(ring);
	if (ring == NULL || (msgs == NULL && count != 0))
		return MRB_EINVAL;
	bool owner;
	int rc = mrb_producer_enter(h, &owner);
	if (rc != 0)
		return rc;
	size_t written = 0;
	int64_t result = 0;
	while (written < count) {
		uint64_t run_size;
		size_t n = batch_run(h, msgs + written, count - written, &run_size);
		if (n == 0) {
			/* The next message is invalid: its own error. */
			const struct mrb_iovec *m = &msgs[written];
			result = m->data == NULL && m->len != 0 ? MRB_EINVAL : MRB_EMSGSIZE;
			break;
		}
		/* A full ring may still take fewer: halve the run until one fits. */
		for (;;) {
			result = write_run(h, msgs + written, n, run_size);
			if (result != MRB_EFULL || n == 1)
				break;
			n /= 2;
			run_size = 0;
			for (size_t i = 0; i < n; i++)
				run_size += mrb_record_size(msgs[written + i].len);
		}
		if (result < 0)
			break;
		written += (size_t)result;
	}
	if (written > 0)
		mrbi_wake_consumer(h);
	mrb_producer_leave(h, owner);
	return written > 0 ? (int64_t)written : result;
}

int mrb_reserve(struct mrb_ring *ring, size_t len, struct mrb_reservation *res)
{
	struct mrb_handle *h = mrb_handle_of(ring);
	if (ring == NULL || res == NULL)
		return MRB_EINVAL;
	bool owner;
	int rc = mrb_producer_enter(h, &owner);
	if (rc != 0)
		return rc;
	uint64_t position;
	rc = reserve(h, len, &position);
	if (rc == 0) {
		res->data = h->data + (position & h->mask) + MRB_RECORD_HEADER_SIZE;
		res->len = len;
		res->position = position;
	}
	mrb_producer_leave(h, owner);
	return rc;
}

/* A reservation comes back from the caller: check it really is one of ours
 * before touching the ring through it. */
static bool reservation_plausible(struct mrb_handle *h, const struct mrb_reservation *res)
{
	return res->len != 0 && res->len <= h->max_message_size &&
	       res->position % MRB_RECORD_ALIGNMENT == 0 &&
	       res->data == h->data + (res->position & h->mask) + MRB_RECORD_HEADER_SIZE;
}

static int finish_reservation(struct mrb_ring *ring, struct mrb_reservation *res, bool publish)
{
	struct mrb_handle *h = mrb_handle_of(ring);
	if (ring == NULL || res == NULL)
		return MRB_EINVAL;
	bool owner;
	int rc = mrb_producer_enter(h, &owner);
	if (rc != 0)
		return rc;
	if (!reservation_plausible(h, res)) {
		rc = MRB_ESTALE;
	} else {
		rc = commit(h, res->position, res->len, publish ? 0 : MRB_CONTROL_PAD);
	}
	if (rc == 0) {
		mrbi_wake_consumer(h);
		res->data = NULL;
		res->len = 0;
	}
	mrb_producer_leave(h, owner);
	return rc;
}

int mrb_commit(struct mrb_ring *ring, struct mrb_reservation *res)
{
	return finish_reservation(ring, res, true);
}

int mrb_abort(struct mrb_ring *ring, struct mrb_reservation *res)
{
	return finish_reservation(ring, res, false);
}
