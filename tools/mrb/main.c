/* SPDX-License-Identifier: MIT */
/* mrb: inspect and drive mmap_ringbuffer rings from the shell. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
    {"create", cmd_create, "create a ring file (or open a matching one)"},
    {"stat", cmd_stat, "show a ring's header, positions, counters, liveness"},
    {"dump", cmd_dump, "list the unread records without consuming them"},
    {"write", cmd_write, "write stdin to the ring, one message per line or frame"},
    {"read", cmd_read, "read messages to stdout (consumes them)"},
    {"recover", cmd_recover, "skip a record left unfinished by a dead producer"},
    {"upgrade", cmd_upgrade, "convert a format 1 ring to the current format"},
    {"unsubscribe", cmd_unsubscribe, "remove a named subscriber of a ring for good"},
    {"rmgroup", cmd_rmgroup, "remove a worker group of a ring for good"},
    {"bench", cmd_bench, "run the benchmark matrix"},
};

#define SUBCOMMAND_COUNT (sizeof(subcommands) / sizeof(subcommands[0]))

static void print_help(FILE *out)
{
	fprintf(out, "Usage: mrb COMMAND [OPTIONS] [PATH]\n"
	             "       mrb COMMAND --help\n"
	             "       mrb --version\n"
	             "\n"
	             "Inspect and drive mmap_ringbuffer ring files.\n"
	             "\n"
	             "Commands:\n");
	for (size_t i = 0; i < SUBCOMMAND_COUNT; i++)
		fprintf(out, "  %-11s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(out, "\n"
	             "Exit codes: 0 ok, 1 other failure, 2 usage, 3 I/O or not found,\n"
	             "4 bad format/version/corrupt, 5 full/timeout/too few messages,\n"
	             "6 consumer or subscriber busy, 7 exists, 8 message size,\n"
	             "9 bad framed input, 10 not built in, 11 wrong ring mode (queue or\n"
	             "fan-out). See docs/CLI.md.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_help(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		print_help(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("mrb %s (mmap_ringbuffer, ring format version %u)\n", mrb_version(),
		       MRB_FORMAT_VERSION);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < SUBCOMMAND_COUNT; i++) {
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "mrb: unknown command '%s'\nTry 'mrb --help'.\n", argv[1]);
	return CLI_EXIT_USAGE;
}
