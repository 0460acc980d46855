/* SPDX-License-Identifier: MIT */
/*
 * Description: the largest timeouts the API allows (INT64_MAX) mean "no
 * deadline" without signed overflow (UBSan aborts on it in the asan
 * build), for reads and writes; issue 11, item 9.
 */
#include <pthread.h>
#include <stdint.h>

#include "rtest.h"

static struct mrb_ring ring;

static void *late_writer(void *arg)
{
	(void)arg;
	rtest_sleep_ms(100);
	CHECK_RC(mrb_write(&ring, "late", 4), 0);
	return NULL;
}

int main(void)
{
	rtest_watchdog(30);
	rtest_create(&ring, rtest_path("ring"), 256);
	pthread_t writer;
	CHECK(pthread_create(&writer, NULL, late_writer, NULL) == 0);
	char buf[8];
	size_t len;
	CHECK_RC(mrb_read_wait(&ring, buf, sizeof(buf), &len, INT64_MAX), 0);
	CHECK(len == 4);
	CHECK(pthread_join(writer, NULL) == 0);
	CHECK_RC(mrb_write_wait(&ring, "x", 1, INT64_MAX), 0);
	CHECK_RC(mrb_wait_readable(&ring, INT64_MAX - 1), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
