/* SPDX-License-Identifier: MIT */
/*
 * The shared file layout (docs/FORMAT.md is the normative description; this
 * header must agree with it byte for byte). Everything here lives in memory
 * that other processes can write, so every value read from it is untrusted:
 * callers validate before using any length or position.
 */
#ifndef MRB_LAYOUT_H
#define MRB_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mrb/mrb.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ring format is little-endian; big-endian hosts are not supported"
#endif

#define MRB_MAGIC      "MMAPRBUF"
#define MRB_MAGIC_SIZE 8

/* Hot fields sit in their own 128-byte slot: two cache lines, because
 * adjacent-line prefetch would otherwise couple neighbouring slots. */
#define MRB_SLOT_SIZE      128
#define MRB_PRODUCER_SLOTS 16
/* The last producer slot is never owned: it absorbs the counters of
 * processes that find every other slot taken. */
#define MRB_SHARED_PRODUCER_SLOT (MRB_PRODUCER_SLOTS - 1)

struct mrb_producer_slot {
	_Atomic uint32_t owner_pid; /* 0 = free */
	/* This process's share of space_waiters, so that the share of a
	 * process killed while asleep can be taken back out. */
	_Atomic uint32_t space_waiting;
	uint64_t reserved[2]; /* zero */
	_Atomic uint64_t full;
	uint8_t pad[MRB_SLOT_SIZE - 32];
};

struct mrb_file_header {
	/* 0x000: identity, written once before format_version is published. */
	char magic[MRB_MAGIC_SIZE];
	/* Published last with release at creation; 0 means "not initialised". */
	_Atomic uint32_t format_version;
	uint32_t header_size;
	uint64_t capacity;
	uint64_t max_message_size;
	/* Record stamps are position XOR salt; odd, random per file, so neither
	 * zero-filled nor stale bytes ever pass for a fresh record header. */
	uint64_t stamp_salt;
	uint64_t created_unix_ns;
	uint32_t creator_pid;
	uint32_t record_header_size;
	uint32_t record_alignment;
	uint32_t feature_flags; /* must be 0 in format version 1 */
	uint8_t reserved0[0x080 - 0x040];

	/* 0x080: producer position, advanced by CAS to claim space. */
	_Atomic uint64_t producer_position;
	uint8_t pad1[MRB_SLOT_SIZE - 8];

	/* 0x100: producers' shared copy of the consumer position, so that a
	 * claim rarely touches the consumer's line. Never ahead of the truth. */
	_Atomic uint64_t consumer_position_cache;
	uint8_t pad2[MRB_SLOT_SIZE - 8];

	/* 0x180: consumer position, published by the consumer after reading. */
	_Atomic uint64_t consumer_position;
	uint8_t pad3[MRB_SLOT_SIZE - 8];

	/* 0x200: consumer ownership (pid | nonce << 32, 0 = none) and counters,
	 * written only by the owning consumer. */
	_Atomic uint64_t consumer_owner;
	_Atomic uint64_t messages_read;
	_Atomic uint64_t bytes_read;
	uint8_t pad4[MRB_SLOT_SIZE - 24];

	/* 0x280: futex word bumped when data arrives and someone waits. */
	_Atomic uint32_t data_seq;
	_Atomic uint32_t data_waiters;
	uint8_t pad5[MRB_SLOT_SIZE - 8];

	/* 0x300: futex word bumped when space frees and someone waits. */
	_Atomic uint32_t space_seq;
	_Atomic uint32_t space_waiters;
	uint8_t pad6[MRB_SLOT_SIZE - 8];

	/* 0x380: crash recovery. */
	_Atomic uint64_t recovered_records;
	_Atomic uint64_t recovered_bytes;
	uint8_t pad7[MRB_SLOT_SIZE - 16];

	/* 0x400 - 0x7ff: reserved for future versions, zero. */
	uint8_t reserved1[0x800 - 0x400];

	/* 0x800: per-process producer counters and liveness. */
	struct mrb_producer_slot producers[MRB_PRODUCER_SLOTS];
};

_Static_assert(sizeof(struct mrb_producer_slot) == MRB_SLOT_SIZE, "slot size");
_Static_assert(offsetof(struct mrb_file_header, format_version) == 0x008, "layout");
_Static_assert(offsetof(struct mrb_file_header, capacity) == 0x010, "layout");
_Static_assert(offsetof(struct mrb_file_header, stamp_salt) == 0x020, "layout");
_Static_assert(offsetof(struct mrb_file_header, feature_flags) == 0x03c, "layout");
_Static_assert(offsetof(struct mrb_file_header, producer_position) == 0x080, "layout");
_Static_assert(offsetof(struct mrb_file_header, consumer_position_cache) == 0x100, "layout");
_Static_assert(offsetof(struct mrb_file_header, consumer_position) == 0x180, "layout");
_Static_assert(offsetof(struct mrb_file_header, consumer_owner) == 0x200, "layout");
_Static_assert(offsetof(struct mrb_file_header, data_seq) == 0x280, "layout");
_Static_assert(offsetof(struct mrb_file_header, space_seq) == 0x300, "layout");
_Static_assert(offsetof(struct mrb_file_header, recovered_records) == 0x380, "layout");
_Static_assert(offsetof(struct mrb_file_header, producers) == 0x800, "layout");
_Static_assert(sizeof(struct mrb_file_header) == MRB_HEADER_SIZE, "header size");

/*
 * Record header, 16 bytes at a 16-byte aligned ring offset:
 *   control: bits 0-39 payload length, bits 40-61 writer pid, bit 62 PAD,
 *            bit 63 BUSY (reserved, not yet committed)
 *   stamp:   the record's absolute position XOR stamp_salt
 * Writers store control first (relaxed) and the stamp second (release); a
 * reader that sees the right stamp (acquire) therefore sees at least that
 * control value, and a stale or never-written header fails the stamp check.
 */
struct mrb_record_header {
	_Atomic uint64_t control;
	_Atomic uint64_t stamp;
};
_Static_assert(sizeof(struct mrb_record_header) == MRB_RECORD_HEADER_SIZE, "record header");

#define MRB_CONTROL_LENGTH_MASK ((UINT64_C(1) << 40) - 1)
#define MRB_CONTROL_PID_SHIFT   40
#define MRB_CONTROL_PID_MASK    ((UINT64_C(1) << 22) - 1)
#define MRB_CONTROL_PAD         (UINT64_C(1) << 62)
#define MRB_CONTROL_BUSY        (UINT64_C(1) << 63)

static inline uint64_t mrb_control(uint64_t length, uint32_t pid, uint64_t flags)
{
	return (length & MRB_CONTROL_LENGTH_MASK) |
	       ((uint64_t)(pid & MRB_CONTROL_PID_MASK) << MRB_CONTROL_PID_SHIFT) | flags;
}

static inline uint64_t mrb_control_length(uint64_t control)
{
	return control & MRB_CONTROL_LENGTH_MASK;
}

static inline uint32_t mrb_control_pid(uint64_t control)
{
	return (uint32_t)((control >> MRB_CONTROL_PID_SHIFT) & MRB_CONTROL_PID_MASK);
}

/* Space a record of `length` payload bytes takes, header and alignment
 * included. length is at most 2^40, so this cannot overflow. */
static inline uint64_t mrb_record_size(uint64_t length)
{
	return (MRB_RECORD_HEADER_SIZE + length + MRB_RECORD_ALIGNMENT - 1) &
	       ~(uint64_t)(MRB_RECORD_ALIGNMENT - 1);
}

#endif /* MRB_LAYOUT_H */
