/* SPDX-License-Identifier: MIT */
/* `mrb bench` forwards to the benchmark engine in tools/bench. Builds that
 * leave the engine out (MRB_CLI_HAVE_BENCH undefined) still give a working
 * `mrb` for everything else. */
#include <stdio.h>

#include "cli.h"

#ifdef MRB_CLI_HAVE_BENCH
#include "tools/bench/bench.h"
#endif

int cmd_bench(int argc, char **argv)
{
#ifdef MRB_CLI_HAVE_BENCH
	/* The engine prints its own --help and uses argv[0] in messages. */
	argv[0] = "mrb bench";
	return mrb_bench_main(argc, argv);
#else
	(void)argc;
	(void)argv;
	fprintf(stderr, "mrb bench: this mrb was built without the benchmark "
	                "engine (tools/bench)\n");
	return CLI_EXIT_UNAVAILABLE;
#endif
}
