/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char write_help[] =
    "Usage: mrb write PATH [--framed] [--block] [--timeout SECONDS]\n"
    "\n"
    "Writes stdin to the ring as messages, in order. By default each line is\n"
    "one message, without its newline; empty lines are skipped (a ring holds\n"
    "no empty messages) and a last line without a newline still counts.\n"
    "With --framed, stdin is a sequence of frames: a 4-byte little-endian\n"
    "length N (1 .. max message size) followed by N bytes, for binary data.\n"
    "Without --block a full ring stops the command. When a message cannot be\n"
    "written (ring full, too large), the command stops there: the messages\n"
    "before it stay in the ring, and stderr says how many were written and\n"
    "from which line or frame on stdin was not.\n"
    "SIGINT or SIGTERM ends the command between two messages.\n"
    "\n"
    "Options:\n"
    "  -f, --framed           read length-prefixed frames instead of lines\n"
    "  -b, --block            wait for free space when the ring is full\n"
    "  -t, --timeout SECONDS  with --block, give up after waiting this long for\n"
    "                         one message's space (fractions allowed; implies\n"
    "                         --block; default: wait forever)\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit codes: 0 all of stdin written (or SIGINT/SIGTERM while waiting for\n"
    "input), 2 usage, 3 not found or I/O error, 4 not a ring, 5 ring full\n"
    "(or --timeout expired, or SIGINT/SIGTERM while waiting for space), 8 a\n"
    "message is too large (or a frame has length 0), 9 stdin ends inside a\n"
    "frame.\n";

/* Waits are cut into slices so a signal that lands just before a wait starts
 * is still noticed within one slice. */
#define WAIT_SLICE_NS 100000000ll

static volatile sig_atomic_t stop_requested;

static void request_stop(int signo)
{
	(void)signo;
	stop_requested = 1;
}

static void install_signal_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = request_stop;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a read of stdin returns so the loop sees the flag. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

struct writer {
	struct mrb_ring ring;
	const char *path;
	int block;
	int64_t timeout_ns;
	uint64_t written;
	const char *unit;  /* "line" or "frame" */
	uint64_t input_no; /* number of the current line or frame on stdin */
};

/* Reports that the current message was not written and the command stops
 * there. Returns exit_code. */
static int stopped_at(const struct writer *w, int exit_code)
{
	fprintf(stderr, "mrb write: %llu messages were written; stdin from %s %llu on was not\n",
	        (unsigned long long)w->written, w->unit, (unsigned long long)w->input_no);
	return exit_code;
}

/* mrb_write_wait in slices, so that a stop request is seen between them. */
static int write_blocking(struct writer *w, const void *data, size_t len)
{
	const int64_t deadline = w->timeout_ns < 0 ? -1 : monotonic_ns() + w->timeout_ns;

	for (;;) {
		int64_t slice = WAIT_SLICE_NS;
		int rc;

		if (deadline >= 0) {
			int64_t left = deadline - monotonic_ns();

			if (left < 0)
				left = 0;
			if (left < slice)
				slice = left;
		}
		rc = mrb_write_wait(&w->ring, data, len, slice);
		if (rc == MRB_ETIMEDOUT && deadline >= 0 && monotonic_ns() >= deadline)
			return rc;
		if (rc != MRB_ETIMEDOUT && rc != MRB_EINTR)
			return rc;
		if (stop_requested)
			return MRB_EINTR;
	}
}

static int write_one(struct writer *w, const void *data, size_t len)
{
	char what[96];
	int rc;

	if (len > mrb_max_message_size(&w->ring)) {
		fprintf(stderr,
		        "mrb write: %s %llu has %zu bytes; the ring's maximum message size is "
		        "%llu bytes\n",
		        w->unit, (unsigned long long)w->input_no, len,
		        (unsigned long long)mrb_max_message_size(&w->ring));
		return stopped_at(w, CLI_EXIT_MSGSIZE);
	}
	rc = w->block ? write_blocking(w, data, len) : mrb_write(&w->ring, data, len);
	if (rc == 0) {
		w->written++;
		return CLI_EXIT_OK;
	}
	if (rc == MRB_EINTR) {
		fprintf(stderr, "mrb write: interrupted while waiting for space\n");
		return stopped_at(w, CLI_EXIT_FULL_TIMEOUT);
	}
	snprintf(what, sizeof(what), "%s %llu (%zu bytes)", w->unit,
	         (unsigned long long)w->input_no, len);
	return stopped_at(w, cli_fail("write", what, rc));
}

static int write_lines(struct writer *w)
{
	char *line = NULL;
	size_t line_size = 0;
	ssize_t n;
	int rc = CLI_EXIT_OK;

	w->unit = "line";
	while (!stop_requested && (n = getline(&line, &line_size, stdin)) >= 0) {
		size_t len = (size_t)n;

		w->input_no++;
		if (len > 0 && line[len - 1] == '\n')
			len--;
		if (len == 0)
			continue;
		rc = write_one(w, line, len);
		if (rc != CLI_EXIT_OK)
			break;
	}
	if (rc == CLI_EXIT_OK && ferror(stdin) && !stop_requested)
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

	w->unit = "frame";
	while (!stop_requested) {
		unsigned char prefix[4];
		size_t got = read_exactly(prefix, sizeof(prefix));
		uint32_t len;

		if (got == 0 && (!ferror(stdin) || stop_requested))
			break;
		w->input_no++;
		if (got != sizeof(prefix)) {
			if (ferror(stdin)) {
				rc = stop_requested ? CLI_EXIT_OK
				                    : cli_fail("write", "stdin", -errno);
				break;
			}
			fprintf(stderr, "mrb write: stdin ends inside the length of frame %llu\n",
			        (unsigned long long)w->input_no);
			rc = CLI_EXIT_BAD_INPUT;
			break;
		}
		len = (uint32_t)prefix[0] | (uint32_t)prefix[1] << 8 | (uint32_t)prefix[2] << 16 |
		      (uint32_t)prefix[3] << 24;
		if (len == 0 || len > max_len) {
			fprintf(stderr, "mrb write: frame %llu has length %u; allowed 1 .. %llu\n",
			        (unsigned long long)w->input_no, len, (unsigned long long)max_len);
			rc = stopped_at(w, CLI_EXIT_MSGSIZE);
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
				rc = stop_requested ? CLI_EXIT_OK
				                    : cli_fail("write", "stdin", -errno);
				break;
			}
			fprintf(stderr, "mrb write: stdin ends inside the payload of frame %llu\n",
			        (unsigned long long)w->input_no);
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
				return cli_usage_error(
				    "write",
				    "invalid --timeout '%s': want seconds (e.g. 2 "
				    "or 0.5) or inf",
				    optarg);
			w.block = 1;
			break;
		default:
			return cli_getopt_error("write");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("write", "expected exactly one PATH");
	w.path = argv[optind];

	install_signal_handlers();
	rc = mrb_open(&w.ring, w.path, 0);
	if (rc != 0)
		return cli_fail("write", w.path, rc);
	rc = framed ? write_frames(&w) : write_lines(&w);
	mrb_close(&w.ring);
	if (rc == CLI_EXIT_OK && stop_requested)
		fprintf(stderr,
		        "mrb write: interrupted: %llu messages were written; the rest of "
		        "stdin was not read\n",
		        (unsigned long long)w.written);
	return rc;
}
