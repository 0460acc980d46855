/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char write_help[] =
    "Usage: mrb write PATH [--framed] [--block] [--timeout SECONDS]\n"
    "\n"
    "Writes stdin to the ring as messages, in order. By default each line is\n"
    "one message, without its newline; empty lines are skipped (a ring holds\n"
    "no empty messages) and a last line without a newline still counts.\n"
    "With --framed, stdin is a sequence of frames: a 4-byte little-endian\n"
    "length N (1 .. max message size) followed by N bytes, for binary data.\n"
    "Without --block a full ring stops the command; messages already written\n"
    "stay in the ring.\n"
    "\n"
    "Options:\n"
    "  -f, --framed           read length-prefixed frames instead of lines\n"
    "  -b, --block            wait for free space when the ring is full\n"
    "  -t, --timeout SECONDS  with --block, give up after waiting this long for\n"
    "                         one message's space (fractions allowed; implies\n"
    "                         --block; default: wait forever)\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit codes: 0 all of stdin written, 2 usage, 3 not found or I/O error,\n"
    "4 not a ring, 5 ring full (or --timeout expired), 8 a message is too\n"
    "large (or a frame has length 0), 9 stdin ends inside a frame.\n";

struct writer {
	struct mrb_ring ring;
	const char *path;
	int block;
	int64_t timeout_ns;
	uint64_t written;
};

static int write_one(struct writer *w, const void *data, size_t len)
{
	char what[64];
	int rc;

	if (w->block) {
		/* No signal handler is installed, so EINTR can only come from a
		 * stop/continue; the wait simply goes on. */
		do
			rc = mrb_write_wait(&w->ring, data, len, w->timeout_ns);
		while (rc == MRB_EINTR);
	} else
		rc = mrb_write(&w->ring, data, len);
	if (rc == 0) {
		w->written++;
		return CLI_EXIT_OK;
	}
	snprintf(what, sizeof(what), "message %llu (%zu bytes)", (unsigned long long)w->written + 1,
	         len);
	rc = cli_fail("write", what, rc);
	fprintf(stderr, "mrb write: %llu messages were written before it\n",
	        (unsigned long long)w->written);
	return rc;
}

static int write_lines(struct writer *w)
{
	char *line = NULL;
	size_t line_size = 0;
	ssize_t n;
	int rc = CLI_EXIT_OK;

	while ((n = getline(&line, &line_size, stdin)) >= 0) {
		size_t len = (size_t)n;

		if (len > 0 && line[len - 1] == '\n')
			len--;
		if (len == 0)
			continue;
		rc = write_one(w, line, len);
		if (rc != CLI_EXIT_OK)
			break;
	}
	if (rc == CLI_EXIT_OK && ferror(stdin))
		rc = cli_fail("write", "stdin", -errno);
	free(line);
	return rc;
}

/* Reads exactly `len` bytes; returns how many were read before end of input. */
static size_t read_exactly(void *buf, size_t len)
{
	return fread(buf, 1, len, stdin);
}

static int write_frames(struct writer *w)
{
	const uint64_t max_len = mrb_max_message_size(&w->ring);
	unsigned char *payload = NULL;
	size_t payload_size = 0;
	int rc = CLI_EXIT_OK;

	for (;;) {
		unsigned char prefix[4];
		size_t got = read_exactly(prefix, sizeof(prefix));
		uint32_t len;

		if (got == 0 && !ferror(stdin))
			break;
		if (got != sizeof(prefix)) {
			if (ferror(stdin)) {
				rc = cli_fail("write", "stdin", -errno);
				break;
			}
			fprintf(stderr, "mrb write: stdin ends inside the length of frame %llu\n",
			        (unsigned long long)w->written + 1);
			rc = CLI_EXIT_BAD_INPUT;
			break;
		}
		len = (uint32_t)prefix[0] | (uint32_t)prefix[1] << 8 | (uint32_t)prefix[2] << 16 |
		      (uint32_t)prefix[3] << 24;
		if (len == 0 || len > max_len) {
			fprintf(stderr, "mrb write: frame %llu has length %u; allowed 1 .. %llu\n",
			        (unsigned long long)w->written + 1, len,
			        (unsigned long long)max_len);
			rc = CLI_EXIT_MSGSIZE;
			break;
		}
		if (len > payload_size) {
			unsigned char *bigger = realloc(payload, len);

			if (bigger == NULL) {
				rc = cli_fail("write", "frame buffer", -ENOMEM);
				break;
			}
			payload = bigger;
			payload_size = len;
		}
		if (read_exactly(payload, len) != len) {
			if (ferror(stdin)) {
				rc = cli_fail("write", "stdin", -errno);
				break;
			}
			fprintf(stderr, "mrb write: stdin ends inside the payload of frame %llu\n",
			        (unsigned long long)w->written + 1);
			rc = CLI_EXIT_BAD_INPUT;
			break;
		}
		rc = write_one(w, payload, len);
		if (rc != CLI_EXIT_OK)
			break;
	}
	free(payload);
	return rc;
}

int cmd_write(int argc, char **argv)
{
	static const struct option options[] = {
	    {"framed", no_argument, NULL, 'f'},
	    {"block", no_argument, NULL, 'b'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct writer w;
	int framed = 0;
	int opt, rc;

	memset(&w, 0, sizeof(w));
	w.timeout_ns = -1;
	if (cli_wants_help(argc, argv)) {
		fputs(write_help, stdout);
		return CLI_EXIT_OK;
	}
	cli_getopt_begin(argv, "mrb write");
	while ((opt = getopt_long(argc, argv, "fbt:h", options, NULL)) != -1) {
		switch (opt) {
		case 'f':
			framed = 1;
			break;
		case 'b':
			w.block = 1;
			break;
		case 't':
			if (cli_parse_seconds(optarg, &w.timeout_ns) != 0)
				return cli_usage_error("write", "invalid timeout '%s'", optarg);
			w.block = 1;
			break;
		default:
			return cli_usage_error("write", "bad arguments");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("write", "expected exactly one PATH");
	w.path = argv[optind];

	rc = mrb_open(&w.ring, w.path, 0);
	if (rc != 0)
		return cli_fail("write", w.path, rc);
	rc = framed ? write_frames(&w) : write_lines(&w);
	mrb_close(&w.ring);
	return rc;
}
