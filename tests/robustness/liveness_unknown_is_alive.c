/* SPDX-License-Identifier: MIT */
/*
 * Description: "cannot check" never means "dead" (issue 11, item 10). A
 * consumer whose kill(2) is filtered by seccomp (every call fails with
 * EACCES) leaves a live writer's unfinished record alone: no recovery, and
 * the message arrives once the writer commits. A writer that really is gone
 * is still recognised through /proc (its entry is gone while this process's
 * is there), so the filter does not make dead writers immortal either.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "rtest.h"

static void filter_kill(void)
{
	struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_kill, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
	CHECK(kill(getpid(), 0) == -1 && errno == EACCES);
}

/* A writer that reserves 10 bytes, reports, commits on 'c', then waits. */
static pid_t reserving_writer(const char *path, int to_child[2], int from_child[2])
{
	CHECK(pipe(to_child) == 0 && pipe(from_child) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring w;
		CHECK_RC(mrb_open(&w, path, 0), 0);
		struct mrb_reservation res;
		CHECK_RC(mrb_reserve(&w, 10, &res), 0);
		memcpy(res.data, "reserved!!", 10);
		rtest_send(from_child[1], 'r');
		CHECK(rtest_recv(to_child[0]) == 'c');
		CHECK_RC(mrb_commit(&w, &res), 0);
		rtest_send(from_child[1], 'd');
		for (;;)
			pause();
	}
	CHECK(rtest_recv(from_child[0]) == 'r');
	return pid;
}

int main(void)
{
	rtest_watchdog(60);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 4096);
	int to_child[2], from_child[2];

	/* 1. A live writer, seen through a filtered kill: waited for. */
	pid_t writer = reserving_writer(path, to_child, from_child);
	CHECK_RC(mrb_write(&ring, "behind", 6), 0);
	pid_t consumer = fork();
	CHECK(consumer >= 0);
	if (consumer == 0) {
		filter_kill();
		struct mrb_ring c;
		CHECK_RC(mrb_open(&c, path, 0), 0);
		char buf[16];
		size_t len;
		CHECK_RC(mrb_read_wait(&c, buf, sizeof(buf), &len, 300 * 1000000LL), MRB_ETIMEDOUT);
		struct mrb_stats st;
		CHECK_RC(mrb_stats(&c, &st), 0);
		CHECK_EQ_U64(st.recovered_records, 0);
		CHECK_RC(mrb_close(&c), 0);
		_exit(0);
	}
	rtest_expect_exit0(consumer, "filtered consumer, live writer");
	rtest_send(to_child[1], 'c');
	CHECK(rtest_recv(from_child[0]) == 'd');
	char buf[16];
	size_t len;
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
	CHECK(len == 10 && memcmp(buf, "reserved!!", 10) == 0);
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
	CHECK(len == 6 && memcmp(buf, "behind", 6) == 0);
	rtest_kill(writer);

	/* 2. A dead writer, seen through the same filter: recovered. */
	writer = reserving_writer(path, to_child, from_child);
	CHECK_RC(mrb_write(&ring, "after", 5), 0);
	rtest_kill(writer);
	CHECK_RC(mrb_close(&ring), 0); /* hand the consumer role over */
	consumer = fork();
	CHECK(consumer >= 0);
	if (consumer == 0) {
		filter_kill();
		struct mrb_ring c;
		CHECK_RC(mrb_open(&c, path, 0), 0);
		char cbuf[16];
		size_t clen;
		CHECK_RC(mrb_read_wait(&c, cbuf, sizeof(cbuf), &clen, 30LL * 1000000000), 0);
		CHECK(clen == 5 && memcmp(cbuf, "after", 5) == 0);
		struct mrb_stats st;
		CHECK_RC(mrb_stats(&c, &st), 0);
		CHECK_EQ_U64(st.recovered_records, 1);
		CHECK_RC(mrb_close(&c), 0);
		_exit(0);
	}
	rtest_expect_exit0(consumer, "filtered consumer, dead writer");
	return 0;
}
