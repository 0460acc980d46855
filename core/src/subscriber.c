/* SPDX-License-Identifier: MIT */
/*
 * Subscribers: several readers of one stream (docs/FORMAT.md section 8).
 *
 * Each subscriber owns an entry of the reader table and reads with the
 * consumer's read path against its own position. In a fan-out ring the
 * ring's consumer_position is the release position R: the minimum over the
 * gating entries (durable subscribers), moved up by a CAS whenever the
 * slowest of them moves or a producer runs short of space. Producers keep
 * reading R exactly as they read a consumer's position, so their path does
 * not change.
 *
 * Three rules make this safe without locks:
 *  - R only moves up to a position every gating entry has reached, and a
 *    gating entry only moves past records it has seen committed (a joiner
 *    gates from a point behind the live end and passes over the records in
 *    between unread), so no claim still being written is ever released.
 *  - A joiner publishes its entry before it reads R and the producer
 *    position P (seq_cst on both sides): a mover that missed the entry
 *    moves R to at most P, and only from the R the joiner read (its CAS
 *    expects an older value), so at most once. A joiner at P is safe; one
 *    behind it validates until it reaches P, and one from the oldest
 *    message settles before it hands anything over (settle_join).
 *  - A mover re-scans after each successful CAS and a subscriber re-reads R
 *    after publishing its position, so a move that raced with a publish is
 *    never left undone.
 *
 * Lossy and evictable subscribers may be overwritten while they copy, so
 * they copy with relaxed atomic words and then check the producer position:
 * a record at p is intact unless producers claimed past p + capacity. So
 * does a durable one behind the live end (from the oldest message, or
 * resuming a name) until it reaches it. Each counts itself in
 * validating_readers for as long as it copies that way, so that producers
 * store payloads with atomic words too and hold no lease
 * (count_validating).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

/* How long an entry must hold producers back before its owner's liveness
 * is checked (a /proc read), and how often a handle checks at most. */
#define MRB_READER_STALL_CHECK_NS 10000000

/* An owner word with this bit set: the entry is being freed by the process
 * whose pid is in bits 0-30 (pids are below 2^22) and whose pid namespace
 * (its inode number, 32 bits; 0 unknown) is in bits 32-63. Nobody else
 * takes it over while that process lives; if it died half-way, whoever
 * finds it finishes the freeing (entry_free). */
#define MRB_OWNER_FREEING_BIT (UINT64_C(1) << 31)

static bool owner_freeing(uint64_t owner)
{
	return (owner & MRB_OWNER_FREEING_BIT) != 0;
}

static struct mrb_reader_entry *entry_at(struct mrb_handle *h, uint32_t i)
{
	return &h->header->entries[i];
}

static uint32_t entries_used(const struct mrb_handle *h)
{
	uint32_t used =
	    atomic_load_explicit(&h->header->readers.entries_used, memory_order_acquire);
	return used < MRB_READER_ENTRIES ? used : MRB_READER_ENTRIES;
}

static bool entry_gates(uint32_t state, uint32_t flags)
{
	return (flags & MRB_ENTRY_LOSSY) == 0 &&
	       (state == MRB_ENTRY_JOINING || state == MRB_ENTRY_ACTIVE ||
	        state == MRB_ENTRY_DETACHED);
}

static int validated_next(struct mrb_handle *h, bool thorough, uint64_t *length_out,
                          bool *unfinished);

/* The entry flags that count it in validating_readers: a lossy or
 * evictable reader for as long as it has the entry, a durable one behind
 * the live end until it reaches it (VALIDATING). At most one is set. */
#define MRB_ENTRY_COUNTED (MRB_ENTRY_LOSSY | MRB_ENTRY_EVICT | MRB_ENTRY_VALIDATING)

/* ---- Validating readers ------------------------------------------------- */

/*
 * A reader about to copy space that producers may be writing counts itself
 * in validating_readers (seq_cst), then revokes the sole-producer lease
 * (lease.c: copies are validated against CAS claims only), both before its
 * join point reads R. A producer can only write into space such a reader
 * copies once R has moved past the R that join point read, by a CAS that
 * comes after that read (seq_cst); the producer reads R (or a position
 * that R's move made possible) before its claim and the count after it,
 * seq_cst (producer.c payload_copy), so it finds the count and stores
 * atomic words. The count is in the entry's flags right after the
 * increment, before the revocation (which may wait for a stopped holder):
 * whoever frees the entry takes the count out (entry_free). A kill in the
 * few instructions between the increment and the flags leaves it high
 * (slower, never unsafe).
 */
static void count_validating(struct mrb_handle *h)
{
	atomic_fetch_add_explicit(&h->header->validating_readers, 1, memory_order_seq_cst);
}

static void revoke_for_copies(struct mrb_handle *h)
{
	mrbi_lease_revoke(h, NULL);
}

/* Never below zero, whatever a hostile count says. seq_cst (so release):
 * a producer that reads the lower count comes after this reader's last
 * copy, and may store plainly. */
static void uncount_validating(struct mrb_handle *h)
{
	uint32_t cur = atomic_load_explicit(&h->header->validating_readers, memory_order_relaxed);
	while (cur != 0 &&
	       !atomic_compare_exchange_weak_explicit(&h->header->validating_readers, &cur, cur - 1,
	                                              memory_order_seq_cst, memory_order_relaxed)) {
	}
}

/*
 * A durable reader that was behind the live end reached it (or leaves): it
 * copies no space that producers may write any more. Its entry's
 * VALIDATING flag is cleared by a read-modify-write, as entry_free clears
 * it, so that the count is taken out once. If the entry was taken from
 * this handle (judged dead), whoever took it took the count with it.
 */
static void backlog_done(struct mrb_handle *h)
{
	if ((h->reader_flags & MRB_ENTRY_VALIDATING) == 0)
		return;
	h->reader_flags &= ~MRB_ENTRY_VALIDATING;
	struct mrb_reader_entry *e = h->entry;
	if (atomic_load_explicit(&e->owner, memory_order_acquire) != h->owner_token)
		return;
	uint32_t old =
	    atomic_fetch_and_explicit(&e->flags, ~MRB_ENTRY_VALIDATING, memory_order_seq_cst);
	if ((old & MRB_ENTRY_VALIDATING) != 0)
		uncount_validating(h);
}

/* ---- Names -------------------------------------------------------------- */

static void name_words(const char *name, uint64_t words[MRB_READER_NAME_WORDS])
{
	memset(words, 0, MRB_READER_NAME_WORDS * sizeof(uint64_t));
	if (name != NULL)
		memcpy(words, name, strlen(name));
}

static bool entry_has_name(struct mrb_reader_entry *e, const uint64_t words[MRB_READER_NAME_WORDS])
{
	for (int w = 0; w < MRB_READER_NAME_WORDS; w++)
		if (atomic_load_explicit(&e->name[w], memory_order_relaxed) != words[w])
			return false;
	return true;
}

/* The name as a C string; untrusted bytes, so always terminated. */
static void entry_name(struct mrb_reader_entry *e, char out[MRB_SUBSCRIBER_NAME_MAX + 1])
{
	uint64_t words[MRB_READER_NAME_WORDS];
	for (int w = 0; w < MRB_READER_NAME_WORDS; w++)
		words[w] = atomic_load_explicit(&e->name[w], memory_order_relaxed);
	memcpy(out, words, MRB_SUBSCRIBER_NAME_MAX);
	out[MRB_SUBSCRIBER_NAME_MAX] = '\0';
}

/* ---- Owners ------------------------------------------------------------- */

static bool entry_owner_dead(struct mrb_reader_entry *e, uint64_t owner)
{
	if (owner == 0)
		return true;
	if (owner_freeing(owner)) {
		/* By the pid and namespace in the word (the entry's identity
		 * is the owner's): another namespace's freer is alive. */
		struct mrb_identity freer = {.pid = (uint32_t)(owner & ~MRB_OWNER_FREEING_BIT),
		                             .pid_ns = owner >> 32};
		if (freer.pid == 0 || freer.pid > MRB_MAX_PID)
			return true;
		return mrbi_liveness(&freer) == MRBI_DEAD;
	}
	struct mrb_identity id = {.pid = (uint32_t)owner};
	id.start_time = atomic_load_explicit(&e->owner_start_time, memory_order_relaxed);
	id.pid_ns = atomic_load_explicit(&e->owner_pid_ns, memory_order_relaxed);
	/* The identity is the owner's only if the owner did not change
	 * meanwhile; otherwise judge by the pid alone. */
	if (atomic_load_explicit(&e->owner, memory_order_acquire) != owner)
		id.start_time = id.pid_ns = 0;
	if (id.pid == 0 || id.pid > MRB_MAX_PID)
		return true;
	return mrbi_liveness(&id) == MRBI_DEAD;
}

static void entry_clear_identity(struct mrb_reader_entry *e)
{
	atomic_store_explicit(&e->owner_start_time, 0, memory_order_relaxed);
	atomic_store_explicit(&e->owner_pid_ns, 0, memory_order_relaxed);
}

static void entry_set_identity(struct mrb_handle *h, struct mrb_reader_entry *e)
{
	atomic_store_explicit(&e->owner_start_time, h->start_time, memory_order_relaxed);
	atomic_store_explicit(&e->owner_pid_ns, h->pid_ns, memory_order_relaxed);
}

/* A dead owner's sleepers never leave data_waiters: take its share back
 * out, or every write would pay a futex wake-up for it forever. */
static void take_back_share(struct mrb_handle *h, struct mrb_reader_entry *e)
{
	uint32_t share = atomic_exchange_explicit(&e->data_waiting, 0, memory_order_relaxed);
	if (share == 0)
		return;
	/* Never below zero, whatever a hostile share says. */
	uint32_t cur = atomic_load_explicit(&h->header->data_waiters, memory_order_relaxed);
	while (cur != 0 && !atomic_compare_exchange_weak_explicit(
	                       &h->header->data_waiters, &cur, cur > share ? cur - share : 0,
	                       memory_order_seq_cst, memory_order_relaxed)) {
	}
}

/* Gives an entry back to the free pool, with its waiter share and its
 * place in the validating count, if its owner is still `owner` (a dead
 * handle's token, 0 for a detached entry, or the freeing word of a process
 * that died freeing it: this finishes its work). False if someone took it. */
static bool entry_free(struct mrb_handle *h, struct mrb_reader_entry *e, uint64_t owner)
{
	if ((owner_freeing(owner) && !entry_owner_dead(e, owner)) ||
	    !atomic_compare_exchange_strong_explicit(
	        &e->owner, &owner, (h->pid_ns & UINT32_MAX) << 32 | MRB_OWNER_FREEING_BIT | h->pid,
	        memory_order_acq_rel, memory_order_relaxed))
		return false;
	/* Exchanged, so that a freer that finishes a dead one's work does not
	 * count the entry out of validating_readers twice. */
	uint32_t flags = atomic_exchange_explicit(&e->flags, 0, memory_order_relaxed);
	take_back_share(h, e);
	if ((flags & MRB_ENTRY_COUNTED) != 0)
		uncount_validating(h);
	for (int w = 0; w < MRB_READER_NAME_WORDS; w++)
		atomic_store_explicit(&e->name[w], 0, memory_order_relaxed);
	atomic_store_explicit(&e->flags, 0, memory_order_relaxed);
	atomic_store_explicit(&e->stall_position, 0, memory_order_relaxed);
	atomic_store_explicit(&e->stall_since_ns, 0, memory_order_relaxed);
	/* A mover that sees the next joiner's JOINING before its provisional
	 * position must read a position behind R (it counts as R), never the
	 * last owner's, which could let R pass the joiner's start. */
	atomic_store_explicit(&e->position, 0, memory_order_relaxed);
	entry_clear_identity(e);
	atomic_store_explicit(&e->owner, 0, memory_order_relaxed);
	/* Release: a joiner that takes the entry sees it cleared. */
	atomic_store_explicit(&e->state, MRB_ENTRY_FREE, memory_order_seq_cst);
	return true;
}

/* A dead owner's named entry keeps its place: state first, owner second,
 * so that a resumer that took the owner meanwhile finds ACTIVE again. */
static void detach_dead(struct mrb_handle *h, struct mrb_reader_entry *e, uint32_t state,
                        uint64_t owner)
{
	if (state != MRB_ENTRY_ACTIVE ||
	    !atomic_compare_exchange_strong_explicit(&e->state, &state, MRB_ENTRY_DETACHED,
	                                             memory_order_seq_cst, memory_order_relaxed))
		return;
	if (!atomic_compare_exchange_strong_explicit(&e->owner, &owner, 0, memory_order_acq_rel,
	                                             memory_order_relaxed)) {
		state = MRB_ENTRY_DETACHED;
		atomic_compare_exchange_strong_explicit(&e->state, &state, MRB_ENTRY_ACTIVE,
		                                        memory_order_seq_cst, memory_order_relaxed);
		return;
	}
	take_back_share(h, e);
}

void mrbi_forget_dead_sleepers(struct mrb_handle *h)
{
	int64_t now = mrbi_now_ns();
	int64_t last = atomic_load_explicit(&h->last_sleeper_audit_ns, memory_order_relaxed);
	if (now - last < MRB_READER_STALL_CHECK_NS ||
	    !atomic_compare_exchange_strong_explicit(&h->last_sleeper_audit_ns, &last, now,
	                                             memory_order_relaxed, memory_order_relaxed))
		return;
	uint32_t used = entries_used(h);
	for (uint32_t i = 0; i < used; i++) {
		struct mrb_reader_entry *e = entry_at(h, i);
		if (atomic_load_explicit(&e->data_waiting, memory_order_relaxed) == 0)
			continue;
		uint64_t owner = atomic_load_explicit(&e->owner, memory_order_acquire);
		if (owner == 0 || !entry_owner_dead(e, owner))
			continue;
		if (owner_freeing(owner)) {
			entry_free(h, e, owner); /* its freer died half-way */
			continue;
		}
		uint32_t state = atomic_load_explicit(&e->state, memory_order_acquire);
		uint32_t flags = atomic_load_explicit(&e->flags, memory_order_relaxed);
		if ((flags & MRB_ENTRY_NAMED) == 0 || state == MRB_ENTRY_JOINING) {
			/* Nobody can resume it (a lossy tap is never judged by
			 * producers short of space, so this is where it goes). */
			entry_free(h, e, owner);
		} else if (state == MRB_ENTRY_ACTIVE) {
			detach_dead(h, e, state, owner);
		} else if (state == MRB_ENTRY_EVICTED &&
		           atomic_compare_exchange_strong_explicit(
		               &e->owner, &owner, 0, memory_order_acq_rel, memory_order_relaxed)) {
			take_back_share(h, e);
		}
	}
}

/* ---- The release position (fan-out rings) -------------------------------- */

static void wake_space_waiters(struct mrb_handle *h)
{
	struct mrb_file_header *hdr = h->header;
	if (waiters_after_publish(h, &hdr->space_waiters) != 0) {
		/* Doorbells before the word, as in mrbi_wake_consumer. */
		mrbi_doorbell_ring_space(h);
		atomic_fetch_add_explicit(&hdr->space_seq, 1, memory_order_seq_cst);
		mrbi_futex_wake_all(&hdr->space_seq);
	}
}

/*
 * An entry holds R back while producers need space: judge it. A dead
 * owner's unnamed (or half-joined) entry is freed; a dead owner's named one
 * is detached (kept) or, with the evict policy, evicted; a live owner's
 * evictable entry is evicted after its timeout. Returns true if the entry
 * stopped gating.
 */
static bool judge_stalled(struct mrb_handle *h, struct mrb_reader_entry *e, uint32_t state,
                          uint64_t position, int64_t now, bool audit)
{
	/* Both words are shared: a start in the future or before the clock's
	 * epoch (hostile, or another boot's) restarts the timer. */
	int64_t since = atomic_load_explicit(&e->stall_since_ns, memory_order_relaxed);
	if (atomic_load_explicit(&e->stall_position, memory_order_relaxed) != position ||
	    since <= 0 || since > now) {
		atomic_store_explicit(&e->stall_position, position, memory_order_relaxed);
		atomic_store_explicit(&e->stall_since_ns, now, memory_order_relaxed);
		return false;
	}
	int64_t stalled = now - since;
	if (stalled < MRB_READER_STALL_CHECK_NS || !audit)
		return false;
	uint32_t flags = atomic_load_explicit(&e->flags, memory_order_relaxed);
	int64_t evict_after = atomic_load_explicit(&e->evict_after_ns, memory_order_relaxed);
	bool evictable = (flags & MRB_ENTRY_EVICT) != 0 && evict_after > 0;
	uint64_t owner = atomic_load_explicit(&e->owner, memory_order_acquire);
	if (owner_freeing(owner))
		return entry_free(h, e, owner); /* if its freer died half-way */
	bool dead = state == MRB_ENTRY_DETACHED ? true : entry_owner_dead(e, owner);
	if (dead && state != MRB_ENTRY_DETACHED) {
		if ((flags & MRB_ENTRY_NAMED) == 0 || state == MRB_ENTRY_JOINING)
			return entry_free(h, e, owner);
		if (!evictable) {
			detach_dead(h, e, state, owner);
			return false; /* kept: its messages wait for it */
		}
	} else if (!evictable || stalled < evict_after) {
		return false;
	}
	if (state == MRB_ENTRY_JOINING)
		return false; /* a live joiner is about to move on */
	if (!atomic_compare_exchange_strong_explicit(&e->state, &state, MRB_ENTRY_EVICTED,
	                                             memory_order_acq_rel, memory_order_relaxed))
		return false;
	atomic_fetch_add_explicit(&e->evictions, 1, memory_order_relaxed);
	if (dead)
		take_back_share(h, e);
	return true;
}

/*
 * The end of the run of committed records from `release`, up to `limit`:
 * R only ever passes records seen committed, so a claim still being written
 * is never released, whatever the entries say (a joiner gates from the
 * live end, behind which claims may still be unfinished). The headers are
 * read while R is `release`, so no producer can overwrite them; if R moves
 * meanwhile, the CAS that follows fails.
 */
static uint64_t committed_end(struct mrb_handle *h, uint64_t release, uint64_t limit)
{
	/* R is shared memory: a hostile one may not even be aligned for a
	 * record header's atomic words. It then stays where it is. */
	if (release % MRB_RECORD_ALIGNMENT != 0)
		return release;
	uint64_t at = release;
	while (at != limit && limit - at <= h->capacity) {
		uint64_t control;
		if (!record_observe(h, at, &control) || (control & MRB_CONTROL_BUSY) != 0)
			break;
		uint64_t size = record_checked_size(h, at, control, limit);
		if (size == 0)
			break;
		at += size;
	}
	return at;
}

/*
 * The lowest position over the gating subscribers, or UINT64_MAX if there
 * are none. A position behind R (a joiner's provisional start) or
 * implausible holds R where it is. `judge`: a producer short of space at
 * `now` may evict or forget a subscriber standing at R (judge_stalled;
 * `audit` lets it read /proc), which then holds nothing.
 */
static uint64_t gating_low(struct mrb_handle *h, uint64_t release, uint64_t tail, bool judge,
                           int64_t now, bool audit)
{
	uint64_t low = UINT64_MAX;
	uint32_t used = entries_used(h);
	for (uint32_t i = 0; i < used; i++) {
		struct mrb_reader_entry *e = entry_at(h, i);
		uint32_t state = atomic_load_explicit(&e->state, memory_order_seq_cst);
		uint32_t flags = atomic_load_explicit(&e->flags, memory_order_relaxed);
		if (!entry_gates(state, flags))
			continue;
		uint64_t p = atomic_load_explicit(&e->position, memory_order_seq_cst);
		if (p - release > tail - release || p % MRB_RECORD_ALIGNMENT != 0)
			p = release;
		if (p == release && judge && judge_stalled(h, e, state, p, now, audit))
			continue;
		if (p < low)
			low = p;
	}
	return low;
}

uint64_t mrbi_subscribers_low(struct mrb_handle *h, uint64_t release, uint64_t tail)
{
	return gating_low(h, release, tail, false, 0, false);
}

void mrbi_fanout_release(struct mrb_handle *h, bool short_of_space)
{
	struct mrb_file_header *hdr = h->header;
	uint64_t release = atomic_load_explicit(&hdr->consumer_position, memory_order_seq_cst);
	int64_t now = short_of_space ? mrbi_now_ns() : 0;
	/* Judging owners reads /proc: at most once per interval per handle,
	 * however often producers find the ring full. */
	int64_t last = atomic_load_explicit(&h->last_reader_audit_ns, memory_order_relaxed);
	bool audit =
	    short_of_space && now - last >= MRB_READER_STALL_CHECK_NS &&
	    atomic_compare_exchange_strong_explicit(&h->last_reader_audit_ns, &last, now,
	                                            memory_order_relaxed, memory_order_relaxed);
	/* Each pass either moves R (at most a lap per pass, finitely often
	 * before it meets the producers) or ends; a hostile table can only
	 * keep R where it is. */
	for (int pass = 0; pass < 64; pass++) {
		uint64_t tail = atomic_load_explicit(&hdr->producer_position, memory_order_seq_cst);
		uint64_t low =
		    gating_low(h, release, tail, short_of_space, now, audit && pass == 0);
		/* Worker groups gate too (workers.c). */
		uint64_t workers = mrbi_workers_low(h, release, tail, UINT32_MAX);
		if (workers < low)
			low = workers;
		/* With no durable subscriber, nothing holds messages for
		 * anyone: producers short of space release what is committed
		 * (a publish-subscribe ring without subscribers drops). */
		if (low == UINT64_MAX && short_of_space)
			low = tail;
		if (low == UINT64_MAX || low <= release)
			return;
		low = committed_end(h, release, low);
		if (low == release)
			return;
		if (MRB_UNLIKELY(
		        atomic_load_explicit(&h->test_release_stop, memory_order_relaxed) != 0) &&
		    atomic_exchange_explicit(&h->test_release_stop, 0, memory_order_relaxed) != 0)
			raise(SIGSTOP); /* a test's stop point (mrb__test_stop_next_release) */
		if (!atomic_compare_exchange_strong_explicit(&hdr->consumer_position, &release, low,
		                                             memory_order_seq_cst,
		                                             memory_order_seq_cst))
			continue;
		release = low;
		wake_space_waiters(h);
	}
}

/* ---- Recovery token ------------------------------------------------------ */

/* Names this handle: its entry and pid (bit 63 tells it from a consumer's). */
static uint64_t recovery_token(const struct mrb_handle *h)
{
	return UINT64_C(1) << 63 | (uint64_t)h->entry_index << 32 | h->pid;
}

bool mrbi_recovery_token_take(struct mrb_handle *h)
{
	struct mrb_file_header *hdr = h->header;
	uint64_t owner = atomic_load_explicit(&hdr->consumer_owner, memory_order_acquire);
	if (owner != 0 && !mrbi_consumer_dead(hdr, owner))
		return false;
	atomic_store_explicit(&hdr->consumer_start_time, h->start_time, memory_order_relaxed);
	atomic_store_explicit(&hdr->consumer_pid_ns, h->pid_ns, memory_order_relaxed);
	uint64_t token = recovery_token(h);
	return atomic_compare_exchange_strong_explicit(&hdr->consumer_owner, &owner, token,
	                                               memory_order_acq_rel, memory_order_acquire);
}

void mrbi_recovery_token_give(struct mrb_handle *h)
{
	uint64_t token = recovery_token(h);
	atomic_compare_exchange_strong_explicit(&h->header->consumer_owner, &token, 0,
	                                        memory_order_acq_rel, memory_order_relaxed);
}

/* ---- Joining ------------------------------------------------------------- */

/*
 * Where a new reader stands: R and the producer position, read after its
 * entry was published (seq_cst on both sides). A gating reader that starts
 * at the live end is safe from the first moment: every mover that missed
 * its entry computed a minimum over positions no greater than the producer
 * position it read before. One that starts behind the live end (from the
 * oldest message, or resuming after an eviction) may be passed by such a
 * mover, once (the mover's CAS expects the R read here or an older one),
 * so it reads with validation until it reaches the live end; R then waits
 * for it (lapped), and a from-oldest joiner that has handed nothing over
 * loses nothing (settle_join). One that copies from behind the live end
 * counted itself in validating_readers before this (count_validating).
 */
static int join_point(struct mrb_handle *h, uint64_t *release, uint64_t *tail)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (read_positions(h->header, h->capacity, release, tail) != 0)
		return MRB_ECORRUPT;
	return 0;
}

static void entry_publish_position(struct mrb_reader_entry *e, uint64_t position)
{
	atomic_store_explicit(&e->position, position, memory_order_seq_cst);
}

static int entry_find_name(struct mrb_handle *h, const uint64_t words[MRB_READER_NAME_WORDS],
                           uint32_t except)
{
	uint32_t used = entries_used(h);
	for (uint32_t i = 0; i < used; i++) {
		if (i == except)
			continue;
		struct mrb_reader_entry *e = entry_at(h, i);
		uint32_t state = atomic_load_explicit(&e->state, memory_order_seq_cst);
		if (state == MRB_ENTRY_FREE || state > MRB_ENTRY_EVICTED)
			continue;
		if ((atomic_load_explicit(&e->flags, memory_order_relaxed) & MRB_ENTRY_NAMED) == 0)
			continue;
		if (entry_has_name(e, words))
			return (int)i;
	}
	return -1;
}

/* Frees the entries of dead owners that nobody can resume (unnamed, or
 * left half-joined) and detaches dead named ones, to make room. */
static void reap_dead_entries(struct mrb_handle *h)
{
	uint32_t used = entries_used(h);
	for (uint32_t i = 0; i < used; i++) {
		struct mrb_reader_entry *e = entry_at(h, i);
		uint64_t owner = atomic_load_explicit(&e->owner, memory_order_acquire);
		if (owner_freeing(owner)) {
			entry_free(h, e, owner); /* if its freer died half-way */
			continue;
		}
		uint32_t state = atomic_load_explicit(&e->state, memory_order_acquire);
		if (state != MRB_ENTRY_JOINING && state != MRB_ENTRY_ACTIVE &&
		    state != MRB_ENTRY_EVICTED)
			continue;
		if (owner == 0 || !entry_owner_dead(e, owner))
			continue;
		uint32_t flags = atomic_load_explicit(&e->flags, memory_order_relaxed);
		if ((flags & MRB_ENTRY_NAMED) == 0 || state == MRB_ENTRY_JOINING)
			entry_free(h, e, owner);
		else
			detach_dead(h, e, state, owner);
	}
}

/* Takes a free entry: returns its index, or MRB_ENOSUB. */
static int entry_take_free(struct mrb_handle *h)
{
	for (int round = 0; round < 2; round++) {
		for (uint32_t i = 0; i < MRB_READER_ENTRIES; i++) {
			struct mrb_reader_entry *e = entry_at(h, i);
			uint32_t state = MRB_ENTRY_FREE;
			if (!atomic_compare_exchange_strong_explicit(
			        &e->state, &state, MRB_ENTRY_JOINING, memory_order_seq_cst,
			        memory_order_relaxed))
				continue;
			uint32_t used = atomic_load_explicit(&h->header->readers.entries_used,
			                                     memory_order_relaxed);
			while (used < i + 1 && !atomic_compare_exchange_weak_explicit(
			                           &h->header->readers.entries_used, &used, i + 1,
			                           memory_order_seq_cst, memory_order_relaxed)) {
			}
			return (int)i;
		}
		reap_dead_entries(h);
	}
	return MRB_ENOSUB;
}

static uint64_t new_token(struct mrb_handle *h)
{
	uint64_t nonce = mrbi_random64() << 32;
	if (nonce == 0)
		nonce = UINT64_C(1) << 32;
	return nonce | h->pid;
}

static void handle_bind(struct mrb_handle *h, uint32_t index, uint64_t token, uint32_t flags,
                        uint64_t head, uint64_t validate_until)
{
	h->entry = entry_at(h, index);
	h->entry_index = index;
	h->reader_flags = flags;
	h->owner_token = token;
	h->validating = (flags & (MRB_ENTRY_LOSSY | MRB_ENTRY_EVICT)) != 0;
	h->head = head;
	h->published_head = head;
	h->tail_cache = head;
	h->validate_until = validate_until;
	h->skip_backlog = false;
	if (head < validate_until)
		h->validating = true;
	h->unpublished_messages = 0;
	h->unpublished_bytes = 0;
	h->stuck_position = UINT64_MAX;
	h->recovery_timeout_ns = 0;
	h->holding = false;
	h->held_at = head;
	h->is_consumer = true;
}

/* How long a joiner waits for another joiner of the same name to settle. */
#define MRB_NAME_SETTLE_NS 1000000000

/*
 * Another joiner may have published the same name. Both published before
 * looking (seq_cst), so at least one sees the other. The higher index
 * always gives way to a lower one it sees. The lower index cannot know
 * whether the higher one saw it, so it waits for it to settle: freed (it
 * gave way: keep the name) or ACTIVE (it did not see us: give way). A
 * joiner that died half-way is freed; one that never settles keeps it.
 * noinline: GCC rejects a fence inlined elsewhere under -fsanitize=thread.
 */
static __attribute__((noinline)) bool name_is_ours(struct mrb_handle *h, uint32_t index,
                                                   const uint64_t words[MRB_READER_NAME_WORDS])
{
	atomic_thread_fence(memory_order_seq_cst);
	int64_t deadline = mrbi_now_ns() + MRB_NAME_SETTLE_NS;
	for (;;) {
		int other = entry_find_name(h, words, index);
		if (other < 0)
			return true;
		struct mrb_reader_entry *o = entry_at(h, (uint32_t)other);
		uint32_t state = atomic_load_explicit(&o->state, memory_order_acquire);
		if (state != MRB_ENTRY_JOINING || (uint32_t)other < index)
			return false;
		uint64_t owner = atomic_load_explicit(&o->owner, memory_order_acquire);
		if (owner != 0 && entry_owner_dead(o, owner)) {
			entry_free(h, o, owner); /* died half-way: nobody resumes it */
			continue;
		}
		if (mrbi_now_ns() > deadline)
			return false; /* a live joiner holds it: MRB_ENAMEBUSY */
		cpu_relax();
		sched_yield();
	}
}

/* A fresh entry starts at the live end, or with MRB_SUBSCRIBE_FROM_OLDEST
 * at R (join_point says how safely). */
static int join_fresh(struct mrb_handle *h, uint32_t index, uint64_t token, uint32_t flags,
                      const uint64_t words[MRB_READER_NAME_WORDS], int64_t evict_after,
                      bool from_oldest)
{
	struct mrb_reader_entry *e = entry_at(h, index);
	struct mrb_file_header *hdr = h->header;
	/* Identity first, owner second (release): a judge that reads this
	 * owner reads this identity, never the last occupant's. */
	entry_set_identity(h, e);
	atomic_store_explicit(&e->owner, token, memory_order_release);
	for (int w = 0; w < MRB_READER_NAME_WORDS; w++)
		atomic_store_explicit(&e->name[w], words[w], memory_order_relaxed);
	atomic_store_explicit(&e->evict_after_ns, evict_after, memory_order_relaxed);
	atomic_store_explicit(&e->messages_read, 0, memory_order_relaxed);
	atomic_store_explicit(&e->bytes_read, 0, memory_order_relaxed);
	atomic_store_explicit(&e->lost_bytes, 0, memory_order_relaxed);
	atomic_store_explicit(&e->lost_events, 0, memory_order_relaxed);
	atomic_store_explicit(&e->evictions, 0, memory_order_relaxed);
	atomic_store_explicit(&e->data_waiting, 0, memory_order_relaxed);
	/* A gating joiner starts behind the live end (at R). From the oldest
	 * message it copies the records up to the live end (durable and not
	 * evictable: VALIDATING, until it reaches it); otherwise it walks
	 * their headers only (atomic words), copying nothing. */
	bool gating = (flags & MRB_ENTRY_LOSSY) == 0 && h->mode == MRB_MODE_FANOUT;
	if (gating && from_oldest && (flags & MRB_ENTRY_EVICT) == 0)
		flags |= MRB_ENTRY_VALIDATING;
	if ((flags & MRB_ENTRY_COUNTED) != 0)
		count_validating(h);
	uint64_t provisional = atomic_load_explicit(&hdr->consumer_position, memory_order_seq_cst);
	entry_publish_position(e, provisional);
	atomic_store_explicit(&e->flags, flags, memory_order_seq_cst);
	if ((flags & MRB_ENTRY_COUNTED) != 0)
		revoke_for_copies(h);
	if ((flags & MRB_ENTRY_NAMED) != 0 && !name_is_ours(h, index, words)) {
		entry_free(h, e, token);
		return MRB_EAGAIN_HEAD;
	}
	uint64_t release, tail;
	int rc = join_point(h, &release, &tail);
	if (rc != 0) {
		entry_free(h, e, token);
		return rc;
	}
	/* A gating joiner starts behind the live end (at R) and walks the
	 * claims up to it without delivering them: it recovers a dead writer's
	 * claim there, which nobody else reads (join_point says why it walks
	 * with validation). A lossy one starts at the live end. */
	uint64_t start = from_oldest || gating ? release : tail;
	entry_publish_position(e, start);
	handle_bind(h, index, token, flags, start, tail);
	h->skip_backlog = !from_oldest;
	if (start == tail)
		backlog_done(h); /* nothing behind the live end */
	/* Delivering its backlog, it may be passed before it hands anything
	 * over (settle_join). An evictable one counts any pass as a loss. */
	if (gating && from_oldest && start != tail && (flags & MRB_ENTRY_EVICT) == 0)
		h->reader_flags |= MRB_READER_UNSETTLED;
	atomic_store_explicit(&e->state, MRB_ENTRY_ACTIVE, memory_order_seq_cst);
	if (gating && !from_oldest) {
		/* Walk what is committed now, so that the join holds no space
		 * it will never read; the read calls do the rest. */
		uint64_t length;
		bool unfinished;
		(void)validated_next(h, false, &length, &unfinished);
		mrbi_subscriber_publish(h);
	}
	return 0;
}

/* Takes over the named entry `index` whose owner is gone. */
static int join_existing(struct mrb_handle *h, uint32_t index, uint64_t token, uint32_t flags,
                         int64_t evict_after)
{
	struct mrb_reader_entry *e = entry_at(h, index);
	uint64_t owner = atomic_load_explicit(&e->owner, memory_order_acquire);
	if (owner_freeing(owner)) {
		entry_free(h, e, owner); /* if its freer died half-way */
		return MRB_EAGAIN_HEAD;
	}
	if (owner != 0 && !entry_owner_dead(e, owner))
		return MRB_ENAMEBUSY;
	uint32_t old_flags = atomic_load_explicit(&e->flags, memory_order_relaxed);
	if ((old_flags & MRB_ENTRY_FLAGS) != old_flags ||
	    (old_flags & MRB_ENTRY_LOSSY) != (flags & MRB_ENTRY_LOSSY))
		return MRB_EINVAL; /* a lossy name resumed as durable, or the reverse */
	/* The dead owner's identity goes first ("unknown": a judge that reads
	 * our token before our identity then judges by the pid alone, which
	 * says alive), ours only once the entry is ours: a resumer that loses
	 * the race must not leave its identity under the winner's token. */
	entry_clear_identity(e);
	if (!atomic_compare_exchange_strong_explicit(&e->owner, &owner, token, memory_order_acq_rel,
	                                             memory_order_acquire))
		return MRB_EAGAIN_HEAD;
	entry_set_identity(h, e);
	/* A predecessor killed while asleep left its share behind. */
	take_back_share(h, e);
	uint32_t state = atomic_load_explicit(&e->state, memory_order_acquire);
	if (state == MRB_ENTRY_JOINING) {
		/* Its joiner died half-way: start afresh in the same entry. */
		uint64_t words[MRB_READER_NAME_WORDS];
		for (int w = 0; w < MRB_READER_NAME_WORDS; w++)
			words[w] = atomic_load_explicit(&e->name[w], memory_order_relaxed);
		if ((old_flags & MRB_ENTRY_COUNTED) != 0)
			uncount_validating(h);
		return join_fresh(h, index, token, flags, words, evict_after, false);
	}
	/* Gating all along (kept): every mover since its join saw it. But a
	 * release that missed a from-oldest join of the entry (join_point)
	 * may still pass it once, after its owner left, or even after this
	 * resume (while R is still at that join point). Otherwise (evicted,
	 * or lossy before) the place may be gone. Either way a durable
	 * resumer validates until the live end it reads now (the late
	 * release targets at most the producer position it read before
	 * that join); one that is not evictable is counted for it
	 * (VALIDATING). */
	bool gated = (state == MRB_ENTRY_ACTIVE || state == MRB_ENTRY_DETACHED) &&
	             (old_flags & MRB_ENTRY_LOSSY) == 0 && h->mode == MRB_MODE_FANOUT;
	if ((flags & (MRB_ENTRY_LOSSY | MRB_ENTRY_EVICT)) == 0)
		flags |= MRB_ENTRY_VALIDATING;
	/* The policy is the joiner's: a restart may change it. A dead
	 * predecessor's count (LOSSY, EVICT, or VALIDATING if it died
	 * behind the live end) is the entry's: kept, or taken out here. */
	uint32_t validating_before = old_flags & MRB_ENTRY_COUNTED;
	uint32_t validating_now = flags & MRB_ENTRY_COUNTED;
	if (validating_before == 0 && validating_now != 0)
		count_validating(h);
	atomic_store_explicit(&e->evict_after_ns, evict_after, memory_order_relaxed);
	atomic_store_explicit(&e->flags, flags, memory_order_seq_cst);
	if (validating_before == 0 && validating_now != 0)
		revoke_for_copies(h);
	if (validating_before != 0 && validating_now == 0)
		uncount_validating(h);
	uint64_t head = atomic_load_explicit(&e->position, memory_order_acquire);
	uint64_t release, tail;
	if (join_point(h, &release, &tail) != 0)
		return MRB_ECORRUPT;
	bool sane = head % MRB_RECORD_ALIGNMENT == 0 && tail - head <= h->capacity;
	uint64_t resume = head;
	if (gated) {
		/* Behind R only if a release that missed a from-oldest join
		 * passed the entry after its owner left (join_point): what
		 * was skipped is a loss, reported, and it resumes at R (a
		 * position behind R counts as R: R waited for the entry).
		 * Misaligned, or ahead of the producers: corrupt. */
		if (head % MRB_RECORD_ALIGNMENT != 0 || (head >= release && !sane))
			return MRB_ECORRUPT;
		if (head < release)
			resume = release;
	} else if ((flags & MRB_ENTRY_LOSSY) != 0) {
		if (!sane) /* lapped while away: a lap behind the live end */
			resume = tail - (tail & h->mask);
	} else if (!sane || head < release) {
		resume = release; /* evicted and overwritten meanwhile */
	}
	bool lost = resume != head;
	if (lost) {
		if (head < resume && resume - head <= (UINT64_C(1) << 62))
			atomic_fetch_add_explicit(&e->lost_bytes, resume - head,
			                          memory_order_relaxed);
		atomic_fetch_add_explicit(&e->lost_events, 1, memory_order_relaxed);
	}
	entry_publish_position(e, resume);
	handle_bind(h, index, token, flags, resume, tail);
	if (resume == tail)
		backlog_done(h); /* nothing behind the live end */
	h->elapsed_pending = lost && (flags & MRB_ENTRY_LOSSY) == 0;
	atomic_store_explicit(&e->state, MRB_ENTRY_ACTIVE, memory_order_seq_cst);
	return 0;
}

static int subscribe_options(const struct mrb_subscribe_options *opts, uint32_t *flags,
                             uint64_t words[MRB_READER_NAME_WORDS], int64_t *evict_after,
                             bool *from_oldest)
{
	*flags = 0;
	*evict_after = 0;
	*from_oldest = false;
	name_words(NULL, words);
	if (opts == NULL)
		return 0;
	const unsigned known =
	    MRB_SUBSCRIBE_LOSSY | MRB_SUBSCRIBE_EVICT | MRB_SUBSCRIBE_FROM_OLDEST;
	if ((opts->flags & ~known) != 0)
		return MRB_EINVAL;
	bool lossy = (opts->flags & MRB_SUBSCRIBE_LOSSY) != 0;
	bool evict = (opts->flags & MRB_SUBSCRIBE_EVICT) != 0;
	if (lossy && evict)
		return MRB_EINVAL;
	if (evict != (opts->evict_after_ns > 0) || opts->evict_after_ns < 0)
		return MRB_EINVAL;
	if (opts->name != NULL && opts->name[0] != '\0') {
		if (strlen(opts->name) > MRB_SUBSCRIBER_NAME_MAX)
			return MRB_EINVAL;
		name_words(opts->name, words);
		*flags |= MRB_ENTRY_NAMED;
	}
	if (lossy)
		*flags |= MRB_ENTRY_LOSSY;
	if (evict)
		*flags |= MRB_ENTRY_EVICT;
	*evict_after = opts->evict_after_ns;
	*from_oldest = (opts->flags & MRB_SUBSCRIBE_FROM_OLDEST) != 0;
	return 0;
}

static int join(struct mrb_handle *h, const struct mrb_subscribe_options *opts)
{
	uint32_t flags;
	uint64_t words[MRB_READER_NAME_WORDS];
	int64_t evict_after;
	bool from_oldest;
	int rc = subscribe_options(opts, &flags, words, &evict_after, &from_oldest);
	if (rc != 0)
		return rc;
	if (h->mode != MRB_MODE_FANOUT && (flags & MRB_ENTRY_LOSSY) == 0)
		return MRB_EMODE;
	uint64_t token = new_token(h);
	/* Dead owners' entries that nobody can resume go first (a named one
	 * is detached): otherwise only producers short of space judge them,
	 * and a dead unnamed entry would hold R for good on a ring whose
	 * producers have stopped. This joiner's walk then moves R. */
	reap_dead_entries(h);
	/* A name race costs one retry each; a hostile table cannot loop us. */
	for (int attempt = 0; attempt < 1000; attempt++) {
		if ((flags & MRB_ENTRY_NAMED) != 0) {
			int found = entry_find_name(h, words, UINT32_MAX);
			if (found >= 0) {
				rc = join_existing(h, (uint32_t)found, token, flags, evict_after);
				if (rc == MRB_EAGAIN_HEAD)
					continue;
				return rc;
			}
		}
		int index = entry_take_free(h);
		if (index < 0)
			return index;
		rc = join_fresh(h, (uint32_t)index, token, flags, words, evict_after, from_oldest);
		if (rc != MRB_EAGAIN_HEAD)
			return rc;
	}
	return MRB_ENAMEBUSY;
}

int mrb_subscribe(struct mrb_ring *ring, const char *path, const struct mrb_subscribe_options *opts)
{
	if (ring == NULL || path == NULL)
		return MRB_EINVAL;
	int rc = mrb_open(ring, path, 0);
	if (rc != 0)
		return rc;
	struct mrb_handle *h = handle_of(ring);
	rc = join(h, opts);
	if (rc == 0 && opts != NULL && (opts->flags & MRB_SUBSCRIBE_FROM_OLDEST) != 0)
		h->from_oldest = true;
	if (rc != 0) {
		h->is_consumer = false;
		h->entry = NULL;
		mrb_close(ring);
		memset(ring, 0, sizeof(*ring));
		return rc;
	}
	return 0;
}

/* ---- Reading ------------------------------------------------------------- */

/* The entry was evicted while this handle still reads: gate again. An
 * evictable reader validates every copy, so it stays where it is and the
 * lap check reports what producers overwrote meanwhile. */
static void rejoin_after_eviction(struct mrb_handle *h)
{
	struct mrb_reader_entry *e = h->entry;
	if (atomic_load_explicit(&e->owner, memory_order_acquire) != h->owner_token) {
		/* Taken from us (we were judged dead): nothing to gate with. */
		h->validating = true;
		h->reader_flags |= MRB_ENTRY_LOSSY;
		return;
	}
	uint32_t state = MRB_ENTRY_EVICTED;
	entry_publish_position(e, h->head);
	atomic_compare_exchange_strong_explicit(&e->state, &state, MRB_ENTRY_ACTIVE,
	                                        memory_order_seq_cst, memory_order_relaxed);
}

void mrbi_subscriber_publish(struct mrb_handle *h)
{
	struct mrb_reader_entry *e = h->entry;
	uint64_t release = mrbi_release_position(h);
	if (release == h->published_head && h->unpublished_messages == 0)
		return;
	publish_read_counters(h, &e->messages_read, &e->bytes_read);
	uint64_t old = h->published_head;
	h->published_head = release;
	if ((h->reader_flags & MRB_ENTRY_LOSSY) != 0) {
		atomic_store_explicit(&e->position, release, memory_order_relaxed);
		return;
	}
	/* seq_cst, and R read after it: either a mover's re-scan sees this
	 * position, or this load sees the R the mover set (see the top). */
	entry_publish_position(e, release);
	if (atomic_load_explicit(&e->state, memory_order_acquire) == MRB_ENTRY_EVICTED)
		rejoin_after_eviction(h);
	if (h->mode != MRB_MODE_FANOUT)
		return;
	uint64_t r = atomic_load_explicit(&h->header->consumer_position, memory_order_seq_cst);
	if (r >= old && r < release)
		mrbi_fanout_release(h, false);
}

void mrbi_subscriber_leave(struct mrb_handle *h)
{
	struct mrb_reader_entry *e = h->entry;
	uint64_t token = h->owner_token;
	/* Inside its backlog still: it copies nothing more. A named entry
	 * kept for a resumer keeps no count (a resumer counts itself). */
	backlog_done(h);
	uint32_t state = atomic_load_explicit(&e->state, memory_order_acquire);
	if ((h->reader_flags & MRB_ENTRY_NAMED) != 0) {
		/* Named: keep the place (and, unless evicted, the space). */
		if (state == MRB_ENTRY_ACTIVE)
			atomic_compare_exchange_strong_explicit(
			    &e->state, &state, MRB_ENTRY_DETACHED, memory_order_seq_cst,
			    memory_order_relaxed);
		atomic_compare_exchange_strong_explicit(&e->owner, &token, 0, memory_order_acq_rel,
		                                        memory_order_relaxed);
	} else {
		entry_free(h, e, token);
	}
	if (h->mode == MRB_MODE_FANOUT)
		mrbi_fanout_release(h, false);
	free(h->scratch);
	h->scratch = NULL;
	h->entry = NULL;
	h->is_consumer = false;
}

void mrbi_racy_copy_out(uint8_t *dst, const uint8_t *src, size_t n)
{
	/* src is 8-byte aligned (payloads follow a 16-byte header at a
	 * 16-byte boundary); the record's span covers the rounded-up tail. */
	size_t words = n / 8;
	const _Atomic uint64_t *from = (const _Atomic uint64_t *)(const void *)src;
	for (size_t i = 0; i < words; i++) {
		uint64_t w = atomic_load_explicit(&from[i], memory_order_relaxed);
		memcpy(dst + i * 8, &w, 8);
	}
	if (n % 8 != 0) {
		uint64_t w = atomic_load_explicit(&from[words], memory_order_relaxed);
		memcpy(dst + words * 8, &w, n % 8);
	}
}

void mrbi_racy_copy_in(uint8_t *dst, const uint8_t *src, size_t n)
{
	size_t words = n / 8;
	_Atomic uint64_t *to = (_Atomic uint64_t *)(void *)dst;
	for (size_t i = 0; i < words; i++) {
		uint64_t w;
		memcpy(&w, src + i * 8, 8);
		atomic_store_explicit(&to[i], w, memory_order_relaxed);
	}
	if (n % 8 != 0) {
		uint64_t w = 0;
		memcpy(&w, src + words * 8, n % 8);
		atomic_store_explicit(&to[words], w, memory_order_relaxed);
	}
}

/* A durable subscriber that is not evictable: R never passes its entry,
 * but for the one release that may miss a join (join_point). */
static bool durable_gating(const struct mrb_handle *h)
{
	return (h->reader_flags & (MRB_ENTRY_LOSSY | MRB_ENTRY_EVICT)) == 0 &&
	       h->mode == MRB_MODE_FANOUT;
}

/* R, if it is past head and a plausible place to resume: a record
 * boundary at most a lap behind the producers (R is shared memory). */
static bool release_past_head(struct mrb_handle *h, uint64_t *r_out)
{
	uint64_t r = atomic_load_explicit(&h->header->consumer_position, memory_order_seq_cst);
	uint64_t tail = atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
	if (r <= h->head || r % MRB_RECORD_ALIGNMENT != 0 || tail - r > h->capacity)
		return false;
	*r_out = r;
	return true;
}

/* A from-oldest joiner that has handed nothing over, in its own live entry:
 * a pass by a release that missed its join costs it nothing (settle_join). */
static bool join_unsettled(struct mrb_handle *h)
{
	if ((h->reader_flags & MRB_READER_UNSETTLED) == 0)
		return false;
	struct mrb_reader_entry *e = h->entry;
	return atomic_load_explicit(&e->owner, memory_order_acquire) == h->owner_token &&
	       atomic_load_explicit(&e->state, memory_order_acquire) == MRB_ENTRY_ACTIVE;
}

/*
 * A from-oldest joiner is about to hand over its first message, copied and
 * validated, head past it (or, for a peek, at it). A release that did not
 * see the entry may have taken R past its start (join_point): the messages
 * it passed were released while the joiner joined, not after, so they are
 * not owed to it. The join settles here:
 *  - `publish` (a copying read): publish head, moving R as any subscriber
 *    does. Once R has left the join point no release that missed the entry
 *    can move it any more (its CAS expects the join point), and every
 *    later one sees the entry.
 *  - R past head: it was passed. Nothing has been handed over, so it
 *    resumes at R, with no loss, and the copy is dropped (true).
 * A pass after this (R held at the join point by another reader, or by a
 * hold, while the release that missed the entry is still on its way)
 * comes after a delivery: what it overwrote is a loss (lapped).
 */
static bool settle_join(struct mrb_handle *h, bool publish)
{
	bool unsettled = join_unsettled(h);
	h->reader_flags &= ~MRB_READER_UNSETTLED;
	if (!unsettled)
		return false;
	if (publish)
		mrbi_subscriber_publish(h);
	uint64_t r;
	if (!release_past_head(h, &r))
		return false;
	h->head = r;
	h->stuck_position = UINT64_MAX;
	return true;
}

/* Producers passed head by more than a lap: skip to the oldest record
 * boundary still intact (every multiple of the capacity starts a record,
 * since no record crosses the end), and count the loss. */
static int lapped(struct mrb_handle *h, uint64_t tail)
{
	uint64_t resume = tail - (tail & h->mask);
	if (resume <= h->head)
		resume = h->head + h->capacity; /* defensive; tail - head > capacity */
	/* A durable reader that is not evictable is behind R only if a
	 * release that missed its join passed it (join_point), and R then
	 * waits for it: everything from R is intact. */
	bool passed = false;
	uint64_t r;
	if (durable_gating(h) && release_past_head(h, &r)) {
		resume = r;
		passed = true;
	}
	/* A joiner walking the claims behind its live end loses nothing, nor
	 * does a from-oldest joiner that has handed nothing over yet. */
	uint64_t from = h->head;
	if (h->skip_backlog && from < h->validate_until)
		from = h->validate_until;
	if (passed && join_unsettled(h))
		from = resume;
	h->reader_flags &= ~MRB_READER_UNSETTLED; /* R left the join point */
	h->head = resume;
	h->stuck_position = UINT64_MAX;
	if (resume <= from)
		return 0;
	uint64_t lost = resume - from;
	struct mrb_reader_entry *e = h->entry;
	atomic_fetch_add_explicit(&e->lost_bytes, lost, memory_order_relaxed);
	atomic_fetch_add_explicit(&e->lost_events, 1, memory_order_relaxed);
	/* A durable reader says so, the lossy tap only counts. The loss is
	 * pending until a call returns MRB_ELAPPED: this one, if it has read
	 * nothing yet, or the next (consumer.c, reported()). */
	if ((h->reader_flags & MRB_ENTRY_LOSSY) != 0)
		return 0;
	h->elapsed_pending = true;
	return MRB_ELAPPED;
}

/* A claim at head not committed yet: a durable reader of a fan-out ring
 * may recover it (0: it can move on); a lossy one only waits. */
static int unfinished_at_head(struct mrb_handle *h, uint64_t tail, bool thorough)
{
	if ((h->reader_flags & MRB_ENTRY_LOSSY) != 0 || h->mode != MRB_MODE_FANOUT)
		return MRB_EEMPTY;
	h->tail_cache = tail;
	return mrbi_unfinished_record(h, thorough);
}

/*
 * Finds the next committed message at or after head for a validating
 * reader, without copying: 0 with its length in *length, MRB_EEMPTY, or an
 * error. Padding is passed over.
 * `thorough` as for mrbi_next_message's MRB_TAIL_ALWAYS.
 */
static int validated_next(struct mrb_handle *h, bool thorough, uint64_t *length_out,
                          bool *unfinished)
{
	*unfinished = false;
	for (int hops = 0;; hops++) {
		uint64_t position = h->head;
		uint64_t control;
		bool seen = record_observe(h, position, &control);
		uint64_t tail =
		    atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
		if (tail % MRB_RECORD_ALIGNMENT != 0)
			return MRB_ECORRUPT;
		if (tail - position > h->capacity && tail != position) {
			if (tail - position > (UINT64_C(1) << 62))
				return MRB_ECORRUPT; /* head ahead of the producers */
			int rc = lapped(h, tail);
			if (rc != 0)
				return rc;
			continue;
		}
		if (!seen) {
			if (tail == position)
				return MRB_EEMPTY;
			*unfinished = true;
			int rc = unfinished_at_head(h, tail, thorough);
			if (rc == 0)
				continue;
			return rc;
		}
		uint64_t length = control_length(control);
		uint64_t size = record_checked_size(h, position, control, tail);
		bool pad = (control & MRB_CONTROL_PAD) != 0;
		if (size == 0 || (!pad && (length == 0 || length > h->max_message_size))) {
			/* A torn header of a record being overwritten reads as
			 * nonsense; the lap check tells that from corruption. */
			uint64_t again = atomic_load_explicit(&h->header->producer_position,
			                                      memory_order_acquire);
			if (again - position > h->capacity)
				continue;
			return MRB_ECORRUPT;
		}
		if ((control & MRB_CONTROL_BUSY) != 0) {
			*unfinished = true;
			int rc = unfinished_at_head(h, tail, thorough);
			if (rc == 0)
				continue;
			return rc;
		}
		if (pad || (h->skip_backlog && position < h->validate_until)) {
			h->head = position + size;
			if (hops > 4096) {
				/* Publish progress now and then on a long walk. */
				mrbi_subscriber_publish(h);
				hops = 0;
			}
			continue;
		}
		*length_out = length;
		return 0;
	}
}

/* A durable in-place reader that joined behind the live end reads in place
 * once it has reached it (join_point). */
static void stop_validating_if_caught_up(struct mrb_handle *h)
{
	if ((h->reader_flags & (MRB_ENTRY_LOSSY | MRB_ENTRY_EVICT)) == 0 &&
	    h->head >= h->validate_until) {
		h->validating = false;
		backlog_done(h); /* its copies are done: R waits for it now */
	}
}

int mrbi_validated_ready(struct mrb_handle *h, bool thorough, bool *unfinished)
{
	uint64_t length;
	int rc = validated_next(h, thorough, &length, unfinished);
	stop_validating_if_caught_up(h);
	return rc;
}

/* Copies the next message into buf and checks it was not overwritten
 * meanwhile, without consuming it: 0 with its position in *position_out. */
static int validated_copy(struct mrb_handle *h, uint8_t *buf, size_t buf_size, size_t *len,
                          uint64_t *position_out)
{
	for (;;) {
		uint64_t length;
		bool unfinished;
		int rc = validated_next(h, false, &length, &unfinished);
		if (rc != 0)
			return rc;
		uint64_t position = h->head;
		const uint8_t *payload = record_payload(h, position);
		*len = (size_t)length;
		if (length > buf_size) {
			/* Only if the length was real: not lapped meanwhile. */
			atomic_thread_fence(memory_order_acquire);
			uint64_t tail = atomic_load_explicit(&h->header->producer_position,
			                                     memory_order_relaxed);
			if (tail - position > h->capacity)
				continue;
			return MRB_EBUFFER_TOO_SMALL;
		}
		mrbi_racy_copy_out(buf, payload, (size_t)length);
		/* Pairs with the release fence producers put between their claim
		 * and their first store: any store of a later lap we copied
		 * comes with a producer position past this record's lap. */
		atomic_thread_fence(memory_order_acquire);
		uint64_t tail =
		    atomic_load_explicit(&h->header->producer_position, memory_order_relaxed);
		if (tail - position > h->capacity)
			continue; /* overwritten while copied: validated_next resyncs */
		*position_out = position;
		return 0;
	}
}

int mrbi_validated_read(struct mrb_handle *h, uint8_t *buf, size_t buf_size, size_t *len,
                        uint64_t *position_out)
{
	uint64_t position;
	for (;;) {
		int rc = validated_copy(h, buf, buf_size, len, &position);
		if (rc != 0) {
			/* Lapped to the live end, say: count out now, not at
			 * the next message. */
			stop_validating_if_caught_up(h);
			return rc;
		}
		h->head = position + record_span(*len);
		if ((h->reader_flags & MRB_READER_UNSETTLED) == 0 || !settle_join(h, true))
			break;
	}
	if (position_out != NULL)
		*position_out = position;
	h->unpublished_messages++;
	h->unpublished_bytes += *len;
	stop_validating_if_caught_up(h);
	return 0;
}

int mrbi_validated_peek(struct mrb_handle *h, struct mrb_view *view)
{
	if (h->scratch == NULL) {
		h->scratch = malloc((size_t)h->max_message_size);
		if (h->scratch == NULL)
			return -ENOMEM;
	}
	size_t len;
	uint64_t position;
	for (;;) {
		int rc =
		    validated_copy(h, h->scratch, (size_t)h->max_message_size, &len, &position);
		if (rc != 0) {
			stop_validating_if_caught_up(h);
			return rc;
		}
		/* A view is handed over unreleased: nothing to publish yet. */
		if ((h->reader_flags & MRB_READER_UNSETTLED) == 0 || !settle_join(h, false))
			break;
	}
	view->data = h->scratch;
	view->len = len;
	view->position = position;
	view->next = position + record_span(len);
	return 0;
}

void mrbi_validated_consumed(struct mrb_handle *h)
{
	stop_validating_if_caught_up(h);
}

/* ---- Listing ------------------------------------------------------------- */

/* Committed messages in [from, to), walking headers (for lag); stops at
 * the first record it cannot read. */
static uint64_t count_messages(struct mrb_handle *h, uint64_t from, uint64_t to)
{
	uint64_t count = 0;
	for (uint64_t at = from; at < to;) {
		uint64_t control;
		if (!record_observe(h, at, &control))
			break;
		uint64_t size = record_checked_size(h, at, control, to);
		if (size == 0)
			break;
		if ((control & MRB_CONTROL_PAD) == 0)
			count++;
		at += size;
	}
	return count;
}

static void entry_info(struct mrb_handle *h, uint32_t i, struct mrb_subscriber_info *out,
                       uint64_t tail)
{
	struct mrb_reader_entry *e = entry_at(h, i);
	memset(out, 0, sizeof(*out));
	entry_name(e, out->name);
	uint32_t flags = atomic_load_explicit(&e->flags, memory_order_relaxed);
	out->flags = ((flags & MRB_ENTRY_LOSSY) ? MRB_SUBSCRIBE_LOSSY : 0) |
	             ((flags & MRB_ENTRY_EVICT) ? MRB_SUBSCRIBE_EVICT : 0);
	out->state = (int32_t)atomic_load_explicit(&e->state, memory_order_acquire);
	uint64_t owner = atomic_load_explicit(&e->owner, memory_order_acquire);
	out->pid = owner != 0 ? (int32_t)(uint32_t)(owner & ~MRB_OWNER_FREEING_BIT) : 0;
	out->alive = owner != 0 && !entry_owner_dead(e, owner);
	out->index = i;
	out->evict_after_ns = atomic_load_explicit(&e->evict_after_ns, memory_order_relaxed);
	out->position = atomic_load_explicit(&e->position, memory_order_acquire);
	/* Walked only from a plausible position: a hostile one may not even
	 * be aligned for a record header's atomic words. */
	if (tail - out->position <= h->capacity && out->position % MRB_RECORD_ALIGNMENT == 0) {
		out->lag_bytes = tail - out->position;
		out->lag_messages = count_messages(h, out->position, tail);
	} else if (out->position < tail) {
		out->lag_bytes = tail - out->position;
	}
	out->messages_read = atomic_load_explicit(&e->messages_read, memory_order_relaxed);
	out->bytes_read = atomic_load_explicit(&e->bytes_read, memory_order_relaxed);
	out->lost_bytes = atomic_load_explicit(&e->lost_bytes, memory_order_relaxed);
	out->lost_events = atomic_load_explicit(&e->lost_events, memory_order_relaxed);
	out->evictions = atomic_load_explicit(&e->evictions, memory_order_relaxed);
}

int64_t mrb_subscribers(struct mrb_ring *ring, struct mrb_subscriber_info *out, size_t max)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || (out == NULL && max != 0))
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_STATE_CALL);
	if (rc != 0)
		return rc;
	uint64_t tail = atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
	int64_t count = 0;
	uint32_t used = entries_used(h);
	for (uint32_t i = 0; i < used; i++) {
		uint32_t state = atomic_load_explicit(&entry_at(h, i)->state, memory_order_acquire);
		if (state == MRB_ENTRY_FREE || state > MRB_ENTRY_EVICTED)
			continue;
		if ((size_t)count < max)
			entry_info(h, i, &out[count], tail);
		count++;
	}
	role_leave(h, MRB_STATE_CALL);
	return count;
}

int mrb_subscriber_info(struct mrb_ring *ring, struct mrb_subscriber_info *info)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || info == NULL)
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_STATE_CALL);
	if (rc != 0)
		return rc;
	/* The entry pointer is set before the handle is handed out and
	 * cleared only by close, which waits for this call to leave. */
	if (h->entry == NULL) {
		rc = MRB_EINVAL;
	} else {
		uint64_t tail =
		    atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
		entry_info(h, h->entry_index, info, tail);
		/* A join-time choice the table does not keep: only this handle
		 * knows it. */
		if (h->from_oldest)
			info->flags |= MRB_SUBSCRIBE_FROM_OLDEST;
	}
	role_leave(h, MRB_STATE_CALL);
	return rc;
}

int mrb_is_fanout(struct mrb_ring *ring)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL)
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_STATE_CALL);
	if (rc != 0)
		return rc;
	int fanout = h->mode == MRB_MODE_FANOUT;
	role_leave(h, MRB_STATE_CALL);
	return fanout;
}

int mrb_unsubscribe(const char *path, const char *name)
{
	if (path == NULL || name == NULL || name[0] == '\0' ||
	    strlen(name) > MRB_SUBSCRIBER_NAME_MAX)
		return MRB_EINVAL;
	struct mrb_ring ring;
	int rc = mrb_open(&ring, path, 0);
	if (rc != 0)
		return rc;
	struct mrb_handle *h = handle_of(&ring);
	uint64_t words[MRB_READER_NAME_WORDS];
	name_words(name, words);
	rc = -ENOENT;
	int found = entry_find_name(h, words, UINT32_MAX);
	if (found >= 0) {
		struct mrb_reader_entry *e = entry_at(h, (uint32_t)found);
		uint64_t owner = atomic_load_explicit(&e->owner, memory_order_acquire);
		if (owner != 0 && !entry_owner_dead(e, owner)) {
			rc = MRB_ENAMEBUSY;
		} else if (entry_free(h, e, owner)) {
			if (h->mode == MRB_MODE_FANOUT)
				mrbi_fanout_release(h, false);
			rc = 0;
		} else {
			rc = MRB_ENAMEBUSY;
		}
	}
	mrb_close(&ring);
	return rc;
}
