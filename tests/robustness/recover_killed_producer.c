/* SPDX-License-Identifier: MIT */
/*
 * Description: a producer process SIGKILLed after reserving space, in the
 * middle of filling it, or with the payload complete but not committed,
 * leaves a BUSY record that blocks the consumer (later committed messages
 * wait behind it, order is kept). Once the writer is dead (and reaped) the
 * read path skips it, mrb_stats counts it in recovered_records/bytes, every
 * committed message arrives intact and in order, and the partial message is
 * never delivered. Each stage is drained with a different read API.
 */
#include "ring_bytes.h"
#include "rtest.h"

#define ABANDONED_LEN 300
#define MSG_LEN       48

enum stage { AFTER_RESERVE, MID_COPY, BEFORE_COMMIT, STAGES };
static const char *const stage_names[] = {"after reserve", "mid-copy", "before commit"};

static void write_seq(struct mrb_ring *ring, uint64_t seq)
{
	uint8_t msg[MSG_LEN];
	rtest_fill(msg, MSG_LEN, seq);
	CHECK_RC(mrb_write(ring, msg, MSG_LEN), 0);
}

struct drain {
	uint64_t next_seq;
	uint64_t end_seq;
};

static void expect(struct drain *d, const void *data, size_t len)
{
	if (len != MSG_LEN)
		FAIL("delivered a %zu-byte message: the abandoned one or a torn one", len);
	if (!rtest_matches(data, len, d->next_seq))
		FAIL("message %" PRIu64 " corrupt or out of order", d->next_seq);
	d->next_seq++;
}

static int on_message(void *ctx, const void *data, size_t len)
{
	expect(ctx, data, len);
	return 0;
}

/* Reads until end_seq with the API chosen by `api`, waiting (with a hang
 * bound) whenever the ring looks empty: recovery runs inside the reads. */
static void drain_all(struct mrb_ring *ring, struct drain *d, int api)
{
	int64_t give_up = rtest_now_ns() + 30LL * 1000000000;
	while (d->next_seq < d->end_seq) {
		CHECK(rtest_now_ns() < give_up);
		uint8_t buf[4 * MSG_LEN + 512];
		size_t len, lengths[4];
		int64_t rc;
		switch (api) {
		case 0:
			rc = mrb_read(ring, buf, sizeof(buf), &len);
			if (rc == 0)
				expect(d, buf, len);
			break;
		case 1: {
			struct mrb_view view;
			rc = mrb_peek(ring, &view);
			if (rc == 0) {
				expect(d, view.data, view.len);
				CHECK_RC(mrb_release(ring, &view), 0);
			}
			break;
		}
		case 2:
			rc = mrb_read_batch(ring, on_message, d, 0);
			break;
		default:
			rc = mrb_read_many(ring, buf, sizeof(buf), lengths, 4);
			for (int64_t i = 0, off = 0; i < rc; off += (int64_t)lengths[i], i++)
				expect(d, buf + off, lengths[i]);
			break;
		}
		if (rc == MRB_EEMPTY) {
			rc = mrb_wait_readable(ring, 100 * 1000000LL);
			if (rc != 0 && rc != MRB_ETIMEDOUT)
				FAIL("wait: %s", mrb_strerror((int)rc));
		} else if (rc < 0)
			FAIL("read API %d: %s", api, mrb_strerror((int)rc));
	}
}

int main(void)
{
	rtest_watchdog(90);
	const char *path = rtest_path("ring");
	for (int stage = 0; stage < STAGES; stage++) {
		struct mrb_ring ring;
		rtest_create(&ring, path, 4096);
		for (uint64_t s = 0; s < 3; s++)
			write_seq(&ring, s);
		int ready[2];
		CHECK(pipe(ready) == 0);
		pid_t producer = fork();
		CHECK(producer >= 0);
		if (producer == 0) {
			struct mrb_ring p;
			CHECK_RC(mrb_open(&p, path, 0), 0);
			write_seq(&p, 3);
			struct mrb_reservation res;
			CHECK_RC(mrb_reserve(&p, ABANDONED_LEN, &res), 0);
			if (stage == MID_COPY)
				memset(res.data, 0xAB, ABANDONED_LEN / 2);
			else if (stage == BEFORE_COMMIT)
				memset(res.data, 0xAB, ABANDONED_LEN);
			rtest_send(ready[1], 'r');
			for (;;)
				pause();
		}
		CHECK(rtest_recv(ready[0]) == 'r');
		/* Committed after the reservation: these wait behind it. */
		for (uint64_t s = 4; s < 7; s++)
			write_seq(&ring, s);

		struct drain d = {.next_seq = 0, .end_seq = 4};
		drain_all(&ring, &d, stage);
		/* The live writer's BUSY record blocks the rest. */
		uint8_t buf[512];
		size_t len;
		CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
		CHECK_RC(mrb_recover(&ring, -1), 0);
		struct mrb_stats st;
		CHECK_RC(mrb_stats(&ring, &st), 0);
		CHECK_EQ_U64(st.recovered_records, 0);

		rtest_kill(producer);
		d.end_seq = 7;
		drain_all(&ring, &d, (stage + 1) % 4);
		CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
		CHECK_RC(mrb_stats(&ring, &st), 0);
		if (st.recovered_records != 1 || st.recovered_bytes != ABANDONED_LEN)
			FAIL("%s: recovered %" PRIu64 " records / %" PRIu64
			     " bytes, expected 1 / %d",
			     stage_names[stage], st.recovered_records, st.recovered_bytes,
			     ABANDONED_LEN);
		CHECK_EQ_U64(st.messages_read, 7);
		CHECK_EQ_U64(st.consumer_position, st.producer_position);
		close(ready[0]);
		close(ready[1]);
		CHECK_RC(mrb_close(&ring), 0);
	}
	return 0;
}
