/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char read_help[] =
    "Usage: mrb read PATH [--count N] [--follow] [--framed] [--timeout SECONDS]\n"
    "                [--subscriber NAME [--lossy | --evict-after SECONDS]\n"
    "                 [--from-oldest]]\n"
    "                [--group NAME [--at-most-once] [--hold-timeout SECONDS]]\n"
    "\n"
    "Reads messages from the ring to stdout, in order, as the ring's consumer\n"
    "(only one process at a time may be), with --subscriber as one of its\n"
    "subscribers, or with --group as a worker of a worker group. By default each message is "
    "printed\n"
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
    "Subscribers: --subscriber NAME joins the ring's reader table. On a fan-out\n"
    "ring (mrb create --fanout) a subscriber is durable: it sees every message\n"
    "from where it joined and producers wait for it. A named one resumes right\n"
    "after the last message it released when NAME is read again (mrb\n"
    "unsubscribe removes it); --subscriber '' (an empty NAME) is unnamed: it\n"
    "joins at the live end and leaves when the command ends. --lossy joins as a\n"
    "tap that never holds producers back (any ring): messages overwritten\n"
    "before it read them are skipped and counted. --evict-after S lets\n"
    "producers evict a durable subscriber that held them back for S seconds\n"
    "(or whose process died); its next read reports the loss and goes on.\n"
    "With --lossy or --evict-after a message is taken from the ring before it\n"
    "is written out (a kill can lose the one being written); a plain durable\n"
    "subscriber releases it only after, as the consumer does. Losses are\n"
    "reported on stderr.\n"
    "\n"
    "Worker groups: --group NAME reads a fan-out ring as a worker of the group\n"
    "NAME (created on first use): each message goes to exactly one worker of\n"
    "the group, so several mrb read --group NAME share the work. A message is\n"
    "released after it was written out. Should this process die holding one,\n"
    "the group's policy decides: at-least-once (the default) hands it to\n"
    "another worker, --at-most-once drops and counts it. --hold-timeout S\n"
    "treats a worker that held a message S seconds as dead; its late release\n"
    "is refused and reported on stderr. The policy and the timeout are the\n"
    "group's, fixed at its creation: a worker that names different ones is\n"
    "refused (status 2); one that names none joins with the group's.\n"
    "\n"
    "Options:\n"
    "  -n, --count N          stop after N messages\n"
    "  -F, --follow           wait for new messages (like tail -f)\n"
    "  -f, --framed           length-prefixed output instead of lines\n"
    "  -t, --timeout SECONDS  wait at most this long for each message\n"
    "                         (fractions allowed; with --follow: stop after\n"
    "                         this long without a message)\n"
    "      --subscriber NAME  read as the subscriber NAME ('' for unnamed)\n"
    "      --lossy            as a lossy subscriber (a tap; any ring)\n"
    "      --evict-after SECONDS\n"
    "                         a durable subscriber producers may evict\n"
    "                         after it held them back this long\n"
    "      --from-oldest      a new subscriber starts at the oldest message\n"
    "                         still in the ring, not at the live end\n"
    "      --group NAME       read as a worker of the worker group NAME\n"
    "      --at-most-once     a new group drops (not redelivers) what a dead\n"
    "                         worker held\n"
    "      --hold-timeout SECONDS\n"
    "                         a new group takes messages back from a worker\n"
    "                         that held them this long\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit codes: 0 ok (also on SIGINT/SIGTERM), 2 usage, 3 not found or\n"
    "I/O error (including stdout), 4 not a ring or corrupt, 5 --timeout\n"
    "expired before any message arrived, or --count N given and fewer than\n"
    "N messages were read (also on SIGINT/SIGTERM), 6 another process is\n"
    "the consumer or reads as NAME, or no subscriber entry (or worker slot)\n"
    "is free, 8 --framed and a message above 4 GiB, 11 a fan-out ring read\n"
    "without --subscriber or --group, or a durable subscriber or a worker of\n"
    "a queue ring.\n";

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
 * wait is over (timeout or stop request), or a negative library code
 * (MRB_ELAPPED: a subscriber's loss, reported once by whichever call comes
 * first). */
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

/* How a reader takes the next message: in place (peek, then release once it
 * was written out), or, for subscribers that may be overwritten while they
 * read (lossy, evictable), as a copy. */
struct reader {
	struct mrb_ring ring;
	int copy;
	unsigned char *buf;
	size_t buf_size;
	struct mrb_view view;
};

/* Returns 0 with r->view set, or a library code. */
static int take_message(struct reader *r)
{
	int64_t len;

	if (!r->copy)
		return mrb_peek(&r->ring, &r->view);
	len = mrb_read_len(&r->ring, r->buf, r->buf_size);
	if (len < 0)
		return (int)len;
	r->view.data = r->buf;
	r->view.len = (size_t)len;
	return 0;
}

/* A named subscriber's loss counters before it joins (a join can itself
 * find it lapped), so that what this command lost is told; zero for a new
 * or unnamed one. */
static void losses_before_join(const char *path, const char *name, uint64_t *bytes,
                               uint64_t *events)
{
	struct mrb_subscriber_info list[MRB_MAX_SUBSCRIBERS];
	struct mrb_ring ring;
	int64_t n;

	*bytes = *events = 0;
	if (name[0] == '\0' || mrb_open(&ring, path, MRB_OPEN_READONLY) != 0)
		return;
	n = mrb_subscribers(&ring, list, MRB_MAX_SUBSCRIBERS);
	for (int64_t i = 0; i < n && i < MRB_MAX_SUBSCRIBERS; i++) {
		if (strcmp(list[i].name, name) == 0) {
			*bytes = list[i].lost_bytes;
			*events = list[i].lost_events;
		}
	}
	mrb_close(&ring);
}

/* An evicted subscriber's loss, told once (the reads then go on). */
static void report_elapsed(struct mrb_ring *ring, uint64_t lost_bytes0)
{
	struct mrb_subscriber_info info;

	if (mrb_subscriber_info(ring, &info) == 0)
		fprintf(stderr,
		        "mrb read: the subscriber was evicted; %llu bytes were overwritten "
		        "before it read them\n",
		        (unsigned long long)(info.lost_bytes - lost_bytes0));
}

/* Explains the wrong-mode refusals, which the library reports as MRB_EMODE. */
static int mode_error(const char *path, int subscriber, int lossy)
{
	if (!subscriber)
		fprintf(stderr,
		        "mrb read: %s: a fan-out ring has no consumer; read it with "
		        "--subscriber NAME or --group NAME\n",
		        path);
	else if (!lossy)
		fprintf(stderr,
		        "mrb read: %s: a queue ring has no durable subscribers (mrb create "
		        "--fanout makes a fan-out ring); --lossy taps any ring\n",
		        path);
	else
		return cli_fail("read", path, MRB_EMODE);
	return CLI_EXIT_MODE;
}

/* Joins the worker group `group`; returns 0 or an exit code (reported). */
static int join_group(struct mrb_ring *ring, const char *path, const char *group,
                      const struct mrb_worker_options *opts)
{
	int rc = mrb_worker_join(ring, path, group, opts);

	if (rc == 0)
		return 0;
	if (rc == MRB_EMODE) {
		fprintf(stderr,
		        "mrb read: %s: a queue ring has no worker groups (mrb create --fanout "
		        "makes a fan-out ring)\n",
		        path);
		return CLI_EXIT_MODE;
	}
	if (rc == MRB_ENOWORKER) {
		fprintf(stderr, "mrb read: %s: every worker slot (or group) of the ring is taken\n",
		        path);
		return CLI_EXIT_CONSUMER_BUSY;
	}
	if (rc == MRB_EINVAL && opts != NULL) {
		fprintf(stderr, "mrb read: %s: group '", path);
		cli_put_escaped(stderr, group, strlen(group));
		fprintf(stderr, "' has another policy or hold timeout (mrb stat shows it)\n");
		return CLI_EXIT_USAGE;
	}
	return cli_fail("read", path, rc);
}

/* A worker's release refused after its hold timeout, told once each. */
static void report_stale(void)
{
	fprintf(stderr, "mrb read: a message was taken back from this worker after the "
	                "group's hold timeout (redelivered or dropped)\n");
}

int cmd_read(int argc, char **argv)
{
	enum {
		OPT_SUBSCRIBER = 256,
		OPT_LOSSY,
		OPT_EVICT_AFTER,
		OPT_FROM_OLDEST,
		OPT_GROUP,
		OPT_AT_MOST_ONCE,
		OPT_HOLD_TIMEOUT
	};
	static const struct option options[] = {
	    {"count", required_argument, NULL, 'n'},
	    {"follow", no_argument, NULL, 'F'},
	    {"framed", no_argument, NULL, 'f'},
	    {"timeout", required_argument, NULL, 't'},
	    {"subscriber", required_argument, NULL, OPT_SUBSCRIBER},
	    {"lossy", no_argument, NULL, OPT_LOSSY},
	    {"evict-after", required_argument, NULL, OPT_EVICT_AFTER},
	    {"from-oldest", no_argument, NULL, OPT_FROM_OLDEST},
	    {"group", required_argument, NULL, OPT_GROUP},
	    {"at-most-once", no_argument, NULL, OPT_AT_MOST_ONCE},
	    {"hold-timeout", required_argument, NULL, OPT_HOLD_TIMEOUT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct reader r;
	struct mrb_subscribe_options sub = {0, NULL, 0};
	struct mrb_subscriber_info info;
	uint64_t count = 0, delivered = 0, lost_bytes0 = 0, lost_events0 = 0;
	int have_count = 0, follow = 0, framed = 0, have_timeout = 0, timed_out = 0;
	const char *timeout_text = NULL, *subscriber = NULL, *group = NULL;
	struct mrb_worker_options wopts = {MRB_AT_LEAST_ONCE, 0};
	int have_wopts = 0;
	int64_t timeout_ns = 0;
	enum out_kind out;
	int opt, rc, exit_code = CLI_EXIT_OK;

	if (cli_wants_help(argc, argv)) {
		fputs(read_help, stdout);
		return CLI_EXIT_OK;
	}
	memset(&r, 0, sizeof(r));
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
		case OPT_SUBSCRIBER:
			if (strlen(optarg) > MRB_SUBSCRIBER_NAME_MAX)
				return cli_usage_error("read",
				                       "invalid --subscriber: a name has at most "
				                       "%d bytes",
				                       MRB_SUBSCRIBER_NAME_MAX);
			subscriber = optarg;
			break;
		case OPT_LOSSY:
			sub.flags |= MRB_SUBSCRIBE_LOSSY;
			break;
		case OPT_EVICT_AFTER:
			if (cli_parse_seconds(optarg, &sub.evict_after_ns) != 0 ||
			    sub.evict_after_ns <= 0)
				return cli_usage_error("read",
				                       "invalid --evict-after '%s': want seconds "
				                       "above 0 (e.g. 5 or 0.5)",
				                       optarg);
			sub.flags |= MRB_SUBSCRIBE_EVICT;
			break;
		case OPT_FROM_OLDEST:
			sub.flags |= MRB_SUBSCRIBE_FROM_OLDEST;
			break;
		case OPT_GROUP:
			if (optarg[0] == '\0' || strlen(optarg) > MRB_GROUP_NAME_MAX)
				return cli_usage_error("read",
				                       "invalid --group: a name has 1 to %d bytes",
				                       MRB_GROUP_NAME_MAX);
			group = optarg;
			break;
		case OPT_AT_MOST_ONCE:
			wopts.policy = MRB_AT_MOST_ONCE;
			have_wopts = 1;
			break;
		case OPT_HOLD_TIMEOUT:
			if (cli_parse_seconds(optarg, &wopts.hold_timeout_ns) != 0 ||
			    wopts.hold_timeout_ns <= 0)
				return cli_usage_error("read",
				                       "invalid --hold-timeout '%s': want seconds "
				                       "above 0 (e.g. 5 or 0.5)",
				                       optarg);
			have_wopts = 1;
			break;
		default:
			return cli_getopt_error("read");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("read", "expected exactly one PATH");
	if (subscriber == NULL && sub.flags != 0)
		return cli_usage_error("read", "--lossy, --evict-after and --from-oldest need "
		                               "--subscriber NAME");
	if (group != NULL && subscriber != NULL)
		return cli_usage_error("read", "--group and --subscriber exclude each other");
	if (group == NULL && have_wopts)
		return cli_usage_error("read",
		                       "--at-most-once and --hold-timeout need --group NAME");
	if ((sub.flags & MRB_SUBSCRIBE_LOSSY) && (sub.flags & MRB_SUBSCRIBE_EVICT))
		return cli_usage_error("read", "--lossy and --evict-after exclude each other");
	if (!have_timeout)
		timeout_ns = follow ? -1 : 0;

	install_signal_handlers();
	out = stdout_kind();
	if (group != NULL) {
		rc = join_group(&r.ring, argv[optind], group, have_wopts ? &wopts : NULL);
		if (rc != 0)
			return rc;
		r.copy = 1; /* the message is taken; released once written out */
	} else if (subscriber != NULL) {
		sub.name = subscriber;
		losses_before_join(argv[optind], subscriber, &lost_bytes0, &lost_events0);
		rc = mrb_subscribe(&r.ring, argv[optind], &sub);
		if (rc == MRB_EMODE)
			return mode_error(argv[optind], 1, (sub.flags & MRB_SUBSCRIBE_LOSSY) != 0);
		if (rc == MRB_ENAMEBUSY) {
			fprintf(stderr, "mrb read: %s: subscriber '", argv[optind]);
			cli_put_escaped(stderr, subscriber, strlen(subscriber));
			fprintf(stderr, "' is read by another live process\n");
			return CLI_EXIT_CONSUMER_BUSY;
		}
		if (rc != 0)
			return cli_fail("read", argv[optind], rc);
		r.copy = (sub.flags & (MRB_SUBSCRIBE_LOSSY | MRB_SUBSCRIBE_EVICT)) != 0;
	} else {
		rc = mrb_open(&r.ring, argv[optind], 0);
		if (rc != 0)
			return cli_fail("read", argv[optind], rc);
	}
	if (r.copy) {
		r.buf_size = (size_t)mrb_max_message_size(&r.ring);
		r.buf = malloc(r.buf_size ? r.buf_size : 1);
		if (r.buf == NULL) {
			mrb_close(&r.ring);
			return cli_fail("read", argv[optind], -ENOMEM);
		}
	}

	while (!stop_requested && (!have_count || delivered < count)) {
		rc = take_message(&r);
		if (rc == 0) {
			const struct mrb_view *view = &r.view;

			if (framed && view->len > UINT32_MAX) {
				fprintf(stderr,
				        "mrb read: message of %zu bytes does not fit a frame\n",
				        view->len);
				exit_code = CLI_EXIT_MSGSIZE;
				break;
			}
			errno = 0;
			rc = put_message(view, framed) == 0 ? wait_taken(out)
			                                    : (errno ? -errno : -EIO);
			if (rc == 1 && !r.copy)
				break; /* stopped before the reader took it: keep it */
			if (rc == 1) {
				delivered++;
				break;
			}
			if (rc != 0) {
				exit_code = cli_fail("read", "stdout", rc);
				fprintf(stderr,
				        r.copy ? "mrb read: %llu messages were read; the one being "
				                 "written was taken from the ring\n"
				               : "mrb read: %llu messages were read; the one being "
				                 "written and those after it stay in the ring\n",
				        (unsigned long long)delivered);
				break;
			}
			if (!r.copy || group != NULL) {
				rc = group != NULL ? mrb_worker_ack(&r.ring)
				                   : mrb_release(&r.ring, &r.view);
				if (rc == MRB_ESTALE) {
					report_stale();
				} else if (rc != 0) {
					exit_code = cli_fail("read", argv[optind], rc);
					break;
				}
			}
			delivered++;
			continue;
		}
		if (rc == MRB_ELAPPED) {
			report_elapsed(&r.ring, lost_bytes0);
			continue;
		}
		if (rc == MRB_ESTALE && group != NULL) {
			report_stale();
			continue;
		}
		if (rc == MRB_EMODE) {
			exit_code = mode_error(argv[optind], subscriber != NULL, 1);
			break;
		}
		if (rc != MRB_EEMPTY) {
			exit_code = cli_fail("read", argv[optind], rc);
			break;
		}
		if (timeout_ns == 0) {
			timed_out = have_timeout;
			break;
		}
		rc = wait_for_message(&r.ring, timeout_ns);
		if (rc == MRB_ELAPPED) {
			report_elapsed(&r.ring, lost_bytes0);
			continue;
		}
		if (rc == 1) {
			timed_out = !stop_requested;
			break;
		}
		if (rc < 0) {
			exit_code = cli_fail("read", argv[optind], rc);
			break;
		}
	}
	if (subscriber != NULL && mrb_subscriber_info(&r.ring, &info) == 0 &&
	    info.lost_events != lost_events0)
		fprintf(stderr, "mrb read: %llu bytes lost in %llu events (%s)\n",
		        (unsigned long long)(info.lost_bytes - lost_bytes0),
		        (unsigned long long)(info.lost_events - lost_events0),
		        (sub.flags & MRB_SUBSCRIBE_LOSSY) ? "lapped by producers" : "evicted");
	mrb_close(&r.ring);
	free(r.buf);
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
