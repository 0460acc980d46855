/*
 * SPDX-License-Identifier: MIT
 * The sole-producer lease (docs/FORMAT.md sections 4 and 7, sole_producer;
 * core/src/lease.c, producer.c), model-checked with SPIN (docs/MODEL.md,
 * "Sole-producer lease"). The table there maps each step to its C.
 *
 * Processes:
 *   Holder  lane 0 of producer slot 0 (generation 1), a writing handle's
 *           producer thread in a process registered for membarrier
 *           GLOBAL_EXPEDITED: NH claims (claim()). While lease_lane is its
 *           lane 0 it claims plainly: load the tail, announce (step 3),
 *           raise in_plain_window, load lease_mine, then the word (step
 *           5), store the tail (step 6); a word that is not lease_mine (or
 *           a lease_mine of 0) drops the lease and claims by CAS. Otherwise
 *           it claims by CAS (C1..C3) and then may try to acquire
 *           (lease_count_claim -> mrbi_lease_try_acquire: A1 is a
 *           heuristic, a backoff, so the model tries nondeterministically,
 *           at most MAXACQ times; A2..A4). At the end it closes
 *           (mrbi_slot_release: give_back of HELD(mine) or REVOKING(mine),
 *           the lanes, the slot freed). With -DSIGNAL, a signal handler
 *           runs one nested producer call on the holder's thread (lane 1
 *           of slot 0) between any two steps of a claim or of A3/A4.
 *   P       lane 0 of producer slot 1 (and with -DTWO_P, Q: lane 0 of slot
 *           2): PC claims by CAS (C1..C3), revoking the lease when it
 *           finds it held or marked (mrbi_lease_revoke, R1..R4).
 *           Registered for membarrier, or (P) with -DUNREG not: then its
 *           C2 is a seq_cst fence and membarrier does not reach it.
 *   V       (-DREADER) a validating reader (lossy or evictable subscriber,
 *           or a worker group with a hold timeout) joining: counts itself
 *           in validating_readers, revokes (R1..R4), reads the tail (its
 *           join point J).
 *   Late    the next producer, once everybody else finished or died: one
 *           claim by CAS (another lane: an unregistered, sequentially
 *           consistent process); it finishes any revocation left behind.
 * Only the holder acquires (the protocol is symmetric in the slots).
 *
 * Memory: SPIN interleaves atomic steps, sequentially consistent, except
 * with -DTSO: the plain (non-locked) stores of the holder's thread (the
 * lane announcements, the plain tail store, the lanes going idle) and of
 * P (its lane) go through x86-TSO FIFO store buffers (SB entries), which
 * drain at any time (process Drain), at a locked instruction of their
 * thread (CAS, fetch_add, a seq_cst fence) and at any membarrier
 * GLOBAL_EXPEDITED for registered processes (one atomic step: every
 * running thread of a registered process executes a full barrier; a
 * thread not running passed one when it was switched out). A thread's own
 * loads see its own buffered stores (store forwarding). A compiler
 * barrier is no CPU fence: a later load of another word may pass a
 * buffered store. The lease word, validating_readers and the slot owners
 * are only changed by locked instructions.
 *
 * Deaths: with -DKILL_HOLDER the holder (and with -DKILL_REVOKER P) may be
 * killed at any step, once; a killed thread's buffer has drained (nobody
 * can judge it dead before its exit completes). The liveness check of R3
 * (the slot identity, at most every 1 ms) is exact here: dead[x].
 *
 * Positions are small integers, one unit per claim; a lane's announcement
 * "T | 1" is stored as T + 1 (never 0), so R3's test c != (t | 1) is
 * c != t + 1.
 *
 * Properties:
 *  - claims never overlap: every position is claimed once (ghost bitmask
 *    `taken`, checked at each CAS success and each plain claim's step 6);
 *  - producer_position only grows: every store of it reaching memory is
 *    larger than the value it replaces;
 *  - validating readers: no plain claim after a validating reader counted
 *    itself and revoked, and none at or past its join point J;
 *  - the lease returns to 0: after the holder closed (and nobody died),
 *    and, after a death, once the next producer (Late) claimed;
 *  - no revoker waits forever unless the holder is alive and stopped
 *    inside its window: when nothing can move any more (SPIN's timeout),
 *    every process finished or was killed (Final); R3 is a blocking wait
 *    (its polling loop with the reads of the lane and the tail at the
 *    moment the wait ends, or a re-read when the lane changed). With
 *    -DLTL, as the formula r3_progress under weak fairness instead.
 *
 * Options (-D): TSO, SIGNAL, READER, UNREG, KILL_HOLDER, KILL_REVOKER,
 *   TWO_P, GARBAGE (the lease word starts as garbage: treated as REVOKING
 *   of a holder that is gone), LTL, NH (holder claims, 2; 3 lets the
 *   holder take the lease again after losing it and claim under it),
 *   PC (P's claims, 1), MAXACQ (acquire attempts, 2), R2_PAUSE (the
 *   kernel refuses the revoker's membarrier: it pauses 1 ms instead,
 *   modelled as a wait until the holder's store buffer has drained),
 *   A4_ANY_LANE (no revoker marks; A4 gives back on any announcement: the
 *   first version's A4, also clean).
 * Mutants (-D), each must give a counterexample:
 *   MUT_R2_NO_MEMBARRIER    (TSO) the revoker issues no membarrier in R2
 *   MUT_NO_R3               the revoker does not wait for the window (R3)
 *   MUT_A4_NO_LANE_SCAN     the acquirer does not scan the lanes in A4
 *   MUT_LOAD_FIRST          the holder loads the lease before announcing
 *                           (steps 3 and 5 swapped)
 *   MUT_CAS_THEN_CHECK      a CAS-mode producer checks the lease after its
 *                           CAS instead of before
 *   MUT_A3_NO_MEMBARRIER    (TSO) the acquirer issues no membarrier in A3
 *   MUT_A4_NO_READERS       (READER) A4 does not re-check validating_readers
 *   MUT_UNREG_NO_FENCE      (TSO, UNREG) an unregistered process's C2 is a
 *                           compiler barrier only
 *   MUT_SIG_CLAIMS          (SIGNAL) a nested call inside the holder's
 *                           plain window claims (revokes without waiting
 *                           for itself) instead of returning MRB_EFULL
 *   MUT_SELF_WAIT           (SIGNAL) a call on the holder's own thread
 *                           waits for its own window in R3: a nested call
 *                           waits forever for the call it interrupted
 *   MUT_NO_LIVENESS         (KILL_HOLDER) R3 ignores the holder's death
 *   MUT_NO_RELEASE          the holder does not give the lease back at close
 *   MUT_READER_TAIL_FIRST   (READER) the reader reads its join point before
 *                           revoking
 *   MUT_NO_FALLBACK         the holder at step 5 claims plainly although
 *                           the word is no longer its lease
 *   MUT_MINE_ZERO           (SIGNAL; finding F1 as before its fix) step 5
 *                           accepts word == lease_mine == 0
 *   MUT_A4_POSITION_ONLY    (READER or TWO_P, NH=3; finding F3 as before
 *                           its fix) revokers do not mark their lanes and
 *                           A4 looks only at announcements at the producer
 *                           position: a revoker between R3 and R4 then
 *                           clears a later round's mark (ABA)
 *   MUT_R4_STORE            R4 stores 0 instead of its CAS (no
 *                           counterexample: A4 keeps the holder from taking
 *                           the lease again under a revoker; docs/MODEL.md)
 *   MUT_MARK_AFTER_LOOK     a revoker marks its lane after its first load
 *                           of the word instead of before (no
 *                           counterexample either; docs/MODEL.md)
 * Witnesses (-D), each must give a counterexample (the model is not
 * vacuous): WIT_PLAIN (a plain claim is made), WIT_R3_OPEN (a revoker
 * finds the holder's window open in R3 and must wait), WIT_LATE_FINISHES
 * (KILL_REVOKER: the next producer finishes a dead revoker's REVOKING).
 */

#ifndef NH
#define NH 2
#endif
#ifndef PC
#define PC 1
#endif
#ifndef MAXACQ
#define MAXACQ 2
#endif
#define SB 3
#ifdef TWO_P
#define NPC 2
#else
#define NPC 1
#endif

/* The lease word: kind in bits 0-1 (0 none, 1 HELD, 2 REVOKING, 3
 * garbage), the slot in bit 2, the generation above. */
#define HELD(s, g) ((((g) * 2 + (s)) * 4) + 1)
#define REVOKING(s, g) ((((g) * 2 + (s)) * 4) + 2)
#define GARBAGE_VALUE 3
#define KIND(v) ((v) % 4)
#define LSLOT(v) (((v) / 4) % 2)
#define LGEN(v) ((v) / 8)
#define HELD0 HELD(0, 1)

/* Words that plain stores write (mem[]): the tail and the lanes. */
#define TAIL 0
#define CL00 1 /* slot 0 lane 0: the holder's producer thread */
#define CL01 2 /* slot 0 lane 1: a nested call in a signal handler */
#define CL10 3 /* slot 1 lane 0: P */
#define CL20 4 /* slot 2 lane 0: Q (-DTWO_P) */
#define CLL 5  /* Late's lane */
#define NOVAR 255
#define REVOKE_MARK 128 /* a revoker's mark on its lane (claiming | 2) */
#define NOBUF 3 /* V: no buffer (sequentially consistent) */
#define LATEBUF 4 /* Late: no buffer either (its own name for the R3 ghost) */
/* the R3 ghost bit of the thread of buffer b */
#define ME(b) (1 << (b))

byte mem[6];
byte bx[5 * SB] = NOVAR; /* store buffers: 0 holder thread, 1 P, 2 Q; 3 and 4 stay empty */
byte bv[5 * SB];
byte blen[5];

#ifdef GARBAGE
byte lease = GARBAGE_VALUE; /* sole_producer */
#else
byte lease;
#endif
byte vr;           /* validating_readers */
byte sgen[3] = 1;  /* slot owner generation, 0 when freed */
bool dead[3];      /* slot owner killed */

/* ghosts */
byte taken;        /* positions claimed (bitmask) */
byte plainmask;    /* positions claimed plainly */
bool joined;       /* V read its join point */
bool vrevoked;     /* V counted itself and finished its revocation */
byte jpos;         /* V's join point */
bool hdone, vdone, ldone, hclosed, killed;
byte pdone;        /* CAS producers finished or killed */
bool pend[3];
byte r3w;          /* revokers waiting in R3 (a bit each: holder thread 1, P 2, V 4, Late 8) */
bool sig_left = true;

/* the holder's handle (its producer thread and calls nested on it) */
byte lmine;        /* lease_mine: the lease word while it holds it, or 0 */
bool llane;        /* lease_lane is lane 0: claim() takes the plain path */
bool inwin;        /* in_plain_window */

#ifdef UNREG
#define PREG false
#else
#define PREG true
#endif

/* ---- memory ------------------------------------------------------------ */
inline write_mem(x, val)
{
	if
	:: x == TAIL -> assert(val > mem[TAIL]) /* producer_position only grows */
	:: else -> skip
	fi;
	mem[x] = val
}

/* the oldest store of buffer b reaches memory */
inline drain_one(b)
{
	write_mem(bx[b * SB], bv[b * SB]);
	bx[b * SB] = bx[b * SB + 1]; bv[b * SB] = bv[b * SB + 1];
	bx[b * SB + 1] = bx[b * SB + 2]; bv[b * SB + 1] = bv[b * SB + 2];
	bx[b * SB + 2] = NOVAR; bv[b * SB + 2] = 0;
	blen[b]--
}

/* a locked instruction or a full fence of buffer b's thread */
inline lock(b)
{
	do
	:: blen[b] > 0 -> drain_one(b)
	:: else -> break
	od;
	skip
}

/* membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) called by buffer b's
 * thread: a full barrier of the caller (a system call), and every running
 * thread of every registered process executes a full barrier */
inline membarrier(b)
{
	lock(b);
	lock(0);
	if
	:: PREG -> lock(1)
	:: else -> skip
	fi;
	if
	:: NPC == 2 -> lock(2)
	:: else -> skip
	fi
}

/* a plain (release) store */
inline st_body(b, x, val)
{
#ifdef TSO
	if
	:: b >= NOBUF -> write_mem(x, val)
	:: else ->
		if
		:: blen[b] == SB -> drain_one(b) /* full: the CPU stalls */
		:: else -> skip
		fi;
		bx[b * SB + blen[b]] = x; bv[b * SB + blen[b]] = val; blen[b]++
	fi
#else
	write_mem(x, val)
#endif
}
inline st(b, x, val)
{
	d_step { st_body(b, x, val) }
}

/* a plain load, forwarded from the thread's own buffer */
inline ld(b, x, out)
{
	d_step {
		out = mem[x];
		if :: blen[b] > 0 && bx[b * SB] == x -> out = bv[b * SB] :: else -> skip fi;
		if :: blen[b] > 1 && bx[b * SB + 1] == x -> out = bv[b * SB + 1] :: else -> skip fi;
		if :: blen[b] > 2 && bx[b * SB + 2] == x -> out = bv[b * SB + 2] :: else -> skip fi
	}
}

/* A claim of position t is made (CAS success or plain step 6). */
inline claimed(t)
{
	assert((taken & (1 << t)) == 0); /* no two claims overlap */
	taken = taken | (1 << t)
}

#ifdef MUT_SIG_CLAIMS
#define SIG_CLAIMS true
#else
#define SIG_CLAIMS false
#endif
#ifdef MUT_SELF_WAIT
#define SELF_WAIT true
#else
#define SELF_WAIT false
#endif
#ifdef MUT_NO_R3
#define NO_R3 true
#else
#define NO_R3 false
#endif
#ifdef MUT_MINE_ZERO
#define MINE_ZERO true
#else
#define MINE_ZERO false
#endif
#if defined(MUT_A4_POSITION_ONLY) || defined(A4_ANY_LANE)
#define MARKING false
#else
#define MARKING true
#endif
#ifdef MUT_R4_STORE
#define R4_BLIND true
#else
#define R4_BLIND false
#endif
#ifdef MUT_NO_FALLBACK
#define NO_FALLBACK true
#else
#define NO_FALLBACK false
#endif

#ifdef KILL_HOLDER
#define KILLABLE_H true
#else
#define KILLABLE_H false
#endif
#ifdef KILL_REVOKER
#define KILLABLE_P true
#else
#define KILLABLE_P false
#endif

/* R4: CAS REVOKING(x) -> 0; on failure go on with what it read */
inline r4(b, v)
{
	d_step {
		lock(b);
		if
		:: lease == v || R4_BLIND -> lease = 0; v = 0
		:: else -> v = lease
		fi
	}
}

/* the revoking mark of a producer's lane (seq_cst store: drains) */
inline mark(b, lane, t)
{
	if
	:: MARKING && lane != NOVAR ->
		d_step { st_body(b, lane, (t + 1) | REVOKE_MARK); lock(b) }
	:: else -> skip
	fi
}

/* ---- revoke: R1..R4 (mrbi_lease_revoke) ----------------------------------
 * self: the caller runs on the holder's producer thread (lane 0 in CAS
 * mode, or a call nested in a signal handler): a lease naming its own slot
 * is "mine" there; it does not wait for itself in R3, and inside its own
 * plain window (a nested call) it returns MRB_EFULL (ef). */
inline revoke(b, self, me, v, c, tt, ef, lane, t)
{
	/* a producer marks its lane revoking (claiming | 2, a seq_cst store)
	 * before its first look at the word: an acquirer that took the lease
	 * after that look sees the mark (A4); the lane's next announcement
	 * clears it */
#ifndef MUT_MARK_AFTER_LOOK
	mark(b, lane, t);
#endif
	v = lease; /* R1 */
#ifdef MUT_MARK_AFTER_LOOK
	mark(b, lane, t);
#endif
	do
	:: KIND(v) == 0 -> break
	:: KIND(v) != 0 && self && (v == HELD0 || v == REVOKING(0, 1)) && inwin && !SIG_CLAIMS ->
		/* mine, and a nested call inside its own thread's plain
		 * window: MRB_EFULL, before marking the word (the lane's
		 * announcement back as it was) */
		if
		:: MARKING && lane != NOVAR -> st(b, lane, t + 1)
		:: else -> skip
		fi;
		ef = true; break
	:: else ->
		if
		:: KIND(v) == 1 ->
			/* HELD(x): CAS v -> REVOKING(x); on failure re-read */
			d_step {
				lock(b);
				if
				:: lease == v -> lease = v + 1; v = v + 1
				:: else -> v = lease
				fi
			}
		:: else -> skip
		fi;
		if
		:: KIND(v) == 0 || KIND(v) == 1 -> skip /* (re-read: again) */
		:: self && v == REVOKING(0, 1) && !SELF_WAIT ->
			/* mine: no barrier, no wait; the lease is dropped */
			d_step { lmine = 0; llane = false };
			r4(b, v)
		:: else ->
			/* REVOKING(x) (ours, or left by a revoker that may have
			 * died), or garbage (a holder that is gone) */
#if defined(R2_PAUSE)
			/* membarrier refused: a 1 ms pause, in which the
			 * holder's store buffer drains (the window holds no
			 * system call) */
			lock(b);
			(blen[0] == 0);
#elif !defined(MUT_R2_NO_MEMBARRIER)
			d_step { membarrier(b) }; /* R2 */
#endif
			/* R3: wait until the holder's plain window is closed */
			if
			:: NO_R3 || KIND(v) == 3 -> skip
			:: else ->
				r3w = r3w | me;
				do
				:: ld(b, CL00, c); /* lane 0 of slot x (only slot 0 holds) */
#ifdef WIT_R3_OPEN
					assert(c != mem[TAIL] + 1);
#endif
					if
					/* the tail at the moment the wait ends: closed when
					 * c != t | 1, the slot no longer generation g, or
					 * the holder dead */
					:: atomic {
						(c != mem[TAIL] + 1 || sgen[LSLOT(v)] != LGEN(v)
#ifndef MUT_NO_LIVENESS
						 || dead[LSLOT(v)]
#endif
						) -> tt = mem[TAIL]
					   } -> break
					:: c != mem[CL00] -> skip /* the lane moved: read again */
					fi
				od;
				r3w = r3w & ~me
			fi;
			r4(b, v)
		fi
	od;
	skip; /* (a break may not jump into a d_step) */
	d_step { v = 0; c = 0; tt = 0 }
}

/* ---- a claim by CAS: C1..C3 (claim_loop, lease_lets_cas) -----------------
 * lane: the caller's lane; b: its buffer; self: on the holder's thread;
 * lane0h: the holder's lane 0 (while the word is its lease_mine and the
 * lane its lease_lane, it may CAS too). ok: claimed; ef: MRB_EFULL. */
inline cas_claim(lane, b, self, lane0h, t, v, c, tt, ok, ef)
{
	ok = false;
	do
	:: ok || ef -> break
	:: else ->
		ld(b, TAIL, t);
		st(b, lane, t + 1); /* C1 */
#ifdef MUT_CAS_THEN_CHECK
		d_step {
			lock(b);
			if
			:: mem[TAIL] == t -> write_mem(TAIL, t + 1); claimed(t); ok = true
			:: else -> skip
			fi
		};
		v = lease;
		if
		:: v == 0 || (lane0h && llane && v == lmine) -> skip
		:: else -> revoke(b, self, ME(b), v, c, tt, ef, lane, t)
		fi
#else
		/* C2: a compiler barrier; a seq_cst fence in an unregistered
		 * process */
		if
		:: b == 1 && !PREG ->
#ifndef MUT_UNREG_NO_FENCE
			d_step { lock(b) }
#else
			skip
#endif
		:: else -> skip
		fi;
		v = lease; /* C3 */
		if
		:: v == 0 || (lane0h && llane && v == lmine) ->
			d_step {
				lock(b);
				if
				:: mem[TAIL] == t -> write_mem(TAIL, t + 1); claimed(t); ok = true
				:: else -> skip
				fi
			}
		:: else -> revoke(b, self, ME(b), v, c, tt, ef, lane, t) /* then retry */
		fi
#endif
	od;
	skip;
	d_step { t = 0; v = 0 }
}

/* ---- the holder's thread ------------------------------------------------- */
#ifdef SIGNAL
/* A producer call nested in a signal handler on the holder's thread, at
 * most once, between any two steps of a claim: on lane 1, by CAS (its lane
 * is not lease_lane), revoking as its own thread: MRB_EFULL if the outer
 * call is inside its plain window (in_plain_window), else no wait for
 * itself. Its lane goes idle after the call (a claim or MRB_EFULL). */
#define SIG \
	if \
	:: sig_left -> \
		sig_left = false; \
		cas_claim(CL01, 0, true, false, t2, v2, c2, tt2, ok2, ef2); \
		st(0, CL01, 0); \
		d_step { ok2 = false; ef2 = false } \
	:: true -> skip \
	fi
#else
#define SIG skip
#endif

/* A4's look at one lane other than my lane 0 (claim_may_follow) of a
 * writer that may be alive: an announcement at the producer position (read
 * after the lane), or a lane marked by a revoker, gives the lease back.
 * MUT_A4_POSITION_ONLY: no marks (finding F3 as it was); A4_ANY_LANE: no
 * marks, any announcement gives the lease back (the first version's A4).
 * v: the verdict so far (non-zero: give back). */
inline a4_lane(L, S)
{
	if
	:: v == 0 ->
		ld(0, L, c);
		if
		:: c == 0 -> skip
		:: else ->
#ifndef A4_ANY_LANE
			ld(0, TAIL, tt);
			if
			:: c == tt + 1 || (c & REVOKE_MARK) != 0 -> tt = 1
			:: else -> tt = 0
			fi;
#else
			tt = 1;
#endif
			if
			:: tt == 1 && (S == 0 || !dead[S]) -> v = 1
			:: else -> skip
			fi
		fi;
		d_step { c = 0; tt = 0 }
	:: else -> skip
	fi
}

active proctype Holder()
{
	byte t, v, c, tt, k, acq;
	bool ok, ef;
#ifdef SIGNAL
	byte t2, v2, c2, tt2;
	bool ok2, ef2;
#endif
	{
	k = 0;
	do
	:: k < NH ->
		/* claim() */
		ld(0, TAIL, t); /* step 1 (its own value, while it holds the lease) */
		SIG;
#ifdef MUT_LOAD_FIRST
		v = lease; c = lmine; /* step 5 first */
#endif
		st(0, CL00, t + 1); /* step 3 (release) */
		SIG;
		if
		:: llane ->
			/* the plain claim (lane == lease_lane) */
			SIG;
			inwin = true; /* in_plain_window */
#ifndef MUT_LOAD_FIRST
			/* step 4: compiler barrier only */
			SIG;
			/* step 5: lease_mine (after the flag), then the word */
			c = lmine;
			SIG;
			v = lease;
#endif
			if
			:: (v != c || (c == 0 && !MINE_ZERO)) && !NO_FALLBACK ->
				/* stop using the lease: claim_loop */
				d_step { inwin = false; lmine = 0; llane = false; v = 0; c = 0 };
				cas_claim(CL00, 0, true, true, t, v, c, tt, ok, ef)
			:: else ->
				SIG;
				d_step { /* step 6: the claim is made */
					claimed(t);
#ifdef WIT_PLAIN
					assert(false);
#endif
					assert(!vrevoked); /* no plain claim after a validating reader revoked */
					assert(!joined || t < jpos);
					plainmask = plainmask | (1 << t);
					st_body(0, TAIL, t + 1); /* (release) */
					v = 0; c = 0
				};
				d_step { inwin = false; t = 0 }
			fi
		:: else ->
			/* by CAS (the first attempt with this T, then claim_loop) */
			d_step { t = 0 };
			cas_claim(CL00, 0, true, true, t, v, c, tt, ok, ef);
			/* lease_count_claim: now and then (A1 a heuristic:
			 * nondeterministic here), try to take the lease */
			if
			:: acq < MAXACQ ->
				acq++;
				/* a lease_mine the word no longer holds is dropped */
				d_step {
					if
					:: lmine != 0 && lease != lmine -> lmine = 0; llane = false
					:: else -> skip
					fi
				};
				/* A2: CAS 0 -> HELD(mine) (seq_cst) */
				d_step {
					lock(0);
					if
					:: lease == 0 -> lease = HELD0; ok = true
					:: else -> ok = false
					fi
				};
				if
				:: ok ->
#ifndef MUT_A3_NO_MEMBARRIER
					d_step { membarrier(0) }; /* A3 */
#endif
					SIG;
					/* A4: validating_readers, then every lane but my
					 * lane 0 of a writer that may be alive */
					v = vr;
#ifdef MUT_A4_NO_READERS
					v = 0;
#endif
#ifndef MUT_A4_NO_LANE_SCAN
					a4_lane(CL01, 0);
					a4_lane(CL10, 1);
					if
					:: NPC == 2 -> a4_lane(CL20, 2)
					:: else -> skip
					fi;
#endif
					if
					:: v != 0 ->
						/* give it back (if REVOKING(mine) by now,
						 * the revoker finishes) */
						d_step {
							lock(0);
							if :: lease == HELD0 -> lease = 0 :: else -> skip fi
						}
					:: else -> d_step { lmine = HELD0; llane = true }
					fi;
					d_step { v = 0; c = 0; ok = false }
				:: else -> skip
				fi
			:: true -> skip
			fi
		fi;
		SIG;
		st(0, CL00, 0); /* commit, the lane idle */
		k++
	:: else -> break
	od;
	skip;
	/* close (mrbi_slot_release): give the lease back (CAS lease_mine ->
	 * 0), then the lanes, then the slot */
#ifndef MUT_NO_RELEASE
	d_step {
		lock(0);
		/* give_back: held, or marked by a revoker (which then finds
		 * the window closed and its own CAS failing) */
		if
		:: lmine != 0 && (lease == lmine || lease == lmine + 1) -> lease = 0
		:: else -> skip
		fi;
		lmine = 0; llane = false
	};
#endif
	d_step { lock(0); sgen[0] = 0; hclosed = true }
	} unless { dead[0] };
	hdone = true
}

/* ---- P: claims by CAS on slot 1 ------------------------------------------ */
active [NPC] proctype P()
{
	/* _pid 1: P (slot 1, buffer 1); _pid 2: Q (slot 2, buffer 2) */
	byte t, v, c, tt, k;
	bool ok, ef;
	{
	k = 0;
	do
	:: k < PC ->
		cas_claim(CL10 + _pid - 1, _pid, false, false, t, v, c, tt, ok, ef);
		st(_pid, CL10 + _pid - 1, 0); /* the lane idle */
		k++
	:: else -> break
	od;
	skip;
	d_step { lock(_pid); sgen[_pid] = 0 }
	} unless { dead[_pid] };
	d_step { pdone++; pend[_pid] = true }
}

#ifdef READER
/* ---- V: a validating reader joins ---------------------------------------- */
active proctype V()
{
	byte v, c, tt;
	bool ef;
#ifdef MUT_READER_TAIL_FIRST
	d_step { vr++ };
	d_step { jpos = mem[TAIL]; joined = true; assert((plainmask >> jpos) == 0) };
	revoke(NOBUF, false, ME(NOBUF), v, c, tt, ef, NOVAR, 0);
	vrevoked = true;
#else
	d_step { vr++ }; /* counts itself (seq_cst fetch_add) */
	revoke(NOBUF, false, ME(NOBUF), v, c, tt, ef, NOVAR, 0);
	vrevoked = true;
	/* its join reads the tail after the revocation */
	d_step { jpos = mem[TAIL]; joined = true };
#endif
	assert((plainmask >> jpos) == 0); /* no plain claim at or past J */
	vdone = true
}
#define VDONE vdone
#else
#define VDONE true
#endif

/* ---- Late: the next producer --------------------------------------------- */
active proctype Late()
{
	byte t, v, c, tt;
	bool ok, ef;
	(hdone && pdone == NPC && VDONE);
	/* after the holder closed (nobody killed) the lease is back at 0 */
	assert(!hclosed || killed || lease == 0);
#ifdef WIT_LATE_FINISHES
	assert(!(killed && KIND(lease) == 2));
#endif
	cas_claim(CLL, LATEBUF, false, false, t, v, c, tt, ok, ef);
	st(LATEBUF, CLL, 0);
	assert(lease == 0); /* and after a death, once the next producer claimed */
	ldone = true
}

/* ---- store buffers drain at any time ------------------------------------- */
#ifdef TSO
active proctype Drain()
{
end:
	do
	:: d_step { blen[0] > 0 -> drain_one(0) }
	:: d_step { blen[1] > 0 -> drain_one(1) }
	:: d_step { blen[2] > 0 -> drain_one(2) }
	od
}
#endif

#if defined(KILL_HOLDER) || defined(KILL_REVOKER)
active proctype Killer()
{
	bool h = KILLABLE_H, p = KILLABLE_P;
end:
	do
	:: d_step { h && !hdone && blen[0] == 0 -> dead[0] = true; h = false; killed = true; r3w = r3w & ~1 }
	:: d_step { p && !dead[1] && blen[1] == 0 && !pend[1] -> dead[1] = true; p = false; killed = true; r3w = r3w & ~2 }
	od
}
#endif

#ifdef LTL
/* No revoker waits forever unless the holder is alive inside its window:
 * under weak fairness, every wait in R3 ends. */
ltl r3_progress { [] ((r3w != 0) -> <> (r3w == 0)) }
#else
/* When nothing can move any more: everybody finished or was killed (no
 * revoker waits forever), and the lease is back at 0. */
active proctype Final()
{
	timeout ->
	assert(hdone && pdone == NPC && VDONE && ldone && r3w == 0);
	assert(lease == 0)
}
#endif
