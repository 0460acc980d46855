/* SPDX-License-Identifier: MIT */
/*
 * Description: removing a worker group (mrb_worker_group_remove) against
 * worker processes that join, hang and die:
 *   1. a join stopped (SIGSTOP) right after it found the group and made a
 *      worker slot busy: the removal must not remove the group under it
 *      (the join holds the group table: MRB_ETIMEDOUT after 0.5 s); once
 *      continued, the joiner is a worker of a listed group of that name,
 *      and the removal is refused while it lives (MRB_ENAMEBUSY), also
 *      while it is stopped (a hung worker is alive);
 *   2. once it is killed holding a message, the removal succeeds: the group
 *      and its dead worker are gone, producers are no longer held back
 *      (a full ring takes writes again), and a new group of that name
 *      starts at the oldest message in the ring.
 * A join looks the group up and takes its slot under the group table lock,
 * so that a removal (under the lock too) sees every worker of the group;
 * in two steps, a removal between them would leave the joiner a worker of
 * a removed group (or of the next group created in its place).
 */
#include "wdoor.h"

static void wait_stopped(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, WUNTRACED) < 0)
		CHECK(errno == EINTR);
	if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP)
		FAIL("child %d did not stop (status %#x)", (int)pid, status);
}

static pid_t child;

static void kill_child(void)
{
	if (child > 0)
		kill(child, SIGKILL);
}

int main(void)
{
	rtest_watchdog(30);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(&ring, path, 4096, &copts), 0);
	atexit(kill_child);
	int ch[2];
	CHECK(pipe(ch) == 0);

	/* The group exists (a worker joined and left). */
	struct mrb_ring w;
	CHECK_RC(mrb_worker_join(&w, path, "jobs", NULL), 0);
	CHECK_RC(mrb_close(&w), 0);

	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		CHECK_RC(
		    mrb__test_worker_join(&w, path, "jobs", NULL, MRB_TEST_WORKER_STOP_SLOT_TAKE),
		    0);
		/* Its group is listed, under its name. */
		struct mrb_worker_info wi;
		CHECK_RC(mrb_workers(&w, &wi, 1), 1);
		CHECK_EQ_U64(wi.pid, getpid());
		struct mrb_group_info gi[4];
		int64_t n = mrb_worker_groups(&w, gi, 4);
		CHECK_RC(n, 1);
		CHECK_EQ_U64(gi[0].index, wi.group);
		CHECK(strcmp(gi[0].name, "jobs") == 0);
		rtest_send(ch[1], 'j');
		uint8_t got[64];
		size_t len;
		int rc;
		while ((rc = mrb_read(&w, got, sizeof(got), &len)) == MRB_EEMPTY)
			rtest_sleep_ms(1);
		CHECK_RC(rc, 0);
		rtest_send(ch[1], 'r');
		for (;;)
			pause();
	}
	wait_stopped(child);
	CHECK_RC(mrb_worker_group_remove(path, "jobs"), MRB_ETIMEDOUT);
	kill(child, SIGCONT);
	CHECK(rtest_recv(ch[0]) == 'j');
	CHECK_RC(mrb_worker_group_remove(path, "jobs"), MRB_ENAMEBUSY);
	kill(child, SIGSTOP);
	wait_stopped(child);
	CHECK_RC(mrb_worker_group_remove(path, "jobs"), MRB_ENAMEBUSY);
	kill(child, SIGCONT);

	/* 40-byte messages take 64 bytes: 64 fill the 4 KiB ring. The worker
	 * takes message 0 and is killed holding it. */
	uint8_t msg[40] = {0};
	for (uint64_t seq = 0; seq < 64; seq++) {
		memcpy(msg, &seq, sizeof(seq));
		CHECK_RC(mrb_write(&ring, msg, sizeof(msg)), 0);
	}
	CHECK(rtest_recv(ch[0]) == 'r');
	rtest_kill(child);
	child = 0;
	CHECK_RC(mrb_write(&ring, msg, sizeof(msg)), MRB_EFULL);
	CHECK_RC(mrb_worker_group_remove(path, "jobs"), 0);
	CHECK_RC(mrb_worker_group_remove(path, "jobs"), -ENOENT);
	CHECK_RC(mrb_worker_groups(&ring, NULL, 0), 0);
	CHECK_RC(mrb_workers(&ring, NULL, 0), 0);
	uint64_t seq = 64;
	memcpy(msg, &seq, sizeof(seq));
	CHECK_RC(mrb_write(&ring, msg, sizeof(msg)), 0);
	CHECK_RC(mrb_worker_join(&w, path, "jobs", NULL), 0);
	uint8_t buf[64];
	size_t len;
	CHECK_RC(mrb_read(&w, buf, sizeof(buf), &len), 0);
	CHECK_EQ_U64(len, 40);
	memcpy(&seq, buf, sizeof(seq));
	CHECK_EQ_U64(seq, 64);
	CHECK_RC(mrb_read(&w, buf, sizeof(buf), &len), MRB_EEMPTY);
	CHECK_RC(mrb_close(&w), 0);
	CHECK_RC(mrb_close(&ring), 0);
	printf("worker_group_remove: ok\n");
	return 0;
}
