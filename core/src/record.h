/* SPDX-License-Identifier: MIT */
/*
 * The record protocol in one place: where a record lives, how a writer
 * publishes its header and how a reader observes one. Every other file goes
 * through these, so each ordering is written (and argued) once.
 */
#ifndef MRB_RECORD_H
#define MRB_RECORD_H

#include "handle.h"

static inline struct mrb_record_header *record_at(const struct mrb_handle *h, uint64_t position)
{
	return (struct mrb_record_header *)(void *)(h->data + (position & h->mask));
}

static inline uint8_t *record_payload(const struct mrb_handle *h, uint64_t position)
{
	return h->data + (position & h->mask) + MRB_RECORD_HEADER_SIZE;
}

/* Control first, stamp second: the release on the stamp makes the control
 * value (and every store before it) visible to a reader whose acquire load
 * in record_observe sees the stamp. */
static inline void record_publish(const struct mrb_handle *h, uint64_t position, uint64_t control)
{
	struct mrb_record_header *rec = record_at(h, position);
	atomic_store_explicit(&rec->control, control, memory_order_relaxed);
	atomic_store_explicit(&rec->stamp, position ^ h->salt, memory_order_release);
}

/*
 * Reads the header at `position`. Returns false if no header was written
 * there for this position (a stale or zeroed stamp). The stamp load
 * (acquire) pairs with record_publish; the control load (acquire) pairs with
 * the commit's release store in producer.c, so a reader that sees BUSY clear
 * sees the payload.
 */
static inline bool record_observe(const struct mrb_handle *h, uint64_t position, uint64_t *control)
{
	const struct mrb_record_header *rec = record_at(h, position);
	uint64_t stamp = atomic_load_explicit(&rec->stamp, memory_order_acquire);
	*control = atomic_load_explicit(&rec->control, memory_order_acquire);
	return stamp == (position ^ h->salt);
}

/* The record's size if its header is plausible for a record at `position`
 * ending at or before `limit`: it stays inside the data region; 0 if not.
 * The control word is untrusted. */
static inline uint64_t record_checked_size(const struct mrb_handle *h, uint64_t position,
                                           uint64_t control, uint64_t limit)
{
	uint64_t size = record_span(control_length(control));
	if (size > h->capacity - (position & h->mask) || size > limit - position)
		return 0;
	return size;
}

/* Fills [from, to) with padding records, one on each side of the end of the
 * data region, later piece first, so no padding record ever crosses the end
 * and a reader never sees the first piece before the second. Only the
 * consumer pads space it does not own (recover.c), so plain stores
 * suffice. */
static inline void record_pad_range(const struct mrb_handle *h, uint64_t from, uint64_t to)
{
	uint64_t lap_end = from + (h->capacity - (from & h->mask));
	if (to > lap_end) {
		record_publish(
		    h, lap_end,
		    control_word(to - lap_end - MRB_RECORD_HEADER_SIZE, 0, MRB_CONTROL_PAD));
		to = lap_end;
	}
	record_publish(h, from,
	               control_word(to - from - MRB_RECORD_HEADER_SIZE, 0, MRB_CONTROL_PAD));
}

#endif /* MRB_RECORD_H */
