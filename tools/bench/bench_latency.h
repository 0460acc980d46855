/* SPDX-License-Identifier: MIT */
/*
 * Latency probes run next to the throughput matrix:
 * - the cross-core round trip (two processes bouncing one shared cache line),
 *   which tells whether this run's two vCPUs were placed near or far apart;
 * - the wake-up latency of a blocked reader (write -> the blocked read
 *   returns), for mrb_read_wait and for a pipe's blocking read().
 */
#ifndef MRB_TOOLS_BENCH_BENCH_LATENCY_H
#define MRB_TOOLS_BENCH_BENCH_LATENCY_H

#include <stdint.h>

#define BENCH_ROUND_TRIP_ROUNDS 7

struct bench_round_trip {
	int ok;
	int rounds;
	double round_ns[BENCH_ROUND_TRIP_ROUNDS]; /* mean per round trip, each round */
	double min_ns;
	double median_ns;
};

void bench_measure_round_trip(struct bench_round_trip *rt, int cpu_a, int cpu_b,
                              int trips_per_round);

struct bench_wakeup {
	const char *id;    /* "mrb_read_wait", "pipe" */
	const char *label; /* table row */
	int available;
	char error[200];
	int samples;
	int64_t *sample_ns; /* sorted ascending; malloc'ed, bench_wakeup_free */
	int64_t p50_ns, p99_ns, min_ns, max_ns;
};

/* The reader runs on reader_cpu, the writer on writer_cpu; one message every
 * gap_ns, after the reader has taken the previous one, so it is asleep. */
void bench_measure_wakeup_mrb(struct bench_wakeup *w, const char *dir, int reader_cpu,
                              int writer_cpu, int samples, int64_t gap_ns);
void bench_measure_wakeup_pipe(struct bench_wakeup *w, int reader_cpu, int writer_cpu, int samples,
                               int64_t gap_ns);
void bench_wakeup_free(struct bench_wakeup *w);

#endif /* MRB_TOOLS_BENCH_BENCH_LATENCY_H */
