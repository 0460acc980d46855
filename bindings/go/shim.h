// SPDX-License-Identifier: MIT
// C helpers of the Go binding (not a copy of the core). They keep the core's
// out-parameters on the C stack, so that Go passes no pointer to its own
// stack variables (which would make them escape and allocate), and they let
// one crossing from Go into C cover a whole batch.
#ifndef MRB_GO_SHIM_H
#define MRB_GO_SHIM_H

#include <stdint.h>
#include <stdlib.h>

#include "mrb.h"

// A read helper's result is a message length (>= 0), a negative core code,
// or, when the destination is too small, GOMRB_TOO_SMALL + the size needed.
// Sizes are below 2^40 and codes above -2^31, so the ranges never meet.
#define GOMRB_TOO_SMALL INT64_MIN

static inline int64_t gomrb_read_result(int rc, size_t len)
{
	if (rc == 0)
		return (int64_t)len;
	if (rc == MRB_EBUFFER_TOO_SMALL)
		return GOMRB_TOO_SMALL + (int64_t)len;
	return rc;
}

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

static inline int64_t gomrb_read(struct mrb_ring *ring, unsigned char *buf, size_t cap)
{
	size_t len = 0;
	int rc = mrb_read(ring, buf, cap, &len);
	return gomrb_read_result(rc, len);
}

static inline int64_t gomrb_read_wait(struct mrb_ring *ring, unsigned char *buf, size_t cap,
                                      int64_t timeout_ns)
{
	size_t len = 0;
	int rc = mrb_read_wait(ring, buf, cap, &len, timeout_ns);
	return gomrb_read_result(rc, len);
}

static inline int64_t gomrb_read_many(struct mrb_ring *ring, unsigned char *buf, size_t cap,
                                      size_t *lengths, size_t max_count)
{
	return mrb_read_many(ring, buf, cap, lengths, max_count);
}

// Writes count messages stored back to back at data (lengths in lens), in
// chunks of mrb_write_batch calls. Returns how many were written, or the
// first message's error if none was.
static inline int64_t gomrb_write_packed(struct mrb_ring *ring, const unsigned char *data,
                                         const size_t *lens, size_t count)
{
	enum { chunk = 64 };
	struct mrb_iovec iov[chunk];
	size_t done = 0;
	while (done < count) {
		size_t n = count - done < chunk ? count - done : chunk;
		const unsigned char *p = data;
		for (size_t i = 0; i < n; i++) {
			iov[i].data = p;
			iov[i].len = lens[done + i];
			p += lens[done + i];
		}
		int64_t rc = mrb_write_batch(ring, iov, n);
		if (rc < 0)
			return done > 0 ? (int64_t)done : rc;
		for (int64_t i = 0; i < rc; i++)
			data += lens[done + (size_t)i];
		done += (size_t)rc;
		if ((size_t)rc < n)
			break;
	}
	return (int64_t)done;
}

#endif
