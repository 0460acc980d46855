/* SPDX-License-Identifier: MIT */
/*
 * The instruction-path cost of one message: write it and read it back in one
 * process on one core, so no cache line crosses cores. Unlike the cross-core
 * matrix this hardly moves with core placement or other load, which makes it
 * the figure to optimise the hot path against (atomic read-modify-writes,
 * fences, bookkeeping); the matrix then shows what survives cross-core.
 */
#ifndef MRB_TOOLS_BENCH_BENCH_PATH_COST_H
#define MRB_TOOLS_BENCH_BENCH_PATH_COST_H

#include <stddef.h>

enum bench_path {
	BENCH_PATH_MINIMAL,         /* minimal ring write + peek/copy/release */
	BENCH_PATH_MRB_READ,        /* mrb_write + mrb_read */
	BENCH_PATH_MRB_READ_BATCH,  /* 16 x mrb_write + mrb_read_batch */
	BENCH_PATH_MRB_WRITE_BATCH, /* mrb_write_batch(16) + mrb_read_batch */
	/* The producer's share: only the writes are timed (a run of them into
	 * space the ring has, then read back and verified untimed). */
	BENCH_PATH_MINIMAL_WRITE, /* minimal ring write */
	BENCH_PATH_MRB_WRITE,     /* mrb_write */
	BENCH_PATH_COUNT,
};

struct bench_path_cost {
	size_t size;
	int ok;
	char error[300];
	double ns_per_message[BENCH_PATH_COUNT]; /* best of several rounds */
};

extern const char *const bench_path_ids[BENCH_PATH_COUNT];
extern const char *const bench_path_labels[BENCH_PATH_COUNT];

void bench_measure_path_cost(struct bench_path_cost *cost, size_t size, const char *dir, int cpu,
                             int messages_per_round);

#endif /* MRB_TOOLS_BENCH_BENCH_PATH_COST_H */
