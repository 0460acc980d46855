/* SPDX-License-Identifier: MIT */
/*
 * Description (an adversarial reproducer, issue 11): the hung-writer skip attributes a header-less
 * claim to the wrong writer, and then releases a live writer's claim.
 *
 * Two live producers announce the same position t:
 *   A (higher slot) read tail t, announced `claiming = t|1` and was stopped
 *     before its CAS (preemption, SIGSTOP): FORMAT.md section 4 step 3-4;
 *   B (lower slot) announced t|1 too, won the CAS and was stopped before
 *     its header store.
 * With the opt-in hung-writer timeout the consumer skips the claim at t.
 * survey_claims() (recover.c) keeps the *last* live covering lane, A's, so
 * the skipped claim is recorded as A's. When A continues (its CAS fails, it
 * writes elsewhere and clears its lane), skipped_claim_settled() says
 * "settled", mrbi_next_late_message() finds no header at t ("the writer
 * left without writing here") and releases the claim: consumer_position
 * moves past t while B, alive, still owns it. B's header, payload and
 * commit then land in released space: its message is never delivered (its
 * write returned 0), and once the ring wraps they overwrite whatever record
 * was written there since.
 *
 * Expected (ROBUSTNESS.md section 4, "Hung-writer timeout"): consumer_position
 * stays at the claim until *its* writer (B) is done or gone, and B's message
 * is delivered late. Exits 0 when that holds.
 */
#include <sys/prctl.h>

#include "ring_bytes.h"
#include "rtest.h"

struct child {
	pid_t pid;
	int cmd;  /* parent -> child */
	int resp; /* child -> parent */
};

/* A producer process driven by one-byte commands:
 *   'a': announce claiming = tail|1 in lane 0 and stop there (A, before CAS)
 *   'c': claim 48 bytes as a writer does, no header (B, after CAS)
 *   'f': finish that claim as write_one would: header BUSY, payload, commit
 *   'w': a real mrb_write("A-later") (A continues: its CAS failed)
 *   'x': close and exit */
static struct child producer(const char *path)
{
	int cmd[2], resp[2];
	CHECK(pipe(cmd) == 0 && pipe(resp) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct mrb_ring ring;
		CHECK_RC(mrb_open(&ring, path, 0), 0);
		CHECK_RC(mrb_write(&ring, "hello", 5), 0); /* takes a slot */
		rtest_send(resp[1], 'r');
		size_t slot = ring_own_slot(&ring);
		size_t lane0 = OFF_PRODUCERS + slot * PRODUCER_SLOT_SIZE + SLOT_LANES;
		uint64_t pos = 0;
		for (;;) {
			char c = rtest_recv(cmd[0]);
			if (c == 'a') {
				uint64_t t = ring_load64(&ring, OFF_PRODUCER_POSITION);
				atomic_store(ring_u64(&ring, lane0), t | 1);
			} else if (c == 'c') {
				pos = ring_claim_without_header(&ring, 0, record_size(32));
			} else if (c == 'f') {
				uint64_t owner = ring_load64(
				    &ring, OFF_PRODUCERS + slot * PRODUCER_SLOT_SIZE + SLOT_OWNER);
				uint64_t gen = (owner >> 32) & CONTROL_GEN_MASK;
				uint64_t writer = gen << 47 | (uint64_t)slot << 40;
				atomic_store_explicit(ring_record_control(&ring, pos),
				                      CONTROL_BUSY | writer | 32,
				                      memory_order_relaxed);
				atomic_store_explicit(ring_record_stamp(&ring, pos),
				                      pos ^ ring_salt(&ring), memory_order_release);
				uint8_t *payload = ring_base(&ring) + MRB_HEADER_SIZE +
				                   (pos & (ring_load64(&ring, OFF_CAPACITY) - 1)) +
				                   16;
				memset(payload, 'B', 32);
				atomic_store_explicit(ring_record_control(&ring, pos), writer | 32,
				                      memory_order_release);
				atomic_store(ring_u64(&ring, lane0), 0);
			} else if (c == 'w') {
				CHECK_RC(mrb_write(&ring, "A-later", 7), 0);
			} else {
				CHECK_RC(mrb_close(&ring), 0);
				_exit(0);
			}
			rtest_send(resp[1], 'k');
		}
	}
	close(cmd[0]);
	close(resp[1]);
	struct child ch = {pid, cmd[1], resp[0]};
	CHECK(rtest_recv(ch.resp) == 'r');
	return ch;
}

static void tell(struct child *c, char what)
{
	rtest_send(c->cmd, what);
	CHECK(rtest_recv(c->resp) == 'k');
}

int main(void)
{
	rtest_watchdog(60);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 4096);
	uint8_t buf[256];
	size_t len;
	struct mrb_stats st;

	struct child b = producer(path); /* lower slot */
	struct child a = producer(path); /* higher slot */
	for (int i = 0; i < 2; i++) {
		CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
		CHECK(len == 5);
	}
	CHECK_RC(mrb_stats(&ring, &st), 0);
	uint64_t t = st.producer_position;

	tell(&a, 'a'); /* A announced t, stopped before its CAS */
	tell(&b, 'c'); /* B announced t, won the CAS, stopped before its header */
	CHECK_RC(mrb_write(&ring, "after", 5), 0);

	CHECK_RC(mrb_set_recovery_timeout(&ring, 50 * 1000000LL), 0);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 10LL * 1000000000), 0);
	CHECK(len == 5 && memcmp(buf, "after", 5) == 0);
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.skipped_live, 1);
	CHECK_EQ_U64(st.consumer_position, t);

	/* A continues: its CAS fails, it writes elsewhere, clears its lane. */
	tell(&a, 'w');
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 10LL * 1000000000), 0);
	CHECK(len == 7 && memcmp(buf, "A-later", 7) == 0);
	for (int i = 0; i < 50; i++) {
		int rc = mrb_read(&ring, buf, sizeof(buf), &len);
		CHECK(rc == MRB_EEMPTY);
		rtest_sleep_ms(2);
	}
	CHECK_RC(mrb_stats(&ring, &st), 0);
	/* B is alive and still owns [t, t + 48): its space must stay held. */
	if (st.consumer_position != t)
		FAIL("consumer_position = %" PRIu64 " moved past live writer B's claim at %" PRIu64
		     " (recovered_records = %" PRIu64 ")",
		     st.consumer_position, t, st.recovered_records);
	CHECK_EQ_U64(st.recovered_records, 0);

	/* B continues: its message must arrive (late). */
	tell(&b, 'f');
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 10LL * 1000000000), 0);
	CHECK(len == 32 && buf[0] == 'B' && buf[31] == 'B');
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.delivered_late, 1);

	rtest_send(a.cmd, 'x');
	rtest_send(b.cmd, 'x');
	rtest_expect_exit0(a.pid, "A");
	rtest_expect_exit0(b.pid, "B");
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
