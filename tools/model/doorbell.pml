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

#ifndef SPACE
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
