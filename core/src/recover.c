/* SPDX-License-Identifier: MIT */
/*
 * Crash recovery: a writer that dies between claiming space and committing
 * leaves a claim that holds the consumer back forever. Recovery attributes
 * the claim in front of the consumer to its writer, and skips it only if
 * that writer is gone for good, or, when the consumer opted in, has held it
 * longer than the hung-writer timeout. It never guesses from other
 * processes' fate.
 *
 * Two shapes of unfinished claim exist:
 *  - BUSY: the header was written, so its length and its writer (producer
 *    slot and the slot's generation) are known.
 *  - header-less: the writer is between its claim (CAS) and its header
 *    store. Writers announce every claim in a lane of their slot before the
 *    CAS and keep the announcement until their call is done, so a live
 *    claimer of position X is always found announcing X (slots.c). No live
 *    announcer means the claimer is dead; the claim then ends at its
 *    announced end, or at the first header or announced claim after it.
 *
 * A dead writer's claim is padded: from its start to the announced end of
 * the whole claim, so that a batch whose first record never committed loses
 * the rest of its run too, never a message in the middle.
 *
 * A live writer's claim skipped by the hung-writer timeout is not padded:
 * the consumer reads on past it but keeps its release position at the
 * claim, so the writer's late stores land in space nobody else can have;
 * once the writer is done (or dead), whatever it committed there is
 * delivered late, and the space is released.
 */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "record.h"

static void count_recovered(struct mrb_handle *h, uint64_t bytes)
{
	atomic_fetch_add_explicit(&h->header->recovered_records, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->header->recovered_bytes, bytes, memory_order_relaxed);
}

static uint32_t slots_used(const struct mrb_handle *h)
{
	uint32_t used = atomic_load_explicit(&h->header->producer_slots_used, memory_order_acquire);
	return used < MRB_PRODUCER_SLOTS ? used : MRB_PRODUCER_SLOTS;
}

/* One lane's announcement, read as it bears on position x: its claim's
 * start (0 when the lane is idle), its end if announced within (x, tail]
 * (else 0), and whether the claim covers x (starts at x, or before it with
 * an end after it). Acquire pairs with the writer's release stores of the
 * lane: a lane seen idle or moved on proves the headers of the claim it
 * announced before are visible. Announcements are untrusted input. */
static bool lane_announces(const struct mrb_handle *h, struct mrb_lane *lane, uint64_t x,
                           uint64_t tail, uint64_t *start, uint64_t *end)
{
	uint64_t claiming = atomic_load_explicit(&lane->claiming, memory_order_acquire);
	*start = claiming & ~MRB_LANE_FLAGS;
	*end = 0;
	if (claiming == 0)
		return false;
	uint64_t claim_end = atomic_load_explicit(&lane->claim_end, memory_order_relaxed);
	if (claim_end - x - 1 < tail - x && claim_end > *start &&
	    claim_end % MRB_RECORD_ALIGNMENT == 0)
		*end = claim_end;
	return *start == x || (x - *start < h->capacity && *end != 0);
}

/* What the lanes say about position x, as of one pass over them. */
struct claim_survey {
	uint32_t live_lanes;   /* lanes of live writers announcing a claim covering x */
	bool claimer_known;    /* one of them has an end: its CAS made the claim */
	uint32_t claimer_slot; /* the live claimer (or the only live announcer) */
	uint64_t claimer_owner;
	uint64_t claimer_end; /* its claim's end, 0 if unknown */
	uint64_t dead_end;    /* the largest end announced by a gone writer, or 0 */
	uint64_t boundary;    /* first announced claim start after x, or tail */
};

/*
 * A lane's announced claim covers x if it starts at x, or before x with an
 * end after it. Several lanes can announce x: the writer whose CAS made the
 * claim (it publishes the end right after), and writers that read the same
 * producer position and then lost the CAS (stalled or dead before moving
 * on; their lanes show an older end). Announcements are untrusted: only an
 * end within (x, tail] is used.
 */
static void survey_claims(struct mrb_handle *h, uint64_t x, uint64_t tail, struct claim_survey *out)
{
	*out = (struct claim_survey){.boundary = tail};
	uint32_t used = slots_used(h);
	for (uint32_t i = 0; i < used; i++) {
		struct mrb_producer_slot *slot = &h->header->producers[i];
		for (int l = 0; l < MRB_SLOT_LANES; l++) {
			uint64_t start, end;
			bool covers = lane_announces(h, &slot->lanes[l], x, tail, &start, &end);
			if (start != 0 && start - x - 1 < out->boundary - x - 1 &&
			    start % MRB_RECORD_ALIGNMENT == 0)
				out->boundary = start; /* x < start < boundary */
			if (!covers)
				continue;
			bool end_known = end != 0;
			uint64_t owner;
			if (mrbi_slot_writer_dead(h, i, MRBI_ANY_GENERATION, &owner)) {
				if (end_known && end > out->dead_end)
					out->dead_end = end;
				continue;
			}
			out->live_lanes++;
			if (out->claimer_known)
				continue;
			if (end_known || out->live_lanes == 1) {
				out->claimer_known = end_known;
				out->claimer_slot = i;
				out->claimer_owner = owner;
				out->claimer_end = end_known ? end : 0;
			}
		}
	}
}

/* The first position in (x, limit) holding a plausible record header, or
 * limit. Only called once a dead claim at x is established, and bounded by
 * the next announced claim: no rescans of the whole ring. */
static uint64_t next_header(struct mrb_handle *h, uint64_t x, uint64_t limit)
{
	for (uint64_t pos = x + MRB_RECORD_ALIGNMENT; pos < limit; pos += MRB_RECORD_ALIGNMENT) {
		uint64_t control;
		if (record_observe(h, pos, &control) &&
		    record_checked_size(h, pos, control, limit) != 0)
			return pos;
	}
	return limit;
}

/* Does a lane of slot `index` still announce a claim covering x? *end is
 * the largest end announced for it (within (x, tail]), else 0: another
 * thread's lane of the same handle may still show an announcement of x
 * that lost its CAS, without an end. */
static bool lane_covers(struct mrb_handle *h, uint32_t index, uint64_t x, uint64_t tail,
                        uint64_t *end)
{
	struct mrb_producer_slot *slot = &h->header->producers[index];
	bool covers = false;
	*end = 0;
	for (int l = 0; l < MRB_SLOT_LANES; l++) {
		uint64_t start, claim_end;
		if (lane_announces(h, &slot->lanes[l], x, tail, &start, &claim_end)) {
			covers = true;
			if (claim_end > *end)
				*end = claim_end;
		}
	}
	return covers;
}

/* Skips [x, end) of a live writer for now (hung-writer timeout). One such
 * claim at a time: a second hung writer waits for the first to resolve. */
static int skip_live(struct mrb_handle *h, uint64_t x, uint64_t end, uint32_t slot, uint64_t owner)
{
	if (h->skipped.active || h->late_end != 0)
		return 0;
	h->skipped = (struct mrb_skipped_claim){
	    .start = x, .end = end, .owner = owner, .slot = slot, .active = 1};
	h->head = end;
	atomic_fetch_add_explicit(&h->header->skipped_live, 1, memory_order_relaxed);
	return 1;
}

int mrbi_recover_head(struct mrb_handle *h, int64_t now_ns, int64_t hung_timeout_ns)
{
	const uint64_t x = h->head;
	/* Acquire: every claim up to tail, and its announcement, is visible. */
	uint64_t tail = atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
	if (tail - x > h->capacity || tail % MRB_RECORD_ALIGNMENT != 0)
		return MRB_ECORRUPT;
	h->tail_cache = tail;
	if (tail == x)
		return 0;
	bool hung = hung_timeout_ns >= 0 && h->stuck_position == x && h->stuck_since_ns != 0 &&
	            now_ns - h->stuck_since_ns >= hung_timeout_ns;

	uint64_t control;
	if (record_observe(h, x, &control)) {
		if ((control & MRB_CONTROL_BUSY) == 0)
			return 1; /* committed meanwhile */
		uint64_t size = record_checked_size(h, x, control, tail);
		if (size == 0)
			return MRB_ECORRUPT;
		uint32_t slot = control_slot(control);
		uint64_t owner;
		if (slot >= MRB_PRODUCER_SLOTS)
			return MRB_ECORRUPT;
		bool dead = mrbi_slot_writer_dead(h, slot, control_generation(control), &owner);
		uint64_t end;
		lane_covers(h, slot, x, tail, &end);
		/* A run lies after its gap, within one lap; anything else is not
		 * this record's claim. */
		if (end < x + size || end - x > h->capacity - (x & h->mask))
			end = x + size;
		/* The writer may have committed and left its lane since the
		 * header was read (then the lane no longer tells the run's end):
		 * a lane read with acquire that shows it gone also shows the
		 * commit, so look again (found by the SPIN model). */
		uint64_t again;
		if (!record_observe(h, x, &again) || again != control)
			return 1;
		if (!dead)
			return hung ? skip_live(h, x, end, slot, owner) : 0;
		/* One padding record over the whole claim, written by one CAS:
		 * a batch's later records go with its first (a suffix is lost,
		 * never the middle), and a consumer killed here leaves either
		 * the BUSY record or the padding, nothing in between. A CAS: a
		 * writer judged gone cannot commit, but never pad over a commit. */
		uint64_t padded = end == x + size ? (control & ~MRB_CONTROL_BUSY) | MRB_CONTROL_PAD
		                                  : control_word(end - x - MRB_RECORD_HEADER_SIZE,
		                                                 0, MRB_CONTROL_PAD);
		struct mrb_record_header *rec = record_at(h, x);
		if (!atomic_compare_exchange_strong_explicit(&rec->control, &control, padded,
		                                             memory_order_acq_rel,
		                                             memory_order_relaxed))
			return 1;
		/* Payload bytes of a lone record; the span of a longer claim. */
		count_recovered(h, end == x + size ? control_length(control) : end - x);
		return 1;
	}

	struct claim_survey survey;
	survey_claims(h, x, tail, &survey);
	/* The header may have landed since the first look. */
	if (record_observe(h, x, &control))
		return 0;
	if (survey.live_lanes != 0) {
		/* A live writer may own it: wait. Skipping it needs the hung
		 * timeout and a known claim: the live lane that announced its
		 * end. Without the end (the writer is between its CAS and that
		 * store, or several writers announce the position), the claim's
		 * extent cannot be known: a scan for the next header could stop
		 * at a later record of the same run (found by the SPIN model,
		 * docs/MODEL.md). Wait and see. */
		if (!hung || !survey.claimer_known)
			return 0;
		return skip_live(h, x, survey.claimer_end, survey.claimer_slot,
		                 survey.claimer_owner);
	}
	uint64_t end = survey.dead_end != 0 ? survey.dead_end : next_header(h, x, survey.boundary);
	record_pad_range(h, x, end);
	count_recovered(h, end - x);
	return 1;
}

/* Is the skipped claim settled: no live writer announces it any more (its
 * claimer finished its call or is gone, and so is every writer that lost a
 * CAS for its start)? Only then may its space be released. */
static bool skipped_claim_settled(struct mrb_handle *h)
{
	struct mrb_skipped_claim *s = &h->skipped;
	uint64_t tail = atomic_load_explicit(&h->header->producer_position, memory_order_acquire);
	struct claim_survey survey;
	survey_claims(h, s->start, tail, &survey);
	return survey.live_lanes == 0;
}

int mrbi_next_late_message(struct mrb_handle *h, uint32_t slot_seen, const uint8_t **data,
                           uint64_t *len, uint64_t *next)
{
	if (h->skipped.active) {
		/* Resolve before reading on when the writer shows up again (its
		 * order), or now and then. */
		if (slot_seen != h->skipped.slot && ++h->stuck_polls % 64 != 0)
			return MRB_EAGAIN_HEAD;
		if (!skipped_claim_settled(h))
			return MRB_EAGAIN_HEAD;
		h->late_pos = h->skipped.start;
		h->late_end = h->skipped.end;
		h->skipped.active = 0;
	}
	while (h->late_end != 0) {
		uint64_t pos = h->late_pos;
		if (pos >= h->late_end) {
			h->late_end = 0;
			break;
		}
		uint64_t control;
		if (!record_observe(h, pos, &control)) {
			/* The writer left without writing here: nothing to deliver. */
			count_recovered(h, h->late_end - pos);
			h->late_end = 0;
			break;
		}
		uint64_t size = record_checked_size(h, pos, control, h->late_end);
		if (size == 0)
			return MRB_ECORRUPT;
		if ((control & MRB_CONTROL_BUSY) != 0) {
			uint64_t owner;
			uint32_t slot = control_slot(control);
			if (slot < MRB_PRODUCER_SLOTS &&
			    !mrbi_slot_writer_dead(h, slot, control_generation(control), &owner)) {
				/* Still held (an open reservation): skip it again. */
				h->skipped = (struct mrb_skipped_claim){.start = pos,
				                                        .end = h->late_end,
				                                        .owner = owner,
				                                        .slot = slot,
				                                        .active = 1};
				h->late_end = 0;
				return MRB_EAGAIN_HEAD;
			}
			count_recovered(h, h->late_end - pos);
			h->late_end = 0;
			break;
		}
		if ((control & MRB_CONTROL_PAD) != 0) {
			h->late_pos = pos + size;
			continue;
		}
		if (control_length(control) == 0 || control_length(control) > h->max_message_size)
			return MRB_ECORRUPT;
		*data = record_payload(h, pos);
		*len = control_length(control);
		*next = pos + size;
		return 0;
	}
	return MRB_EAGAIN_HEAD;
}

/* How long mrb_recover sleeps between looks at the record it observes:
 * short enough that close, a commit or a death is noticed promptly. */
#define MRB_RECOVER_SLICE_NS 10000000

int mrb_recover(struct mrb_ring *ring, int64_t stale_after_ns)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL)
		return MRB_EINVAL;
	int rc = mrbi_consumer_enter(h);
	if (rc != 0)
		return rc;
	if (stale_after_ns >= 0 && h->holding) {
		mrbi_consumer_leave(h);
		return MRB_EINVAL; /* a skip would release out of order (mrb_hold) */
	}
	if (h->entry != NULL) {
		/* Subscribers recover dead writers' claims as they read. */
		mrbi_consumer_leave(h);
		return MRB_EMODE;
	}
	const uint8_t *data;
	uint64_t length, next;
	/* Move past padding and see whether anything blocks the head at all;
	 * automatic recovery is off during the probes. */
	int64_t saved_timeout = h->recovery_timeout_ns;
	h->recovery_timeout_ns = -1;
	rc = mrbi_next_message(h, MRB_TAIL_ALWAYS, &data, &length, &next);
	if (rc == MRB_EEMPTY && h->head != h->tail_cache) {
		int64_t now = mrbi_now_ns();
		h->stuck_position = h->head;
		h->stuck_since_ns = now;
		rc = mrbi_recover_head(h, now, -1);
		int64_t deadline = mrbi_deadline(now, stale_after_ns);
		while (rc == 0 && stale_after_ns >= 0) {
			if (handle_closing(h)) {
				rc = MRB_ECLOSED;
				break;
			}
			int64_t left = deadline - mrbi_now_ns();
			if (left <= 0) {
				rc = mrbi_recover_head(h, mrbi_now_ns(), stale_after_ns);
				break;
			}
			/* Close bumps data_seq and wakes sleepers on it. */
			uint32_t seq =
			    atomic_load_explicit(&h->header->data_seq, memory_order_acquire);
			mrbi_futex_wait(&h->header->data_seq, seq,
			                left < MRB_RECOVER_SLICE_NS ? left : MRB_RECOVER_SLICE_NS);
			uint64_t stuck = h->head;
			int probe = mrbi_next_message(h, MRB_TAIL_ALWAYS, &data, &length, &next);
			if (probe != MRB_EEMPTY || h->head != stuck || h->head == h->tail_cache) {
				rc = probe < 0 && probe != MRB_EEMPTY ? probe : 0;
				break; /* it finished, or moved on by itself */
			}
			h->stuck_since_ns = now;
			rc = mrbi_recover_head(h, mrbi_now_ns(), -1);
		}
	} else if (rc == 0 || rc == MRB_EEMPTY) {
		rc = 0;
	}
	h->recovery_timeout_ns = saved_timeout;
	mrbi_consumer_leave(h);
	return rc;
}

int mrb_set_recovery_timeout(struct mrb_ring *ring, int64_t stale_after_ns)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL)
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_CONSUMER_CALL);
	if (rc != 0)
		return rc;
	if (stale_after_ns > 0 && h->holding) {
		role_leave(h, MRB_CONSUMER_CALL);
		return MRB_EINVAL; /* mrb_hold */
	}
	/* A subscriber never skips a live writer: others read the same claim. */
	if (h->entry != NULL && stale_after_ns > 0) {
		role_leave(h, MRB_CONSUMER_CALL);
		return MRB_EINVAL;
	}
	h->recovery_timeout_ns = stale_after_ns;
	role_leave(h, MRB_CONSUMER_CALL);
	return 0;
}
