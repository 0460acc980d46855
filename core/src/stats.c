/* SPDX-License-Identifier: MIT */
/* Read-only views of a ring: counters and a walk over the unread records.
 * Neither attaches as consumer, so both work beside a live consumer. */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <string.h>

#include "record.h"

/* The pid of the handle that wrote a record, if its slot still belongs to
 * that handle (else 0: closed, or died and taken over). */
static uint32_t writer_pid(struct mrb_handle *h, uint64_t control)
{
	uint32_t slot = control_slot(control);
	if (slot >= MRB_PRODUCER_SLOTS)
		return 0;
	uint64_t owner =
	    atomic_load_explicit(&h->header->producers[slot].owner, memory_order_relaxed);
	if ((MRB_SLOT_GEN(owner) & MRB_CONTROL_GEN_MASK) != control_generation(control))
		return 0;
	return MRB_SLOT_PID(owner);
}

/*
 * Walks the records in [pos, tail) as they are now. Stops at the first
 * claim whose header is not written yet (its length is unknown), reporting
 * it as UNWRITTEN. Returns the number of records visited or MRB_ECORRUPT.
 */
static int64_t walk(struct mrb_handle *h, uint64_t pos, uint64_t tail, mrb_record_visitor visit,
                    void *ctx, size_t max_records)
{
	int64_t visited = 0;
	while (pos != tail && (max_records == 0 || (size_t)visited < max_records)) {
		uint64_t offset = pos & h->mask;
		uint64_t control;
		struct mrb_record_info info = {.position = pos};
		if (!record_observe(h, pos, &control)) {
			info.state = MRB_RECORD_UNWRITTEN;
			visited++;
			visit(ctx, &info);
			break;
		}
		uint64_t length = control_length(control);
		uint64_t size = record_span(length);
		if (size > tail - pos || size > h->capacity - offset)
			return MRB_ECORRUPT;
		info.length = length;
		info.writer_pid = writer_pid(h, control);
		info.state = (control & MRB_CONTROL_BUSY)  ? MRB_RECORD_BUSY
		             : (control & MRB_CONTROL_PAD) ? MRB_RECORD_PADDING
		                                           : MRB_RECORD_COMMITTED;
		info.data = h->data + offset + MRB_RECORD_HEADER_SIZE;
		visited++;
		if (visit(ctx, &info) != 0)
			break;
		pos += size;
	}
	return visited;
}

struct unread {
	uint64_t messages;
	uint64_t bytes;
};

static int count_unread(void *ctx, const struct mrb_record_info *rec)
{
	struct unread *u = ctx;
	if (rec->state == MRB_RECORD_COMMITTED) {
		u->messages++;
		u->bytes += rec->length;
	}
	return 0;
}

/* The holder of the sole-producer lease, from the shared word: only a HELD
 * word naming a slot in range whose current owner has the lease's generation
 * and a valid pid; anything else (none, REVOKING, garbage, a stale
 * generation) is reported as none. */
static void sole_producer(struct mrb_file_header *hdr, struct mrb_stats *stats)
{
	stats->sole_producer_pid = 0;
	stats->sole_producer_slot = UINT32_MAX;
	uint64_t lease = atomic_load_explicit(&hdr->sole_producer, memory_order_relaxed);
	uint32_t slot = lease_slot(lease);
	uint32_t generation = (uint32_t)(lease >> 32);
	if ((lease & MRB_LEASE_STATE) != MRB_LEASE_HELD ||
	    lease != lease_word(slot, generation, MRB_LEASE_HELD) || slot >= MRB_PRODUCER_SLOTS)
		return;
	uint64_t owner = atomic_load_explicit(&hdr->producers[slot].owner, memory_order_relaxed);
	uint32_t pid = MRB_SLOT_PID(owner);
	if (pid == 0 || pid > MRB_MAX_PID || MRB_SLOT_GEN(owner) != generation)
		return;
	stats->sole_producer_pid = (int32_t)pid;
	stats->sole_producer_slot = slot;
}

int mrb_stats(struct mrb_ring *ring, struct mrb_stats *stats)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || stats == NULL)
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_STATE_CALL);
	if (rc != 0)
		return rc;
	struct mrb_file_header *hdr = h->header;
	memset(stats, 0, sizeof(*stats));
	stats->format_version = atomic_load_explicit(&hdr->format_version, memory_order_relaxed);
	stats->capacity = h->capacity;
	stats->max_message_size = h->max_message_size;
	/* The consumer stores its counters before the position they belong
	 * to; read the position first so the counters are at least as new. */
	uint64_t head, tail;
	int consistent = read_positions(hdr, h->capacity, &head, &tail);
	stats->consumer_position = head;
	stats->producer_position = tail;
	stats->used_bytes = tail - head <= h->capacity ? tail - head : h->capacity;
	stats->messages_read = atomic_load_explicit(&hdr->messages_read, memory_order_relaxed);
	stats->bytes_read = atomic_load_explicit(&hdr->bytes_read, memory_order_relaxed);
	/* Written = read + committed and unread: producers keep no per-message
	 * counters, which would cost every write two atomic additions. */
	struct unread unread = {0, 0};
	if (consistent == 0 && walk(h, head, tail, count_unread, &unread, 0) < 0)
		unread = (struct unread){0, 0};
	stats->messages_written = stats->messages_read + unread.messages;
	stats->bytes_written = stats->bytes_read + unread.bytes;
	for (uint32_t i = 0; i < MRB_PRODUCER_SLOTS; i++) {
		struct mrb_producer_slot *slot = &hdr->producers[i];
		stats->full_count += atomic_load_explicit(&slot->full, memory_order_relaxed);
		uint64_t owner = atomic_load_explicit(&slot->owner, memory_order_relaxed);
		if (MRB_SLOT_PID(owner) != 0) {
			stats->producers++;
			uint64_t seen;
			stats->producers_alive +=
			    !mrbi_slot_writer_dead(h, i, MRBI_ANY_GENERATION, &seen);
		}
	}
	stats->recovered_records =
	    atomic_load_explicit(&hdr->recovered_records, memory_order_relaxed);
	stats->recovered_bytes = atomic_load_explicit(&hdr->recovered_bytes, memory_order_relaxed);
	uint64_t owner = atomic_load_explicit(&hdr->consumer_owner, memory_order_relaxed);
	uint32_t consumer_pid = (uint32_t)owner;
	stats->consumer_pid = consumer_pid <= MRB_MAX_PID ? (int32_t)consumer_pid : -1;
	struct mrb_identity consumer = {
	    .pid = consumer_pid,
	    .start_time = atomic_load_explicit(&hdr->consumer_start_time, memory_order_relaxed),
	    .pid_ns = atomic_load_explicit(&hdr->consumer_pid_ns, memory_order_relaxed)};
	stats->consumer_alive = owner != 0 && mrbi_liveness(&consumer) == MRBI_ALIVE;
	stats->skipped_live = atomic_load_explicit(&hdr->skipped_live, memory_order_relaxed);
	stats->delivered_late = atomic_load_explicit(&hdr->delivered_late, memory_order_relaxed);
	stats->creator_pid = hdr->creator_pid;
	stats->created_unix_ns = hdr->created_unix_ns;
	stats->salt = hdr->stamp_salt;
	sole_producer(hdr, stats);
	role_leave(h, MRB_STATE_CALL);
	return 0;
}

int64_t mrb_inspect(struct mrb_ring *ring, mrb_record_visitor visit, void *ctx, size_t max_records)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || visit == NULL)
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_STATE_CALL);
	if (rc != 0)
		return rc;
	uint64_t pos, tail;
	int64_t result = read_positions(h->header, h->capacity, &pos, &tail);
	if (result == 0) {
		atomic_store_explicit(&h->callback_thread, thread_self(), memory_order_relaxed);
		result = walk(h, pos, tail, visit, ctx, max_records);
		atomic_store_explicit(&h->callback_thread, 0, memory_order_relaxed);
	}
	role_leave(h, MRB_STATE_CALL);
	return result;
}
