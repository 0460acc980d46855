/* SPDX-License-Identifier: MIT */
/*
 * C glue of the Python binding (mmap_ringbuffer._mrb_cffi), over the core's
 * calls shaped for bindings (mrb_write_packed, mrb_read_len). ffi_build.py
 * declares the same functions to cffi (its CDEF); each argument cffi converts
 * costs tens of nanoseconds, as much as the core's work on a small message,
 * so these take few arguments and plain char pointers.
 */
#ifndef MRB_PY_H
#define MRB_PY_H

#include <stddef.h>
#include <stdint.h>

#include "mrb/mrb.h"

/* Writes count messages laid end to end in joined (mrb_write_packed). */
int64_t mrb_py_write_joined(struct mrb_ring *ring, const char *joined, const size_t *lengths,
                            size_t count);

/* mrb_read_many, with the lengths turned into end offsets in buf (the Python
 * side slices there). Errors, and ends[0] on MRB_EBUFFER_TOO_SMALL, as
 * mrb_read_many. */
int64_t mrb_py_read_many(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *ends,
                         size_t max_count);

/* A thread's read destination (ring, buffer, its size, the last length),
 * passed as one pointer. */
struct mrb_py_reader {
	struct mrb_ring *ring;
	char *buf;
	size_t size;
	size_t len;
};

/* The reads of read(), read_into() and their waits, into the reader's own
 * buffer (mrb_py_read, mrb_py_read_wait) or the caller's (mrb_py_read_to).
 * The result is the message length or a negative core code; reader->len is
 * the length, or the size needed with MRB_EBUFFER_TOO_SMALL. */
int64_t mrb_py_read(struct mrb_py_reader *reader);
int64_t mrb_py_read_wait(struct mrb_py_reader *reader, int64_t timeout_ns);
int64_t mrb_py_read_to(struct mrb_py_reader *reader, char *buf, size_t size);

/* mrb_write taking const char *: cffi passes a bytes object to it as the
 * object's own storage, with no type dispatch. */
int mrb_py_write(struct mrb_ring *ring, const char *data, size_t len);

#endif
