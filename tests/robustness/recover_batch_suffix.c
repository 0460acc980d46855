/* SPDX-License-Identifier: MIT */
/*
 * Description: a batch writer killed before its run committed loses a
 * suffix of its batch, never messages in the middle (issue 11, item 2). The
 * state a writer killed inside mrb_write_batch leaves is built exactly, by a
 * child that claims a run of three records as write_run does (announced,
 * first header BUSY, the other two written committed) and dies: the consumer
 * delivers none of the three (the whole claim is padded, to its announced
 * end) and then the messages after it. Format 1 committed such a run last
 * to first, so its recovery padded only the first record and delivered the
 * two after the hole.
 */
#include "ring_bytes.h"
#include "rtest.h"

int main(void)
{
	rtest_watchdog(60);
	const char *path = rtest_path("ring");
	struct mrb_ring consumer;
	rtest_create(&consumer, path, 4096);
	CHECK_RC(mrb_write(&consumer, "before", 6), 0);

	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t writer = fork();
	CHECK(writer >= 0);
	if (writer == 0) {
		struct mrb_ring w;
		CHECK_RC(mrb_open(&w, path, 0), 0);
		struct mrb_reservation res; /* takes the handle's slot */
		CHECK_RC(mrb_reserve(&w, 1, &res), 0);
		CHECK_RC(mrb_abort(&w, &res), 0);
		size_t slot = ring_own_slot(&w);
		uint64_t owner = ring_load64(&w, OFF_PRODUCERS + slot * PRODUCER_SLOT_SIZE);
		uint64_t writer_bits = ((uint64_t)slot << CONTROL_SLOT_SHIFT) |
		                       (((owner >> 32) & CONTROL_GEN_MASK) << CONTROL_GEN_SHIFT);
		uint64_t salt = ring_salt(&w);
		uint64_t at = ring_claim_without_header(&w, 0, 3 * record_size(10));
		for (int i = 0; i < 3; i++) {
			uint64_t pos = at + (uint64_t)i * record_size(10);
			atomic_store(ring_record_control(&w, pos),
			             10 | writer_bits | (i == 0 ? CONTROL_BUSY : 0));
			atomic_store(ring_record_stamp(&w, pos), pos ^ salt);
			memcpy(ring_base(&w) + MRB_HEADER_SIZE + (pos % 4096) + 16, "batch-msg!",
			       10);
		}
		rtest_send(ready[1], 'k');
		for (;;)
			pause();
	}
	CHECK(rtest_recv(ready[0]) == 'k');
	CHECK_RC(mrb_write(&consumer, "after", 5), 0);
	rtest_kill(writer);

	char buf[16];
	size_t len;
	CHECK_RC(mrb_read(&consumer, buf, sizeof(buf), &len), 0);
	CHECK(len == 6 && memcmp(buf, "before", 6) == 0);
	CHECK_RC(mrb_read_wait(&consumer, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
	if (len != 5 || memcmp(buf, "after", 5) != 0)
		FAIL("delivered '%.*s' from the middle of a dead batch", (int)len, buf);
	CHECK_RC(mrb_read(&consumer, buf, sizeof(buf), &len), MRB_EEMPTY);
	struct mrb_stats st;
	CHECK_RC(mrb_stats(&consumer, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 1);
	CHECK_EQ_U64(st.recovered_bytes, 3 * record_size(10));
	CHECK_EQ_U64(st.consumer_position, st.producer_position);
	CHECK_RC(mrb_close(&consumer), 0);
	return 0;
}
