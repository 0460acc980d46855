/* SPDX-License-Identifier: MIT */
/*
 * Description: a producer call nested in a signal handler on the lease
 * holder's thread. A writer process's main thread (the handle's producer
 * thread, so the lease holder) writes stream 0 in a loop; its SIGUSR1
 * handler writes stream 1 to the same handle. Phase one: a second thread
 * of the process sends SIGUSR1 at random moments (thousands of nested
 * writes, most outside any claim window: each revokes the lease without
 * waiting for itself). Phase two, with signals quiet: the parent, once the
 * lease is held again, single-steps the writer thread with ptrace until
 * lane 0 of its slot is inside its claim window, then 0-23 steps further
 * inside it, and delivers SIGUSR1 right there, so the nested write
 * interrupts the outer one's window at every depth. The handler classifies
 * each nested write by the state it interrupted:
 *  - MRB_EFULL (ring not full) only inside a claim of the outer call under
 *    its own lease (lane 0 announced, lease HELD or REVOKING of its slot);
 *  - a nested write that succeeds inside the outer's window with the lease
 *    held must have taken the lease back (the word is no longer that HELD):
 *    the outer call then re-checks and claims by CAS instead of storing its
 *    stale tail (the spec asks for MRB_EFULL there; lease.c revokes its own
 *    lease when the outer has not yet raised its window flag: both safe);
 *  - anywhere else it succeeds unless the ring is really full.
 * A consumer process proves both streams intact, in order, complete (no
 * overlap of a nested claim with the outer one).
 * Arguments: [seed]; LEASE_SEED works too.
 */
#include <pthread.h>

#include "lease_common.h"

#define RING_SIZE     (1024 * 1024)
#define STEPPED       (LEASE_SLOW ? 4 : 12)
#define RANDOM_WRITES 200000
#define OUTER         0
#define NESTED        1
/* Counters (ctl->counter). */
#define C_READY             0 /* the writer's slot + 1 */
#define C_NESTED_OK         1
#define C_EFULL_WINDOW      2 /* EFULL inside a claim under the lease */
#define C_REALLY_FULL       3
#define C_OK_IN_WINDOW      4 /* succeeded inside the window, lease held */
#define C_BAD               5 /* what went wrong (see the end of main) */
#define C_HANDLED           6
#define C_LAST_OUTCOME      7  /* 1 ok, 2 EFULL */
#define C_IN_WINDOW_NOLEASE 8  /* succeeded inside a window, no lease held */
#define C_LAST_STATE        9  /* 1 + window + 2 * lease held, at the handler's entry */
#define C_SIG_QUIET         10 /* the phase the signaller last saw quiet: PH_QUIET, sends no more */
#define C_HANDLER_LANE0     11 /* what the last handler saw */
#define C_HANDLER_TAIL      12
#define PH_RANDOM           1
#define PH_QUIET            2
#define PH_DONE             3

static struct lctl *ctl;
static struct mrb_ring writer_ring;
static size_t writer_slot;
static uint32_t nested_seq;

static void on_sigusr1(int sig)
{
	(void)sig;
	int saved = errno;
	uint64_t c = lane0_claiming(&writer_ring, writer_slot);
	uint64_t t = ring_load64(&writer_ring, OFF_PRODUCER_POSITION);
	uint64_t w = ring_load64(&writer_ring, OFF_SOLE_PRODUCER);
	bool window = c == (t | 1);
	bool held = LEASE_IS_HELD(w, writer_slot);
	/* The outer call is inside a claim under its own lease (HELD, or
	 * being revoked): where MRB_EFULL may come. */
	bool in_claim_mine = c != 0 && w != 0 && LEASE_SLOT(w) == writer_slot;
	atomic_store(&ctl->counter[C_HANDLER_LANE0], c);
	atomic_store(&ctl->counter[C_HANDLER_TAIL], t);
	atomic_store(&ctl->counter[C_LAST_STATE], 1u + window + 2u * held);
	uint8_t msg[LMSG_MAX];
	size_t len = lmsg_build(msg, NESTED, nested_seq);
	int rc = mrb_write(&writer_ring, msg, len);
	if (rc == 0) {
		atomic_store(&ctl->committed[NESTED], ++nested_seq);
		atomic_fetch_add(&ctl->counter[C_NESTED_OK], 1);
		if (window && held) {
			/* Claimed by CAS inside the outer's window: only safe if
			 * it took the lease back first, so that the outer cannot
			 * store its stale tail. */
			atomic_fetch_add(&ctl->counter[C_OK_IN_WINDOW], 1);
			uint64_t after = ring_load64(&writer_ring, OFF_SOLE_PRODUCER);
			if (after == w)
				atomic_store(&ctl->counter[C_BAD], UINT64_C(1) << 40 | after);
		} else if (window) {
			atomic_fetch_add(&ctl->counter[C_IN_WINDOW_NOLEASE], 1);
		}
		atomic_store(&ctl->counter[C_LAST_OUTCOME], 1);
	} else if (rc == MRB_EFULL) {
		uint64_t head = ring_load64(&writer_ring, OFF_CONSUMER_POSITION);
		if (RING_SIZE - (t - head) < 2 * record_size(len) + 64)
			atomic_fetch_add(&ctl->counter[C_REALLY_FULL], 1);
		else if (in_claim_mine)
			atomic_fetch_add(&ctl->counter[C_EFULL_WINDOW], 1);
		else
			atomic_store(&ctl->counter[C_BAD], (uint64_t)(uint32_t)rc |
			                                       (uint64_t)window << 32 |
			                                       (uint64_t)held << 33);
		atomic_store(&ctl->counter[C_LAST_OUTCOME], 2);
	} else {
		atomic_store(&ctl->counter[C_BAD], (uint64_t)(uint32_t)rc);
	}
	atomic_fetch_add(&ctl->counter[C_HANDLED], 1);
	errno = saved;
}

static void *signaller(void *arg)
{
	pthread_t writer = *(pthread_t *)arg;
	uint64_t rng = ctl->seed ^ 0x5167;
	uint32_t phase;
	while ((phase = atomic_load(&ctl->phase)) != PH_DONE) {
		if (phase != PH_RANDOM) {
			atomic_store(&ctl->counter[C_SIG_QUIET], phase);
			sched_yield();
			continue;
		}
		for (volatile uint64_t spin = lrand(&rng) % 20000; spin > 0; spin--) {
		}
		pthread_kill(writer, SIGUSR1);
	}
	return NULL;
}

/* One outer write; a wait for space interrupted by the handler is retried. */
static void outer_write(uint32_t seq)
{
	uint8_t msg[LMSG_MAX];
	size_t len = lmsg_build(msg, OUTER, seq);
	int rc;
	while ((rc = mrb_write(&writer_ring, msg, len)) == MRB_EFULL) {
		rc = mrb_wait_writable(&writer_ring, len, 100 * 1000000LL);
		if (rc != 0 && rc != MRB_ETIMEDOUT && rc != MRB_EINTR)
			FAIL("outer wait_writable: %s", mrb_strerror(rc));
	}
	if (rc != 0)
		FAIL("outer write %u: %s", seq, mrb_strerror(rc));
	atomic_store(&ctl->committed[OUTER], seq + 1);
}

static void writer_main(void)
{
	lchild(100);
	CHECK_RC(mrb_open(&writer_ring, ctl->ring_path, 0), 0);
	uint32_t seq = 0;
	outer_write(seq++);
	lease_expect_mine(&writer_ring, "writer's first write, alone");
	writer_slot = ring_own_slot(&writer_ring);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	pthread_t self = pthread_self(), thread;
	CHECK(pthread_create(&thread, NULL, signaller, &self) == 0);
	atomic_store(&ctl->counter[C_READY], writer_slot + 1);
	while (atomic_load(&ctl->phase) != PH_DONE)
		outer_write(seq++);
	CHECK(pthread_join(thread, NULL) == 0);
	CHECK_RC(mrb_close(&writer_ring), 0);
	_exit(0);
}

int main(int argc, char **argv)
{
	uint64_t seed = lseed(argc, argv, 1);
	rtest_watchdog(120);
	ctl = lctl_setup(RING_SIZE, 0, seed);
	struct mrb_ring ring; /* inspects; writes the end marker */
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	pid_t consumer = lconsumer_start(ctl);
	pid_t writer = fork();
	CHECK(writer >= 0);
	if (writer == 0)
		writer_main();
	while (atomic_load(&ctl->counter[C_READY]) == 0)
		rtest_sleep_ms(1);
	size_t slot = (size_t)atomic_load(&ctl->counter[C_READY]) - 1;

	/* Phase one: random interruptions. */
	atomic_store(&ctl->phase, PH_RANDOM);
	uint32_t start = atomic_load(&ctl->committed[OUTER]);
	while (atomic_load(&ctl->committed[OUTER]) - start < RANDOM_WRITES)
		rtest_sleep_ms(1);
	atomic_store(&ctl->phase, PH_QUIET);
	while (atomic_load(&ctl->counter[C_SIG_QUIET]) != PH_QUIET)
		sched_yield();
	rtest_sleep_ms(20); /* the last signal sent is handled */
	uint64_t random_handled = atomic_load(&ctl->counter[C_HANDLED]);
	uint64_t random_window_efull = atomic_load(&ctl->counter[C_EFULL_WINDOW]);

	/* Phase two: a nested write inside the outer one's window, each time
	 * (with the lease) once the lease is held again. */
	uint64_t rng = seed;
	uint32_t stepped = 0, stepped_seen = 0, stepped_efull = 0;
	uint64_t steps_total = 0;
	for (uint32_t i = 0; i < STEPPED; i++) {
		/* (Not under TSan: there the lease may take 2^20 slow claims to
		 * come back after the random phase.) */
		bool want_held = lease_checks() && !LEASE_SLOW;
		while (want_held && !lwait_long_lease(&ring, slot)) {
		}
		uint64_t handled = atomic_load(&ctl->counter[C_HANDLED]);
		long depth = (long)(lrand(&rng) % 24);
		long steps =
		    lstep_into_window_then(&ring, writer, slot, 2000000, want_held, SIGUSR1, depth);
		if (steps < 0 && errno == EPERM) {
			printf("ptrace not permitted: no nested write stepped into the window\n");
			break;
		}
		if (steps < 0)
			FAIL("2000000 single steps never reached a claim window");
		stepped++;
		steps_total += (uint64_t)steps;
		while (atomic_load(&ctl->counter[C_HANDLED]) == handled)
			sched_yield();
#ifndef __SANITIZE_THREAD__
		CHECK_EQ_U64(atomic_load(&ctl->counter[C_HANDLED]), handled + 1);
#endif
		uint64_t outcome = atomic_load(&ctl->counter[C_LAST_OUTCOME]);
		uint64_t state = atomic_load(&ctl->counter[C_LAST_STATE]) - 1;
		bool window = state & 1, held = state & 2;
		stepped_seen += window && (held || !want_held);
		stepped_efull += outcome == 2;
		if (!window)
			fprintf(stderr,
			        "stepped delivery %u: the handler found lane 0 %#" PRIx64
			        " and the tail %#" PRIx64 " (not in a window) after %ld steps\n",
			        i, atomic_load(&ctl->counter[C_HANDLER_LANE0]),
			        atomic_load(&ctl->counter[C_HANDLER_TAIL]), steps);
		if (!lease_checks() && outcome != 1)
			FAIL("a nested write inside a CAS claim's window failed");
	}
	atomic_store(&ctl->phase, PH_DONE);
	rtest_expect_exit0(writer, "writer");
#ifndef __SANITIZE_THREAD__
	/* (ThreadSanitizer defers a signal's handler to its next safe point.) */
	if (stepped_seen != stepped)
		FAIL("%u of %u handlers delivered inside the window saw it", stepped_seen, stepped);
#endif
	uint64_t bad = atomic_load(&ctl->counter[C_BAD]);
	if (bad >> 40 == 1)
		FAIL("a nested write succeeded inside the holder's plain claim window and left "
		     "its lease %#" PRIx64 " standing: the outer call may store its stale tail",
		     bad & ((UINT64_C(1) << 40) - 1));
	if (bad != 0)
		FAIL("a nested write failed outside any claim under the lease: code %d (%s), "
		     "in window %d, lease held %d",
		     (int)(int32_t)(uint32_t)bad, mrb_strerror((int)(int32_t)(uint32_t)bad),
		     (int)(bad >> 32 & 1), (int)(bad >> 33 & 1));
	uint64_t total = lfinish(ctl, &ring, consumer, 2, NULL);
	CHECK_RC(mrb_close(&ring), 0);
	printf("nested writes: %" PRIu64 " at random moments (%" PRIu64
	       " got MRB_EFULL inside a claim under the lease), %u single-stepped into the "
	       "window (%.0f steps each; %u handlers saw it, %u got MRB_EFULL); ok %" PRIu64
	       " (inside the window with the lease held: %" PRIu64 "), EFULL in a claim %" PRIu64
	       ", ring really full %" PRIu64 ", ok inside a CAS-mode window %" PRIu64
	       "; outer writes %u; %" PRIu64 " messages\n",
	       random_handled, random_window_efull, stepped,
	       stepped ? (double)steps_total / stepped : 0.0, stepped_seen, stepped_efull,
	       atomic_load(&ctl->counter[C_NESTED_OK]), atomic_load(&ctl->counter[C_OK_IN_WINDOW]),
	       atomic_load(&ctl->counter[C_EFULL_WINDOW]),
	       atomic_load(&ctl->counter[C_REALLY_FULL]),
	       atomic_load(&ctl->counter[C_IN_WINDOW_NOLEASE]), atomic_load(&ctl->committed[OUTER]),
	       total);
	lprint_seen(ctl);
	return 0;
}
