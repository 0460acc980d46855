/* SPDX-License-Identifier: MIT */
/*
 * Producer slots: every writing handle owns one, so that every claim in the
 * ring can be attributed to its writer. A slot is acquired on the handle's
 * first write and released at close; the slot of a handle whose process died
 * is taken over only once nothing in the ring still needs its evidence.
 */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>

#include "handle.h"

/* Reads the identity of the slot's owner `owner` (the word already read).
 * Returns false if the slot changed hands meanwhile. */
static bool slot_identity(struct mrb_producer_slot *slot, uint64_t owner, struct mrb_identity *id)
{
	id->pid = MRB_SLOT_PID(owner);
	id->start_time = 0;
	id->pid_ns = 0;
	/* Pairs with the release store of identity_gen in take_slot: the
	 * identity fields written before it are visible. */
	if (atomic_load_explicit(&slot->identity_gen, memory_order_acquire) ==
	    MRB_SLOT_GEN(owner)) {
		id->start_time =
		    atomic_load_explicit(&slot->owner_start_time, memory_order_relaxed);
		id->pid_ns = atomic_load_explicit(&slot->owner_pid_ns, memory_order_relaxed);
	}
	return atomic_load_explicit(&slot->owner, memory_order_acquire) == owner;
}

bool mrbi_slot_writer_dead(struct mrb_handle *h, uint32_t index, uint32_t generation,
                           uint64_t *owner_out)
{
	struct mrb_producer_slot *slot = &h->header->producers[index];
	uint64_t owner = atomic_load_explicit(&slot->owner, memory_order_acquire);
	*owner_out = owner;
	/* Released, or acquired again since: the writer's handle is gone
	 * (closed or dead), so nothing it claimed will ever be finished. */
	if (MRB_SLOT_PID(owner) == 0)
		return true;
	if (generation != MRBI_ANY_GENERATION &&
	    (MRB_SLOT_GEN(owner) & MRB_CONTROL_GEN_MASK) != generation)
		return true;
	struct mrb_identity id;
	if (!slot_identity(slot, owner, &id))
		return generation != MRBI_ANY_GENERATION; /* it changed hands: see above */
	return mrbi_liveness(&id) == MRBI_DEAD;
}

/* Where everything the slot's owner ever claimed ends: its lanes hold the
 * end of each one's latest claim, and claims only move forward. A lane
 * announcing a claim whose end never appeared (its writer died right after
 * the CAS) bounds nothing: then the producer position does. */
static uint64_t claims_end(struct mrb_handle *h, struct mrb_producer_slot *slot)
{
	uint64_t tail = atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
	uint64_t end = 0;
	for (int i = 0; i < MRB_SLOT_LANES; i++) {
		uint64_t claiming =
		    atomic_load_explicit(&slot->lanes[i].claiming, memory_order_acquire);
		uint64_t claim_end =
		    atomic_load_explicit(&slot->lanes[i].claim_end, memory_order_relaxed);
		/* Untrusted: an end beyond the producer position bounds nothing. */
		if (claim_end != tail && claim_end - tail < (UINT64_C(1) << 62))
			return tail;
		if (claiming != 0 && claim_end <= (claiming & ~MRB_LANE_FLAGS))
			return tail;
		if (claim_end - end < (UINT64_C(1) << 62))
			end = claim_end;
	}
	return end;
}

/* Has the consumer passed everything the slot's last owner may have left
 * unfinished? (released_at, layout.h.) */
static bool slot_reusable(struct mrb_handle *h, struct mrb_producer_slot *slot)
{
	uint64_t since = atomic_load_explicit(&slot->released_at, memory_order_acquire);
	if (since == 0)
		return true;
	uint64_t consumed =
	    atomic_load_explicit(&h->header->consumer_position, memory_order_acquire);
	/* since is a position | 1 (so that position 0 is not "at once") */
	return consumed - (since & ~UINT64_C(1)) < (UINT64_C(1) << 62);
}

/*
 * Frees the slot of a dead owner `owner`: the one whose CAS on the owner
 * word wins takes the dead owner's share of space_waiters back out (exactly
 * once: a share is only ever subtracted by the winner of this CAS), and the
 * slot becomes reusable once the consumer has passed the current producer
 * position. Its lanes stay as they are: recovery of the dead owner's claims
 * still reads them.
 */
static bool free_dead_slot(struct mrb_handle *h, uint32_t index, uint64_t owner)
{
	struct mrb_file_header *hdr = h->header;
	struct mrb_producer_slot *slot = &hdr->producers[index];
	atomic_store_explicit(&slot->released_at, claims_end(h, slot) | 1, memory_order_relaxed);
	/* Release: a taker that sees the slot free sees released_at. */
	if (!atomic_compare_exchange_strong_explicit(&slot->owner, &owner,
	                                             owner & ~UINT64_C(0xffffffff),
	                                             memory_order_acq_rel, memory_order_relaxed))
		return false;
	uint32_t share = atomic_exchange_explicit(&slot->space_waiting, 0, memory_order_relaxed);
	if (share != 0)
		atomic_fetch_sub_explicit(&hdr->space_waiters, share, memory_order_seq_cst);
	return true;
}

static void raise_slots_used(struct mrb_file_header *hdr, uint32_t used)
{
	uint32_t seen = atomic_load_explicit(&hdr->producer_slots_used, memory_order_relaxed);
	while (seen < used &&
	       !atomic_compare_exchange_weak_explicit(&hdr->producer_slots_used, &seen, used,
	                                              memory_order_release, memory_order_relaxed)) {
	}
}

/* CAS from `owner` (a free, reusable slot) to this handle, then publish
 * its identity. */
static bool take_slot(struct mrb_handle *h, uint32_t index, uint64_t owner)
{
	struct mrb_file_header *hdr = h->header;
	struct mrb_producer_slot *slot = &hdr->producers[index];
	uint32_t generation = MRB_SLOT_GEN(owner) + 1;
	uint64_t mine = (uint64_t)generation << 32 | h->pid;
	if (!atomic_compare_exchange_strong_explicit(&slot->owner, &owner, mine,
	                                             memory_order_acq_rel, memory_order_relaxed))
		return false;
	for (int i = 0; i < MRB_SLOT_LANES; i++) {
		atomic_store_explicit(&slot->lanes[i].claiming, 0, memory_order_relaxed);
		atomic_store_explicit(&slot->lanes[i].claim_end, 0, memory_order_relaxed);
	}
	atomic_store_explicit(&slot->owner_start_time, h->start_time, memory_order_relaxed);
	atomic_store_explicit(&slot->owner_pid_ns, h->pid_ns, memory_order_relaxed);
	/* Pairs with the acquire in slot_identity. */
	atomic_store_explicit(&slot->identity_gen, generation, memory_order_release);
	raise_slots_used(hdr, index + 1);
	return true;
}

int mrbi_slot_acquire(struct mrb_handle *h, struct mrb_producer_slot **slot_out)
{
	struct mrb_producer_slot *slots = h->header->producers;
	uint64_t writer = atomic_load_explicit(&h->writer, memory_order_acquire);
	if (writer != 0) {
		*slot_out = &slots[control_slot(writer)];
		return 0;
	}
	/* First pass: free slots; second: free the slots of dead owners on
	 * the way, then take any that is reusable. */
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < MRB_PRODUCER_SLOTS; i++) {
			uint64_t owner =
			    atomic_load_explicit(&slots[i].owner, memory_order_acquire);
			if (MRB_SLOT_PID(owner) != 0) {
				uint64_t seen;
				if (pass == 0 ||
				    !mrbi_slot_writer_dead(h, i, MRBI_ANY_GENERATION, &seen) ||
				    seen != owner || !free_dead_slot(h, i, owner))
					continue;
				owner &= ~UINT64_C(0xffffffff);
			}
			if (!slot_reusable(h, &slots[i]) || !take_slot(h, i, owner))
				continue;
			/* Several threads of the handle may race here on its first
			 * write; the first to set h->writer keeps its slot. */
			uint64_t mine =
			    writer_bits_of_slot(i, MRB_SLOT_GEN(owner) + 1) | MRB_WRITER_SET;
			uint64_t expected = 0;
			if (atomic_compare_exchange_strong_explicit(&h->writer, &expected, mine,
			                                            memory_order_acq_rel,
			                                            memory_order_acquire)) {
				*slot_out = &slots[i];
				return 0;
			}
			uint64_t taken =
			    atomic_load_explicit(&slots[i].owner, memory_order_relaxed);
			atomic_store_explicit(&slots[i].released_at, 0, memory_order_relaxed);
			atomic_store_explicit(&slots[i].owner, taken & ~UINT64_C(0xffffffff),
			                      memory_order_release);
			*slot_out = &slots[control_slot(expected)];
			return 0;
		}
	}
	return MRB_ENOSLOT;
}

void mrbi_slot_release(struct mrb_handle *h)
{
	uint64_t writer = atomic_load_explicit(&h->writer, memory_order_acquire);
	if (writer == 0)
		return;
	struct mrb_producer_slot *slot = &h->header->producers[control_slot(writer)];
	/* Before the lanes go idle: no claim of ours is open any more. */
	mrbi_lease_release(h);
	for (int i = 0; i < MRB_SLOT_LANES; i++)
		atomic_store_explicit(&slot->lanes[i].claiming, 0, memory_order_release);
	atomic_store_explicit(&slot->identity_gen, 0, memory_order_relaxed);
	atomic_store_explicit(&slot->owner_start_time, 0, memory_order_relaxed);
	atomic_store_explicit(&slot->owner_pid_ns, 0, memory_order_relaxed);
	/* Open reservations stay BUSY in the ring, naming this slot and
	 * generation: the slot is not reused before the consumer passed them. */
	uint64_t since = 0;
	if (atomic_load_explicit(&h->reservations_open, memory_order_acquire) != 0)
		since = claims_end(h, slot) | 1;
	atomic_store_explicit(&slot->released_at, since, memory_order_relaxed);
	uint64_t mine = atomic_load_explicit(&slot->owner, memory_order_relaxed);
	/* Keep the generation: records of this handle still BUSY (abandoned
	 * reservations) then name a released slot, which recovery pads. */
	if (MRB_SLOT_PID(mine) == h->pid)
		atomic_compare_exchange_strong_explicit(&slot->owner, &mine,
		                                        mine & ~UINT64_C(0xffffffff),
		                                        memory_order_release, memory_order_relaxed);
	atomic_store_explicit(&h->writer, 0, memory_order_relaxed);
}

int mrbi_lane_take(struct mrb_handle *h, bool lane0, struct mrb_lane **lane)
{
	struct mrb_producer_slot *slot;
	int rc = mrbi_slot_acquire(h, &slot);
	if (rc != 0)
		return rc;
	if (lane0) {
		*lane = &slot->lanes[0];
		return 0;
	}
	/* More threads in producer calls on one handle than lanes: wait for
	 * one of them to finish its call (each holds a lane for one call). */
	for (unsigned spins = 0;; spins++) {
		uint32_t busy = atomic_load_explicit(&h->lanes_busy, memory_order_relaxed);
		uint32_t free_lanes =
		    ~busy & (((UINT32_C(1) << MRB_SLOT_LANES) - 1) & ~UINT32_C(1));
		if (free_lanes != 0) {
			uint32_t bit = free_lanes & -free_lanes;
			if (atomic_compare_exchange_weak_explicit(&h->lanes_busy, &busy, busy | bit,
			                                          memory_order_acquire,
			                                          memory_order_relaxed)) {
				*lane = &slot->lanes[__builtin_ctz(bit)];
				return 0;
			}
			continue;
		}
		if (spins < 64)
			cpu_relax();
		else
			sched_yield();
	}
}

void mrbi_lane_give(struct mrb_handle *h, bool lane0, struct mrb_lane *lane)
{
	/* Release: the call's headers are visible to whoever sees the lane
	 * idle (recover.c reads lanes with acquire). */
	atomic_store_explicit(&lane->claiming, 0, memory_order_release);
	if (lane0)
		return;
	struct mrb_producer_slot *slot =
	    &h->header
	         ->producers[control_slot(atomic_load_explicit(&h->writer, memory_order_relaxed))];
	uint32_t bit = UINT32_C(1) << (uint32_t)(lane - slot->lanes);
	atomic_fetch_and_explicit(&h->lanes_busy, ~bit, memory_order_release);
}

void mrbi_forget_dead_waiters(struct mrb_handle *h)
{
	uint32_t used = atomic_load_explicit(&h->header->producer_slots_used, memory_order_acquire);
	if (used > MRB_PRODUCER_SLOTS)
		used = MRB_PRODUCER_SLOTS;
	for (uint32_t i = 0; i < used; i++) {
		struct mrb_producer_slot *slot = &h->header->producers[i];
		if (atomic_load_explicit(&slot->space_waiting, memory_order_relaxed) == 0)
			continue;
		uint64_t owner;
		/* Freeing the slot is what takes its share out: never a CAS on
		 * the share itself, which a new owner may have raised meanwhile. */
		if (mrbi_slot_writer_dead(h, i, MRBI_ANY_GENERATION, &owner) &&
		    MRB_SLOT_PID(owner) != 0)
			free_dead_slot(h, i, owner);
	}
}
