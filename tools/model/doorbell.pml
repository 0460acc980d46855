/*
 * SPDX-License-Identifier: MIT
 * Doorbells: waiting in an event loop (docs/FORMAT.md section 6, "Waiting
 * in an event loop (doorbells)"; core/src/doorbell.c), model-checked with
 * SPIN (docs/MODEL.md, "Doorbells"). Every step names the C it stands for
 * (function, and its line in the commit that last changed this file; the
 * table in docs/MODEL.md "Doorbells" is the same map).
 *
 * Two directions, one at a time:
 *   default   data: one reader (the ring's consumer) waits in its event loop
 *             (mrb.h's loop: mrb_read until MRB_EEMPTY, mrb_arm_read,
 *             epoll_wait) on consumer_doorbell / data_waiters; NP producers
 *             commit MSGS messages each and ring (mrbi_wake_consumer ->
 *             mrbi_doorbell_ring_readers).
 *   -DWORKERS workers: two workers of a group wait on their worker slots'
 *             doorbells (counted in data_waiters and in their group's
 *             work_armed); producers ring every armed worker
 *             (ring_workers). Its own options, properties and mutants are
 *             in its section below (docs/MODEL.md "Worker doorbells").
 *   -DSPACE   space: NW writers wait for space in their event loops
 *             (mrb_arm_write) on the space_doorbells table (NBELLS entries)
 *             / space_waiters; the consumer reads and publishes its
 *             position, then rings (mrbi_publish_head ->
 *             mrbi_doorbell_ring_space).
 *
 * A doorbell socket is a counter of queued datagrams: readable
 * (level-triggered) while non-zero, emptied by doorbell_drain, and a
 * datagram to a name nobody has bound (a dead waiter) is dropped
 * (ECONNREFUSED). Names: the data reader of generation g is g (1, then 2
 * after a takeover); writer w is w + 1.
 *
 * Memory: SPIN interleaves atomic steps, sequentially consistent, except
 * with -DTSO: the waker's progress store (a producer's commit; the
 * consumer's consumer_position) goes through an x86-TSO store buffer that
 * drains at any time, at the waker's own fence (doorbell.c ring_readers /
 * ring_space) and at the waiter's membarrier (mrbi_waiter_settle), and that
 * the waker's load of the waiter count may overtake (the compiler barrier
 * of waiters_after_publish, handle.h, is no CPU fence). Every other shared
 * store in this path is a locked instruction (fetch_add, exchange, CAS).
 *
 * Properties:
 *  - no lost wake-up: when nothing can move any more (SPIN's `timeout`),
 *    every message was delivered (data) / written (space); a waiter blocked
 *    in epoll_wait with an empty socket while its condition holds and
 *    nobody will ring is such a state. With -DLTL, as a liveness formula
 *    under weak fairness instead.
 *  - exact accounting: the waiter count equals the number of armed
 *    doorbells plus the registrations in flight (a waiter between its
 *    increment and its publish, anyone between taking a name out and
 *    taking its count out), checked in every state (Monitor); a count is
 *    never taken out of a count that is already 0; at the end the count
 *    equals the armed doorbells. With a reader killed and taken over,
 *    where a takeover zeroes the counts under a waker's feet: a reader that
 *    enters epoll_wait armed is in the count, unless a waker took a name or
 *    a count while it armed (so a lost count is not carried over).
 *  - no system call without an armed waiter: a waker enters its wake-up
 *    path (FUTEX_WAKE, the ring) only when some doorbell is armed or a
 *    registration is in flight; it sends only to a name it took out of an
 *    armed word (one datagram per arming: the exchange).
 *
 * Options (-D):
 *   NP, MSGS       data: producers, messages each (2, 1)
 *   NW, WMSGS, CAP, NBELLS  space: writers, messages each, ring capacity
 *                  in records, doorbell table entries (2, 1, 1, 2)
 *   TSO            store buffer of the waker's progress store
 *   CANCEL         the waiter may cancel a wait once (mrb_disarm) and
 *                  resume its loop later
 *   KILL_READER    data: the reader may be killed at any step once; a new
 *                  consumer takes over (attach_consumer) and runs the loop
 *   KILL_WAKER     a waker may be killed at any step of its wake-up once;
 *                  the waiter's poll bound (1 s) is then enabled
 *   KILL_WRITER    space: writer 1 may be killed at any step once
 *   CHECK_LEAK     (KILL_WRITER) require the exact count at the end anyway
 *                  (finding 7: a count left behind)
 *   LTL            check the no_lost_wakeup formula instead of the end state
 *   POLL_BOUND     the waiter's poll may end by its 1 s bound at any time
 *                  (with KILL_READER: once a consumer took over); by
 *                  default only after a waker died, where it is needed
 * Mutants (-D), each must give a counterexample:
 *   MUT_RECHECK_FIRST  the waiter's last check comes before it publishes
 *                      its count and name (no re-check after arming)
 *   MUT_WAKER_EARLY    the waker looks at the waiter count before its
 *                      progress store (its fence/barrier order lost)
 *   MUT_NO_MEMBARRIER  (TSO) the waiter's settle() issues no membarrier but
 *                      waits the full 1 s as if ordered
 *   MUT_DRAIN_LATE     the waiter drains its socket after the re-check
 *                      instead of before the first check
 *   MUT_DISARM_BLIND   a disarm clears the word and takes a count out
 *                      whether or not a waker took the name first (a store
 *                      instead of the CAS name -> 0)
 *   MUT_NAME_FIRST     the waiter publishes its name before counting itself
 *   MUT_REARM_KEEPS_COUNT  (finding 6, as before its fix) arming again
 *                      counts in, then takes the replaced registration out:
 *                      a count lost once is lost for every later arming
 */

#define NONE 255

/* ---- shared words (struct mrb_file_header) ------------------------------- */
#ifdef KILL_WAKER
#define KILL_TOKEN kill_token
#else
#define KILL_TOKEN false
#endif
/* The ghost accounting (inflight) is exact unless a death or a takeover
 * removes counts behind its back. */
#if defined(KILL_WAKER) || defined(KILL_READER) || defined(KILL_WRITER)
#define GHOST_OFF true
#else
#define GHOST_OFF false
#endif
byte waiters;   /* data_waiters / space_waiters */
byte inflight;  /* ghost: registrations in flight (see Monitor) */
bool floored;   /* ghost: a count_out found the count at 0 */
bool waker_died; /* a waker was killed in its wake-up: the 1 s bound */
bool kill_token = true; /* KILL_WAKER: one death to give */

/* The waiter's poll may end by its 1 s bound (doorbell.c:430-433) at any
 * time with POLL_BOUND; otherwise only where a waker's death makes it
 * necessary (a waker killed in its wake-up, and what it woke for is there),
 * so that the end-state check requires a live waker to ring. */
#if defined(POLL_BOUND) && defined(KILL_READER)
#define BOUND took_over /* what the takeover configuration needs */
#elif defined(POLL_BOUND)
#define BOUND true
#else
#define BOUND (waker_died && READY)
#endif
bool disturbed; /* ghost: a waker took a name or a count while the reader armed */

/* A registration's count leaves `waiters` exactly once: count_out
 * (doorbell.c:209-216), a load then a CAS loop that stops at 0. */
inline count_out(cur, done)
{
	cur = waiters; /* relaxed load, :174 */
	done = false;
	do
	:: done -> break
	:: !done && cur == 0 -> floored = true; break
	:: !done && cur != 0 ->
		atomic {
			if
			:: waiters == cur -> waiters--; inflight--; done = true /* CAS, :176 */
			:: else -> cur = waiters /* failed CAS reloads */
			fi
		}
	od
}

#if defined(WORKERS)
/* ======================= workers: worker doorbells ========================= */
/* Worker handles of a fan-out ring wait in their event loops on their
 * worker slot's doorbell (docs/FORMAT.md sections 6 and 9, docs/WORKERS.md
 * "In an event loop"). Two worker slots (0, 1) of group 0; NP producers
 * commit MSGS messages each and ring every armed worker (ring_workers).
 * A worker's loop: mrb_read until MRB_EEMPTY (take a message off its
 * group's claim position, release it at its next read), mrb_arm_read,
 * epoll_wait. Names: worker process k (1: slot 0, 2: slot 1, 3: the joiner
 * of -DREJOIN in slot 1) arming for group g is g * 4 + k: the group is in
 * the name, as MRB_DOORBELL_GROUP_SHIFT/MASK put it in bits 1-2
 * (layout.h:207-215, doorbell_socket doorbell.c:109-110). */
/*
 * Options (-D): NP, MSGS (2, 1); TSO (the producer's commit in a store
 * buffer, as in the data section); CANCEL (worker 1's loop stops waiting
 * for good: mrb_disarm, then no more reads); KILL_WORKER (worker 1 killed
 * at any step, once); LEAVE (worker 1 may leave: mrbi_worker_leave);
 * REJOIN (once worker 1 is gone, a worker of group 1 takes its slot);
 * KILL_WAKER (a producer killed at any step of its wake-up, once);
 * NO_RESCUE_BOUND (the bound not enabled for a rescue: must fail);
 * CHECK_LEAK (KILL_WORKER: require exact counts at the end anyway).
 * Properties: Final (every message taken and released by a worker of each
 * group: no lost wake-up; the counts are the armed names plus only what a
 * killed worker left in flight), Monitor (data_waiters and each group's
 * work_armed exact in every state, no count_out at 0), and at each waker's
 * count load, no system call or slot scan without an armed or arming
 * worker. The 100 ms bound ends a wait only where a dead worker's run of
 * the group is there to rescue (RESCUABLE), or a producer was killed
 * between its commit and its ring (KILL_WAKER).
 * Mutants: MUT_WAKER_EARLY (the gate's load before the commit), MUT_RING_ONE (one armed worker rung, not all), MUT_GROUP_EARLY
 * (the counts go to the slot's group read before the exchange, not to the
 * name's), MUT_DATA_FIRST (data_waiters counted before work_armed: no
 * counterexample; see docs/MODEL.md).
 */
#ifndef NP
#define NP 2
#endif
#ifndef MSGS
#define MSGS 1
#endif
#define TOTAL (NP * MSGS)
#define NG 2            /* groups: 0, and 1 for the joiner of -DREJOIN */
#define NAME_GROUP(n) ((n) / 4)
#define NAME_ID(n) ((n) % 4)
#define OWNED 0
#define BUSY 1
#define FREE 2
#define NARMED(gr) ((armed[0] != 0 && NAME_GROUP(armed[0]) == gr) + (armed[1] != 0 && NAME_GROUP(armed[1]) == gr))
#define ARMED_W ((armed[0] != 0) + (armed[1] != 0))

byte vis;               /* commits visible in memory */
bool sb[NP];            /* TSO: a producer's commit still in its store buffer */
byte claim[NG];         /* groups[g].claim_position (messages) */
byte done_[NG];         /* ghost: messages a worker of group g released */
byte armed[2];          /* workers[s].doorbell.armed: 0 or a name */
byte sgroup[2];         /* workers[s].group */
bool held[2];           /* workers[s].inflight: HOLDING a run of one message */
bool dead[2];           /* slot s's owner was killed */
byte sown[2];           /* workers[s].owner: OWNED (a token, live or dead),
                           BUSY (being freed or taken), FREE (0) */
byte sock[4];           /* datagrams queued at worker process k's socket */
bool gone[4];           /* process k's socket is closed: sends refused */
byte dw;                /* data_waiters */
byte wa[NG];            /* groups[g].work_armed */
byte infl_d;            /* ghost: data_waiters registrations in flight */
byte infl_g[NG];        /* ghost: work_armed registrations in flight */
bool joined;            /* REJOIN: a worker of group 1 took slot 1 */
bool killed;            /* ghost: KILL_WORKER's worker was killed */
byte cancels;

/* One count out of a waiter count, never below 0: count_out
 * (doorbell.c:209-216), count_sub (workers.c:116-123), a relaxed load then
 * a CAS loop. It is one atomic step here: the loop takes effect at its
 * successful CAS (or at the load or failed CAS that found 0), so each run
 * of it equals a decrement-if-non-zero at that moment (the data and space
 * sections keep the loop; here the locals it would keep multiply the
 * states). G is the ghost of the registrations in flight for it. */
inline cnt_out(W, G)
{
	atomic {
		if
		:: W != 0 -> W--; G--
		:: else -> floored = true
		fi
	}
}
/* counts_out of a taken name (doorbell.c:227-232): data_waiters, then the
 * work_armed of group GR (the name's group: named() :237-243; the
 * slot's own group for a disarm_bell of our own name). */
inline counts_out_w(GR)
{
	cnt_out(dw, infl_d);
	cnt_out(wa[GR], infl_g[GR])
}

/* A name taken out of a word: its counts are in flight until counted out. */
#define TAKEN(n, gr) infl_d++; infl_g[gr]++

inline send_w(n)
{
	/* doorbell_send doorbell.c:164-175: refused if nobody binds it */
	assert(n != 0);
	if
	:: gone[NAME_ID(n)] -> skip
	:: else -> sock[NAME_ID(n)]++
	fi
}

/* take_back_doorbell workers.c:255-264: exchange the slot's name out, then
 * count it out of data_waiters and of the group the name carries. Used by
 * slot_free (:268-290: leave, audit, reap_idle) and slot_take (:312). */
inline take_back(s, n)
{
	if
	:: armed[s] == 0 -> skip
	:: else ->
		atomic { n = armed[s]; armed[s] = 0; if :: n != 0 -> TAKEN(n, NAME_GROUP(n)) :: else fi };
		if
		:: n != 0 -> counts_out_w(NAME_GROUP(n))
		:: else
		fi;
		n = 0
	fi
}

inline drain_all()
{
	/* membarrier (mrbi_waiter_settle wait.c:198-207): every producer's
	 * store buffer drains */
	byte q;
	q = 0;
	do
	:: q < NP -> if :: sb[q] -> vis++; sb[q] = false :: else fi; q++
	:: else -> break
	od
}

#ifdef KILL_WORKER
/* The worker in slot 1 may be killed at any step, once. */
bool kill_now;
active proctype Killer()
{
	if
	:: kill_now = true
	:: skip
	fi
}
#define MORTAL(k) (k == 2 && kill_now)
#else
#define MORTAL(k) false
#endif

/* A dead worker's run in group g is there to rescue: what only an audit
 * finds (workers.c:522-579), and no write announces. */
#define RESCUABLE(g) ((dead[0] && held[0] && sgroup[0] == g) || (dead[1] && held[1] && sgroup[1] == g))

/* ring_bell of worker slot S (doorbell.c:286-296, from ring_workers
 * :324-330): relaxed load, exchange to 0, the name's counts out of the
 * group the name carries (named() :237-243), one datagram. */
inline ring_slot(S, n, gr)
{
#ifdef MUT_GROUP_EARLY
	/* (before its fix) the slot's group, read before the exchange */
	gr = sgroup[S];
#endif
	if
	:: armed[S] == 0 -> skip /* :288 */
	:: else ->
		atomic {
			n = armed[S]; armed[S] = 0; /* exchange :290 */
#ifndef MUT_GROUP_EARLY
			gr = NAME_GROUP(n); /* named() :293 */
#endif
			if :: n != 0 -> TAKEN(n, NAME_GROUP(n)); rung = true :: else fi
		};
		if
		:: n != 0 ->
			/* counts_out :294 */
			cnt_out(dw, infl_d);
			cnt_out(wa[gr], infl_g[NAME_GROUP(n)]);
			send_w(n) /* :295 */
		:: else
		fi;
		n = 0; gr = 0
	fi
}

proctype Producer(byte p)
{
	byte m, w, n, gr;
	bool any, rung;
	m = 0;
	do
	:: m < MSGS ->
#ifdef MUT_WAKER_EARLY
		w = dw;
#endif
		/* commit() producer.c:176-189 */
#ifdef TSO
		atomic { if :: sb[p] -> vis++ :: else fi; sb[p] = true };
#else
		vis++;
#endif
		m++;
#ifdef KILL_WAKER
		{
#endif
#ifndef MUT_WAKER_EARLY
		/* mrbi_wake_consumer wait.c:106-126, the data_waiters gate
		 * :109 (waiters_after_publish handle.h:352-359: a compiler
		 * barrier, a relaxed load) */
		atomic {
			w = dw;
			/* no system call without an armed (or arming) waiter */
			assert(w == 0 || armed[0] != 0 || armed[1] != 0 || infl_d != 0)
		};
#endif
		if
		:: w != 0 ->
			/* (FUTEX_WAKE of data_seq and mrbi_wake_workers: no futex
			 * sleeper here) mrbi_doorbell_ring_readers
			 * doorbell.c:333-350: the fence :336 (drains the store
			 * buffer); no consumer or subscriber doorbell is armed
			 * here; ring_workers :309-331 */
#ifdef TSO
			atomic { if :: sb[p] -> vis++; sb[p] = false :: else fi };
#endif
			/* :316-318: any group's work_armed non-zero (seq_cst loads) */
			/* (the scan of the slots only while a worker of a group
			 * counted non-zero is armed or arming) */
			atomic { any = (wa[0] != 0); assert(wa[0] == 0 || NARMED(0) != 0 || infl_g[0] != 0) };
			atomic { any = any || (wa[1] != 0); assert(wa[1] == 0 || NARMED(1) != 0 || infl_g[1] != 0) };
			if
			:: any ->
#ifdef MUT_RING_ONE
				/* (mutant) one worker rung: the first name an
				 * exchange takes out, scanning from either end (as
				 * a futex sleeper gets one wake_one, the turn
				 * passed on by its take) */
				rung = false;
				if
				:: true -> ring_slot(0, n, gr); if :: !rung -> ring_slot(1, n, gr) :: else fi
				:: true -> ring_slot(1, n, gr); if :: !rung -> ring_slot(0, n, gr) :: else fi
				fi;
				rung = false
#else
				/* :324-330: every slot, ring_bell :286-296 */
				ring_slot(0, n, gr);
				ring_slot(1, n, gr)
#endif
			:: else
			fi;
			any = false
		:: else
		fi;
		w = 0
#ifdef KILL_WAKER
		} unless {
			/* killed in its wake-up (once): a name it took out is
			 * never sent to, its counts stay (an unless only here:
			 * it costs the other configurations their partial-order
			 * reduction) */
			atomic { KILL_TOKEN -> kill_token = false; waker_died = true };
			goto pdied
		}
#endif
	:: else -> break
	od;
pdied:
#ifdef TSO
	atomic { if :: sb[p] -> vis++; sb[p] = false :: else fi };
#endif
}

#ifdef TSO
active proctype Drain()
{
end_drain:
	do
	:: atomic { sb[0] -> vis++; sb[0] = false }
#if NP > 1
	:: atomic { sb[1] -> vis++; sb[1] = false }
#endif
	od
}
#endif

/* A worker process k in slot s of group g; O is the other slot. */
#define O (1 - s)
proctype Worker(byte s; byte k; byte g)
{
	byte me, old, n;
	bool victim;
	me = g * 4 + k; /* its read doorbell's name */
	victim = false;
	{
again:
	/* ---- mrb_read until MRB_EEMPTY: mrbi_worker_read workers.c:786-822 */
	do
	:: held[s] -> /* the next read releases it: release_held :400-442 */
		if
		:: atomic { !victim -> held[s] = false; done_[g]++ }
		:: atomic { victim -> held[s] = false; done_[g]++; victim = false };
			/* finish_victim :379-386: the dead owner's slot freed */
			if
			:: atomic { sown[O] == OWNED && dead[O] -> sown[O] = BUSY }; /* slot_free :268-290, its owner CAS */
				take_back(O, n); sown[O] = FREE
			:: else
			fi
		fi
	:: atomic { !held[s] && claim[g] < vis -> claim[g]++; held[s] = true } /* take :612-716 */
	:: !held[s] && claim[g] == vis -> /* take found nothing */
		if
		/* maybe_audit (time-gated: may or may not run) :522-579:
		 * a dead worker's run is rescued (:450-504), a dead idle slot
		 * with an armed doorbell freed (:536-546) */
		:: atomic { dead[O] && held[O] && sgroup[O] == g -> held[O] = false; held[s] = true; victim = true }
		:: atomic { dead[O] && !held[O] && sgroup[O] == g && armed[O] != 0 && sown[O] == OWNED -> sown[O] = BUSY };
			take_back(O, n); sown[O] = FREE
		:: true -> break /* MRB_EEMPTY */
		fi
#ifdef LEAVE
	:: s == 1 && !held[s] && g == 0 -> goto leave
#endif
	od;
	/* ---- mrb_arm_read doorbell.c:382-439 (its io_uring wait, mrbi_uring_arm, not modeled) ---- */
	sock[k] = 0; /* doorbell_drain :397 */
	if
	:: claim[g] < vis -> goto ready /* mrbi_ready_to_read :400 (mrbi_worker_ready workers.c:824-854) */
	:: else
	fi;
	/* our own earlier arming out with its counts (disarm_bell :410) */
	if
	:: atomic { armed[s] == me -> armed[s] = 0; TAKEN(me, g) }; counts_out_w(g)
	:: atomic { armed[s] != me -> skip }
	fi;
	/* mrbi_waiter_register :419 (wait.c:187-196): work_armed (:194),
	 * then data_waiters (:195); MUT_DATA_FIRST swaps them */
#ifdef MUT_DATA_FIRST
	atomic { dw++; infl_d++ };
	atomic { wa[g]++; infl_g[g]++ };
#else
	atomic { wa[g]++; infl_g[g]++ };
	atomic { dw++; infl_d++ };
#endif
	/* the name exchanged in :420-421; a replaced name's counts out, from
	 * its own group :422-425 */
	atomic {
		old = armed[s]; armed[s] = me; infl_d--; infl_g[g]--;
		if :: old != 0 -> TAKEN(old, NAME_GROUP(old)) :: else fi
	};
	if :: old != 0 -> counts_out_w(NAME_GROUP(old)); old = 0 :: else fi;
	/* mrbi_waiter_settle :426 */
#ifdef TSO
	atomic { drain_all() };
#endif
	/* the re-check :427 */
	if
	:: claim[g] < vis -> goto ready
	:: else
	fi;
	/* epoll_wait, at most 100 ms (:430-433) */
end_poll:
	if
	:: sock[k] > 0 -> skip
	/* the 100 ms bound, only where the C relies on it: a dead worker's
	 * run of this group to rescue (an audit; no write announces it) */
#ifndef NO_RESCUE_BOUND
	:: RESCUABLE(g) -> skip
#endif
	/* and a producer killed between its commit and its ring
	 * (KILL_WAKER): a message of the group is there */
	:: waker_died && claim[g] < vis -> skip
#ifdef CANCEL
	/* the loop stops waiting on this worker for good: mrb_disarm
	 * :504-525 (disarm_bell of its own name) */
	:: k == 2 && cancels == 0 -> cancels++;
		if
		:: atomic { armed[s] == me -> armed[s] = 0; TAKEN(me, g) }; counts_out_w(g)
		:: atomic { armed[s] != me -> skip }
		fi;
		goto stopped
#endif
	fi;
	goto again;
ready:
	/* ready: disarm_bell of our own name :435-436 */
	if
	:: atomic { armed[s] == me -> armed[s] = 0; TAKEN(me, g) }; counts_out_w(g)
	:: atomic { armed[s] != me -> skip }
	fi;
	goto again;
#ifdef LEAVE
leave:
	/* mrbi_worker_leave workers.c:1044-1068: slot_free of its own slot,
	 * which takes its doorbell back (and mrbi_doorbell_close's
	 * disarm_bell before it does the same) */
	atomic { gone[k] = true; sock[k] = 0; sown[s] = BUSY };
	take_back(s, n);
	sown[s] = FREE;
	goto stopped
#endif
	} unless { MORTAL(k) };
#ifdef KILL_WORKER
	/* killed: its socket is closed; what it held, its armed name and any
	 * count it had in flight stay behind */
	atomic { dead[s] = true; killed = true; gone[k] = true; sock[k] = 0 };
#endif
stopped:
#ifdef REJOIN
	/* a worker of group 1 joins and gets slot 1: reap_idle :332-347
	 * frees it if its dead owner holds nothing (a slot_free, whose
	 * take_back is the same as slot_take's below); slot_take :295-329
	 * takes the doorbell back before the group changes, then joins */
	if
	:: s == 1 && g == 0 && gone[2] ->
		if
		:: atomic { sown[1] == OWNED && !held[1] -> sown[1] = BUSY }; take_back(1, n); sown[1] = FREE
		:: else
		fi;
end_join:
		atomic { sown[1] == FREE -> sown[1] = BUSY }; /* slot_take's CAS 0 -> BUSY */
		take_back(1, n);
		atomic { sgroup[1] = 1; dead[1] = false; sown[1] = OWNED; joined = true };
		run Worker(1, 3, 1)
	:: else
	fi
#endif
	skip
}

init
{
	byte i;
	atomic {
		i = 0;
		do
		:: i < NP -> run Producer(i); i++
		:: else -> break
		od;
		run Worker(0, 1, 0);
		run Worker(1, 2, 0)
	}
}

#define ACCOUNT_OK (dw == ARMED_W + infl_d && wa[0] == NARMED(0) + infl_g[0] && wa[1] == NARMED(1) + infl_g[1] && !floored)

/* Exact accounting, in every state: data_waiters and each group's
 * work_armed equal the names armed (by the group each name carries) plus
 * the registrations in flight, and no count_out ever finds a count at 0. */
active proctype Monitor()
{
end_mon:
	atomic { !ACCOUNT_OK -> assert(ACCOUNT_OK) }
}

/* No lost wake-up: when nothing can move, group 0's workers took and
 * released every message (and group 1's joiner every message). The counts
 * are the armed names exactly, but for a count a killed worker left in
 * flight (finding 7's gap: CHECK_LEAK requires none). */
active proctype Final()
{
	timeout ->
	assert(done_[0] == vis && (!joined || done_[1] == vis) && (vis == TOTAL || waker_died));
#ifdef CHECK_LEAK
	assert(dw == ARMED_W && wa[0] == NARMED(0) && wa[1] == NARMED(1))
#else
	assert(dw == ARMED_W + infl_d && wa[0] == NARMED(0) + infl_g[0] &&
	       wa[1] == NARMED(1) + infl_g[1]);
	/* counts are left in flight only by a killed worker */
	assert(killed || waker_died || (infl_d == 0 && infl_g[0] == 0 && infl_g[1] == 0))
#endif
}

#elif !defined(SPACE)
/* ======================= data: the reader's doorbell ======================= */
#ifndef NP
#define NP 2
#endif
#ifndef MSGS
#define MSGS 1
#endif
#define TOTAL (NP * MSGS)

byte vis;       /* commits visible in memory (committed records) */
byte head;      /* messages the consumer has read */
byte armed;     /* consumer_doorbell.armed: 0 or a reader's name */
byte sock;      /* datagrams queued at the live reader's socket */
byte gen = 1;   /* the live reader's name (its doorbell socket) */
bool polling;   /* the reader is in epoll_wait */
bool sb[NP];    /* TSO: the producer's commit still in its store buffer */
byte cancels;
bool took_over; /* KILL_READER: a consumer took over from a dead one */
byte mid_ring;  /* wakers between taking a name and taking its count out */

#define NOBODY_MID (mid_ring == 0)
#define READY (head < vis)

inline drain_all()
{
	/* membarrier(GLOBAL_EXPEDITED): every registered thread runs a full
	 * barrier, draining its store buffer (mrbi_waiter_settle wait.c:194-203,
	 * called at doorbell.c:426) */
	byte q;
	q = 0;
	do
	:: q < NP -> if :: sb[q] -> vis++; sb[q] = false :: else fi; q++
	:: else -> break
	od
}

inline send(n)
{
	/* doorbell_send (doorbell.c:164-175): one byte; a name nobody binds (a dead
	 * reader) refuses it */
	assert(n != 0);
	if
	:: n == gen -> sock++
	:: else -> skip /* ECONNREFUSED */
	fi
}

/* disarm_bell (doorbell.c:247-253) of the consumer's doorbell: a CAS of our
 * name to 0; only if it succeeds, count_out. */
inline disarm(cur, done)
{
#ifdef MUT_DISARM_BLIND
	atomic { armed = 0; inflight++ }; /* a store, whoever held the word */
	count_out(cur, done)
#else
	if
	:: atomic { armed == gen -> armed = 0; inflight++ }; count_out(cur, done)
	:: atomic { armed != gen -> skip }
	fi
#endif
}

proctype Producer(byte p)
{
	byte m, w, n, cur;
	bool done;
	m = 0;
	do
	:: m < MSGS ->
#ifdef MUT_WAKER_EARLY
		w = waiters;
#endif
		/* commit() producer.c:176-189 (the release store of control,
		 * :186-187) */
#ifdef TSO
		/* (a store buffer of one: an older commit drains first) */
		atomic { if :: sb[p] -> vis++ :: else fi; sb[p] = true };
#else
		vis++;
#endif
		m++;
		{
		/* mrbi_wake_consumer wait.c:106-109: waiters_after_publish
		 * (handle.h:340-347), a compiler barrier then a relaxed load */
#ifndef MUT_WAKER_EARLY
		atomic {
			w = waiters;
			/* no system call without a waiter */
			assert(GHOST_OFF || w == 0 || armed != 0 || inflight != 0)
		};
#endif
		if
		:: w != 0 ->
			/* (bump and FUTEX_WAKE of data_seq, after the ring
			 * below (wait.c:114-116), for an io_uring wait behind
			 * the doorbell: not modeled; no futex sleeper here) */
			/* mrbi_doorbell_ring_readers doorbell.c:333-338: fence
			 * (:286, drains the store buffer), ring_bell :237-246 */
#ifdef TSO
			atomic { if :: sb[p] -> vis++; sb[p] = false :: else fi };
#endif
			if
			:: armed == 0 -> skip /* relaxed load, :239 */
			:: else ->
				atomic { n = armed; armed = 0; if :: n != 0 -> inflight++; mid_ring++; disturbed = true :: else fi } /* exchange, :241 */
				if
				:: n != 0 ->
					count_out(cur, done); /* counts_out :244 */
					atomic { mid_ring--; disturbed = true };
					send(n) /* :245 */
				:: else
				fi
			fi
		:: else
		fi
		} unless {
			/* killed in its wake-up (once): the process ends; a name it
			 * took out is never sent to, its count never taken out */
			atomic { KILL_TOKEN -> kill_token = false; waker_died = true };
			goto died
		};
	:: else -> break
	od;
died:
	/* the buffered commit drains eventually (and before a killed
	 * process's exit completes) */
#ifdef TSO
	atomic { if :: sb[p] -> vis++; sb[p] = false :: else fi };
#endif
}

#ifdef TSO
/* A buffered commit drains at any time. */
active proctype Drain()
{
	byte q;
end_drain:
	do
	:: atomic { sb[0] -> vis++; sb[0] = false }
	:: atomic { sb[1] -> vis++; sb[1] = false }
#if NP > 2
	:: atomic { sb[2] -> vis++; sb[2] = false }
#endif
	od
}
#endif

#ifdef KILL_READER
bool kill_now;
active proctype Killer()
{
	if
	:: kill_now = true /* at any moment, or never */
	:: skip
	fi
}
#define MORTAL (gen == 1 && kill_now)
#else
#define MORTAL false
#endif

proctype Reader()
{
	byte old, cur;
	bool done;
restart:
	{
again:
	/* mrb_read until MRB_EEMPTY (mrb.h's loop) */
	do
	:: atomic { head < vis -> head++ }
	:: else -> break
	od;
	/* ---- mrb_arm_read doorbell.c:382-439 ---- */
#ifndef MUT_DRAIN_LATE
	sock = 0; /* doorbell_drain :345 */
#endif
	disturbed = (mid_ring != 0);
	if
	:: head < vis -> disarm(cur, done); goto again /* ready :347, :369-370 */
	:: else
	fi;
#ifdef MUT_NAME_FIRST
	atomic { old = armed; armed = gen; inflight++ };
	if :: old != 0 -> count_out(cur, done) :: else -> skip fi;
	atomic { waiters++; inflight-- };
#else
#ifndef MUT_REARM_KEEPS_COUNT
	/* our own earlier arming out first, with its count (:357, finding 6) */
	disarm(cur, done);
#endif
	/* count (mrbi_waiter_register :359, wait.c:183-192), then name
	 * (:360-361) */
	atomic { waiters++; inflight++ };
	atomic {
		old = armed; armed = gen;
		if
		:: old == 0 -> inflight-- /* our count now belongs to the name */
		:: else /* the replaced name's count is in flight */
		fi
	};
	if :: old != 0 -> count_out(cur, done) :: else fi;
#endif
	/* mrbi_waiter_settle :362 (fence, membarrier) */
#if defined(TSO) && !defined(MUT_NO_MEMBARRIER)
	atomic { drain_all() };
#endif
	/* the re-check :363; ready -> disarm :369-370 */
#ifndef MUT_RECHECK_FIRST
	if
	:: head < vis -> disarm(cur, done); goto again
	:: else
	fi;
#endif
#ifdef MUT_DRAIN_LATE
	sock = 0;
#endif
	/* Entering the wait armed, the reader is in the count, unless a waker
	 * took a name or a count while it armed. */
	assert(armed != gen || waiters != 0 || disturbed);
	/* epoll_wait(timeout_ms) */
	polling = true;
end_poll:
	if
	:: sock > 0 -> polling = false /* readable: level-triggered */
	:: BOUND -> polling = false /* the 1 s bound (:364-367) */
#ifdef CANCEL
	:: cancels == 0 ->
		/* the loop stops waiting: mrb_disarm (:432-452) */
		cancels++;
		polling = false;
		disarm(cur, done)
#endif
	fi;
	goto again
	} unless { MORTAL };
#ifdef KILL_READER
	/* Killed: its socket is closed (datagrams to its name are refused).
	 * A new process attaches as the consumer (attach_consumer
	 * consumer.c:85-93: no subscriber entry was taken, so the stale
	 * doorbell, then the count, are zeroed) and runs the same loop. */
	atomic { polling = false; sock = 0; gen = 2 };
	armed = 0; /* relaxed store :91 */
	waiters = 0; /* seq_cst store :92 */
	took_over = true;
	goto restart
#endif
}

init
{
	byte i;
	atomic {
		i = 0;
		do
		:: i < NP -> run Producer(i); i++
		:: else -> break
		od;
		run Reader()
	}
}

#define ALL_DONE (head == TOTAL)

#else
/* ======================= space: the writers' doorbells ===================== */
#ifndef NW
#define NW 2
#endif
#ifndef WMSGS
#define WMSGS 1
#endif
#ifndef CAP
#define CAP 1
#endif
#ifndef NBELLS
#define NBELLS 2
#endif
#define TOTAL (NW * WMSGS)

byte tail;          /* producer_position (records) */
byte head;          /* the consumer's read position */
byte hpub;          /* consumer_position as visible in memory */
bool sbc;           /* TSO: the consumer's position store still buffered */
byte bell[NBELLS];  /* space_doorbells[i].armed */
byte sock[NW];      /* datagrams queued at writer w's socket */
byte written[NW];
byte mid_ring;
byte cancels;

#if NBELLS == 1
#define ARMED_ANY (bell[0] != 0)
#define ARMED_COUNT (bell[0] != 0)
#else
#define ARMED_ANY (bell[0] != 0 || bell[1] != 0)
#define ARMED_COUNT ((bell[0] != 0) + (bell[1] != 0))
#endif
#define ROOM (tail - hpub < CAP)
#define READY ROOM
#define NOBODY_MID (mid_ring == 0)

#ifdef KILL_WRITER
/* Writer 1 may be killed at any step (once); its socket is closed. */
bool kill_w;
bool wdead;
active proctype KillerW()
{
	if
	:: kill_w = true
	:: skip
	fi
}
#define KILLW(me) (me == 1 && kill_w)
#else
#define KILLW(me) false
#define wdead false
#endif

inline send(n)
{
	assert(n != 0 && n <= NW);
	if
	:: n == 1 && wdead -> skip /* ECONNREFUSED */
	:: else -> sock[n - 1]++
	fi
}

/* ring_bell(space_doorbells[i], space_waiters) doorbell.c:286-296 */
inline ring_bell(i, n, cur, done)
{
	if
	:: bell[i] == 0 -> skip
	:: else ->
		atomic { n = bell[i]; bell[i] = 0; if :: n != 0 -> inflight++; mid_ring++ :: else fi };
		if
		:: n != 0 -> count_out(cur, done); mid_ring--; send(n)
		:: else
		fi
	fi
}

/* disarm_space (doorbell.c:268-277): each entry holding our name,
 * disarm_bell */
inline disarm_space(i, cur, done)
{
	i = 0;
	do
	:: i < NBELLS ->
#ifdef MUT_DISARM_BLIND
		if
		:: bell[i] == me ->
			atomic { bell[i] = 0; inflight++ };
			count_out(cur, done)
		:: else
		fi;
#else
		if
		:: bell[i] == me -> /* relaxed load :222 */
			if
			:: atomic { bell[i] == me -> bell[i] = 0; inflight++ }; count_out(cur, done)
			:: atomic { bell[i] != me -> skip }
			fi
		:: else
		fi;
#endif
		i++
	:: else -> break
	od
}

/* Reads every message (it never waits in this model: it is the waker), and
 * publishes its position after each: mrbi_publish_head consumer.c:130-160. */
proctype Consumer()
{
	byte w, i, n, cur;
	bool done;
end_read:
	do
	:: atomic { head < tail -> head++ } ->
#ifdef MUT_WAKER_EARLY
		w = waiters;
#endif
		/* the release store of consumer_position :146 */
#ifdef TSO
		sbc = true;
#else
		hpub = head;
#endif
#ifndef MUT_WAKER_EARLY
		/* waiters_after_publish :148 (handle.h:340-347) */
		atomic { w = waiters; assert(GHOST_OFF || w == 0 || inflight != 0 || ARMED_ANY) };
#endif
		if
		:: w != 0 ->
			/* (bump and FUTEX_WAKE of space_seq, after the ring
			 * below (:150-152): not modeled; no futex sleeper) */
			/* mrbi_doorbell_ring_space doorbell.c:352-360: fence
			 * (:305), each entry */
#ifdef TSO
			atomic { if :: sbc -> hpub = head; sbc = false :: else fi };
#endif
			i = 0;
			do
			:: i < NBELLS -> ring_bell(i, n, cur, done); i++
			:: else -> break
			od
		:: else
		fi
#ifdef TSO
	:: atomic { sbc -> hpub = head; sbc = false }
#endif
	od
}


proctype Writer(byte me)
{
	/* me: this writer's name (w + 1) */
	byte i, b, old, cur;
	bool done, got;
	{
again:
	/* mrb_write when there is room (the claim is one step here) */
	do
	:: written[me - 1] == WMSGS -> goto fin
	:: atomic { written[me - 1] < WMSGS && ROOM -> tail++; written[me - 1]++ }
	:: else -> break
	od;
	/* ---- mrb_arm_write doorbell.c:464-502 ---- */
#ifndef MUT_DRAIN_LATE
	sock[me - 1] = 0; /* doorbell_drain :416 */
#endif
	if
	:: ROOM -> disarm_space(i, cur, done); goto again /* :417, :426-427 */
	:: else
	fi;
	/* arm_space :419 (doorbell.c:443-462) */
	b = NONE;
	i = 0;
	do
	:: i < NBELLS && bell[i] == me -> b = i; break /* :380-383 */
	:: i < NBELLS && bell[i] != me -> i++
	:: else -> break
	od;
	if
	:: b == NONE ->
		i = 0;
		do
		:: i < NBELLS && bell[i] != 0 -> i++ /* :386-387 */
		:: i < NBELLS && bell[i] == 0 ->
#ifdef MUT_NAME_FIRST
			atomic { got = (bell[i] == 0); if :: got -> bell[i] = me; inflight++ :: else fi };
			if
			:: got -> atomic { waiters++; inflight-- }; b = i; break
			:: else -> i++
			fi
#else
			atomic { waiters++; inflight++ }; /* :388 */
			atomic {
				got = (bell[i] == 0); /* CAS 0 -> name :389-392 */
				if :: got -> bell[i] = me; inflight-- :: else fi
			};
			if
			:: got -> b = i; break
			:: else -> count_out(cur, done); i++ /* :393 */
			fi
#endif
		:: i == NBELLS -> break /* every entry taken: NULL */
		od
	:: else
	fi;
	/* mrbi_waiter_settle :420 */
#if defined(TSO) && !defined(MUT_NO_MEMBARRIER)
	atomic { if :: sbc -> hpub = head; sbc = false :: else fi };
#endif
	/* re-check :421, ready -> disarm_space :426-427 */
#ifndef MUT_RECHECK_FIRST
	if
	:: ROOM -> disarm_space(i, cur, done); goto again
	:: else
	fi;
#endif
#ifdef MUT_DRAIN_LATE
	sock[me - 1] = 0;
#endif
	/* epoll_wait(timeout_ms) */
end_poll:
	if
	:: sock[me - 1] > 0 -> skip
	:: b == NONE -> skip /* no entry: the 10 ms poll (:422) */
	:: waker_died -> skip /* the 1 s bound */
#ifdef CANCEL
	:: cancels == 0 -> cancels++; disarm_space(i, cur, done) /* mrb_disarm :441 */
#endif
	fi;
	goto again
	} unless { KILLW(me) };
#ifdef KILL_WRITER
	/* killed: its registration stays until the next ring takes the name
	 * out (the datagram is refused); a count it had added but not yet
	 * published a name for stays for good */
	atomic { wdead = true; sock[me - 1] = 0 };
	goto dead;
#endif
fin:
	/* a writer that stops writing leaves nothing armed (it disarmed when
	 * it found room) */
	skip;
dead:
	skip
}

init
{
	byte i;
	atomic {
		run Consumer();
		i = 1;
		do
		:: i <= NW -> run Writer(i); i++
		:: else -> break
		od
	}
}

#ifdef KILL_WRITER
#define ALL_DONE (head == tail && (written[0] == WMSGS || wdead) && written[1] == WMSGS)
#else
#define ALL_DONE (head == TOTAL && tail == TOTAL)
#endif
#endif

/* ---- properties ---------------------------------------------------------- */

#if !defined(WORKERS) /* (the workers' properties are in their section) */

#ifndef SPACE
#define ARMED_COUNT (armed != 0)
#endif

#if !defined(KILL_READER) && !defined(KILL_WAKER) && !defined(KILL_WRITER) && !defined(NO_MONITOR)
/* Exact accounting, in every state. */
active proctype Monitor()
{
end_mon:
	atomic { !(waiters == ARMED_COUNT + inflight && !floored) ->
		assert(waiters == ARMED_COUNT + inflight && !floored) }
}
#endif

#ifndef LTL
/* No lost wake-up (bounded): when nothing can move, everything arrived and
 * the count is exactly the armed doorbells. */
active proctype Final()
{
	timeout ->
	assert(ALL_DONE);
#if defined(KILL_WAKER) || (defined(KILL_WRITER) && !defined(CHECK_LEAK))
	/* a waker killed between its exchange and its count_out, or a writer
	 * killed between its count and its name, leaves a count behind: an
	 * over-count costs system calls, never a wake-up */
	assert(waiters >= ARMED_COUNT)
#elif defined(KILL_READER)
	/* (the count after a takeover: the assertion before epoll_wait) */
	skip
#else
	assert(waiters == ARMED_COUNT)
#endif
}
#elif !defined(SPACE)
/* A reader in epoll_wait while a committed message is there leaves it. */
ltl no_lost_wakeup { [] ((polling && READY) -> <> !polling) }
#endif
#endif
