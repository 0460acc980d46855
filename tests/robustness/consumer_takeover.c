/* SPDX-License-Identifier: MIT */
/*
 * Description: a consumer process killed mid-read. While it lives, another
 * handle gets MRB_ECONSUMER_BUSY (stats name it alive); once it is dead (and
 * reaped) the next consumer takes the role over and resumes at the last
 * released position: messages consumed by mrb_read are not redelivered, a
 * peeked-but-unreleased message is, and so is every message of a
 * mrb_read_batch that was cut short (at-least-once for the batch).
 */
#include "rtest.h"

#define MSG_LEN 24

enum how { BY_READ, BY_PEEK, BY_BATCH };

struct killed_batch {
	int signal_fd;
	int seen;
};

static int stall_in_handler(void *ctx, const void *data, size_t len)
{
	struct killed_batch *b = ctx;
	(void)data;
	(void)len;
	if (++b->seen == 3) {
		rtest_send(b->signal_fd, 'k');
		for (;;)
			pause();
	}
	return 0;
}

/* Consumes 3 messages with mrb_read, then stalls in the way `how` says
 * (after a mrb_read_many of 2, holding a peeked message, or inside a
 * mrb_read_batch handler at its third message) until killed. */
static pid_t doomed_consumer(const char *path, enum how how, int ready[2])
{
	CHECK(pipe(ready) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid != 0)
		return pid;
	struct mrb_ring c;
	CHECK_RC(mrb_open(&c, path, 0), 0);
	uint8_t buf[64];
	size_t len;
	for (int i = 0; i < 3; i++)
		CHECK_RC(mrb_read(&c, buf, sizeof(buf), &len), 0);
	if (how == BY_PEEK) {
		struct mrb_view view;
		CHECK_RC(mrb_peek(&c, &view), 0);
		rtest_send(ready[1], 'k');
	} else if (how == BY_BATCH) {
		struct killed_batch b = {.signal_fd = ready[1]};
		mrb_read_batch(&c, stall_in_handler, &b, 0);
	} else {
		/* Published before return: 3 and 4 are gone for good. */
		size_t lengths[2];
		CHECK_RC(mrb_read_many(&c, buf, sizeof(buf), lengths, 2), 2);
		rtest_send(ready[1], 'k');
	}
	for (;;)
		pause();
}

int main(void)
{
	rtest_watchdog(60);
	const char *path = rtest_path("ring");
	/* Where the next consumer resumes: after what mrb_read / mrb_read_many
	 * consumed; at the unreleased peek; at the start of the cut batch. */
	const uint64_t expected_first[] = {[BY_READ] = 5, [BY_PEEK] = 3, [BY_BATCH] = 3};
	for (int how = BY_READ; how <= BY_BATCH; how++) {
		struct mrb_ring ring;
		rtest_create(&ring, path, 4096);
		uint8_t msg[MSG_LEN];
		for (uint64_t s = 0; s < 10; s++) {
			rtest_fill(msg, MSG_LEN, s);
			CHECK_RC(mrb_write(&ring, msg, MSG_LEN), 0);
		}
		int ready[2];
		pid_t consumer = doomed_consumer(path, (enum how)how, ready);
		CHECK(rtest_recv(ready[0]) == 'k');

		uint8_t buf[64];
		size_t len;
		struct mrb_view view;
		CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_ECONSUMER_BUSY);
		CHECK_RC(mrb_peek(&ring, &view), MRB_ECONSUMER_BUSY);
		CHECK_RC(mrb_wait_readable(&ring, 0), MRB_ECONSUMER_BUSY);
		struct mrb_stats st;
		CHECK_RC(mrb_stats(&ring, &st), 0);
		CHECK_EQ_U64(st.consumer_pid, consumer);
		CHECK_EQ_U64(st.consumer_alive, 1);

		rtest_kill(consumer);
		CHECK_RC(mrb_stats(&ring, &st), 0);
		CHECK_EQ_U64(st.consumer_alive, 0);
		/* The first read takes over and resumes at the released position. */
		for (uint64_t s = expected_first[how]; s < 10; s++) {
			CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
			CHECK_EQ_U64(len, MSG_LEN);
			if (!rtest_matches(buf, len, s))
				FAIL("mode %d: expected message %" PRIu64 " after takeover", how,
				     s);
		}
		CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
		CHECK_RC(mrb_stats(&ring, &st), 0);
		CHECK_EQ_U64(st.consumer_pid, getpid());
		CHECK_EQ_U64(st.consumer_alive, 1);
		close(ready[0]);
		close(ready[1]);
		CHECK_RC(mrb_close(&ring), 0);
		CHECK_RC(mrb_stats(&ring, &st), MRB_ECLOSED);
	}

	/* A cleanly closed consumer hands over at once, nothing redelivered. */
	struct mrb_ring a, b;
	rtest_create(&a, path, 4096);
	CHECK_RC(mrb_write(&a, "one", 3), 0);
	CHECK_RC(mrb_write(&a, "two", 3), 0);
	uint8_t buf[8];
	size_t len;
	CHECK_RC(mrb_read(&a, buf, sizeof(buf), &len), 0);
	CHECK_RC(mrb_open(&b, path, 0), 0);
	CHECK_RC(mrb_read(&b, buf, sizeof(buf), &len), MRB_ECONSUMER_BUSY);
	CHECK_RC(mrb_close(&a), 0);
	CHECK_RC(mrb_read(&b, buf, sizeof(buf), &len), 0);
	CHECK(len == 3 && memcmp(buf, "two", 3) == 0);
	CHECK_RC(mrb_close(&b), 0);
	return 0;
}
