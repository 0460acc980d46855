/* SPDX-License-Identifier: MIT */
/* C glue of the Python binding: see mrb_py.h. */
#include "mrb_py.h"

int64_t mrb_py_write_joined(struct mrb_ring *ring, const char *joined, const size_t *lengths,
                            size_t count)
{
	return mrb_write_packed(ring, joined, lengths, count);
}

int64_t mrb_py_read_many(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *ends,
                         size_t max_count)
{
	int64_t rc = mrb_read_many(ring, buf, buf_size, ends, max_count);
	for (int64_t i = 1; i < rc; i++)
		ends[i] += ends[i - 1];
	return rc;
}

/* An mrb_read_len result into size bytes, in the convention of mrb_py_read. */
static int64_t reader_result(struct mrb_py_reader *reader, int64_t n, size_t size)
{
	if (n < 0)
		return n;
	reader->len = (size_t)n;
	return (size_t)n > size ? MRB_EBUFFER_TOO_SMALL : n;
}

int64_t mrb_py_read(struct mrb_py_reader *reader)
{
	return reader_result(reader, mrb_read_len(reader->ring, reader->buf, reader->size),
	                     reader->size);
}

int64_t mrb_py_read_wait(struct mrb_py_reader *reader, int64_t timeout_ns)
{
	int64_t n = mrb_read_len_wait(reader->ring, reader->buf, reader->size, timeout_ns);
	return reader_result(reader, n, reader->size);
}

int64_t mrb_py_read_to(struct mrb_py_reader *reader, char *buf, size_t size)
{
	return reader_result(reader, mrb_read_len(reader->ring, buf, size), size);
}

int mrb_py_write(struct mrb_ring *ring, const char *data, size_t len)
{
	return mrb_write(ring, data, len);
}
