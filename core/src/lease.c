/* SPDX-License-Identifier: MIT */
/*
 * The sole-producer lease: while one producer thread writes to a ring alone,
 * it claims space with a plain store of the producer position instead of a
 * CAS. A locked instruction waits until every earlier store has reached its
 * line, and the lines of the previous record are on their way to the
 * consumer's core: with the CAS, each claim waited for that transfer.
 *
 * The holder, per claim: announce the claim in lane 0 (as every claim
 * does), compiler barrier, check that the lease is still its own, store the
 * producer position. Everybody else checks the word before each CAS and,
 * finding it held, revokes it: marks it REVOKING, runs
 * membarrier(GLOBAL_EXPEDITED) so that the holder's announcement is visible
 * or its check sees the mark (barrier.c), then waits until no announcement
 * stands at the producer position, which closes the holder's window. The
 * lease is taken by the producer thread of a handle at its first claim and
 * then after a backoff of CAS claims that grows while leases are taken back
 * soon (producers writing side by side) and shrinks after long ones
 * (producers taking turns on one core): CAS 0 -> HELD, membarrier, then no
 * other lane may announce a claim at the producer position (a producer that
 * checked the word before the CAS has its announcement visible by then). Readers that validate
 * their copies (lossy and evictable subscribers, workers with a hold timeout) revoke it too: their
 * reasoning needs every claim to be a seq_cst CAS. docs/FORMAT.md section 7 states the protocol;
 * tools/model/lease.pml checks it.
 */
/* glibc: nanosleep */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <time.h>

#include "handle.h"

/* While waiting for a holder's window to close: spins, then yields, then
 * sleeps, looking at its liveness at most this often. */
#define MRB_LEASE_SPINS             256
#define MRB_LEASE_YIELDS            64
#define MRB_LEASE_SLEEP_NS          50000
#define MRB_LEASE_LIVENESS_EVERY_NS 1000000
/* Without membarrier a revoker waits this long for the holder's stores to
 * drain instead (see mrbi_lease_revoke). */
#define MRB_LEASE_DRAIN_NS 1000000

static void pause_ns(int64_t ns)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = ns};
	nanosleep(&ts, NULL);
}

/* Slot index and generation of this handle's producer slot. */
static bool own_slot(struct mrb_handle *h, uint32_t *index, uint32_t *generation)
{
	uint64_t writer = atomic_load_explicit(&h->writer, memory_order_acquire);
	if (writer == 0)
		return false;
	*index = control_slot(writer);
	uint64_t owner =
	    atomic_load_explicit(&h->header->producers[*index].owner, memory_order_relaxed);
	if (MRB_SLOT_PID(owner) != h->pid)
		return false;
	*generation = MRB_SLOT_GEN(owner);
	return true;
}

/*
 * Could a claim by CAS still follow an announcement in any lane but `mine`
 * (lane 0 of the acquirer)? One at the producer position could: an
 * announcement below it belongs to a CAS that happened or will fail and
 * retry from the top, checking the lease again (the position is read after
 * the lane, so a CAS made in between is seen as made). And a lane marked
 * revoking could: its producer may be about to clear a REVOKING word that,
 * by then, marks a later round on the same holder (our own, if we take it
 * now), and then claim by CAS beside our plain claims. A dead owner's lanes
 * lead nowhere.
 */
static bool claim_may_follow(struct mrb_handle *h, uint32_t mine)
{
	struct mrb_file_header *hdr = h->header;
	uint32_t used = atomic_load_explicit(&hdr->producer_slots_used, memory_order_acquire);
	if (used > MRB_PRODUCER_SLOTS)
		used = MRB_PRODUCER_SLOTS;
	for (uint32_t i = 0; i < used; i++) {
		struct mrb_producer_slot *slot = &hdr->producers[i];
		for (int l = i == mine ? 1 : 0; l < MRB_SLOT_LANES; l++) {
			uint64_t claiming =
			    atomic_load_explicit(&slot->lanes[l].claiming, memory_order_seq_cst);
			if (claiming == 0)
				continue;
			uint64_t tail =
			    atomic_load_explicit(&hdr->producer_position, memory_order_seq_cst);
			uint64_t owner;
			if ((claiming == (tail | 1) || (claiming & MRB_LANE_REVOKING) != 0) &&
			    (i == mine ||
			     !mrbi_slot_writer_dead(h, i, MRBI_ANY_GENERATION, &owner)))
				return true;
		}
	}
	return false;
}

static uint32_t backoff_now(struct mrb_handle *h)
{
	uint32_t backoff = atomic_load_explicit(&h->lease_backoff, memory_order_relaxed);
	return backoff < MRB_LEASE_BACKOFF_MIN ? MRB_LEASE_BACKOFF_MIN : backoff;
}

/* A try failed, or a lease was taken back soon: wait twice as long. */
static void back_off(struct mrb_handle *h)
{
	uint32_t backoff = backoff_now(h);
	backoff = backoff >= MRB_LEASE_BACKOFF_MAX / 2 ? MRB_LEASE_BACKOFF_MAX : backoff * 2;
	atomic_store_explicit(&h->lease_backoff, backoff, memory_order_relaxed);
	atomic_store_explicit(&h->lease_countdown, backoff, memory_order_relaxed);
}

/* Gives a lease back outside any plain claim: held, or marked by a
 * revoker, which then finds the window closed and its own CAS failing. */
static void give_back(struct mrb_handle *h, uint64_t held)
{
	uint64_t expected = held;
	if (!atomic_compare_exchange_strong_explicit(&h->header->sole_producer, &expected, 0,
	                                             memory_order_seq_cst, memory_order_relaxed) &&
	    expected == ((held & ~MRB_LEASE_STATE) | MRB_LEASE_REVOKING))
		atomic_compare_exchange_strong_explicit(&h->header->sole_producer, &expected, 0,
		                                        memory_order_seq_cst, memory_order_relaxed);
}

void mrbi_lease_try_acquire(struct mrb_handle *h, struct mrb_lane *lane)
{
	struct mrb_file_header *hdr = h->header;
	/* A holder's revoker interrupts it with membarrier: only a process
	 * registered for it may hold the lease. */
	if ((h->barriers & MRB_BARRIER_GLOBAL) == 0) {
		atomic_store_explicit(&h->lease_countdown, MRB_LEASE_BACKOFF_MAX,
		                      memory_order_relaxed);
		return;
	}
	uint64_t mine = atomic_load_explicit(&h->lease_mine, memory_order_relaxed);
	if (mine != 0) {
		if (atomic_load_explicit(&hdr->sole_producer, memory_order_relaxed) == mine) {
			atomic_store_explicit(&h->lease_countdown, MRB_LEASE_BACKOFF_MAX,
			                      memory_order_relaxed);
			return;
		}
		mrbi_lease_dropped(h); /* taken back: try again later */
		return;
	}
	uint32_t index, generation;
	if (!own_slot(h, &index, &generation) || lane != &hdr->producers[index].lanes[0]) {
		/* Only the producer thread's outer calls claim under it. */
		atomic_store_explicit(&h->lease_countdown, backoff_now(h), memory_order_relaxed);
		return;
	}
	if (atomic_load_explicit(&hdr->sole_producer, memory_order_relaxed) != 0 ||
	    atomic_load_explicit(&hdr->validating_readers, memory_order_relaxed) != 0) {
		/* Cost nobody a revocation: no reason to wait longer. */
		atomic_store_explicit(&h->lease_countdown, backoff_now(h), memory_order_relaxed);
		return;
	}
	uint64_t held = lease_word(index, generation, MRB_LEASE_HELD);
	uint64_t expected = 0;
	if (!atomic_compare_exchange_strong_explicit(&hdr->sole_producer, &expected, held,
	                                             memory_order_seq_cst, memory_order_relaxed)) {
		back_off(h);
		return;
	}
	/* After the barrier, a producer whose lease check read 0 has its
	 * announcement visible here (claim_may_follow). A validating reader
	 * counts itself before it revokes: seq_cst on both sides orders its
	 * count and our CAS. */
	if (mrbi_barrier_global() != 0 ||
	    atomic_load_explicit(&hdr->validating_readers, memory_order_seq_cst) != 0 ||
	    claim_may_follow(h, index)) {
		give_back(h, held);
		back_off(h);
		return;
	}
	atomic_store_explicit(&h->lease_since,
	                      atomic_load_explicit(&hdr->producer_position, memory_order_relaxed),
	                      memory_order_relaxed);
	atomic_store_explicit(&h->lease_lane, lane, memory_order_relaxed);
	atomic_store_explicit(&h->lease_mine, held, memory_order_relaxed);
}

void mrbi_lease_dropped(struct mrb_handle *h)
{
	atomic_store_explicit(&h->lease_mine, 0, memory_order_relaxed);
	atomic_store_explicit(&h->lease_lane, NULL, memory_order_relaxed);
	/* Held for a scheduler slice or more (producers taking turns on one
	 * core): take it again soon. Taken back at once (producers writing
	 * side by side): each try costs a revocation, so try less often. */
	uint64_t since = atomic_load_explicit(&h->lease_since, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&h->header->producer_position, memory_order_relaxed);
	if (tail - since >= MRB_LEASE_LONG_BYTES) {
		atomic_store_explicit(&h->lease_backoff, MRB_LEASE_BACKOFF_MIN,
		                      memory_order_relaxed);
		atomic_store_explicit(&h->lease_countdown, MRB_LEASE_BACKOFF_MIN,
		                      memory_order_relaxed);
	} else {
		back_off(h);
	}
}

void mrbi_lease_release(struct mrb_handle *h)
{
	uint64_t held = atomic_load_explicit(&h->lease_mine, memory_order_relaxed);
	if (held == 0)
		return;
	give_back(h, held);
	atomic_store_explicit(&h->lease_mine, 0, memory_order_relaxed);
	atomic_store_explicit(&h->lease_lane, NULL, memory_order_relaxed);
}

/*
 * Waits until the holder `lease` names cannot be inside a plain claim: no
 * announcement of its lane 0 stands at the producer position (its claim
 * moved the position past it, or it announced nothing), or its slot passed
 * to another generation or was freed, or its process is dead. The lease
 * word is REVOKING and every holder store before the barrier is visible,
 * so a window that opens later sees the mark and claims by CAS.
 */
static void wait_window_closed(struct mrb_handle *h, uint64_t lease)
{
	uint32_t index = lease_slot(lease);
	if (index >= MRB_PRODUCER_SLOTS)
		return; /* garbage: nobody can hold it */
	uint32_t generation = (uint32_t)(lease >> 32);
	struct mrb_producer_slot *slot = &h->header->producers[index];
	int64_t last_check = 0;
	for (unsigned round = 0;; round++) {
		uint64_t owner = atomic_load_explicit(&slot->owner, memory_order_acquire);
		if (MRB_SLOT_PID(owner) == 0 || MRB_SLOT_GEN(owner) != generation)
			return;
		uint64_t claiming =
		    atomic_load_explicit(&slot->lanes[0].claiming, memory_order_acquire);
		uint64_t tail =
		    atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
		if (claiming != (tail | 1))
			return;
		if (round < MRB_LEASE_SPINS) {
			cpu_relax();
			continue;
		}
		if (round < MRB_LEASE_SPINS + MRB_LEASE_YIELDS) {
			sched_yield();
			continue;
		}
		/* A stopped or dead holder: look at its liveness now and then. */
		int64_t now = mrbi_now_ns();
		if (now - last_check >= MRB_LEASE_LIVENESS_EVERY_NS) {
			last_check = now;
			uint64_t seen;
			if (mrbi_slot_writer_dead(h, index, MRBI_ANY_GENERATION, &seen) ||
			    seen != owner)
				return;
		}
		pause_ns(MRB_LEASE_SLEEP_NS);
	}
}

int mrbi_lease_revoke(struct mrb_handle *h, struct mrb_lane *lane)
{
	_Atomic uint64_t *word = &h->header->sole_producer;
	/* The handle's producer thread (this call, or one that a signal
	 * handler running this call interrupted) holds no plain claim open
	 * that this call would have to wait for. */
	bool own_thread =
	    atomic_load_explicit(&h->producer_thread, memory_order_relaxed) == thread_self();
	/* The mark comes before the first look at the word: an acquirer
	 * that took the lease after that look sees the mark
	 * (claim_may_follow). The lane's next announcement clears it. */
	uint64_t announced = 0;
	if (lane != NULL) {
		announced = atomic_load_explicit(&lane->claiming, memory_order_relaxed);
		atomic_store_explicit(&lane->claiming, announced | MRB_LANE_REVOKING,
		                      memory_order_seq_cst);
	}
	uint64_t lease = atomic_load_explicit(word, memory_order_seq_cst);
	while (lease != 0) {
		uint32_t index, generation;
		bool mine = own_thread && own_slot(h, &index, &generation) &&
		            (lease & ~MRB_LEASE_STATE) == lease_word(index, generation, 0);
		if (mine && atomic_load_explicit(&h->in_plain_window, memory_order_relaxed) != 0) {
			/* A signal handler interrupted this thread's plain claim
			 * between its check and its store: that claim will be
			 * made from the position it read, so nothing can be
			 * claimed before it is. Checked before marking the
			 * word, which would outlive the holder's close. */
			if (lane != NULL)
				atomic_store_explicit(&lane->claiming, announced,
				                      memory_order_relaxed);
			return MRB_EFULL;
		}
		if ((lease & MRB_LEASE_STATE) == MRB_LEASE_HELD) {
			uint64_t revoking = (lease & ~MRB_LEASE_STATE) | MRB_LEASE_REVOKING;
			if (!atomic_compare_exchange_strong_explicit(
			        word, &lease, revoking, memory_order_seq_cst, memory_order_seq_cst))
				continue;
			lease = revoking;
		}
		/* Either the holder's announcement is visible after the barrier,
		 * or its check comes after the barrier and sees the mark. If
		 * the kernel refuses the barrier, a store buffer drains in far
		 * less than the pause (the window holds no system call, and a
		 * thread that is switched out has drained it). */
		if (mine) {
			mrbi_lease_dropped(h);
		} else {
			if (mrbi_barrier_global() != 0)
				pause_ns(MRB_LEASE_DRAIN_NS);
			wait_window_closed(h, lease);
		}
		uint64_t expected = lease;
		if (atomic_compare_exchange_strong_explicit(
		        word, &expected, 0, memory_order_seq_cst, memory_order_seq_cst))
			break;
		lease = expected;
	}
	/* The holder may have stopped writing (producers taking turns on one
	 * core): this producer may be alone now. */
	uint32_t backoff = backoff_now(h);
	if (atomic_load_explicit(&h->lease_countdown, memory_order_relaxed) > backoff)
		atomic_store_explicit(&h->lease_countdown, backoff, memory_order_relaxed);
	return 0;
}
