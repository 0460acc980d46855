/* SPDX-License-Identifier: MIT */
/*
 * Description: lost wake-up hunt. Two processes play ping-pong over two
 * rings, each side blocking with no timeout for the other's message, many
 * thousands of times; then a writer streams through a ring that holds only
 * two records while the reader blocks, so both sides sleep on every few
 * messages. Random short delays put the other side in every phase of arming
 * its wait. A single lost wake-up hangs the exchange, which the watchdog
 * turns into a failure. Every message is checked (sequence and bytes).
 *
 * The barrier mode picks the handshake under test (core/src/barrier.c):
 * "default" is membarrier where the kernel has it (wakers publish with a
 * compiler barrier only), "rmw" forces the fallback on both processes
 * (wakers read the waiter count with a read-modify-write; sleepers sleep
 * without bound so that a lost wake-up still hangs), "mixed" gives the child
 * the no-membarrier fallback and the parent the default.
 * Usage: wait_pingpong [round_trips [default|rmw|mixed]]
 */
#include "ring_bytes.h"
#include "rtest.h"

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Busy-waits up to ~100 us on some iterations, sleeps on a few: the peer
 * must then be spinning, yielding or asleep when the message lands. */
static void jitter(uint64_t *rng)
{
	uint64_t r = xorshift(rng) % 64;
	if (r < 40)
		return;
	if (r < 62) {
		int64_t until = rtest_now_ns() + (int64_t)(r - 39) * 5000;
		while (rtest_now_ns() < until) {
		}
		return;
	}
	rtest_sleep_ms(1);
}

static enum mrb_test_barriers barriers_for(const char *mode, int child)
{
	if (strcmp(mode, "default") == 0)
		return MRB_TEST_BARRIERS_DEFAULT;
	if (strcmp(mode, "rmw") == 0)
		return MRB_TEST_BARRIERS_RMW_ONLY;
	if (strcmp(mode, "mixed") == 0)
		return child ? MRB_TEST_BARRIERS_NONE : MRB_TEST_BARRIERS_DEFAULT;
	FAIL("unknown barrier mode %s", mode);
}

static void open_with(struct mrb_ring *ring, const char *path, enum mrb_test_barriers barriers)
{
	CHECK_RC(mrb_open(ring, path, 0), 0);
	CHECK_RC(mrb__test_set_barriers(ring, barriers), 0);
}

static void send_seq(struct mrb_ring *ring, uint64_t seq)
{
	uint8_t msg[24];
	memcpy(msg, &seq, 8);
	rtest_fill(msg + 8, 16, seq);
	CHECK_RC(mrb_write(ring, msg, sizeof(msg)), 0);
}

static void expect_seq(struct mrb_ring *ring, uint64_t seq, int use_wait_readable)
{
	uint8_t msg[64];
	size_t len = 0;
	if (use_wait_readable) {
		CHECK_RC(mrb_wait_readable(ring, -1), 0);
		CHECK_RC(mrb_read(ring, msg, sizeof(msg), &len), 0);
	} else {
		CHECK_RC(mrb_read_wait(ring, msg, sizeof(msg), &len, -1), 0);
	}
	uint64_t got;
	CHECK_EQ_U64(len, 24);
	memcpy(&got, msg, 8);
	if (got != seq)
		FAIL("expected message %" PRIu64 ", got %" PRIu64, seq, got);
	CHECK(rtest_matches(msg + 8, 16, seq));
}

int main(int argc, char **argv)
{
	uint64_t round_trips = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000;
	const char *mode = argc > 2 ? argv[2] : "default";
	/* Hang bound, scaled for sanitizer builds on a shared 2-core box. */
	rtest_watchdog(240);
	const char *ping_path = rtest_path("ping");
	const char *pong_path = rtest_path("pong");
	const char *stream_path = rtest_path("stream");
	struct mrb_ring ping, pong, stream;
	rtest_create(&ping, ping_path, 4096);
	rtest_create(&pong, pong_path, 4096);
	/* 256 bytes: two 100-byte messages (128-byte records) fill it. */
	rtest_create(&stream, stream_path, 256);
	CHECK_RC(mrb_close(&ping), 0);
	CHECK_RC(mrb_close(&pong), 0);
	CHECK_RC(mrb_close(&stream), 0);

	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		struct mrb_ring in, out, s;
		enum mrb_test_barriers barriers = barriers_for(mode, 1);
		open_with(&in, ping_path, barriers);
		open_with(&out, pong_path, barriers);
		open_with(&s, stream_path, barriers);
		uint64_t rng = 0x1234567u;
		for (uint64_t i = 0; i < round_trips; i++) {
			expect_seq(&in, i, (i & 1) != 0);
			jitter(&rng);
			send_seq(&out, i);
		}
		/* Streaming phase: this side writes and blocks on space. */
		uint8_t msg[100];
		for (uint64_t i = 0; i < round_trips; i++) {
			rtest_fill(msg, sizeof(msg), i);
			if (i % 3 == 0) {
				CHECK_RC(mrb_wait_writable(&s, sizeof(msg), -1), 0);
				CHECK_RC(mrb_write(&s, msg, sizeof(msg)), 0);
			} else {
				CHECK_RC(mrb_write_wait(&s, msg, sizeof(msg), -1), 0);
			}
			jitter(&rng);
		}
		_exit(0);
	}

	struct mrb_ring out, in, s;
	enum mrb_test_barriers barriers = barriers_for(mode, 0);
	open_with(&out, ping_path, barriers);
	open_with(&in, pong_path, barriers);
	open_with(&s, stream_path, barriers);
	uint64_t rng = 0x9abcdefu;
	int64_t start = rtest_now_ns();
	for (uint64_t i = 0; i < round_trips; i++) {
		jitter(&rng);
		send_seq(&out, i);
		expect_seq(&in, i, (i & 2) != 0);
	}
	int64_t ping_ns = rtest_now_ns() - start;
	uint8_t msg[128];
	size_t len;
	for (uint64_t i = 0; i < round_trips; i++) {
		jitter(&rng);
		CHECK_RC(mrb_read_wait(&s, msg, sizeof(msg), &len, -1), 0);
		CHECK_EQ_U64(len, 100);
		if (!rtest_matches(msg, len, i))
			FAIL("stream message %" PRIu64 " corrupt or out of order", i);
	}
	rtest_expect_exit0(child, "ping-pong peer");
	struct mrb_stats st;
	CHECK_RC(mrb_stats(&s, &st), 0);
	/* Each bump of a futex word is a wake-up of a sleeping waiter: proof
	 * that the runs above went through the futex path, not just the spin. */
	uint32_t sleeps = ring_load32(&out, OFF_DATA_SEQ) + ring_load32(&in, OFF_DATA_SEQ) +
	                  ring_load32(&s, OFF_DATA_SEQ) + ring_load32(&s, OFF_SPACE_SEQ);
	printf("futex wake-ups issued: %u\n", sleeps);
	CHECK(sleeps > 0);
	CHECK_EQ_U64(st.messages_read, round_trips);
	printf("%" PRIu64 " round trips in %.2f s; %" PRIu64 " streamed through a 2-record ring\n",
	       round_trips, (double)ping_ns / 1e9, round_trips);
	CHECK_RC(mrb_close(&out), 0);
	CHECK_RC(mrb_close(&in), 0);
	CHECK_RC(mrb_close(&s), 0);
	return 0;
}
