/* SPDX-License-Identifier: MIT */
/*
 * Description: a blocking read returns when a message arrives from another
 * process, returns MRB_ETIMEDOUT when its timeout expires with nothing to
 * read, and polls (timeout 0) without blocking; the message is delivered
 * intact and exactly once. The same for mrb_wait_readable. A signal
 * interrupting a wait without SA_RESTART gives MRB_EINTR.
 */
#include "rtest.h"

static void on_usr1(int sig)
{
	(void)sig;
}

static pid_t write_after(const char *path, long delay_ms, uint64_t seq, size_t len)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring ring;
		CHECK_RC(mrb_open(&ring, path, 0), 0);
		rtest_sleep_ms(delay_ms);
		uint8_t msg[256];
		rtest_fill(msg, len, seq);
		CHECK_RC(mrb_write(&ring, msg, len), 0);
		CHECK_RC(mrb_close(&ring), 0);
		_exit(0);
	}
	return pid;
}

int main(void)
{
	rtest_watchdog(45);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 4096);
	uint8_t buf[256];
	size_t len = 0;

	/* Nothing there: a poll and a short timeout both report a timeout. */
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 0), MRB_ETIMEDOUT);
	CHECK_RC(mrb_wait_readable(&ring, 0), MRB_ETIMEDOUT);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 50 * 1000000LL), MRB_ETIMEDOUT);
	CHECK_RC(mrb_wait_readable(&ring, 50 * 1000000LL), MRB_ETIMEDOUT);

	/* Arrival from another process wakes a reader sleeping in the futex
	 * (the writer waits long past the spin phase). The generous timeout is
	 * a hang bound only. */
	for (int round = 0; round < 5; round++) {
		pid_t writer =
		    write_after(path, 100 + 20 * round, 1000 + (uint64_t)round, 17 + (size_t)round);
		CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
		CHECK_EQ_U64(len, 17 + round);
		CHECK(rtest_matches(buf, len, 1000 + (uint64_t)round));
		CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
		rtest_expect_exit0(writer, "writer");
	}

	/* Waiting forever (-1) also returns on arrival. */
	pid_t writer = write_after(path, 100, 77, 33);
	CHECK_RC(mrb_wait_readable(&ring, -1), 0);
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
	CHECK_EQ_U64(len, 33);
	CHECK(rtest_matches(buf, len, 77));
	rtest_expect_exit0(writer, "writer");

	/* A message already present returns at once, even with timeout 0. */
	rtest_fill(buf, 9, 5);
	CHECK_RC(mrb_write(&ring, buf, 9), 0);
	memset(buf, 0, sizeof(buf));
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 0), 0);
	CHECK_EQ_U64(len, 9);
	CHECK(rtest_matches(buf, len, 5));

	/* A too-small buffer is reported without consuming, blocking or not. */
	CHECK_RC(mrb_write(&ring, buf, 9), 0);
	CHECK_RC(mrb_read_wait(&ring, buf, 4, &len, -1), MRB_EBUFFER_TOO_SMALL);
	CHECK_EQ_U64(len, 9);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, -1), 0);

	/* A signal (handler installed without SA_RESTART) ends the wait. */
	struct sigaction sa = {.sa_handler = on_usr1};
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	pid_t parent = getpid();
	pid_t signaller = fork();
	CHECK(signaller >= 0);
	if (signaller == 0) {
		/* Repeats, in case the first signal lands before the wait. */
		for (;;) {
			rtest_sleep_ms(200);
			kill(parent, SIGUSR1);
		}
	}
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, -1), MRB_EINTR);
	rtest_kill(signaller);

	CHECK_RC(mrb_close(&ring), 0);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, -1), MRB_ECLOSED);
	CHECK_RC(mrb_wait_readable(&ring, 0), MRB_ECLOSED);
	return 0;
}
