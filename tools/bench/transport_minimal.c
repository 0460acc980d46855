/* SPDX-License-Identifier: MIT */
/* sched_setaffinity, F_GETPIPE_SZ, and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* The minimal SPSC ring as a transport, with its two publishing policies. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_os.h"
#include "bench_transports.h"
#include "minimal_ring.h"

static size_t mapping_size(const struct bench_cell *cell)
{
	return MINIMAL_RING_HEADER + (size_t)cell->ring_bytes;
}

static int minimal_setup(struct bench_cell *cell)
{
	snprintf(cell->path, sizeof(cell->path), "%s/mrb-bench-minimal-%d.ring", cell->dir,
	         (int)getpid());
	int err = 0;
	void *map = bench_map_new_file(cell->path, mapping_size(cell), &err);
	if (map == NULL) {
		snprintf(cell->error, sizeof(cell->error), "%s: %s", cell->path, strerror(-err));
		return -1;
	}
	munmap(map, mapping_size(cell));
	return 0;
}

static void minimal_teardown(struct bench_cell *cell)
{
	unlink(cell->path);
}

static void *attach(struct bench_cell *cell, struct bench_party_result *result,
                    struct minimal_ring_side *side, uint64_t publish_every)
{
	int err = 0;
	void *map = bench_map_file(cell->path, mapping_size(cell), &err);
	if (map == NULL) {
		bench_fail(result, "%s: %s", cell->path, strerror(-err));
		return NULL;
	}
	minimal_ring_attach(side, map, cell->ring_bytes, publish_every);
	return map;
}

static int minimal_produce(struct bench_cell *cell, int producer, uint64_t publish_every)
{
	struct bench_party_result *result = &cell->control->producer[producer].result;
	struct minimal_ring_side ring;
	void *map = attach(cell, result, &ring, publish_every);
	if (map == NULL) {
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
		for (unsigned spins = 1; minimal_ring_write(&ring, msg, size) != 0; spins++) {
			if (bench_now_ns() >= deadline) {
				goto done;
			}
			bench_full_pause(spins);
		}
		sum += bench_message_sum(&cell->body, stamp);
		seq++;
	}
done:
	minimal_ring_publish_write(&ring);
	bench_producer_finish(cell, producer, seq, sum);
	munmap(map, mapping_size(cell));
	return 0;
}

static int minimal_consume(struct bench_cell *cell, uint64_t publish_every, int copy_out)
{
	struct bench_party_result *result = &cell->control->consumer;
	struct minimal_ring_side ring;
	void *map = attach(cell, result, &ring, publish_every);
	if (map == NULL) {
		return -1;
	}
	unsigned char *buf = aligned_alloc(64, (cell->message_size + 63) & ~(size_t)63);
	if (buf == NULL) {
		return bench_fail(result, "out of memory");
	}
	struct bench_verifier v;
	bench_verifier_init(&v, &cell->body, cell->producers);
	int done_seen = 0;
	bench_wait_for_start(cell->control);
	for (;;) {
		size_t len;
		const void *msg = minimal_ring_peek(&ring, &len);
		if (msg == NULL) {
			if (done_seen) {
				break;
			}
			done_seen = bench_producers_done(cell);
			bench_cpu_relax();
			continue;
		}
		if (copy_out) {
			if (len != cell->message_size) {
				bench_verifier_fail(&v, msg, len);
				break;
			}
			memcpy(buf, msg, len);
			msg = buf;
		}
		if (bench_verify(&v, msg, len) != 0) {
			break;
		}
		minimal_ring_release(&ring, len);
	}
	minimal_ring_publish_read(&ring);
	int rc = bench_consumer_finish(cell, &v);
	free(buf);
	munmap(map, mapping_size(cell));
	return rc;
}

static int per_message_produce(struct bench_cell *cell, int producer)
{
	return minimal_produce(cell, producer, 1);
}

static int per_message_consume(struct bench_cell *cell)
{
	return minimal_consume(cell, 1, 1);
}

static int per_16k_produce(struct bench_cell *cell, int producer)
{
	return minimal_produce(cell, producer, BENCH_BATCH_BYTES);
}

static int per_16k_consume(struct bench_cell *cell)
{
	return minimal_consume(cell, BENCH_BATCH_BYTES, 0);
}

const struct bench_transport bench_minimal_per_message = {
    .id = "minimal_per_message",
    .label = "minimal ring, publish per message",
    .setup = minimal_setup,
    .produce = per_message_produce,
    .consume = per_message_consume,
    .teardown = minimal_teardown,
};

const struct bench_transport bench_minimal_per_16k = {
    .id = "minimal_per_16k",
    .label = "minimal ring, publish per 16 KiB",
    .setup = minimal_setup,
    .produce = per_16k_produce,
    .consume = per_16k_consume,
    .teardown = minimal_teardown,
};
