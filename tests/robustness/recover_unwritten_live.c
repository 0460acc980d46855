/* SPDX-License-Identifier: MIT */
/*
 * Description: a headerless claim whose producer is still alive (merely
 * slow: preempted or stopped between its claim CAS and its header store)
 * is never skipped by default, however long it blocks the consumer:
 * skipping it would let its late writes land in space given to others.
 * Once that producer has died the claim is skipped (~1 s later) and the
 * message behind it arrives; mrb_set_recovery_timeout opts into skipping
 * live writers.
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
		_Atomic uint64_t *tail = ring_u64(&ring, OFF_PRODUCER_POSITION);
		uint64_t position = atomic_load(tail);
		while (!atomic_compare_exchange_weak(tail, &position, position + bytes)) {
		}
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

	pid_t slow = stalled_claimer(path, record_size(100));
	CHECK_RC(mrb_write(&ring, "behind", 6), 0);
	/* Longer than the 1 s headerless-claim timeout: still not skipped. */
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 1500 * 1000000LL), MRB_ETIMEDOUT);
	CHECK_RC(mrb_recover(&ring, -1), 0);
	struct mrb_stats st;
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 0);

	rtest_kill(slow);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
	CHECK(len == 6 && memcmp(buf, "behind", 6) == 0);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 1);

	/* Opting in: a per-handle timeout skips even a live writer's claim. */
	slow = stalled_claimer(path, record_size(100));
	CHECK_RC(mrb_write(&ring, "opt-in", 6), 0);
	CHECK_RC(mrb_set_recovery_timeout(&ring, 100 * 1000000LL), 0);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
	CHECK(len == 6 && memcmp(buf, "opt-in", 6) == 0);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 2);
	rtest_kill(slow);
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
