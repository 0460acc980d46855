/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char read_help[] =
    "Usage: mrb read PATH [--count N] [--follow] [--framed] [--timeout SECONDS]\n"
    "\n"
    "Reads messages from the ring to stdout, in order, as the ring's consumer\n"
    "(only one process at a time may be). By default each message is printed\n"
    "followed by a newline; with --framed each is a 4-byte little-endian\n"
    "length followed by the bytes, which is exact for binary data.\n"
    "A message is consumed only after it was written out: flushed to a file or\n"
    "terminal, or, on a pipe or socket, taken out of it by the reading process\n"
    "(the next message is written only then). So a failing stdout, a reader\n"
    "that stops early (mrb read RING | head -1) or a kill loses nothing; the\n"
    "message being written may be written again by the next reader.\n"
    "\n"
    "Without --follow or --timeout, reads what is there now and stops at the\n"
    "first empty ring. --timeout S waits up to S seconds for each next message;\n"
    "--follow waits forever. SIGINT or SIGTERM ends the command between two\n"
    "messages.\n"
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
    "I/O error (including stdout), 4 not a ring or corrupt, 5 --timeout\n"
    "expired before any message arrived, or --count N given and fewer than\n"
    "N messages were read (also on SIGINT/SIGTERM), 6 another process is\n"
    "the consumer, 8 --framed and a message above 4 GiB.\n";

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

/* Bytes written to a pipe or a socket stay in the kernel until the reading
 * process takes them; if it exits first (mrb read RING | head -1), they are
 * gone. So on those, a message counts as written out only once the reader
 * has taken all of it. */
enum out_kind { OUT_FILE, OUT_PIPE, OUT_SOCKET };

static enum out_kind stdout_kind(void)
{
	struct stat st;

	if (fstat(STDOUT_FILENO, &st) != 0)
		return OUT_FILE;
	if (S_ISFIFO(st.st_mode))
		return OUT_PIPE;
	if (S_ISSOCK(st.st_mode))
		return OUT_SOCKET;
	return OUT_FILE;
}

/* Waits until the reader of a pipe or socket on stdout has taken every byte
 * written to it. Returns 0, 1 on a stop request, -EPIPE when the reader went
 * away first, or another -errno. The kernel signals no "drained" event:
 * yield first (a waiting reader takes the bytes within microseconds), then
 * sleep in steps growing to 1 ms, checking for a vanished reader each time. */
static int wait_taken(enum out_kind kind)
{
	long sleep_ns = 10000;
	unsigned yields = 0;

	if (kind == OUT_FILE)
		return 0;
	for (;;) {
		struct pollfd pfd = {STDOUT_FILENO, 0, 0};
		struct timespec pause = {0, 0};
		int pending = 0;

		if (ioctl(STDOUT_FILENO, kind == OUT_PIPE ? FIONREAD : SIOCOUTQ, &pending) != 0)
			return kind == OUT_PIPE ? -errno : 0; /* a socket that cannot tell */
		if (pending == 0)
			return 0;
		if (stop_requested)
			return 1;
		if (yields < 64) {
			yields++;
			sched_yield();
		} else {
			pause.tv_nsec = sleep_ns;
			sleep_ns = sleep_ns < 500000 ? sleep_ns * 2 : 1000000;
		}
		if (ppoll(&pfd, 1, &pause, NULL) > 0 && (pfd.revents & (POLLERR | POLLHUP))) {
			/* The reader is gone. A pipe keeps what it did not take, so
			 * it may have taken everything just before leaving; a socket
			 * drops its unread bytes, so the message counts as lost and
			 * stays in the ring (at worst it is delivered twice). */
			if (kind == OUT_PIPE && ioctl(STDOUT_FILENO, FIONREAD, &pending) == 0 &&
			    pending == 0)
				return 0;
			return -EPIPE;
		}
	}
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
	int have_count = 0, follow = 0, framed = 0, have_timeout = 0, timed_out = 0;
	const char *timeout_text = NULL;
	int64_t timeout_ns = 0;
	enum out_kind out;
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
				return cli_usage_error("read",
				                       "invalid --count '%s': want a whole number "
				                       "of messages, at least 1",
				                       optarg);
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
				return cli_usage_error(
				    "read",
				    "invalid --timeout '%s': want seconds (e.g. 2 "
				    "or 0.5) or inf",
				    optarg);
			have_timeout = 1;
			timeout_text = optarg;
			break;
		default:
			return cli_getopt_error("read");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("read", "expected exactly one PATH");
	if (!have_timeout)
		timeout_ns = follow ? -1 : 0;

	install_signal_handlers();
	out = stdout_kind();
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
			errno = 0;
			rc = put_message(&view, framed) == 0 ? wait_taken(out)
			                                     : (errno ? -errno : -EIO);
			if (rc == 1)
				break; /* stopped before the reader took it: keep it */
			if (rc != 0) {
				exit_code = cli_fail("read", "stdout", rc);
				fprintf(stderr,
				        "mrb read: %llu messages were read; the one being written "
				        "and those after it stay in the ring\n",
				        (unsigned long long)delivered);
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
		if (timeout_ns == 0) {
			timed_out = have_timeout;
			break;
		}
		rc = wait_for_message(&ring, timeout_ns);
		if (rc == 1) {
			timed_out = !stop_requested;
			break;
		}
		if (rc < 0) {
			exit_code = cli_fail("read", argv[optind], rc);
			break;
		}
	}
	mrb_close(&ring);
	if (exit_code != CLI_EXIT_OK)
		return exit_code;
	if (have_count && delivered < count) {
		fprintf(stderr, "mrb read: %llu of %llu messages read%s\n",
		        (unsigned long long)delivered, (unsigned long long)count,
		        stop_requested ? " (interrupted)" : "");
		return CLI_EXIT_FULL_TIMEOUT;
	}
	if (timed_out && delivered == 0) {
		fprintf(stderr, "mrb read: no message within %s seconds\n", timeout_text);
		return CLI_EXIT_FULL_TIMEOUT;
	}
	return CLI_EXIT_OK;
}
