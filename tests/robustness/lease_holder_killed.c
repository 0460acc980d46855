/* SPDX-License-Identifier: MIT */
/*
 * Description: the lease holder SIGKILLed while it writes. Each round a new
 * holder process writes alone (mrb_write, mrb_reserve + mrb_commit, and in
 * some rounds mrb_write_batch runs) until, with the lease hook, it has
 * checked that it holds the lease (at its first write the previous round's
 * dead holder's lease must be gone; alone, the lease is its own within the
 * longest backoff); then one to four other producers start (forked or exec'd, each
 * writing a burst and exiting) and the holder is SIGKILLed at a random
 * moment: before they start, while they revoke, or after; every fourth
 * round exactly inside its claim window (single-stepped there with ptrace:
 * the announcement made, the tail not yet moved, the lease held), which
 * the next producer's revocation must see as dead, not wait for. Every other
 * producer must finish its burst (a hang past the watchdog fails: a
 * revoker may wait for a dead holder only until its liveness check says
 * dead). One consumer process accounts for every message: nothing lost,
 * duplicated, torn or reordered per producer; a killed holder at most its
 * in-flight write (a batch's rest), and the recovered record count is at
 * most one per kill. Arguments: [seed [rounds]]; LEASE_SEED works too.
 */
#include "lease_common.h"

#define RING_SIZE      (128 * 1024)
#define DEFAULT_ROUNDS (LEASE_SLOW ? 8 : 30)
#define MAX_OTHERS     4

static struct lctl *ctl;

/* counter[round % 8]: the holder of that round is ready to be killed. */
static void holder_main(uint32_t id, uint64_t dead_word, bool batches)
{
	lchild(60);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	uint32_t seq = 0;
	lwrite(&ring, ctl, id, seq++);
	uint64_t w = lease_word(&ring);
	lease_check_wellformed(w);
	if (dead_word != 0 && w == dead_word)
		FAIL("holder %u: the killed holder's lease %#" PRIx64 " survived my first write",
		     id, w);
	lwrite_until_mine(&ring, ctl, id, &seq, "holder alone");
	atomic_store(&ctl->counter[0], id);
	for (;;) {
		if (batches && seq % 5 == 0)
			seq += lwrite_batch(&ring, ctl, id, seq, 1 + seq % 8);
		else if (seq % 3 == 0)
			lwrite_reserved(&ring, ctl, id, seq++);
		else
			lwrite(&ring, ctl, id, seq++);
	}
}

static void other_main(uint32_t id, uint32_t count)
{
	lchild(60);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	for (uint32_t seq = 0; seq < count; seq++) {
		if (seq % 4 == 1)
			lwrite_reserved(&ring, ctl, id, seq);
		else
			lwrite(&ring, ctl, id, seq);
		lease_check_wellformed(lease_word(&ring));
	}
	if (id % 2 == 0)
		CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

static pid_t other_start(char *argv0, uint32_t id, uint32_t count, bool exec)
{
	if (exec) {
		char a_id[16], a_count[16];
		snprintf(a_id, sizeof(a_id), "%u", id);
		snprintf(a_count, sizeof(a_count), "%u", count);
		char *args[] = {argv0, "other", ctl->ctl_path, a_id, a_count, NULL};
		return lspawn_exec(args);
	}
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		other_main(id, count);
	return pid;
}

static void spin_us(uint64_t us)
{
	int64_t until = rtest_now_ns() + (int64_t)us * 1000;
	while (rtest_now_ns() < until) {
	}
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "other") == 0) {
		ctl = lctl_map(argv[2], false);
		other_main((uint32_t)strtoul(argv[3], NULL, 0),
		           (uint32_t)strtoul(argv[4], NULL, 0));
	}
	uint64_t seed = lseed(argc, argv, 1);
	uint32_t rounds = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : DEFAULT_ROUNDS;
	CHECK(rounds * (1 + MAX_OTHERS) < LMSG_END_ID);
	rtest_watchdog(150);
	ctl = lctl_setup(RING_SIZE, 0, seed);
	uint64_t rng = seed;

	struct mrb_ring ring; /* inspects; writes the end marker */
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	pid_t consumer = lconsumer_start(ctl);
	uint32_t next_id = 0, kills_before = 0, kills_during = 0, cleared = 0,
	         held_by_dead_holder = 0;
	uint64_t dead_word = 0;
	bool stepping = true;
	uint32_t kills_in_window = 0;
	for (uint32_t r = 0; r < rounds; r++) {
		uint32_t holder_id = next_id++;
		bool batches = r % 3 == 2;
		pid_t holder = fork();
		CHECK(holder >= 0);
		if (holder == 0)
			holder_main(holder_id, dead_word, batches);
		while (atomic_load(&ctl->counter[0]) != holder_id) {
			int status;
			if (waitpid(holder, &status, WNOHANG) == holder)
				FAIL("holder %u exited early: status %#x", holder_id, status);
			rtest_sleep_ms(1);
		}
		spin_us(lrand(&rng) % 3000);
		long holder_slot = slot_of_pid(&ring, holder);
		uint32_t others = 1 + (uint32_t)(lrand(&rng) % MAX_OTHERS);
		pid_t pids[MAX_OTHERS];
		bool kill_first = lrand(&rng) % 3 == 0;
		atomic_store(&ctl->killed[holder_id], batches ? 8 : 1);
		if (r % 4 == 3 && stepping) {
			/* Killed exactly inside its claim window (announced, tail
			 * not moved), with the lease held if there is one. */
			long steps = lstep_into_window(&ring, holder, (size_t)holder_slot, 2000000,
			                               lease_checks());
			if (steps < 0 && errno == EPERM)
				stepping = false;
			else if (steps < 0)
				FAIL("round %u: 2000000 single steps never reached a claim window",
				     r);
			else
				kills_in_window++;
			kill_first = true;
		}
		if (kill_first) {
			rtest_kill(holder);
			kills_before++;
		}
		for (uint32_t i = 0; i < others; i++)
			pids[i] = other_start(argv[0], next_id++, 1 + (uint32_t)(lrand(&rng) % 300),
			                      lrand(&rng) % 2);
		if (!kill_first) {
			spin_us(lrand(&rng) % 2000);
			rtest_kill(holder);
			kills_during++;
		}
		for (uint32_t i = 0; i < others; i++)
			rtest_expect_exit0(pids[i], "other producer");
		/* Every producer is gone: the lease is 0 or held by a dead one
		 * (the holder, re-acquired after the others; or an other that
		 * wrote alone after the kill and exited without closing), never
		 * half revoked (no revoker died). */
		dead_word = lease_word(&ring);
		lease_check_wellformed(dead_word);
		if (LEASE_TAG(dead_word) == LEASE_REVOKING)
			FAIL("round %u: lease %#" PRIx64 " REVOKING with every producer gone "
			     "(holder slot %ld)",
			     r, dead_word, holder_slot);
		if (dead_word == 0)
			cleared++;
		else if (LEASE_IS_HELD(dead_word, holder_slot))
			held_by_dead_holder++;
	}
	uint64_t recovered;
	uint64_t total = lfinish(ctl, &ring, consumer, next_id, &recovered);
	uint64_t w = lease_word(&ring);
	if (dead_word != 0 && w == dead_word)
		FAIL("the last killed holder's lease %#" PRIx64 " survived the end marker's write",
		     w);
	if (w != 0 && !LEASE_IS_HELD(w, ring_own_slot(&ring)))
		FAIL("after the end marker: lease %#" PRIx64 " not mine", w);
	if (recovered > rounds)
		FAIL("%" PRIu64 " records recovered after %u kills", recovered, rounds);
	CHECK_RC(mrb_close(&ring), 0);
	printf(
	    "%u rounds (%u holders killed before the others started, %u of them "
	    "single-stepped into a claim window, %u while the others wrote), %u producers, %" PRIu64
	    " messages delivered, %" PRIu64
	    " recovered records; lease at round ends: 0 %u times, the dead holder's %u\n",
	    rounds, kills_before, kills_in_window, kills_during, next_id, total, recovered, cleared,
	    held_by_dead_holder);
	lprint_seen(ctl);
	return 0;
}
