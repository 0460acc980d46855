/* SPDX-License-Identifier: MIT */
/*
 * Description: a writer pays no futex wake-up when nobody waits. The wake
 * path bumps the futex word (data_seq for readers, space_seq for writers)
 * before FUTEX_WAKE and is skipped when the waiter count is zero, so the
 * words must not move over thousands of writes and reads with nobody
 * blocked, and must move when someone is blocked (the positive control
 * shows the observation works). Offsets from docs/FORMAT.md.
 */
#include "ring_bytes.h"
#include "rtest.h"

int main(void)
{
	rtest_watchdog(45);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 4096);
	uint32_t data_seq = ring_load32(&ring, OFF_DATA_SEQ);
	uint32_t space_seq = ring_load32(&ring, OFF_SPACE_SEQ);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 0);
	CHECK_EQ_U64(ring_load32(&ring, OFF_SPACE_WAITERS), 0);

	uint8_t msg[40], buf[64];
	size_t len;
	for (uint64_t i = 0; i < 10000; i++) {
		rtest_fill(msg, sizeof(msg), i);
		CHECK_RC(mrb_write(&ring, msg, sizeof(msg)), 0);
		struct mrb_iovec iov[2] = {{msg, 8}, {msg, 16}};
		CHECK_RC(mrb_write_batch(&ring, iov, 2), 2);
		struct mrb_reservation res;
		CHECK_RC(mrb_reserve(&ring, 8, &res), 0);
		memcpy(res.data, msg, 8);
		CHECK_RC(mrb_commit(&ring, &res), 0);
		for (int k = 0; k < 4; k++)
			CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
	}
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_SEQ), data_seq);
	CHECK_EQ_U64(ring_load32(&ring, OFF_SPACE_SEQ), space_seq);

	/* Positive control: a reader asleep in another process makes the next
	 * write bump data_seq (and wake it). */
	CHECK_RC(mrb_close(&ring), 0);
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		struct mrb_ring r;
		CHECK_RC(mrb_open(&r, path, 0), 0);
		CHECK_RC(mrb_read_wait(&r, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
		CHECK_EQ_U64(len, 5);
		_exit(0);
	}
	CHECK_RC(mrb_open(&ring, path, 0), 0);
	while (ring_load32(&ring, OFF_DATA_WAITERS) == 0)
		rtest_sleep_ms(1);
	CHECK_RC(mrb_write(&ring, "hello", 5), 0);
	rtest_expect_exit0(child, "blocked reader");
	CHECK(ring_load32(&ring, OFF_DATA_SEQ) != data_seq);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
