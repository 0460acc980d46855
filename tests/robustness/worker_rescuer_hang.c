/* SPDX-License-Identifier: MIT */
/*
 * Description: a hung rescuer (docs/FORMAT.md section 9, "Rescuing"). In a
 * group with a hold timeout, worker A takes message 0 and is SIGKILLed;
 * worker B rescues A's run (message 0 redelivered to it) and then hangs
 * (SIGSTOP) holding it. The run gates the release position R: left alone,
 * producers stop once the ring is full. The group's other worker C must
 * take the rescue over from B once B made no progress for the hold
 * timeout: C gets message 0 again (redelivered 2), R reaches the
 * producers. When B continues, its release is refused once (MRB_ESTALE,
 * stale_releases 1), and it then takes new work: the next message is its.
 */
#include "wdoor.h"

/* B, while stopped: killed if the test fails (no stopped orphan). */
static pid_t stopped_child;

static void kill_stopped_child(void)
{
	if (stopped_child > 0)
		kill(stopped_child, SIGKILL);
}

static void wait_stopped(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, WUNTRACED) < 0)
		CHECK(errno == EINTR);
	if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP)
		FAIL("child %d did not stop (status %#x)", (int)pid, status);
}

int main(void)
{
	rtest_watchdog(30);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(&ring, path, 4096, &copts), 0);
	struct mrb_worker_options opts = {.policy = MRB_AT_LEAST_ONCE,
	                                  .hold_timeout_ns = 50 * 1000000LL};
	int ch[2];
	CHECK(pipe(ch) == 0);
	uint64_t seq = 0;
	CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);

	/* A takes message 0 and is killed holding it. */
	pid_t a = fork();
	CHECK(a >= 0);
	if (a == 0) {
		struct mrb_ring w;
		CHECK_RC(mrb_worker_join(&w, path, "jobs", &opts), 0);
		uint64_t got;
		size_t len;
		CHECK_RC(mrb_read(&w, &got, sizeof(got), &len), 0);
		CHECK_EQ_U64(got, 0);
		rtest_send(ch[1], 'a');
		for (;;)
			pause();
	}
	CHECK(rtest_recv(ch[0]) == 'a');
	rtest_kill(a);

	/* B rescues message 0 and hangs holding it; once continued, its
	 * next read is refused, and the one after takes new work. */
	pid_t b = fork();
	CHECK(b >= 0);
	if (b == 0) {
		struct mrb_ring w;
		CHECK_RC(mrb_worker_join(&w, path, "jobs", &opts), 0);
		uint64_t got;
		size_t len;
		int rc;
		while ((rc = mrb_read(&w, &got, sizeof(got), &len)) == MRB_EEMPTY)
			rtest_sleep_ms(11);
		CHECK_RC(rc, 0);
		CHECK_EQ_U64(got, 0);
		raise(SIGSTOP);
		CHECK_RC(mrb_read(&w, &got, sizeof(got), &len), MRB_ESTALE);
		rtest_send(ch[1], 's');
		while ((rc = mrb_read(&w, &got, sizeof(got), &len)) == MRB_EEMPTY)
			rtest_sleep_ms(1);
		CHECK_RC(rc, 0);
		CHECK_EQ_U64(got, 3);
		CHECK_RC(mrb_close(&w), 0);
		_exit(0);
	}
	stopped_child = b;
	atexit(kill_stopped_child);
	wait_stopped(b);

	/* C: the new messages, and message 0 again once B counts as hung. */
	for (seq = 1; seq < 3; seq++)
		CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
	struct mrb_ring w;
	CHECK_RC(mrb_worker_join(&w, path, "jobs", &opts), 0);
	unsigned seen = 0;
	int64_t deadline = rtest_now_ns() + 5 * 1000000000LL;
	for (;;) {
		uint64_t got;
		size_t len;
		int rc = mrb_read(&w, &got, sizeof(got), &len);
		if (rc == 0) {
			CHECK(got < 3 && (seen & 1u << got) == 0);
			seen |= 1u << got;
			continue;
		}
		CHECK_RC(rc, MRB_EEMPTY);
		struct mrb_stats st;
		CHECK_RC(mrb_stats(&ring, &st), 0);
		if (seen == 7 && st.consumer_position == st.producer_position)
			break;
		if (rtest_now_ns() > deadline)
			FAIL("messages seen %#x, consumer_position %" PRIu64
			     ", producer_position %" PRIu64 " (the hung rescuer's run gates R)",
			     seen, st.consumer_position, st.producer_position);
		rtest_sleep_ms(11);
	}
	struct mrb_group_info g;
	CHECK_RC(mrb_worker_groups(&ring, &g, 1), 1);
	CHECK_EQ_U64(g.redelivered, 2); /* by B, then by C */
	CHECK_EQ_U64(g.stale_releases, 0);
	CHECK_RC(mrb_close(&w), 0); /* B takes what comes next */

	kill(b, SIGCONT);
	CHECK(rtest_recv(ch[0]) == 's');
	seq = 3;
	CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
	int status = rtest_wait(b);
	stopped_child = 0;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_RC(mrb_worker_groups(&ring, &g, 1), 1);
	CHECK_EQ_U64(g.redelivered, 2);
	CHECK_EQ_U64(g.stale_releases, 1);
	CHECK_EQ_U64(g.messages_done, 4); /* 1, 2 and 0 by C, 3 by B */
	CHECK_RC(mrb_close(&ring), 0);
	printf("worker_rescuer_hang: ok\n");
	return 0;
}
