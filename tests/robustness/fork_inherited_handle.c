/* SPDX-License-Identifier: MIT */
/*
 * Description: a child that inherits a handle across fork(2) gets
 * MRB_EFORKED from every call, and its close touches nothing shared: the
 * parent keeps the consumer role (no second consumer, no duplicate
 * delivery), and a close in the child returns at once even while a parent
 * thread is blocked in mrb_read_wait on the same handle (issue 11, item 3).
 */
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rtest.h"

static struct mrb_ring consumer;

static void *blocked_reader(void *arg)
{
	(void)arg;
	char buf[64];
	size_t len;
	CHECK_RC(mrb_read_wait(&consumer, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
	CHECK(len == 5 && memcmp(buf, "after", 5) == 0);
	return NULL;
}

int main(void)
{
	rtest_watchdog(60);
	const char *path = rtest_path("ring");
	rtest_create(&consumer, path, 4096);
	char buf[64];
	size_t len;
	CHECK_RC(mrb_write(&consumer, "first", 5), 0);
	CHECK_RC(mrb_read(&consumer, buf, sizeof(buf), &len), 0); /* attached */

	/* 1. Every call in the child fails; the child's close is local. */
	CHECK_RC(mrb_write(&consumer, "second", 6), 0);
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		char cbuf[64];
		size_t clen;
		CHECK_RC(mrb_read(&consumer, cbuf, sizeof(cbuf), &clen), MRB_EFORKED);
		CHECK_RC(mrb_write(&consumer, "x", 1), MRB_EFORKED);
		struct mrb_stats st;
		CHECK_RC(mrb_stats(&consumer, &st), MRB_EFORKED);
		CHECK_RC(mrb_close(&consumer), 0);
		_exit(0);
	}
	rtest_expect_exit0(child, "child");
	/* The parent is still the consumer: a new handle cannot read. */
	struct mrb_ring other;
	CHECK_RC(mrb_open(&other, path, 0), 0);
	CHECK_RC(mrb_read(&other, buf, sizeof(buf), &len), MRB_ECONSUMER_BUSY);
	CHECK_RC(mrb_read(&consumer, buf, sizeof(buf), &len), 0);
	CHECK(len == 6 && memcmp(buf, "second", 6) == 0);

	/* 2. A parent thread blocked in a read: the child's close returns
	 * at once and leaves the sleeper alone. */
	pthread_t reader;
	CHECK(pthread_create(&reader, NULL, blocked_reader, NULL) == 0);
	rtest_sleep_ms(100);
	int64_t start = rtest_now_ns();
	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		CHECK_RC(mrb_close(&consumer), 0);
		_exit(0);
	}
	rtest_expect_exit0(child, "child closing beside a blocked reader");
	CHECK(rtest_now_ns() - start < 5LL * 1000000000);
	CHECK_RC(mrb_write(&other, "after", 5), 0);
	CHECK(pthread_join(reader, NULL) == 0);
	CHECK_RC(mrb_close(&other), 0);
	CHECK_RC(mrb_close(&consumer), 0);
	return 0;
}
