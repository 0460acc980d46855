/* SPDX-License-Identifier: MIT */
/*
 * Description: a record header names its writer by slot and only 14 bits of
 * the slot's generation, while a slot's generation advances at every take
 * (an adversarial reproducer, issue 11). A handle that closes with an open
 * reservation leaves a BUSY record naming (slot, g). If 2^14 short-lived
 * producers (open, write, close, while the consumer is down) could take
 * that slot again, its owner at g + 2^14 would pass for the record's writer
 * and block the consumer for as long as it lives. A released slot is taken
 * again only once the consumer has passed where its last owner's claims
 * end (released_at, FORMAT.md section 7): the producers use other slots,
 * and the abandoned reservation is padded when the consumer returns.
 */
#include "ring_bytes.h"
#include "rtest.h"

int main(void)
{
	rtest_watchdog(120);
	const char *path = rtest_path("ring");
	struct mrb_ring consumer;
	rtest_create(&consumer, path, 1 << 20);

	/* Generation g of slot 0: a reservation abandoned at close. */
	struct mrb_ring p;
	CHECK_RC(mrb_open(&p, path, 0), 0);
	struct mrb_reservation res;
	CHECK_RC(mrb_reserve(&p, 8, &res), 0);
	CHECK_RC(ring_own_slot(&p), 0);
	uint64_t g = ring_load64(&p, OFF_PRODUCERS + SLOT_OWNER) >> 32;
	CHECK_RC(mrb_close(&p), 0);

	/* 2^14 - 1 short-lived producers take and release slot 0 ... */
	uint64_t written = 0;
	for (uint64_t i = 1; i < (UINT64_C(1) << 14); i++) {
		CHECK_RC(mrb_open(&p, path, 0), 0);
		CHECK_RC(mrb_write(&p, &i, sizeof(i)), 0);
		written++;
		CHECK_RC(mrb_close(&p), 0);
	}
	/* ... and the next one stays: it owns slot 0 at generation g + 2^14. */
	CHECK_RC(mrb_open(&p, path, 0), 0);
	uint64_t last = UINT64_C(1) << 14;
	CHECK_RC(mrb_write(&p, &last, sizeof(last)), 0);
	written++;
	uint64_t owner = ring_load64(&p, OFF_PRODUCERS + SLOT_OWNER);
	CHECK_EQ_U64(owner >> 32, g); /* slot 0 was never taken again */
	CHECK(ring_own_slot(&p) != 0);

	/* The consumer comes back. */
	uint8_t buf[64];
	size_t len;
	int rc = mrb_read_wait(&consumer, buf, sizeof(buf), &len, 2000 * 1000000LL);
	if (rc == MRB_ETIMEDOUT)
		FAIL("consumer blocked by the abandoned reservation of a closed handle "
		     "(slot 0 generation %" PRIu64 " aliases %" PRIu64 " in 14 bits)",
		     owner >> 32, g);
	CHECK_RC(rc, 0);
	uint64_t seq;
	CHECK(len == sizeof(seq));
	memcpy(&seq, buf, sizeof(seq));
	CHECK_EQ_U64(seq, 1);
	for (uint64_t i = 2; i <= written; i++) {
		CHECK_RC(mrb_read(&consumer, buf, sizeof(buf), &len), 0);
		memcpy(&seq, buf, sizeof(seq));
		CHECK_EQ_U64(seq, i);
	}
	CHECK_RC(mrb_close(&p), 0);
	CHECK_RC(mrb_close(&consumer), 0);
	return 0;
}
