/* SPDX-License-Identifier: MIT */
/*
 * The producer side: announce, claim space by CAS on the 64-bit producer
 * position (or, for the sole producer, by a plain store: lease.c), write the
 * record header(s), fill the payload, commit by clearing BUSY. Lock-free;
 * any number of threads and processes. Every claim is announced in a lane
 * of the handle's producer slot before it is made, so that recovery can
 * tell whose claim a header-less record is (slots.c, recover.c).
 */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <string.h>

#include "record.h"

/*
 * Claims space for a record of `record_size` bytes. If the record does not
 * fit before the end of the data region, the same claim takes the gap: the
 * caller writes a padding record there (after the record's own header, see
 * publish_claim), so records never wrap. On success returns 0, the record's
 * position and the gap's size; MRB_EFULL if there is no room.
 *
 * Each attempt first announces its start in `lane` (release: a reader that
 * sees a later value of the lane sees this call's earlier headers too); the
 * CAS (release) then makes the announcement visible to anyone who reads the
 * producer position past it with acquire. The claim's end follows the CAS.
 */
/* Tries to move a fan-out ring's release position past `head`. */
static bool fanout_released(struct mrb_handle *h, uint64_t head)
{
	mrbi_fanout_release(h, true);
	return atomic_load_explicit(&h->header->consumer_position, memory_order_acquire) != head;
}

/*
 * Copies a payload into claimed space. While subscribers that may be lapped
 * read the ring (they validate after copying), word-atomic stores keep
 * their reads of space being overwritten a race of atomics, not a data
 * race. Loaded after the claim's CAS (seq_cst on both sides): a reader that
 * joins later starts past this claim.
 */
MRB_ALWAYS_INLINE void payload_copy(struct mrb_handle *h, uint8_t *dst, const void *src, size_t len)
{
	if (atomic_load_explicit(&h->header->validating_readers, memory_order_seq_cst) != 0)
		mrbi_racy_copy_in(dst, src, len);
	else
		copy_payload(dst, src, len);
}

/*
 * Asks for the lines the next claims will write, for writing, while this
 * call goes on. Every claim's locked instruction waits until the stores
 * before it have reached their lines, and a line last read by the consumer
 * (or written a lap ago and evicted since) has to be fetched first: without
 * this, each message waits for the lines of the one before to arrive, a
 * cross-core transfer per message. The lines 128-255 bytes past the claim:
 * the next record's first line is usually the one this record ends in, and
 * the next ones need the most time to arrive. Only free space is asked for
 * (the lines of records the consumer has yet to read stay with it); `head`
 * may be stale, which only makes that check stricter. A hint, no access:
 * it cannot fault, and is skipped where the processor lacks it.
 */
#define MRB_PREFETCH_FROM_BYTES  128
#define MRB_PREFETCH_AHEAD_BYTES 256
static inline void prefetch_for_write(const struct mrb_handle *h, uint64_t end, uint64_t head)
{
	if (!h->prefetchw || end + MRB_PREFETCH_AHEAD_BYTES - head > h->capacity)
		return;
	for (uint64_t at = MRB_PREFETCH_FROM_BYTES; at < MRB_PREFETCH_AHEAD_BYTES; at += 64) {
		const uint8_t *line = h->data + ((end + at) & h->mask);
#if defined(__x86_64__) || defined(__i386__)
		__asm__ volatile("prefetchw %0" : : "m"(*line));
#else
		__builtin_prefetch(line, 1, 3);
#endif
	}
}

/*
 * After announcing a claim and before its CAS: may it CAS, or is the
 * sole-producer lease held by somebody else (lease.c)? The announcement
 * must be ordered before the load of the lease word: a process registered
 * for membarrier gets that from the barrier an acquirer runs, others pay a
 * fence. The holder's own lane 0 may CAS too (its claim_loop does).
 */
/* GCC rejects a fence in a function inlined elsewhere under
 * -fsanitize=thread (-Wtsan): there these stay calls. */
#if defined(__SANITIZE_THREAD__)
#define MRB_CLAIM_INLINE static __attribute__((noinline))
#else
#define MRB_CLAIM_INLINE MRB_ALWAYS_INLINE
#endif

MRB_CLAIM_INLINE bool lease_lets_cas(struct mrb_handle *h, const struct mrb_lane *lane)
{
	if (MRB_LIKELY((h->barriers & MRB_BARRIER_GLOBAL) != 0))
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
	uint64_t lease = atomic_load_explicit(&h->header->sole_producer, memory_order_relaxed);
	return MRB_LIKELY(lease == 0) ||
	       (lease == atomic_load_explicit(&h->lease_mine, memory_order_relaxed) &&
	        lane == atomic_load_explicit(&h->lease_lane, memory_order_relaxed));
}

/* After a CAS claim: now and then, see whether this producer is alone and
 * may take the lease. */
MRB_ALWAYS_INLINE void lease_count_claim(struct mrb_handle *h, struct mrb_lane *lane)
{
	uint32_t left = atomic_load_explicit(&h->lease_countdown, memory_order_relaxed);
	if (MRB_UNLIKELY(left <= 1))
		mrbi_lease_try_acquire(h, lane);
	else
		atomic_store_explicit(&h->lease_countdown, left - 1, memory_order_relaxed);
}

static __attribute__((noinline)) int claim_loop(struct mrb_handle *h, struct mrb_lane *lane,
                                                uint64_t record_size, uint64_t *position,
                                                uint64_t *gap)
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
		if (MRB_UNLIKELY(tail - head > capacity || tail - head + need > capacity)) {
			/* Pairs with the consumer's store in mrbi_publish_head: its
			 * reads of the freed space happen before our writes. */
			uint64_t fresh;
			if (read_positions(hdr, capacity, &head, &fresh) != 0)
				return MRB_ECORRUPT;
			atomic_store_explicit(&hdr->consumer_position_cache, head,
			                      memory_order_release);
			if (fresh != tail) {
				tail = fresh;
				continue;
			}
			/* In a fan-out ring the release position moves when the
			 * slowest subscriber does, or now (subscriber.c). */
			if (h->mode == MRB_MODE_FANOUT && tail - head + need > capacity &&
			    fanout_released(h, head)) {
				tail = atomic_load_explicit(&hdr->producer_position,
				                            memory_order_relaxed);
				continue;
			}
			if (tail - head + need > capacity) {
				/* A record longer than half the ring may never fit
				 * behind a gap; taking the gap alone lets the
				 * consumer skip it so that the next try fits. */
				if (pad == 0 || tail - head + pad > capacity)
					return MRB_EFULL;
				atomic_store_explicit(&lane->claiming, tail | 1,
				                      memory_order_release);
				if (!lease_lets_cas(h, lane)) {
					int rc = mrbi_lease_revoke(h, lane);
					if (rc != 0)
						return rc;
					tail = atomic_load_explicit(&hdr->producer_position,
					                            memory_order_relaxed);
					continue;
				}
				if (atomic_compare_exchange_weak_explicit(
				        &hdr->producer_position, &tail, tail + pad,
				        memory_order_acq_rel, memory_order_relaxed)) {
					atomic_thread_fence(memory_order_release);
					atomic_store_explicit(&lane->claim_end, tail + pad,
					                      memory_order_relaxed);
					record_publish(h, tail,
					               control_word(pad - MRB_RECORD_HEADER_SIZE,
					                            handle_writer_bits(h),
					                            MRB_CONTROL_PAD));
					tail += pad;
				}
				continue;
			}
		}
		atomic_store_explicit(&lane->claiming, tail | 1, memory_order_release);
		if (!lease_lets_cas(h, lane)) {
			int rc = mrbi_lease_revoke(h, lane);
			if (rc != 0)
				return rc;
			tail = atomic_load_explicit(&hdr->producer_position, memory_order_relaxed);
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(&hdr->producer_position, &tail,
		                                          tail + need, memory_order_seq_cst,
		                                          memory_order_relaxed)) {
			/* A lapped subscriber that copies any of this claim's
			 * stores then sees this CAS (subscriber.c). */
			atomic_thread_fence(memory_order_release);
			atomic_store_explicit(&lane->claim_end, tail + need, memory_order_relaxed);
			prefetch_for_write(h, tail + need, head);
			lease_count_claim(h, lane);
			*position = tail + pad;
			*gap = pad;
			return 0;
		}
	}
}

/* claim_loop's first attempt when the cached head shows room, inline (one
 * CAS and no loop: its registers stay in registers); anything else,
 * including a lost CAS, goes the whole way from a fresh producer position. */
MRB_CLAIM_INLINE int claim(struct mrb_handle *h, struct mrb_lane *lane, uint64_t record_size,
                           uint64_t *position, uint64_t *gap)
{
	struct mrb_file_header *hdr = h->header;
	const uint64_t capacity = h->capacity;
	uint64_t tail = atomic_load_explicit(&hdr->producer_position, memory_order_relaxed);
	uint64_t to_end = capacity - (tail & h->mask);
	uint64_t pad = record_size > to_end ? to_end : 0;
	uint64_t need = pad + record_size;
	uint64_t head = atomic_load_explicit(&hdr->consumer_position_cache, memory_order_acquire);
	if (MRB_LIKELY(tail % MRB_RECORD_ALIGNMENT == 0 && tail - head <= capacity &&
	               tail - head + need <= capacity)) {
		atomic_store_explicit(&lane->claiming, tail | 1, memory_order_release);
		if (lane == atomic_load_explicit(&h->lease_lane, memory_order_relaxed)) {
			/* The sole producer's plain claim (lease.c): between the
			 * announcement above and the store below, nobody else
			 * claims, and a revoker waits for the store. */
			atomic_store_explicit(&h->in_plain_window, 1, memory_order_relaxed);
			atomic_signal_fence(memory_order_seq_cst);
			/* Read after the flag: a call in a signal handler that
			 * came before it may have given the lease up. */
			uint64_t mine = atomic_load_explicit(&h->lease_mine, memory_order_relaxed);
			if (MRB_LIKELY(mine != 0 &&
			               atomic_load_explicit(&hdr->sole_producer,
			                                    memory_order_relaxed) == mine)) {
				atomic_store_explicit(&hdr->producer_position, tail + need,
				                      memory_order_release);
				atomic_signal_fence(memory_order_seq_cst);
				atomic_store_explicit(&h->in_plain_window, 0, memory_order_relaxed);
				goto claimed;
			}
			atomic_store_explicit(&h->in_plain_window, 0, memory_order_relaxed);
			mrbi_lease_dropped(h);
			return claim_loop(h, lane, record_size, position, gap);
		}
		if (MRB_LIKELY(lease_lets_cas(h, lane)) &&
		    MRB_LIKELY(atomic_compare_exchange_strong_explicit(
		        &hdr->producer_position, &tail, tail + need, memory_order_seq_cst,
		        memory_order_relaxed))) {
			lease_count_claim(h, lane);
			goto claimed;
		}
	}
	return claim_loop(h, lane, record_size, position, gap);
claimed:
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&lane->claim_end, tail + need, memory_order_relaxed);
	prefetch_for_write(h, tail + need, head);
	*position = tail + pad;
	*gap = pad;
	return 0;
}

/* Writes the claimed record's header (BUSY), then the gap's padding in
 * front of it: a reader that passes the padding always finds the record's
 * header, so a claim is never half-visible at the wrap point. */
MRB_ALWAYS_INLINE void publish_claim(struct mrb_handle *h, uint64_t position, uint64_t gap,
                                     uint64_t control)
{
	record_publish(h, position, control);
	if (gap != 0)
		record_publish(h, position - gap,
		               control_word(gap - MRB_RECORD_HEADER_SIZE,
		                            control & ~(MRB_CONTROL_LENGTH_MASK | MRB_CONTROL_BUSY |
		                                        MRB_CONTROL_PAD),
		                            MRB_CONTROL_PAD));
}

static __attribute__((noinline, cold)) void count_full(struct mrb_handle *h)
{
	struct mrb_producer_slot *slot =
	    &h->header
	         ->producers[control_slot(atomic_load_explicit(&h->writer, memory_order_relaxed))];
	atomic_fetch_add_explicit(&slot->full, 1, memory_order_relaxed);
}

MRB_ALWAYS_INLINE int reserve(struct mrb_handle *h, struct mrb_lane *lane, uint64_t writer,
                              size_t len, uint64_t *position)
{
	if (len == 0 || len > h->max_message_size)
		return MRB_EMSGSIZE;
	uint64_t gap;
	int rc = claim(h, lane, record_span(len), position, &gap);
	if (rc == 0)
		publish_claim(h, *position, gap, control_word(len, writer, MRB_CONTROL_BUSY));
	else if (rc == MRB_EFULL)
		count_full(h);
	return rc;
}

/*
 * Clears BUSY with a release store (the payload is visible to a reader that
 * sees the new control word). Checked first: if recovery already turned the
 * record into padding (its writer looked dead or hung), the commit must not
 * resurrect it. Not a CAS: a locked instruction here would stall until this
 * line, which the consumer is polling, had crossed to its core, on every
 * message. No recovery can fall between the check and the store: recovery
 * writes only to the records of writers that are gone, and a hung writer's
 * skipped record is left as it is (recover.c).
 */
MRB_ALWAYS_INLINE int commit(struct mrb_handle *h, uint64_t writer, uint64_t position, uint64_t len,
                             uint64_t final_flags)
{
	struct mrb_record_header *rec = record_at(h, position);
	if (atomic_load_explicit(&rec->stamp, memory_order_relaxed) != (position ^ h->salt))
		return MRB_ESTALE;
	if (atomic_load_explicit(&rec->control, memory_order_relaxed) !=
	    control_word(len, writer, MRB_CONTROL_BUSY))
		return MRB_ESTALE;
	/* Pairs with the acquire load of control in record_observe. */
	atomic_store_explicit(&rec->control, control_word(len, writer, final_flags),
	                      memory_order_release);
	return 0;
}

MRB_ALWAYS_INLINE int write_one(struct mrb_handle *h, struct mrb_lane *lane, const void *data,
                                size_t len)
{
	uint64_t position, writer = handle_writer_bits(h);
	int rc = reserve(h, lane, writer, len, &position);
	if (rc != 0)
		return rc;
	payload_copy(h, record_payload(h, position), data, len);
	return commit(h, writer, position, len, 0);
}

/* mrb_write once entered (producer_enter: `owner`, `lane0`). */
MRB_ALWAYS_INLINE int write_entered(struct mrb_handle *h, bool owner, bool lane0, const void *data,
                                    size_t len)
{
	struct mrb_lane *lane;
	int rc = lane_take(h, lane0, &lane);
	if (rc == 0) {
		rc = write_one(h, lane, data, len);
		lane_give(h, lane0, lane);
	}
	if (rc == 0)
		wake_consumer(h);
	producer_leave(h, owner);
	return rc;
}

/* mrb_write from any other thread, nested in a signal handler, or the
 * producer thread's first call (producer_enter adopts the thread). */
static __attribute__((noinline)) int write_shared(struct mrb_handle *h, const void *data,
                                                  size_t len)
{
	bool owner, lane0;
	int rc = producer_enter(h, &owner, &lane0);
	return rc != 0 ? rc : write_entered(h, owner, lane0, data, len);
}

/*
 * The producer thread's write is the same code with `owner` and `lane0`
 * known at compile time: no flags to carry through the call in registers
 * or on the stack, and the other threads' paths out of line: 16-19 of the
 * 176-185 instructions a message took (the bookkeeping around the claim,
 * the record and the commit is about 50: BENCHMARKS.md, issue 16,
 * session 6).
 */
int mrb_write(struct mrb_ring *ring, const void *data, size_t len)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || (data == NULL && len != 0))
		return MRB_EINVAL;
	if (MRB_LIKELY(producer_owner_idle(h))) {
		int rc = producer_owner_enter(h, 0);
		return rc != 0 ? rc : write_entered(h, true, true, data, len);
	}
	return write_shared(h, data, len);
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
		uint64_t record = record_span(msgs[n].len);
		if (n > 0 && size + record > limit)
			break;
		size += record;
	}
	*run_size = size;
	return n;
}

/*
 * Writes a run of messages with one claim: consecutive records in one space
 * taken by a single CAS. The first record's header is written BUSY and the
 * others' committed; the single commit of the first record then makes the
 * whole run visible at once (the consumer reads in order and cannot pass a
 * BUSY record), with one store on the line the consumer polls. If the
 * writer dies before that commit, recovery pads the whole claim, whose end
 * the lane announced: a batch loses at most a suffix (recover.c).
 */
static int64_t write_run(struct mrb_handle *h, struct mrb_lane *lane, const struct mrb_iovec *msgs,
                         size_t n, uint64_t run_size)
{
	uint64_t position, gap;
	int rc = claim(h, lane, run_size, &position, &gap);
	if (rc != 0) {
		if (rc == MRB_EFULL)
			count_full(h);
		return rc;
	}
	uint64_t writer = handle_writer_bits(h);
	publish_claim(h, position, gap, control_word(msgs[0].len, writer, MRB_CONTROL_BUSY));
	uint64_t at = position + record_span(msgs[0].len);
	for (size_t i = 1; i < n; i++) {
		record_publish(h, at, control_word(msgs[i].len, writer, 0));
		payload_copy(h, record_payload(h, at), msgs[i].data, msgs[i].len);
		at += record_span(msgs[i].len);
	}
	payload_copy(h, record_payload(h, position), msgs[0].data, msgs[0].len);
	/* Recovery took it (its handle was judged gone): report, go on. */
	return commit(h, writer, position, msgs[0].len, 0) == 0 ? (int64_t)n : MRB_ESTALE;
}

int64_t mrb_write_batch(struct mrb_ring *ring, const struct mrb_iovec *msgs, size_t count)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || (msgs == NULL && count != 0))
		return MRB_EINVAL;
	bool owner, lane0;
	int rc = producer_enter(h, &owner, &lane0);
	if (rc != 0)
		return rc;
	struct mrb_lane *lane;
	rc = lane_take(h, lane0, &lane);
	if (rc != 0) {
		producer_leave(h, owner);
		return rc;
	}
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
			result = write_run(h, lane, msgs + written, n, run_size);
			if (result != MRB_EFULL || n == 1)
				break;
			n /= 2;
			run_size = 0;
			for (size_t i = 0; i < n; i++)
				run_size += record_span(msgs[written + i].len);
		}
		if (result < 0)
			break;
		written += (size_t)result;
	}
	lane_give(h, lane0, lane);
	if (written > 0)
		wake_consumer(h);
	producer_leave(h, owner);
	return written > 0 ? (int64_t)written : result;
}

int mrb_reserve(struct mrb_ring *ring, size_t len, struct mrb_reservation *res)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || res == NULL)
		return MRB_EINVAL;
	bool owner, lane0;
	int rc = producer_enter(h, &owner, &lane0);
	if (rc != 0)
		return rc;
	struct mrb_lane *lane;
	rc = lane_take(h, lane0, &lane);
	if (rc == 0) {
		uint64_t position;
		rc = reserve(h, lane, handle_writer_bits(h), len, &position);
		/* The header now names this handle's slot: the reservation
		 * needs no announcement while the caller fills it. */
		lane_give(h, lane0, lane);
		if (rc == 0) {
			res->data = record_payload(h, position);
			res->len = len;
			res->position = position;
			atomic_fetch_add_explicit(&h->reservations_open, 1, memory_order_relaxed);
		}
	}
	producer_leave(h, owner);
	return rc;
}

/* A reservation comes back from the caller: check it really is one of ours
 * before touching the ring through it. */
static bool reservation_plausible(struct mrb_handle *h, const struct mrb_reservation *res)
{
	return res->len != 0 && res->len <= h->max_message_size &&
	       res->position % MRB_RECORD_ALIGNMENT == 0 &&
	       res->data == record_payload(h, res->position);
}

static int finish_reservation(struct mrb_ring *ring, struct mrb_reservation *res, bool publish)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || res == NULL)
		return MRB_EINVAL;
	bool owner, lane0;
	int rc = producer_enter(h, &owner, &lane0);
	if (rc != 0)
		return rc;
	if (atomic_load_explicit(&h->writer, memory_order_acquire) == 0 ||
	    !reservation_plausible(h, res)) {
		rc = MRB_ESTALE;
	} else {
		rc = commit(h, handle_writer_bits(h), res->position, res->len,
		            publish ? 0 : MRB_CONTROL_PAD);
	}
	if (rc == 0) {
		atomic_fetch_sub_explicit(&h->reservations_open, 1, memory_order_relaxed);
		wake_consumer(h);
		res->data = NULL;
		res->len = 0;
	}
	producer_leave(h, owner);
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
