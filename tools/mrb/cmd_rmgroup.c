/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char rmgroup_help[] =
    "Usage: mrb rmgroup PATH GROUP\n"
    "\n"
    "Removes the worker group GROUP of the fan-out ring at PATH for good:\n"
    "the messages it has not finished stop holding producers back, what its\n"
    "dead workers held is let go, and its place is free for a new group (a\n"
    "later mrb read --group GROUP creates a new group at the oldest message\n"
    "still in the ring). Refused while a live process is a worker of GROUP.\n"
    "\n"
    "Options:\n"
    "  -h, --help   show this help\n"
    "\n"
    "Exit codes: 0 removed, 2 usage, 3 ring not found, no group named GROUP,\n"
    "or I/O error, 4 not a ring or corrupt, 5 the group table stayed locked,\n"
    "6 a live process is a worker of GROUP, 11 a queue ring.\n";

int cmd_rmgroup(int argc, char **argv)
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct mrb_ring ring;
	const char *path, *group;
	int opt, rc;

	if (cli_wants_help(argc, argv)) {
		fputs(rmgroup_help, stdout);
		return CLI_EXIT_OK;
	}
	cli_getopt_begin(argv, "mrb rmgroup");
	if ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1)
		return cli_getopt_error("rmgroup");
	if (optind != argc - 2)
		return cli_usage_error("rmgroup", "expected a PATH and a GROUP");
	path = argv[optind];
	group = argv[optind + 1];
	if (group[0] == '\0' || strlen(group) > MRB_GROUP_NAME_MAX)
		return cli_usage_error("rmgroup", "invalid GROUP: a name has 1 to %d bytes",
		                       MRB_GROUP_NAME_MAX);
	/* Open first, so that a missing ring and a missing group are told apart. */
	rc = mrb_open(&ring, path, MRB_OPEN_READONLY);
	if (rc != 0)
		return cli_fail("rmgroup", path, rc);
	mrb_close(&ring);
	rc = mrb_worker_group_remove(path, group);
	if (rc == -ENOENT) {
		fprintf(stderr, "mrb rmgroup: %s: no worker group named '", path);
		cli_put_escaped(stderr, group, strlen(group));
		fprintf(stderr, "'\n");
		return CLI_EXIT_IO;
	}
	if (rc == MRB_ENAMEBUSY) {
		fprintf(stderr, "mrb rmgroup: %s: group '", path);
		cli_put_escaped(stderr, group, strlen(group));
		fprintf(stderr, "' has a live worker; stop it first\n");
		return CLI_EXIT_CONSUMER_BUSY;
	}
	if (rc == MRB_EMODE) {
		fprintf(stderr, "mrb rmgroup: %s: a queue ring has no worker groups\n", path);
		return CLI_EXIT_MODE;
	}
	if (rc != 0)
		return cli_fail("rmgroup", path, rc);
	printf("%s: group '", path);
	cli_put_escaped(stdout, group, strlen(group));
	printf("' removed\n");
	return CLI_EXIT_OK;
}
