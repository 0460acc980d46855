/* SPDX-License-Identifier: MIT */
/*
 * Description (an adversarial reproducer, issue 11): a killed batch writer loses a message in the
 * middle of its batch when another thread of the same handle announced the same position.
 *
 * One producer process, one handle, two threads:
 *   thread a (lane 0) read tail t, announced `claiming = t|1` and was
 *     preempted before its CAS (FORMAT.md section 4 steps 3-4);
 *   thread b (lane 1) announced t too, won the CAS for a run of three
 *     records (mrb_write_batch), published claim_end, wrote the first header
 *     BUSY and the two others committed, with payloads; then the process was
 *     killed before the run's commit.
 * Recovery finds the BUSY header at t and its writer dead, and asks
 * lane_covers() (recover.c:113) for the claim's end. lane_covers returns at
 * the *first* lane that covers t: lane 0's stale announcement, whose end is
 * unknown, so only the first record is padded (recover.c:186) and the run's
 * second and third messages are delivered: the batch lost its first message,
 * not a suffix (ROBUSTNESS.md section 4, "Batches lose at most a suffix").
 *
 * Exits 0 when the whole uncommitted run is dropped.
 */
#include "ring_bytes.h"
#include "rtest.h"

static void put_header(struct mrb_ring *ring, uint64_t pos, uint64_t control)
{
	atomic_store_explicit(ring_record_control(ring, pos), control, memory_order_relaxed);
	atomic_store_explicit(ring_record_stamp(ring, pos), pos ^ ring_salt(ring),
	                      memory_order_release);
}

static uint8_t *payload(struct mrb_ring *ring, uint64_t pos)
{
	return ring_base(ring) + MRB_HEADER_SIZE + (pos & (ring_load64(ring, OFF_CAPACITY) - 1)) +
	       16;
}

int main(void)
{
	rtest_watchdog(60);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 4096);
	uint8_t buf[64];
	size_t len;

	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring p;
		CHECK_RC(mrb_open(&p, path, 0), 0);
		CHECK_RC(mrb_write(&p, "first", 5), 0); /* takes a slot */
		size_t slot = ring_own_slot(&p);
		size_t base = OFF_PRODUCERS + slot * PRODUCER_SLOT_SIZE;
		uint64_t gen = (ring_load64(&p, base + SLOT_OWNER) >> 32) & CONTROL_GEN_MASK;
		uint64_t writer = gen << 47 | (uint64_t)slot << 40;
		_Atomic uint64_t *lane0 = ring_u64(&p, base + SLOT_LANES);
		_Atomic uint64_t *lane1 = ring_u64(&p, base + SLOT_LANES + LANE_SIZE);
		_Atomic uint64_t *tail = ring_u64(&p, OFF_PRODUCER_POSITION);

		uint64_t t = atomic_load(tail);
		atomic_store(lane0, t | 1); /* thread a: announced, no CAS yet */

		/* thread b: a run of three 8-byte messages */
		uint64_t r = record_size(8), run = 3 * r;
		atomic_store(lane1, t | 1);
		CHECK(atomic_compare_exchange_strong(tail, &t, t + run));
		atomic_store(lane1 + 1, t + run);
		put_header(&p, t, CONTROL_BUSY | writer | 8);
		put_header(&p, t + r, writer | 8);
		memcpy(payload(&p, t + r), "batch-2!", 8);
		put_header(&p, t + 2 * r, writer | 8);
		memcpy(payload(&p, t + 2 * r), "batch-3!", 8);
		memcpy(payload(&p, t), "batch-1!", 8);
		kill(getpid(), SIGKILL); /* before the run's commit */
		_exit(1);
	}
	int status = rtest_wait(pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	CHECK_RC(mrb_write(&ring, "after", 5), 0);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 10LL * 1000000000), 0);
	CHECK(len == 5 && memcmp(buf, "first", 5) == 0);
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, 10LL * 1000000000), 0);
	if (len == 8 && memcmp(buf, "batch-", 6) == 0)
		FAIL("delivered \"%.8s\" of a run whose first message was dropped", buf);
	CHECK(len == 5 && memcmp(buf, "after", 5) == 0);
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
