/* SPDX-License-Identifier: MIT */
/*
 * A SPIN model of the mmap_ringbuffer shared-memory protocol (file format 2,
 * docs/FORMAT.md sections 4-7) as core/src implements it. docs/MODEL.md maps
 * every step below to the C function and line that performs it, and lists
 * what the model leaves out.
 *
 * Configuration (spin -D...):
 *   NP=2|3        producers (slot i = producer i, one lane each)
 *   CAP=3|4       ring capacity in 16-byte units (a message record is 1 unit)
 *   P0A.. P2B     the workload: each producer's two calls (run lengths)
 *   MAXDEATH=0..2 processes that may die (producers; with KILL_CONSUMER
 *                 also the consumer, which is then restarted)
 *   TSO           producers' commit and lane release go through store
 *                 buffers (otherwise every store is sequentially consistent)
 *   NO_RECOVERY   the consumer never attempts recovery (for MAXDEATH=0)
 *   HUNG          the consumer opts in to the hung-writer timeout
 *   LTL           the LTL properties instead of the end-state check
 * Mutants (each must produce a counterexample):
 *   MUT_ANY_DIED    format 1: a header-less claim is skipped once any
 *                   producer has died, instead of attribution through lanes
 *   MUT_REVERSE     batch followers written BUSY and committed last-to-first;
 *                   recovery pads only the BUSY record at the head
 *   MUT_NO_BARRIER  the sleeper issues no membarrier (the waker keeps only
 *                   its compiler barrier)
 *   MUT_STALE_TAIL  recovery does not refresh the consumer's cached tail:
 *                   the read path validates recovery's padding against a
 *                   tail cached before it
 *   MUT_STALE_TAIL_RECOVERY  recovery works from the cached tail instead of
 *                   loading producer_position
 * and the defects the model found, as they were before their fixes
 * (docs/MODEL.md, "Findings"):
 *   MUT_HUNG_UNKNOWN_END  a hung writer's claim without an announced end is
 *                   skipped up to the next header found (HUNG)
 *   MUT_NO_BUSY_RECHECK   no second look at a BUSY record after its lanes
 *   MUT_NO_WAKER_SLICE    sleeps without a time limit: a waker killed
 *                   between its CAS and its wake-up leaves the sleeper asleep
 * A proposed fix for the open finding 4:
 *   FIX_HUNG_SETTLE  a later record of a hung writer waits until its
 *                   skipped claim is settled
 *
 * Positions are absolute and only grow (bounded by the finite workload);
 * index = position % CAP. A stamp is stored as position + 1 (0 = never
 * written), which is what "position ^ salt" buys the C code: no stamp of an
 * earlier lap or of zeroed memory passes.
 */
#ifndef NP
#define NP 2
#endif
#ifndef CAP
#define CAP 4
#endif
#ifndef MAXDEATH
#define MAXDEATH 1
#endif

/* The workload: producer i makes the calls PiA then PiB (a run of n
 * messages: 1 = mrb_write, 2 = mrb_write_batch of 2; 0 = none). */
#ifndef P0A
#define P0A 2
#endif
#ifndef P0B
#define P0B 0
#endif
#ifndef P1A
#define P1A 1
#endif
#ifndef P1B
#define P1B 0
#endif
#ifndef P2A
#define P2A 1
#endif
#ifndef P2B
#define P2B 0
#endif

#define CONS NP          /* index of the consumer in dead[] */
#define NMSG 10          /* message ids 1..9: MID(p, k) = 3p + k + 1 */
#define MID(p, k) (3 * (p) + (k) + 1)
#define MPROD(m) (((m) - 1) / 3)
#define MSEQ(m) (((m) - 1) % 3)
#define IX(pos) ((pos) % CAP)

/* ---- shared memory: the data region ---- */
byte st[CAP];      /* stamp: position + 1 of the header written here, 0 none */
bool cbusy[CAP];   /* control: BUSY */
bool cpad[CAP];    /* control: PAD */
byte clen[CAP];    /* control: record size in units (length field) */
byte cslot[CAP];   /* control: writer slot */
byte pay[CAP];     /* payload: message id, 0 none */

/* ---- shared memory: the file header ---- */
byte tail;         /* producer_position */
byte cache;        /* consumer_position_cache */
byte head_pub;     /* consumer_position */
byte lane_claiming[NP]; /* lanes[0].claiming: start + 1, 0 idle */
byte lane_end[NP];      /* lanes[0].claim_end */
byte data_waiters;
byte data_seq;

/* ---- processes: death and the kernel ---- */
bool dead[NP + 1];  /* ground truth; the judge (section 5) is exact here */
byte deaths;
bool any_died;      /* what format 1's heuristic looked at */
bool sleeping;      /* the consumer is in FUTEX_WAIT */
bool finished[NP];

/* ---- x86-TSO store buffers of the producers (for the commit -> waiter
 * load window; every other store is sequentially consistent) ---- */
#define SB_COMMIT 1
#define SB_LANE 2
byte sb_kind[2 * NP];
byte sb_arg[2 * NP];
byte sb_n[NP];

/* ---- ghosts ---- */
bool committed[NMSG];   /* the commit store became visible */
bool delivered[NMSG];
byte msg_pos[NMSG];     /* where the message's record is */
byte next_seq[NP];      /* per-producer order: next message expected */
byte claim_lo[NP];      /* the producer's open claim (CAS .. commit) */
byte claim_hi[NP];
bool claim_open[NP];
bool stale_seen;        /* a live producer's commit found its record taken */
bool wake_pending[NP];  /* committed, the waiter check not done yet */
bool midcall_death;     /* a producer died between its CAS and its wake-up */
byte late_skips;        /* hung-writer skips taken */

/* The header at pos is valid (stamp matches). */
#define VALID(pos) (st[IX(pos)] == (pos) + 1)

/* A live producer's uncommitted claim overlaps [a, b). */
#define LIVE_OVERLAP(q, a, b) \
	(claim_open[q] && !dead[q] && claim_lo[q] < (b) && (a) < claim_hi[q])

/* The last claim of a dead writer covers pos: only then may a sleeper that
 * saw an unfinished record there rely on the 10 ms slice (wait.c) instead
 * of a wake-up (a live writer must wake it). */
#define DEAD_CLAIM_AT(q, pos) \
	(dead[q] && claim_lo[q] <= (pos) && (pos) < claim_hi[q])

#if NP == 2
#define DEAD_IN_FRONT(pos) (DEAD_CLAIM_AT(0, pos) || DEAD_CLAIM_AT(1, pos))
#define ALL_FINISHED ((finished[0] || dead[0]) && (finished[1] || dead[1]))
#else
#define DEAD_IN_FRONT(pos) \
	(DEAD_CLAIM_AT(0, pos) || DEAD_CLAIM_AT(1, pos) || DEAD_CLAIM_AT(2, pos))
#define ALL_FINISHED \
	((finished[0] || dead[0]) && (finished[1] || dead[1]) && (finished[2] || dead[2]))
#endif

/* Drains the oldest entry of producer q's store buffer into memory. */
inline sb_drain_one(q)
{
	if
	:: sb_kind[2 * q] == SB_COMMIT ->
		cbusy[IX(sb_arg[2 * q])] = 0;
		/* the commit is visible: the message (and for a run, the
		 * followers, which only this commit publishes) is committed */
		committed[pay[IX(sb_arg[2 * q])]] = 1;
		if
		:: sb_arg[2 * q] + 1 < claim_hi[q] && !cpad[IX(sb_arg[2 * q] + 1)] &&
		   VALID(sb_arg[2 * q] + 1) && cslot[IX(sb_arg[2 * q] + 1)] == q ->
			committed[pay[IX(sb_arg[2 * q] + 1)]] = 1
		:: else -> skip
		fi;
		claim_open[q] = 0
	:: sb_kind[2 * q] == SB_LANE ->
		lane_claiming[q] = 0
	:: else -> assert(false)
	fi;
	sb_kind[2 * q] = sb_kind[2 * q + 1];
	sb_arg[2 * q] = sb_arg[2 * q + 1];
	sb_kind[2 * q + 1] = 0;
	sb_arg[2 * q + 1] = 0;
	sb_n[q]--
}

inline sb_push(q, kind, arg)
{
	assert(sb_n[q] < 2);
	sb_kind[2 * q + sb_n[q]] = kind;
	sb_arg[2 * q + sb_n[q]] = arg;
	sb_n[q]++;
#ifndef TSO
	/* without -DTSO every store is sequentially consistent */
	sb_drain_one(q)
#endif
}

/* The hardware drains store buffers at any time, also after death. */
#ifdef TSO
active proctype StoreBuffers()
{
	byte q;
end:
	do
	:: atomic {
		(sb_n[0] > 0 || sb_n[1] > 0
#if NP == 3
		 || sb_n[2] > 0
#endif
		) ->
		if
		:: sb_n[0] > 0 -> q = 0
		:: sb_n[1] > 0 -> q = 1
#if NP == 3
		:: sb_n[2] > 0 -> q = 2
#endif
		fi;
		sb_drain_one(q);
		q = 0
	}
	od
}
#endif

/* Death at any step: a nondeterministic stop of any process (a killed
 * process's store buffer has drained before anyone can judge it dead). */
#define KILL(q, cond) \
	:: atomic { deaths < MAXDEATH && !dead[q] && (cond) -> dead[q] = 1; deaths++; any_died = 1 }
/* a producer killed between its CAS and its wake-up step (finding 2) */
#define KILLP(q) \
	:: atomic { deaths < MAXDEATH && !dead[q] && !finished[q] && sb_n[q] == 0 -> \
		dead[q] = 1; deaths++; any_died = 1; \
		midcall_death = midcall_death || claim_open[q] || wake_pending[q] }

active proctype Killer()
{
end:
	do
	KILLP(0)
	KILLP(1)
#if NP == 3
	KILLP(2)
#endif
#ifdef KILL_CONSUMER
	KILL(CONS, true)
#endif
	:: break
	od
}

/* ------------------------------------------------------------------ */
/* Producers: claim (announce, CAS, claim_end), header, payload, commit */
/* ------------------------------------------------------------------ */

/* A producer store into the data region: never into released space. */
#define CHECK_STORE(pos) assert((pos) >= head_pub && (pos) < head_pub + CAP)

/* record_publish: control, then stamp (release). One step here: a reader
 * loads the stamp first, so it sees the header whole or not at all. */
#define PUBLISH(pos, b, pd, len, slot) \
	cbusy[IX(pos)] = b; cpad[IX(pos)] = pd; clen[IX(pos)] = len; \
	cslot[IX(pos)] = slot; st[IX(pos)] = (pos) + 1

proctype Producer(byte p; byte rn1; byte rn2)
{
	byte t, h, fresh, gap, need, pos, rn, k;
	bool ok;

	{
	k = 0;
	rn = rn1;
	do
	:: rn == 0 -> break
	:: else ->
		/* a new call: older buffered stores are out (TSO is modeled
		 * for the commit -> waiter-load window only) */
		atomic { sb_n[p] == 0; t = tail };   /* relaxed load */
claim_loop:
		/* the room check against consumer_position_cache (acquire) */
		atomic {
			gap = (rn > CAP - IX(t) -> CAP - IX(t) : 0);
			need = gap + rn;
			h = cache;
			if
			:: t - h + need <= CAP -> goto announce
			:: else
			fi
		};
		/* mrb_read_positions, then the cache (release) */
		atomic { h = head_pub; fresh = tail };
		atomic {
			cache = h;
			if
			:: fresh != t -> t = fresh; fresh = 0; goto claim_loop
			:: t - h + need <= CAP -> fresh = 0; goto announce
			:: else -> fresh = 0
			fi
		};
		if
		:: gap > 0 && t - h + gap <= CAP ->
			/* the gap alone (claim(), a record that cannot share it) */
			lane_claiming[p] = t + 1;
			atomic {
				if
				:: tail == t -> tail = t + gap;
					claim_lo[p] = t; claim_hi[p] = t + gap; claim_open[p] = 1
				:: else -> t = tail; goto claim_loop
				fi
			};
			lane_end[p] = t + gap;
			atomic {
				CHECK_STORE(t);
				PUBLISH(t, 0, 1, gap, p);
				claim_open[p] = 0;
				t = t + gap
			};
			goto claim_loop
		:: else ->
			/* full: mrb_write_batch halves the run; a single message
			 * waits for space (mrb_write_wait) and retries */
			if
			:: rn == 2 -> rn = 1; goto claim_loop
			:: else ->
end_full:			atomic { (head_pub != h) -> t = tail };
				goto claim_loop
			fi
		fi;
announce:
		h = 0;
		/* announce in the lane (release), then CAS */
		lane_claiming[p] = t + 1;
		atomic {
			if
			:: tail == t -> tail = t + need;
				claim_lo[p] = t; claim_hi[p] = t + need; claim_open[p] = 1
			:: else -> t = tail; goto claim_loop
			fi
		};
		lane_end[p] = t + need;
		/* the record header, BUSY, and the payload */
		atomic {
			pos = t + gap;
			CHECK_STORE(pos);
			PUBLISH(pos, 1, 0, 1, p);
			pay[IX(pos)] = MID(p, k);
			msg_pos[MID(p, k)] = pos
		};
		/* then the gap's padding in front of it */
		if
		:: gap > 0 ->
			atomic {
				CHECK_STORE(t);
				PUBLISH(t, 0, 1, gap, p)
			}
		:: else
		fi;
		if
		:: rn == 2 ->
			/* write_run: the follower's header committed (BUSY in the
			 * mutant), then its payload */
			atomic {
				CHECK_STORE(pos + 1);
#ifdef MUT_REVERSE
				PUBLISH(pos + 1, 1, 0, 1, p);
#else
				PUBLISH(pos + 1, 0, 0, 1, p);
#endif
				pay[IX(pos + 1)] = MID(p, k + 1);
				msg_pos[MID(p, k + 1)] = pos + 1
			}
		:: else
		fi;
#ifdef MUT_REVERSE
		/* commit last-to-first: the follower first */
		if
		:: rn == 2 ->
			atomic {
				if
				:: VALID(pos + 1) && cbusy[IX(pos + 1)] && cslot[IX(pos + 1)] == p ->
					CHECK_STORE(pos + 1);
					cbusy[IX(pos + 1)] = 0;
					committed[MID(p, k + 1)] = 1
				:: else -> stale_seen = 1
				fi
			}
		:: else
		fi;
#endif
		/* commit: check stamp and control, then the release store,
		 * which goes through the store buffer */
		atomic {
			if
			:: VALID(pos) && cbusy[IX(pos)] && !cpad[IX(pos)] && cslot[IX(pos)] == p ->
				CHECK_STORE(pos);
				sb_push(p, SB_COMMIT, pos);
				wake_pending[p] = 1
			:: else ->
				stale_seen = 1;   /* recovery took it: "stale" */
				claim_open[p] = 0
			fi
		};
		/* mrbi_lane_give: the lane is idle again (release) */
		atomic { sb_push(p, SB_LANE, 0) };
		/* mrbi_wake_consumer: a compiler barrier and a plain load of
		 * data_waiters (it may pass the buffered commit); if non-zero,
		 * the locked increment of data_seq (drains the buffer) and
		 * FUTEX_WAKE */
		if
		:: data_waiters != 0 ->
			atomic { sb_n[p] == 0; data_seq = (data_seq + 1) % 4; sleeping = 0 }
		:: else
		fi;
		atomic {
			wake_pending[p] = 0;
			k = k + rn; t = 0; gap = 0; need = 0; pos = 0;
			if
			:: k == rn1 && rn2 != 0 -> rn = rn2
			:: k < rn1 -> rn = rn1 - k   /* the rest of a halved run */
			:: else -> rn = 0
			fi
		}
	od;
	finished[p] = 1
	} unless { dead[p] }
}

/* ------------------------------------------------------------------ */
/* The consumer: read in order, skip padding, release; recovery; wait   */
/* ------------------------------------------------------------------ */

/* The release position: the head, held back at a hung writer's skipped
 * claim or at the late reads in it (mrbi_release_position). */
#define RELEASE_POS \
	(skip_active && skip_start < head -> skip_start : \
	 (late_end != 0 && late_pos < head -> late_pos : head))

#define LIVE_LANE_COVERS(q, x) \
	(!dead[q] && lane_claiming[q] != 0 && \
	 (lane_claiming[q] - 1 == (x) || \
	  (lane_claiming[q] - 1 < (x) && lane_end[q] > (x) && lane_end[q] > lane_claiming[q] - 1)))

#define NO_LIVE_OVERLAP(a, b) \
	(!LIVE_OVERLAP(0, a, b) && !LIVE_OVERLAP(1, a, b) && (NP < 3 || !LIVE_OVERLAP(NP - 1, a, b)))

#define CLEAR_LOCALS \
	s = 0; size = 0; m = 0; x = 0; t2 = 0; start = 0; cend = 0; \
	boundary = 0; limit = 0; from = 0; to = 0; lap_end = 0; cl = 0; \
	ce = 0; sv_end = 0; wslot = 0; claimed = 0; busy = 0; pad = 0; \
	live = 0; ok = 0; known = 0; slot_seen = 0; got = 0; \
	unfinished = 0; recheck = 0; observed = 0; i = 0; \
	nlive = 0; cslot_ = 0; cend_ = 0; dead_end = 0; cknown = 0

/* Each atomic block below holds one access to shared memory (a load, a
 * store or a CAS) and the purely local computation around it. */
proctype Consumer()
{
	byte head, tcache, s, size, m, i, x, t2, start, cend, boundary, limit;
	byte from, to, lap_end, cl, ce, sv_end, wslot, observed;
	byte nlive, cslot_, cend_, dead_end;   /* struct claim_survey */
	bool cknown;
	bool claimed, busy, pad, live, ok, unfinished, recheck, got, known, slot_seen, waited;
	/* hung-writer skip (recover.c): one claim at a time */
	bool skip_active;
	byte skip_start, skip_end, skip_slot, late_pos, late_end;

restart:
	/* attach_consumer: resume at consumer_position; stale waiters out */
	atomic {
		CLEAR_LOCALS;
		waited = 0;
		head = head_pub;
		tcache = head;
		data_waiters = 0;
		skip_active = 0; skip_start = 0; skip_end = 0; skip_slot = 0;
		late_end = 0; late_pos = 0
	};
	{
	do
	:: true ->
read:
		/* ---- mrbi_next_message ---- */
		atomic { unfinished = 0; got = 0; slot_seen = 0 };
#ifdef HUNG
		if
		:: skip_active || late_end != 0 -> goto late
		:: else
		fi;
#endif
rd_loop:
		/* record_observe: the stamp (acquire), then control (acquire),
		 * one step here: the writer publishes both in one step, and a
		 * header whose stamp matches changes only by commit or by this
		 * consumer's recovery, so the split adds no outcome; the payload
		 * (read after control) cannot change once committed */
		atomic {
			claimed = (head != tcache);
			s = st[IX(head)];
			busy = cbusy[IX(head)]; pad = cpad[IX(head)];
			size = clen[IX(head)]; wslot = cslot[IX(head)];
			if
			:: s == head + 1 ->
				/* validate before using anything (no false
				 * corruption: the ring here is never corrupt) */
				assert(size >= 1 && size <= CAP - IX(head));
				assert(!claimed || tcache < head || size <= tcache - head);
				if
				:: !claimed -> tcache = head + size
				:: else
				fi;
				if
				:: !busy && pad -> head = head + size; s = 0; goto rd_loop
				:: !busy && !pad ->
#ifdef HUNG
					if
					:: skip_active && wslot == skip_slot && !slot_seen ->
						slot_seen = 1; goto late   /* settle it first */
					:: else
					fi;
#endif
					m = pay[IX(head)];
					goto deliver
				:: else -> unfinished = 1
				fi
			:: else ->
				if
				:: !claimed && !recheck -> goto rd_done   /* TAIL_SOMETIMES */
				:: else
				fi
			fi
		};
		if
		:: !unfinished && !claimed ->
			/* nothing known beyond head: refresh_tail */
			atomic {
				t2 = tail;
				tcache = t2;
				if
				:: t2 == head -> t2 = 0; goto rd_done   /* empty */
				:: else -> t2 = 0
				fi
			}
		:: else
		fi;
		/* unfinished_record: after 10 ms, recovery; or wait more */
		unfinished = 1;
#ifdef NO_RECOVERY
		goto rd_done;
#else
		/* wait at most once between two recovery attempts (the C code
		 * retries every 10 ms; a failed attempt changes nothing) */
		if
		:: waited = 0; goto recover
		:: waited == 0 -> waited = 1; goto rd_done
		fi;
#endif

deliver:
		/* ---- a message: checks, consume, publish (one store) ---- */
		atomic {
			assert(m != 0);
			assert(committed[m]);                  /* nothing uncommitted */
			assert(!delivered[m]);                 /* exactly once */
			assert(MSEQ(m) == next_seq[MPROD(m)]); /* per-producer order, no holes */
			delivered[m] = 1;
			next_seq[MPROD(m)]++;
			m = 0;
			if
			:: late_end != 0 -> late_pos = late_pos + 1
			:: else -> head = head + 1
			fi;
			head_pub = RELEASE_POS;
			if
			:: recheck -> data_waiters--   /* unregister */
			:: else
			fi
		};
		goto next;

recover:
		/* ---- mrbi_recover_head ---- */
		atomic {
			x = head;
#if defined(MUT_STALE_TAIL)
			/* recovery loads the tail but the read path keeps the one
			 * it cached before (maybe only head + the size of the
			 * header it saw there) */
			t2 = tail;
#elif defined(MUT_STALE_TAIL_RECOVERY)
			/* recovery itself works from the cached tail */
			t2 = tcache;
#else
			/* acquire: every claim up to tail, and its announcement */
			t2 = tail;
			tcache = t2;
#endif
			if
			:: t2 == x -> goto rd_done
			:: else
			fi
		};
		atomic {
			s = st[IX(x)];
			busy = cbusy[IX(x)]; pad = cpad[IX(x)]; size = clen[IX(x)]; wslot = cslot[IX(x)];
			if
			:: s == x + 1 && !busy -> goto rd_loop   /* committed meanwhile */
			:: s == x + 1 && busy -> cend = 0
			:: else -> goto headerless
			fi
		};
		/* BUSY: the writer's slot is named in control; liveness (exact
		 * judge) and lane_covers for the claim's end */
		atomic {
			cl = lane_claiming[wslot];
			if
			:: cl != 0 -> start = cl - 1
			:: else
			fi
		};
		atomic {
			ce = lane_end[wslot];
			known = (ce > x && ce <= t2 && ce > start);
			if
			:: cl != 0 && known && (start == x || (start < x && x - start < CAP)) -> cend = ce
			:: else
			fi;
			/* a run lies after its gap, within one lap */
			if
			:: cend < x + size || cend - x > CAP - IX(x) -> cend = x + size
			:: else
			fi
		};
#ifndef MUT_NO_BUSY_RECHECK
		/* recover.c: look at the record again after the lanes (the
		 * writer may have committed and left its lane meanwhile);
		 * changed -> start over */
		atomic {
			if
			:: !(VALID(x) && cbusy[IX(x)] && cslot[IX(x)] == wslot && clen[IX(x)] == size) ->
				cend = 0; goto rd_loop
			:: else
			fi
		};
#endif
		if
		:: !dead[wslot] ->
#ifdef HUNG
			if
			:: !skip_active && late_end == 0 ->
				atomic {
					skip_active = 1; skip_start = x; skip_end = cend; skip_slot = wslot;
					late_skips++;
					head = cend
				};
				goto rd_loop
			:: true -> goto rd_done
			fi
#else
			goto rd_done
#endif
		:: else
		fi;
#ifdef MUT_REVERSE
		/* the mutant's recovery pads only the BUSY record */
		cend = x + size;
#endif
		/* one CAS of control from its BUSY value to one padding record
		 * over the whole claim (a batch's later records go with it) */
		atomic {
			if
			:: VALID(x) && cbusy[IX(x)] && cslot[IX(x)] == wslot && clen[IX(x)] == size ->
				assert(NO_LIVE_OVERLAP(x, cend)); /* a live claim is never skipped */
				cbusy[IX(x)] = 0; cpad[IX(x)] = 1; clen[IX(x)] = cend - x;
				cslot[IX(x)] = (cend == x + size -> wslot : 0)
			:: else
			fi;
			goto rd_loop
		};

headerless:
		/* No header: producer_position (read above), every lane, then
		 * the header again (survey_claims) */
#ifdef MUT_ANY_DIED
		/* format 1: skip once any producer ever died, up to the next
		 * header or the tail */
		atomic {
			if
			:: !any_died -> goto rd_done
			:: else
			fi
		};
		atomic {
			if
			:: VALID(x) -> goto rd_loop
			:: else -> limit = t2; sv_end = 0
			fi
		};
		goto find_next;
#else
		/* survey_claims: for each lane covering x, the judge; a live
		 * lane counts, the first live lane with an end (or the only
		 * one) is the claimer; a dead lane's end is remembered */
		atomic { nlive = 0; cknown = 0; cslot_ = 0; cend_ = 0; dead_end = 0; boundary = t2; i = 0 };
		do
		:: i < NP ->
			atomic {
				cl = lane_claiming[i];
				if
				:: cl == 0 -> i++; cl = 0
				:: else -> start = cl - 1
				fi
			};
			if
			:: cl != 0 ->
				atomic {
					ce = lane_end[i];
					if
					:: start > x && start < boundary -> boundary = start
					:: else
					fi;
					known = (ce > x && ce <= t2 && ce > start);
					if
					:: start == x || (start < x && x - start < CAP && known) ->
						if
						:: dead[i] ->
							if
							:: known && ce > dead_end -> dead_end = ce
							:: else
							fi
						:: else ->
							nlive++;
							if
							:: !cknown && (known || nlive == 1) ->
								cknown = known; cslot_ = i;
								cend_ = (known -> ce : 0)
							:: else
							fi
						fi
					:: else
					fi;
					i++; cl = 0; ce = 0; start = 0; known = 0
				}
			:: else
			fi
		:: else -> break
		od;
		atomic {
			if
			:: VALID(x) -> goto rd_done   /* the header landed meanwhile */
			:: else
			fi
		};
		if
		:: nlive != 0 ->
#ifdef HUNG
			if
#ifdef MUT_HUNG_UNKNOWN_END
			:: !skip_active && late_end == 0 && (cknown || nlive == 1) ->
#else
			:: !skip_active && late_end == 0 && cknown ->
#endif
				/* skipped, not padded: the release stays at x */
				atomic {
					skip_active = 1; skip_start = x; skip_slot = cslot_;
					late_skips++
				};
				if
				:: cend_ != 0 -> atomic { skip_end = cend_; head = cend_ }; goto rd_loop
				:: else -> limit = boundary; goto find_next   /* the mutant only */
				fi
			:: true -> goto rd_done
			fi
#else
			goto rd_done
#endif
		:: else
		fi;
		if
		:: dead_end != 0 -> atomic { from = x; to = dead_end }; goto pad_range
		:: else -> limit = boundary
		fi;
#endif
find_next:
		/* next_header(x, limit) */
		cend = x + 1;
		do
		:: atomic { cend >= limit -> cend = limit }; break
		:: atomic {
			cend < limit ->
			if
			:: VALID(cend) && clen[IX(cend)] <= CAP - IX(cend) && cend + clen[IX(cend)] <= limit -> break
			:: else -> cend++
			fi
		   }
		od;
#ifdef HUNG
		if
		:: skip_active && head == x && skip_start == x ->
			atomic { skip_end = cend; head = cend }; goto rd_loop
		:: else
		fi;
#endif
		atomic { from = x; to = cend };
pad_range:
		/* record_pad_range: the piece after the lap end first */
		atomic {
			assert(NO_LIVE_OVERLAP(from, to));   /* a live claim is never skipped */
			lap_end = from + (CAP - IX(from));
			if
			:: to > lap_end ->
				cbusy[IX(lap_end)] = 0; cpad[IX(lap_end)] = 1;
				clen[IX(lap_end)] = to - lap_end; cslot[IX(lap_end)] = 0
			:: else
			fi
		};
		atomic {
			if
			:: to > lap_end -> st[IX(lap_end)] = lap_end + 1; to = lap_end
			:: else
			fi;
			lap_end = 0
		};
		atomic { cbusy[IX(from)] = 0; cpad[IX(from)] = 1; clen[IX(from)] = to - from; cslot[IX(from)] = 0 };
		atomic { st[IX(from)] = from + 1; from = 0; to = 0 };
		goto rd_loop;

#ifdef HUNG
late:
		/* mrbi_next_late_message */
		if
		:: skip_active ->
			/* settled: no live lane announces the claim any more
			 * (one step here; the C surveys lane by lane) */
			atomic {
				if
				:: !LIVE_LANE_COVERS(0, skip_start) && !LIVE_LANE_COVERS(1, skip_start) &&
				   (NP < 3 || !LIVE_LANE_COVERS(NP - 1, skip_start)) ->
					late_pos = skip_start; late_end = skip_end;
					skip_active = 0; skip_start = 0; skip_end = 0; skip_slot = 0
				:: else -> goto after_late
				fi
			}
		:: else
		fi;
		do
		:: late_end == 0 -> break
		:: late_pos >= late_end -> late_end = 0; late_pos = 0; break
		:: else ->
			atomic {
				s = st[IX(late_pos)];
				busy = cbusy[IX(late_pos)]; pad = cpad[IX(late_pos)];
				size = clen[IX(late_pos)]; wslot = cslot[IX(late_pos)];
				if
				:: s != late_pos + 1 -> late_end = 0; late_pos = 0; break   /* left nothing */
				:: s == late_pos + 1 && busy && !dead[wslot] ->
					skip_active = 1; skip_start = late_pos; skip_end = late_end; skip_slot = wslot;
					late_end = 0; late_pos = 0; break
				:: s == late_pos + 1 && busy && dead[wslot] -> late_end = 0; late_pos = 0; break
				:: s == late_pos + 1 && !busy && pad -> late_pos = late_pos + size
				:: s == late_pos + 1 && !busy && !pad -> m = pay[IX(late_pos)]; goto deliver
				fi
			}
		od;
after_late:
#ifdef FIX_HUNG_SETTLE
		/* proposed fix (finding 4): a later record of the skipped
		 * writer waits until its skipped claim is settled */
		if
		:: slot_seen && skip_active -> goto rd_done
		:: else
		fi;
#endif
		goto rd_loop;
#endif

rd_done:
		/* ---- EEMPTY: publish what padding freed (readable()), then
		 * wait_until: announce, fence, membarrier, seq, re-check ---- */
		atomic {
			head_pub = RELEASE_POS;
			if
			:: recheck -> goto sleep
			:: else
			fi
		};
		data_waiters++;
#ifndef MUT_NO_BARRIER
		/* membarrier(GLOBAL_EXPEDITED): every registered thread runs a
		 * full barrier, which drains its store buffer */
		atomic {
			do
			:: sb_n[0] > 0 -> sb_drain_one(0)
			:: sb_n[1] > 0 -> sb_drain_one(1)
#if NP == 3
			:: sb_n[2] > 0 -> sb_drain_one(2)
#endif
			:: else -> break
			od
		};
#endif
		atomic { observed = data_seq; recheck = 1 };
		goto read;
sleep:
		/* FUTEX_WAIT(data_seq, observed): refuses if the word moved */
		atomic {
			if
			:: data_seq == observed -> sleeping = 1
			:: else
			fi
		};
end_sleep:
		if
		:: !sleeping
		:: unfinished && DEAD_IN_FRONT(head) -> sleeping = 0   /* the 10 ms slice */
#ifndef MUT_NO_WAKER_SLICE
		/* every sleep ends after 1 s at most (wait.c): modeled only
		 * where it matters, once a producer died between its CAS and
		 * its wake-up, with something claimed beyond the head (a live
		 * waker must still wake the sleeper itself) */
		:: midcall_death && tail != head -> sleeping = 0
#endif
#ifdef HUNG
		:: unfinished -> sleeping = 0   /* the hung-writer clock runs */
#endif
		fi;
		data_waiters--;
next:
		skip;
		d_step { CLEAR_LOCALS }
	od
	} unless {
		dead[CONS]
	};
	/* the consumer died: a new one attaches. Messages it read but did not
	 * release are delivered again (at-least-once across consumer death). */
	atomic {
		sleeping = 0;
		dead[CONS] = 0;
		i = 1;
		do
		:: i < NMSG ->
			if
			:: delivered[i] && msg_pos[i] >= head_pub ->
				delivered[i] = 0;
				if
				:: next_seq[MPROD(i)] > MSEQ(i) -> next_seq[MPROD(i)] = MSEQ(i)
				:: else
				fi
			:: else
			fi;
			i++
		:: else -> break
		od;
		i = 0
	};
	goto restart
}

/* The liveness properties as LTL (compiled without -DSAFETY, checked with
 * pan -a -f -N NAME: acceptance cycles under weak fairness):
 *  no_lost_wakeup: a sleeping consumer with a committed record at its head
 *    is eventually awake (use with MAXDEATH=0: a dead waker's sleeper is
 *    woken by the 1 s bound, which the model enables only after deaths);
 *  progress: an unfinished claim of a dead writer at the head is
 *    eventually passed (recovered). */
#define DATA_AT_HEAD (VALID(head_pub) && !cbusy[IX(head_pub)] && !cpad[IX(head_pub)])
#ifdef LTL
ltl no_lost_wakeup { [] ((sleeping && DATA_AT_HEAD) -> <> !sleeping) }
#define DEAD_OPEN_AT(q, pos) (claim_open[q] && DEAD_CLAIM_AT(q, pos))
#if NP == 2
#define DEAD_OPEN_IN_FRONT (DEAD_OPEN_AT(0, head_pub) || DEAD_OPEN_AT(1, head_pub))
#else
#define DEAD_OPEN_IN_FRONT \
	(DEAD_OPEN_AT(0, head_pub) || DEAD_OPEN_AT(1, head_pub) || DEAD_OPEN_AT(2, head_pub))
#endif
ltl progress { [] (DEAD_OPEN_IN_FRONT -> <> !DEAD_OPEN_IN_FRONT) }
#endif

/* At the end (nothing can move), every committed message was delivered and
 * no sleeper was left with data: no lost wake-up, consumer progress. */
#ifndef LTL
active proctype Final()
{
	byte m;
	timeout ->
	atomic {
		assert(ALL_FINISHED);
		m = 1;
		do
		:: m < NMSG ->
			assert(!committed[m] || delivered[m]);
			m++
		:: else -> break
		od
	}
}
#endif

init {
	atomic {
		run Consumer();
		run Producer(0, P0A, P0B);
		run Producer(1, P1A, P1B);
#if NP == 3
		run Producer(2, P2A, P2B);
#endif
	}
}
