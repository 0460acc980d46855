/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static const char create_help[] =
    "Usage: mrb create PATH --size N [--force | --exclusive] [--mode MODE]\n"
    "\n"
    "Creates a ring with at least N data bytes at PATH. N takes a K, M, G or T\n"
    "suffix (powers of 1024) and is rounded up to a power of two (minimum 256).\n"
    "Without --force, an existing ring of the same capacity is opened and kept\n"
    "as it is (unread messages stay); any other existing file is an error.\n"
    "\n"
    "Options:\n"
    "  -s, --size N      data capacity in bytes (required)\n"
    "  -f, --force       replace whatever is at PATH (unread messages are lost)\n"
    "  -x, --exclusive   fail if PATH exists\n"
    "  -m, --mode MODE   octal permission bits, applied exactly (default 0600)\n"
    "  -h, --help        show this help\n"
    "\n"
    "Exit codes: 0 created or opened, 2 bad size/option, 3 I/O error,\n"
    "4 existing file is not a usable ring, 7 existing file is in the way.\n";

int cmd_create(int argc, char **argv)
{
	static const struct option options[] = {
	    {"size", required_argument, NULL, 's'}, {"force", no_argument, NULL, 'f'},
	    {"exclusive", no_argument, NULL, 'x'},  {"mode", required_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
	};
	struct mrb_create_options opts = {0, 0600};
	struct mrb_ring ring;
	uint64_t size = 0;
	int have_size = 0;
	unsigned mode;
	int opt, rc;

	if (cli_wants_help(argc, argv)) {
		fputs(create_help, stdout);
		return CLI_EXIT_OK;
	}
	cli_getopt_begin(argv, "mrb create");
	while ((opt = getopt_long(argc, argv, "s:fxm:h", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (cli_parse_size(optarg, &size) != 0 || size == 0)
				return cli_usage_error("create", "invalid size '%s'", optarg);
			have_size = 1;
			break;
		case 'f':
			opts.flags |= MRB_CREATE_REMOVE;
			break;
		case 'x':
			opts.flags |= MRB_CREATE_EXCLUSIVE;
			break;
		case 'm':
			if (cli_parse_mode(optarg, &mode) != 0 || mode == 0)
				return cli_usage_error("create", "invalid mode '%s'", optarg);
			opts.mode = (mode_t)mode;
			break;
		default:
			return cli_usage_error("create", "bad arguments");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("create", "expected exactly one PATH");
	if (!have_size)
		return cli_usage_error("create", "--size is required");
	if ((opts.flags & MRB_CREATE_REMOVE) && (opts.flags & MRB_CREATE_EXCLUSIVE))
		return cli_usage_error("create", "--force and --exclusive exclude each other");
	if (size > MRB_MAX_CAPACITY)
		return cli_usage_error("create", "size above the maximum of %llu bytes",
		                       (unsigned long long)MRB_MAX_CAPACITY);

	rc = mrb_create(&ring, argv[optind], size, &opts);
	if (rc != 0)
		return cli_fail("create", argv[optind], rc);
	printf("%s: capacity %llu bytes, max message %llu bytes\n", argv[optind],
	       (unsigned long long)mrb_capacity(&ring),
	       (unsigned long long)mrb_max_message_size(&ring));
	mrb_close(&ring);
	return CLI_EXIT_OK;
}
