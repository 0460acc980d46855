/* SPDX-License-Identifier: MIT */
/*
 * Fan-out: one producer process writing 64-byte messages that N reader
 * processes must each receive, two ways in the same run:
 *  - one fan-out ring (MRB_CREATE_FANOUT) with N durable subscribers, the
 *    producer writing each message once;
 *  - N queue rings, one consumer process each, the producer writing each
 *    message to every ring (what a user without subscribers does).
 * Every reader verifies every message (sequence and checksum) with
 * mrb_read_batch; the figure is messages/s received per reader, and the
 * ratio fan-out / separate rings at each N.
 *
 * Worker pools (pool = 1), the same machinery: one producer writing 64-byte
 * messages that each go to exactly one reader,
 *  - one fan-out ring with one worker group of N worker processes
 *    (mrb_worker_join), kind BENCH_FANOUT_RING;
 *  - one queue ring with one consumer process, whatever N (the baseline),
 *    kind BENCH_SEPARATE_RINGS.
 * Both read with mrb_read_many (64 at a time) and verify every message
 * (checksum; sequence increasing per reader; the readers' counts and
 * checksums add up to the producer's). The figure is messages/s through
 * the pool (all its readers together), and the ratio pool / one consumer.
 * The readers are not pinned (N workers on one core would measure nothing).
 */
#ifndef MRB_TOOLS_BENCH_BENCH_FANOUT_H
#define MRB_TOOLS_BENCH_BENCH_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "bench_payload.h"

#define BENCH_FANOUT_MAX_READERS 8
#define BENCH_FANOUT_MAX_COUNTS  4
#define BENCH_FANOUT_MAX_REPEATS 16

enum bench_fanout_kind { BENCH_FANOUT_RING = 0, BENCH_SEPARATE_RINGS = 1 };

struct bench_fanout_cell {
	int kind; /* enum bench_fanout_kind */
	int readers;
	int ran;
	int ok;
	char error[300];
	/* The best repeat (by per-reader rate); a failure in any sticks. */
	uint64_t messages;          /* the producer's, each counted once */
	double producer_seconds;    /* start to the producer's last write */
	double per_reader_rate;     /* mean over readers of messages / their time */
	double slowest_reader_rate; /* the lowest of them */
	double trial_rate[BENCH_FANOUT_MAX_REPEATS]; /* per_reader_rate, 0 if failed */
};

struct bench_fanout {
	int enabled;
	int pool; /* 0: fan-out rows; 1: worker pool rows (above) */
	size_t message_size;
	int counts[BENCH_FANOUT_MAX_COUNTS]; /* subscriber counts, e.g. 1, 2, 4 */
	int count_n;
	int repeats;
	struct bench_fanout_cell cells[2][BENCH_FANOUT_MAX_COUNTS]; /* [kind][count] */
	int ok;
};

/* Runs every cell `repeats` times, the two kinds of one N next to each
 * other. The producer is pinned to producer_cpu, every reader to
 * reader_cpu (-1: not pinned). */
void bench_measure_fanout(struct bench_fanout *f, const char *dir, uint64_t ring_bytes,
                          int64_t duration_ns, int reader_cpu, int producer_cpu);

/* fan-out per-reader rate / separate rings per-reader rate; NaN if either
 * failed. */
double bench_fanout_ratio(const struct bench_fanout *f, int count_index);

/* min / max of the per-repeat ratios (repeat i against repeat i). */
void bench_fanout_ratio_spread(const struct bench_fanout *f, int count_index, double *min,
                               double *max);

#endif /* MRB_TOOLS_BENCH_BENCH_FANOUT_H */
