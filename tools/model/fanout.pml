/*
 * SPDX-License-Identifier: MIT
 * The release position of a fan-out ring (docs/FORMAT.md section 8,
 * core/src/subscriber.c), model-checked with SPIN (docs/MODEL.md, "Fan-out").
 *
 * Positions count records (every record one slot); the ring holds CAP of
 * them. R is consumer_position, P producer_position. Durable subscribers
 * own reader entries with a state and a position; SPIN's interleaving is
 * sequentially consistent, which is what the C code's seq_cst operations
 * on these words give.
 *
 * Properties (assertions):
 *  - a record is overwritten (the claim of x + CAP) only once every gating
 *    entry is past x: no durable subscriber ever loses or tears a message;
 *  - R passes only committed records: a claim still being written is never
 *    released.
 *
 * Processes: one producer (claims, then commits, MSGS messages; finds the
 * ring full and then moves R itself), subscriber A (present from the start,
 * reads READS messages, then leaves: its entry is freed), and joiner J
 * (takes a free entry, maybe A's, joins at the live end with the handshake,
 * passes over the records before it, reads to the end).
 *
 * The joiner gates from the live end P; R's movers pass only records they
 * saw committed (the walk), which is what makes the live end safe.
 *
 * Mutants (-D): MUT_JOIN_AT_R (a new subscriber reads the backlog from R
 * in place: a mover that missed it passes it), MUT_NO_WALK (movers trust
 * the entries: R passes a claim still being written).
 *
 * -DOLDEST: the joiner joins from the oldest message (R), delivers its
 * backlog with validated copies, and settles with its first message
 * (settle_join in subscriber.c): publish past it, move R, and if R is past
 * it, drop the copy and start at R. A mover that missed the entry may pass
 * it, so records before its live end P are exempt from the overwrite
 * check; instead, it may be lapped only before it delivered anything (a
 * lap after is a loss: asserted never to happen with one joiner), and it
 * delivers consecutive records from its first. MUT_NO_SETTLE (the code
 * before: no settling) breaks that with READS=1 MSGS=5.
 */

#ifndef CAP
#define CAP 2
#endif
#ifndef MSGS
#define MSGS 3
#endif
#ifndef READS
#define READS 2
#endif
#define NE 2 /* reader entries */

#define FREE 0
#define JOINING 1
#define ACTIVE 2

byte R;       /* release position */
byte P;       /* producer position (claimed) */
byte done[8]; /* committed[x % 8]: x + 1 when record x is committed */
byte slot[CAP]; /* which position's record a slot holds (x + 1), 0 none */
byte state[NE];
byte pos[NE];
byte vuntil[NE]; /* records before it may be overwritten unread (OLDEST) */
byte finished;

#define committed(x) (done[(x) % 8] == (x) + 1)

/* Every gating entry is past x (or behind it only as a provisional
 * joiner that R does not count): the record at x may be overwritten. */
inline check_overwrite(x)
{
	co_k = 0;
	do
	:: co_k < NE ->
		if
		:: state[co_k] == ACTIVE && x >= vuntil[co_k] -> assert(pos[co_k] > x)
		:: else -> skip
		fi;
		co_k++
	:: else -> break
	od
}

/* The inlines' locals: every process declares them once. */
#define LOCALS byte co_k, mr_r, mr_low, mr_p, mr_e, mr_passes, rd_old

/* Moves R to the minimum over gating entries (a position behind R counts
 * as R); with none gating and short_of_space, over the committed run. */
inline move_release(short_of_space)
{
	mr_passes = 0;
	do
	:: mr_passes == 0 ->
		mr_r = R;
		mr_low = 255;
		mr_e = 0;
		do
		:: mr_e < NE ->
			if
			:: state[mr_e] != FREE ->
				mr_p = pos[mr_e];
				if
				:: mr_p < mr_r || mr_p > P -> mr_p = mr_r
				:: else -> skip
				fi;
				if
				:: mr_p < mr_low -> mr_low = mr_p
				:: else -> skip
				fi
			:: else -> skip
			fi;
			mr_e++
		:: else -> break
		od;
		if
		:: mr_low == 255 && short_of_space -> mr_low = P
		:: else -> skip
		fi;
#ifndef MUT_NO_WALK
		/* R only passes records seen committed. */
		if
		:: mr_low != 255 ->
			mr_p = mr_r;
			do
			:: mr_p < mr_low && committed(mr_p) -> mr_p++
			:: else -> break
			od;
			mr_low = mr_p
		:: else -> skip
		fi;
#endif
		/* A failed CAS (R moved) scans again; so does a successful one
		 * (a subscriber may have published meanwhile); no move ends it. */
		atomic {
			if
			:: mr_low != 255 && mr_low > mr_r && R == mr_r ->
				mr_p = mr_r;
				do
				:: mr_p < mr_low -> assert(committed(mr_p)); mr_p++
				:: else -> break
				od;
				R = mr_low
			:: mr_low != 255 && mr_low > mr_r && R != mr_r -> skip
			:: else -> mr_passes = 1
			fi
		};
		skip
	:: else -> break
	od
}

/* Reads the record at pos[me] once it is committed,
 * publishes, and moves R if it may have held it. */
inline read_one(me)
{
	committed(pos[me]);
	/* The copy: the record is still there. */
	assert(slot[pos[me] % CAP] == pos[me] + 1);
	rd_old = pos[me];
	pos[me] = pos[me] + 1;
	if
	:: R >= rd_old -> move_release(0)
	:: else -> skip
	fi
}

/* A from-oldest joiner's reads (-DOLDEST): validated copies, the settle
 * before the first message is handed over, a publish after each read. */
inline oldest_reads(me, start, p1)
{
	head = start;
	unsettled = start != p1;
	first = 255;
	do
	:: head >= MSGS -> break
	:: head < MSGS && P > head + CAP ->
		/* Lapped: R passed it (a mover that missed the join) and waits
		 * for it. A loss unless nothing was handed over yet. */
		assert(unsettled && head < p1 && R > head);
		head = R;
		unsettled = 0
	:: head < MSGS && P <= head + CAP && committed(head) ->
		cp = slot[head % CAP];
		if
		:: P > head + CAP -> skip /* overwritten while copied: again */
		:: else ->
			assert(cp == head + 1);
			dropped = 0;
#ifndef MUT_NO_SETTLE
			if
			:: unsettled ->
				unsettled = 0;
				rd_old = pos[me];
				pos[me] = head + 1;
				if
				:: R >= rd_old && R < head + 1 -> move_release(0)
				:: else -> skip
				fi;
				if
				:: R > head + 1 -> head = R; dropped = 1
				:: else -> skip
				fi
			:: else -> skip
			fi;
#else
			unsettled = 0;
#endif
			if
			:: !dropped ->
				/* Handed over: consecutive from the first. */
				assert(first == 255 || head == last + 1);
				if
				:: first == 255 -> first = head
				:: else -> skip
				fi;
				last = head;
				head++;
				/* The call's end publishes. */
				rd_old = pos[me];
				pos[me] = head;
				if
				:: R >= rd_old && R < head -> move_release(0)
				:: else -> skip
				fi
			:: else -> skip
			fi
		fi
	od
}

proctype producer()
{
	LOCALS;
	byte x;
	do
	:: P < MSGS ->
		if
		:: P - R < CAP ->
			atomic {
				x = P;
				/* Overwriting the record CAP back. */
				if
				:: x >= CAP -> check_overwrite(x - CAP)
				:: else -> skip
				fi;
				P++
			};
			slot[x % CAP] = x + 1;
			done[x % 8] = x + 1 /* commit */
		:: else -> move_release(1)
		fi
	:: else -> break
	od;
	finished++
}

/* Reads READS records, then leaves: its entry is freed, and the joiner
 * may take it, or end up alone. */
proctype sub_a()
{
	LOCALS;
	byte n = 0;
	do
	:: n < READS && pos[0] < MSGS -> read_one(0); n++
	:: else -> break
	od;
	atomic {
		state[0] = FREE;
		pos[0] = 0
	};
	move_release(0);
	finished++
}

proctype joiner()
{
	LOCALS;
	byte me = 255, k, r1, p1, start;
	byte head, first, last, cp;
	bool unsettled, dropped;
	/* Take a free entry (CAS FREE -> JOINING); provisional position R. */
	do
	:: atomic {
		k = 0;
		do
		:: k < NE && state[k] == FREE -> state[k] = JOINING; me = k; break
		:: k < NE && state[k] != FREE -> k++
		:: k == NE -> break
		od
	   };
	   if
	   :: me != 255 -> break
	   :: else -> skip
	   fi
	od;
	pos[me] = R;
	r1 = R;
	p1 = P;
#if defined(MUT_JOIN_AT_R) || defined(OLDEST)
	start = r1; /* from the oldest message */
#else
	start = p1; /* the live end */
#endif
	pos[me] = start;
#ifdef OLDEST
	vuntil[me] = p1;
#endif
	state[me] = ACTIVE;
#ifdef OLDEST
	oldest_reads(me, start, p1);
#else
	/* Pass over the records before the live end, then read on. */
	do
	:: pos[me] < MSGS -> read_one(me)
	:: else -> break
	od;
#endif
	finished++
}

init {
	LOCALS;
	state[0] = ACTIVE;
	atomic {
		run producer();
		run sub_a();
		run joiner()
	};
	(finished == 3);
	/* All quiet: the next producer that needs space moves R up to the
	 * slowest subscriber, which has read everything. */
	move_release(1);
	assert(R == MSGS)
}
