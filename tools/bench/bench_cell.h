/* SPDX-License-Identifier: MIT */
/*
 * One cell of the matrix: a transport moving messages of one size from N
 * producer processes to one consumer process for a fixed duration.
 *
 * The parent sets the transport up, forks the consumer and the producers
 * (each pinned to its core), releases them together, and collects what they
 * report through a shared control block. Producers stop at the deadline and
 * report how many messages they sent and their checksum; the consumer drains
 * until it has everything, verifying every message, and reports its count,
 * checksum and end time. Throughput is counted at the consumer, from the
 * common start to the last message.
 */
#ifndef MRB_TOOLS_BENCH_BENCH_CELL_H
#define MRB_TOOLS_BENCH_BENCH_CELL_H

#include <stdatomic.h>
#include <stdint.h>

#include "bench_payload.h"

struct bench_party_result {
	uint64_t messages;
	uint64_t checksum;
	int64_t end_ns;
	int failed;
	char what[240];
};

/* Shared between the parent and the cell's processes; every field written by
 * one process and polled by another sits on its own 128-byte slot. */
struct bench_control {
	_Alignas(128) atomic_int ready;
	_Alignas(128) atomic_int go;
	int64_t start_ns;
	int64_t deadline_ns;
	_Alignas(128) atomic_int producers_done;
	struct {
		_Alignas(128) struct bench_party_result result;
	} producer[BENCH_MAX_PRODUCERS];
	_Alignas(128) struct bench_party_result consumer;
};

struct bench_cell;

struct bench_transport {
	const char *id;    /* JSON key, e.g. "mrb_read_batch" */
	const char *label; /* table row */
	/* Parent, before fork: create the pipe, the ring file, ... */
	int (*setup)(struct bench_cell *cell);
	/* Children: move the data. Return 0, or fill the result and return -1. */
	int (*produce)(struct bench_cell *cell, int producer);
	int (*consume)(struct bench_cell *cell);
	/* Parent, after every child exited. */
	void (*teardown)(struct bench_cell *cell);
};

struct bench_cell {
	const struct bench_transport *transport;
	size_t message_size;
	int producers;
	int64_t duration_ns;
	uint64_t ring_bytes;
	const char *dir; /* where ring files go (/dev/shm) */
	int consumer_cpu;
	int producer_cpu[BENCH_MAX_PRODUCERS];
	struct bench_body body;
	struct bench_control *control;

	/* Transport state, set up by the parent and inherited by the children. */
	char path[256];
	int fds[2];

	/* Results, filled by bench_run_cell. */
	int ok;
	uint64_t messages;
	double seconds;
	double messages_per_second;
	double bytes_per_second;
	char error[300];
};

/* Runs the cell; fills the results. Returns 0 when it ran and verified. */
int bench_run_cell(struct bench_cell *cell);

/* For children: announce readiness, wait for the start; returns the
 * deadline. */
int64_t bench_wait_for_start(struct bench_control *control);

/* Producers look at the clock once per this many messages (mask + 1, about
 * 64 KiB of payload): a clock read costs 20-60 ns here, as much as moving a
 * small message through a fast ring. */
static inline uint64_t bench_clock_check_mask(size_t message_size)
{
	uint64_t every = 1;
	while (every * 2 * message_size <= 65536) {
		every *= 2;
	}
	return every - 1;
}

/* For a producer child: publish what it sent. */
void bench_producer_finish(struct bench_cell *cell, int producer, uint64_t messages,
                           uint64_t checksum);

/* For the consumer: 1 once every producer has finished and the consumer may
 * stop at the next empty poll. */
static inline int bench_producers_done(const struct bench_cell *cell)
{
	return atomic_load_explicit(&cell->control->producers_done, memory_order_acquire) ==
	       cell->producers;
}

/* For the consumer: record the verifier's outcome and the end time. */
int bench_consumer_finish(struct bench_cell *cell, const struct bench_verifier *v);

/* For either side: record a failure (printf-style) and return -1. */
int bench_fail(struct bench_party_result *result, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* MRB_TOOLS_BENCH_BENCH_CELL_H */
