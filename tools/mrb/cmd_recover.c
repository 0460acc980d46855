/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static const char recover_help[] =
    "Usage: mrb recover PATH\n"
    "\n"
    "Turns the claims at the consumer position whose writers are gone (they\n"
    "claimed space and died, or closed, before committing) into padding, so\n"
    "the consumer can move on. A live writer's claim is never skipped here:\n"
    "its space cannot be released while it may still write into it. A\n"
    "reading program that must not wait for hung writers sets a recovery\n"
    "timeout (mrb_set_recovery_timeout): it then reads past them and gets\n"
    "their messages late. Recovery acts as the consumer: it fails while\n"
    "another live process is the consumer (whose reads recover by themselves).\n"
    "\n"
    "Options:\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit codes: 0 ok (whether or not anything was recovered), 2 usage,\n"
    "3 not found or I/O error, 4 not a ring or corrupt, 6 another process is\n"
    "the consumer, 11 a fan-out ring (its subscribers recover dead writers'\n"
    "claims themselves).\n";

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
	uint64_t calls = 0, recovered = 0;
	int opt, rc;

	if (cli_wants_help(argc, argv)) {
		fputs(recover_help, stdout);
		return CLI_EXIT_OK;
	}
	cli_getopt_begin(argv, "mrb recover");
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (opt != 'S')
			return cli_getopt_error("recover");
		return cli_usage_error("recover",
		                       "--stale-ms is gone with format 2: a separate process never "
		                       "skips a live writer's claim; the reading program sets a "
		                       "recovery timeout instead");
	}
	if (optind != argc - 1)
		return cli_usage_error("recover", "expected exactly one PATH");

	rc = mrb_open(&ring, argv[optind], 0);
	if (rc != 0)
		return cli_fail("recover", argv[optind], rc);
	rc = mrb_stats(&ring, &before);
	while (rc == 0 && calls++ < MAX_RECOVER_CALLS) {
		rc = mrb_recover(&ring, -1);
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
