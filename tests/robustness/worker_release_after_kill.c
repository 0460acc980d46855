/* SPDX-License-Identifier: MIT */
/*
 * Description: a worker killed between its release (the CAS that clears
 * its announcement) and the move of the release position R that follows
 * it. worker_doorbell_storm found R left behind this way after a kill
 * storm (the claim position at the producers, no worker holding anything,
 * R ~14 KiB behind, and it stayed there while the ring was idle): only the
 * release of the run R stands at moves R, and that worker was gone. The
 * state is made here as the kill leaves it: a worker process holds the
 * first run, its announcement word is cleared as its release would, and
 * it is killed. The group's other (idle) workers must move R up to the
 * claim position by themselves (their audit), without a producer having
 * to run short of space first: mrb_stats then reports the messages as
 * released.
 */
#include "wdoor.h"

#define WSLOT_INFLIGHT 0x28

int main(void)
{
	rtest_watchdog(30);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(&ring, path, 4096, &copts), 0);
	int took[2];
	CHECK(pipe(took) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring w;
		CHECK_RC(mrb_worker_join(&w, path, "jobs", NULL), 0);
		rtest_send(took[1], 'j');
		uint64_t got;
		size_t len;
		while (mrb_read(&w, &got, sizeof(got), &len) != 0)
			rtest_sleep_ms(1);
		rtest_send(took[1], 't');
		for (;;)
			pause();
	}
	CHECK(rtest_recv(took[0]) == 'j');
	for (uint64_t seq = 0; seq < 10; seq++)
		CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
	CHECK(rtest_recv(took[0]) == 't');
	/* Its release's CAS, then the kill. */
	_Atomic uint64_t *inflight = ring_u64(&ring, OFF_WORKER_SLOTS + WSLOT_INFLIGHT);
	CHECK_EQ_U64(atomic_load(inflight), 0 | 2); /* holding from 0 */
	atomic_store(inflight, 0);
	rtest_kill(pid);

	/* Another worker takes and releases the other nine. */
	struct mrb_ring w;
	CHECK_RC(mrb_worker_join(&w, path, "jobs", NULL), 0);
	uint64_t got;
	size_t len;
	for (uint64_t seq = 1; seq < 10; seq++) {
		CHECK_RC(mrb_read(&w, &got, sizeof(got), &len), 0);
		CHECK_EQ_U64(got, seq);
	}
	struct mrb_stats st;
	int64_t deadline = rtest_now_ns() + 5 * 1000000000LL;
	for (;;) {
		int rc = mrb_read(&w, &got, sizeof(got), &len);
		CHECK_RC(rc, MRB_EEMPTY);
		CHECK_RC(mrb_stats(&ring, &st), 0);
		if (st.consumer_position == st.producer_position)
			break;
		if (rtest_now_ns() > deadline)
			FAIL("R left behind: consumer_position %" PRIu64
			     ", producer_position %" PRIu64,
			     st.consumer_position, st.producer_position);
		rtest_sleep_ms(11); /* an audit at most every 10 ms */
	}
	CHECK_EQ_U64(st.producer_position, 10 * 32);
	CHECK_RC(mrb_close(&w), 0);
	CHECK_RC(mrb_close(&ring), 0);
	printf("worker_release_after_kill: ok\n");
	return 0;
}
