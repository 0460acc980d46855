/* SPDX-License-Identifier: MIT */
/*
 * Blocking waits across processes.
 *
 * A waiter spins briefly (a blocked process's wake-up costs tens of
 * microseconds here), then announces itself in a waiter count in the shared
 * header, re-checks the ring, and sleeps on a sequence word with a futex
 * (not FUTEX_PRIVATE: the word is in a MAP_SHARED file mapping, so any
 * process's wake reaches it). The side that makes progress bumps the word and
 * wakes only if the count is non-zero, so nobody pays a system call for
 * wake-ups no one waits for. Either the waiter's re-check sees the
 * progress, or the waker sees the waiter: the waiter orders its count
 * increment before the re-check with a fence and membarrier(2), the waker
 * its progress store before the count load with a compiler barrier
 * (barrier.c; a read-modify-write of the count if this process could not
 * register). Re-reading the sequence before the re-check closes the
 * remaining window, because the futex refuses to sleep when the word has
 * moved.
 */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "handle.h"

#define MRB_SPIN_NS          10000
#define MRB_YIELD_ITERATIONS 4
/* While a claimed record blocks the head, sleep in short slices so the
 * recovery check in the read path keeps running. */
#define MRB_UNFINISHED_RECORD_SLICE_NS 10000000
/* Without membarrier a waker's progress may be missed by the re-check (the
 * waker only has a compiler barrier): sleep in slices this short, which
 * bounds the delay such a miss can cause. */
#define MRB_UNORDERED_SLICE_NS 1000000
/* A waker killed between its progress and its FUTEX_WAKE never wakes us
 * (found by the SPIN model, docs/MODEL.md): every sleep is bounded by this
 * much, so the cost of such a death is at most this latency, never a hang.
 * One spurious wake-up a second is invisible in CPU time. */
#define MRB_LOST_WAKER_SLICE_NS 1000000000
/* A sleeping worker's slice: a woken worker that died before passing the
 * turn on costs at most this, and sleepers audit their group this often. */
#define MRB_WORKER_SLICE_NS 100000000

int mrbi_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
#if defined(__linux__)
	struct timespec ts, *tsp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000);
		ts.tv_nsec = (long)(timeout_ns % 1000000000);
		tsp = &ts;
	}
	long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, tsp, NULL, 0);
	if (rc == 0 || errno == EAGAIN)
		return 0;
	if (errno == ETIMEDOUT)
		return MRB_ETIMEDOUT;
	if (errno == EINTR)
		return MRB_EINTR;
	return -errno;
#else
	/* Portable fallback: adaptive sleep, woken by polling the word. */
	int64_t slept = 0, step = 1000;
	while (atomic_load_explicit(word, memory_order_acquire) == expected) {
		if (timeout_ns >= 0 && slept >= timeout_ns)
			return MRB_ETIMEDOUT;
		struct timespec ts = {0, (long)step};
		if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
			return MRB_EINTR;
		slept += step;
		if (step < 1000000)
			step *= 2;
	}
	return 0;
#endif
}

void mrbi_futex_wake_all(_Atomic uint32_t *word)
{
#if defined(__linux__)
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#else
	(void)word;
#endif
}

void mrbi_futex_wake_one(_Atomic uint32_t *word)
{
#if defined(__linux__)
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
#else
	(void)word;
#endif
}

void mrbi_wake_consumer(struct mrb_handle *h)
{
	struct mrb_file_header *hdr = h->header;
	if (waiters_after_publish(h, &hdr->data_waiters) != 0) {
		/* Doorbells first: a waker that takes an armed name bumps and
		 * wakes the word after taking it, which is what an io_uring
		 * FUTEX_WAIT behind that doorbell (doorbell_uring.c), read
		 * before the name was published, relies on. */
		mrbi_doorbell_ring_readers(h);
		atomic_fetch_add_explicit(&hdr->data_seq, 1, memory_order_seq_cst);
		mrbi_futex_wake_all(&hdr->data_seq);
		/* A subscriber killed asleep left its share: on the path that
		 * already pays a system call, look for such now and then. */
		if (atomic_load_explicit(&hdr->readers.entries_used, memory_order_relaxed) != 0)
			mrbi_forget_dead_sleepers(h);
		/* Sleeping workers count in data_waiters too; each group with
		 * sleepers gets one wake-up (workers.c). */
		if (h->mode == MRB_MODE_FANOUT)
			mrbi_wake_workers(h);
	}
}

/* What a waiter waits for; returns 0 when ready, MRB_EEMPTY / MRB_EFULL when
 * not, another code on error. *unfinished tells a reader that a claimed
 * record (rather than an empty ring) is what holds it back. */
typedef int (*ready_fn)(struct mrb_handle *h, size_t len, bool thorough, bool *unfinished);

/* `thorough`: just before sleeping, look at the producer position too, so a
 * claim whose header never appears (its writer died) is noticed. */
static int readable(struct mrb_handle *h, size_t len, bool thorough, bool *unfinished)
{
	(void)len;
	if (h->worker != NULL)
		return mrbi_worker_ready(h, thorough, unfinished);
	if (h->validating) {
		int rc = mrbi_validated_ready(h, thorough, unfinished);
		mrbi_publish_head(h);
		return rc;
	}
	const uint8_t *data;
	uint64_t length, next;
	int rc = mrbi_next_message(h, thorough ? MRB_TAIL_ALWAYS : MRB_TAIL_SOMETIMES, &data,
	                           &length, &next);
	*unfinished = rc == MRB_EEMPTY && h->head != h->tail_cache;
	/* Padding skipped on the way is space producers may be waiting for. */
	mrbi_publish_head(h);
	return rc;
}

/* Conservative: room for the record plus the worst-case gap at the end. */
static int writable(struct mrb_handle *h, size_t len, bool thorough, bool *unfinished)
{
	(void)thorough;
	*unfinished = false;
	struct mrb_file_header *hdr = h->header;
	uint64_t head, tail;
	if (read_positions(hdr, h->capacity, &head, &tail) != 0)
		return MRB_ECORRUPT;
	uint64_t record_size = record_span(len);
	uint64_t to_end = h->capacity - (tail & h->mask);
	uint64_t need = record_size > to_end ? to_end + record_size : record_size;
	if (tail - head + need <= h->capacity)
		return 0;
	if (h->mode == MRB_MODE_FANOUT) {
		/* The slowest subscriber may be gone or hung: judge it now, and
		 * again every few milliseconds while full (short sleeps). */
		*unfinished = true;
		mrbi_fanout_release(h, true);
		if (read_positions(hdr, h->capacity, &head, &tail) != 0)
			return MRB_ECORRUPT;
		if (tail - head + need <= h->capacity)
			return 0;
	}
	/* A record larger than half the ring behind a gap it cannot share
	 * fits once the gap itself is consumed; report ready to let the write
	 * take the gap. */
	if (record_size > to_end && tail - head + to_end <= h->capacity)
		return 0;
	return MRB_EFULL;
}

void mrbi_waiter_register(const struct mrbi_waiter_words *ww)
{
	if (ww->own_share != NULL)
		atomic_fetch_add_explicit(ww->own_share, 1, memory_order_relaxed);
	/* The group's count before the shared one: a waker that sees the
	 * shared count looks at the group's next. */
	if (ww->group_waiters != NULL)
		atomic_fetch_add_explicit(ww->group_waiters, 1, memory_order_seq_cst);
	atomic_fetch_add_explicit(ww->waiters, 1, memory_order_seq_cst);
}

bool mrbi_waiter_settle(struct mrb_handle *h)
{
	/* Orders the announcement before the re-check's loads (which are
	 * acquire loads inside mrbi_next_message), here and, through
	 * membarrier, in every waker between its progress and its look at the
	 * count. */
	atomic_thread_fence(memory_order_seq_cst);
	return (h->barriers & MRB_BARRIER_TRUST_WAKERS) != 0 ||
	       ((h->barriers & MRB_BARRIER_GLOBAL) != 0 && mrbi_barrier_global() == 0);
}

static void unregister(const struct mrbi_waiter_words *ww)
{
	atomic_fetch_sub_explicit(ww->waiters, 1, memory_order_seq_cst);
	if (ww->group_waiters != NULL)
		atomic_fetch_sub_explicit(ww->group_waiters, 1, memory_order_seq_cst);
	if (ww->own_share != NULL)
		atomic_fetch_sub_explicit(ww->own_share, 1, memory_order_relaxed);
}

static int wait_until(struct mrb_handle *h, ready_fn ready, size_t len, _Atomic uint32_t *seq,
                      const struct mrbi_waiter_words *ww, int64_t timeout_ns)
{
	int64_t deadline = mrbi_deadline(mrbi_now_ns(), timeout_ns);
	bool unfinished = false;
	int64_t spin_until = mrbi_now_ns() + MRB_SPIN_NS;
	for (int i = 0, yields = 0; yields <= MRB_YIELD_ITERATIONS; i++) {
		int rc = ready(h, len, false, &unfinished);
		if (rc != MRB_EEMPTY && rc != MRB_EFULL)
			return rc;
		if (timeout_ns == 0)
			return MRB_ETIMEDOUT;
		if (handle_closing(h))
			return MRB_ECLOSED;
		if ((i & 63) != 63 || mrbi_now_ns() < spin_until) {
			cpu_relax();
		} else {
			sched_yield();
			yields++;
		}
	}
	for (;;) {
		mrbi_waiter_register(ww);
		bool ordered = mrbi_waiter_settle(h);
		uint32_t observed = atomic_load_explicit(seq, memory_order_seq_cst);
		int rc = ready(h, len, true, &unfinished);
		if (rc != MRB_EEMPTY && rc != MRB_EFULL) {
			unregister(ww);
			return rc;
		}
		if (handle_closing(h)) {
			unregister(ww);
			return MRB_ECLOSED;
		}
		int64_t sleep_ns = -1;
		if (timeout_ns >= 0) {
			sleep_ns = deadline - mrbi_now_ns();
			if (sleep_ns <= 0) {
				unregister(ww);
				return MRB_ETIMEDOUT;
			}
		}
		if (unfinished && (sleep_ns < 0 || sleep_ns > MRB_UNFINISHED_RECORD_SLICE_NS))
			sleep_ns = MRB_UNFINISHED_RECORD_SLICE_NS;
		if (!ordered && (sleep_ns < 0 || sleep_ns > MRB_UNORDERED_SLICE_NS))
			sleep_ns = MRB_UNORDERED_SLICE_NS;
		if (sleep_ns < 0 || sleep_ns > MRB_LOST_WAKER_SLICE_NS)
			sleep_ns = MRB_LOST_WAKER_SLICE_NS;
		if (ww->max_slice_ns > 0 && sleep_ns > ww->max_slice_ns)
			sleep_ns = ww->max_slice_ns;
		rc = mrbi_futex_wait(seq, observed, sleep_ns);
		unregister(ww);
		if (rc == MRB_EINTR)
			return rc;
		if (rc != 0 && rc != MRB_ETIMEDOUT)
			return rc;
	}
}

int mrb_wait_readable(struct mrb_ring *ring, int64_t timeout_ns)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL)
		return MRB_EINVAL;
	int rc = mrbi_consumer_enter(h);
	if (rc != 0)
		return rc;
	struct mrbi_waiter_words ww = {&h->header->data_waiters,
	                               h->entry != NULL ? &h->entry->data_waiting : NULL, NULL, 0};
	_Atomic uint32_t *seq = &h->header->data_seq;
	if (h->worker != NULL) {
		/* Workers sleep on their group's word, woken one at a time,
		 * and wake now and then to look for dead or hung workers. */
		mrbi_worker_wait_words(h, &seq, &ww.group_waiters, &ww.own_share);
		ww.max_slice_ns = MRB_WORKER_SLICE_NS;
	}
	rc = wait_until(h, readable, 0, seq, &ww, timeout_ns);
	rc = mrbi_elapsed_reported(h, rc);
	mrbi_consumer_leave(h);
	return rc;
}

int mrb_wait_writable(struct mrb_ring *ring, size_t len, int64_t timeout_ns)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL)
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_PRODUCER_CALL);
	if (rc != 0)
		return rc;
	struct mrb_producer_slot *slot = NULL;
	if (len == 0 || len > h->max_message_size)
		rc = MRB_EMSGSIZE;
	else
		rc = mrbi_slot_acquire(h, &slot);
	if (rc == 0) {
		struct mrbi_waiter_words ww = {&h->header->space_waiters, &slot->space_waiting,
		                               NULL, 0};
		rc = wait_until(h, writable, len, &h->header->space_seq, &ww, timeout_ns);
	}
	role_leave(h, MRB_PRODUCER_CALL);
	return rc;
}

static int64_t remaining(int64_t timeout_ns, int64_t deadline)
{
	if (timeout_ns < 0)
		return -1;
	if (deadline == INT64_MAX)
		return -1;
	int64_t left = deadline - mrbi_now_ns();
	return left > 0 ? left : 0;
}

int mrb_read_wait(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *len,
                  int64_t timeout_ns)
{
	int64_t deadline = mrbi_deadline(mrbi_now_ns(), timeout_ns);
	for (;;) {
		int rc = mrb_read(ring, buf, buf_size, len);
		if (rc != MRB_EEMPTY)
			return rc;
		rc = mrb_wait_readable(ring, remaining(timeout_ns, deadline));
		if (rc != 0)
			return rc;
	}
}

int mrb_write_wait(struct mrb_ring *ring, const void *data, size_t len, int64_t timeout_ns)
{
	int64_t deadline = mrbi_deadline(mrbi_now_ns(), timeout_ns);
	for (;;) {
		int rc = mrb_write(ring, data, len);
		if (rc != MRB_EFULL)
			return rc;
		rc = mrb_wait_writable(ring, len, remaining(timeout_ns, deadline));
		if (rc != 0)
			return rc;
	}
}

int mrbi_ready_to_read(struct mrb_handle *h, bool *unfinished)
{
	return readable(h, 0, true, unfinished);
}

int mrbi_ready_to_write(struct mrb_handle *h, size_t len)
{
	bool unfinished;
	return writable(h, len, true, &unfinished);
}
