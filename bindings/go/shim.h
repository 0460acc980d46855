// SPDX-License-Identifier: MIT
// C helpers of the Go binding (not a copy of the core): the core's calls
// with byte pointers (see below), over the calls shaped for bindings
// (mrb_read_len, mrb_write_packed: no out-parameter, so Go passes no pointer
// to its own stack variables, which would make them escape and allocate).
#ifndef MRB_GO_SHIM_H
#define MRB_GO_SHIM_H

#include <stdint.h>
#include <stdlib.h>

#include "mrb.h"

// Byte pointers rather than void *: cgo checks every unsafe.Pointer argument
// for Go pointers on each call (cgocheck), which costs as much as the core's
// work for a small message; a pointer to bytes cannot hold Go pointers, so it
// is not checked.

static inline int gomrb_write(struct mrb_ring *ring, const unsigned char *data, size_t len)
{
	return mrb_write(ring, data, len);
}

static inline int gomrb_write_wait(struct mrb_ring *ring, const unsigned char *data, size_t len,
                                   int64_t timeout_ns)
{
	return mrb_write_wait(ring, data, len, timeout_ns);
}

// A read's result is the message length, greater than cap if the message
// does not fit (then nothing was consumed), or a negative core code.
static inline int64_t gomrb_read(struct mrb_ring *ring, unsigned char *buf, size_t cap)
{
	return mrb_read_len(ring, buf, cap);
}

static inline int64_t gomrb_read_wait(struct mrb_ring *ring, unsigned char *buf, size_t cap,
                                      int64_t timeout_ns)
{
	return mrb_read_len_wait(ring, buf, cap, timeout_ns);
}

static inline int64_t gomrb_read_many(struct mrb_ring *ring, unsigned char *buf, size_t cap,
                                      size_t *lengths, size_t max_count)
{
	return mrb_read_many(ring, buf, cap, lengths, max_count);
}

static inline int64_t gomrb_read_many_at(struct mrb_ring *ring, unsigned char *buf, size_t cap,
                                         size_t *lengths, uint64_t *positions, size_t max_count)
{
	return mrb_read_many_at(ring, buf, cap, lengths, positions, max_count);
}

// Writes count messages stored back to back at data (lengths in lens).
static inline int64_t gomrb_write_packed(struct mrb_ring *ring, const unsigned char *data,
                                         const size_t *lens, size_t count)
{
	return mrb_write_packed(ring, data, lens, count);
}

#endif
