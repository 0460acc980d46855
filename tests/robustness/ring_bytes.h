/* SPDX-License-Identifier: MIT */
/*
 * The file format's offsets (docs/FORMAT.md), spelled out independently of
 * core/src/layout.h so that tests which poke at the mapping also check the
 * specification, and accessors that read and write the mapping as another
 * (possibly hostile) process would.
 */
#ifndef RING_BYTES_H
#define RING_BYTES_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "mrb/mrb.h"
#include "mrb_testing.h"
#include "rtest.h"

#define OFF_MAGIC                   0x000
#define OFF_FORMAT_VERSION          0x008
#define OFF_HEADER_SIZE             0x00c
#define OFF_CAPACITY                0x010
#define OFF_MAX_MESSAGE_SIZE        0x018
#define OFF_STAMP_SALT              0x020
#define OFF_CREATED_UNIX_NS         0x028
#define OFF_CREATOR_PID             0x030
#define OFF_RECORD_HEADER_SIZE      0x034
#define OFF_RECORD_ALIGNMENT        0x038
#define OFF_FEATURE_FLAGS           0x03c
#define OFF_PRODUCER_SLOT_OFFSET    0x040
#define OFF_PRODUCER_SLOT_COUNT     0x044
#define OFF_PRODUCER_SLOTS_USED     0x048
#define OFF_PRODUCER_POSITION       0x080
#define OFF_CONSUMER_POSITION_CACHE 0x100
#define OFF_CONSUMER_POSITION       0x180
#define OFF_CONSUMER_OWNER          0x200
#define OFF_MESSAGES_READ           0x208
#define OFF_BYTES_READ              0x210
#define OFF_CONSUMER_START_TIME     0x218
#define OFF_CONSUMER_PID_NS         0x220
#define OFF_DATA_SEQ                0x280
#define OFF_DATA_WAITERS            0x284
#define OFF_SPACE_SEQ               0x300
#define OFF_SPACE_WAITERS           0x304
#define OFF_RECOVERED_RECORDS       0x380
#define OFF_RECOVERED_BYTES         0x388
#define OFF_SKIPPED_LIVE            0x390
#define OFF_DELIVERED_LATE          0x398
#define OFF_PRODUCERS               0x1000
#define PRODUCER_SLOT_SIZE          256
#define PRODUCER_SLOTS              128
/* Within a producer slot. */
#define SLOT_OWNER         0x00
#define SLOT_START_TIME    0x08
#define SLOT_PID_NS        0x10
#define SLOT_IDENTITY_GEN  0x18
#define SLOT_SPACE_WAITING 0x1c
#define SLOT_FULL          0x20
#define SLOT_LANES         0x40
#define SLOT_LANE_COUNT    12
#define LANE_SIZE          16 /* claiming, claim_end */

#define CONTROL_LENGTH_MASK ((UINT64_C(1) << 40) - 1)
#define CONTROL_SLOT_SHIFT  40
#define CONTROL_SLOT_MASK   ((UINT64_C(1) << 7) - 1)
#define CONTROL_GEN_SHIFT   47
#define CONTROL_GEN_MASK    ((UINT64_C(1) << 14) - 1)
#define CONTROL_PAD         (UINT64_C(1) << 62)
#define CONTROL_BUSY        (UINT64_C(1) << 63)

static inline uint8_t *ring_base(struct mrb_ring *ring)
{
	return mrb__test_mapping(ring);
}

static inline _Atomic uint64_t *ring_u64(struct mrb_ring *ring, size_t offset)
{
	return (_Atomic uint64_t *)(void *)(ring_base(ring) + offset);
}

static inline _Atomic uint32_t *ring_u32(struct mrb_ring *ring, size_t offset)
{
	return (_Atomic uint32_t *)(void *)(ring_base(ring) + offset);
}

static inline uint64_t ring_load64(struct mrb_ring *ring, size_t offset)
{
	return atomic_load(ring_u64(ring, offset));
}

static inline uint32_t ring_load32(struct mrb_ring *ring, size_t offset)
{
	return atomic_load(ring_u32(ring, offset));
}

static inline uint64_t ring_salt(struct mrb_ring *ring)
{
	return ring_load64(ring, OFF_STAMP_SALT);
}

/* The record header at absolute ring position `pos`. */
static inline _Atomic uint64_t *ring_record_control(struct mrb_ring *ring, uint64_t pos)
{
	uint64_t capacity = ring_load64(ring, OFF_CAPACITY);
	return ring_u64(ring, MRB_HEADER_SIZE + (pos & (capacity - 1)));
}

static inline _Atomic uint64_t *ring_record_stamp(struct mrb_ring *ring, uint64_t pos)
{
	uint64_t capacity = ring_load64(ring, OFF_CAPACITY);
	return ring_u64(ring, MRB_HEADER_SIZE + (pos & (capacity - 1)) + 8);
}

static inline uint64_t record_size(uint64_t length)
{
	return (MRB_RECORD_HEADER_SIZE + length + MRB_RECORD_ALIGNMENT - 1) &
	       ~(uint64_t)(MRB_RECORD_ALIGNMENT - 1);
}

/* The producer slot this process's handle owns (after its first write). */
static inline size_t ring_own_slot(struct mrb_ring *ring)
{
	for (size_t i = 0; i < PRODUCER_SLOTS; i++) {
		uint64_t owner =
		    ring_load64(ring, OFF_PRODUCERS + i * PRODUCER_SLOT_SIZE + SLOT_OWNER);
		if ((uint32_t)owner == (uint32_t)getpid())
			return i;
	}
	FAIL("no producer slot owned by pid %d", (int)getpid());
	return 0;
}

/*
 * Claims `bytes` as a writer following the protocol does (FORMAT.md
 * section 7): announce in a lane of the handle's slot, CAS the producer
 * position, publish the claim's end, and then write no header: what a
 * writer stopped or killed right after its claim leaves. Returns the
 * claim's position.
 */
static inline uint64_t ring_claim_without_header(struct mrb_ring *ring, size_t lane, uint64_t bytes)
{
	size_t slot = OFF_PRODUCERS + ring_own_slot(ring) * PRODUCER_SLOT_SIZE;
	_Atomic uint64_t *claiming = ring_u64(ring, slot + SLOT_LANES + lane * LANE_SIZE);
	_Atomic uint64_t *claim_end = ring_u64(ring, slot + SLOT_LANES + lane * LANE_SIZE + 8);
	_Atomic uint64_t *tail = ring_u64(ring, OFF_PRODUCER_POSITION);
	uint64_t position = atomic_load(tail);
	do {
		atomic_store(claiming, position | 1);
	} while (!atomic_compare_exchange_weak(tail, &position, position + bytes));
	atomic_store(claim_end, position + bytes);
	return position;
}

/*
 * A producer process that dies between its claim CAS and its first header
 * store. It opens the ring and registers as a producer (reserve + abort,
 * which leaves a padding record and gives its handle a slot), reports,
 * then, when told, claims `bytes` as a writer does (announced) without
 * writing any header and exits. The process really is gone (and reaped)
 * when dead_claim returns.
 */
struct dead_claimer {
	pid_t pid;
	int command_fd;
};

static inline struct dead_claimer dead_claimer_start(const char *path)
{
	int command[2], ready[2];
	CHECK(pipe(command) == 0 && pipe(ready) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring ring;
		CHECK_RC(mrb_open(&ring, path, 0), 0);
		struct mrb_reservation res;
		CHECK_RC(mrb_reserve(&ring, 1, &res), 0);
		CHECK_RC(mrb_abort(&ring, &res), 0);
		rtest_send(ready[1], 'r');
		uint64_t bytes;
		CHECK(read(command[0], &bytes, sizeof(bytes)) == (ssize_t)sizeof(bytes));
		ring_claim_without_header(&ring, 0, bytes);
		_exit(0);
	}
	CHECK(rtest_recv(ready[0]) == 'r');
	close(ready[0]);
	close(ready[1]);
	close(command[0]);
	return (struct dead_claimer){pid, command[1]};
}

/* Tells the claimer to claim `bytes` and die; returns once it is reaped. */
static inline void dead_claim(struct dead_claimer *c, uint64_t bytes)
{
	CHECK(write(c->command_fd, &bytes, sizeof(bytes)) == (ssize_t)sizeof(bytes));
	close(c->command_fd);
	rtest_expect_exit0(c->pid, "dead claimer");
}

#endif /* RING_BYTES_H */
