/* SPDX-License-Identifier: MIT */
/*
 * Description: a producer that dies between claiming space (the CAS on the
 * producer position) and writing its record header leaves a claim with no
 * header. Its announcement in its producer slot's lane names it, and its
 * process is gone: the consumer skips exactly that claim (to its announced
 * end) about 10 ms after it starts blocking, whether or not anything
 * follows it. Several adjacent dead claims are skipped one after another by
 * the same handle, which never reports MRB_ECORRUPT for its own padding
 * (issue 11, item 4: the tail cache is refreshed by recovery). A claimer
 * that died before announcing its claim's end is skipped up to the next
 * record. Committed messages before and after arrive intact, and
 * recovered_records / recovered_bytes count the skips.
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

static void read_seq_raw(struct mrb_ring *ring, const char *text)
{
	uint8_t buf[256];
	size_t len;
	CHECK_RC(mrb_read_wait(ring, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
	CHECK(len == strlen(text) && memcmp(buf, text, len) == 0);
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
	uint8_t buf[256];
	size_t len;

	/* 1. Between two messages: skipped to its end, seen as UNWRITTEN by
	 * inspection until then. */
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
	CHECK_EQ_U64(st.recovered_bytes, record_size(200));

	/* 2. Nothing after it: still skipped (its end is announced), so the
	 * space is released and producers are not held back. */
	claim_without_header(path, &ring, 64);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 300 * 1000000LL), MRB_ETIMEDOUT);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 2);
	CHECK_EQ_U64(st.consumer_position, st.producer_position);

	/* 3. An explicit recover skips it at once. */
	claim_without_header(path, &ring, 64);
	write_seq(&ring, 2);
	CHECK_RC(mrb_recover(&ring, -1), 1);
	read_seq(&ring, 2);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 3);

	/* 4. A run of adjacent dead claims, then committed messages: one
	 * handle reads through all of them. */
	for (int i = 0; i < 3; i++)
		claim_without_header(path, &ring, 16 + 100 * (uint64_t)i);
	for (uint64_t s = 3; s < 8; s++)
		write_seq(&ring, s);
	for (uint64_t s = 3; s < 8; s++)
		read_seq(&ring, s);
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 6);
	CHECK_EQ_U64(st.consumer_position, st.producer_position);

	/* 5. Died after its CAS but before announcing the end: skipped up to
	 * the next record's header. */
	struct mrb_ring claimer;
	CHECK_RC(mrb_open(&claimer, path, 0), 0);
	CHECK_RC(mrb_write(&claimer, "x", 1), 0);
	size_t slot = OFF_PRODUCERS + ring_own_slot(&claimer) * PRODUCER_SLOT_SIZE;
	read_seq_raw(&ring, "x");
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		/* A fresh handle in a process that then dies: announce, CAS. */
		struct mrb_ring p;
		CHECK_RC(mrb_open(&p, path, 0), 0);
		CHECK_RC(mrb_write(&p, "y", 1), 0);
		size_t own = OFF_PRODUCERS + ring_own_slot(&p) * PRODUCER_SLOT_SIZE;
		_Atomic uint64_t *tail = ring_u64(&p, OFF_PRODUCER_POSITION);
		uint64_t position = atomic_load(tail);
		do {
			atomic_store(ring_u64(&p, own + SLOT_LANES), position | 1);
		} while (!atomic_compare_exchange_weak(tail, &position, position + 96));
		_exit(0);
	}
	rtest_expect_exit0(child, "claimer without an end");
	(void)slot;
	read_seq_raw(&ring, "y");
	write_seq(&ring, 8);
	read_seq(&ring, 8);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 7);
	CHECK_EQ_U64(st.recovered_bytes - (record_size(200) + 2 * record_size(64) +
	                                   record_size(16) + record_size(116) + record_size(216)),
	             96);
	CHECK_RC(mrb_close(&claimer), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
