/* SPDX-License-Identifier: MIT */
/*
 * Calls shaped for bindings (declared at the end of mrb/mrb.h): what the Go
 * and the Python binding would otherwise each write in their own C glue. They
 * use only the public API, so they need nothing from handle.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mrb/mrb.h"

/* Messages per mrb_write_batch call (4 KiB of iovecs on the stack), as the
 * Python binding's own helper had: a consumer in another process then sees
 * a batch in large steps (with 64, Python's batched 64-byte IPC benchmark
 * measured lower, on a busy machine). */
#define MRB_PACKED_CHUNK 256

int64_t mrb_write_packed(struct mrb_ring *ring, const void *data, const size_t *lens, size_t count)
{
	struct mrb_iovec iov[MRB_PACKED_CHUNK];
	const unsigned char *next = data;
	size_t done = 0;
	while (done < count) {
		size_t n = count - done < MRB_PACKED_CHUNK ? count - done : MRB_PACKED_CHUNK;
		const unsigned char *p = next;
		for (size_t i = 0; i < n; i++) {
			iov[i].data = p;
			iov[i].len = lens[done + i];
			p += lens[done + i];
		}
		int64_t rc = mrb_write_batch(ring, iov, n);
		if (rc < 0)
			return done > 0 ? (int64_t)done : rc;
		for (int64_t i = 0; i < rc; i++)
			next += lens[done + (size_t)i];
		done += (size_t)rc;
		if ((size_t)rc < n)
			break;
	}
	return (int64_t)done;
}

/* A read call's result as mrb_read_len reports it. */
static int64_t length_or_code(int rc, size_t len)
{
	return rc == 0 || rc == MRB_EBUFFER_TOO_SMALL ? (int64_t)len : rc;
}

int64_t mrb_read_len(struct mrb_ring *ring, void *buf, size_t buf_size)
{
	size_t len = 0;
	int rc = mrb_read(ring, buf, buf_size, &len);
	return length_or_code(rc, len);
}

int64_t mrb_read_len_wait(struct mrb_ring *ring, void *buf, size_t buf_size, int64_t timeout_ns)
{
	size_t len = 0;
	int rc = mrb_read_wait(ring, buf, buf_size, &len, timeout_ns);
	return length_or_code(rc, len);
}
