/* SPDX-License-Identifier: MIT */
/* sched_setaffinity, F_GETPIPE_SZ, and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "minimal_ring.h"

void minimal_ring_attach(struct minimal_ring_side *side, void *mapping, uint64_t capacity,
                         uint64_t publish_every)
{
	side->shared = mapping;
	side->data = (unsigned char *)mapping + MINIMAL_RING_HEADER;
	side->capacity = capacity;
	side->pos = 0;
	side->published = 0;
	side->peer_cached = 0;
	side->publish_every = publish_every;
}
