/* SPDX-License-Identifier: MIT */
/*
 * The physical reference mrb is measured against: a minimal single-producer,
 * single-consumer byte ring over shared memory with only what moving
 * variable-length messages needs - length-prefixed records (8-byte header,
 * 8-byte alignment), a padding marker at the wrap point, and each side
 * caching the other's position. No multi-producer claim, no commit flags, no
 * counters, no validation, no recovery.
 *
 * Each side publishes its position either after every message
 * (publish_every = 1) or once it has moved publish_every bytes, and always
 * before it waits (ring full or empty), so the two sides never wait on each
 * other's unpublished progress.
 */
#ifndef MRB_TOOLS_BENCH_MINIMAL_RING_H
#define MRB_TOOLS_BENCH_MINIMAL_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MINIMAL_RING_HEADER  256u
#define MINIMAL_RING_PADDING UINT64_MAX

struct minimal_ring_positions {
	_Alignas(128) _Atomic uint64_t write_pos;
	_Alignas(128) _Atomic uint64_t read_pos;
};

_Static_assert(sizeof(struct minimal_ring_positions) <= MINIMAL_RING_HEADER,
               "positions fit before the data");

/* One side's private view: the shared positions plus its own cursor. */
struct minimal_ring_side {
	struct minimal_ring_positions *shared;
	unsigned char *data;
	uint64_t capacity; /* power of two */
	uint64_t pos;
	uint64_t published;
	uint64_t peer_cached;
	uint64_t publish_every;
};

/* `mapping` holds MINIMAL_RING_HEADER + capacity zeroed bytes. */
void minimal_ring_attach(struct minimal_ring_side *side, void *mapping, uint64_t capacity,
                         uint64_t publish_every);

static inline uint64_t minimal_ring_record_size(size_t len)
{
	return (8 + (uint64_t)len + 7) & ~(uint64_t)7;
}

static inline void minimal_ring_publish_write(struct minimal_ring_side *p)
{
	if (p->pos != p->published) {
		atomic_store_explicit(&p->shared->write_pos, p->pos, memory_order_release);
		p->published = p->pos;
	}
}

/* Returns 0, or -1 when the message does not fit now. */
static inline int minimal_ring_write(struct minimal_ring_side *p, const void *msg, size_t len)
{
	uint64_t offset = p->pos & (p->capacity - 1);
	uint64_t to_end = p->capacity - offset;
	uint64_t record = minimal_ring_record_size(len);
	uint64_t needed = record <= to_end ? record : to_end + record;
	if (p->pos + needed - p->peer_cached > p->capacity) {
		p->peer_cached = atomic_load_explicit(&p->shared->read_pos, memory_order_acquire);
		if (p->pos + needed - p->peer_cached > p->capacity) {
			minimal_ring_publish_write(p);
			return -1;
		}
	}
	if (record > to_end) {
		uint64_t padding = MINIMAL_RING_PADDING;
		memcpy(p->data + offset, &padding, sizeof(padding));
		p->pos += to_end;
		offset = 0;
	}
	uint64_t length = len;
	memcpy(p->data + offset, &length, sizeof(length));
	memcpy(p->data + offset + 8, msg, len);
	p->pos += record;
	if (p->pos - p->published >= p->publish_every) {
		minimal_ring_publish_write(p);
	}
	return 0;
}

static inline void minimal_ring_publish_read(struct minimal_ring_side *c)
{
	if (c->pos != c->published) {
		atomic_store_explicit(&c->shared->read_pos, c->pos, memory_order_release);
		c->published = c->pos;
	}
}

/* The next message in place, or NULL when the ring is empty. */
static inline const void *minimal_ring_peek(struct minimal_ring_side *c, size_t *len)
{
	for (;;) {
		if (c->pos == c->peer_cached) {
			c->peer_cached =
			    atomic_load_explicit(&c->shared->write_pos, memory_order_acquire);
			if (c->pos == c->peer_cached) {
				minimal_ring_publish_read(c);
				return NULL;
			}
		}
		uint64_t offset = c->pos & (c->capacity - 1);
		uint64_t length;
		memcpy(&length, c->data + offset, sizeof(length));
		if (length == MINIMAL_RING_PADDING) {
			c->pos += c->capacity - offset;
			continue;
		}
		*len = (size_t)length;
		return c->data + offset + 8;
	}
}

/* Consumes the message returned by minimal_ring_peek. */
static inline void minimal_ring_release(struct minimal_ring_side *c, size_t len)
{
	c->pos += minimal_ring_record_size(len);
	if (c->pos - c->published >= c->publish_every) {
		minimal_ring_publish_read(c);
	}
}

#endif /* MRB_TOOLS_BENCH_MINIMAL_RING_H */
