/* SPDX-License-Identifier: MIT */
/*
 * Description: a process SIGKILLed inside the set-up or the freeing of a
 * worker slot (docs/FORMAT.md section 9, "Joining", the busy owner word).
 * The process stops itself at the kill point (mrb__test_worker_join) and
 * is killed there:
 *   take   - a joining worker, right after it made a free slot busy: the
 *            slot must be usable again (48 workers can still join);
 *   close  - a worker closing its handle, right after it made its own slot
 *            busy to free it: the same; and a busy word naming another pid
 *            namespace is a live process's there (the slot stays out);
 *   audit  - a worker auditing its group, right after it made a dead
 *            sleeper's slot busy to free it, before it took the sleeper's
 *            share out of data_waiters and work_waiters: the next worker's
 *            audit takes the slot over, so the counts go back to 0 (else
 *            every write pays a futex wake for good) and the slot is free.
 *   rescue - a joining worker, right after it made busy the slot of a
 *            worker that had left while its run was being redelivered by a
 *            rescuer that then died (the slot is free then only for the
 *            join's check, which would have given it back): the run must
 *            still be rescued (it gates the release position R: left
 *            alone, producers stop once the ring is full).
 * Before the busy word named its process, each left the slot busy for
 * good (never judged, never taken, not listed), and a run it gated was
 * never rescued again.
 */
#include "wdoor.h"

#define WSLOT_INFLIGHT 0x28
#define BUSY_BIT       (UINT64_C(1) << 31)

static uint64_t slot_owner(struct mrb_ring *r, unsigned slot)
{
	return atomic_load(ring_u64(r, OFF_WORKER_SLOTS + slot * WORKER_SLOT_SIZE + WSLOT_OWNER));
}

static uint32_t slot_waiting(struct mrb_ring *r, unsigned slot)
{
	return ring_load32(r, OFF_WORKER_SLOTS + slot * WORKER_SLOT_SIZE + WSLOT_WAITING);
}

/* Waits until the child stopped itself at its kill point, then kills it
 * there and reaps it. */
static void kill_at_stop(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, WUNTRACED) < 0)
		CHECK(errno == EINTR);
	if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP)
		FAIL("child %d did not stop at its kill point (status %#x)", (int)pid, status);
	rtest_kill(pid);
}

/* The slot the dead process left busy names it. */
static void check_left_busy(struct mrb_ring *r, unsigned slot, pid_t pid)
{
	uint64_t owner = slot_owner(r, slot);
	if ((owner & BUSY_BIT) == 0 || (uint32_t)(owner & ~BUSY_BIT) != (uint32_t)pid)
		FAIL("slot %u owner %#" PRIx64 ", expected busy for pid %d", slot, owner, (int)pid);
}

/* All 48 worker slots can be taken (the dead process's one too). */
static void check_all_slots_join(struct mrb_ring *ring, const char *path)
{
	static struct mrb_ring w[48];
	for (int i = 0; i < 48; i++)
		CHECK_RC(mrb_worker_join(&w[i], path, "jobs", NULL), 0);
	struct mrb_ring extra;
	CHECK_RC(mrb_worker_join(&extra, path, "jobs", NULL), MRB_ENOWORKER);
	struct mrb_worker_info info[48];
	CHECK_RC(mrb_workers(ring, info, 48), 48);
	for (int i = 0; i < 48; i++) {
		CHECK_EQ_U64(info[i].alive, 1);
		CHECK_EQ_U64(info[i].pid, getpid());
		CHECK_EQ_U64(slot_owner(ring, (unsigned)i) & BUSY_BIT, 0);
	}
	for (int i = 0; i < 48; i++)
		CHECK_RC(mrb_close(&w[i]), 0);
}

static void create_ring(struct mrb_ring *ring, const char *path)
{
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(ring, path, 4096, &copts), 0);
}

static void killed_in_take(void)
{
	const char *path = rtest_path("take");
	struct mrb_ring ring;
	create_ring(&ring, path);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring w;
		mrb__test_worker_join(&w, path, "jobs", NULL, MRB_TEST_WORKER_STOP_SLOT_TAKE);
		_exit(3); /* not reached: killed in the join */
	}
	kill_at_stop(pid);
	check_left_busy(&ring, 0, pid);
	check_all_slots_join(&ring, path);
	CHECK_RC(mrb_close(&ring), 0);
}

static void killed_in_close(void)
{
	const char *path = rtest_path("close");
	struct mrb_ring ring;
	create_ring(&ring, path);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring w;
		CHECK_RC(
		    mrb__test_worker_join(&w, path, "jobs", NULL, MRB_TEST_WORKER_STOP_SLOT_FREE),
		    0);
		mrb_close(&w);
		_exit(3); /* not reached: killed in the close */
	}
	kill_at_stop(pid);
	check_left_busy(&ring, 0, pid);
	/* The same word naming another pid namespace (bits 32-63) is a live
	 * process's there: the slot is not taken (47 workers join). */
	struct stat st;
	CHECK(stat("/proc/self/ns/pid", &st) == 0);
	_Atomic uint64_t *owner = ring_u64(&ring, OFF_WORKER_SLOTS + WSLOT_OWNER);
	uint64_t left = atomic_load(owner);
	atomic_store(owner, ((uint64_t)st.st_ino + 1) << 32 | (left & UINT32_MAX));
	static struct mrb_ring w[48];
	for (int i = 0; i < 47; i++)
		CHECK_RC(mrb_worker_join(&w[i], path, "jobs", NULL), 0);
	CHECK_RC(mrb_worker_join(&w[47], path, "jobs", NULL), MRB_ENOWORKER);
	for (int i = 0; i < 47; i++)
		CHECK_RC(mrb_close(&w[i]), 0);
	atomic_store(owner, left);
	check_all_slots_join(&ring, path);
	CHECK_RC(mrb_close(&ring), 0);
}

static void killed_in_audit(void)
{
	const char *path = rtest_path("audit");
	struct mrb_ring ring;
	create_ring(&ring, path);
	/* A worker asleep in its wait (its share counted), killed there. */
	pid_t sleeper = fork();
	CHECK(sleeper >= 0);
	if (sleeper == 0) {
		struct mrb_ring w;
		CHECK_RC(mrb_worker_join(&w, path, "jobs", NULL), 0);
		uint64_t got;
		size_t len;
		mrb_read_wait(&w, &got, sizeof(got), &len, -1);
		_exit(3);
	}
	/* Stopped where all three counts show its sleep (it re-registers
	 * every 100 ms slice), then killed. */
	for (;;) {
		if (slot_waiting(&ring, 0) == 1 && work_waiters(&ring, 0) == 1 &&
		    ring_load32(&ring, OFF_DATA_WAITERS) == 1) {
			kill(sleeper, SIGSTOP);
			int status;
			CHECK(waitpid(sleeper, &status, WUNTRACED) == sleeper &&
			      WIFSTOPPED(status));
			if (slot_waiting(&ring, 0) == 1 && work_waiters(&ring, 0) == 1 &&
			    ring_load32(&ring, OFF_DATA_WAITERS) == 1)
				break;
			kill(sleeper, SIGCONT);
		}
		rtest_sleep_ms(1);
	}
	rtest_kill(sleeper);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 1);
	CHECK_EQ_U64(work_waiters(&ring, 0), 1);
	/* A worker whose audit frees the sleeper's slot, killed in there. */
	pid_t auditor = fork();
	CHECK(auditor >= 0);
	if (auditor == 0) {
		struct mrb_ring w;
		CHECK_RC(
		    mrb__test_worker_join(&w, path, "jobs", NULL, MRB_TEST_WORKER_STOP_SLOT_FREE),
		    0);
		uint64_t got;
		size_t len;
		for (;;) {
			CHECK_RC(mrb_read(&w, &got, sizeof(got), &len), MRB_EEMPTY);
			rtest_sleep_ms(11); /* an audit at most every 10 ms */
		}
	}
	kill_at_stop(auditor);
	check_left_busy(&ring, 0, auditor);
	CHECK_EQ_U64(slot_waiting(&ring, 0), 1);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 1);

	/* The next worker's audit takes the slot over and frees it. */
	struct mrb_ring w;
	CHECK_RC(mrb_worker_join(&w, path, "jobs", NULL), 0);
	uint64_t got;
	size_t len;
	CHECK_RC(mrb_read(&w, &got, sizeof(got), &len), MRB_EEMPTY);
	CHECK_EQ_U64(slot_owner(&ring, 0), 0);
	CHECK_EQ_U64(slot_waiting(&ring, 0), 0);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 0);
	CHECK_EQ_U64(work_waiters(&ring, 0), 0);
	/* And the group works: a message written now is this worker's. */
	uint64_t seq = 7;
	CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
	CHECK_RC(mrb_read(&w, &got, sizeof(got), &len), 0);
	CHECK_EQ_U64(got, 7);
	CHECK_RC(mrb_close(&w), 0);
	check_all_slots_join(&ring, path);
	CHECK_RC(mrb_close(&ring), 0);
}

static void killed_in_take_of_rescued_slot(void)
{
	const char *path = rtest_path("rescue");
	struct mrb_ring ring;
	create_ring(&ring, path);
	struct mrb_worker_options opts = {.policy = MRB_AT_LEAST_ONCE,
	                                  .hold_timeout_ns = 50 * 1000000LL};
	int ch[2];
	CHECK(pipe(ch) == 0);
	uint64_t seq = 0;
	CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
	/* A takes message 0 and hangs; once resumed, it closes. */
	pid_t a = fork();
	CHECK(a >= 0);
	if (a == 0) {
		struct mrb_ring w;
		CHECK_RC(mrb_worker_join(&w, path, "jobs", &opts), 0);
		uint64_t got;
		size_t len;
		CHECK_RC(mrb_read(&w, &got, sizeof(got), &len), 0);
		CHECK_EQ_U64(got, 0);
		raise(SIGSTOP);
		mrb_close(&w);
		_exit(0);
	}
	int status;
	CHECK(waitpid(a, &status, WUNTRACED) == a && WIFSTOPPED(status));
	/* B rescues it (A held it past the timeout), and dies holding it. */
	pid_t b = fork();
	CHECK(b >= 0);
	if (b == 0) {
		struct mrb_ring w;
		CHECK_RC(mrb_worker_join(&w, path, "jobs", &opts), 0);
		uint64_t got;
		size_t len;
		int rc;
		while ((rc = mrb_read(&w, &got, sizeof(got), &len)) == MRB_EEMPTY)
			rtest_sleep_ms(11);
		CHECK_RC(rc, 0);
		CHECK_EQ_U64(got, 0);
		raise(SIGSTOP);
		_exit(3);
	}
	kill_at_stop(b);
	kill(a, SIGCONT);
	CHECK(WIFEXITED(rtest_wait(a)));
	/* A's slot: nobody's, its run frozen, its rescuer dead. */
	CHECK_EQ_U64(slot_owner(&ring, 0), 0);
	CHECK_EQ_U64(atomic_load(ring_u64(&ring, OFF_WORKER_SLOTS + WSLOT_INFLIGHT)), 0 | 3);
	/* C's join makes that slot busy (to check it) and is killed there. */
	pid_t c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		struct mrb_ring w;
		mrb__test_worker_join(&w, path, "jobs", &opts, MRB_TEST_WORKER_STOP_SLOT_TAKE);
		_exit(3);
	}
	kill_at_stop(c);
	check_left_busy(&ring, 0, c);
	/* D gets the new messages and message 0 once more. */
	for (seq = 1; seq < 3; seq++)
		CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
	struct mrb_ring w;
	CHECK_RC(mrb_worker_join(&w, path, "jobs", &opts), 0);
	unsigned seen = 0;
	int64_t deadline = rtest_now_ns() + 5 * 1000000000LL;
	for (;;) {
		uint64_t got;
		size_t len;
		int rc = mrb_read(&w, &got, sizeof(got), &len);
		if (rc == 0) {
			CHECK(got < 3 && (seen & 1u << got) == 0);
			seen |= 1u << got;
			continue;
		}
		CHECK_RC(rc, MRB_EEMPTY);
		struct mrb_stats st;
		CHECK_RC(mrb_stats(&ring, &st), 0);
		if (seen == 7 && st.consumer_position == st.producer_position)
			break;
		if (rtest_now_ns() > deadline)
			FAIL("messages seen %#x, consumer_position %" PRIu64
			     ", producer_position %" PRIu64 " (the rescued run left gating R)",
			     seen, st.consumer_position, st.producer_position);
		rtest_sleep_ms(11);
	}
	struct mrb_group_info g;
	CHECK_RC(mrb_worker_groups(&ring, &g, 1), 1);
	CHECK_EQ_U64(g.redelivered, 2); /* by B, then by D */
	CHECK_RC(mrb_close(&w), 0);
	CHECK_RC(mrb_close(&ring), 0);
}

int main(int argc, char **argv)
{
	rtest_watchdog(60);
	const char *only = argc > 1 ? argv[1] : NULL;
	if (only == NULL || strcmp(only, "take") == 0)
		killed_in_take();
	if (only == NULL || strcmp(only, "close") == 0)
		killed_in_close();
	if (only == NULL || strcmp(only, "audit") == 0)
		killed_in_audit();
	if (only == NULL || strcmp(only, "rescue") == 0)
		killed_in_take_of_rescued_slot();
	printf("worker_slot_kill: ok\n");
	return 0;
}
