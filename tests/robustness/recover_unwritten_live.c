/* SPDX-License-Identifier: MIT */
/*
 * Description: a live writer stalled between its claim (CAS) and its header
 * store, as a SIGSTOP, a debugger or a long preemption leaves it, is never
 * skipped by default: not after the old 1 s timeout, not by
 * mrb_recover(ring, -1), and not because some other producer process once
 * died (issue 11, item 1: the claim is attributed to its writer through the
 * lane it announced). Once it is killed, its claim is skipped promptly. With
 * the opt-in hung-writer timeout it is skipped while alive, but its space is
 * held (consumer_position stays at the claim) until the writer is gone.
 */
#include "ring_bytes.h"
#include "rtest.h"

/* A producer that registers, claims `bytes` without a header, reports,
 * and then stays alive until killed. */
static pid_t stalled_claimer(const char *path, uint64_t bytes)
{
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring ring;
		CHECK_RC(mrb_open(&ring, path, 0), 0);
		struct mrb_reservation res;
		CHECK_RC(mrb_reserve(&ring, 1, &res), 0);
		CHECK_RC(mrb_abort(&ring, &res), 0);
		ring_claim_without_header(&ring, 0, bytes);
		rtest_send(ready[1], 'c');
		for (;;)
			pause();
	}
	CHECK(rtest_recv(ready[0]) == 'c');
	close(ready[0]);
	close(ready[1]);
	return pid;
}

int main(void)
{
	rtest_watchdog(60);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 4096);
	uint8_t buf[64];
	size_t len;
	struct mrb_stats st;

	/* Some producer process has exited (normally): v1 then skipped any
	 * header-less claim after 1 s. */
	pid_t early = fork();
	CHECK(early >= 0);
	if (early == 0) {
		struct mrb_ring p;
		CHECK_RC(mrb_open(&p, path, 0), 0);
		CHECK_RC(mrb_write(&p, "early", 5), 0);
		_exit(mrb_close(&p) == 0 ? 0 : 1);
	}
	rtest_expect_exit0(early, "early producer");
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);

	pid_t slow = stalled_claimer(path, record_size(100));
	CHECK(kill(slow, SIGSTOP) == 0);
	CHECK_RC(mrb_write(&ring, "behind", 6), 0);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 1500 * 1000000LL), MRB_ETIMEDOUT);
	CHECK_RC(mrb_recover(&ring, -1), 0);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 0);

	rtest_kill(slow);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
	CHECK(len == 6 && memcmp(buf, "behind", 6) == 0);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 1);
	CHECK_EQ_U64(st.recovered_bytes, record_size(100));

	/* Opting in: a per-handle timeout skips even a live writer's claim,
	 * but keeps its space until the writer is gone. */
	slow = stalled_claimer(path, record_size(100));
	CHECK_RC(mrb_stats(&ring, &st), 0);
	uint64_t claim_at = st.producer_position - record_size(100);
	CHECK_RC(mrb_write(&ring, "opt-in", 6), 0);
	CHECK_RC(mrb_set_recovery_timeout(&ring, 100 * 1000000LL), 0);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
	CHECK(len == 6 && memcmp(buf, "opt-in", 6) == 0);
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.skipped_live, 1);
	CHECK_EQ_U64(st.consumer_position, claim_at);
	rtest_kill(slow);
	for (int i = 0; i < 3000 && st.consumer_position != st.producer_position; i++) {
		CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
		rtest_sleep_ms(1);
		CHECK_RC(mrb_stats(&ring, &st), 0);
	}
	CHECK_EQ_U64(st.consumer_position, st.producer_position);
	CHECK_EQ_U64(st.recovered_records, 2);
	CHECK_EQ_U64(st.delivered_late, 0);
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
