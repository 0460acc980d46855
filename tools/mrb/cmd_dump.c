/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static const char dump_help[] =
    "Usage: mrb dump PATH [--hex] [--limit N] [--preview BYTES]\n"
    "\n"
    "Lists the records between the consumer and producer positions: position,\n"
    "state (committed, busy, padding, unwritten), payload length, writer pid and\n"
    "a preview of the payload. Consumes nothing and never attaches as consumer.\n"
    "Payloads are read from live memory and may change while being printed.\n"
    "\n"
    "Options:\n"
    "  -x, --hex            also print each payload in full as a hex dump\n"
    "  -n, --limit N        stop after N records (default: all)\n"
    "  -p, --preview BYTES  preview length in payload bytes (default 32, 0 = none)\n"
    "  -h, --help           show this help\n"
    "\n"
    "Exit codes: 0 ok, 2 usage, 3 not found or I/O error, 4 not a ring,\n"
    "unsupported version or corrupt (a record failed validation).\n";

struct dump_context {
	uint64_t preview;
	int hex;
	uint64_t records;
	uint64_t committed;
	uint64_t committed_bytes;
};

static void put_hex_dump(const unsigned char *data, uint64_t len)
{
	for (uint64_t row = 0; row < len; row += 16) {
		printf("    %08llx ", (unsigned long long)row);
		for (uint64_t i = row; i < row + 16; i++) {
			if (i < len)
				printf(" %02x", data[i]);
			else
				printf("   ");
		}
		printf("  |");
		for (uint64_t i = row; i < row + 16 && i < len; i++)
			putchar(data[i] >= 0x20 && data[i] < 0x7f ? data[i] : '.');
		printf("|\n");
	}
}

static int visit_record(void *ctx, const struct mrb_record_info *rec)
{
	struct dump_context *dump = ctx;
	const int has_payload =
	    rec->data != NULL && rec->length > 0 && rec->state != MRB_RECORD_UNWRITTEN;

	dump->records++;
	if (rec->state == MRB_RECORD_COMMITTED) {
		dump->committed++;
		dump->committed_bytes += rec->length;
	}
	printf("%-14llu %-10s %10llu %8u  ", (unsigned long long)rec->position,
	       cli_record_state_name(rec->state), (unsigned long long)rec->length, rec->writer_pid);
	if (has_payload && dump->preview > 0 && rec->state != MRB_RECORD_PADDING) {
		uint64_t shown = rec->length < dump->preview ? rec->length : dump->preview;

		putchar('"');
		cli_put_escaped(stdout, rec->data, (size_t)shown);
		putchar('"');
		if (shown < rec->length)
			printf("...");
	}
	putchar('\n');
	if (dump->hex && has_payload && rec->state != MRB_RECORD_PADDING)
		put_hex_dump(rec->data, rec->length);
	return 0;
}

int cmd_dump(int argc, char **argv)
{
	static const struct option options[] = {
	    {"hex", no_argument, NULL, 'x'},
	    {"limit", required_argument, NULL, 'n'},
	    {"preview", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct dump_context dump = {32, 0, 0, 0, 0};
	struct mrb_ring ring;
	uint64_t limit = 0;
	int64_t visited;
	int opt, rc;

	if (cli_wants_help(argc, argv)) {
		fputs(dump_help, stdout);
		return CLI_EXIT_OK;
	}
	cli_getopt_begin(argv, "mrb dump");
	while ((opt = getopt_long(argc, argv, "xn:p:h", options, NULL)) != -1) {
		switch (opt) {
		case 'x':
			dump.hex = 1;
			break;
		case 'n':
			if (cli_parse_u64(optarg, &limit) != 0 || limit == 0 || limit > SIZE_MAX)
				return cli_usage_error(
				    "dump",
				    "invalid --limit '%s': want a whole number of "
				    "records, at least 1",
				    optarg);
			break;
		case 'p':
			if (cli_parse_u64(optarg, &dump.preview) != 0)
				return cli_usage_error(
				    "dump",
				    "invalid --preview '%s': want a whole number "
				    "of bytes (0 for none)",
				    optarg);
			break;
		default:
			return cli_getopt_error("dump");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("dump", "expected exactly one PATH");

	rc = mrb_open(&ring, argv[optind], MRB_OPEN_READONLY);
	if (rc != 0)
		return cli_fail("dump", argv[optind], rc);
	printf("%-14s %-10s %10s %8s  %s\n", "POSITION", "STATE", "LENGTH", "PID", "PREVIEW");
	visited = mrb_inspect(&ring, visit_record, &dump, (size_t)limit);
	mrb_close(&ring);
	if (visited < 0) {
		fflush(stdout);
		return cli_fail("dump", argv[optind], (int)visited);
	}
	printf("# %llu records, %llu committed messages (%llu payload bytes)\n",
	       (unsigned long long)dump.records, (unsigned long long)dump.committed,
	       (unsigned long long)dump.committed_bytes);
	return CLI_EXIT_OK;
}
