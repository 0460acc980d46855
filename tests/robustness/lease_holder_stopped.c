/* SPDX-License-Identifier: MIT */
/*
 * Description: the lease holder frozen with SIGSTOP while it writes. A
 * holder process writes sequence-numbered, checksummed messages alone
 * (mrb_write). Each round (with the lease hook, three in four once the
 * holder has taken the lease back) the parent stops it: every fourth round
 * exactly inside a claim window (single-stepped with ptrace until lane 0
 * announces the tail, with the lease held), every fourth at one of the 24
 * instructions before the claim's store (the code points learnt by
 * stepping one claim; with the lease held: wherever the holder's check and
 * announcement may be in the wrong order, a revoker that does not wait
 * lets the holder's stale tail overwrite its claim), else at a random
 * moment. It notes whether the holder stopped inside its claim window
 * (lane 0 of its slot announcing the current tail: claiming ==
 * producer_position | 1, the revoker's test) and whether it holds the lease,
 * then tells a second producer process to open the ring, write one message
 * and close. That write must either succeed while the holder is stopped, or
 * find the ring full (the stopped holder's unfinished record holds the
 * consumer), or wait only if the holder stopped inside its window while
 * holding the lease; a write that waits 5 s for a holder stopped outside it
 * fails (a revoker waiting for nothing), and one that completes at once for
 * a holder stopped inside its window with the lease fails (a revoker that
 * did not wait: the holder's stale tail would overwrite its claim). Then
 * SIGCONT; the waiting write completes. A consumer process accounts for
 * every message. Reports how often a stop landed in the window.
 * Arguments: [seed [rounds]]; LEASE_SEED works too.
 */
#include "lease_common.h"

#define RING_SIZE      (256 * 1024)
#define DEFAULT_ROUNDS 100
#define POKER_ID       1
#define C_POKER_SEQ    0
#define C_HOLDER_READY 1

static struct lctl *ctl;

static void holder_main(void)
{
	lchild(120);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	uint32_t seq = 0;
	lwrite(&ring, ctl, 0, seq++);
	lease_expect_mine(&ring, "holder's first write, alone");
	atomic_store(&ctl->counter[C_HOLDER_READY], 1);
	while (!atomic_load(&ctl->stop))
		lwrite(&ring, ctl, 0, seq++);
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

/* Per command 'w': opens the ring, writes one message, closes, answers 'd'
 * ('f' first if it found the ring full and waits for space). 'q' ends. */
static void poker_main(int cmd, int reply)
{
	lchild(120);
	uint32_t seq = 0;
	uint8_t msg[LMSG_MAX];
	for (;;) {
		char c = rtest_recv(cmd);
		if (c == 'q')
			_exit(0);
		CHECK(c == 'w');
		struct mrb_ring ring;
		CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
		size_t len = lmsg_build(msg, POKER_ID, seq);
		int rc = mrb_write(&ring, msg, len);
		if (rc == MRB_EFULL) {
			rtest_send(reply, 'f');
			while ((rc = mrb_write(&ring, msg, len)) == MRB_EFULL)
				CHECK(mrb_wait_writable(&ring, len, 100 * 1000000LL) !=
				      MRB_ECORRUPT);
		}
		CHECK_RC(rc, 0);
		atomic_store(&ctl->committed[POKER_ID], ++seq);
		CHECK_RC(mrb_close(&ring), 0);
		rtest_send(reply, 'd');
	}
}

/* The poker's next answer within `ms`, or 0. */
static char answer_within(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	int n;
	while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR) {
	}
	CHECK(n >= 0);
	return n == 0 ? 0 : rtest_recv(fd);
}

int main(int argc, char **argv)
{
	uint64_t seed = lseed(argc, argv, 1);
	uint32_t rounds = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : DEFAULT_ROUNDS;
	rtest_watchdog(150);
	ctl = lctl_setup(RING_SIZE, 0, seed);
	uint64_t rng = seed;

	struct mrb_ring ring; /* inspects; writes the end marker */
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	pid_t consumer = lconsumer_start(ctl);
	pid_t holder = fork();
	CHECK(holder >= 0);
	if (holder == 0)
		holder_main();
	int cmd[2], reply[2];
	CHECK(pipe(cmd) == 0 && pipe(reply) == 0);
	pid_t poker = fork();
	CHECK(poker >= 0);
	if (poker == 0) {
		close(cmd[1]);
		close(reply[0]);
		poker_main(cmd[0], reply[1]);
	}
	close(cmd[0]);
	close(reply[1]);
	while (atomic_load(&ctl->counter[C_HOLDER_READY]) == 0)
		rtest_sleep_ms(1);
	long slot = slot_of_pid(&ring, holder);
	CHECK(slot >= 0);

	bool stepping = true, learned = false;
	uint64_t trail[LCLAIM_TRAIL];
	uint32_t at_pc = 0, pc_missed = 0;
	uint32_t stepped = 0;
	uint64_t steps_total = 0;
	uint32_t in_window = 0, held = 0, held_in_window = 0, done = 0, full = 0, waited = 0;
	for (uint32_t r = 0; r < rounds; r++) {
		/* The holder takes the lease back (within its backoff) after
		 * the poker's close: wait for that in the stepped rounds (not
		 * under TSan, where a claim costs ~20x). */
		bool want_held = lease_checks() && !LEASE_SLOW && r % 2 == 1;
		while (want_held && !lwait_long_lease(&ring, (size_t)slot)) {
		}
		int64_t until = rtest_now_ns() + (int64_t)(lrand(&rng) % 2000) * 1000;
		while (rtest_now_ns() < until) {
		}
		long steps = -1;
		if (stepping && r % (LEASE_SLOW ? 16 : 4) == 3) {
			/* At one of the 24 instructions before the claim's store:
			 * learnt from a claim under the lease (a plain store, not
			 * a locked CAS, where that can be told: x86-64). */
			for (int tries = 0; stepping && !learned && tries < 8; tries++) {
				if (!llearn_claim(&ring, holder, want_held, trail)) {
					printf(
					    "no program counter through ptrace: no stops at code "
					    "points\n");
					stepping = false;
				}
				learned = !want_held || !linsn_locked(holder, trail[0]);
			}
			learned = true;
			int d = 1 + (int)(lrand(&rng) % 24);
			if (stepping)
				steps = lstep_to_pc(&ring, holder, trail[d], 200000, want_held);
			if (steps >= 0) {
				at_pc++;
			} else if (stepping) {
				/* That code point was not on the path of the claims
				 * that followed: learn another. */
				pc_missed++;
				learned = false;
				CHECK(kill(holder, SIGSTOP) == 0);
				int status;
				CHECK(waitpid(holder, &status, WUNTRACED) == holder &&
				      WIFSTOPPED(status));
				steps = -2;
			}
		} else if (stepping && r % (LEASE_SLOW ? 16 : 4) == 1) {
			steps = lstep_into_window(&ring, holder, (size_t)slot, 2000000, want_held);
			if (steps < 0 && r == 1 && errno == EPERM) {
				printf("ptrace not permitted: no stops stepped into the window\n");
				stepping = false;
			} else if (steps < 0) {
				FAIL("round %u: 2000000 single steps never reached a claim window",
				     r);
			} else {
				stepped++;
				steps_total += (uint64_t)steps;
			}
		}
		if (steps == -1) {
			CHECK(kill(holder, SIGSTOP) == 0);
			int status;
			CHECK(waitpid(holder, &status, WUNTRACED) == holder && WIFSTOPPED(status));
		}
		bool window = lane0_in_window(&ring, (size_t)slot);
		bool holds = LEASE_IS_HELD(lease_word(&ring), slot);
		if (steps >= 0 && r % (LEASE_SLOW ? 16 : 4) == 1)
			CHECK(window);
		else if (steps == -1)
			in_window += window;
		held += holds;
		held_in_window += window && holds;
		rtest_send(cmd[1], 'w');
		char a = answer_within(reply[0], 100);
		if (a == 'f') {
			full++;
		} else if (a == 'd') {
			done++;
			if (lease_checks() && window && holds)
				FAIL("round %u: a second producer wrote while the lease holder was "
				     "stopped inside its plain claim window (the revoker did not "
				     "wait)",
				     r);
		} else {
			CHECK(a == 0);
			waited++;
			if (!(window && holds)) {
				a = answer_within(reply[0], 5000);
				if (a == 0)
					FAIL("round %u: a second producer's write waited 5 s for a "
					     "holder stopped outside its claim window (window %d, "
					     "lease held %d)",
					     r, window, holds);
				CHECK(a == 'f' || a == 'd');
				if (a == 'f')
					full++;
				else
					done++;
			}
		}
		CHECK(kill(holder, SIGCONT) == 0);
		while (a != 'd')
			a = rtest_recv(reply[0]);
	}
	rtest_send(cmd[1], 'q');
	rtest_expect_exit0(poker, "second producer");
	atomic_store(&ctl->stop, 1);
	rtest_expect_exit0(holder, "holder");
	uint64_t total = lfinish(ctl, &ring, consumer, 2, NULL);
	CHECK_RC(mrb_close(&ring), 0);
	printf(
	    "%u stops: %u single-stepped into the claim window (%.0f steps each), %u to one "
	    "of the 24 instructions before the claim's store (%u missed it); of the other %u "
	    "(SIGSTOP at a random moment) %u inside the window (%.2f%%); %u with the lease "
	    "held, %u held and in the window; the second write: done while stopped %u, ring "
	    "full %u, waited for SIGCONT %u; %" PRIu64 " messages\n",
	    rounds, stepped, stepped ? (double)steps_total / stepped : 0.0, at_pc, pc_missed,
	    rounds - stepped - at_pc - pc_missed, in_window,
	    100.0 * in_window /
	        (rounds - stepped - at_pc - pc_missed ? rounds - stepped - at_pc - pc_missed : 1),
	    held, held_in_window, done, full, waited, total);
	lprint_seen(ctl);
	return 0;
}
