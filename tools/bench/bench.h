/* SPDX-License-Identifier: MIT */
/*
 * The core benchmark engine behind `mrb bench` and //tools/bench:mrb_bench.
 * Producers and the consumer run in separate processes pinned to separate
 * cores; mrb is measured against a pipe, a Unix stream socket and a minimal
 * SPSC ring in the same run, and only the ratios are meant to be compared
 * across runs. `--help` lists the options.
 */
#ifndef MRB_TOOLS_BENCH_BENCH_H
#define MRB_TOOLS_BENCH_BENCH_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Runs the benchmark with command-line style arguments (argv[0] is the
 * program name used in messages). Prints the table (or JSON with --json) on
 * stdout. Returns a process exit status: 0 when every benchmark ran and
 * verified what it moved, 1 when one failed or moved wrong data, 2 on a usage
 * error.
 */
int mrb_bench_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* MRB_TOOLS_BENCH_BENCH_H */
