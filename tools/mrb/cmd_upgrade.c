/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static const char upgrade_help[] =
    "Usage: mrb upgrade PATH [--force]\n"
    "\n"
    "Converts a format 1 ring (written before version 2 of the file format)\n"
    "into the current format: its unread messages are copied, in order, into\n"
    "a new ring of the same capacity and permissions, which replaces the file\n"
    "atomically. Run it while no process uses the ring: it refuses while the\n"
    "ring's consumer or one of its producers is alive, because format 1 cannot\n"
    "tell whose unfinished records are whose.\n"
    "\n"
    "Options:\n"
    "      --force   convert even if a process named in the ring seems alive\n"
    "  -h, --help    show this help\n"
    "\n"
    "Exit codes: 0 converted, 1 a process still uses the ring, 2 usage,\n"
    "3 not found or I/O error, 4 not a format 1 ring (a current one needs no\n"
    "upgrade), or corrupt.\n";

int cmd_upgrade(int argc, char **argv)
{
	static const struct option options[] = {
	    {"force", no_argument, NULL, 'F'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	unsigned flags = 0;
	int opt;
	if (cli_wants_help(argc, argv)) {
		fputs(upgrade_help, stdout);
		return CLI_EXIT_OK;
	}
	cli_getopt_begin(argv, "mrb upgrade");
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (opt != 'F')
			return cli_getopt_error("upgrade");
		flags |= MRB_UPGRADE_FORCE;
	}
	if (optind != argc - 1)
		return cli_usage_error("upgrade", "expected exactly one PATH");
	int rc = mrb_upgrade(argv[optind], flags);
	if (rc == -EBUSY) {
		fprintf(stderr,
		        "mrb upgrade: %s: a process named in the ring is alive; stop it first "
		        "(or --force)\n",
		        argv[optind]);
		return CLI_EXIT_FAILURE;
	}
	if (rc < 0)
		return cli_fail("upgrade", argv[optind], rc);
	printf("upgraded %s to format %u: %d unread messages carried over\n", argv[optind],
	       MRB_FORMAT_VERSION, rc);
	return CLI_EXIT_OK;
}
