/* SPDX-License-Identifier: MIT */
/*
 * Description: an acquisition racing a CAS producer that has checked the
 * lease but not yet made its CAS (the spec's A4: the acquirer must give the
 * lease back while another lane announces a claim at the producer
 * position). A producer process P that never takes the lease (no
 * membarrier: mrb__test_set_barriers NONE) writes with CAS claims. Each
 * round, with ptrace single-stepping:
 *  1. a fresh producer process H (its first claim tries to take the lease)
 *     is stepped through its first claim until the producer position moves
 *     (H's CAS), and left stopped there, before its acquisition;
 *  2. P is stepped to the instruction of its CAS: it has read that new
 *     position, announced it, checked the lease (0), and stops there;
 *  3. H is stepped on: through its acquisition and into its next claim. It
 *     must not reach a plain claim window (its lane 0 announcing the tail)
 *     with the lease HELD by it while P's announcement stands at the same
 *     tail: P's CAS would then claim the space H's plain store claims too.
 *     The real A4 gives the lease back (counted), and H claims by CAS.
 * Then both run on; a consumer process accounts for every message.
 * Skipped (exit 0, with a line saying so) where ptrace cannot read the
 * program counter. Arguments: [seed [rounds]].
 */
#include "lease_common.h"

#include "mrb_testing.h"

#define RING_SIZE      (256 * 1024)
#define DEFAULT_ROUNDS (LEASE_SLOW ? 2 : 6)
#define P_ID           1
#define C_P_READY      0
#define STEP_LIMIT     400000

static struct lctl *ctl;

static void p_main(void)
{
	lchild(140);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	CHECK_RC(mrb__test_set_barriers(&ring, MRB_TEST_BARRIERS_NONE), 0);
	uint32_t seq = 0;
	lwrite(&ring, ctl, P_ID, seq++);
	atomic_store(&ctl->counter[C_P_READY], 1);
	while (!atomic_load(&ctl->stop))
		lwrite(&ring, ctl, P_ID, seq++);
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

/* A fresh producer: waits for the go byte, then writes three messages. */
static pid_t h_start(uint32_t id, int *go)
{
	int pipefd[2];
	CHECK(pipe(pipefd) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		lchild(140);
		close(pipefd[1]);
		struct mrb_ring ring;
		CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
		(void)rtest_recv(pipefd[0]);
		for (uint32_t seq = 0; seq < 3; seq++)
			lwrite(&ring, ctl, id, seq);
		CHECK_RC(mrb_close(&ring), 0);
		_exit(0);
	}
	close(pipefd[0]);
	*go = pipefd[1];
	return pid;
}

static void seize(pid_t pid)
{
	CHECK(ptrace(PTRACE_SEIZE, pid, NULL, NULL) == 0);
	CHECK(ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) == 0);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFSTOPPED(status));
}

static void step(pid_t pid)
{
	int status;
	CHECK(ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) == 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	if (!WIFSTOPPED(status))
		FAIL("process %d ended while single-stepped: status %#x", (int)pid, status);
}

/* Steps a seized process until it is about to execute one of `pcs` (at
 * least one step first). */
static void step_to_pcs(pid_t pid, const uint64_t *pcs, size_t npcs)
{
	for (long n = 0;; n++) {
		CHECK(n < STEP_LIMIT);
		step(pid);
		uint64_t pc = lpc(pid);
		for (size_t i = 0; i < npcs; i++)
			if (pc == pcs[i])
				return;
	}
}

/* Does a lane of slot `slot` announce a claim at the tail? */
static bool announces_at_tail(struct mrb_ring *ring, size_t slot)
{
	uint64_t tail = ring_load64(ring, OFF_PRODUCER_POSITION);
	for (size_t l = 0; l < SLOT_LANE_COUNT; l++)
		if (ring_load64(ring, OFF_PRODUCERS + slot * PRODUCER_SLOT_SIZE + SLOT_LANES +
		                          l * LANE_SIZE) == (tail | 1))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	uint64_t seed = lseed(argc, argv, 1);
	uint32_t rounds = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : DEFAULT_ROUNDS;
	rtest_watchdog(150);
	ctl = lctl_setup(RING_SIZE, 0, seed);
	struct mrb_ring ring; /* inspects; writes the end marker */
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	pid_t consumer = lconsumer_start(ctl);
	pid_t p = fork();
	CHECK(p >= 0);
	if (p == 0)
		p_main();
	while (atomic_load(&ctl->counter[C_P_READY]) == 0)
		rtest_sleep_ms(1);
	long p_slot = slot_of_pid(&ring, p);
	CHECK(p_slot >= 0);
	/* P's CAS instructions (inline in mrb_write, and claim_loop's): those
	 * that moved the position in a few claims of P alone. */
	uint64_t cas_pcs[8];
	size_t ncas = 0;
	for (int k = 0; k < 12 && ncas < 8; k++) {
		uint64_t trail[LCLAIM_TRAIL];
		if (!llearn_claim(&ring, p, false, trail) || trail[0] == 0)
			break;
		bool known = false;
		for (size_t i = 0; i < ncas; i++)
			known = known || cas_pcs[i] == trail[0];
		if (!known)
			cas_pcs[ncas++] = trail[0];
	}
	if (ncas == 0) {
		printf("no program counter through ptrace here: nothing checked\n");
		atomic_store(&ctl->stop, 1);
		rtest_expect_exit0(p, "P");
		lfinish(ctl, &ring, consumer, 2, NULL);
		return 0;
	}

	uint32_t gave_back = 0, no_try = 0, skipped = 0;
	uint32_t next_id = 2;
	for (uint32_t r = 0; r < rounds; r++) {
		/* P (seized, it stays in ptrace stops until the round ends)
		 * stopped before a CAS, so the position stays put. */
		seize(p);
		step_to_pcs(p, cas_pcs, ncas);
		int go;
		uint32_t h_id = next_id++;
		pid_t h = h_start(h_id, &go);
		rtest_sleep_ms(5); /* H opens the ring and waits for the byte */
		/* 1. H through its first claim, stopped after the position moved. */
		seize(h);
		rtest_send(go, 'g');
		close(go);
		uint64_t tail = ring_load64(&ring, OFF_PRODUCER_POSITION);
		for (long n = 0; ring_load64(&ring, OFF_PRODUCER_POSITION) == tail; n++) {
			CHECK(n < STEP_LIMIT);
			step(h);
		}
		long h_slot = slot_of_pid(&ring, h);
		CHECK(h_slot >= 0);
		/* 2. P on to its CAS again: its stale CAS fails, it reads the new
		 * position, announces it, checks the lease, stops before the
		 * CAS. */
		step_to_pcs(p, cas_pcs, ncas);
		bool ready = lease_word(&ring) == 0 && announces_at_tail(&ring, (size_t)p_slot);
		/* 3. H through its acquisition into its next claim. */
		bool tried = false, violated = false;
		tail = ring_load64(&ring, OFF_PRODUCER_POSITION);
		for (long n = 0; ready && ring_load64(&ring, OFF_PRODUCER_POSITION) == tail; n++) {
			CHECK(n < STEP_LIMIT);
			uint64_t w = lease_word(&ring);
			if (LEASE_IS_HELD(w, h_slot))
				tried = true;
			if (LEASE_IS_HELD(w, h_slot) && lane0_in_window(&ring, (size_t)h_slot) &&
			    announces_at_tail(&ring, (size_t)p_slot)) {
				violated = true;
				break;
			}
			step(h);
		}
		if (violated)
			FAIL("round %u: H holds the lease (%#" PRIx64
			     ") and is inside a plain claim "
			     "window at the tail %#" PRIx64
			     " where P, which checked the lease before "
			     "H took it, announces its CAS: A4 did not give the lease back",
			     r, lease_word(&ring), ring_load64(&ring, OFF_PRODUCER_POSITION));
		if (!ready)
			skipped++; /* not the state this round needs */
		else if (lease_checks() && tried)
			gave_back++;
		else
			no_try++;
		CHECK(ptrace(PTRACE_DETACH, h, NULL, NULL) == 0);
		CHECK(ptrace(PTRACE_DETACH, p, NULL, NULL) == 0);
		rtest_expect_exit0(h, "H");
	}
	atomic_store(&ctl->stop, 1);
	rtest_expect_exit0(p, "P");
	uint64_t total = lfinish(ctl, &ring, consumer, next_id, NULL);
	CHECK_RC(mrb_close(&ring), 0);
	printf("%u rounds (P's CAS at %zu code points): the acquisition gave the lease back "
	       "to a pending CAS %u times, did not try %u, state not reached %u; %" PRIu64
	       " messages\n",
	       rounds, ncas, gave_back, no_try, skipped, total);
	lprint_seen(ctl);
	return 0;
}
