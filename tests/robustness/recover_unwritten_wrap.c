/* SPDX-License-Identifier: MIT */
/*
 * Description: a producer killed between its claim CAS and its first header
 * store at the wrap point. Such a claim covers the gap to the end of the
 * data region plus the record at offset 0 (claim() takes both in one CAS and
 * only then writes the padding header), so the unwritten span crosses the
 * end of the data region. Recovery must skip it (possibly as two padding
 * records) and deliver the committed message after it, not report
 * MRB_ECORRUPT forever.
 */
#include "ring_bytes.h"
#include "rtest.h"

#define MSG_LEN 40

int main(void)
{
	rtest_watchdog(60);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 1024);
	uint8_t msg[160], buf[512];
	size_t len;
	/* The producer that will die; registering leaves a padding record. */
	struct dead_claimer claimer = dead_claimer_start(path);
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
	/* Move head and tail to 64 bytes before the end of the data region. */
	uint64_t seq = 0;
	while (ring_load64(&ring, OFF_PRODUCER_POSITION) % 1024 != 1024 - 64) {
		rtest_fill(msg, 16, seq);
		CHECK_RC(mrb_write(&ring, msg, 16), 0);
		CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
		CHECK(len == 16 && rtest_matches(buf, len, seq));
		seq++;
	}

	/* The dead claim: 64 bytes of gap + a 128-byte record, no header. */
	dead_claim(&claimer, 64 + 128);
	rtest_fill(msg, MSG_LEN, 99);
	CHECK_RC(mrb_write(&ring, msg, MSG_LEN), 0);

	int rc = mrb_read_wait(&ring, buf, sizeof(buf), &len, 30LL * 1000000000);
	if (rc != 0)
		FAIL("message behind an unwritten claim across the wrap: %d (%s)", rc,
		     mrb_strerror(rc));
	CHECK_EQ_U64(len, MSG_LEN);
	CHECK(rtest_matches(buf, len, 99));
	struct mrb_stats st;
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK(st.recovered_records >= 1);
	CHECK_EQ_U64(st.consumer_position, st.producer_position);
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
