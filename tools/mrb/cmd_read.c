/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char read_help[] =
    "Usage: mrb read PATH [--count N] [--follow] [--framed] [--timeout SECONDS]\n"
    "\n"
    "Reads messages from the ring to stdout, in order, as the ring's consumer\n"
    "(only one process at a time may be). By default each message is printed\n"
    "followed by a newline; with --framed each is a 4-byte little-endian\n"
    "length followed by the bytes, which is exact for binary data.\n"
    "A message is consumed only after it has been written and flushed to\n"
    "stdout, so a failing stdout or a kill loses nothing (the message being\n"
    "printed may be printed again by the next reader).\n"
    "\n"
    "Without --follow or --timeout, reads what is there now and stops at the\n"
    "first empty ring. --timeout S waits up to S seconds for each next message;\n"
    "--follow waits forever. SIGINT or SIGTERM ends the command cleanly.\n"
    "\n"
    "Options:\n"
    "  -n, --count N          stop after N messages\n"
    "  -F, --follow           wait for new messages (like tail -f)\n"
    "  -f, --framed           length-prefixed output instead of lines\n"
    "  -t, --timeout SECONDS  wait at most this long for each message\n"
    "                         (fractions allowed; with --follow: stop after\n"
    "                         this long without a message)\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit codes: 0 ok (also on SIGINT/SIGTERM), 2 usage, 3 not found or\n"
    "I/O error (including stdout), 4 not a ring or corrupt, 5 --count N\n"
    "given and fewer than N messages arrived, 6 another process is the\n"
    "consumer, 8 --framed and a message above 4 GiB.\n";

/* Waits are cut into slices so a signal that lands just before a wait starts
 * is still noticed within one slice. */
#define WAIT_SLICE_NS 100000000ll

static volatile sig_atomic_t stop_requested;

static void request_stop(int signo)
{
	(void)signo;
	stop_requested = 1;
}

static int64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void install_signal_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = request_stop;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the wait must return so the loop sees the flag. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A closed pipe becomes a write error we report, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
}

static int put_message(const struct mrb_view *view, int framed)
{
	if (framed) {
		const uint32_t len = (uint32_t)view->len;
		const unsigned char prefix[4] = {(unsigned char)len, (unsigned char)(len >> 8),
		                                 (unsigned char)(len >> 16),
		                                 (unsigned char)(len >> 24)};

		if (fwrite(prefix, 1, sizeof(prefix), stdout) != sizeof(prefix))
			return -1;
	}
	if (fwrite(view->data, 1, view->len, stdout) != view->len)
		return -1;
	if (!framed && putchar('\n') == EOF)
		return -1;
	return fflush(stdout) == 0 ? 0 : -1;
}

/* Waits until the ring may be readable. Returns 0 to look again, 1 when the
 * wait is over (timeout or stop request), or a negative library code. */
static int wait_for_message(struct mrb_ring *ring, int64_t timeout_ns)
{
	const int64_t deadline = timeout_ns < 0 ? -1 : monotonic_ns() + timeout_ns;

	while (!stop_requested) {
		int64_t slice = WAIT_SLICE_NS;
		int rc;

		if (deadline >= 0) {
			int64_t left = deadline - monotonic_ns();

			if (left <= 0)
				return 1;
			if (left < slice)
				slice = left;
		}
		rc = mrb_wait_readable(ring, slice);
		if (rc >= 0)
			return 0;
		if (rc != MRB_ETIMEDOUT && rc != MRB_EINTR)
			return rc;
	}
	return 1;
}

int cmd_read(int argc, char **argv)
{
	static const struct option options[] = {
	    {"count", required_argument, NULL, 'n'}, {"follow", no_argument, NULL, 'F'},
	    {"framed", no_argument, NULL, 'f'},      {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
	};
	struct mrb_ring ring;
	uint64_t count = 0, delivered = 0;
	int have_count = 0, follow = 0, framed = 0, have_timeout = 0;
	int64_t timeout_ns = 0;
	int opt, rc, exit_code = CLI_EXIT_OK;

	if (cli_wants_help(argc, argv)) {
		fputs(read_help, stdout);
		return CLI_EXIT_OK;
	}
	cli_getopt_begin(argv, "mrb read");
	while ((opt = getopt_long(argc, argv, "n:Fft:h", options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (cli_parse_u64(optarg, &count) != 0 || count == 0)
				return cli_usage_error("read", "invalid count '%s'", optarg);
			have_count = 1;
			break;
		case 'F':
			follow = 1;
			break;
		case 'f':
			framed = 1;
			break;
		case 't':
			if (cli_parse_seconds(optarg, &timeout_ns) != 0)
				return cli_usage_error("read", "invalid timeout '%s'", optarg);
			have_timeout = 1;
			break;
		default:
			return cli_usage_error("read", "bad arguments");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("read", "expected exactly one PATH");
	if (!have_timeout)
		timeout_ns = follow ? -1 : 0;

	install_signal_handlers();
	rc = mrb_open(&ring, argv[optind], 0);
	if (rc != 0)
		return cli_fail("read", argv[optind], rc);

	while (!stop_requested && (!have_count || delivered < count)) {
		struct mrb_view view;

		rc = mrb_peek(&ring, &view);
		if (rc == 0) {
			if (framed && view.len > UINT32_MAX) {
				fprintf(stderr,
				        "mrb read: message of %zu bytes does not fit a frame\n",
				        view.len);
				exit_code = CLI_EXIT_MSGSIZE;
				break;
			}
			if (put_message(&view, framed) != 0) {
				exit_code = cli_fail("read", "stdout", errno ? -errno : -EIO);
				break;
			}
			rc = mrb_release(&ring, &view);
			if (rc != 0) {
				exit_code = cli_fail("read", argv[optind], rc);
				break;
			}
			delivered++;
			continue;
		}
		if (rc != MRB_EEMPTY) {
			exit_code = cli_fail("read", argv[optind], rc);
			break;
		}
		if (timeout_ns == 0)
			break;
		rc = wait_for_message(&ring, timeout_ns);
		if (rc == 1)
			break;
		if (rc < 0) {
			exit_code = cli_fail("read", argv[optind], rc);
			break;
		}
	}
	mrb_close(&ring);
	if (exit_code == CLI_EXIT_OK && have_count && delivered < count && !stop_requested) {
		fprintf(stderr, "mrb read: %llu of %llu messages read\n",
		        (unsigned long long)delivered, (unsigned long long)count);
		exit_code = CLI_EXIT_FULL_TIMEOUT;
	}
	return exit_code;
}
