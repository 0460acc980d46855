/* SPDX-License-Identifier: MIT */
/*
 * Description: a process SIGKILLed while asleep in a blocking wait must not
 * leave writers paying a futex wake-up forever. A consumer killed inside
 * mrb_read_wait leaves its increment of data_waiters behind; once a new
 * consumer has taken over (the only process allowed to wait for data), a
 * write with nobody asleep must not bump data_seq (the wake path) again.
 * Likewise a producer killed inside mrb_write_wait leaves space_waiters
 * raised; after its slot is reclaimed or the ring drains, releasing space
 * with no writer asleep must not bump space_seq forever.
 */
#include "ring_bytes.h"
#include "rtest.h"

static pid_t sleeper(const char *path, int consumer)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring r;
		CHECK_RC(mrb_open(&r, path, 0), 0);
		uint8_t buf[256];
		size_t len;
		if (consumer)
			mrb_read_wait(&r, buf, sizeof(buf), &len, -1);
		else
			mrb_write_wait(&r, buf, 100, -1);
		_exit(1);
	}
	return pid;
}

int main(void)
{
	rtest_watchdog(45);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 256);
	CHECK_RC(mrb_close(&ring), 0);

	/* A consumer dies asleep. */
	pid_t c = sleeper(path, 1);
	CHECK_RC(mrb_open(&ring, path, 0), 0);
	while (ring_load32(&ring, OFF_DATA_WAITERS) == 0)
		rtest_sleep_ms(1);
	rtest_kill(c);
	uint8_t buf[256];
	size_t len;
	/* The new consumer takes over; then nobody waits for data. */
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
	uint32_t data_seq = ring_load32(&ring, OFF_DATA_SEQ);
	for (int i = 0; i < 10; i++) {
		CHECK_RC(mrb_write(&ring, "x", 1), 0);
		CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
	}
	int failed = 0;
	if (ring_load32(&ring, OFF_DATA_SEQ) != data_seq) {
		fprintf(stderr, "FAIL: writers still wake a dead consumer: data_waiters = %u\n",
		        ring_load32(&ring, OFF_DATA_WAITERS));
		failed = 1;
	}

	/* A producer dies asleep on a full ring. */
	int queued = 0;
	while (mrb_write(&ring, buf, 100) == 0)
		queued++;
	CHECK(queued > 0);
	pid_t p = sleeper(path, 0);
	while (ring_load32(&ring, OFF_SPACE_WAITERS) == 0)
		rtest_sleep_ms(1);
	rtest_kill(p);
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
	uint32_t space_seq = ring_load32(&ring, OFF_SPACE_SEQ);
	for (int i = 0; i < 10; i++) {
		CHECK_RC(mrb_write(&ring, "x", 1), 0);
		CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
	}
	if (ring_load32(&ring, OFF_SPACE_SEQ) != space_seq) {
		fprintf(stderr,
		        "FAIL: the consumer still wakes a dead writer: space_waiters = %u\n",
		        ring_load32(&ring, OFF_SPACE_WAITERS));
		failed = 1;
	}
	CHECK_RC(mrb_close(&ring), 0);
	return failed;
}
