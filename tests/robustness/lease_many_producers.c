/* SPDX-License-Identifier: MIT */
/*
 * Description: many producers revoking one lease at once. A holder process
 * writes sequence-numbered, checksummed messages and holds the lease (with
 * the lease hook, each round starts once it holds it again). Each round 24
 * producer processes (more than format 1's 16 slots; half forked, half
 * exec'd afresh) open the ring and wait at a gate without writing; the gate
 * opens for all at once (one write to the pipe they all read), so their first
 * claims all find the lease held and revoke it together: one marks it,
 * the others find it REVOKING and finish the revocation themselves. Each
 * writes a burst (mrb_write, mrb_reserve + mrb_commit, mrb_write_batch);
 * two per round are SIGKILLed mid-burst, the others exit with or without
 * mrb_close. Nobody may hang (watchdogs), and one consumer process
 * accounts for every message of every producer: nothing lost, duplicated,
 * torn or reordered, a killed one at most its in-flight write(s). With
 * every joiner gone the lease is never left REVOKING, and the holder takes
 * it back within its longest backoff. Arguments: [seed [rounds]].
 */
#include "lease_common.h"

#define RING_SIZE      (128 * 1024)
#define JOINERS        24
#define DEFAULT_ROUNDS 4
#define KILLED         2
#define C_HOLDER_SLOT  0 /* + 1 */
#define C_OPENED       1

static struct lctl *ctl;

static void holder_main(void)
{
	lchild(120);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	uint32_t seq = 0;
	lwrite(&ring, ctl, 0, seq++);
	lease_expect_mine(&ring, "holder's first write, alone");
	atomic_store(&ctl->counter[C_HOLDER_SLOT], ring_own_slot(&ring) + 1);
	while (!atomic_load(&ctl->stop))
		lwrite(&ring, ctl, 0, seq++);
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

/* Opens the ring, reports, waits at the gate (EOF on `gate`), then writes
 * `count` messages. */
static void joiner_main(int gate, uint32_t id, uint32_t count)
{
	lchild(120);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	atomic_fetch_add(&ctl->counter[C_OPENED], 1);
	char c;
	while (read(gate, &c, 1) < 0 && errno == EINTR) {
	}
	for (uint32_t seq = 0; seq < count;) {
		if (id % 3 == 0) {
			uint32_t n = 1 + seq % 8;
			seq += lwrite_batch(&ring, ctl, id, seq, n < count - seq ? n : count - seq);
		} else if (id % 3 == 1 && seq % 2 == 1) {
			lwrite_reserved(&ring, ctl, id, seq++);
		} else {
			lwrite(&ring, ctl, id, seq++);
		}
		lease_check_wellformed(lease_word(&ring));
	}
	if (id % 2 == 0)
		CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "joiner") == 0) {
		ctl = lctl_map(argv[2], false);
		joiner_main(atoi(argv[3]), (uint32_t)strtoul(argv[4], NULL, 0),
		            (uint32_t)strtoul(argv[5], NULL, 0));
	}
	uint64_t seed = lseed(argc, argv, 1);
	uint32_t rounds = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : DEFAULT_ROUNDS;
	CHECK(1 + rounds * JOINERS < LMSG_END_ID);
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
	while (atomic_load(&ctl->counter[C_HOLDER_SLOT]) == 0)
		rtest_sleep_ms(1);
	size_t holder_slot = (size_t)atomic_load(&ctl->counter[C_HOLDER_SLOT]) - 1;

	uint32_t next_id = 1, held_at_gate = 0, execs = 0;
	uint64_t longest_wait = 0;
	for (uint32_t r = 0; r < rounds; r++) {
		/* The holder takes the lease back within its longest backoff. */
		uint32_t from = atomic_load(&ctl->committed[0]);
		while (lease_checks() && !LEASE_IS_HELD(lease_word(&ring), holder_slot)) {
			uint32_t writes = atomic_load(&ctl->committed[0]) - from;
			if (writes > LEASE_BACKOFF_MAX + LEASE_BACKOFF_MAX / 8)
				FAIL("round %u: the holder wrote %u messages alone without the "
				     "lease "
				     "(word %#" PRIx64 ")",
				     r, writes, lease_word(&ring));
			sched_yield();
		}
		if (atomic_load(&ctl->committed[0]) - from > longest_wait)
			longest_wait = atomic_load(&ctl->committed[0]) - from;
		int gate[2];
		CHECK(pipe(gate) == 0);
		atomic_store(&ctl->counter[C_OPENED], 0);
		pid_t pids[JOINERS];
		uint32_t ids[JOINERS];
		for (uint32_t i = 0; i < JOINERS; i++) {
			ids[i] = next_id++;
			uint32_t count = 50 + (uint32_t)(lrand(&rng) % 400);
			if (i % 2) {
				char a_fd[16], a_id[16], a_count[16];
				snprintf(a_fd, sizeof(a_fd), "%d", gate[0]);
				snprintf(a_id, sizeof(a_id), "%u", ids[i]);
				snprintf(a_count, sizeof(a_count), "%u", count);
				char *args[] = {argv[0], "joiner", ctl->ctl_path, a_fd,
				                a_id,    a_count,  NULL};
				pids[i] = lspawn_exec(args);
				execs++;
			} else {
				pids[i] = fork();
				CHECK(pids[i] >= 0);
				if (pids[i] == 0) {
					close(gate[1]);
					joiner_main(gate[0], ids[i], count);
				}
			}
		}
		while (atomic_load(&ctl->counter[C_OPENED]) < JOINERS)
			rtest_sleep_ms(1);
		held_at_gate += LEASE_IS_HELD(lease_word(&ring), holder_slot);
		/* Open the gate: one write of a byte for each joiner wakes all
		 * their reads at once (the exec'd ones hold the write end too,
		 * so closing it would not give them EOF). */
		char go[JOINERS];
		memset(go, 'g', sizeof(go));
		CHECK(write(gate[1], go, sizeof(go)) == (ssize_t)sizeof(go));
		close(gate[1]);
		close(gate[0]);
		for (uint32_t k = 0; k < KILLED; k++) {
			uint32_t i = (uint32_t)(lrand(&rng) % JOINERS);
			struct timespec ts = {0, (long)(lrand(&rng) % 3000) * 1000};
			nanosleep(&ts, NULL);
			if (pids[i] == 0)
				continue;
			atomic_store(&ctl->killed[ids[i]], ids[i] % 3 == 0 ? 8 : 1);
			rtest_kill(pids[i]);
			pids[i] = 0;
		}
		for (uint32_t i = 0; i < JOINERS; i++)
			if (pids[i] != 0)
				rtest_expect_exit0(pids[i], "joiner");
		uint64_t w = lease_word(&ring);
		lease_check_wellformed(w);
		if (LEASE_TAG(w) == LEASE_REVOKING)
			FAIL("round %u: lease %#" PRIx64 " left REVOKING", r, w);
	}
	atomic_store(&ctl->stop, 1);
	rtest_expect_exit0(holder, "holder");
	uint64_t recovered;
	uint64_t total = lfinish(ctl, &ring, consumer, next_id, &recovered);
	CHECK(recovered <= rounds * KILLED);
	CHECK_RC(mrb_close(&ring), 0);
	printf("%u rounds x %d joiners at once (%u exec'd), lease held at the gate %u times, "
	       "the holder's longest wait for it %" PRIu64 " writes; %" PRIu64 " messages, %" PRIu64
	       " recovered records\n",
	       rounds, JOINERS, execs, held_at_gate, longest_wait, total, recovered);
	lprint_seen(ctl);
	return 0;
}
