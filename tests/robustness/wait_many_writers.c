/* SPDX-License-Identifier: MIT */
/*
 * Description: lost wake-up hunt with several blocked writers. Four writer
 * processes push sequence-numbered messages with mrb_write_wait (no
 * timeout) through a ring that holds two of them, so most writes sleep on
 * space_seq, while the consumer blocks in mrb_read_wait (no timeout). Every
 * wake-up of every writer must arrive (a lost one hangs, caught by the
 * watchdog); each writer's messages arrive complete and in order.
 * Usage: wait_many_writers [messages_per_writer]
 */
#include "rtest.h"

#define WRITERS 4
#define MSG_LEN 100

/* A writer that failed will never send the rest: fail now, not at the
 * watchdog. */
static void reap_failed_writers(pid_t *writers)
{
	for (int w = 0; w < WRITERS; w++) {
		int status;
		if (writers[w] > 0 && waitpid(writers[w], &status, WNOHANG) == writers[w]) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				FAIL("writer %d failed (status 0x%x)", w, status);
			writers[w] = -writers[w];
		}
	}
}

int main(int argc, char **argv)
{
	uint64_t per_writer = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000;
	rtest_watchdog(240);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 256);
	pid_t writers[WRITERS];
	for (int w = 0; w < WRITERS; w++) {
		writers[w] = fork();
		CHECK(writers[w] >= 0);
		if (writers[w] == 0) {
			CHECK_RC(mrb_close(&ring), 0);
			struct mrb_ring r;
			CHECK_RC(mrb_open(&r, path, 0), 0);
			uint8_t msg[MSG_LEN];
			for (uint64_t s = 0; s < per_writer; s++) {
				msg[0] = (uint8_t)w;
				memcpy(msg + 1, &s, 8);
				rtest_fill(msg + 9, MSG_LEN - 9, s * WRITERS + (uint64_t)w);
				CHECK_RC(mrb_write_wait(&r, msg, MSG_LEN, -1), 0);
			}
			_exit(0);
		}
	}
	uint64_t next[WRITERS] = {0};
	uint8_t buf[MSG_LEN];
	size_t len;
	for (uint64_t n = 0; n < WRITERS * per_writer; n++) {
		int rc;
		while ((rc = mrb_read_wait(&ring, buf, sizeof(buf), &len, 1000000000)) ==
		       MRB_ETIMEDOUT)
			reap_failed_writers(writers);
		CHECK_RC(rc, 0);
		CHECK_EQ_U64(len, MSG_LEN);
		int w = buf[0];
		CHECK(w < WRITERS);
		uint64_t s;
		memcpy(&s, buf + 1, 8);
		if (s != next[w])
			FAIL("writer %d: got %" PRIu64 ", expected %" PRIu64, w, s, next[w]);
		CHECK(rtest_matches(buf + 9, MSG_LEN - 9, s * WRITERS + (uint64_t)w));
		next[w]++;
	}
	for (int w = 0; w < WRITERS; w++)
		if (writers[w] > 0)
			rtest_expect_exit0(writers[w], "writer");
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
	struct mrb_stats st;
	CHECK_RC(mrb_stats(&ring, &st), 0);
	printf("%" PRIu64 " messages through a 2-record ring; %" PRIu64 " writes found it full\n",
	       st.messages_read, st.full_count);
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
