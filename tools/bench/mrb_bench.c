/* SPDX-License-Identifier: MIT */
/* sched_setaffinity, F_GETPIPE_SZ, and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* Standalone entry point: bazel run //tools/bench:mrb_bench -- [options] */
#include "bench.h"

int main(int argc, char **argv)
{
	return mrb_bench_main(argc, argv);
}
