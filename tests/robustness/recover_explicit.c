/* SPDX-License-Identifier: MIT */
/*
 * Description: explicit recovery and the hung-writer timeout. A BUSY record
 * of a live (stopped) writer is left alone by mrb_recover(ring, -1) and by
 * the read path's liveness check; mrb_recover with a grace period, or a read
 * after mrb_set_recovery_timeout, skips it even though the writer lives:
 * the messages behind it are delivered, but its space stays unreleased
 * (consumer_position stays at the skipped record, so the writer's late
 * stores can land nowhere else), and when the writer commits after all its
 * message is delivered late, not lost (skipped_live, delivered_late). A dead
 * writer's record goes with mrb_recover(ring, -1). Recovery on an empty or
 * healthy ring does nothing.
 */
#include "ring_bytes.h"
#include "rtest.h"

#define MSG_LEN 32

/* A child that reserves a record, reports, then waits for 'c' to commit it
 * and reports the commit's result as one byte (0 = ok, 1 = MRB_ESTALE). */
static pid_t hung_writer(const char *path, int to_child[2], int from_child[2])
{
	CHECK(pipe(to_child) == 0 && pipe(from_child) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring p;
		CHECK_RC(mrb_open(&p, path, 0), 0);
		struct mrb_reservation res;
		CHECK_RC(mrb_reserve(&p, 100, &res), 0);
		memset(res.data, 0xEE, 100);
		rtest_send(from_child[1], 'r');
		CHECK(rtest_recv(to_child[0]) == 'c');
		int rc = mrb_commit(&p, &res);
		rtest_send(from_child[1], rc == 0 ? 0 : rc == MRB_ESTALE ? 1 : 2);
		_exit(0);
	}
	CHECK(rtest_recv(from_child[0]) == 'r');
	return pid;
}

static void write_seq(struct mrb_ring *ring, uint64_t seq)
{
	uint8_t msg[MSG_LEN];
	rtest_fill(msg, MSG_LEN, seq);
	CHECK_RC(mrb_write(ring, msg, MSG_LEN), 0);
}

static void read_seq(struct mrb_ring *ring, uint64_t seq)
{
	uint8_t buf[256];
	size_t len;
	CHECK_RC(mrb_read_wait(ring, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
	CHECK_EQ_U64(len, MSG_LEN);
	if (!rtest_matches(buf, len, seq))
		FAIL("message %" PRIu64 " corrupt or out of order", seq);
}

int main(void)
{
	rtest_watchdog(90);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 4096);
	struct mrb_stats st;
	uint8_t buf[256];
	size_t len;

	CHECK_RC(mrb_recover(&ring, -1), 0);
	CHECK_RC(mrb_recover(&ring, 0), 0);
	write_seq(&ring, 0);
	CHECK_RC(mrb_recover(&ring, 0), 0);
	read_seq(&ring, 0);

	/* A live writer: liveness alone never skips it. */
	int to_child[2], from_child[2];
	pid_t writer = hung_writer(path, to_child, from_child);
	write_seq(&ring, 1);
	CHECK_RC(mrb_recover(&ring, -1), 0);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 100 * 1000000LL), MRB_ETIMEDOUT);
	/* With a grace period it is skipped although the writer lives. */
	CHECK_RC(mrb_stats(&ring, &st), 0);
	uint64_t held_at = st.consumer_position;
	CHECK_RC(mrb_recover(&ring, 20 * 1000000LL), 1);
	read_seq(&ring, 1);
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.consumer_position, held_at); /* space not released */
	CHECK_EQ_U64(st.skipped_live, 1);
	rtest_send(to_child[1], 'c');
	CHECK_RC(rtest_recv(from_child[0]), 0); /* the late commit succeeds */
	rtest_expect_exit0(writer, "hung writer");
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
	CHECK_EQ_U64(len, 100); /* ... and its message arrives late */
	for (size_t i = 0; i < len; i++)
		CHECK(buf[i] == 0xEE);
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 0);
	CHECK_EQ_U64(st.delivered_late, 1);
	CHECK_EQ_U64(st.consumer_position, st.producer_position);

	/* The same through the read path with a per-handle timeout. */
	CHECK_RC(mrb_set_recovery_timeout(&ring, 50 * 1000000LL), 0);
	writer = hung_writer(path, to_child, from_child);
	write_seq(&ring, 2);
	read_seq(&ring, 2);
	rtest_send(to_child[1], 'c');
	CHECK_RC(rtest_recv(from_child[0]), 0);
	rtest_expect_exit0(writer, "hung writer");
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
	CHECK_EQ_U64(len, 100);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.skipped_live, 2);
	CHECK_EQ_U64(st.delivered_late, 2);
	CHECK_RC(mrb_set_recovery_timeout(&ring, 0), 0);

	/* A writer that commits before anyone recovers keeps its message. */
	writer = hung_writer(path, to_child, from_child);
	rtest_send(to_child[1], 'c');
	CHECK_RC(rtest_recv(from_child[0]), 0);
	rtest_expect_exit0(writer, "writer");
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
	CHECK_EQ_U64(len, 100);
	for (size_t i = 0; i < len; i++)
		CHECK(buf[i] == 0xEE);

	/* A dead writer: mrb_recover(ring, -1) alone suffices. */
	writer = hung_writer(path, to_child, from_child);
	write_seq(&ring, 3);
	rtest_kill(writer);
	CHECK_RC(mrb_recover(&ring, -1), 1);
	CHECK_RC(mrb_recover(&ring, -1), 0);
	read_seq(&ring, 3);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 1);
	CHECK_EQ_U64(st.recovered_bytes, 100);
	CHECK_EQ_U64(st.consumer_position, st.producer_position);

	/* Recovery is a consumer call: another live consumer blocks it. */
	struct mrb_ring other;
	CHECK_RC(mrb_open(&other, path, 0), 0);
	CHECK_RC(mrb_recover(&other, 0), MRB_ECONSUMER_BUSY);
	CHECK_RC(mrb_close(&other), 0);
	CHECK_RC(mrb_close(&ring), 0);
	CHECK_RC(mrb_recover(&ring, 0), MRB_ECLOSED);
	return 0;
}
