/* SPDX-License-Identifier: MIT */
/*
 * Description: an armed worker's registration across close and fork.
 * 1. A worker process arms and closes its handle (mrb_close) without
 *    waiting: no doorbell stays armed, data_waiters and work_armed are 0.
 * 2. An armed worker forks: the child's inherited handle refuses the
 *    doorbell calls (MRB_EFORKED for mrb_arm_read, mrb_disarm,
 *    mrb_doorbell_fd) and its mrb_close leaves the parent's arming alone
 *    (counts 1, the parent's name still in the word); a write then rings
 *    the parent, which reads exactly that message.
 * 3. An armed worker killed after forking a child that keeps the doorbell
 *    socket open (so the ring's datagram is not refused): the next write
 *    still takes its registration back, exactly once.
 */
#include "wdoor.h"

#include <poll.h>
#include <sys/prctl.h>

static const char *path;

static int arm(struct mrb_ring *w)
{
	int timeout_ms;
	return mrb_arm_read(w, &timeout_ms);
}

static void check_idle(struct mrb_ring *ring, const char *what)
{
	if (armed_slots(ring) != 0 || work_armed(ring, 0) != 0 ||
	    ring_load32(ring, OFF_DATA_WAITERS) != 0)
		FAIL("%s: %u doorbells armed, work_armed %u, data_waiters %u", what,
		     armed_slots(ring), work_armed(ring, 0), ring_load32(ring, OFF_DATA_WAITERS));
}

int main(void)
{
	rtest_watchdog(30);
	path = rtest_path("ring");
	struct mrb_ring ring;
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(&ring, path, 4096, &copts), 0);

	/* 1. Arm, then close. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring w;
		CHECK_RC(mrb_worker_join(&w, path, "jobs", NULL), 0);
		CHECK_RC(arm(&w), 0);
		CHECK_EQ_U64(work_armed(&w, 0), 1);
		CHECK_RC(mrb_close(&w), 0);
		_exit(0);
	}
	rtest_expect_exit0(pid, "arm-close");
	check_idle(&ring, "armed then closed");

	/* 2. Armed, then forked. */
	struct mrb_ring w;
	CHECK_RC(mrb_worker_join(&w, path, "jobs", NULL), 0);
	int fd = mrb_doorbell_fd(&w, MRB_DOORBELL_READ);
	CHECK(fd >= 0);
	CHECK_RC(arm(&w), 0);
	uint64_t name = atomic_load(slot_doorbell(&ring, 0));
	CHECK(name != 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK_RC(arm(&w), MRB_EFORKED);
		CHECK_RC(mrb_disarm(&w, MRB_DOORBELL_READ), MRB_EFORKED);
		CHECK_RC(mrb_doorbell_fd(&w, MRB_DOORBELL_READ), MRB_EFORKED);
		CHECK_RC(mrb_close(&w), 0);
		_exit(0);
	}
	rtest_expect_exit0(pid, "forked child");
	CHECK_EQ_U64(atomic_load(slot_doorbell(&ring, 0)), name);
	CHECK_EQ_U64(work_armed(&ring, 0), 1);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 1);
	uint64_t seq = 42;
	CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
	struct pollfd p = {fd, POLLIN, 0};
	CHECK(poll(&p, 1, 10000) == 1);
	uint64_t got = 0;
	size_t len;
	CHECK_RC(mrb_read(&w, &got, sizeof(got), &len), 0);
	CHECK_EQ_U64(got, 42);
	CHECK_RC(mrb_read(&w, &got, sizeof(got), &len), MRB_EEMPTY);
	check_idle(&ring, "rung after the fork");
	CHECK_RC(mrb_close(&w), 0);

	/* 3. Killed armed, its socket alive in a child. */
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct mrb_ring k;
		CHECK_RC(mrb_worker_join(&k, path, "jobs", NULL), 0);
		CHECK_RC(arm(&k), 0);
		pid_t keeper = fork(); /* holds the bound socket */
		CHECK(keeper >= 0);
		if (keeper == 0) {
			for (;;)
				pause();
		}
		CHECK(write(ready[1], &keeper, sizeof(keeper)) == sizeof(keeper));
		for (;;)
			pause();
	}
	pid_t keeper;
	CHECK(read(ready[0], &keeper, sizeof(keeper)) == sizeof(keeper));
	CHECK_EQ_U64(work_armed(&ring, 0), 1);
	rtest_kill(pid);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 1);
	CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
	check_idle(&ring, "killed armed, socket kept");
	uint32_t data_seq = ring_load32(&ring, OFF_DATA_SEQ);
	for (int i = 0; i < 10; i++)
		CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_SEQ), data_seq);
	kill(keeper, SIGKILL); /* not our child: reaped by init */
	CHECK_RC(mrb_close(&ring), 0);
	printf("worker_doorbell_close_fork: ok\n");
	return 0;
}
