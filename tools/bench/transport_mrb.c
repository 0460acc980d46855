/* SPDX-License-Identifier: MIT */
/* sched_setaffinity, F_GETPIPE_SZ, and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* mrb itself, through its public API only. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_os.h"
#include "bench_transports.h"
#include "mrb/mrb.h"

static int mrb_setup(struct bench_cell *cell)
{
	snprintf(cell->path, sizeof(cell->path), "%s/mrb-bench-%d.ring", cell->dir, (int)getpid());
	struct mrb_ring ring;
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE, .mode = 0600};
	int rc = mrb_create(&ring, cell->path, cell->ring_bytes, &opts);
	if (rc != 0) {
		snprintf(cell->error, sizeof(cell->error), "mrb_create(%s): %s", cell->path,
		         mrb_strerror(rc));
		return -1;
	}
	if (mrb_max_message_size(&ring) < cell->message_size) {
		snprintf(cell->error, sizeof(cell->error),
		         "ring of %llu bytes accepts messages up to %llu bytes",
		         (unsigned long long)cell->ring_bytes,
		         (unsigned long long)mrb_max_message_size(&ring));
		mrb_close(&ring);
		unlink(cell->path);
		return -1;
	}
	mrb_close(&ring);
	return 0;
}

static void mrb_teardown(struct bench_cell *cell)
{
	unlink(cell->path);
}

static int open_ring(struct bench_cell *cell, struct mrb_ring *ring,
                     struct bench_party_result *result)
{
	int rc = mrb_open(ring, cell->path, 0);
	if (rc != 0) {
		return bench_fail(result, "mrb_open: %s", mrb_strerror(rc));
	}
	return 0;
}

static int write_produce(struct bench_cell *cell, int producer)
{
	struct bench_party_result *result = &cell->control->producer[producer].result;
	struct mrb_ring ring;
	if (open_ring(cell, &ring, result) != 0) {
		return -1;
	}
	unsigned char *msg = cell->body.bytes;
	size_t size = cell->message_size;
	uint64_t seq = 0, sum = 0;
	const uint64_t clock_mask = bench_clock_check_mask(size);
	int64_t deadline = bench_wait_for_start(cell->control);
	for (;;) {
		/* At least one message: a producer descheduled past the
		 * deadline on a loaded machine still proves its path. */
		if (seq != 0 && (seq & clock_mask) == 0 && bench_now_ns() >= deadline) {
			break;
		}
		uint64_t stamp = bench_stamp(producer, seq);
		bench_put_stamp(msg, stamp);
		int rc;
		for (unsigned spins = 1; (rc = mrb_write(&ring, msg, size)) == MRB_EFULL; spins++) {
			if (bench_now_ns() >= deadline) {
				goto done;
			}
			bench_full_pause(spins);
		}
		if (rc != 0) {
			bench_fail(result, "mrb_write: %s", mrb_strerror(rc));
			break;
		}
		sum += bench_message_sum(&cell->body, stamp);
		seq++;
	}
done:
	bench_producer_finish(cell, producer, seq, sum);
	mrb_close(&ring);
	return result->failed ? -1 : 0;
}

static int write_batch_produce(struct bench_cell *cell, int producer)
{
	struct bench_party_result *result = &cell->control->producer[producer].result;
	size_t size = cell->message_size;
	size_t batch = BENCH_BATCH_BYTES / size > 0 ? BENCH_BATCH_BYTES / size : 1;
	unsigned char *msgs = aligned_alloc(64, (batch * size + 63) & ~(size_t)63);
	struct mrb_iovec *iov = calloc(batch, sizeof(*iov));
	if (msgs == NULL || iov == NULL) {
		return bench_fail(result, "out of memory");
	}
	for (size_t i = 0; i < batch; i++) {
		memcpy(msgs + i * size, cell->body.bytes, size);
		iov[i].data = msgs + i * size;
		iov[i].len = size;
	}
	struct mrb_ring ring;
	if (open_ring(cell, &ring, result) != 0) {
		return -1;
	}
	uint64_t seq = 0, sum = 0;
	int64_t deadline = bench_wait_for_start(cell->control);
	for (bool first = true; !result->failed && (first || bench_now_ns() < deadline);
	     first = false) {
		for (size_t i = 0; i < batch; i++) {
			bench_put_stamp(msgs + i * size, bench_stamp(producer, seq + i));
		}
		size_t written = 0;
		unsigned spins = 0;
		while (written < batch) {
			int64_t rc = mrb_write_batch(&ring, iov + written, batch - written);
			if (rc > 0) {
				written += (size_t)rc;
			} else if (rc == MRB_EFULL) {
				if (bench_now_ns() >= deadline) {
					break;
				}
				bench_full_pause(++spins);
			} else {
				bench_fail(result, "mrb_write_batch: %s", mrb_strerror((int)rc));
				break;
			}
		}
		for (size_t i = 0; i < written; i++) {
			sum += bench_message_sum(&cell->body, bench_stamp(producer, seq + i));
		}
		seq += written;
		if (written < batch) {
			break;
		}
	}
	bench_producer_finish(cell, producer, seq, sum);
	mrb_close(&ring);
	free(iov);
	free(msgs);
	return result->failed ? -1 : 0;
}

/* Attaching as consumer is a one-time cost kept out of the timed part. */
static int attach_consumer(struct mrb_ring *ring, struct bench_party_result *result)
{
	unsigned char probe[8];
	size_t len;
	int rc = mrb_read(ring, probe, sizeof(probe), &len);
	if (rc != MRB_EEMPTY) {
		return bench_fail(result, "attaching as consumer: %s",
		                  rc == 0 ? "ring not empty" : mrb_strerror(rc));
	}
	return 0;
}

static int read_consume(struct bench_cell *cell)
{
	struct bench_party_result *result = &cell->control->consumer;
	struct mrb_ring ring;
	if (open_ring(cell, &ring, result) != 0 || attach_consumer(&ring, result) != 0) {
		return -1;
	}
	size_t capacity = (cell->message_size + 63) & ~(size_t)63;
	unsigned char *buf = aligned_alloc(64, capacity);
	if (buf == NULL) {
		return bench_fail(result, "out of memory");
	}
	struct bench_verifier v;
	bench_verifier_init(&v, &cell->body, cell->producers);
	int done_seen = 0;
	bench_wait_for_start(cell->control);
	for (;;) {
		size_t len;
		int rc = mrb_read(&ring, buf, capacity, &len);
		if (rc == 0) {
			if (bench_verify(&v, buf, len) != 0) {
				break;
			}
		} else if (rc == MRB_EEMPTY) {
			if (done_seen) {
				break;
			}
			done_seen = bench_producers_done(cell);
			bench_cpu_relax();
		} else {
			bench_fail(result, "mrb_read: %s", mrb_strerror(rc));
			break;
		}
	}
	int rc = bench_consumer_finish(cell, &v);
	mrb_close(&ring);
	free(buf);
	return result->failed ? -1 : rc;
}

static int verify_handler(void *ctx, const void *data, size_t len)
{
	return bench_verify(ctx, data, len);
}

static int read_batch_consume(struct bench_cell *cell)
{
	struct bench_party_result *result = &cell->control->consumer;
	struct mrb_ring ring;
	if (open_ring(cell, &ring, result) != 0 || attach_consumer(&ring, result) != 0) {
		return -1;
	}
	struct bench_verifier v;
	bench_verifier_init(&v, &cell->body, cell->producers);
	int done_seen = 0;
	bench_wait_for_start(cell->control);
	while (!v.failed) {
		int64_t rc = mrb_read_batch(&ring, verify_handler, &v, 0);
		if (rc > 0) {
			continue;
		}
		if (rc == MRB_EEMPTY) {
			if (done_seen) {
				break;
			}
			done_seen = bench_producers_done(cell);
			bench_cpu_relax();
		} else {
			bench_fail(result, "mrb_read_batch: %s", mrb_strerror((int)rc));
			break;
		}
	}
	int rc = bench_consumer_finish(cell, &v);
	mrb_close(&ring);
	return result->failed ? -1 : rc;
}

const struct bench_transport bench_mrb_read = {
    .id = "mrb_read",
    .label = "mrb write + read",
    .setup = mrb_setup,
    .produce = write_produce,
    .consume = read_consume,
    .teardown = mrb_teardown,
};

const struct bench_transport bench_mrb_read_batch = {
    .id = "mrb_read_batch",
    .label = "mrb write + read_batch",
    .setup = mrb_setup,
    .produce = write_produce,
    .consume = read_batch_consume,
    .teardown = mrb_teardown,
};

const struct bench_transport bench_mrb_write_batch = {
    .id = "mrb_write_batch",
    .label = "mrb write_batch + read_batch",
    .setup = mrb_setup,
    .produce = write_batch_produce,
    .consume = read_batch_consume,
    .teardown = mrb_teardown,
};
