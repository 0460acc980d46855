/* SPDX-License-Identifier: MIT */
/* Read-only views of a ring: counters and a walk over the unread records.
 * Neither attaches as consumer, so both work beside a live consumer. */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <string.h>

#include "handle.h"

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
		const struct mrb_record_header *rec =
		    (const struct mrb_record_header *)(const void *)(h->data + offset);
		/* Pairs with the release store of the stamp in write_header. */
		uint64_t stamp = atomic_load_explicit(&rec->stamp, memory_order_acquire);
		uint64_t control = atomic_load_explicit(&rec->control, memory_order_acquire);
		struct mrb_record_info info = {.position = pos};
		if (stamp != (pos ^ h->salt)) {
			info.state = MRB_RECORD_UNWRITTEN;
			visited++;
			visit(ctx, &info);
			break;
		}
		uint64_t length = mrb_control_length(control);
		uint64_t size = mrb_record_size(length);
		if (size > tail - pos || size > h->capacity - offset)
			return MRB_ECORRUPT;
		info.length = length;
		info.writer_pid = mrb_control_pid(control);
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

int mrb_stats(struct mrb_ring *ring, struct mrb_stats *stats)
{
	struct mrb_handle *h = mrb_handle_of(ring);
	if (ring == NULL || stats == NULL)
		return MRB_EINVAL;
	int rc = mrb_enter(h, MRB_STATE_CALL);
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
	int consistent = mrb_read_positions(hdr, h->capacity, &head, &tail);
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
	for (int i = 0; i < MRB_PRODUCER_SLOTS; i++) {
		struct mrb_producer_slot *slot = &hdr->producers[i];
		stats->full_count += atomic_load_explicit(&slot->full, memory_order_relaxed);
		uint32_t owner = atomic_load_explicit(&slot->owner_pid, memory_order_relaxed);
		if (i != MRB_SHARED_PRODUCER_SLOT && owner != 0) {
			stats->producers++;
			stats->producers_alive += mrbi_process_alive(owner);
		}
	}
	stats->recovered_records =
	    atomic_load_explicit(&hdr->recovered_records, memory_order_relaxed);
	stats->recovered_bytes = atomic_load_explicit(&hdr->recovered_bytes, memory_order_relaxed);
	uint64_t owner = atomic_load_explicit(&hdr->consumer_owner, memory_order_relaxed);
	uint32_t consumer_pid = (uint32_t)owner;
	stats->consumer_pid = consumer_pid <= MRB_CONTROL_PID_MASK ? (int32_t)consumer_pid : -1;
	stats->consumer_alive = owner != 0 && mrbi_process_alive(consumer_pid);
	stats->creator_pid = hdr->creator_pid;
	stats->created_unix_ns = hdr->created_unix_ns;
	mrb_leave(h, MRB_STATE_CALL);
	return 0;
}

int64_t mrb_inspect(struct mrb_ring *ring, mrb_record_visitor visit, void *ctx, size_t max_records)
{
	struct mrb_handle *h = mrb_handle_of(ring);
	if (ring == NULL || visit == NULL)
		return MRB_EINVAL;
	int rc = mrb_enter(h, MRB_STATE_CALL);
	if (rc != 0)
		return rc;
	uint64_t pos, tail;
	int64_t result = mrb_read_positions(h->header, h->capacity, &pos, &tail);
	if (result == 0)
		result = walk(h, pos, tail, visit, ctx, max_records);
	mrb_leave(h, MRB_STATE_CALL);
	return result;
}
