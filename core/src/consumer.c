/* SPDX-License-Identifier: MIT */
/*
 * The consumer side: one handle at a time owns the consumer position. Every
 * header it reads was written by another process and is validated before
 * any length in it is used.
 */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>

#include "record.h"

/* Is the consumer named by `owner` (pid | nonce << 32) gone for good? */
bool mrbi_consumer_dead(struct mrb_file_header *hdr, uint64_t owner)
{
	struct mrb_identity id = {.pid = (uint32_t)owner};
	id.start_time = atomic_load_explicit(&hdr->consumer_start_time, memory_order_relaxed);
	id.pid_ns = atomic_load_explicit(&hdr->consumer_pid_ns, memory_order_relaxed);
	/* The identity belongs to `owner` only if the owner did not change
	 * while it was read; otherwise judge by the pid alone. */
	if (atomic_load_explicit(&hdr->consumer_owner, memory_order_acquire) != owner)
		id.start_time = id.pid_ns = 0;
	return mrbi_liveness(&id) == MRBI_DEAD;
}

/* A subscriber's loss (MRB_ELAPPED) found in the middle of a call that
 * returns messages read before it stays pending for the next call; a call
 * that returns MRB_ELAPPED itself has reported it. */
static int64_t reported(struct mrb_handle *h, int64_t rc)
{
	if (rc == MRB_ELAPPED)
		h->elapsed_pending = false;
	return rc;
}

int mrbi_elapsed_reported(struct mrb_handle *h, int rc)
{
	return (int)reported(h, rc);
}

static __attribute__((noinline)) int attach_consumer(struct mrb_handle *h)
{
	if (h->is_consumer) {
		if (!h->elapsed_pending)
			return 0;
		/* A subscriber's loss is reported once, by the next read. */
		h->elapsed_pending = false;
		return MRB_ELAPPED;
	}
	/* In a fan-out ring the readers are subscribers. */
	if (h->mode == MRB_MODE_FANOUT)
		return MRB_EMODE;
	struct mrb_file_header *hdr = h->header;
	uint64_t nonce = mrbi_random64() << 32;
	if (nonce == 0)
		nonce = UINT64_C(1) << 32;
	uint64_t token = nonce | h->pid;
	uint64_t owner = atomic_load_explicit(&hdr->consumer_owner, memory_order_acquire);
	for (;;) {
		/* A live owner keeps the role, and so does one whose liveness
		 * cannot be judged (another pid namespace); a dead one's is
		 * taken over, and its unreleased messages are read again
		 * (at-least-once across a consumer crash). */
		if (owner != 0 && !mrbi_consumer_dead(hdr, owner))
			return MRB_ECONSUMER_BUSY;
		/* Identity first, owner second: a judge that sees this token
		 * and then the same token again has read our identity. */
		atomic_store_explicit(&hdr->consumer_start_time, h->start_time,
		                      memory_order_relaxed);
		atomic_store_explicit(&hdr->consumer_pid_ns, h->pid_ns, memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&hdr->consumer_owner, &owner, token,
		                                          memory_order_acq_rel,
		                                          memory_order_acquire))
			break;
	}
	uint64_t head = atomic_load_explicit(&hdr->consumer_position, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&hdr->producer_position, memory_order_acquire);
	if (head % MRB_RECORD_ALIGNMENT != 0 || tail - head > h->capacity) {
		atomic_store_explicit(&hdr->consumer_owner, 0, memory_order_release);
		return MRB_ECORRUPT;
	}
	/* Unless a lossy tap ever joined (it sleeps on the same count), only
	 * the consumer waits for data, so any count left here is stale: a
	 * consumer killed while asleep never decremented it, and it would
	 * cost every write a futex wake-up forever. (Otherwise a dead
	 * consumer's armed doorbell is cleared by the next waker.) */
	if (atomic_load_explicit(&hdr->readers.entries_used, memory_order_acquire) == 0) {
		atomic_store_explicit(&hdr->consumer_doorbell.armed, 0, memory_order_relaxed);
		atomic_store_explicit(&hdr->data_waiters, 0, memory_order_seq_cst);
	}
	h->owner_token = token;
	h->head = head;
	h->published_head = head;
	h->tail_cache = head;
	h->unpublished_messages = 0;
	h->unpublished_bytes = 0;
	h->stuck_position = UINT64_MAX;
	h->skipped.active = 0;
	h->late_end = 0;
	h->held_at = head;
	h->is_consumer = true;
	return 0;
}

void mrbi_detach_consumer(struct mrb_handle *h)
{
	if (h->worker != NULL) {
		mrbi_worker_leave(h);
		return;
	}
	if (h->entry != NULL) {
		mrbi_subscriber_leave(h);
		return;
	}
	uint64_t token = h->owner_token;
	if (atomic_compare_exchange_strong_explicit(&h->header->consumer_owner, &token, 0,
	                                            memory_order_acq_rel, memory_order_relaxed)) {
		atomic_store_explicit(&h->header->consumer_start_time, 0, memory_order_relaxed);
		atomic_store_explicit(&h->header->consumer_pid_ns, 0, memory_order_relaxed);
	}
	h->is_consumer = false;
}

/* How often a consumer that sees space waiters checks for dead ones. */
#define MRB_WAITER_AUDIT_INTERVAL_NS 10000000

/* Writers sleep for space: wake them (out of line: the system call path). */
static __attribute__((noinline)) void wake_space_waiters(struct mrb_handle *h)
{
	struct mrb_file_header *hdr = h->header;
	/* Doorbells before the word, as in mrbi_wake_consumer. */
	mrbi_doorbell_ring_space(h);
	atomic_fetch_add_explicit(&hdr->space_seq, 1, memory_order_seq_cst);
	mrbi_futex_wake_all(&hdr->space_seq);
	/* A writer killed while asleep leaves its count behind, and every
	 * publish would pay a wake-up for it; audit now and then. */
	int64_t now = mrbi_now_ns();
	if (now - h->last_waiter_audit_ns > MRB_WAITER_AUDIT_INTERVAL_NS) {
		h->last_waiter_audit_ns = now;
		mrbi_forget_dead_waiters(h);
	}
}

MRB_ALWAYS_INLINE void publish_head(struct mrb_handle *h)
{
	if (MRB_UNLIKELY(h->worker != NULL))
		return; /* a worker releases by its own word (workers.c) */
	if (MRB_UNLIKELY(h->entry != NULL)) {
		mrbi_subscriber_publish(h);
		return;
	}
	struct mrb_file_header *hdr = h->header;
	uint64_t release = mrbi_release_position(h);
	if (release == h->published_head)
		return;
	publish_read_counters(h, &hdr->messages_read, &hdr->bytes_read);
	/* Release: our reads of the freed records happen before a producer's
	 * acquire load in claim() lets it overwrite them; ordered before the
	 * waiter check below (the handshake with wait.c). */
	atomic_store_explicit(&hdr->consumer_position, release, memory_order_release);
	h->published_head = release;
	if (MRB_UNLIKELY(waiters_after_publish(h, &hdr->space_waiters) != 0))
		wake_space_waiters(h);
}

void mrbi_publish_head(struct mrb_handle *h)
{
	publish_head(h);
}

/* Records blocking the consumer longer than this get a liveness check. */
#define MRB_LIVENESS_CHECK_AFTER_NS 10000000

/* Polls of an unfinished head record between two looks at the clock: the
 * recovery deadlines are milliseconds, a poll is nanoseconds. */
#define MRB_POLLS_PER_CLOCK_READ 64
/* Empty polls between two reads of the producer position (see below). */
#define MRB_POLLS_PER_TAIL_READ 64

/* The record at head is claimed but not committed: maybe recover it.
 * `every_poll`: look at the clock on every call (for the rare polls made
 * just before sleeping), not only every MRB_POLLS_PER_CLOCK_READ-th. */
int mrbi_unfinished_record(struct mrb_handle *h, bool every_poll)
{
	if (h->recovery_timeout_ns < 0)
		return MRB_EEMPTY;
	if (h->stuck_position != h->head) {
		/* Usually a writer in the middle of its copy; the clock starts
		 * only if the record is still there many polls later. */
		h->stuck_position = h->head;
		h->stuck_since_ns = 0;
		h->stuck_polls = 0;
		return MRB_EEMPTY;
	}
	if (++h->stuck_polls % MRB_POLLS_PER_CLOCK_READ != 0 && !every_poll)
		return MRB_EEMPTY;
	int64_t now = mrbi_now_ns();
	if (h->stuck_since_ns == 0) {
		h->stuck_since_ns = now;
		h->last_liveness_check_ns = now;
		return MRB_EEMPTY;
	}
	if (now - h->last_liveness_check_ns < MRB_LIVENESS_CHECK_AFTER_NS)
		return MRB_EEMPTY;
	h->last_liveness_check_ns = now;
	/* Dead writers' claims are skipped at once; a live writer's only by
	 * the opt-in hung-writer timeout (recovery_timeout_ns > 0). */
	int64_t hung_timeout = h->recovery_timeout_ns > 0 ? h->recovery_timeout_ns : -1;
	int rc;
	if (h->mode == MRB_MODE_FANOUT) {
		/* Several subscribers may stand at this claim: one pads it. */
		if (!mrbi_recovery_token_take(h))
			return MRB_EEMPTY;
		rc = mrbi_recover_head(h, now, -1);
		mrbi_recovery_token_give(h);
	} else {
		rc = mrbi_recover_head(h, now, hung_timeout);
	}
	if (rc < 0)
		return rc;
	if (rc > 0)
		h->stuck_position = UINT64_MAX;
	return rc > 0 ? 0 : MRB_EEMPTY;
}

/* Reads the producer position; is anything claimed beyond head? */
static int refresh_tail(struct mrb_handle *h)
{
	uint64_t tail = atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
	if (tail - h->head > h->capacity || tail % MRB_RECORD_ALIGNMENT != 0)
		return MRB_ECORRUPT;
	h->tail_cache = tail;
	return tail == h->head ? MRB_EEMPTY : 0;
}

/* The size of the record at head from its (untrusted) header `control`:
 * 0 if the header is corrupt (it leaves the data region, the claimed span,
 * or a message's length is 0 or over the maximum). */
MRB_ALWAYS_INLINE uint64_t head_record_size(const struct mrb_handle *h, uint64_t control,
                                            bool claimed, uint64_t offset)
{
	uint64_t length = control_length(control);
	uint64_t record_size = record_span(length);
	if (record_size > h->capacity - offset ||
	    (claimed && record_size > h->tail_cache - h->head))
		return 0;
	if ((control & MRB_CONTROL_PAD) == 0 && (length == 0 || length > h->max_message_size))
		return 0;
	return record_size;
}

/*
 * The consumer learns of new records from their headers, not from the
 * producer position: a valid stamp at head proves the space was claimed
 * (headers are written only after the claim), so the consumer leaves the
 * producers' CAS line alone and each message costs one line transfer, not
 * two. The producer position is read only to tell an empty ring from a
 * claim whose header is not written yet, which matters only for recovery:
 * every poll in MRB_TAIL_ALWAYS mode, every MRB_POLLS_PER_TAIL_READ-th
 * empty poll in MRB_TAIL_SOMETIMES mode, never in MRB_TAIL_NEVER mode.
 */
int mrbi_next_message(struct mrb_handle *h, enum mrb_tail_mode mode, const uint8_t **data,
                      uint64_t *len, uint64_t *next)
{
	uint32_t slot_seen = UINT32_MAX;
	for (;;) {
		/* A hung writer's skipped claim: deliver what it committed
		 * first, once it is done with it (recover.c). */
		if (h->skipped.active || h->late_end != 0) {
			int rc = mrbi_next_late_message(h, slot_seen, data, len, next);
			if (rc != MRB_EAGAIN_HEAD)
				return rc;
		}
		bool claimed = h->head != h->tail_cache;
		uint64_t offset = h->head & h->mask;
		uint64_t control;
		if (record_observe(h, h->head, &control)) {
			uint64_t length = control_length(control);
			uint64_t record_size = head_record_size(h, control, claimed, offset);
			if (record_size == 0 && claimed) {
				/* tail_cache may be the "at least" learnt from a
				 * BUSY header here that recovery (another
				 * subscriber's, in a fan-out ring) has since
				 * padded over its writer's whole claim, a batch
				 * longer than that record: the producer position
				 * decides. */
				int rc = refresh_tail(h);
				if (rc != 0 && rc != MRB_EEMPTY)
					return rc;
				claimed = h->head != h->tail_cache;
				record_size = head_record_size(h, control, claimed, offset);
			}
			if (record_size == 0)
				return MRB_ECORRUPT;
			bool pad = (control & MRB_CONTROL_PAD) != 0;
			if (!claimed)
				h->tail_cache = h->head + record_size; /* at least this much */
			h->empty_polls = 0;
			if ((control & MRB_CONTROL_BUSY) == 0) {
				if (pad) {
					h->head += record_size;
					continue;
				}
				if (h->skipped.active && control_slot(control) == h->skipped.slot &&
				    slot_seen == UINT32_MAX) {
					/* The skipped writer's next message: settle
					 * its earlier claim first (its order). */
					slot_seen = h->skipped.slot;
					continue;
				}
				*data = h->data + offset + MRB_RECORD_HEADER_SIZE;
				*len = length;
				*next = h->head + record_size;
				return 0;
			}
		} else if (!claimed) {
			/* Nothing known beyond head: empty, or a claim in flight. */
			if (mode == MRB_TAIL_NEVER ||
			    (mode == MRB_TAIL_SOMETIMES &&
			     ++h->empty_polls % MRB_POLLS_PER_TAIL_READ != 0))
				return MRB_EEMPTY;
			int rc = refresh_tail(h);
			if (rc != 0)
				return rc;
		}
		int rc = mrbi_unfinished_record(h, mode == MRB_TAIL_ALWAYS);
		if (rc != 0)
			return rc;
	}
}

/* A consumer call from a thread other than consumer_thread (handle.h,
 * consumer_role_enter): CAS in, then revoke the adopted thread. */
int mrbi_consumer_enter_shared(struct mrb_handle *h, uintptr_t self)
{
	uint32_t idle = 0;
	bool counted = atomic_compare_exchange_strong_explicit(
	    &h->consumer_calls, &idle, 1, memory_order_seq_cst, memory_order_relaxed);
	uint32_t flags = atomic_load_explicit(&h->flags, memory_order_seq_cst);
	int rc = handle_refusal(h, flags, true);
	if (rc == 0 && !counted)
		rc = MRB_ECONSUMER_BUSY;
	if (rc == 0) {
		/* Slow entries exclude each other (the CAS); the adopted
		 * thread's fast path is excluded by the handshake. */
		uintptr_t adopted = atomic_load_explicit(&h->consumer_thread, memory_order_relaxed);
		if (adopted != 0 && (adopted & 1) == 0 && adopted != self) {
			atomic_store_explicit(&h->consumer_thread, adopted | 1,
			                      memory_order_relaxed);
			/* Registered at open, or nobody was adopted: it does
			 * not fail (close relies on it the same way). */
			mrbi_barrier_private();
			h->adopt_wait = MRB_CONSUMER_ADOPT_WAIT;
		}
		/* Pairs with the release in consumer_role_leave: the adopted
		 * thread's last call happens before this one. Set: that
		 * thread is inside (or this is a call nested in its call). */
		if (atomic_load_explicit(&h->owner_consumer_calls, memory_order_seq_cst) != 0)
			rc = MRB_ECONSUMER_BUSY;
	}
	if (rc != 0) {
		if (counted)
			atomic_store_explicit(&h->consumer_calls, 0, memory_order_release);
		return rc;
	}
	h->owner_entry = false;
	return 0;
}

/*
 * Only the call inside writes consumer_calls (the CAS took it from 0), so
 * a release store gives it back; before that, maybe adopt this thread: the
 * first one ever, or again the adopted one after a revocation, never
 * another. A revoked thread may still be between its first look at
 * consumer_thread and its store to owner_consumer_calls (handle.h); were
 * another thread adopted meanwhile, that late store and the back-out after
 * it would clear the new thread's count while it is inside.
 */
void mrbi_consumer_leave_shared(struct mrb_handle *h)
{
	uintptr_t adopted = atomic_load_explicit(&h->consumer_thread, memory_order_relaxed);
	if ((h->barriers & MRB_BARRIER_PRIVATE) != 0 && (adopted == 0 || (adopted & 1) != 0)) {
		uintptr_t self = thread_self();
		if (h->adopt_wait != 0)
			h->adopt_wait--;
		else if ((self & 1) == 0 && (adopted == 0 || adopted == (self | 1)))
			atomic_store_explicit(&h->consumer_thread, self, memory_order_relaxed);
	}
	atomic_store_explicit(&h->consumer_calls, 0, memory_order_release);
}

/* The ring as the read fast paths see it, copied out of the handle so that
 * a loop calling a handler keeps it in registers. */
struct ring_view {
	const uint8_t *base;
	uint64_t mask, salt, capacity, max_length;
};

static inline struct ring_view ring_view_of(const struct mrb_handle *h)
{
	return (struct ring_view){h->data, h->mask, h->salt, h->capacity, h->max_message_size};
}

/*
 * The common case of a read: a committed message at `head`, its header
 * checked as mrbi_next_message checks it (`tail`: the handle's tail_cache,
 * how far claims are known to reach). Returns the record's span and sets
 * *payload and *length, or returns 0 for anything else (not written yet, a
 * claim in progress, padding, a header that fails a check):
 * mrbi_next_message then takes it the whole way.
 */
MRB_ALWAYS_INLINE uint64_t committed_at(const struct ring_view v, uint64_t head, uint64_t tail,
                                        const uint8_t **payload, uint64_t *length)
{
	uint64_t offset = head & v.mask;
	const struct mrb_record_header *rec =
	    (const struct mrb_record_header *)(const void *)(v.base + offset);
	uint64_t stamp = atomic_load_explicit(&rec->stamp, memory_order_acquire);
	uint64_t control = atomic_load_explicit(&rec->control, memory_order_acquire);
	if (stamp != (head ^ v.salt) || (control & (MRB_CONTROL_BUSY | MRB_CONTROL_PAD)) != 0)
		return 0;
	uint64_t len = control_length(control), span = record_span(len);
	if (span > v.capacity - offset || (head != tail && span > tail - head) || len == 0 ||
	    len > v.max_length)
		return 0;
	*payload = v.base + offset + MRB_RECORD_HEADER_SIZE;
	*length = len;
	return span;
}

/*
 * mrbi_next_message's common case, inline: a committed message at head
 * (nothing skipped or late). Anything else goes the whole way, which reads
 * the header again.
 */
MRB_ALWAYS_INLINE int next_message(struct mrb_handle *h, enum mrb_tail_mode mode,
                                   const uint8_t **data, uint64_t *len, uint64_t *next)
{
	if (MRB_LIKELY(!h->skipped.active && h->late_end == 0)) {
		uint64_t head = h->head, tail = h->tail_cache;
		uint64_t span = committed_at(ring_view_of(h), head, tail, data, len);
		if (MRB_LIKELY(span != 0)) {
			if (head == tail)
				h->tail_cache = head + span; /* at least this much */
			h->empty_polls = 0;
			*next = head + span;
			return 0;
		}
	}
	return mrbi_next_message(h, mode, data, len, next);
}

MRB_ALWAYS_INLINE int consumer_enter(struct mrb_handle *h)
{
	int rc = role_enter(h, MRB_CONSUMER_CALL);
	if (MRB_UNLIKELY(rc != 0))
		return rc;
	if (MRB_LIKELY(h->is_consumer && !h->elapsed_pending))
		return 0;
	rc = attach_consumer(h);
	if (rc != 0)
		role_leave(h, MRB_CONSUMER_CALL);
	return rc;
}

MRB_ALWAYS_INLINE void consumer_leave(struct mrb_handle *h)
{
	publish_head(h);
	role_leave(h, MRB_CONSUMER_CALL);
}

int mrbi_consumer_enter(struct mrb_handle *h)
{
	return consumer_enter(h);
}

void mrbi_consumer_leave(struct mrb_handle *h)
{
	consumer_leave(h);
}

/* The position of the record mrbi_next_message returned last: the head,
 * or a late record of a hung writer's skipped claim behind it. */
static uint64_t cursor(const struct mrb_handle *h)
{
	return h->late_end != 0 ? h->late_pos : h->head;
}

static void consume(struct mrb_handle *h, uint64_t len, uint64_t next)
{
	if (h->late_end != 0) {
		h->late_pos = next;
		atomic_fetch_add_explicit(&h->header->delivered_late, 1, memory_order_relaxed);
	} else {
		h->head = next;
	}
	if (h->holding)
		return; /* counted when released (mrb_release_through) */
	h->unpublished_messages++;
	h->unpublished_bytes += len;
}

/* Messages from this size on make mrb_read prefetch the next record. */
#define MRB_PREFETCH_AFTER_BYTES 1024
/* How much of the next record is prefetched at most (the hardware
 * prefetcher follows a stream once started). */
#define MRB_PREFETCH_MAX_BYTES 16384

/*
 * Starts pulling the next record's lines into this core's cache while the
 * caller works on the message just copied out: between cores a 4 KiB record
 * takes ~0.4 us to arrive, which a caller such as a Python loop can hide
 * (measured: 0.92 -> 0.81 us per 4 KiB message between processes). Only
 * after large messages, and only for a record already committed: polling a
 * header the producer is still writing would take its line away from it.
 * The header is untrusted, so the span is clamped to the data region.
 */
static void prefetch_next(const struct mrb_handle *h)
{
	if (h->late_end != 0)
		return;
	uint64_t offset = h->head & h->mask;
	const struct mrb_record_header *rec = record_at(h, h->head);
	if (atomic_load_explicit(&rec->stamp, memory_order_relaxed) != (h->head ^ h->salt))
		return;
	uint64_t control = atomic_load_explicit(&rec->control, memory_order_relaxed);
	if ((control & (MRB_CONTROL_BUSY | MRB_CONTROL_PAD)) != 0)
		return;
	uint64_t span = MRB_RECORD_HEADER_SIZE + control_length(control);
	if (span > h->capacity - offset)
		span = h->capacity - offset;
	if (span > MRB_PREFETCH_MAX_BYTES)
		span = MRB_PREFETCH_MAX_BYTES;
	for (uint64_t at = 64; at < span; at += 64)
		__builtin_prefetch(h->data + offset + at);
}

/* mrb_read of a worker or a validating subscriber; leaves the call. */
static __attribute__((noinline)) int read_special(struct mrb_handle *h, void *buf, size_t buf_size,
                                                  size_t *len)
{
	if (h->worker != NULL) {
		size_t length = 0;
		int64_t n = mrbi_worker_read(h, buf, buf_size, &length, 1);
		if (n == 1 || n == MRB_EBUFFER_TOO_SMALL)
			*len = length;
		mrbi_consumer_leave(h);
		return n == 1 ? 0 : (int)n;
	}
	int rc = (int)reported(h, mrbi_validated_read(h, buf, buf_size, len, NULL));
	mrbi_consumer_leave(h);
	return rc;
}

int mrb_read(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *len)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || len == NULL || (buf == NULL && buf_size != 0))
		return MRB_EINVAL;
	int rc = consumer_enter(h);
	if (rc != 0)
		return rc;
	if (MRB_UNLIKELY(h->worker != NULL || h->validating))
		return read_special(h, buf, buf_size, len);
	const uint8_t *data;
	uint64_t length, next;
	rc = next_message(h, MRB_TAIL_SOMETIMES, &data, &length, &next);
	if (rc == 0) {
		*len = (size_t)length;
		if (length > buf_size) {
			rc = MRB_EBUFFER_TOO_SMALL;
		} else {
			copy_payload(buf, data, (size_t)length);
			consume(h, length, next);
			if (length >= MRB_PREFETCH_AFTER_BYTES)
				prefetch_next(h);
		}
	}
	consumer_leave(h);
	return rc;
}

/* mrb_read_many, and mrb_read_many_at when positions is not NULL. */
static int64_t read_many(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *lengths,
                         uint64_t *positions, size_t max_count)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || lengths == NULL || max_count == 0 || (buf == NULL && buf_size != 0))
		return MRB_EINVAL;
	int rc = mrbi_consumer_enter(h);
	if (rc != 0)
		return rc;
	if (h->worker != NULL) {
		/* Positions are for mrb_release_through, which workers lack. */
		int64_t n = positions != NULL
		                ? MRB_EINVAL
		                : mrbi_worker_read(h, buf, buf_size, lengths, max_count);
		mrbi_consumer_leave(h);
		return n;
	}
	size_t count = 0, used = 0;
	while (count < max_count && h->validating) {
		size_t length;
		uint64_t at;
		rc = mrbi_validated_read(h, (uint8_t *)buf + used, buf_size - used, &length, &at);
		if (rc != 0) {
			if (rc == MRB_EBUFFER_TOO_SMALL && count == 0)
				lengths[0] = length;
			break;
		}
		used += length;
		if (positions != NULL)
			positions[count] = at;
		lengths[count++] = length;
	}
	while (count < max_count && !h->validating) {
		const uint8_t *data;
		uint64_t length, next;
		rc = mrbi_next_message(h, count == 0 ? MRB_TAIL_SOMETIMES : MRB_TAIL_NEVER, &data,
		                       &length, &next);
		if (rc != 0)
			break;
		if (length > buf_size - used) {
			if (count == 0) {
				lengths[0] = (size_t)length;
				rc = MRB_EBUFFER_TOO_SMALL;
			}
			break;
		}
		memcpy((uint8_t *)buf + used, data, (size_t)length);
		used += (size_t)length;
		if (positions != NULL)
			positions[count] = cursor(h);
		lengths[count++] = (size_t)length;
		consume(h, length, next);
	}
	mrbi_consumer_leave(h);
	return count > 0 ? (int64_t)count : reported(h, rc);
}

int64_t mrb_read_many(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *lengths,
                      size_t max_count)
{
	return read_many(ring, buf, buf_size, lengths, NULL, max_count);
}

int64_t mrb_read_many_at(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *lengths,
                         uint64_t *positions, size_t max_count)
{
	if (positions == NULL)
		return MRB_EINVAL;
	return read_many(ring, buf, buf_size, lengths, positions, max_count);
}

/*
 * A read_batch call working through a backlog hands the space back every
 * this many bytes, not only when it returns (up to a lap later, while
 * producers short of space wait for it).
 */
#define MRB_BATCH_PUBLISH_BYTES (16 * 1024)

/*
 * A read_batch call that has handed over messages and then finds the next
 * not written yet has caught up with a producer that is probably still
 * writing. Looking again at once would take the line the producer is
 * writing away from its core, and every such look costs the producer a
 * round trip between the cores; a consumer that keeps catching up slows
 * the producer down, which makes it catch up more often (counted at 64 B:
 * 45 messages per catch-up at half the throughput in one run, 1,800 at
 * full speed in the next). So the call publishes its position and waits
 * without touching the ring, then looks once more and goes on if records
 * arrived meanwhile: the producer fills lines undisturbed and the consumer
 * reads them in one sweep, behind it. While waits collect a stream (STREAM
 * messages or more each), the wait adapts (WAIT_MIN_NS to WAIT_MAX_NS) so
 * that each collects SWEEP_MIN to SWEEP_MAX bytes; a wait that collects
 * fewer messages halves it (a trickle is not held back to be batched), and
 * a look that finds nothing ends the call and halves it too. A call waits
 * at most BATCH_WAITS times. No wait when the ring was empty (MRB_EEMPTY
 * at once). The wait follows a long sweep as well: returning instead
 * leaves the caller polling the line the producer writes, call after call.
 */
#define MRB_BATCH_WAIT_MIN_NS 128
#define MRB_BATCH_WAIT_MAX_NS 8192
#define MRB_BATCH_SWEEP_MIN   (8 * 1024)
#define MRB_BATCH_SWEEP_MAX   (32 * 1024)
#define MRB_BATCH_STREAM      8 /* fewer messages per wait: not a stream */
#define MRB_BATCH_WAITS       32

/* Caught up; `swept` bytes in `messages` read since the call's last wait,
 * if it waited (`waited`). Adapts the wait to them, publishes the position
 * and waits. */
static void batch_wait(struct mrb_handle *h, uint64_t swept, size_t messages, bool waited)
{
	uint32_t wait = h->batch_wait_ns != 0 ? h->batch_wait_ns : MRB_BATCH_WAIT_MIN_NS;
	if (waited) {
		if (messages < MRB_BATCH_STREAM || swept > MRB_BATCH_SWEEP_MAX)
			wait = wait / 2 > MRB_BATCH_WAIT_MIN_NS ? wait / 2 : MRB_BATCH_WAIT_MIN_NS;
		else if (swept < MRB_BATCH_SWEEP_MIN && wait < MRB_BATCH_WAIT_MAX_NS)
			wait *= 2;
	}
	h->batch_wait_ns = wait;
	mrbi_publish_head(h);
	int64_t until = mrbi_now_ns() + wait;
	do
		cpu_relax();
	while (mrbi_now_ns() < until);
}

/*
 * read_batch's common case: the committed messages at head, one after
 * another, each handed to the handler in place (committed_at, then what
 * consume does). The ring's geometry and the positions stay in locals
 * because the handler call makes the compiler reload anything the handle
 * holds, record after record. Stops after `budget` messages, at `stop_at`
 * (a position at or past head), when the handler asks, or at the first
 * record that is anything else: mrbi_next_message takes that one. Needs:
 * no skipped claim or late record, not validating.
 */
static size_t sweep(struct mrb_handle *h, mrb_handler handler, void *ctx, size_t budget,
                    uint64_t stop_at, bool *stopped)
{
	const struct ring_view v = ring_view_of(h);
	const bool counted = !h->holding;
	uint64_t head = h->head, tail = h->tail_cache, bytes = 0;
	size_t n = 0;
	while (n < budget && (int64_t)(head - stop_at) < 0) {
		const uint8_t *data;
		uint64_t length, span = committed_at(v, head, tail, &data, &length);
		if (span == 0)
			break;
		if (head == tail)
			tail = head + span; /* at least this much */
		head += span;
		h->head = head;
		n++;
		bytes += length;
		if (handler(ctx, data, (size_t)length) != 0) {
			*stopped = true;
			break;
		}
	}
	if (n > 0) {
		h->tail_cache = tail;
		h->empty_polls = 0;
		if (counted) {
			h->unpublished_messages += n;
			h->unpublished_bytes += bytes;
		}
	}
	return n;
}

int64_t mrb_read_batch(struct mrb_ring *ring, mrb_handler handler, void *ctx, size_t max_count)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || handler == NULL)
		return MRB_EINVAL;
	int rc = mrbi_consumer_enter(h);
	if (rc != 0)
		return rc;
	if (h->worker != NULL) {
		mrbi_consumer_leave(h);
		return MRB_EINVAL;
	}
	size_t count = 0;
	if (h->validating && h->scratch == NULL) {
		h->scratch = malloc((size_t)h->max_message_size);
		if (h->scratch == NULL) {
			mrbi_consumer_leave(h);
			return -ENOMEM;
		}
	}
	/* A batch covers at most one lap of the ring, so a fast producer cannot
	 * keep one call running forever. */
	const uint64_t start = h->head;
	const size_t limit = max_count == 0 ? SIZE_MAX : max_count;
	/* Set for the whole call, not around each handler call: the only code
	 * of this thread that runs inside it is the handler (or a signal
	 * handler, which mrb_close then refuses the same way). */
	atomic_store_explicit(&h->callback_thread, thread_self(), memory_order_relaxed);
	while (count < limit && h->validating && h->head - start < h->capacity) {
		size_t length;
		rc = mrbi_validated_read(h, h->scratch, (size_t)h->max_message_size, &length, NULL);
		if (rc != 0)
			break;
		count++;
		if (handler(ctx, h->scratch, length) != 0)
			goto out;
	}
	uint64_t unpublished = 0, swept = 0;
	size_t waits = 0, last_wait_count = 0;
	bool stopped = false;
	while (count < limit && !h->validating && h->head - start < h->capacity) {
		const uint8_t *data;
		uint64_t length, next;
		if (unpublished >= MRB_BATCH_PUBLISH_BYTES) {
			mrbi_publish_head(h);
			unpublished = 0;
		}
		if (MRB_LIKELY(!h->skipped.active && h->late_end == 0)) {
			uint64_t from = h->head, lap_end = start + h->capacity;
			uint64_t publish_at = from + (MRB_BATCH_PUBLISH_BYTES - unpublished);
			size_t n = sweep(h, handler, ctx, limit - count,
			                 publish_at - from < lap_end - from ? publish_at : lap_end,
			                 &stopped);
			count += n;
			unpublished += h->head - from;
			swept += h->head - from;
			if (stopped)
				break;
			if (n > 0)
				continue;
		}
		rc = mrbi_next_message(h, count == 0 ? MRB_TAIL_SOMETIMES : MRB_TAIL_NEVER, &data,
		                       &length, &next);
		if (rc == MRB_EEMPTY && count > 0 && waits < MRB_BATCH_WAITS) {
			batch_wait(h, swept, count - last_wait_count, waits > 0);
			waits++;
			last_wait_count = count;
			swept = 0;
			unpublished = 0;
			rc = mrbi_next_message(h, MRB_TAIL_NEVER, &data, &length, &next);
			if (rc == MRB_EEMPTY && h->batch_wait_ns > MRB_BATCH_WAIT_MIN_NS)
				h->batch_wait_ns /= 2;
		}
		if (rc != 0)
			break;
		count++;
		unpublished += record_span(length);
		swept += record_span(length);
		consume(h, length, next);
		if (handler(ctx, data, (size_t)length) != 0)
			break;
	}
out:
	atomic_store_explicit(&h->callback_thread, 0, memory_order_relaxed);
	mrbi_consumer_leave(h);
	return count > 0 ? (int64_t)count : reported(h, rc);
}

int mrb_peek(struct mrb_ring *ring, struct mrb_view *view)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || view == NULL)
		return MRB_EINVAL;
	int rc = mrbi_consumer_enter(h);
	if (rc != 0)
		return rc;
	if ((h->reader_flags & (MRB_ENTRY_LOSSY | MRB_ENTRY_EVICT)) != 0 || h->worker != NULL) {
		/* What it would point at may be overwritten under the caller. */
		mrbi_consumer_leave(h);
		return MRB_EINVAL;
	}
	if (h->validating) {
		/* A durable subscriber's backlog: a validated copy. */
		rc = mrbi_validated_peek(h, view);
		mrbi_consumer_leave(h);
		return rc;
	}
	const uint8_t *data;
	uint64_t length, next;
	rc = mrbi_next_message(h, MRB_TAIL_SOMETIMES, &data, &length, &next);
	if (rc == 0) {
		view->data = data;
		view->len = (size_t)length;
		view->position = cursor(h);
		view->next = next;
	}
	mrbi_consumer_leave(h);
	return rc;
}

int mrb_release(struct mrb_ring *ring, const struct mrb_view *view)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || view == NULL)
		return MRB_EINVAL;
	int rc = mrbi_consumer_enter(h);
	if (rc != 0)
		return rc;
	uint64_t at = cursor(h);
	if (h->worker != NULL) {
		rc = MRB_EINVAL;
	} else if (view->position != at || view->next <= at ||
	           view->next - at != record_span(view->len) ||
	           (view->data != record_payload(h, at) &&
	            (view->data != h->scratch || h->scratch == NULL))) {
		rc = MRB_ESTALE;
	} else {
		consume(h, view->len, view->next);
		if (h->validating)
			mrbi_validated_consumed(h);
	}
	mrbi_consumer_leave(h);
	return rc;
}

/*
 * Moves the hold point over the records read since: through the message at
 * `through` and the padding after it (through == UINT64_MAX: everything
 * read). The records in [held_at, head) were read by this handle and cannot
 * be overwritten (the ring is not released past held_at), but their headers
 * are still shared memory: each size is checked.
 */
static int release_held(struct mrb_handle *h, uint64_t through)
{
	uint64_t pos = h->held_at, messages = 0, bytes = 0;
	bool found = through == UINT64_MAX;
	while (pos != h->head) {
		uint64_t control;
		if (!record_observe(h, pos, &control) || (control & MRB_CONTROL_BUSY) != 0)
			return MRB_ECORRUPT;
		uint64_t size = record_checked_size(h, pos, control, h->head);
		if (size == 0)
			return MRB_ECORRUPT;
		if ((control & MRB_CONTROL_PAD) == 0) {
			if (found && through != UINT64_MAX)
				break; /* the next message after `through` */
			if (pos == through)
				found = true;
			messages++;
			bytes += control_length(control);
		}
		pos += size;
	}
	if (!found)
		return MRB_ESTALE;
	h->held_at = pos;
	h->unpublished_messages += messages;
	h->unpublished_bytes += bytes;
	return 0;
}

int mrb_hold(struct mrb_ring *ring, int on)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL)
		return MRB_EINVAL;
	int rc = mrbi_consumer_enter(h);
	if (rc != 0)
		return rc;
	if (on && !h->holding) {
		/* A hung writer's skipped claim is released out of order; the
		 * two do not mix. A validating subscriber's records may be
		 * overwritten behind it: nothing to hold. */
		if (h->recovery_timeout_ns > 0 || h->skipped.active || h->late_end != 0 ||
		    (h->reader_flags & (MRB_ENTRY_LOSSY | MRB_ENTRY_EVICT)) != 0 ||
		    h->worker != NULL) {
			rc = MRB_EINVAL;
		} else {
			h->held_at = h->head;
			h->holding = true;
		}
	} else if (!on && h->holding) {
		rc = release_held(h, UINT64_MAX);
		if (rc == 0)
			h->holding = false;
	}
	mrbi_consumer_leave(h);
	return rc;
}

int mrb_release_through(struct mrb_ring *ring, uint64_t position)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || position == UINT64_MAX)
		return MRB_EINVAL;
	int rc = mrbi_consumer_enter(h);
	if (rc != 0)
		return rc;
	rc = h->holding ? release_held(h, position) : MRB_EINVAL;
	mrbi_consumer_leave(h);
	return rc;
}
