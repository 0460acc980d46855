/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"

static const char create_help[] =
    "Usage: mrb create PATH --size N [--force | --exclusive] [--mode MODE]\n"
    "                  [--fanout]\n"
    "\n"
    "Creates a ring with N data bytes at PATH. N is a power of two from 256\n"
    "to 1T and takes a K, M, G or T suffix (powers of 1024); any other size\n"
    "is refused, naming the nearest powers of two.\n"
    "Without --force, an existing ring of the same capacity is opened and kept\n"
    "as it is (unread messages stay); any other existing file is an error, and\n"
    "so is an existing ring whose mode differs from an explicit --mode.\n"
    "A queue ring (the default) has one consumer (mrb read); a fan-out ring\n"
    "(--fanout) has none: every subscriber (mrb read --subscriber) sees every\n"
    "message. An existing ring of the other kind is in the way (exit 7).\n"
    "\n"
    "Options:\n"
    "  -s, --size N      data capacity in bytes (required)\n"
    "      --force       replace whatever is at PATH (unread messages are lost)\n"
    "      --exclusive   fail if PATH exists\n"
    "  -m, --mode MODE   octal permission bits 0001..0777, applied exactly\n"
    "                    (umask ignored; default 0600)\n"
    "      --fanout      a fan-out ring: subscribers instead of one consumer\n"
    "  -h, --help        show this help\n"
    "\n"
    "Exit codes: 0 created or opened, 2 bad size/option, 3 I/O error,\n"
    "4 existing file is not a usable ring, 7 existing file is in the way\n"
    "(another capacity, another kind, --exclusive, or another mode than\n"
    "--mode).\n";

/* Refuses a size that is not a power of two in range, naming the nearest
 * valid sizes. Returns 0 or CLI_EXIT_USAGE. */
static int check_size(const char *text, uint64_t size)
{
	char below[32], above[32];
	uint64_t lower = MRB_MIN_CAPACITY;

	if (size < MRB_MIN_CAPACITY)
		return cli_usage_error("create", "--size %s is below the minimum, 256", text);
	if (size > MRB_MAX_CAPACITY)
		return cli_usage_error("create", "--size %s is above the maximum, 1T", text);
	if ((size & (size - 1)) == 0)
		return 0;
	while (lower * 2 < size)
		lower *= 2;
	cli_format_size(lower, below, sizeof(below));
	cli_format_size(lower * 2, above, sizeof(above));
	return cli_usage_error("create",
	                       "--size %s is not a power of two; the nearest sizes are %s "
	                       "(%llu bytes) and %s (%llu bytes)",
	                       text, below, (unsigned long long)lower, above,
	                       (unsigned long long)(lower * 2));
}

/* mrb_create found a ring it would not open: says which of its properties
 * differs when it is the kind (queue or fan-out). Returns CLI_EXIT_EXISTS. */
static int explain_exists(const char *path, uint64_t size, int fanout)
{
	struct mrb_ring ring;
	int kind = -1;

	if (mrb_open(&ring, path, MRB_OPEN_READONLY) == 0) {
		if (mrb_capacity(&ring) == size)
			kind = mrb_is_fanout(&ring);
		mrb_close(&ring);
	}
	if (kind == 0 || kind == 1) {
		fprintf(stderr,
		        "mrb create: %s: an existing ring is a %s ring, not a %s ring; it was "
		        "kept as it is (--force replaces it)\n",
		        path, kind ? "fan-out" : "queue", fanout ? "fan-out" : "queue");
		return CLI_EXIT_EXISTS;
	}
	return cli_fail("create", path, MRB_EEXIST);
}

int cmd_create(int argc, char **argv)
{
	enum { OPT_FORCE = 256, OPT_EXCLUSIVE, OPT_FANOUT };
	static const struct option options[] = {
	    {"size", required_argument, NULL, 's'},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"exclusive", no_argument, NULL, OPT_EXCLUSIVE},
	    {"mode", required_argument, NULL, 'm'},
	    {"fanout", no_argument, NULL, OPT_FANOUT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct mrb_create_options opts = {0, 0600};
	struct mrb_ring ring;
	const char *size_text = NULL;
	uint64_t size = 0;
	int have_mode = 0;
	unsigned mode;
	struct stat st;
	int opt, rc;

	if (cli_wants_help(argc, argv)) {
		fputs(create_help, stdout);
		return CLI_EXIT_OK;
	}
	cli_getopt_begin(argv, "mrb create");
	while ((opt = getopt_long(argc, argv, "s:m:h", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (cli_parse_size(optarg, &size) != 0)
				return cli_usage_error(
				    "create",
				    "invalid --size '%s': want a byte count such as "
				    "4096, 64K or 1G",
				    optarg);
			size_text = optarg;
			break;
		case OPT_FORCE:
			opts.flags |= MRB_CREATE_REMOVE;
			break;
		case OPT_EXCLUSIVE:
			opts.flags |= MRB_CREATE_EXCLUSIVE;
			break;
		case OPT_FANOUT:
			opts.flags |= MRB_CREATE_FANOUT;
			break;
		case 'm':
			if (cli_parse_mode(optarg, &mode) != 0 || mode == 0)
				return cli_usage_error("create",
				                       "invalid --mode '%s': want octal permission "
				                       "bits 0001..0777 (default 0600)",
				                       optarg);
			opts.mode = (mode_t)mode;
			have_mode = 1;
			break;
		default:
			return cli_getopt_error("create");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("create", "expected exactly one PATH");
	if (size_text == NULL)
		return cli_usage_error("create", "--size is required");
	if ((opts.flags & MRB_CREATE_REMOVE) && (opts.flags & MRB_CREATE_EXCLUSIVE))
		return cli_usage_error("create", "--force and --exclusive exclude each other");
	rc = check_size(size_text, size);
	if (rc != 0)
		return rc;

	rc = mrb_create(&ring, argv[optind], size, &opts);
	if (rc == MRB_EEXIST && (opts.flags & (MRB_CREATE_REMOVE | MRB_CREATE_EXCLUSIVE)) == 0)
		return explain_exists(argv[optind], size, (opts.flags & MRB_CREATE_FANOUT) != 0);
	if (rc != 0)
		return cli_fail("create", argv[optind], rc);
	/* An existing ring is opened as it is: its mode is not changed. */
	if (have_mode && stat(argv[optind], &st) == 0 && (st.st_mode & 07777) != opts.mode) {
		fprintf(stderr,
		        "mrb create: %s: an existing ring has mode %04o, not %04o; it was kept "
		        "as it is (--force replaces it)\n",
		        argv[optind], (unsigned)(st.st_mode & 07777), (unsigned)opts.mode);
		mrb_close(&ring);
		return CLI_EXIT_EXISTS;
	}
	printf("%s: capacity %llu bytes, max message %llu bytes%s\n", argv[optind],
	       (unsigned long long)mrb_capacity(&ring),
	       (unsigned long long)mrb_max_message_size(&ring),
	       mrb_is_fanout(&ring) == 1 ? ", fan-out" : "");
	mrb_close(&ring);
	return CLI_EXIT_OK;
}
