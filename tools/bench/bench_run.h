/* SPDX-License-Identifier: MIT */
/* One invocation of the benchmark: its options, the machine, every result,
 * and the ratios and targets derived from them. */
#ifndef MRB_TOOLS_BENCH_BENCH_RUN_H
#define MRB_TOOLS_BENCH_BENCH_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bench_cell.h"
#include "bench_fanout.h"
#include "bench_latency.h"
#include "bench_path_cost.h"

#define BENCH_MAX_SIZES   8
#define BENCH_MAX_CPUS    64
#define BENCH_MAX_REPEATS 16

struct bench_options {
	int quick;
	int json;
	const char *json_out;
	int64_t duration_ns;
	int repeats;
	size_t sizes[BENCH_MAX_SIZES];
	int size_count;
	uint64_t ring_bytes;
	const char *dir;
	const char *rows; /* comma-separated row ids, NULL = all */
	int progress;
	int wakeup_samples;
	int64_t wakeup_gap_ns;
	int round_trips;
	int path_cost_bytes;                        /* payload per path-cost round */
	int fanout_counts[BENCH_FANOUT_MAX_COUNTS]; /* subscriber counts */
	int fanout_count_n;                         /* 0: no fan-out rows */
	int pool_counts[BENCH_FANOUT_MAX_COUNTS];   /* worker counts */
	int pool_count_n;                           /* 0: no worker pool rows */
};

/* A row of the matrix: a transport with a number of producers. */
struct bench_row {
	const char *id;
	const char *label;
	const struct bench_transport *transport;
	int producers;
	size_t max_size; /* 0: every size */
};

/* numerator / denominator, both row ids, at each size. */
struct bench_ratio {
	const char *id;
	const char *label;
	const char *numerator;
	const char *denominator;
};

struct bench_target {
	const char *label;
	const char *ratio; /* bench_ratio id */
	size_t size;
	double minimum;
};

extern const struct bench_row bench_rows[];
extern const int bench_row_count;
extern const struct bench_ratio bench_ratios[];
extern const int bench_ratio_count;
extern const struct bench_target bench_targets[];
extern const int bench_target_count;

struct bench_run {
	struct bench_options opt;
	char command[512];
	char cpu_model[256];
	char kernel[256];
	long cpus_online;
	int allowed_cpus[BENCH_MAX_CPUS];
	int allowed_cpu_count;
	int consumer_cpu;
	int producer_cpu[BENCH_MAX_PRODUCERS];
	int pinned;
	int pipe_buffer_bytes;
	struct bench_round_trip round_trip_start, round_trip_end;
	/* cells[row * size_count + size_index]: the best of the repeats (a
	 * failure in any repeat sticks); a row skipped at a size has
	 * transport == NULL. trial_rates[cell * BENCH_MAX_REPEATS + repeat] are
	 * every repeat's messages/s. */
	struct bench_cell *cells;
	double *trial_rates;
	int cell_count;
	struct bench_wakeup wakeup_mrb, wakeup_pipe;
	struct bench_path_cost path_cost[BENCH_MAX_SIZES];
	struct bench_fanout fanout;
	struct bench_fanout pool;
	int ok;
};

const struct bench_cell *bench_find_cell(const struct bench_run *run, const char *row_id,
                                         size_t size);

/* NaN when either side is missing or failed. */
double bench_ratio_value(const struct bench_run *run, const struct bench_ratio *ratio, size_t size);
const struct bench_ratio *bench_find_ratio(const char *id);

void bench_print_table(FILE *out, const struct bench_run *run);
void bench_print_json(FILE *out, const struct bench_run *run);

#endif /* MRB_TOOLS_BENCH_BENCH_RUN_H */
