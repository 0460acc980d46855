/* SPDX-License-Identifier: MIT */
/*
 * The private contents of struct mrb_ring, and the entry/exit discipline that
 * makes mrb_close safe against calls in flight on other threads.
 */
#ifndef MRB_HANDLE_H
#define MRB_HANDLE_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "layout.h"
#include "mrb/mrb.h"

/* Handle flags. Calls in progress are counted separately per role (below),
 * so that mrb_close can wait for them to leave. */
#define MRB_STATE_OPEN     (1u << 0)
#define MRB_STATE_CLOSING  (1u << 1)
#define MRB_STATE_READONLY (1u << 2)

/* A reader flag kept only in the handle (reader_flags), never in the table,
 * above every MRB_ENTRY_* bit: set while a gating subscriber that joined
 * behind the live end from the oldest message has handed over nothing yet:
 * a release that did not see its entry may still pass it, and that is no
 * loss (subscriber.c, settle_join). */
#define MRB_READER_UNSETTLED (1u << 30)

/*
 * Roles of a call. Every public call enters exactly one role, through one
 * entry/exit pair, and leaves it before returning:
 *
 *   role      entry / exit                       public calls
 *   producer  producer_enter / producer_leave     mrb_write, mrb_write_batch
 *             (role_enter(MRB_PRODUCER_CALL)      (mrb_write_packed via it),
 *              for threads other than the         mrb_reserve, mrb_commit,
 *              handle's producer thread)          mrb_abort
 *             role_enter / role_leave             mrb_wait_writable
 *                                                 (mrb_write_wait via it)
 *   consumer  mrbi_consumer_enter /               mrb_read, mrb_read_many,
 *             mrbi_consumer_leave (attach as      mrb_read_batch, mrb_peek,
 *             consumer; publish on leave)         mrb_release,
 *                                                 mrb_wait_readable
 *                                                 (mrb_read_wait, mrb_read_len*
 *                                                 via them), mrb_recover
 *             role_enter(MRB_CONSUMER_CALL)       mrb_set_recovery_timeout
 *   observer  role_enter(MRB_STATE_CALL)          mrb_stats, mrb_inspect,
 *                                                 mrb_capacity,
 *                                                 mrb_max_message_size
 *
 * Observer calls share the producers' counter: both may overlap anything,
 * and close only needs the total. Only observer calls work on a read-only
 * handle. mrb_open, mrb_create, mrb_close, mrb_upgrade and mrb_strerror
 * enter no role.
 */
enum mrb_call_role {
	MRB_PRODUCER_CALL = 0,
	MRB_CONSUMER_CALL = 1,
	MRB_STATE_CALL = 2, /* reads the ring only: allowed on read-only handles */
};

/* Asymmetric barriers this process registered for (barrier.c). */
#define MRB_BARRIER_GLOBAL  (1u << 0) /* membarrier GLOBAL_EXPEDITED */
#define MRB_BARRIER_PRIVATE (1u << 1) /* membarrier PRIVATE_EXPEDITED */
/* Tests only: sleepers trust every waker to order with a read-modify-write
 * (mrb__test_set_barriers). */
#define MRB_BARRIER_TRUST_WAKERS (1u << 2)

/* Branch hints and forced inlining for the one-core write + read path
 * (docs/BENCHMARKS.md, issue 16): its cold branches stay out of line. */
#define MRB_LIKELY(x)     __builtin_expect(!!(x), 1)
#define MRB_UNLIKELY(x)   __builtin_expect(!!(x), 0)
#define MRB_ALWAYS_INLINE static inline __attribute__((always_inline))

/* 128 bytes: two cache lines, so adjacent-line prefetch cannot couple
 * the blocks of the handle either. */
#define MRB_HANDLE_BLOCK 128

/* A claim of a live writer that the opt-in hung-writer timeout skipped:
 * the consumer reads on past it but does not release its space, so the
 * writer's late stores land nowhere else, and delivers what it commits
 * late (recover.c). */
struct mrb_skipped_claim {
	uint64_t start;
	uint64_t end;
	uint64_t owner; /* the slot's owner word when skipped */
	uint32_t slot;
	uint32_t active;
};

struct mrb_handle {
	/* Read-mostly: written at open and close only. */
	_Atomic uint32_t flags;
	uint32_t pid;
	struct mrb_file_header *header;
	uint8_t *data;
	size_t map_size;
	uint64_t capacity;
	uint64_t mask;
	uint64_t max_message_size;
	uint64_t salt;
	unsigned barriers; /* MRB_BARRIER_*, fixed at open */
	uint32_t mode;     /* MRB_MODE_QUEUE or MRB_MODE_FANOUT, fixed at creation */
	/* The first thread to produce through the handle (0 before): its
	 * calls are counted in owner_calls, with plain stores. */
	_Atomic uintptr_t producer_thread;
	/* The handle's producer slot, acquired on first write: control-word
	 * bits naming the slot and its generation, | MRB_WRITER_SET; 0 before.
	 * Set once by CAS, so every thread of the handle agrees on it. */
	_Atomic uint64_t writer;
	/* A private page that fork(2) hands to a child zero-filled
	 * (MADV_WIPEONFORK): a zero word means "not the opener" (fork.c). */
	const _Atomic uint32_t *fork_guard;
	/* The opener's start time and pid namespace (struct mrb_identity). */
	uint64_t start_time;
	uint64_t pid_ns;
	/* The thread whose consumer calls enter with plain stores (0: none
	 * yet; | 1: revoked; consumer_role_enter). Written only by a consumer
	 * call inside (the slow path's adoption and revocation), read by every
	 * consumer call. Once set, only that thread is ever adopted again. */
	_Atomic uintptr_t consumer_thread;
	/* The processor has PREFETCHW (x86; producer.c), fixed at open. */
	bool prefetchw;
	uint8_t pad0[MRB_HANDLE_BLOCK - 121];

	/* Producer calls in progress: their own lines, so that a producer
	 * thread and the consumer thread sharing a handle do not bounce one
	 * line between their cores on every call. producer_calls counts other
	 * threads' calls and inspection calls (atomic increments); owner_calls
	 * is written only by producer_thread. */
	_Atomic uint32_t producer_calls;
	_Atomic uint32_t owner_calls;
	/* Lanes 1.. of the slot taken by threads other than producer_thread
	 * (a bit each); lane 0 is producer_thread's. */
	_Atomic uint32_t lanes_busy;
	/* Reservations made and not yet committed or aborted: a close with
	 * some open marks the slot not to be reused too early (slots.c). */
	_Atomic uint32_t reservations_open;
	/* The doorbells' io_uring FUTEX_WAIT companions (doorbell_uring.c),
	 * by side as doorbells[] below: a struct mrbi_uring_bell *, or
	 * MRB_NO_URING_BELL where io_uring cannot help; 0 before the first
	 * use. Set once, before doorbells[] (whose release publishes it);
	 * read only when arming (here for want of room elsewhere). */
	_Atomic uintptr_t uring_bells[2];
	/* The sole-producer lease (lease.c), written by the producer thread
	 * only: the lease word while this handle holds it (0: claim by CAS),
	 * and the lane it claims through with plain stores. */
	_Atomic uint64_t lease_mine;
	_Atomic(struct mrb_lane *) lease_lane;
	/* CAS claims until the next try to take the lease (relaxed: any
	 * thread of the handle counts, a lost decrement does not matter), and
	 * what it is set to after a short-lived lease or a failed try. */
	_Atomic uint32_t lease_countdown;
	_Atomic uint32_t lease_backoff;
	/* The producer position when this handle took the lease: how much it
	 * claimed under it tells a lease held for a scheduler slice from
	 * one revoked at once by a producer running beside it. */
	_Atomic uint64_t lease_since;
	/* The producer thread is between announcing a plain claim and storing
	 * the producer position: a call nested in a signal handler on that
	 * thread must not claim (lease.c). */
	_Atomic uint32_t in_plain_window;
	uint8_t pad1[MRB_HANDLE_BLOCK - 68];

	/* Consumer calls in progress and the consumer's state, touched only
	 * by the (single) thread inside a consumer call. */
	_Atomic uint32_t consumer_calls;
	bool is_consumer;
	/* A lossy or evictable subscriber: copies, then checks it was not
	 * lapped (subscriber.c). */
	bool validating;
	/* A subscriber that lost messages and has not yet said so: its next
	 * read call returns MRB_ELAPPED. */
	bool elapsed_pending;
	/* A live-end joiner walks the records before validate_until without
	 * delivering them (subscriber.c, join_fresh). */
	bool skip_backlog;
	uint64_t owner_token;
	uint64_t head;           /* next record to read */
	uint64_t published_head; /* last value stored to consumer_position */
	uint64_t tail_cache;     /* last producer position seen */
	uint64_t unpublished_messages;
	uint64_t unpublished_bytes;
	/* Crash recovery bookkeeping for the record blocking `head`. */
	uint64_t stuck_position;
	uint32_t stuck_polls;
	uint32_t empty_polls;
	/* consumer_thread's calls in progress (0 or 1), written only by that
	 * thread; consumer_calls counts the other threads' calls. */
	_Atomic uint32_t owner_consumer_calls;
	/* Slow-path consumer calls still to make before the calling thread
	 * adopts the fast path (again, after a revocation). */
	uint16_t adopt_wait;
	/* The call inside entered through consumer_thread's fast path. */
	bool owner_entry;
	int64_t stuck_since_ns; /* 0 until timing starts */
	int64_t last_liveness_check_ns;
	int64_t recovery_timeout_ns;
	int64_t last_waiter_audit_ns;
	/* The skipped claim of a hung writer, and the cursor that delivers
	 * its records late once they are committed (late_end 0: none). */
	struct mrb_skipped_claim skipped;
	uint64_t late_pos;
	uint64_t late_end;
	/* The thread running this handle's read_batch handler or inspect
	 * visitor (0 when none), so that a close from inside it is refused. */
	_Atomic uintptr_t callback_thread;
	/* mrb_hold: reads advance head, the ring is released only up to
	 * held_at (mrb_release_through), which the read counters follow. */
	bool holding;
	/* A test's stop point (mrb__test_stop_next_release): this handle's
	 * next move of a fan-out ring's release position stops its process
	 * between the table scan and the CAS. In holding's padding. */
	_Atomic uint8_t test_release_stop;
	/* The subscriber joined with MRB_SUBSCRIBE_FROM_OLDEST: set before
	 * the handle is handed out, then only read (mrb_subscriber_info, any
	 * thread, while the reader's thread changes reader_flags). In
	 * holding's padding. */
	bool from_oldest;
	/* How long mrb_read_batch waits, once caught up with a producer that
	 * is still writing, before it looks again (consumer.c); 0 before the
	 * first wait. In holding's padding: the handle is full. */
	uint32_t batch_wait_ns;
	uint64_t held_at;

	/* Subscriber state (subscriber.c); entry is NULL on other handles. */
	struct mrb_reader_entry *entry;
	uint32_t entry_index;
	uint32_t reader_flags; /* MRB_ENTRY_*, MRB_READER_UNSETTLED */
	/* A durable subscriber that starts behind the live end validates its
	 * copies until it gets here (subscriber.c, join_point). */
	uint64_t validate_until;
	uint8_t *scratch; /* a validating subscriber's mrb_read_batch copy */
	/* Producers of any thread judge readers at most once per interval
	 * (subscriber.c): atomic, since they share the handle. */
	_Atomic int64_t last_reader_audit_ns;
	/* Writers that find data_waiters raised look for dead sleepers at
	 * most once per interval (mrbi_forget_dead_sleepers). */
	_Atomic int64_t last_sleeper_audit_ns;
	/* Worker state (workers.c), allocated at join; NULL on other handles. */
	struct mrbi_worker *worker;
	/* Event-loop waiting (doorbell.c), any thread: the handle's doorbell
	 * sockets for data [MRB_DOORBELL_READ] and space [MRB_DOORBELL_WRITE],
	 * (fd + 1) << 32 | the random half of the name, 0 before the first
	 * use; each set once by CAS. The write doorbell also sends this
	 * handle's rings. */
	_Atomic uint64_t doorbells[2];
};

_Static_assert(offsetof(struct mrb_handle, pad0) + sizeof(((struct mrb_handle *)0)->pad0) ==
                   MRB_HANDLE_BLOCK,
               "read-mostly block");
_Static_assert(offsetof(struct mrb_handle, consumer_calls) == 2 * MRB_HANDLE_BLOCK,
               "consumer block");
_Static_assert(sizeof(struct mrb_handle) <= sizeof(struct mrb_ring), "handle fits");
_Static_assert(_Alignof(struct mrb_handle) <= _Alignof(struct mrb_ring), "handle aligned");

static inline struct mrb_handle *handle_of(struct mrb_ring *ring)
{
	return (struct mrb_handle *)(void *)ring;
}

uint32_t mrbi_getpid(void);

/* False in a child that inherited the handle across fork(2): the guard page
 * reads zero there (fork.c). Where MADV_WIPEONFORK is unavailable the
 * guard is NULL and the pid is compared instead. */
/*
 * Names the calling thread for producer_thread and consumer_thread: unique
 * among the process's live threads. GCC's thread pointer on x86-64 and
 * AArch64 (one register read) where it has one; pthread_self() elsewhere,
 * a call into the C library on every write and read.
 */
static inline uintptr_t thread_self(void)
{
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 &&                                  \
    (defined(__x86_64__) || defined(__aarch64__))
	return (uintptr_t)__builtin_thread_pointer();
#else
	return (uintptr_t)pthread_self();
#endif
}

static inline bool handle_in_opener(const struct mrb_handle *h)
{
	if (h->fork_guard != NULL)
		return atomic_load_explicit(h->fork_guard, memory_order_relaxed) != 0;
	return mrbi_getpid() == h->pid;
}

/* Why a call entering with handle flags `flags` must back out (0: it may
 * go on): closed or closing, inherited across fork, or, when it would
 * write (`writes`), a read-only handle. */
static inline int handle_refusal(const struct mrb_handle *h, uint32_t flags, bool writes)
{
	if ((flags & MRB_STATE_OPEN) == 0 || (flags & MRB_STATE_CLOSING) != 0)
		return MRB_ECLOSED;
	if (!handle_in_opener(h))
		return MRB_EFORKED;
	if (writes && (flags & MRB_STATE_READONLY) != 0)
		return -EROFS;
	return 0;
}

static inline _Atomic uint32_t *role_calls(struct mrb_handle *h, enum mrb_call_role role)
{
	/* Inspection calls share the producers' counter: both may overlap
	 * anything, and close only needs the total. */
	return role == MRB_CONSUMER_CALL ? &h->consumer_calls : &h->producer_calls;
}

/*
 * Consumer calls. One at a time may be inside (the others get
 * MRB_ECONSUMER_BUSY, a nested one too), and mrb_close must either see
 * each one or be seen by it.
 *
 * The thread adopted as consumer_thread enters with plain stores: it sets
 * owner_consumer_calls, then (compiler barrier only) loads consumer_thread
 * again and the flags; only that thread ever writes the counter (so only
 * the first thread adopted is ever adopted again, mrbi_consumer_leave_shared). A locked instruction
 * here cost ~10 ns of a ~45 ns write + read on one core. Any other thread enters by CAS of
 * consumer_calls from 0 to 1 (mrbi_consumer_enter_shared, which excludes
 * the other slow entries); if a thread is adopted, it revokes it (sets bit 0)
 * and runs membarrier(PRIVATE_EXPEDITED) before it loads
 * owner_consumer_calls. The same asymmetric handshake as the producer
 * thread's with mrb_close (barrier.c): either the adopted thread's store is
 * seen there and the slow entry backs out, or that thread sees the
 * revocation after its store and backs out to the slow path. mrb_close
 * runs the membarrier too when a thread is adopted. The first thread to
 * leave a slow call is adopted; after a revocation, that same thread again
 * once MRB_CONSUMER_ADOPT_WAIT slow calls have passed, so threads taking
 * turns pay at most one membarrier per that many calls. Without membarrier
 * nobody is adopted and every call takes the CAS.
 */
#define MRB_CONSUMER_ADOPT_WAIT 256
int mrbi_consumer_enter_shared(struct mrb_handle *h, uintptr_t self);
void mrbi_consumer_leave_shared(struct mrb_handle *h);

static inline int consumer_role_enter(struct mrb_handle *h)
{
	uintptr_t self = thread_self();
	if (atomic_load_explicit(&h->consumer_thread, memory_order_relaxed) == self &&
	    atomic_load_explicit(&h->owner_consumer_calls, memory_order_relaxed) == 0) {
		/* Only this thread writes the counter: a call nested in a
		 * signal handler or a read_batch handler found it set and
		 * takes the slow path, which refuses it. */
		atomic_store_explicit(&h->owner_consumer_calls, 1, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
		uint32_t flags = atomic_load_explicit(&h->flags, memory_order_acquire);
		if (atomic_load_explicit(&h->consumer_thread, memory_order_relaxed) == self &&
		    (flags & (MRB_STATE_OPEN | MRB_STATE_CLOSING | MRB_STATE_READONLY)) ==
		        MRB_STATE_OPEN &&
		    handle_in_opener(h)) {
			h->owner_entry = true;
			return 0;
		}
		/* Revoked, closing or forked: the slow path sorts it out. */
		atomic_store_explicit(&h->owner_consumer_calls, 0, memory_order_release);
	}
	return mrbi_consumer_enter_shared(h, self);
}

/* Pairs with the acquires in mrb_close's wait for calls to drain and in
 * the next slow entry. */
static inline void consumer_role_leave(struct mrb_handle *h)
{
	if (h->owner_entry)
		atomic_store_explicit(&h->owner_consumer_calls, 0, memory_order_release);
	else
		mrbi_consumer_leave_shared(h);
}

/* Pairs with the acquire in mrb_close's wait for calls to drain. */
static inline void role_leave(struct mrb_handle *h, enum mrb_call_role role)
{
	if (role == MRB_CONSUMER_CALL)
		consumer_role_leave(h);
	else
		atomic_fetch_sub_explicit(role_calls(h, role), 1, memory_order_release);
}

/*
 * Enters a call on the handle; on success the caller must role_leave. The
 * increment and the flags load are seq_cst, as are mrb_close's setting of
 * CLOSING and its loads of the counts: either close sees this call and
 * waits for it, or this call sees CLOSING and backs out. Consumer calls:
 * consumer_role_enter above.
 */
static inline int role_enter(struct mrb_handle *h, enum mrb_call_role role)
{
	if (role == MRB_CONSUMER_CALL)
		return consumer_role_enter(h);
	atomic_fetch_add_explicit(role_calls(h, role), 1, memory_order_seq_cst);
	uint32_t flags = atomic_load_explicit(&h->flags, memory_order_seq_cst);
	int rc = handle_refusal(h, flags, role != MRB_STATE_CALL);
	if (rc != 0)
		role_leave(h, role);
	return rc;
}

/*
 * The producer thread's entry, `calls` being its count of calls in
 * progress (see producer_enter): 0 or why it must back out. Only this
 * thread writes owner_calls (a signal handler's nested call restores it
 * before returning), so load + store is an increment.
 */
MRB_ALWAYS_INLINE int producer_owner_enter(struct mrb_handle *h, uint32_t calls)
{
	atomic_store_explicit(&h->owner_calls, calls + 1, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	uint32_t flags = atomic_load_explicit(&h->flags, memory_order_acquire);
	/* One test for the common case; handle_refusal orders the refusals. */
	if (MRB_UNLIKELY((flags & (MRB_STATE_OPEN | MRB_STATE_CLOSING | MRB_STATE_READONLY)) !=
	                     MRB_STATE_OPEN ||
	                 !handle_in_opener(h))) {
		atomic_store_explicit(&h->owner_calls, calls, memory_order_release);
		return handle_refusal(h, flags, true);
	}
	return 0;
}

/* Is the caller the handle's producer thread, in no other call of it (a
 * signal handler's call nested in one is not)? Then producer_owner_enter(h,
 * 0) enters, with lane 0. */
MRB_ALWAYS_INLINE bool producer_owner_idle(struct mrb_handle *h)
{
	return atomic_load_explicit(&h->producer_thread, memory_order_relaxed) == thread_self() &&
	       atomic_load_explicit(&h->owner_calls, memory_order_relaxed) == 0;
}

/*
 * Enters a producer call. The handle's producer thread counts its calls with
 * a plain store and orders it before its load of the flags with a compiler
 * barrier only: mrb_close, after setting CLOSING, runs
 * membarrier(PRIVATE_EXPEDITED), which puts a full barrier between the two
 * on that thread's CPU, so again either close sees the call or the call sees
 * CLOSING (barrier.c). Without the barrier, a locked increment before and
 * after every write would each wait for the previous record's line to reach
 * the consumer's core. Other threads use role_enter. *owner tells
 * producer_leave which counter to use; *lane0 that the call may use
 * lane 0 of the handle's producer slot (the producer thread, not nested in
 * a signal handler inside another of its calls).
 */
MRB_ALWAYS_INLINE int producer_enter(struct mrb_handle *h, bool *owner, bool *lane0)
{
	*lane0 = false;
	uintptr_t self = thread_self();
	uintptr_t thread = atomic_load_explicit(&h->producer_thread, memory_order_relaxed);
	if (MRB_UNLIKELY(thread != self)) {
		if (thread == 0 && (h->barriers & MRB_BARRIER_PRIVATE) != 0 &&
		    atomic_compare_exchange_strong_explicit(&h->producer_thread, &thread, self,
		                                            memory_order_relaxed,
		                                            memory_order_relaxed))
			thread = self;
		if (thread != self) {
			*owner = false;
			return role_enter(h, MRB_PRODUCER_CALL);
		}
	}
	uint32_t calls = atomic_load_explicit(&h->owner_calls, memory_order_relaxed);
	int rc = producer_owner_enter(h, calls);
	if (rc != 0)
		return rc;
	*owner = true;
	*lane0 = calls == 0;
	return 0;
}

/* Pairs with the acquire in mrb_close's wait for calls to drain. */
MRB_ALWAYS_INLINE void producer_leave(struct mrb_handle *h, bool owner)
{
	if (!owner) {
		role_leave(h, MRB_PRODUCER_CALL);
		return;
	}
	uint32_t calls = atomic_load_explicit(&h->owner_calls, memory_order_relaxed);
	atomic_store_explicit(&h->owner_calls, calls - 1, memory_order_release);
}

/*
 * Reads a waiter count after a store that published progress (a commit, a
 * released record), ordered after that store (barrier.c). With membarrier
 * the sleepers make a compiler barrier enough. Without it, a read-modify-
 * write of the count: a sleeper's increment then either comes first in the
 * count's modification order (and is read here) or reads this RMW's value,
 * which makes the progress visible to the sleeper's re-check.
 */
static inline uint32_t waiters_after_publish(const struct mrb_handle *h, _Atomic uint32_t *waiters)
{
	if ((h->barriers & MRB_BARRIER_GLOBAL) != 0) {
		atomic_signal_fence(memory_order_seq_cst);
		return atomic_load_explicit(waiters, memory_order_relaxed);
	}
	return atomic_fetch_add_explicit(waiters, 0, memory_order_seq_cst);
}

/* Adds the messages and bytes read since the last publish to a reader's
 * shared counters. Single writer (the reading handle): plain add, no RMW. */
static inline void publish_read_counters(struct mrb_handle *h, _Atomic uint64_t *messages,
                                         _Atomic uint64_t *bytes)
{
	if (h->unpublished_messages == 0)
		return;
	uint64_t m = atomic_load_explicit(messages, memory_order_relaxed);
	uint64_t b = atomic_load_explicit(bytes, memory_order_relaxed);
	atomic_store_explicit(messages, m + h->unpublished_messages, memory_order_relaxed);
	atomic_store_explicit(bytes, b + h->unpublished_bytes, memory_order_relaxed);
	h->unpublished_messages = 0;
	h->unpublished_bytes = 0;
}

static inline bool handle_closing(struct mrb_handle *h)
{
	return (atomic_load_explicit(&h->flags, memory_order_relaxed) & MRB_STATE_CLOSING) != 0;
}

/*
 * Reads the consumer and producer positions as a consistent pair. Two loads
 * are not a snapshot: between them others may consume and produce more than
 * a lap. The consumer position is monotonic, so if it reads the same before
 * and after the producer position, both held together at that moment and
 * must satisfy the ring invariant; if they do not, the shared memory is
 * corrupt. Returns 0 or MRB_ECORRUPT.
 */
static inline int read_positions(struct mrb_file_header *hdr, uint64_t capacity, uint64_t *head_out,
                                 uint64_t *tail_out)
{
	uint64_t head = atomic_load_explicit(&hdr->consumer_position, memory_order_seq_cst);
	for (int attempt = 0;; attempt++) {
		uint64_t tail = atomic_load_explicit(&hdr->producer_position, memory_order_seq_cst);
		uint64_t again =
		    atomic_load_explicit(&hdr->consumer_position, memory_order_seq_cst);
		/* A live consumer moving every time is not corruption; after
		 * many tries, judge the last pair, which is what a peer that
		 * keeps rewriting the position deserves. */
		if (again == head || attempt == 64) {
			*head_out = again;
			*tail_out = tail;
			if (tail - again > capacity || again % MRB_RECORD_ALIGNMENT != 0 ||
			    tail % MRB_RECORD_ALIGNMENT != 0)
				return MRB_ECORRUPT;
			return 0;
		}
		head = again;
	}
}

/* Helpers shared by the translation units (defined in util.c). */
int64_t mrbi_now_ns(void);
uint32_t mrbi_getpid(void);
/* now + timeout without overflow; a negative timeout means "never". */
int64_t mrbi_deadline(int64_t now_ns, int64_t timeout_ns);
uint64_t mrbi_random64(void);
/* Whether the processor executes PREFETCHW (x86), or has an equivalent. */
bool mrbi_cpu_prefetchw(void);
/* This process's identity (struct mrb_identity in layout.h). */
void mrbi_identity_self(struct mrb_identity *id);
/* Liveness of a process named in shared memory. Only a definite answer
 * ("no such process", or a pid now held by a process that started at
 * another time) is MRBI_DEAD; anything that cannot be checked is alive. */
enum mrbi_liveness { MRBI_ALIVE, MRBI_DEAD };
enum mrbi_liveness mrbi_liveness(const struct mrb_identity *id);
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Asymmetric barriers (barrier.c): registration at open returns the
 * MRB_BARRIER_* bits obtained; the others return 0 or -errno. */
unsigned mrbi_barrier_register(void);
int mrbi_barrier_global(void);
int mrbi_barrier_private(void);

/* Futex-style sleep on a 32-bit word in shared memory (wait.c). */
int mrbi_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);
void mrbi_futex_wake_all(_Atomic uint32_t *word);
void mrbi_futex_wake_one(_Atomic uint32_t *word);

/* Doorbells: event-loop waiting (doorbell.c). A waker that saw a non-zero
 * waiter count rings the armed doorbells of what it progressed (the
 * consumer's and subscribers' for data, the space table for room); the
 * consumer's takeover clears a dead consumer's; close disarms and closes. */
void mrbi_doorbell_ring_readers(struct mrb_handle *h);
void mrbi_doorbell_ring_space(struct mrb_handle *h);
void mrbi_doorbell_close(struct mrb_handle *h, bool in_opener);
/* A waiter's counts (wait.c, doorbell.c): the shared one wakers check, its
 * own share of it (so that a dead sleeper's can be taken back out; NULL for
 * a doorbell, whose name in shared memory is its share), and for a worker
 * its group's count (work_waiters asleep, work_armed armed). */
struct mrbi_waiter_words {
	_Atomic uint32_t *waiters;
	_Atomic uint32_t *own_share;
	_Atomic uint32_t *group_waiters;
	int64_t max_slice_ns;
};
/* Registration, the step a futex sleeper and an arming doorbell share:
 * counts in (own share, group, shared; seq_cst), then, after the waiter
 * published what it needs to (a doorbell its name), the fence and
 * membarrier before its re-check. mrbi_waiter_settle returns whether the
 * handshake is ordered; if not, wait in 1 ms slices. */
void mrbi_waiter_register(const struct mrbi_waiter_words *ww);
bool mrbi_waiter_settle(struct mrb_handle *h);
/* A doorbell's io_uring FUTEX_WAIT companion (doorbell_uring.c), so that
 * wakers in another network namespace reach it. mrbi_uring_open returns
 * NULL where io_uring cannot help (the socket alone is the doorbell);
 * otherwise mrbi_uring_fd is an epoll descriptor holding the socket and
 * the io_uring. The others accept NULL. */
#define MRB_NO_URING_BELL ((uintptr_t)1)
struct mrbi_uring_bell;
struct mrbi_uring_bell *mrbi_uring_open(int sock_fd);
void mrbi_uring_close(struct mrbi_uring_bell *b);
int mrbi_uring_fd(const struct mrbi_uring_bell *b);
/* Takes completions off the queue (the descriptor stops being readable
 * for them). */
void mrbi_uring_reap(struct mrbi_uring_bell *b);
/* After the arming's re-check found nothing: a FUTEX_WAIT on `word` for
 * `observed`, read before the waiter published its doorbell name (a waker
 * that takes the name bumps and wakes the word after: wait.c). */
void mrbi_uring_arm(struct mrbi_uring_bell *b, _Atomic uint32_t *word, uint32_t observed);
/* The wait conditions of wait.c, for doorbell.c: 0 when ready, MRB_EEMPTY /
 * MRB_EFULL when not, another code on error. */
int mrbi_ready_to_read(struct mrb_handle *h, bool *unfinished);
int mrbi_ready_to_write(struct mrb_handle *h, size_t len);

/* Sixteen bytes in one vector register (GNU C vector extension). */
typedef uint64_t mrb_wide_word __attribute__((vector_size(16)));

/*
 * memcpy for the payload copies of mrb_write and mrb_read: up to 64 bytes
 * as overlapping fixed-size moves, inline (a call into the C library's
 * memcpy costs about as much as the copy itself at these sizes); longer
 * through memcpy. The buffers do not overlap. Sixteen-byte moves from
 * 17 bytes on: eight-byte ones (which a caller's just-stored eight-byte
 * sequence number could be forwarded to) cost twice the store-buffer
 * entries, and the producer's stores wait in that buffer for lines the
 * consumer's core holds; measured slower (docs/BENCHMARKS.md, issue 16,
 * session 6).
 */
MRB_ALWAYS_INLINE void copy_payload(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (n - 8 <= 8) {
		uint64_t a, b;
		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
		memcpy(d, &a, 8);
		memcpy(d + n - 8, &b, 8);
	} else if (n > 64) {
		memcpy(d, s, n);
	} else if (n > 16) {
		mrb_wide_word a0, b0;
		if (n > 32) {
			mrb_wide_word a1, b1;
			memcpy(&a1, s + 16, 16);
			memcpy(&b1, s + n - 32, 16);
			memcpy(d + 16, &a1, 16);
			memcpy(d + n - 32, &b1, 16);
		}
		memcpy(&a0, s, 16);
		memcpy(&b0, s + n - 16, 16);
		memcpy(d, &a0, 16);
		memcpy(d + n - 16, &b0, 16);
	} else {
		for (size_t i = 0; i < n; i++)
			d[i] = s[i];
	}
}

/* Producer/consumer internals shared across files. */
void mrbi_wake_consumer(struct mrb_handle *h);
/* After a commit: wakes the readers if any sleep (wait.c). The common case,
 * nobody asleep with membarrier registered, is a compiler barrier and a
 * load, inline; mrbi_wake_consumer checks again (a second read-modify-write
 * without membarrier, on the rare path that then makes a system call). */
static inline void wake_consumer(struct mrb_handle *h)
{
	if ((h->barriers & MRB_BARRIER_GLOBAL) != 0) {
		atomic_signal_fence(memory_order_seq_cst);
		if (MRB_LIKELY(
		        atomic_load_explicit(&h->header->data_waiters, memory_order_relaxed) == 0))
			return;
	}
	mrbi_wake_consumer(h);
}
void mrbi_publish_head(struct mrb_handle *h);
/* Enters a consumer call and attaches the handle as the ring's consumer
 * (MRB_ECONSUMER_BUSY if another live handle is); the leave publishes the
 * consumer position once for the whole call. */
int mrbi_consumer_enter(struct mrb_handle *h);
void mrbi_consumer_leave(struct mrb_handle *h);
void mrbi_detach_consumer(struct mrb_handle *h);
/* How eagerly mrbi_next_message reads the producer position (consumer.c). */
enum mrb_tail_mode {
	MRB_TAIL_NEVER,
	MRB_TAIL_SOMETIMES,
	MRB_TAIL_ALWAYS,
};
/* Positions the consumer on the next committed message without consuming it;
 * skips padding and, when due, recovers abandoned records. */
int mrbi_next_message(struct mrb_handle *h, enum mrb_tail_mode mode, const uint8_t **data,
                      uint64_t *len, uint64_t *next);
/* The fork guard page (fork.c); NULL where MADV_WIPEONFORK is missing. */
const _Atomic uint32_t *mrbi_fork_guard_create(void);
void mrbi_fork_guard_destroy(const _Atomic uint32_t *guard);

/* Subscribers (subscriber.c). */
void mrbi_subscriber_publish(struct mrb_handle *h);
void mrbi_subscriber_leave(struct mrb_handle *h);
/* Fan-out rings: moves the release position up to the slowest durable
 * subscriber; `short_of_space`: a producer needs room, so readers holding
 * it back are judged (dead ones freed or detached, hung evictable ones
 * evicted). */
void mrbi_fanout_release(struct mrb_handle *h, bool short_of_space);
/* A validating subscriber's read: copies the next message into buf with
 * atomic loads and checks it was not overwritten meanwhile; *position (if
 * not NULL) is the message's ring position. */
int mrbi_validated_read(struct mrb_handle *h, uint8_t *buf, size_t buf_size, size_t *len,
                        uint64_t *position);
/* A writer that found data_waiters raised: now and then, free or detach
 * the entries of subscribers that died asleep (their shares). */
void mrbi_forget_dead_sleepers(struct mrb_handle *h);
/* A call returning rc has reported a pending MRB_ELAPPED if rc is it. */
int mrbi_elapsed_reported(struct mrb_handle *h, int rc);
/* A durable subscriber reading its backlog with validation: mrb_peek
 * copies into the handle's scratch buffer (the view points there), and
 * mrb_release of such a view ends with mrbi_validated_consumed. */
int mrbi_validated_peek(struct mrb_handle *h, struct mrb_view *view);
void mrbi_validated_consumed(struct mrb_handle *h);
/* Is a message there for a validating subscriber? (0 or MRB_EEMPTY) */
int mrbi_validated_ready(struct mrb_handle *h, bool thorough, bool *unfinished);
/* Recovery in a fan-out ring is serialised by a token (the consumer owner
 * word, unused otherwise): returns true if taken. */
bool mrbi_recovery_token_take(struct mrb_handle *h);
void mrbi_recovery_token_give(struct mrb_handle *h);
/* The consumer role's owner (pid | nonce << 32) is gone for good. */
bool mrbi_consumer_dead(struct mrb_file_header *hdr, uint64_t owner);
/* The claim at the head is unfinished: maybe recover it (consumer.c). */
int mrbi_unfinished_record(struct mrb_handle *h, bool every_poll);
/* Copies n bytes out of / into memory a racing writer may change, with
 * relaxed atomic word accesses (no data race; the copy is validated after). */
void mrbi_racy_copy_out(uint8_t *dst, const uint8_t *src, size_t n);
void mrbi_racy_copy_in(uint8_t *dst, const uint8_t *src, size_t n);

/* Worker groups (workers.c). */
/* The minimum over worker groups' claim positions and workers' announced
 * ranges (UINT64_MAX if none), clamped to [release, tail] as the
 * subscribers' scan does; `except_group` (UINT32_MAX: none) is left out. */
uint64_t mrbi_workers_low(struct mrb_handle *h, uint64_t release, uint64_t tail,
                          uint32_t except_group);
/* The minimum over gating subscribers' positions (subscriber.c). */
uint64_t mrbi_subscribers_low(struct mrb_handle *h, uint64_t release, uint64_t tail);
/* A producer published and readers sleep: wake one worker per group. */
void mrbi_wake_workers(struct mrb_handle *h);
/* The worker's read calls (consumer role entered): release, then take. */
int64_t mrbi_worker_read(struct mrb_handle *h, uint8_t *buf, size_t buf_size, size_t *lengths,
                         size_t max_count);
/* Ready for a worker's wait: 0 or MRB_EEMPTY (or an error). */
int mrbi_worker_ready(struct mrb_handle *h, bool thorough, bool *unfinished);
/* The waiter words a worker sleeps on. */
void mrbi_worker_wait_words(struct mrb_handle *h, _Atomic uint32_t **seq,
                            _Atomic uint32_t **group_waiters, _Atomic uint32_t **share);
/* A worker's doorbell word and its group's count of armed doorbells. */
void mrbi_worker_doorbell(struct mrb_handle *h, struct mrb_doorbell **bell,
                          _Atomic uint32_t **group_armed, uint32_t *group_index);
void mrbi_worker_leave(struct mrb_handle *h);
/* mrb_worker_join with a test's kill point (mrb__test_worker_join): the
 * worker stops itself (SIGSTOP) there; MRBI_TEST_STOP_NONE in programs. */
#define MRBI_TEST_STOP_NONE      0u
#define MRBI_TEST_STOP_SLOT_TAKE 1u /* slot_take: the slot just made busy */
#define MRBI_TEST_STOP_SLOT_FREE 2u /* slot_free: the slot just made busy */
int mrbi_worker_join(struct mrb_ring *ring, const char *path, const char *group,
                     const struct mrb_worker_options *opts, uint32_t stop_at);

/* The sole-producer lease (lease.c). */
/* Tries to take the lease for lane 0 of the handle's slot (`lane`). */
void mrbi_lease_try_acquire(struct mrb_handle *h, struct mrb_lane *lane);
/* Takes the lease back from whoever holds it; returns when no plain claim
 * can happen any more (0), or MRB_EFULL for a call nested in a signal
 * handler that interrupted its own thread's plain claim. `lane`: the
 * producer's lane (marked while it revokes), NULL for a reader. */
int mrbi_lease_revoke(struct mrb_handle *h, struct mrb_lane *lane);
/* Gives this handle's lease back (close). */
void mrbi_lease_release(struct mrb_handle *h);
/* The producer thread found its lease taken back: claim by CAS. */
void mrbi_lease_dropped(struct mrb_handle *h);
/* CAS claims between two tries to take the lease: at least MIN, doubled
 * after every try that fails or lease that is taken back before LONG
 * bytes were claimed under it, up to MAX. */
#define MRB_LEASE_BACKOFF_MIN 64u
#define MRB_LEASE_BACKOFF_MAX (1u << 20)
#define MRB_LEASE_LONG_BYTES  (UINT64_C(256) * 1024)

/* Producer slots and lanes (slots.c). */
#define MRB_WRITER_SET MRB_CONTROL_BUSY
static inline uint64_t handle_writer_bits(const struct mrb_handle *h)
{
	return atomic_load_explicit(&h->writer, memory_order_relaxed) & ~MRB_WRITER_SET;
}
/* The handle's slot, acquired on first use: MRB_ENOSLOT if every slot is
 * owned by a live handle (or holds a dead one's unrecovered claim). */
int mrbi_slot_acquire(struct mrb_handle *h, struct mrb_producer_slot **slot);
/* Gives the slot up at close: its claims are all finished by then. */
void mrbi_slot_release(struct mrb_handle *h);
/* Takes a lane of the handle's slot for one producer call; lane0 as given
 * by producer_enter. Returns 0 or an error of mrbi_slot_acquire. The common
 * case (the producer thread, slot held) is inline: lane_take, lane_give. */
int mrbi_lane_take(struct mrb_handle *h, bool lane0, struct mrb_lane **lane);
void mrbi_lane_give(struct mrb_handle *h, bool lane0, struct mrb_lane *lane);
static inline int lane_take(struct mrb_handle *h, bool lane0, struct mrb_lane **lane)
{
	uint64_t writer = atomic_load_explicit(&h->writer, memory_order_acquire);
	if (writer != 0 && lane0) {
		*lane = &h->header->producers[control_slot(writer)].lanes[0];
		return 0;
	}
	return mrbi_lane_take(h, lane0, lane);
}
static inline void lane_give(struct mrb_handle *h, bool lane0, struct mrb_lane *lane)
{
	if (!lane0) {
		mrbi_lane_give(h, lane0, lane);
		return;
	}
	/* Release: the call's headers are visible to whoever sees the lane
	 * idle (recover.c reads lanes with acquire). */
	atomic_store_explicit(&lane->claiming, 0, memory_order_release);
}
/* Is the owner of slot `index` (of `generation` low bits, or any when
 * MRBI_ANY_GENERATION) gone for good? Reads the owner word into *owner. */
#define MRBI_ANY_GENERATION UINT32_MAX
bool mrbi_slot_writer_dead(struct mrb_handle *h, uint32_t index, uint32_t generation,
                           uint64_t *owner);
/* Takes the space-waiter shares of dead handles back out. */
void mrbi_forget_dead_waiters(struct mrb_handle *h);

/* Crash recovery of the record blocking the consumer (recover.c): returns 1
 * if the consumer can move (a record was padded or skipped), 0 if not yet,
 * or an error. hung_timeout_ns >= 0 lets it skip a live writer's claim that
 * has blocked the consumer that long. */
int mrbi_recover_head(struct mrb_handle *h, int64_t now_ns, int64_t hung_timeout_ns);
/* The hung writer's skipped claim: delivers its records late once the
 * writer is done with them (recover.c). Called by mrbi_next_message while
 * h->skipped.active or h->late_end; returns as mrbi_next_message does,
 * or MRB_EAGAIN_HEAD to read on at the head. */
#define MRB_EAGAIN_HEAD 1
int mrbi_next_late_message(struct mrb_handle *h, uint32_t slot_seen, const uint8_t **data,
                           uint64_t *len, uint64_t *next);
/* The position the consumer may release: its head, or the start of a
 * skipped or late-delivered claim behind it. */
static inline uint64_t mrbi_release_position(const struct mrb_handle *h)
{
	uint64_t pos = h->head;
	if (h->skipped.active && h->skipped.start < pos)
		pos = h->skipped.start;
	if (h->late_end != 0 && h->late_pos < pos)
		pos = h->late_pos;
	if (h->holding && h->held_at < pos)
		pos = h->held_at;
	return pos;
}

#endif /* MRB_HANDLE_H */
