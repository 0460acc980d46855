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
/* Format version 1's header size: the smallest file that can name its
 * version (and be refused with MRB_EVERSION, or upgraded). */
#define MRB_V1_HEADER_SIZE 4096

/* Hot fields sit in their own 128-byte slot: two cache lines, because
 * adjacent-line prefetch would otherwise couple neighbouring slots. */
#define MRB_SLOT_SIZE 128

/* Producer slots: one per writing handle, so that every claim can be
 * attributed to its writer (format version 2, docs/FORMAT.md section 7). */
#define MRB_PRODUCER_SLOTS       128
#define MRB_PRODUCER_SLOT_OFFSET 0x1000

/* Who a process is, in a form that survives pid reuse: the pid, the
 * process's start time in clock ticks since boot (field 22 of
 * /proc/PID/stat, 0 if unknown) and the inode of its pid namespace
 * (/proc/self/ns/pid, 0 if unknown). Two processes of different pid
 * namespaces cannot judge each other's liveness; a judge then assumes
 * "alive" (util.c). */
#define MRB_MAX_PID 4194304u /* PID_MAX_LIMIT on 64-bit Linux */
struct mrb_identity {
	uint32_t pid;
	uint64_t start_time;
	uint64_t pid_ns;
};

/*
 * A producer slot (256 bytes), owned by one writing handle. `owner` is
 * pid | generation << 32; pid 0 means free, and the generation counts
 * acquisitions, so a record header naming the slot and a generation can tell
 * its writer from a later owner of the slot. The owner's identity is valid
 * when identity_gen equals the owner's generation.
 *
 * Lanes: a thread inside a producer call of the handle holds one lane. It
 * announces the position it is about to claim (`claiming`: the position | 1,
 * 0 when idle; | 2 while it takes the sole-producer lease back, lease.c) before its CAS on the
 * producer position, and the end of the claim (`claim_end`) right after it, and clears the
 * announcement when its call is done: recovery attributes a claim whose header never appeared to
 * its writer from these words (recover.c).
 */
#define MRB_SLOT_LANES 12
struct mrb_lane {
	_Atomic uint64_t claiming;
	_Atomic uint64_t claim_end;
};
/* The low bits of `claiming`: a claim is announced (1), its producer is
 * taking the sole-producer lease back (2). Positions are 16-aligned. */
#define MRB_LANE_ANNOUNCED UINT64_C(1)
#define MRB_LANE_REVOKING  UINT64_C(2)
#define MRB_LANE_FLAGS     (MRB_LANE_ANNOUNCED | MRB_LANE_REVOKING)

struct mrb_producer_slot {
	_Atomic uint64_t owner;
	_Atomic uint64_t owner_start_time;
	_Atomic uint64_t owner_pid_ns;
	_Atomic uint32_t identity_gen;
	/* This handle's share of space_waiters, so that the share of a
	 * process killed while asleep can be taken back out. */
	_Atomic uint32_t space_waiting;
	_Atomic uint64_t full;
	/* A free slot is taken again only once consumer_position has reached
	 * this (0: at once): records its last owner may have left unfinished
	 * (an abandoned reservation, a claim of a dead owner) then lie behind
	 * the consumer, so a new generation can never be mistaken for theirs. */
	_Atomic uint64_t released_at;
	uint8_t reserved[16]; /* zero */
	struct mrb_lane lanes[MRB_SLOT_LANES];
};
#define MRB_PRODUCER_SLOT_SIZE 256

#define MRB_SLOT_PID(owner) ((uint32_t)(owner))
#define MRB_SLOT_GEN(owner) ((uint32_t)((owner) >> 32))

/*
 * The sole-producer lease word (header 0x088, docs/FORMAT.md section 7):
 * generation << 32 | slot << 8 | state. While HELD, lane 0 of that slot,
 * owned by that generation, is the only claimer and claims with a plain
 * store; REVOKING: another producer or a validating reader is taking it
 * back. Any other non-zero value is garbage, revoked like REVOKING.
 */
#define MRB_LEASE_HELD     UINT64_C(1)
#define MRB_LEASE_REVOKING UINT64_C(2)
#define MRB_LEASE_STATE    UINT64_C(0xff)
static inline uint64_t lease_word(uint32_t slot, uint32_t generation, uint64_t state)
{
	return (uint64_t)generation << 32 | (uint64_t)(slot & 0xff) << 8 | state;
}
static inline uint32_t lease_slot(uint64_t lease)
{
	return (uint32_t)(lease >> 8) & 0xff;
}

/*
 * A doorbell (16 bytes): how a waiter that sleeps in an event loop rather
 * than on a futex is woken (docs/FORMAT.md section 6, doorbell.c). `armed`
 * is 0, or the name of the armed waiter's doorbell socket: the abstract
 * Unix datagram socket "\0mmap_ringbuffer.doorbell.<16 lowercase hex
 * digits of armed>". The waiter counts itself in the waiter count of what
 * it waits for before storing its name; whoever takes the name back out
 * (an exchange to 0: a waker, which then sends one byte to the socket, or
 * the waiter disarming) takes that count back out, exactly once. Every
 * reader has one: the consumer's is in the header, each subscriber's in its
 * reader entry; writers share a table of them.
 */
struct mrb_doorbell {
	_Atomic uint64_t armed;
	uint64_t reserved; /* zero */
};
#define MRB_DOORBELL_SIZE 16
/* Writers waiting for space through a descriptor, at once, per ring. */
#define MRB_SPACE_DOORBELLS 32

/*
 * Readers (format version 2, docs/FORMAT.md section 8). A ring is read either
 * by one consumer (queue mode, the default) or by subscribers (fan-out mode,
 * chosen at creation): each durable subscriber sees every message from where
 * it joined, and consumer_position becomes the release position, the
 * minimum over the durable subscribers, advanced by them and by producers
 * short of space (subscriber.c). Lossy subscribers (either mode) never hold
 * producers back: they copy, then check that they were not lapped.
 */
#define MRB_READER_TABLE_OFFSET 0x9000
#define MRB_READER_ENTRY_OFFSET 0xa000
#define MRB_READER_ENTRIES      64
#define MRB_READER_ENTRY_SIZE   256
#define MRB_READER_NAME_WORDS   4 /* a name is at most 31 bytes, NUL-padded */

#define MRB_MODE_QUEUE  0u
#define MRB_MODE_FANOUT 1u

struct mrb_reader_table {
	/* Written once, before format_version is published. */
	uint32_t mode;
	/* One more than the highest entry ever taken: scans stop here. */
	_Atomic uint32_t entries_used;
	uint8_t reserved[MRB_SLOT_SIZE - 8];
};

/* Entry states. Gating entries (JOINING, ACTIVE, DETACHED, unless LOSSY)
 * bound the release position. */
#define MRB_ENTRY_FREE     0u
#define MRB_ENTRY_JOINING  1u /* being taken; position provisional */
#define MRB_ENTRY_ACTIVE   2u /* owned by a live (or not yet judged) handle */
#define MRB_ENTRY_DETACHED 3u /* named, owner gone; position kept */
#define MRB_ENTRY_EVICTED  4u /* named or owned, no longer gating */

#define MRB_ENTRY_LOSSY (1u << 0)
#define MRB_ENTRY_EVICT (1u << 1)
#define MRB_ENTRY_NAMED (1u << 2)
/* A durable reader behind the live end (from the oldest message, or
 * resuming after an eviction), counted in validating_readers until it
 * reaches the live end it read at its join. */
#define MRB_ENTRY_VALIDATING (1u << 3)
#define MRB_ENTRY_FLAGS      (MRB_ENTRY_LOSSY | MRB_ENTRY_EVICT | MRB_ENTRY_NAMED | MRB_ENTRY_VALIDATING)

struct mrb_reader_entry {
	/* 0x00: ownership and policy, written at join, leave and eviction. */
	_Atomic uint64_t owner; /* pid | nonce << 32, 0 = none */
	_Atomic uint64_t owner_start_time;
	_Atomic uint64_t owner_pid_ns;
	_Atomic uint32_t state;
	_Atomic uint32_t flags;
	_Atomic int64_t evict_after_ns;
	/* Where producers short of space last found this entry holding the
	 * release position back, and since when (CLOCK_MONOTONIC ns). */
	_Atomic uint64_t stall_position;
	_Atomic int64_t stall_since_ns;
	/* This reader's share of data_waiters (a dead sleeper's is taken
	 * back out when its entry is freed). */
	_Atomic uint32_t data_waiting;
	uint32_t reserved0;
	_Atomic uint64_t name[MRB_READER_NAME_WORDS];
	/* 0x60: this subscriber's doorbell (event-loop waiting), counted in
	 * data_waiters (not in data_waiting) while armed. */
	struct mrb_doorbell doorbell;
	uint8_t reserved1[16];
	/* 0x80: written by the reader as it reads. */
	_Atomic uint64_t position;
	_Atomic uint64_t messages_read;
	_Atomic uint64_t bytes_read;
	_Atomic uint64_t lost_bytes;
	_Atomic uint64_t lost_events;
	_Atomic uint64_t evictions; /* written by evictors */
	uint8_t reserved2[MRB_READER_ENTRY_SIZE - 0xb0];
};
_Static_assert(sizeof(struct mrb_reader_entry) == MRB_READER_ENTRY_SIZE, "entry size");
_Static_assert(offsetof(struct mrb_reader_entry, name) == 0x40, "layout");
_Static_assert(offsetof(struct mrb_reader_entry, doorbell) == 0x60, "layout");
_Static_assert(offsetof(struct mrb_reader_entry, position) == 0x80, "layout");
_Static_assert(sizeof(struct mrb_reader_table) == MRB_SLOT_SIZE, "table size");

/*
 * Worker groups (format version 2, docs/FORMAT.md section 9), fan-out rings
 * only: competing consumers. Each message goes to one worker of a group.
 * A group's claim position moves by CAS as workers take runs of messages;
 * a worker announces the start of what it takes (`inflight`) in its own
 * slot before its CAS, and the group's claim position and every announced
 * start gate the release position R (workers.c). A dead or hung worker's
 * announced range is rescued by another worker of the group: redelivered
 * (at-least-once) or dropped and counted (at-most-once).
 */
#define MRB_GROUP_TABLE_OFFSET 0xe000
#define MRB_GROUP_OFFSET       0xe080
#define MRB_GROUPS             4
#define MRB_GROUP_SIZE         384
#define MRB_WORKER_OFFSET      0xe800
#define MRB_WORKERS            48
#define MRB_WORKER_SIZE        128
/* A worker's doorbell name carries its group's index in bits 1-2: a waker
 * that takes a name out of a worker slot counts it out of that group, even
 * if the slot changed hands (and groups) since the waker looked at it. */
#define MRB_DOORBELL_GROUP_SHIFT 1
#define MRB_DOORBELL_GROUP_MASK  UINT64_C(3)
_Static_assert(MRB_GROUPS <= MRB_DOORBELL_GROUP_MASK + 1, "group index in a doorbell name");

/* The group a worker's doorbell name counts in. */
static inline uint32_t doorbell_name_group(uint64_t name)
{
	return (uint32_t)((name >> MRB_DOORBELL_GROUP_SHIFT) & MRB_DOORBELL_GROUP_MASK);
}

/* The group table's line: a lock for creating groups (rare; its holder's
 * death is judged by liveness), and the scan bound. */
struct mrb_group_table {
	_Atomic uint64_t lock_owner; /* pid | nonce << 32, 0 = free */
	_Atomic uint64_t lock_start_time;
	_Atomic uint64_t lock_pid_ns;
	/* One more than the highest group / worker slot ever used. */
	_Atomic uint32_t groups_used;
	_Atomic uint32_t workers_used;
	uint8_t reserved[MRB_SLOT_SIZE - 32];
};

#define MRB_GROUP_FREE   0u
#define MRB_GROUP_ACTIVE 1u

#define MRB_GROUP_POLICY_AT_LEAST_ONCE 0u
#define MRB_GROUP_POLICY_AT_MOST_ONCE  1u

struct mrb_group {
	/* 0x000: written at creation (under the table lock), then counters. */
	_Atomic uint32_t state;
	_Atomic uint32_t policy;
	_Atomic int64_t hold_timeout_ns; /* 0: no timeout */
	_Atomic uint64_t name[MRB_READER_NAME_WORDS];
	_Atomic uint64_t redelivered;    /* messages handed again after a worker died or hung */
	_Atomic uint64_t dropped;        /* messages given up (at-most-once) */
	_Atomic uint64_t stale_releases; /* releases refused: the range was rescued */
	_Atomic uint64_t messages_done;  /* messages released by workers */
	_Atomic uint64_t bytes_done;
	uint8_t reserved0[MRB_SLOT_SIZE - 0x58];
	/* 0x080: the claim position: the next message nobody has taken. */
	_Atomic uint64_t claim_position;
	uint8_t pad1[MRB_SLOT_SIZE - 8];
	/* 0x100: wake-one futex: bumped when work arrives and workers sleep. */
	_Atomic uint32_t work_seq;
	_Atomic uint32_t work_waiters;
	/* Workers of the group whose doorbell is armed (event-loop waiting;
	 * counted in data_waiters too): wakers ring every one of them. */
	_Atomic uint32_t work_armed;
	uint8_t pad2[MRB_SLOT_SIZE - 12];
};

/* A worker slot's announcement word (`inflight`). Positions are multiples
 * of 16, so the low bits are flags: 0 = idle; p | HOLDING = taking or
 * holding messages from p on (gates R at p); | FROZEN = taken over by a
 * rescuer: its owner's release is refused. */
#define MRB_INFLIGHT_FROZEN  UINT64_C(1)
#define MRB_INFLIGHT_HOLDING UINT64_C(2)
#define MRB_INFLIGHT_FLAGS   UINT64_C(15)

struct mrb_worker_slot {
	_Atomic uint64_t owner; /* pid | nonce << 32, 0 = free */
	/* The identity (struct mrb_identity) of the owner named by id_owner:
	 * valid only while id_owner == owner. */
	_Atomic uint64_t id_owner;
	_Atomic uint64_t owner_start_time;
	_Atomic uint64_t owner_pid_ns;
	_Atomic uint32_t group; /* group index */
	/* Its share of data_waiters and the group's work_waiters. */
	_Atomic uint32_t waiting;
	_Atomic uint64_t inflight;
	_Atomic uint64_t claim_end;    /* end of the announced range */
	_Atomic int64_t held_since_ns; /* CLOCK_MONOTONIC of the last take */
	_Atomic uint64_t rescuer;      /* pid | nonce << 32 of the rescuer, 0 none */
	_Atomic uint64_t rescuer_start_time;
	_Atomic uint64_t messages_done; /* released by this worker */
	_Atomic uint64_t bytes_done;
	/* 0x60: this worker's doorbell (event-loop waiting), counted in
	 * data_waiters and its group's work_armed (not in `waiting`) while
	 * armed. */
	struct mrb_doorbell doorbell;
	uint8_t reserved[MRB_WORKER_SIZE - 0x70];
};
_Static_assert(sizeof(struct mrb_group_table) == MRB_SLOT_SIZE, "group table");
_Static_assert(sizeof(struct mrb_group) == MRB_GROUP_SIZE, "group size");
_Static_assert(offsetof(struct mrb_group, claim_position) == 0x80, "layout");
_Static_assert(offsetof(struct mrb_group, work_seq) == 0x100, "layout");
_Static_assert(offsetof(struct mrb_group, work_armed) == 0x108, "layout");
_Static_assert(sizeof(struct mrb_worker_slot) == MRB_WORKER_SIZE, "worker size");
_Static_assert(offsetof(struct mrb_worker_slot, inflight) == 0x28, "layout");
_Static_assert(offsetof(struct mrb_worker_slot, doorbell) == 0x60, "layout");

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
	uint32_t feature_flags; /* must be 0 in format version 2 */
	uint32_t producer_slot_offset;
	uint32_t producer_slot_count;
	/* One more than the highest producer slot ever owned: scans stop here. */
	_Atomic uint32_t producer_slots_used;
	uint8_t reserved0[0x080 - 0x04c];

	/* 0x080: producer position, advanced by CAS to claim space, or by
	 * the sole producer's plain store while it holds the lease below. */
	_Atomic uint64_t producer_position;
	/* 0x088: the sole-producer lease (lease.c): 0, or MRB_LEASE_HELD /
	 * MRB_LEASE_REVOKING of a producer slot and generation. On the
	 * producer position's line: the holder reads it with every claim. */
	_Atomic uint64_t sole_producer;
	uint8_t pad1[MRB_SLOT_SIZE - 16];

	/* 0x100: producers' shared copy of the consumer position, so that a
	 * claim rarely touches the consumer's line. Never ahead of the truth. */
	_Atomic uint64_t consumer_position_cache;
	/* Subscribers that validate their copies (lossy or evictable) and may
	 * be lapped: while non-zero, writers store payloads with atomic words.
	 * On the line producers read anyway. */
	_Atomic uint32_t validating_readers;
	uint8_t pad2[MRB_SLOT_SIZE - 12];

	/* 0x180: consumer position, published by the consumer after reading. */
	_Atomic uint64_t consumer_position;
	uint8_t pad3[MRB_SLOT_SIZE - 8];

	/* 0x200: consumer ownership (pid | nonce << 32, 0 = none), the owner's
	 * identity (struct mrb_identity) and counters, written only by the
	 * owning consumer. */
	_Atomic uint64_t consumer_owner;
	_Atomic uint64_t messages_read;
	_Atomic uint64_t bytes_read;
	_Atomic uint64_t consumer_start_time;
	_Atomic uint64_t consumer_pid_ns;
	uint8_t pad4[MRB_SLOT_SIZE - 40];

	/* 0x280: futex word bumped when data arrives and someone waits. */
	_Atomic uint32_t data_seq;
	_Atomic uint32_t data_waiters;
	uint8_t pad5[MRB_SLOT_SIZE - 8];

	/* 0x300: futex word bumped when space frees and someone waits. */
	_Atomic uint32_t space_seq;
	_Atomic uint32_t space_waiters;
	uint8_t pad6[MRB_SLOT_SIZE - 8];

	/* 0x380: crash recovery counters. */
	_Atomic uint64_t recovered_records;
	_Atomic uint64_t recovered_bytes;
	/* Records of live writers skipped by the opt-in hung-writer timeout,
	 * and how many of them were delivered late after all. */
	_Atomic uint64_t skipped_live;
	_Atomic uint64_t delivered_late;
	uint8_t pad7[MRB_SLOT_SIZE - 32];

	/* 0x400: the consumer's doorbell (a waiter for data in an event
	 * loop); counted in data_waiters while armed. */
	struct mrb_doorbell consumer_doorbell;
	uint8_t pad8[MRB_SLOT_SIZE - MRB_DOORBELL_SIZE];

	/* 0x480: doorbells of writers waiting for space in an event loop
	 * (a free entry is armed by CAS from 0); each armed entry is counted
	 * in space_waiters. */
	struct mrb_doorbell space_doorbells[MRB_SPACE_DOORBELLS];

	/* 0x680 - 0xfff: reserved, zero. */
	uint8_t reserved1[MRB_PRODUCER_SLOT_OFFSET - 0x680];

	/* 0x1000: producer slots. */
	struct mrb_producer_slot producers[MRB_PRODUCER_SLOTS];

	/* 0x9000: how the ring is read (queue or fan-out). */
	struct mrb_reader_table readers;
	uint8_t reserved2[MRB_READER_ENTRY_OFFSET - MRB_READER_TABLE_OFFSET -
	                  sizeof(struct mrb_reader_table)];

	/* 0xa000: reader entries (subscribers). */
	struct mrb_reader_entry entries[MRB_READER_ENTRIES];

	/* 0xe000: worker groups (workers.c). */
	struct mrb_group_table group_table;
	struct mrb_group groups[MRB_GROUPS];
	uint8_t reserved3[MRB_WORKER_OFFSET - MRB_GROUP_OFFSET - MRB_GROUPS * MRB_GROUP_SIZE];
	/* 0xe800: worker slots. */
	struct mrb_worker_slot workers[MRB_WORKERS];
};

_Static_assert(sizeof(struct mrb_producer_slot) == MRB_PRODUCER_SLOT_SIZE, "slot size");
_Static_assert(offsetof(struct mrb_file_header, format_version) == 0x008, "layout");
_Static_assert(offsetof(struct mrb_file_header, capacity) == 0x010, "layout");
_Static_assert(offsetof(struct mrb_file_header, stamp_salt) == 0x020, "layout");
_Static_assert(offsetof(struct mrb_file_header, feature_flags) == 0x03c, "layout");
_Static_assert(offsetof(struct mrb_file_header, producer_slot_offset) == 0x040, "layout");
_Static_assert(offsetof(struct mrb_file_header, producer_slots_used) == 0x048, "layout");
_Static_assert(offsetof(struct mrb_file_header, producer_position) == 0x080, "layout");
_Static_assert(offsetof(struct mrb_file_header, sole_producer) == 0x088, "layout");
_Static_assert(offsetof(struct mrb_file_header, consumer_position_cache) == 0x100, "layout");
_Static_assert(offsetof(struct mrb_file_header, validating_readers) == 0x108, "layout");
_Static_assert(offsetof(struct mrb_file_header, consumer_position) == 0x180, "layout");
_Static_assert(offsetof(struct mrb_file_header, consumer_owner) == 0x200, "layout");
_Static_assert(offsetof(struct mrb_file_header, consumer_start_time) == 0x218, "layout");
_Static_assert(offsetof(struct mrb_file_header, data_seq) == 0x280, "layout");
_Static_assert(offsetof(struct mrb_file_header, space_seq) == 0x300, "layout");
_Static_assert(offsetof(struct mrb_file_header, recovered_records) == 0x380, "layout");
_Static_assert(offsetof(struct mrb_file_header, skipped_live) == 0x390, "layout");
_Static_assert(sizeof(struct mrb_doorbell) == MRB_DOORBELL_SIZE, "doorbell size");
_Static_assert(offsetof(struct mrb_file_header, consumer_doorbell) == 0x400, "layout");
_Static_assert(offsetof(struct mrb_file_header, space_doorbells) == 0x480, "layout");
_Static_assert(offsetof(struct mrb_file_header, reserved1) == 0x680, "layout");
_Static_assert(offsetof(struct mrb_file_header, producers) == MRB_PRODUCER_SLOT_OFFSET, "layout");
_Static_assert(offsetof(struct mrb_producer_slot, identity_gen) == 0x18, "layout");
_Static_assert(offsetof(struct mrb_producer_slot, space_waiting) == 0x1c, "layout");
_Static_assert(offsetof(struct mrb_producer_slot, full) == 0x20, "layout");
_Static_assert(offsetof(struct mrb_producer_slot, released_at) == 0x28, "layout");
_Static_assert(offsetof(struct mrb_producer_slot, lanes) == 0x40, "layout");
_Static_assert(offsetof(struct mrb_file_header, readers) == MRB_READER_TABLE_OFFSET, "layout");
_Static_assert(offsetof(struct mrb_file_header, entries) == MRB_READER_ENTRY_OFFSET, "layout");
_Static_assert(offsetof(struct mrb_file_header, group_table) == MRB_GROUP_TABLE_OFFSET, "layout");
_Static_assert(offsetof(struct mrb_file_header, groups) == MRB_GROUP_OFFSET, "layout");
_Static_assert(offsetof(struct mrb_file_header, workers) == MRB_WORKER_OFFSET, "layout");
_Static_assert(sizeof(struct mrb_file_header) == MRB_HEADER_SIZE, "header size");

/*
 * Record header, 16 bytes at a 16-byte aligned ring offset:
 *   control: bits 0-39 payload length, bits 40-46 writer's producer slot,
 *            bits 47-60 the slot's generation (low 14 bits) when the record
 *            was written, bit 61 reserved (0), bit 62 PAD, bit 63 BUSY
 *            (reserved, not yet committed)
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
#define MRB_CONTROL_SLOT_SHIFT  40
#define MRB_CONTROL_SLOT_MASK   ((UINT64_C(1) << 7) - 1)
#define MRB_CONTROL_GEN_SHIFT   47
#define MRB_CONTROL_GEN_MASK    ((UINT64_C(1) << 14) - 1)
#define MRB_CONTROL_PAD         (UINT64_C(1) << 62)
#define MRB_CONTROL_BUSY        (UINT64_C(1) << 63)

/* The writer field of a control word: slot and generation, pre-shifted. */
static inline uint64_t writer_bits_of_slot(uint32_t slot, uint32_t generation)
{
	return ((uint64_t)(slot & MRB_CONTROL_SLOT_MASK) << MRB_CONTROL_SLOT_SHIFT) |
	       ((uint64_t)(generation & MRB_CONTROL_GEN_MASK) << MRB_CONTROL_GEN_SHIFT);
}

static inline uint64_t control_word(uint64_t length, uint64_t writer_bits, uint64_t flags)
{
	return (length & MRB_CONTROL_LENGTH_MASK) | writer_bits | flags;
}

static inline uint64_t control_length(uint64_t control)
{
	return control & MRB_CONTROL_LENGTH_MASK;
}

static inline uint32_t control_slot(uint64_t control)
{
	return (uint32_t)((control >> MRB_CONTROL_SLOT_SHIFT) & MRB_CONTROL_SLOT_MASK);
}

static inline uint32_t control_generation(uint64_t control)
{
	return (uint32_t)((control >> MRB_CONTROL_GEN_SHIFT) & MRB_CONTROL_GEN_MASK);
}

/* Space a record of `length` payload bytes takes, header and alignment
 * included. length is at most 2^40, so this cannot overflow. */
static inline uint64_t record_span(uint64_t length)
{
	return (MRB_RECORD_HEADER_SIZE + length + MRB_RECORD_ALIGNMENT - 1) &
	       ~(uint64_t)(MRB_RECORD_ALIGNMENT - 1);
}

#endif /* MRB_LAYOUT_H */
