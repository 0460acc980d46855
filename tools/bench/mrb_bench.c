/* SPDX-License-Identifier: MIT */
/* Standalone entry point: bazel run //tools/bench:mrb_bench -- [options] */
#include "bench.h"

int main(int argc, char **argv)
{
	return mrb_bench_main(argc, argv);
}
