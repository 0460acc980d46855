/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char unsubscribe_help[] =
    "Usage: mrb unsubscribe PATH NAME\n"
    "\n"
    "Removes the named subscriber NAME from the ring at PATH for good: its\n"
    "unread messages stop holding producers back, and a later\n"
    "mrb read --subscriber NAME joins as a new subscriber at the live end.\n"
    "Refused while a live process reads as NAME.\n"
    "\n"
    "Options:\n"
    "  -h, --help   show this help\n"
    "\n"
    "Exit codes: 0 removed, 2 usage, 3 ring not found, no subscriber named\n"
    "NAME, or I/O error, 4 not a ring or corrupt, 6 a live process reads as\n"
    "NAME.\n";

int cmd_unsubscribe(int argc, char **argv)
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct mrb_ring ring;
	const char *path, *name;
	int opt, rc;

	if (cli_wants_help(argc, argv)) {
		fputs(unsubscribe_help, stdout);
		return CLI_EXIT_OK;
	}
	cli_getopt_begin(argv, "mrb unsubscribe");
	if ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1)
		return cli_getopt_error("unsubscribe");
	if (optind != argc - 2)
		return cli_usage_error("unsubscribe", "expected a PATH and a NAME");
	path = argv[optind];
	name = argv[optind + 1];
	if (name[0] == '\0' || strlen(name) > MRB_SUBSCRIBER_NAME_MAX)
		return cli_usage_error("unsubscribe",
		                       "invalid NAME: want 1 to %d bytes (unnamed subscribers "
		                       "leave by themselves)",
		                       MRB_SUBSCRIBER_NAME_MAX);
	/* Open first, so that a missing ring and a missing name are told apart. */
	rc = mrb_open(&ring, path, MRB_OPEN_READONLY);
	if (rc != 0)
		return cli_fail("unsubscribe", path, rc);
	mrb_close(&ring);
	rc = mrb_unsubscribe(path, name);
	if (rc == -ENOENT) {
		fprintf(stderr, "mrb unsubscribe: %s: no subscriber named '", path);
		cli_put_escaped(stderr, name, strlen(name));
		fprintf(stderr, "'\n");
		return CLI_EXIT_IO;
	}
	if (rc == MRB_ENAMEBUSY) {
		fprintf(stderr, "mrb unsubscribe: %s: subscriber '", path);
		cli_put_escaped(stderr, name, strlen(name));
		fprintf(stderr, "' is read by a live process; stop it first\n");
		return CLI_EXIT_CONSUMER_BUSY;
	}
	if (rc != 0)
		return cli_fail("unsubscribe", path, rc);
	printf("%s: subscriber '", path);
	cli_put_escaped(stdout, name, strlen(name));
	printf("' removed\n");
	return CLI_EXIT_OK;
}
