/* SPDX-License-Identifier: MIT */
/*
 * Worker groups: competing consumers in a fan-out ring (docs/FORMAT.md
 * section 9). Each message goes to one worker of a group.
 *
 * Taking: a worker reads the group's claim position c, walks the committed
 * records from c (up to what its caller's call can take), announces c in its
 * own slot (`inflight` = c | HOLDING, the range's end in claim_end first),
 * then moves the claim position from c to the run's end by CAS. A failed CAS
 * withdraws the announcement and starts again. The release position R (the
 * ring's consumer_position) is the minimum over the gating subscribers, the
 * groups' claim positions and the workers' announcements (mrbi_workers_low,
 * called by mrbi_fanout_release). The scan reads every claim position before
 * any announcement, and a worker announces before its CAS (seq_cst on both
 * sides): a scan that read the claim position after the CAS moved it reads
 * the announcement too, so R never passes a run a worker holds. Nobody waits
 * for anybody: a worker stopped anywhere holds back R, never another worker.
 *
 * Releasing: the next read call (or mrb_worker_ack, or close) moves the
 * worker's announcement past what it handed out, by CAS from the value it
 * set: a rescuer that froze the word makes that CAS fail (a refused, stale
 * release).
 *
 * Rescuing: a worker that finds another of its group holding a run for
 * longer than MRB_WORKER_CHECK_NS checks whether its process is dead (or,
 * with a hold timeout, whether it held it too long), takes the slot's rescue
 * lock (`rescuer`, a token judged by its pid), freezes the announcement
 * (| FROZEN, by CAS, so the owner's release fails from then on) and applies
 * the group's policy to exactly [inflight, claim_end): at-least-once hands
 * the run to its own caller, releasing the frozen word as it goes (the
 * frozen slot gates R until the last message is done, so no gap opens
 * between two slots); at-most-once counts the run's messages as dropped and
 * lets the word go. A dead owner's slot is then freed; a hung owner's stays
 * frozen until it comes back, is refused once, and takes new work.
 * A rescuer that dies is replaced by the next worker's audit, and with a
 * hold timeout so is one that hangs (no release for that long, as the
 * auditor saw it): the replacement advances the frozen word's generation
 * (bits 2-3) first, so the replaced rescuer's release fails.
 *
 * A worker that died between its announcement and its CAS left an
 * announcement at c: if the claim position is still at or behind c it took
 * nothing; otherwise it may have won the CAS, and the run is treated as
 * held (at-least-once may then hand out a run another worker took too;
 * at-most-once counts it dropped but never hands it out twice).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "record.h"

/* A worker's run must be held this long before its owner's liveness is
 * checked (a /proc read), and a handle audits its group at most this often. */
#define MRB_WORKER_CHECK_NS 10000000
/* Successful takes between two audits of a busy worker. */
#define MRB_WORKER_AUDIT_CALLS 256
/* An owner word with this bit set is BUSY: the slot is being set up or
 * freed by the process whose pid is in bits 0-30 (pids are below 2^22) and
 * whose pid namespace (its inode number, 32 bits; 0 unknown) is in bits
 * 32-63. Nobody else takes the slot while that process lives; a slot whose
 * busy process died is taken over and freed (slot_recover). */
#define MRB_WORKER_BUSY_BIT (UINT64_C(1) << 31)

static bool is_busy(uint64_t owner)
{
	return (owner & MRB_WORKER_BUSY_BIT) != 0;
}

static uint64_t busy_word(const struct mrb_handle *h)
{
	return (h->pid_ns & UINT32_MAX) << 32 | MRB_WORKER_BUSY_BIT | h->pid;
}

/* Bits 2-3 of a frozen announcement: the rescue generation, advanced by
 * each rescuer that takes a frozen run over, so that the release of the
 * rescuer it replaced (a hung one, maybe) fails. */
#define MRB_INFLIGHT_GENERATION UINT64_C(12)

static uint64_t next_generation(uint64_t v)
{
	return (v & ~MRB_INFLIGHT_GENERATION) | ((v + 4) & MRB_INFLIGHT_GENERATION);
}

struct mrbi_worker {
	struct mrb_group *group;
	struct mrb_worker_slot *slot;
	uint32_t group_index;
	uint32_t slot_index;
	uint64_t token;
	uint32_t policy;
	int64_t hold_timeout_ns;
	/* The run this handle hands out: its own slot's word, or while it
	 * redelivers a rescued worker's run, that worker's (victim). */
	_Atomic uint64_t *hold_word; /* NULL: holds nothing */
	struct mrb_worker_slot *victim;
	uint64_t hold_value;  /* the word's value as this handle last set it */
	uint64_t hold_cursor; /* next record to hand out */
	uint64_t hold_end;
	uint64_t pending_messages; /* handed out, not yet released */
	uint64_t pending_bytes;
	uint64_t takes;
	int64_t last_audit_ns;
	uint32_t test_stop; /* MRBI_TEST_STOP_*: a test's SIGSTOP point */
	/* Rescues under way by live rescuers, as this handle's audits saw
	 * them (a group with a hold timeout): the rescuer and the frozen word,
	 * and since when they have not changed (a hung rescuer). */
	struct {
		uint64_t rescuer;
		uint64_t word;
		int64_t since_ns;
	} watch[MRB_WORKERS];
};

/* A test's kill point (mrb__test_worker_join): the process stops itself
 * there, and the test SIGKILLs it. */
static void test_stop(const struct mrbi_worker *w, uint32_t point)
{
	if (w->test_stop == point)
		raise(SIGSTOP);
}

static struct mrb_group *group_at(struct mrb_handle *h, uint32_t i)
{
	return &h->header->groups[i];
}

static struct mrb_worker_slot *worker_at(struct mrb_handle *h, uint32_t i)
{
	return &h->header->workers[i];
}

static uint32_t groups_used(struct mrb_handle *h)
{
	uint32_t n =
	    atomic_load_explicit(&h->header->group_table.groups_used, memory_order_acquire);
	return n < MRB_GROUPS ? n : MRB_GROUPS;
}

static uint32_t workers_used(struct mrb_handle *h)
{
	uint32_t n =
	    atomic_load_explicit(&h->header->group_table.workers_used, memory_order_acquire);
	return n < MRB_WORKERS ? n : MRB_WORKERS;
}

static void bump_used(_Atomic uint32_t *used, uint32_t at_least)
{
	uint32_t cur = atomic_load_explicit(used, memory_order_relaxed);
	while (cur < at_least &&
	       !atomic_compare_exchange_weak_explicit(used, &cur, at_least, memory_order_seq_cst,
	                                              memory_order_relaxed)) {
	}
}

/* Subtracts `n` from a shared count, never below zero (a hostile share
 * cannot wrap it). */
static void count_sub(_Atomic uint32_t *count, uint32_t n)
{
	uint32_t cur = atomic_load_explicit(count, memory_order_relaxed);
	while (cur != 0 &&
	       !atomic_compare_exchange_weak_explicit(count, &cur, cur > n ? cur - n : 0,
	                                              memory_order_seq_cst, memory_order_relaxed)) {
	}
}

static uint64_t new_token(const struct mrb_handle *h)
{
	uint64_t nonce = mrbi_random64() << 32;
	if (nonce == 0)
		nonce = UINT64_C(1) << 32;
	return nonce | h->pid;
}

/* ---- Liveness ------------------------------------------------------------ */

/* By pid alone: for short-lived locks (the group table, a rescue). */
static bool pid_dead(uint64_t token)
{
	struct mrb_identity id = {.pid = (uint32_t)token};
	if (id.pid == 0 || id.pid > MRB_MAX_PID)
		return true;
	return mrbi_liveness(&id) == MRBI_DEAD;
}

/* Is the process of owner word `owner` (a token, or a busy word; `pid` its
 * pid, `ns` its pid namespace if the word says, else 0) gone? By its
 * identity while `id_owner` names that word, else by the pid (and `ns`). */
static bool identity_dead(struct mrb_worker_slot *s, uint64_t owner, uint32_t pid, uint64_t ns)
{
	struct mrb_identity id = {.pid = pid, .pid_ns = ns};
	if (atomic_load_explicit(&s->id_owner, memory_order_acquire) == owner) {
		/* Acquire: a later owner's identity stores (release) come with
		 * its owner word, which the re-check below then sees. */
		uint64_t start = atomic_load_explicit(&s->owner_start_time, memory_order_acquire);
		uint64_t pid_ns = atomic_load_explicit(&s->owner_pid_ns, memory_order_acquire);
		if (atomic_load_explicit(&s->owner, memory_order_acquire) == owner) {
			id.start_time = start;
			id.pid_ns = pid_ns;
		}
	}
	if (id.pid == 0 || id.pid > MRB_MAX_PID)
		return true;
	return mrbi_liveness(&id) == MRBI_DEAD;
}

static bool owner_dead(struct mrb_worker_slot *s, uint64_t owner)
{
	if (owner == 0)
		return true;
	if (is_busy(owner))
		return false;
	return identity_dead(s, owner, (uint32_t)owner, 0);
}

/* A busy slot's process is gone. */
static bool busy_dead(struct mrb_worker_slot *s, uint64_t owner)
{
	return identity_dead(s, owner, (uint32_t)(owner & ~MRB_WORKER_BUSY_BIT), owner >> 32);
}

/* Right after this handle made slot `s` busy (`busy`, its busy word): its
 * identity (with its start time, a reused pid is told apart). */
static void busy_identity(struct mrb_handle *h, struct mrb_worker_slot *s, uint64_t busy)
{
	atomic_store_explicit(&s->owner_start_time, h->start_time, memory_order_release);
	atomic_store_explicit(&s->owner_pid_ns, h->pid_ns, memory_order_release);
	atomic_store_explicit(&s->id_owner, busy, memory_order_release);
}

/* ---- The release position -------------------------------------------------- */

static uint64_t clamp_gate(uint64_t p, uint64_t release, uint64_t tail)
{
	/* Behind R, ahead of the producers or misaligned: it holds R where it
	 * is (a hostile or stale word can only keep R back). */
	if (p - release > tail - release || p % MRB_RECORD_ALIGNMENT != 0)
		return release;
	return p;
}

uint64_t mrbi_workers_low(struct mrb_handle *h, uint64_t release, uint64_t tail,
                          uint32_t except_group)
{
	uint64_t low = UINT64_MAX;
	uint32_t groups = groups_used(h);
	for (uint32_t i = 0; i < groups; i++) {
		struct mrb_group *g = group_at(h, i);
		if (i == except_group ||
		    atomic_load_explicit(&g->state, memory_order_seq_cst) != MRB_GROUP_ACTIVE)
			continue;
		uint64_t p = atomic_load_explicit(&g->claim_position, memory_order_seq_cst);
		p = clamp_gate(p, release, tail);
		if (p < low)
			low = p;
	}
	if (groups == 0)
		return low;
	/* After every claim position (see the top). */
	uint32_t workers = workers_used(h);
	for (uint32_t i = 0; i < workers; i++) {
		uint64_t v = atomic_load_explicit(&worker_at(h, i)->inflight, memory_order_seq_cst);
		if ((v & MRB_INFLIGHT_HOLDING) == 0)
			continue;
		uint64_t p = clamp_gate(v & ~MRB_INFLIGHT_FLAGS, release, tail);
		if (p < low)
			low = p;
	}
	return low;
}

/* After a release by this handle: R may be able to move. */
static void maybe_move_release(struct mrb_handle *h, uint64_t was_at)
{
	uint64_t r = atomic_load_explicit(&h->header->consumer_position, memory_order_seq_cst);
	if (r == was_at)
		mrbi_fanout_release(h, false);
}

/* ---- Waking ---------------------------------------------------------------- */

static void wake_one(struct mrb_group *g)
{
	atomic_fetch_add_explicit(&g->work_seq, 1, memory_order_seq_cst);
	mrbi_futex_wake_one(&g->work_seq);
}

void mrbi_wake_workers(struct mrb_handle *h)
{
	uint32_t groups = groups_used(h);
	for (uint32_t i = 0; i < groups; i++) {
		struct mrb_group *g = group_at(h, i);
		if (atomic_load_explicit(&g->work_waiters, memory_order_seq_cst) != 0)
			wake_one(g);
	}
}

void mrbi_worker_wait_words(struct mrb_handle *h, _Atomic uint32_t **seq,
                            _Atomic uint32_t **group_waiters, _Atomic uint32_t **share)
{
	struct mrbi_worker *w = h->worker;
	*seq = &w->group->work_seq;
	*group_waiters = &w->group->work_waiters;
	*share = &w->slot->waiting;
}

void mrbi_worker_doorbell(struct mrb_handle *h, struct mrb_doorbell **bell,
                          _Atomic uint32_t **group_armed, uint32_t *group_index)
{
	struct mrbi_worker *w = h->worker;
	*bell = &w->slot->doorbell;
	*group_armed = &w->group->work_armed;
	*group_index = w->group_index;
}

/* ---- Slots ----------------------------------------------------------------- */

/* Takes an armed doorbell name out of slot `s` (its owner is dead or
 * leaving, or the slot is being taken), and with it its counts: whoever
 * takes a name out of the word takes its counts out (doorbell.c), from
 * the group the name carries. */
static void take_back_doorbell(struct mrb_handle *h, struct mrb_worker_slot *s)
{
	if (atomic_load_explicit(&s->doorbell.armed, memory_order_relaxed) == 0)
		return;
	uint64_t name = atomic_exchange_explicit(&s->doorbell.armed, 0, memory_order_seq_cst);
	if (name == 0)
		return;
	count_sub(&h->header->data_waiters, 1);
	count_sub(&group_at(h, doorbell_name_group(name))->work_armed, 1);
}

/* Clears slot `s`, which this handle made BUSY: its waiter share and
 * doorbell are taken back out of the counts, and unless it still gates a run
 * (`keep_run`: a rescue under way) its fields are cleared; then it is free. */
static void slot_clear(struct mrb_handle *h, struct mrb_worker_slot *s, bool keep_run)
{
	uint32_t share = atomic_exchange_explicit(&s->waiting, 0, memory_order_relaxed);
	if (share != 0) {
		count_sub(&h->header->data_waiters, share);
		uint32_t gi = atomic_load_explicit(&s->group, memory_order_relaxed);
		if (gi < MRB_GROUPS)
			count_sub(&group_at(h, gi)->work_waiters, share);
	}
	take_back_doorbell(h, s);
	atomic_store_explicit(&s->id_owner, 0, memory_order_relaxed);
	if (!keep_run) {
		atomic_store_explicit(&s->rescuer, 0, memory_order_relaxed);
		atomic_store_explicit(&s->claim_end, 0, memory_order_relaxed);
		atomic_store_explicit(&s->held_since_ns, 0, memory_order_relaxed);
		atomic_store_explicit(&s->inflight, 0, memory_order_seq_cst);
	}
	/* Release: a joiner that takes the slot sees it cleared. */
	atomic_store_explicit(&s->owner, 0, memory_order_release);
}

/* Frees slot `s` if its owner is still `owner`. The caller made sure it
 * holds nothing. */
static bool slot_free(struct mrb_handle *h, struct mrbi_worker *w, struct mrb_worker_slot *s,
                      uint64_t owner)
{
	if (is_busy(owner) ||
	    !atomic_compare_exchange_strong_explicit(&s->owner, &owner, busy_word(h),
	                                             memory_order_acq_rel, memory_order_relaxed))
		return false;
	busy_identity(h, s, busy_word(h));
	test_stop(w, MRBI_TEST_STOP_SLOT_FREE);
	slot_clear(h, s, false);
	return true;
}

/*
 * Slot `s` was left BUSY (`owner`) by a process killed while it set the
 * slot up or freed it: neither has a live owner to give it back to. The
 * slot is taken over (busy for this handle) and cleared: its counts are
 * taken back, and it is free again; a run it still gates (frozen, a rescue
 * under way) is kept for its rescuer, which frees the slot when done.
 * Returns true if the slot is no longer busy for the dead process.
 */
static bool slot_recover(struct mrb_handle *h, struct mrb_worker_slot *s, uint64_t owner)
{
	uint64_t mine = busy_word(h);
	if (!is_busy(owner) || owner == mine || !busy_dead(s, owner))
		return false;
	if (!atomic_compare_exchange_strong_explicit(&s->owner, &owner, mine, memory_order_acq_rel,
	                                             memory_order_relaxed))
		return false;
	busy_identity(h, s, mine);
	uint64_t v = atomic_load_explicit(&s->inflight, memory_order_seq_cst);
	slot_clear(h, s, (v & MRB_INFLIGHT_HOLDING) != 0);
	return true;
}

/* Takes a free slot for `token`: its index, or MRB_ENOWORKER. A slot is
 * free when nobody owns it and it holds nothing (a slot whose owner left
 * while a rescue of its run went on stays out until the rescue is done). */
static int slot_take(struct mrb_handle *h, struct mrbi_worker *w, uint32_t group)
{
	uint64_t token = w->token;
	for (uint32_t i = 0; i < MRB_WORKERS; i++) {
		struct mrb_worker_slot *s = worker_at(h, i);
		uint64_t owner = 0;
		if (!atomic_compare_exchange_strong_explicit(&s->owner, &owner, busy_word(h),
		                                             memory_order_acq_rel,
		                                             memory_order_relaxed))
			continue;
		busy_identity(h, s, busy_word(h));
		test_stop(w, MRBI_TEST_STOP_SLOT_TAKE);
		uint64_t v = atomic_load_explicit(&s->inflight, memory_order_seq_cst);
		uint64_t rescuer = atomic_load_explicit(&s->rescuer, memory_order_acquire);
		if (!(v == 0 || (v == MRB_INFLIGHT_FROZEN && rescuer == 0))) {
			atomic_store_explicit(&s->owner, 0, memory_order_release);
			continue;
		}
		/* Before the group changes: a name left here counts in the old
		 * group's work_armed. */
		take_back_doorbell(h, s);
		atomic_store_explicit(&s->group, group, memory_order_relaxed);
		atomic_store_explicit(&s->waiting, 0, memory_order_relaxed);
		atomic_store_explicit(&s->claim_end, 0, memory_order_relaxed);
		atomic_store_explicit(&s->held_since_ns, 0, memory_order_relaxed);
		atomic_store_explicit(&s->rescuer, 0, memory_order_relaxed);
		atomic_store_explicit(&s->messages_done, 0, memory_order_relaxed);
		atomic_store_explicit(&s->bytes_done, 0, memory_order_relaxed);
		atomic_store_explicit(&s->inflight, 0, memory_order_seq_cst);
		atomic_store_explicit(&s->owner, token, memory_order_seq_cst);
		atomic_store_explicit(&s->owner_start_time, h->start_time, memory_order_release);
		atomic_store_explicit(&s->owner_pid_ns, h->pid_ns, memory_order_release);
		atomic_store_explicit(&s->id_owner, token, memory_order_release);
		bump_used(&h->header->group_table.workers_used, i + 1);
		return (int)i;
	}
	return MRB_ENOWORKER;
}

/* Frees the slots of dead workers that hold nothing, and slots left busy
 * by a dead process (any slot: one killed in slot_take may lie past
 * workers_used), to make room. */
static void reap_idle(struct mrb_handle *h, struct mrbi_worker *w)
{
	for (uint32_t i = 0; i < MRB_WORKERS; i++) {
		struct mrb_worker_slot *s = worker_at(h, i);
		uint64_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
		if (is_busy(owner))
			slot_recover(h, s, owner);
		if (owner == 0 || is_busy(owner))
			continue;
		uint64_t v = atomic_load_explicit(&s->inflight, memory_order_seq_cst);
		uint64_t rescuer = atomic_load_explicit(&s->rescuer, memory_order_acquire);
		if (v != 0 && !(v == MRB_INFLIGHT_FROZEN && rescuer == 0))
			continue;
		if (owner_dead(s, owner))
			slot_free(h, w, s, owner);
	}
}

/* ---- Counting -------------------------------------------------------------- */

/* Messages and payload bytes in [from, to), a run nobody can overwrite
 * (it gates R); stops at the first record that is not what a taken run
 * holds (shared memory is untrusted). */
static uint64_t count_run(struct mrb_handle *h, uint64_t from, uint64_t to, uint64_t *bytes)
{
	uint64_t n = 0;
	*bytes = 0;
	for (uint64_t at = from; at < to;) {
		uint64_t control;
		if (!record_observe(h, at, &control) || (control & MRB_CONTROL_BUSY) != 0)
			break;
		uint64_t size = record_checked_size(h, at, control, to);
		if (size == 0)
			break;
		if ((control & MRB_CONTROL_PAD) == 0) {
			n++;
			*bytes += control_length(control);
		}
		at += size;
	}
	return n;
}

/* ---- Releasing ------------------------------------------------------------- */

/* A rescued worker's run is done (or was dropped): its slot is freed if its
 * owner is gone, or left frozen for a live (hung) owner to notice; the
 * rescue lock is given back. */
static void finish_victim(struct mrb_handle *h, struct mrbi_worker *w, struct mrb_worker_slot *s)
{
	uint64_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
	if (!is_busy(owner) && (owner == 0 || owner_dead(s, owner)) && slot_free(h, w, s, owner))
		return;
	/* Only if still this handle's (a slot_recover may have cleared it). */
	uint64_t mine = w->token;
	atomic_compare_exchange_strong_explicit(&s->rescuer, &mine, 0, memory_order_acq_rel,
	                                        memory_order_relaxed);
}

/* This handle's run was taken from it (a rescuer froze the word, or took
 * over the rescue this handle had made). */
static int refused(struct mrbi_worker *w)
{
	atomic_fetch_add_explicit(&w->group->stale_releases, 1, memory_order_relaxed);
	if (w->victim != NULL) {
		uint64_t mine = w->token;
		atomic_compare_exchange_strong_explicit(&w->victim->rescuer, &mine, 0,
		                                        memory_order_acq_rel, memory_order_relaxed);
	}
	w->hold_word = NULL;
	w->victim = NULL;
	w->pending_messages = 0;
	w->pending_bytes = 0;
	return MRB_ESTALE;
}

/* Releases what this handle handed out since its last release. */
static int release_held(struct mrb_handle *h, struct mrbi_worker *w)
{
	if (w->hold_word == NULL)
		return 0;
	uint64_t pos = w->hold_value & ~MRB_INFLIGHT_FLAGS;
	bool done = w->hold_cursor == w->hold_end;
	if (w->hold_cursor == pos && !done)
		return 0;
	uint64_t next;
	if (w->victim != NULL)
		next = done ? MRB_INFLIGHT_FROZEN
		            : w->hold_cursor | MRB_INFLIGHT_FROZEN | MRB_INFLIGHT_HOLDING;
	else
		next = done ? 0 : w->hold_cursor | MRB_INFLIGHT_HOLDING;
	uint64_t expected = w->hold_value;
	if (!atomic_compare_exchange_strong_explicit(w->hold_word, &expected, next,
	                                             memory_order_seq_cst, memory_order_relaxed))
		return refused(w);
	if (w->pending_messages != 0) {
		struct mrb_worker_slot *s = w->slot;
		/* Single writer (this handle): plain add, no RMW. */
		uint64_t m = atomic_load_explicit(&s->messages_done, memory_order_relaxed);
		uint64_t b = atomic_load_explicit(&s->bytes_done, memory_order_relaxed);
		atomic_store_explicit(&s->messages_done, m + w->pending_messages,
		                      memory_order_relaxed);
		atomic_store_explicit(&s->bytes_done, b + w->pending_bytes, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->group->messages_done, w->pending_messages,
		                          memory_order_relaxed);
		atomic_fetch_add_explicit(&w->group->bytes_done, w->pending_bytes,
		                          memory_order_relaxed);
		w->pending_messages = 0;
		w->pending_bytes = 0;
	}
	w->hold_value = next;
	if (done) {
		if (w->victim != NULL)
			finish_victim(h, w, w->victim);
		w->hold_word = NULL;
		w->victim = NULL;
	}
	maybe_move_release(h, pos);
	return 0;
}

/* ---- Rescuing -------------------------------------------------------------- */

/*
 * Applies the group's policy to what slot `s` holds; the caller holds its
 * rescue lock. Returns 1 if this handle now redelivers the run, else 0.
 */
static int rescue(struct mrb_handle *h, struct mrbi_worker *w, struct mrb_worker_slot *s,
                  int64_t now)
{
	uint64_t v = atomic_load_explicit(&s->inflight, memory_order_seq_cst);
	for (;;) {
		if ((v & MRB_INFLIGHT_FROZEN) != 0) {
			/* Taken over from another rescuer (dead or hung): a new
			 * generation, so that its release fails. */
			if ((v & MRB_INFLIGHT_HOLDING) == 0)
				break;
			if (atomic_compare_exchange_strong_explicit(
			        &s->inflight, &v, next_generation(v), memory_order_seq_cst,
			        memory_order_seq_cst)) {
				v = next_generation(v);
				break;
			}
			continue;
		}
		/* Released meanwhile, or announced and not (yet) taken: the
		 * claim position has not passed it, and a CAS from there may
		 * still come (a hung worker), so leave it alone. */
		if ((v & MRB_INFLIGHT_HOLDING) == 0 ||
		    atomic_load_explicit(&w->group->claim_position, memory_order_seq_cst) <=
		        (v & ~MRB_INFLIGHT_FLAGS)) {
			finish_victim(h, w, s);
			return 0;
		}
		if (atomic_compare_exchange_strong_explicit(
		        &s->inflight, &v, v | MRB_INFLIGHT_FROZEN, memory_order_seq_cst,
		        memory_order_seq_cst)) {
			v |= MRB_INFLIGHT_FROZEN;
			break;
		}
	}
	/* The end was stored before the announcement the freeze read. */
	uint64_t start = v & ~MRB_INFLIGHT_FLAGS;
	uint64_t end = atomic_load_explicit(&s->claim_end, memory_order_relaxed);
	uint64_t claim = atomic_load_explicit(&w->group->claim_position, memory_order_seq_cst);
	uint64_t release =
	    atomic_load_explicit(&h->header->consumer_position, memory_order_seq_cst);
	uint64_t tail = atomic_load_explicit(&h->header->producer_position, memory_order_seq_cst);
	/* Held: an announcement the claim position passed, at or after R (it
	 * gated R ever since), with a plausible end. Anything else took
	 * nothing (its CAS failed or never happened). */
	bool held = (v & MRB_INFLIGHT_HOLDING) != 0 && start - release <= tail - release &&
	            claim > start && end > start && end <= claim && end - start <= h->capacity &&
	            end % MRB_RECORD_ALIGNMENT == 0;
	uint64_t bytes = 0;
	uint64_t n = held ? count_run(h, start, end, &bytes) : 0;
	if (n == 0 || w->policy == MRB_GROUP_POLICY_AT_MOST_ONCE) {
		if (n != 0)
			atomic_fetch_add_explicit(&w->group->dropped, n, memory_order_relaxed);
		atomic_store_explicit(&s->inflight, MRB_INFLIGHT_FROZEN, memory_order_seq_cst);
		finish_victim(h, w, s);
		maybe_move_release(h, start);
		return 0;
	}
	atomic_fetch_add_explicit(&w->group->redelivered, n, memory_order_relaxed);
	atomic_store_explicit(&s->held_since_ns, now, memory_order_relaxed);
	w->hold_word = &s->inflight;
	w->victim = s;
	w->hold_value = v;
	w->hold_cursor = start;
	w->hold_end = end;
	return 1;
}

/*
 * Takes slot s's rescue lock: from nobody, or from a dead rescuer, or (a
 * frozen run, `frozen` its word, in a group with a hold timeout) from a
 * live rescuer that this handle saw make no progress for the timeout: the
 * rescuer and the word stayed the same over this handle's audits for that
 * long (a hung rescuer).
 */
static bool rescue_lock(struct mrbi_worker *w, struct mrb_worker_slot *s, uint32_t index,
                        uint64_t frozen, int64_t now)
{
	uint64_t r = atomic_load_explicit(&s->rescuer, memory_order_acquire);
	if (r == w->token)
		return false;
	if (r != 0 && !pid_dead(r)) {
		if (frozen == 0 || w->hold_timeout_ns <= 0)
			return false;
		int64_t limit = w->hold_timeout_ns > MRB_WORKER_CHECK_NS ? w->hold_timeout_ns
		                                                         : MRB_WORKER_CHECK_NS;
		if (w->watch[index].rescuer != r || w->watch[index].word != frozen ||
		    w->watch[index].since_ns == 0 || now < w->watch[index].since_ns) {
			w->watch[index].rescuer = r;
			w->watch[index].word = frozen;
			w->watch[index].since_ns = now;
			return false;
		}
		if (now - w->watch[index].since_ns < limit)
			return false;
	}
	atomic_store_explicit(&s->rescuer_start_time, 0, memory_order_relaxed);
	return atomic_compare_exchange_strong_explicit(&s->rescuer, &r, w->token,
	                                               memory_order_acq_rel, memory_order_acquire);
}

/*
 * Looks at the group's other workers: dead (or hung) ones holding a run are
 * rescued, dead idle ones with a waiter share are freed. Returns 1 if this
 * handle took a run to redeliver. Only while it holds nothing itself.
 */
static int audit(struct mrb_handle *h, struct mrbi_worker *w, int64_t now)
{
	w->last_audit_ns = now;
	uint32_t used = workers_used(h);
	for (uint32_t i = 0; i < used; i++) {
		if (i == w->slot_index)
			continue;
		struct mrb_worker_slot *s = worker_at(h, i);
		uint64_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
		if (is_busy(owner)) {
			/* Of any group: a busy slot's group may be stale. */
			slot_recover(h, s, owner);
			continue;
		}
		if (atomic_load_explicit(&s->group, memory_order_relaxed) != w->group_index)
			continue;
		uint64_t v = atomic_load_explicit(&s->inflight, memory_order_seq_cst);
		if ((v & MRB_INFLIGHT_HOLDING) == 0) {
			/* Idle: a dead sleeper's share (or armed doorbell)
			 * costs producers a wake-up per message; a dead idle
			 * slot is freed at a join. */
			if (owner != 0 &&
			    (atomic_load_explicit(&s->waiting, memory_order_relaxed) != 0 ||
			     atomic_load_explicit(&s->doorbell.armed, memory_order_relaxed) != 0) &&
			    (v == 0 ||
			     atomic_load_explicit(&s->rescuer, memory_order_relaxed) == 0) &&
			    owner_dead(s, owner))
				slot_free(h, w, s, owner);
			continue;
		}
		if ((v & MRB_INFLIGHT_FROZEN) != 0) {
			/* A rescue under way: take it over if its rescuer is gone
			 * (or hung). */
			if (!rescue_lock(w, s, i, v, now))
				continue;
		} else {
			if (owner == 0)
				continue;
			/* Shared, so maybe hostile: an implausible start still
			 * gets the owner's liveness checked, never an overflow. */
			int64_t since =
			    atomic_load_explicit(&s->held_since_ns, memory_order_relaxed);
			int64_t held =
			    since > 0 && since <= now ? now - since : MRB_WORKER_CHECK_NS;
			if (held < MRB_WORKER_CHECK_NS)
				continue;
			bool hung = w->hold_timeout_ns > 0 && held >= w->hold_timeout_ns;
			if (!hung && !owner_dead(s, owner))
				continue;
			if (!rescue_lock(w, s, i, 0, now))
				continue;
		}
		if (rescue(h, w, s, now) != 0)
			return 1;
	}
	/* Only the release of the run R stands at moves R (maybe_move_release):
	 * a worker killed between its release and that move left R behind,
	 * with nobody to move it until producers run short of space. */
	if (atomic_load_explicit(&h->header->consumer_position, memory_order_seq_cst) !=
	    atomic_load_explicit(&w->group->claim_position, memory_order_seq_cst))
		mrbi_fanout_release(h, false);
	return 0;
}

static int maybe_audit(struct mrb_handle *h, struct mrbi_worker *w, bool force)
{
	if (w->hold_word != NULL)
		return 0;
	int64_t now = mrbi_now_ns();
	if (!force && now - w->last_audit_ns < MRB_WORKER_CHECK_NS)
		return 0;
	return audit(h, w, now);
}

/* ---- Taking ---------------------------------------------------------------- */

/* This handle's own slot was frozen by a rescuer after it held a run too
 * long. Once the rescue is done, the slot is this handle's again. */
static bool own_slot_usable(struct mrbi_worker *w)
{
	uint64_t v = atomic_load_explicit(&w->slot->inflight, memory_order_acquire);
	if (v == 0)
		return true;
	if (v != MRB_INFLIGHT_FROZEN ||
	    atomic_load_explicit(&w->slot->rescuer, memory_order_acquire) != 0)
		return false;
	return atomic_compare_exchange_strong_explicit(&w->slot->inflight, &v, 0,
	                                               memory_order_seq_cst, memory_order_relaxed);
}

/*
 * Claims the next run of up to max_count messages that fit in buf_size
 * bytes. Returns 1 (the run is held), 0 (nothing to take now),
 * MRB_EBUFFER_TOO_SMALL (*need: the first message's size) or an error.
 */
static int take(struct mrb_handle *h, struct mrbi_worker *w, size_t buf_size, size_t max_count,
                bool thorough, uint64_t *need)
{
	struct mrb_group *g = w->group;
	for (int attempt = 0;; attempt++) {
		if (attempt == 100000)
			return MRB_ECORRUPT; /* a hostile peer keeps moving it */
		uint64_t c = atomic_load_explicit(&g->claim_position, memory_order_seq_cst);
		uint64_t tail =
		    atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
		if (c == tail)
			return 0;
		if (c % MRB_RECORD_ALIGNMENT != 0 || tail % MRB_RECORD_ALIGNMENT != 0)
			return MRB_ECORRUPT;
		if (tail - c > h->capacity)
			continue; /* c is stale: others took and released past it */
		uint64_t pos = c, used = 0;
		size_t n = 0;
		while (n < max_count && pos != tail) {
			uint64_t control;
			if (!record_observe(h, pos, &control))
				break;
			uint64_t size = record_checked_size(h, pos, control, tail);
			uint64_t length = control_length(control);
			if (size == 0 || ((control & MRB_CONTROL_PAD) == 0 &&
			                  (length == 0 || length > h->max_message_size))) {
				/* A written header no record can have: corrupt, as
				 * for a subscriber (the readiness check sees a
				 * record there, so "nothing to take" would spin
				 * mrb_read_wait). Unless c moved meanwhile. */
				if (pos == c && atomic_load_explicit(&g->claim_position,
				                                     memory_order_seq_cst) == c)
					return MRB_ECORRUPT;
				break;
			}
			if ((control & MRB_CONTROL_BUSY) != 0)
				break;
			if ((control & MRB_CONTROL_PAD) == 0) {
				if (length > buf_size - used) {
					if (n == 0) {
						*need = length;
						return MRB_EBUFFER_TOO_SMALL;
					}
					break;
				}
				n++;
				used += length;
			}
			pos += size;
		}
		if (pos == c) {
			/* A claim not yet committed, or left by a dead writer:
			 * recovered as a subscriber's read would (one reader pads
			 * it, under the recovery token). */
			if (atomic_load_explicit(&g->claim_position, memory_order_seq_cst) != c)
				continue;
			/* Behind R: a producer that found no gate moved R past a
			 * group being created (subscriber.c, committed_end);
			 * what lies between was never the group's. */
			uint64_t r = atomic_load_explicit(&h->header->consumer_position,
			                                  memory_order_seq_cst);
			if (r != c && r - c <= h->capacity) {
				atomic_compare_exchange_strong_explicit(&g->claim_position, &c, r,
				                                        memory_order_seq_cst,
				                                        memory_order_relaxed);
				continue;
			}
			h->head = c;
			h->tail_cache = tail;
			int rc = mrbi_unfinished_record(h, thorough);
			if (rc == 0)
				continue;
			return rc == MRB_EEMPTY ? 0 : rc;
		}
		/* Announce (end and time first), then claim. */
		atomic_store_explicit(&w->slot->claim_end, pos, memory_order_relaxed);
		atomic_store_explicit(&w->slot->held_since_ns, mrbi_now_ns(), memory_order_relaxed);
		uint64_t idle = 0, mine = c | MRB_INFLIGHT_HOLDING;
		if (!atomic_compare_exchange_strong_explicit(&w->slot->inflight, &idle, mine,
		                                             memory_order_seq_cst,
		                                             memory_order_relaxed))
			return 0; /* frozen meanwhile: own_slot_usable decides */
		uint64_t expected = c;
		if (atomic_compare_exchange_strong_explicit(&g->claim_position, &expected, pos,
		                                            memory_order_seq_cst,
		                                            memory_order_relaxed)) {
			w->hold_word = &w->slot->inflight;
			w->victim = NULL;
			w->hold_value = mine;
			w->hold_cursor = c;
			w->hold_end = pos;
			w->takes++;
			/* Pass the turn: more waits and a worker sleeps. */
			uint64_t control;
			if (atomic_load_explicit(&g->work_waiters, memory_order_seq_cst) != 0 &&
			    pos != tail && record_observe(h, pos, &control) &&
			    (control & MRB_CONTROL_BUSY) == 0)
				wake_one(g);
			return 1;
		}
		if (!atomic_compare_exchange_strong_explicit(
		        &w->slot->inflight, &mine, 0, memory_order_seq_cst, memory_order_relaxed))
			return 0;
	}
}

/*
 * Copies messages of the held run from the cursor into buf. Returns the
 * count (0: only padding was left), MRB_EBUFFER_TOO_SMALL (lengths[0] set,
 * nothing handed), MRB_ESTALE (the run was taken from this handle while it
 * copied) or MRB_ECORRUPT.
 */
/* noinline: GCC rejects a fence in a function inlined elsewhere under
 * -fsanitize=thread (-Wtsan). */
static __attribute__((noinline)) int64_t hand_out(struct mrb_handle *h, struct mrbi_worker *w,
                                                  uint8_t *buf, size_t buf_size, size_t *lengths,
                                                  size_t max_count)
{
	/* A group with a hold timeout can take a run from a live worker, and
	 * producers may then overwrite it while this copy runs: copy with
	 * atomic words and check the word afterwards (subscriber.c). */
	bool racy = w->hold_timeout_ns > 0;
	uint64_t pos = w->hold_cursor, used = 0, bytes = 0;
	size_t n = 0;
	while (pos < w->hold_end) {
		uint64_t control;
		uint64_t size = 0;
		if (record_observe(h, pos, &control) && (control & MRB_CONTROL_BUSY) == 0)
			size = record_checked_size(h, pos, control, w->hold_end);
		if (size == 0)
			goto invalid;
		if ((control & MRB_CONTROL_PAD) != 0) {
			pos += size;
			continue;
		}
		if (n == max_count)
			break;
		uint64_t length = control_length(control);
		if (length == 0 || length > h->max_message_size)
			goto invalid;
		if (length > buf_size - used) {
			if (n == 0) {
				lengths[0] = (size_t)length;
				return MRB_EBUFFER_TOO_SMALL;
			}
			break;
		}
		const uint8_t *payload = record_payload(h, pos);
		if (racy)
			mrbi_racy_copy_out(buf + used, payload, (size_t)length);
		else
			memcpy(buf + used, payload, (size_t)length);
		lengths[n++] = (size_t)length;
		used += length;
		bytes += length;
		pos += size;
	}
	if (racy) {
		/* Pairs with the producers' release fence after their claim:
		 * a store of theirs that we copied comes with a frozen word. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(w->hold_word, memory_order_relaxed) != w->hold_value)
			return refused(w);
	}
	w->hold_cursor = pos;
	w->pending_messages += n;
	w->pending_bytes += bytes;
	return (int64_t)n;
invalid:
	if (racy && atomic_load_explicit(w->hold_word, memory_order_acquire) != w->hold_value)
		return refused(w);
	return MRB_ECORRUPT;
}

int64_t mrbi_worker_read(struct mrb_handle *h, uint8_t *buf, size_t buf_size, size_t *lengths,
                         size_t max_count)
{
	struct mrbi_worker *w = h->worker;
	int rc = release_held(h, w);
	if (rc != 0)
		return rc;
	for (int round = 0; round < 64; round++) {
		if (w->hold_word != NULL) {
			int64_t n = hand_out(h, w, buf, buf_size, lengths, max_count);
			if (n != 0)
				return n;
			/* Only padding was left: release it and go on. */
			rc = release_held(h, w);
			if (rc != 0)
				return rc;
			continue;
		}
		if (!own_slot_usable(w))
			return MRB_EEMPTY; /* its old run is being rescued */
		if (w->takes % MRB_WORKER_AUDIT_CALLS == MRB_WORKER_AUDIT_CALLS - 1 &&
		    maybe_audit(h, w, false) != 0)
			continue;
		uint64_t need = 0;
		rc = take(h, w, buf_size, max_count, false, &need);
		if (rc == 1)
			continue;
		if (rc == MRB_EBUFFER_TOO_SMALL)
			lengths[0] = (size_t)need;
		if (rc != 0)
			return rc;
		if (maybe_audit(h, w, false) != 0)
			continue;
		return MRB_EEMPTY;
	}
	return MRB_EEMPTY;
}

int mrbi_worker_ready(struct mrb_handle *h, bool thorough, bool *unfinished)
{
	struct mrbi_worker *w = h->worker;
	*unfinished = false;
	if (w->hold_word != NULL && w->hold_cursor != w->hold_end)
		return 0;
	if (w->hold_word == NULL && !own_slot_usable(w))
		return MRB_EEMPTY;
	uint64_t c = atomic_load_explicit(&w->group->claim_position, memory_order_seq_cst);
	uint64_t tail = atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
	if (c != tail) {
		/* As take() finds it (and no misaligned header load). */
		if (c % MRB_RECORD_ALIGNMENT != 0 || tail % MRB_RECORD_ALIGNMENT != 0)
			return MRB_ECORRUPT;
		uint64_t control;
		if (tail - c <= h->capacity && record_observe(h, c, &control) &&
		    (control & MRB_CONTROL_BUSY) == 0)
			return 0;
		*unfinished = true;
		if (tail - c <= h->capacity && c % MRB_RECORD_ALIGNMENT == 0) {
			h->head = c;
			h->tail_cache = tail;
			int rc = mrbi_unfinished_record(h, thorough);
			if (rc != MRB_EEMPTY)
				return rc;
		}
	}
	if (thorough && maybe_audit(h, w, false) != 0)
		return 0;
	return MRB_EEMPTY;
}

/* ---- Joining and leaving --------------------------------------------------- */

static int table_lock(struct mrb_handle *h, uint64_t token)
{
	struct mrb_group_table *t = &h->header->group_table;
	int64_t start = mrbi_now_ns();
	for (long spins = 0;; spins++) {
		uint64_t owner = atomic_load_explicit(&t->lock_owner, memory_order_acquire);
		if ((owner == 0 || (spins % 64 == 63 && pid_dead(owner))) &&
		    atomic_compare_exchange_strong_explicit(
		        &t->lock_owner, &owner, token, memory_order_acq_rel, memory_order_relaxed))
			return 0;
		/* A live holder stopped (or a hostile word naming a live
		 * pid): bounded in time too, since yields under CPU load
		 * take long (fuzz_workers: a join spun 11 s). */
		if (spins > 64 * 1000 ||
		    (spins % 64 == 63 && mrbi_now_ns() - start > 500 * INT64_C(1000000)))
			return MRB_ETIMEDOUT;
		struct timespec pause = {0, 100000};
		if (spins % 64 == 63)
			nanosleep(&pause, NULL);
		else
			sched_yield();
	}
}

static void table_unlock(struct mrb_handle *h, uint64_t token)
{
	atomic_compare_exchange_strong_explicit(&h->header->group_table.lock_owner, &token, 0,
	                                        memory_order_acq_rel, memory_order_relaxed);
}

static void group_name_words(const char *name, uint64_t words[MRB_READER_NAME_WORDS])
{
	memset(words, 0, MRB_READER_NAME_WORDS * sizeof(uint64_t));
	memcpy(words, name, strlen(name));
}

static bool group_has_name(struct mrb_group *g, const uint64_t words[MRB_READER_NAME_WORDS])
{
	for (int i = 0; i < MRB_READER_NAME_WORDS; i++)
		if (atomic_load_explicit(&g->name[i], memory_order_relaxed) != words[i])
			return false;
	return true;
}

/* A new group gates from a point no mover that missed it could have moved
 * R past: published at R, it starts at the minimum over the others, as a
 * joining subscriber does (subscriber.c). Called under the table lock. */
static int group_create(struct mrb_handle *h, uint32_t index,
                        const uint64_t words[MRB_READER_NAME_WORDS], uint32_t policy,
                        int64_t hold_timeout_ns)
{
	struct mrb_file_header *hdr = h->header;
	struct mrb_group *g = group_at(h, index);
	atomic_store_explicit(&g->policy, policy, memory_order_relaxed);
	atomic_store_explicit(&g->hold_timeout_ns, hold_timeout_ns, memory_order_relaxed);
	for (int i = 0; i < MRB_READER_NAME_WORDS; i++)
		atomic_store_explicit(&g->name[i], words[i], memory_order_relaxed);
	atomic_store_explicit(&g->redelivered, 0, memory_order_relaxed);
	atomic_store_explicit(&g->dropped, 0, memory_order_relaxed);
	atomic_store_explicit(&g->stale_releases, 0, memory_order_relaxed);
	atomic_store_explicit(&g->messages_done, 0, memory_order_relaxed);
	atomic_store_explicit(&g->bytes_done, 0, memory_order_relaxed);
	atomic_store_explicit(&g->work_seq, 0, memory_order_relaxed);
	atomic_store_explicit(&g->work_waiters, 0, memory_order_relaxed);
	atomic_store_explicit(&g->work_armed, 0, memory_order_relaxed);
	if (hold_timeout_ns > 0) {
		atomic_fetch_add_explicit(&hdr->validating_readers, 1, memory_order_seq_cst);
		/* Copies are validated against CAS claims only (lease.c). */
		mrbi_lease_revoke(h, NULL);
	}
	uint64_t provisional = atomic_load_explicit(&hdr->consumer_position, memory_order_seq_cst);
	atomic_store_explicit(&g->claim_position, provisional, memory_order_seq_cst);
	atomic_store_explicit(&g->state, MRB_GROUP_ACTIVE, memory_order_seq_cst);
	bump_used(&hdr->group_table.groups_used, index + 1);
	/* seq_cst store above, seq_cst loads below: ordered in the single
	 * total order, against the movers' seq_cst scans. */
	uint64_t release, tail;
	if (read_positions(hdr, h->capacity, &release, &tail) != 0)
		return MRB_ECORRUPT;
	uint64_t low = mrbi_subscribers_low(h, release, tail);
	uint64_t others = mrbi_workers_low(h, release, tail, index);
	if (others < low)
		low = others;
	uint64_t start = low != UINT64_MAX && low > release ? low : release;
	atomic_store_explicit(&g->claim_position, start, memory_order_seq_cst);
	return 0;
}

/* The ACTIVE group of that name: its index, or -1. Under the table lock. */
static int group_lookup(struct mrb_handle *h, const uint64_t words[MRB_READER_NAME_WORDS],
                        int *free_index)
{
	*free_index = -1;
	for (uint32_t i = 0; i < MRB_GROUPS; i++) {
		struct mrb_group *g = group_at(h, i);
		uint32_t state = atomic_load_explicit(&g->state, memory_order_acquire);
		if (state == MRB_GROUP_FREE) {
			if (*free_index < 0)
				*free_index = (int)i;
		} else if (state == MRB_GROUP_ACTIVE && group_has_name(g, words)) {
			return (int)i;
		}
	}
	return -1;
}

/* Finds or creates the group: its index, or an error. Under the table
 * lock. */
static int group_find(struct mrb_handle *h, const char *name, const struct mrb_worker_options *opts)
{
	uint64_t words[MRB_READER_NAME_WORDS];
	group_name_words(name, words);
	int rc;
	int free_index;
	int found = group_lookup(h, words, &free_index);
	if (found >= 0) {
		struct mrb_group *g = group_at(h, (uint32_t)found);
		uint32_t policy = atomic_load_explicit(&g->policy, memory_order_relaxed);
		int64_t timeout = atomic_load_explicit(&g->hold_timeout_ns, memory_order_relaxed);
		if (policy > MRB_GROUP_POLICY_AT_MOST_ONCE || timeout < 0)
			rc = MRB_ECORRUPT;
		else if (opts != NULL &&
		         (opts->policy != policy || opts->hold_timeout_ns != timeout))
			rc = MRB_EINVAL;
		else
			rc = found;
	} else if (free_index < 0) {
		rc = MRB_ENOWORKER;
	} else {
		rc = group_create(h, (uint32_t)free_index, words,
		                  opts != NULL ? opts->policy : MRB_GROUP_POLICY_AT_LEAST_ONCE,
		                  opts != NULL ? opts->hold_timeout_ns : 0);
		if (rc == 0)
			rc = free_index;
	}
	return rc;
}

static int worker_join(struct mrb_handle *h, const char *name,
                       const struct mrb_worker_options *opts, uint32_t stop_at)
{
	if (h->mode != MRB_MODE_FANOUT)
		return MRB_EMODE;
	struct mrbi_worker *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->token = new_token(h);
	w->test_stop = stop_at;
	/* The slot is taken under the table lock too, so that a removal of
	 * the group (which holds the lock) sees every worker of it. */
	int rc = table_lock(h, w->token);
	if (rc != 0) {
		free(w);
		return rc;
	}
	int gi = group_find(h, name, opts);
	int si = gi;
	if (gi >= 0) {
		si = slot_take(h, w, (uint32_t)gi);
		if (si == MRB_ENOWORKER) {
			reap_idle(h, w);
			si = slot_take(h, w, (uint32_t)gi);
		}
	}
	table_unlock(h, w->token);
	if (si < 0) {
		free(w);
		return si;
	}
	w->group = group_at(h, (uint32_t)gi);
	w->group_index = (uint32_t)gi;
	w->slot = worker_at(h, (uint32_t)si);
	w->slot_index = (uint32_t)si;
	w->policy = atomic_load_explicit(&w->group->policy, memory_order_relaxed);
	w->hold_timeout_ns = atomic_load_explicit(&w->group->hold_timeout_ns, memory_order_relaxed);
	h->worker = w;
	h->owner_token = w->token;
	h->stuck_position = UINT64_MAX;
	h->recovery_timeout_ns = 0;
	h->is_consumer = true;
	return 0;
}

int mrb_worker_join(struct mrb_ring *ring, const char *path, const char *group,
                    const struct mrb_worker_options *opts)
{
	return mrbi_worker_join(ring, path, group, opts, MRBI_TEST_STOP_NONE);
}

int mrbi_worker_join(struct mrb_ring *ring, const char *path, const char *group,
                     const struct mrb_worker_options *opts, uint32_t stop_at)
{
	if (ring == NULL || path == NULL || group == NULL || group[0] == '\0' ||
	    strlen(group) > MRB_GROUP_NAME_MAX)
		return MRB_EINVAL;
	if (opts != NULL && (opts->policy > MRB_AT_MOST_ONCE || opts->hold_timeout_ns < 0))
		return MRB_EINVAL;
	int rc = mrb_open(ring, path, 0);
	if (rc != 0)
		return rc;
	rc = worker_join(handle_of(ring), group, opts, stop_at);
	if (rc != 0) {
		mrb_close(ring);
		memset(ring, 0, sizeof(*ring));
	}
	return rc;
}

void mrbi_worker_leave(struct mrb_handle *h)
{
	struct mrbi_worker *w = h->worker;
	release_held(h, w);
	if (w->victim != NULL) {
		/* A rescued run not handed out in full: another worker of the
		 * group finishes it (the word stays frozen and gating). */
		uint64_t mine = w->token;
		atomic_compare_exchange_strong_explicit(&w->victim->rescuer, &mine, 0,
		                                        memory_order_acq_rel, memory_order_relaxed);
	}
	struct mrb_worker_slot *s = w->slot;
	uint64_t v = atomic_load_explicit(&s->inflight, memory_order_seq_cst);
	if (v == 0 || (v == MRB_INFLIGHT_FROZEN &&
	               atomic_load_explicit(&s->rescuer, memory_order_acquire) == 0)) {
		slot_free(h, w, s, w->token);
	} else {
		/* Frozen by a rescue under way: its rescuer frees it. */
		uint64_t token = w->token;
		atomic_compare_exchange_strong_explicit(&s->owner, &token, 0, memory_order_acq_rel,
		                                        memory_order_relaxed);
	}
	mrbi_fanout_release(h, false);
	free(w);
	h->worker = NULL;
	h->is_consumer = false;
}

int mrb_worker_ack(struct mrb_ring *ring)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL)
		return MRB_EINVAL;
	int rc = mrbi_consumer_enter(h);
	if (rc != 0)
		return rc;
	rc = h->worker != NULL ? release_held(h, h->worker) : MRB_EINVAL;
	mrbi_consumer_leave(h);
	return rc;
}

/* ---- Removing a group ------------------------------------------------------ */

/*
 * Removes group `gi` under the table lock (no worker can join it
 * meanwhile): refused (MRB_ENAMEBUSY) while a slot of the group has a live
 * owner or is busy for a live process; else every slot of the group is
 * freed (what dead workers held, or a dead rescuer was redelivering, is let
 * go) and the group becomes FREE, so that it stops gating R.
 */
static int group_remove(struct mrb_handle *h, uint32_t gi)
{
	struct mrb_group *g = group_at(h, gi);
	for (uint32_t i = 0; i < MRB_WORKERS; i++) {
		struct mrb_worker_slot *s = worker_at(h, i);
		uint64_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
		if (is_busy(owner) && slot_recover(h, s, owner))
			owner = atomic_load_explicit(&s->owner, memory_order_acquire);
		if (atomic_load_explicit(&s->group, memory_order_relaxed) != gi)
			continue;
		if (is_busy(owner) || (owner != 0 && !owner_dead(s, owner)))
			return MRB_ENAMEBUSY;
	}
	for (uint32_t i = 0; i < MRB_WORKERS; i++) {
		struct mrb_worker_slot *s = worker_at(h, i);
		if (atomic_load_explicit(&s->group, memory_order_relaxed) != gi)
			continue;
		uint64_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
		if (is_busy(owner) || (owner != 0 && !owner_dead(s, owner)))
			return MRB_ENAMEBUSY; /* only if a hostile peer wrote it */
		if (atomic_load_explicit(&s->inflight, memory_order_relaxed) == 0 && owner == 0 &&
		    atomic_load_explicit(&s->waiting, memory_order_relaxed) == 0 &&
		    atomic_load_explicit(&s->doorbell.armed, memory_order_relaxed) == 0)
			continue; /* free already */
		if (!atomic_compare_exchange_strong_explicit(&s->owner, &owner, busy_word(h),
		                                             memory_order_acq_rel,
		                                             memory_order_relaxed))
			return MRB_ENAMEBUSY;
		busy_identity(h, s, busy_word(h));
		slot_clear(h, s, false);
	}
	int64_t timeout = atomic_load_explicit(&g->hold_timeout_ns, memory_order_relaxed);
	atomic_store_explicit(&g->state, MRB_GROUP_FREE, memory_order_seq_cst);
	if (timeout > 0)
		count_sub(&h->header->validating_readers, 1);
	return 0;
}

int mrb_worker_group_remove(const char *path, const char *group)
{
	if (path == NULL || group == NULL || group[0] == '\0' || strlen(group) > MRB_GROUP_NAME_MAX)
		return MRB_EINVAL;
	struct mrb_ring ring;
	int rc = mrb_open(&ring, path, 0);
	if (rc != 0)
		return rc;
	struct mrb_handle *h = handle_of(&ring);
	uint64_t token = new_token(h);
	if (h->mode != MRB_MODE_FANOUT) {
		rc = MRB_EMODE;
	} else if ((rc = table_lock(h, token)) == 0) {
		uint64_t words[MRB_READER_NAME_WORDS];
		group_name_words(group, words);
		int free_index;
		int gi = group_lookup(h, words, &free_index);
		rc = gi < 0 ? -ENOENT : group_remove(h, (uint32_t)gi);
		table_unlock(h, token);
		if (rc == 0)
			mrbi_fanout_release(h, false);
	}
	mrb_close(&ring);
	return rc;
}

/* ---- Listing --------------------------------------------------------------- */

int64_t mrb_worker_groups(struct mrb_ring *ring, struct mrb_group_info *out, size_t max)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || (out == NULL && max != 0))
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_STATE_CALL);
	if (rc != 0)
		return rc;
	uint64_t tail = atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
	int64_t count = 0;
	uint32_t used = groups_used(h);
	uint32_t wused = workers_used(h);
	for (uint32_t i = 0; i < used; i++) {
		struct mrb_group *g = group_at(h, i);
		if (atomic_load_explicit(&g->state, memory_order_acquire) != MRB_GROUP_ACTIVE)
			continue;
		if ((size_t)count < max) {
			struct mrb_group_info *o = &out[count];
			memset(o, 0, sizeof(*o));
			uint64_t words[MRB_READER_NAME_WORDS];
			for (int k = 0; k < MRB_READER_NAME_WORDS; k++)
				words[k] = atomic_load_explicit(&g->name[k], memory_order_relaxed);
			memcpy(o->name, words, MRB_GROUP_NAME_MAX);
			o->name[MRB_GROUP_NAME_MAX] = '\0';
			o->policy = atomic_load_explicit(&g->policy, memory_order_relaxed);
			o->index = i;
			o->hold_timeout_ns =
			    atomic_load_explicit(&g->hold_timeout_ns, memory_order_relaxed);
			o->claim_position =
			    atomic_load_explicit(&g->claim_position, memory_order_acquire);
			o->lag_bytes =
			    tail - o->claim_position <= h->capacity ? tail - o->claim_position : 0;
			for (uint32_t k = 0; k < wused; k++) {
				struct mrb_worker_slot *s = worker_at(h, k);
				uint64_t owner =
				    atomic_load_explicit(&s->owner, memory_order_acquire);
				if (owner == 0 || is_busy(owner) ||
				    atomic_load_explicit(&s->group, memory_order_relaxed) != i)
					continue;
				o->workers++;
				if (!owner_dead(s, owner))
					o->workers_alive++;
			}
			o->messages_done =
			    atomic_load_explicit(&g->messages_done, memory_order_relaxed);
			o->bytes_done = atomic_load_explicit(&g->bytes_done, memory_order_relaxed);
			o->redelivered =
			    atomic_load_explicit(&g->redelivered, memory_order_relaxed);
			o->dropped = atomic_load_explicit(&g->dropped, memory_order_relaxed);
			o->stale_releases =
			    atomic_load_explicit(&g->stale_releases, memory_order_relaxed);
		}
		count++;
	}
	role_leave(h, MRB_STATE_CALL);
	return count;
}

int64_t mrb_workers(struct mrb_ring *ring, struct mrb_worker_info *out, size_t max)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || (out == NULL && max != 0))
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_STATE_CALL);
	if (rc != 0)
		return rc;
	int64_t count = 0;
	uint32_t used = workers_used(h);
	for (uint32_t i = 0; i < used; i++) {
		struct mrb_worker_slot *s = worker_at(h, i);
		uint64_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
		uint64_t v = atomic_load_explicit(&s->inflight, memory_order_acquire);
		if (is_busy(owner) || (owner == 0 && v == 0))
			continue;
		if ((size_t)count < max) {
			struct mrb_worker_info *o = &out[count];
			memset(o, 0, sizeof(*o));
			o->index = i;
			o->group = atomic_load_explicit(&s->group, memory_order_relaxed);
			o->pid = owner != 0 ? (int32_t)(uint32_t)owner : 0;
			o->alive = owner != 0 && !owner_dead(s, owner);
			o->holding =
			    (v & MRB_INFLIGHT_HOLDING) != 0 && (v & MRB_INFLIGHT_FROZEN) == 0;
			o->rescued = (v & MRB_INFLIGHT_FROZEN) != 0;
			if ((v & MRB_INFLIGHT_HOLDING) != 0) {
				o->held_from = v & ~MRB_INFLIGHT_FLAGS;
				o->held_to =
				    atomic_load_explicit(&s->claim_end, memory_order_relaxed);
			}
			o->messages_done =
			    atomic_load_explicit(&s->messages_done, memory_order_relaxed);
			o->bytes_done = atomic_load_explicit(&s->bytes_done, memory_order_relaxed);
		}
		count++;
	}
	role_leave(h, MRB_STATE_CALL);
	return count;
}
