/* SPDX-License-Identifier: MIT */
/*
 * Description: the sole-producer lease handed off and taken back many times.
 * A holder process writes sequence-numbered, checksummed messages alone
 * (mrb_write, some mrb_reserve + mrb_commit, some mrb_write_batch runs), so
 * it holds the lease; meanwhile short-lived producer processes, forked or
 * exec'd afresh (a new process registering for membarrier), up to three at
 * once, write bursts (each with one API) and exit, with mrb_close or without
 * (a dead slot owner): every burst revokes the holder's lease. Then, alone
 * again, the holder must take the lease back within its longest backoff
 * (2^20 CAS claims); it
 * closes (lease 0); a new sole producer takes it at its first write and
 * closes; another takes it and is SIGKILLed while writing; the parent's end
 * marker write clears the dead holder's lease and takes it. One consumer
 * process (mrb_read, mrb_read_batch, mrb_read_many in turn) proves for every
 * producer: nothing lost, duplicated, torn or reordered; the killed one at
 * most its in-flight message. With the lease hook, the lease states are
 * asserted at each step and every state the consumer samples is well
 * formed; without it (no lease), the same traffic must pass.
 * Arguments: [seed [bursts]]; LEASE_SEED works too.
 */
#include "lease_common.h"

#define RING_SIZE      (64 * 1024)
#define DEFAULT_BURSTS 150
#define CONCURRENT     3
#define PH_BURSTS      0
#define PH_ALONE       1
#define C_HOLDER_READY 0

static struct lctl *ctl;

static void holder_main(void)
{
	lchild(60);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	uint32_t seq = 0;
	lwrite(&ring, ctl, 0, seq++);
	lease_expect_mine(&ring, "holder's first write, alone");
	atomic_store(&ctl->counter[C_HOLDER_READY], 1);
	while (atomic_load(&ctl->phase) != PH_ALONE) {
		if (seq % 97 == 0)
			seq += lwrite_batch(&ring, ctl, 0, seq, 1 + seq % 8);
		else if (seq % 16 == 0)
			lwrite_reserved(&ring, ctl, 0, seq++);
		else
			lwrite(&ring, ctl, 0, seq++);
	}
	/* Everybody else is gone: the lease comes back within the backoff. */
	uint32_t n = lwrite_until_mine(&ring, ctl, 0, &seq, "holder alone again");
	atomic_store(&ctl->counter[2], n);
	for (uint32_t i = 0; i < 1000; i++)
		lwrite(&ring, ctl, 0, seq++);
	lease_expect_mine(&ring, "holder after 1000 writes under the lease");
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

/* A burst of `count` messages of producer `id`, with one API chosen by the
 * id; exits with or without mrb_close. (The holder may take the lease back
 * between its writes: its tries back off, they are not barred.) */
static void burst_main(uint32_t id, uint32_t count)
{
	lchild(60);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	for (uint32_t seq = 0; seq < count;) {
		if (id % 3 == 0) {
			uint32_t n = 1 + (seq + id) % 8;
			seq += lwrite_batch(&ring, ctl, id, seq, n < count - seq ? n : count - seq);
		} else if (id % 3 == 1 && seq % 2 == 0)
			lwrite_reserved(&ring, ctl, id, seq++);
		else
			lwrite(&ring, ctl, id, seq++);
		lease_check_wellformed(lease_word(&ring));
	}
	if (id % 4 == 0)
		_exit(0); /* no close: a dead owner's slot */
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

/* A new sole producer: takes the lease at its first write; closes, or is
 * killed by the parent while writing (`die`). */
static pid_t sole_start(uint32_t id, bool die)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid != 0)
		return pid;
	lchild(60);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	uint32_t seq = 0;
	lwrite(&ring, ctl, id, seq++);
	lease_expect_mine(&ring, "new sole producer's first write");
	for (; seq < 500; seq++)
		lwrite(&ring, ctl, id, seq);
	lease_expect_mine(&ring, "new sole producer after 500 writes");
	if (!die) {
		CHECK_RC(mrb_close(&ring), 0);
		_exit(0);
	}
	atomic_store(&ctl->counter[1], 1);
	for (;; seq++)
		lwrite(&ring, ctl, id, seq);
}

static void expect_lease_none(struct mrb_ring *ring, const char *when)
{
	uint64_t w = lease_word(ring);
	if (w != 0)
		FAIL("%s: lease word %#" PRIx64 " (%s slot %u), expected 0", when, w, lease_name(w),
		     LEASE_SLOT(w));
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "burst") == 0) {
		ctl = lctl_map(argv[2], false);
		burst_main((uint32_t)strtoul(argv[3], NULL, 0),
		           (uint32_t)strtoul(argv[4], NULL, 0));
	}
	uint64_t seed = lseed(argc, argv, 1);
	uint32_t bursts = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : DEFAULT_BURSTS;
	CHECK(bursts + 3 < LMSG_END_ID);
	rtest_watchdog(120);
	ctl = lctl_setup(RING_SIZE, 0, seed);
	uint64_t rng = seed;

	struct mrb_ring ring; /* the parent's: inspects, and writes the end marker */
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	pid_t consumer = lconsumer_start(ctl);
	pid_t holder = fork();
	CHECK(holder >= 0);
	if (holder == 0)
		holder_main();
	while (atomic_load(&ctl->counter[C_HOLDER_READY]) == 0)
		rtest_sleep_ms(1);

	pid_t running[CONCURRENT] = {0};
	uint32_t execs = 0;
	for (uint32_t next = 1, live = 0; next <= bursts || live > 0;) {
		live = 0;
		for (int i = 0; i < CONCURRENT; i++) {
			if (running[i] != 0) {
				int status;
				pid_t r = waitpid(running[i], &status, WNOHANG);
				CHECK(r == 0 || r == running[i]);
				if (r == 0) {
					live++;
					continue;
				}
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
					FAIL("burst process %d: status %#x", (int)r, status);
				running[i] = 0;
			}
			if (next > bursts)
				continue;
			uint32_t id = next++;
			uint32_t count = 1 + (uint32_t)(lrand(&rng) % 400);
			if (lrand(&rng) % 2) {
				char a_id[16], a_count[16];
				snprintf(a_id, sizeof(a_id), "%u", id);
				snprintf(a_count, sizeof(a_count), "%u", count);
				char *args[] = {argv[0], "burst", ctl->ctl_path,
				                a_id,    a_count, NULL};
				running[i] = lspawn_exec(args);
				execs++;
			} else {
				running[i] = fork();
				CHECK(running[i] >= 0);
				if (running[i] == 0)
					burst_main(id, count);
			}
			live++;
		}
		struct timespec ts = {0, (long)(lrand(&rng) % 500) * 1000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&ctl->phase, PH_ALONE);
	rtest_expect_exit0(holder, "holder");
	expect_lease_none(&ring, "after the holder closed");

	uint32_t sole = bursts + 1, doomed = bursts + 2;
	rtest_expect_exit0(sole_start(sole, false), "new sole producer");
	expect_lease_none(&ring, "after the new sole producer closed");

	pid_t victim = sole_start(doomed, true);
	while (atomic_load(&ctl->counter[1]) == 0)
		sched_yield();
	struct timespec ts = {0, (long)(lrand(&rng) % 2000) * 1000};
	nanosleep(&ts, NULL);
	atomic_store(&ctl->killed[doomed], 1);
	long victim_slot = slot_of_pid(&ring, victim);
	rtest_kill(victim);
	uint64_t dead = lease_word(&ring);
	if (lease_checks() && !LEASE_IS_HELD(dead, victim_slot))
		FAIL("killed sole producer (slot %ld) left lease %#" PRIx64 ", expected HELD by it",
		     victim_slot, dead);

	uint64_t recovered;
	uint64_t total = lfinish(ctl, &ring, consumer, doomed + 1, &recovered);
	/* The end marker's write revoked the dead holder's lease (and, alone,
	 * may have taken it: at its first claim, or within 65536). */
	uint64_t after = lease_word(&ring);
	if (lease_checks() &&
	    (after == dead || (after != 0 && !LEASE_IS_HELD(after, ring_own_slot(&ring)))))
		FAIL("after the end marker's write: lease %#" PRIx64
		     " (the killed holder's was %#" PRIx64 "), expected 0 or mine",
		     after, dead);
	CHECK(recovered <= 1);
	CHECK_RC(mrb_close(&ring), 0);
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	expect_lease_none(&ring, "after the parent closed");
	CHECK_RC(mrb_close(&ring), 0);

	printf("%u bursts (%u exec'd), %" PRIu64 " messages delivered, holder %u (the lease "
	       "back after %" PRIu64 " writes alone), recovered records %" PRIu64 "\n",
	       bursts, execs, total, atomic_load(&ctl->committed[0]), atomic_load(&ctl->counter[2]),
	       recovered);
	lprint_seen(ctl);
	return 0;
}
