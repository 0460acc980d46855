/* SPDX-License-Identifier: MIT */
/*
 * Description: a revoker stalled before its last CAS (REVOKING -> 0) while
 * the holder takes the same lease value back (the model's finding F3: that
 * stale CAS would clear a later revoker's mark and claim beside the
 * holder). A holder process H writes and holds the lease. A producer P
 * that never takes the lease (mrb__test_set_barriers NONE) writes one
 * message per command. With H frozen outside its claim window, P is
 * single-stepped (ptrace) through a write that revokes H's lease until it
 * is about to execute that last CAS (the instruction learnt on an earlier
 * revocation: the step after which the word went from REVOKING to 0), and
 * held there. H then runs on: it finishes the revocation itself, claims by
 * CAS, and tries to take the lease again after its backoff. While P waits
 * before its CAS on REVOKING(H), H must never claim under that same lease
 * value: two samples reading HELD with that value must not see the
 * producer position move between them (an acquisition that gives the lease
 * back at once, seeing P's marked lane, is fine). Then P finishes; a
 * consumer process accounts for every message. Skipped where ptrace cannot
 * read the program counter. Arguments: [seed [rounds]].
 */
#include "lease_common.h"

#include "mrb_testing.h"

#define RING_SIZE      (256 * 1024)
#define DEFAULT_ROUNDS (LEASE_SLOW ? 2 : 5)
#define P_ID           1
#define C_H_SLOT       0 /* + 1 */
#define C_P_READY      1
#define WATCH_CLAIMS   20000 /* H's tries at 64, 128, ... 8192 claims */
#define STEP_LIMIT     400000

static struct lctl *ctl;

static void h_main(void)
{
	lchild(140);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	uint32_t seq = 0;
	lwrite(&ring, ctl, 0, seq++);
	atomic_store(&ctl->counter[C_H_SLOT], ring_own_slot(&ring) + 1);
	while (!atomic_load(&ctl->stop))
		lwrite(&ring, ctl, 0, seq++);
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

static void p_main(int cmd)
{
	lchild(140);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	CHECK_RC(mrb__test_set_barriers(&ring, MRB_TEST_BARRIERS_NONE), 0);
	uint32_t seq = 0;
	lwrite(&ring, ctl, P_ID, seq++);
	atomic_store(&ctl->counter[C_P_READY], 1);
	for (;;) {
		char c = rtest_recv(cmd);
		if (c == 'q')
			break;
		lwrite(&ring, ctl, P_ID, seq++);
	}
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
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

/* Stops H outside its claim window (SIGSTOP; retried while it stopped
 * inside one, which a revoker would wait for). */
static void stop_outside_window(struct mrb_ring *ring, pid_t h, size_t slot)
{
	for (;;) {
		CHECK(kill(h, SIGSTOP) == 0);
		int status;
		CHECK(waitpid(h, &status, WUNTRACED) == h && WIFSTOPPED(status));
		if (!lane0_in_window(ring, slot))
			return;
		CHECK(kill(h, SIGCONT) == 0);
		sched_yield();
	}
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
	pid_t h = fork();
	CHECK(h >= 0);
	if (h == 0)
		h_main();
	while (atomic_load(&ctl->counter[C_H_SLOT]) == 0)
		rtest_sleep_ms(1);
	size_t h_slot = (size_t)atomic_load(&ctl->counter[C_H_SLOT]) - 1;
	int cmd[2];
	CHECK(pipe(cmd) == 0);
	pid_t p = fork();
	CHECK(p >= 0);
	if (p == 0) {
		close(cmd[1]);
		p_main(cmd[0]);
	}
	close(cmd[0]);
	while (atomic_load(&ctl->counter[C_P_READY]) == 0)
		rtest_sleep_ms(1);

	uint64_t r4_pc = 0;
	uint32_t checked = 0, transient = 0;
	for (uint32_t r = 0; r < rounds + 1 && lease_checks(); r++) {
		while (!lwait_long_lease(&ring, h_slot)) {
		}
		uint64_t held = lease_word(&ring);
		uint64_t revoking = (held & ~UINT64_C(0xff)) | LEASE_REVOKING;
		stop_outside_window(&ring, h, h_slot);
		/* P revokes H's lease, single-stepped: round 0 learns the
		 * instruction of the last CAS, the others stop before it. */
		seize(p);
		rtest_send(cmd[1], 'w');
		bool at_r4 = false;
		for (long n = 0; n < STEP_LIMIT; n++) {
			uint64_t pc = lpc(p);
			if (pc == 0)
				break;
			uint64_t before = lease_word(&ring);
			if (r > 0 && pc == r4_pc && before == revoking) {
				at_r4 = true;
				break;
			}
			step(p);
			if (r == 0 && before == revoking && lease_word(&ring) == 0) {
				r4_pc = pc;
				break;
			}
		}
		if (r == 0) {
			CHECK(ptrace(PTRACE_DETACH, p, NULL, NULL) == 0);
			CHECK(kill(h, SIGCONT) == 0);
			if (r4_pc == 0) {
				printf(
				    "no program counter through ptrace, or P's revocation was not "
				    "seen: nothing checked\n");
				break;
			}
			continue;
		}
		if (!at_r4)
			FAIL("round %u: P never reached its last revoking CAS (%#" PRIx64 ")", r,
			     r4_pc);
		/* P waits before REVOKING(H) -> 0; H runs on. */
		CHECK(kill(h, SIGCONT) == 0);
		uint32_t from = atomic_load(&ctl->committed[0]);
		while (atomic_load(&ctl->committed[0]) - from < WATCH_CLAIMS) {
			uint64_t w1 = lease_word(&ring);
			uint64_t t1 = ring_load64(&ring, OFF_PRODUCER_POSITION);
			/* Until H's next claim (or 2 ms). */
			int64_t until = rtest_now_ns() + 2000000;
			uint64_t t2;
			while ((t2 = ring_load64(&ring, OFF_PRODUCER_POSITION)) == t1 &&
			       rtest_now_ns() < until) {
			}
			uint64_t w2 = lease_word(&ring);
			/* Two acquisitions with that value are at least 64 claims
			 * (3 KiB) apart: one that the position moved under. */
			if (w2 == held && w1 == held && t1 != t2 && t2 - t1 < 3072)
				FAIL("round %u: H claims under its old lease value %#" PRIx64
				     " (position %#" PRIx64 " -> %#" PRIx64
				     ") while P waits to CAS REVOKING of it to 0 (ABA)",
				     r, held, t1, t2);
			transient += w2 == held;
		}
		checked++;
		CHECK(ptrace(PTRACE_DETACH, p, NULL, NULL) == 0);
	}
	rtest_send(cmd[1], 'q');
	rtest_expect_exit0(p, "P");
	atomic_store(&ctl->stop, 1);
	rtest_expect_exit0(h, "H");
	uint64_t total = lfinish(ctl, &ring, consumer, 2, NULL);
	CHECK_RC(mrb_close(&ring), 0);
	printf("%u rounds with P stopped before its last revoking CAS while H wrote %d "
	       "messages: H's old lease value seen %u times (transient acquisitions given "
	       "back); %" PRIu64 " messages (lease assertions %s)\n",
	       checked, WATCH_CLAIMS, transient, total, lease_checks() ? "on" : "off");
	return 0;
}
