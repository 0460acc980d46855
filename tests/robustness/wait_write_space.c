/* SPDX-License-Identifier: MIT */
/*
 * Description: a writer blocked on a full ring (mrb_write_wait,
 * mrb_wait_writable) returns as soon as a consumer in another process frees
 * space, its message then arrives intact after the ones before it; with no
 * consumer, the write times out with MRB_ETIMEDOUT and writes nothing.
 */
#include "rtest.h"

#define MSG_LEN 100

int main(void)
{
	rtest_watchdog(45);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 1024);
	uint8_t msg[MSG_LEN];
	uint64_t seq = 0;
	for (;;) {
		rtest_fill(msg, MSG_LEN, seq);
		int rc = mrb_write(&ring, msg, MSG_LEN);
		if (rc == MRB_EFULL)
			break;
		CHECK_RC(rc, 0);
		seq++;
	}
	uint64_t queued = seq;
	CHECK(queued >= 2);

	/* Nobody reads: polling and a short wait both time out, nothing
	 * written. */
	struct mrb_stats before, after;
	CHECK_RC(mrb_stats(&ring, &before), 0);
	CHECK_RC(mrb_write_wait(&ring, msg, MSG_LEN, 0), MRB_ETIMEDOUT);
	CHECK_RC(mrb_write_wait(&ring, msg, MSG_LEN, 50 * 1000000LL), MRB_ETIMEDOUT);
	CHECK_RC(mrb_wait_writable(&ring, MSG_LEN, 50 * 1000000LL), MRB_ETIMEDOUT);
	CHECK_RC(mrb_stats(&ring, &after), 0);
	CHECK_EQ_U64(after.producer_position, before.producer_position);
	CHECK_RC(mrb_wait_writable(&ring, 0, 0), MRB_EMSGSIZE);

	/* A consumer process frees space after a delay; the blocked writer
	 * (this process) must return then. Timeout = hang bound only. */
	int to_child[2];
	CHECK(pipe(to_child) == 0);
	pid_t consumer = fork();
	CHECK(consumer >= 0);
	if (consumer == 0) {
		struct mrb_ring c;
		CHECK_RC(mrb_open(&c, path, 0), 0);
		uint8_t buf[MSG_LEN];
		size_t len;
		for (uint64_t round = 0; round < 3; round++) {
			CHECK(rtest_recv(to_child[0]) == 'g');
			rtest_sleep_ms(150);
			CHECK_RC(mrb_read(&c, buf, sizeof(buf), &len), 0);
			CHECK_EQ_U64(len, MSG_LEN);
			CHECK(rtest_matches(buf, len, round));
		}
		CHECK_RC(mrb_close(&c), 0);
		_exit(0);
	}
	for (uint64_t round = 0; round < 3; round++) {
		rtest_send(to_child[1], 'g');
		rtest_fill(msg, MSG_LEN, seq);
		if (round == 1) {
			CHECK_RC(mrb_wait_writable(&ring, MSG_LEN, 30LL * 1000000000), 0);
			CHECK_RC(mrb_write(&ring, msg, MSG_LEN), 0);
		} else {
			CHECK_RC(mrb_write_wait(&ring, msg, MSG_LEN,
			                        round == 0 ? -1 : 30LL * 1000000000),
			         0);
		}
		seq++;
	}
	rtest_expect_exit0(consumer, "consumer");

	/* Everything arrives, in order, exactly once. */
	uint8_t buf[MSG_LEN];
	size_t len;
	for (uint64_t s = 3; s < seq; s++) {
		CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
		CHECK_EQ_U64(len, MSG_LEN);
		if (!rtest_matches(buf, len, s))
			FAIL("message %" PRIu64 " corrupt or out of order", s);
	}
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
