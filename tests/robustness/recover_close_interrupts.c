/* SPDX-License-Identifier: MIT */
/*
 * Description: mrb_recover observing a stuck record for a long grace period
 * does not hold up mrb_close of its handle (close returns promptly and the
 * recover call returns MRB_ECLOSED), and it returns early, recovering
 * nothing, when the record is committed during the grace period; issue 11,
 * item 6.
 */
#include <pthread.h>

#include "rtest.h"

static struct mrb_ring consumer;
static int recover_rc;

static void *long_recover(void *arg)
{
	(void)arg;
	recover_rc = mrb_recover(&consumer, 60LL * 1000000000);
	return NULL;
}

int main(void)
{
	rtest_watchdog(60);
	const char *path = rtest_path("ring");
	rtest_create(&consumer, path, 4096);
	struct mrb_ring writer;
	CHECK_RC(mrb_open(&writer, path, 0), 0);
	struct mrb_reservation res;

	/* 1. Committed during the grace period: recover returns 0 early. */
	CHECK_RC(mrb_reserve(&writer, 8, &res), 0);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, long_recover, NULL) == 0);
	rtest_sleep_ms(100);
	CHECK_RC(mrb_commit(&writer, &res), 0);
	int64_t start = rtest_now_ns();
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(rtest_now_ns() - start < 5LL * 1000000000);
	CHECK_RC(recover_rc, 0);
	char buf[16];
	size_t len;
	CHECK_RC(mrb_read(&consumer, buf, sizeof(buf), &len), 0);
	CHECK(len == 8);

	/* 2. Closed during the grace period: close does not wait it out. */
	CHECK_RC(mrb_reserve(&writer, 8, &res), 0);
	CHECK(pthread_create(&t, NULL, long_recover, NULL) == 0);
	rtest_sleep_ms(100);
	start = rtest_now_ns();
	CHECK_RC(mrb_close(&consumer), 0);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(rtest_now_ns() - start < 5LL * 1000000000);
	CHECK_RC(recover_rc, MRB_ECLOSED);
	CHECK_RC(mrb_abort(&writer, &res), 0);
	CHECK_RC(mrb_close(&writer), 0);
	return 0;
}
