/* SPDX-License-Identifier: MIT */
/*
 * Description: a producer that dies between claiming space (the CAS on the
 * producer position) and writing its record header leaves a gap with no
 * header at all, so neither its length nor its pid is known. Simulated by
 * a producer process that advances the producer position in the mapping
 * without writing a header, then exits. The
 * consumer must skip the gap up to the next valid record after the
 * unwritten-claim timeout (read path, ~1 s, once a producer process is
 * known to have died) or at once with mrb_recover(ring, 0); with no valid
 * record after the gap nothing committed is held back and nothing is
 * skipped. Committed messages before and after arrive intact,
 * recovered_records counts the skips.
 */
#include "ring_bytes.h"
#include "rtest.h"

#define MSG_LEN 40

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

/* What a producer killed right after its claim CAS leaves behind: a claim
 * of a `length`-byte record with no header, by a process that is gone.
 * Returns the claim's position. */
static uint64_t claim_without_header(const char *path, struct mrb_ring *ring, uint64_t length)
{
	struct dead_claimer c = dead_claimer_start(path);
	uint64_t position = ring_load64(ring, OFF_PRODUCER_POSITION);
	dead_claim(&c, record_size(length));
	return position;
}

struct first_state {
	uint32_t state;
	uint64_t position;
};

/* Finds the first record that is not padding. */
static int first_record(void *ctx, const struct mrb_record_info *rec)
{
	struct first_state *f = ctx;
	if (rec->state == MRB_RECORD_PADDING)
		return 0;
	f->state = rec->state;
	f->position = rec->position;
	return 1;
}

int main(void)
{
	rtest_watchdog(90);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 4096);
	struct mrb_stats st;

	/* 1. Read path: skipped after the timeout, up to the next record. */
	write_seq(&ring, 0);
	uint64_t gap_at = claim_without_header(path, &ring, 200);
	write_seq(&ring, 1);
	read_seq(&ring, 0);
	struct first_state f = {0};
	CHECK(mrb_inspect(&ring, first_record, &f, 0) >= 1);
	CHECK_EQ_U64(f.state, MRB_RECORD_UNWRITTEN);
	CHECK_EQ_U64(f.position, gap_at);
	read_seq(&ring, 1);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 1);
	/* A headerless claim has no known payload length: the span skipped is
	 * the claimed record, counted with or without its header (FORMAT.md
	 * says "payload bytes"; the span is what recovery can know). */
	CHECK(st.recovered_bytes == record_size(200) ||
	      st.recovered_bytes == record_size(200) - MRB_RECORD_HEADER_SIZE);
	uint64_t first_skip = st.recovered_bytes;

	/* 2. Nothing valid after the gap: nothing to skip to, nothing held
	 * back; mrb_recover reports 0 and the read stays empty. */
	claim_without_header(path, &ring, 64);
	uint8_t buf[256];
	size_t len;
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
	CHECK_RC(mrb_recover(&ring, 0), 0);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 1200 * 1000000LL), MRB_ETIMEDOUT);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 1);

	/* 3. Once a record follows, an explicit recover with no grace period
	 * skips the gap at once. */
	write_seq(&ring, 2);
	CHECK_RC(mrb_recover(&ring, 0), 1);
	read_seq(&ring, 2);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 2);
	CHECK_EQ_U64(st.recovered_bytes - first_skip,
	             record_size(64) - (record_size(200) - first_skip));

	/* 4. A run of several unwritten claims, then committed messages. */
	for (int i = 0; i < 3; i++)
		claim_without_header(path, &ring, 16 + 100 * (uint64_t)i);
	for (uint64_t s = 3; s < 8; s++)
		write_seq(&ring, s);
	for (uint64_t s = 3; s < 8; s++)
		read_seq(&ring, s);
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK(st.recovered_records >= 3);
	CHECK_EQ_U64(st.consumer_position, st.producer_position);
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
