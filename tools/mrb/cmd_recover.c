/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static const char recover_help[] =
    "Usage: mrb recover PATH [--stale-ms N]\n"
    "\n"
    "Turns the record at the consumer position into padding when its writer\n"
    "process is gone (it reserved space and died before committing), so the\n"
    "consumer can move on. With --stale-ms N, a record whose writer still\n"
    "seems alive is also skipped once it has blocked the consumer for N ms.\n"
    "Recovery acts as the consumer: it fails while another live process is\n"
    "the consumer (that process's reads do the same check themselves).\n"
    "\n"
    "Options:\n"
    "      --stale-ms N   also skip records unfinished for at least N ms\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit codes: 0 ok (whether or not anything was recovered), 2 usage,\n"
    "3 not found or I/O error, 4 not a ring or corrupt, 6 another process is\n"
    "the consumer.\n";

/* Each mrb_recover call handles at most the record at the consumer position;
 * this bounds the loop if a core bug kept reporting success. */
#define MAX_RECOVER_CALLS 1000000

static int describe_head(void *ctx, const struct mrb_record_info *rec)
{
	(void)ctx;
	printf("record at position %llu: %s, %llu bytes, writer pid %u\n",
	       (unsigned long long)rec->position, cli_record_state_name(rec->state),
	       (unsigned long long)rec->length, rec->writer_pid);
	return 1;
}

int cmd_recover(int argc, char **argv)
{
	static const struct option options[] = {
	    {"stale-ms", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct mrb_ring ring;
	struct mrb_stats before, after;
	int64_t stale_ns = -1;
	uint64_t stale_ms, calls = 0, recovered = 0;
	int opt, rc;

	if (cli_wants_help(argc, argv)) {
		fputs(recover_help, stdout);
		return CLI_EXIT_OK;
	}
	cli_getopt_begin(argv, "mrb recover");
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (opt != 'S')
			return cli_getopt_error("recover");
		if (cli_parse_u64(optarg, &stale_ms) != 0 || stale_ms > INT64_MAX / 1000000)
			return cli_usage_error("recover",
			                       "invalid --stale-ms '%s': want whole milliseconds, "
			                       "0 .. %lld",
			                       optarg, (long long)(INT64_MAX / 1000000));
		stale_ns = (int64_t)stale_ms * 1000000;
	}
	if (optind != argc - 1)
		return cli_usage_error("recover", "expected exactly one PATH");

	rc = mrb_open(&ring, argv[optind], 0);
	if (rc != 0)
		return cli_fail("recover", argv[optind], rc);
	rc = mrb_stats(&ring, &before);
	while (rc == 0 && calls++ < MAX_RECOVER_CALLS) {
		rc = mrb_recover(&ring, stale_ns);
		if (rc <= 0)
			break;
		recovered += (uint64_t)rc;
		rc = 0;
	}
	if (rc == 0)
		rc = mrb_stats(&ring, &after);
	if (rc != 0) {
		mrb_close(&ring);
		return cli_fail("recover", argv[optind], rc);
	}
	printf("recovered %llu records (%llu bytes)\n", (unsigned long long)recovered,
	       (unsigned long long)(after.recovered_bytes - before.recovered_bytes));
	if (after.used_bytes > 0)
		mrb_inspect(&ring, describe_head, NULL, 1);
	else
		printf("ring is empty\n");
	mrb_close(&ring);
	return CLI_EXIT_OK;
}
