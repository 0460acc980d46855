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
#define OFF_PRODUCER_POSITION       0x080
#define OFF_CONSUMER_POSITION_CACHE 0x100
#define OFF_CONSUMER_POSITION       0x180
#define OFF_CONSUMER_OWNER          0x200
#define OFF_MESSAGES_READ           0x208
#define OFF_BYTES_READ              0x210
#define OFF_DATA_SEQ                0x280
#define OFF_DATA_WAITERS            0x284
#define OFF_SPACE_SEQ               0x300
#define OFF_SPACE_WAITERS           0x304
#define OFF_RECOVERED_RECORDS       0x380
#define OFF_RECOVERED_BYTES         0x388
#define OFF_PRODUCERS               0x800
#define PRODUCER_SLOT_SIZE          128
#define PRODUCER_SLOTS              16

#define CONTROL_LENGTH_MASK ((UINT64_C(1) << 40) - 1)
#define CONTROL_PID_SHIFT   40
#define CONTROL_PID_MASK    ((UINT64_C(1) << 22) - 1)
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

/*
 * A producer process that dies between its claim CAS and its first header
 * store. It opens the ring and registers as a producer (reserve + abort,
 * which leaves a padding record), reports, then, when told, advances the
 * producer position by `bytes` without writing any header and exits. The
 * process really is gone (and reaped) when dead_claim returns, as recovery
 * of a headerless claim requires a producer process to have died.
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
		_Atomic uint64_t *tail = ring_u64(&ring, OFF_PRODUCER_POSITION);
		uint64_t position = atomic_load(tail);
		while (!atomic_compare_exchange_weak(tail, &position, position + bytes)) {
		}
		_exit(0);
	}
	CHECK(rtest_recv(ready[0]) == 'r');
	close(ready[0]);
	close(ready[1]);
	close(command[0]);
	return (struct dead_claimer){pid, command[1]};
}

static inline void dead_claim(struct dead_claimer *c, uint64_t bytes)
{
	CHECK(write(c->command_fd, &bytes, sizeof(bytes)) == (ssize_t)sizeof(bytes));
	close(c->command_fd);
	rtest_expect_exit0(c->pid, "dead claimer");
}

#endif /* RING_BYTES_H */
