/* SPDX-License-Identifier: MIT */
/*
 * Description: mrb_close called from inside the handle's own read_batch
 * handler or inspect visitor is refused with MRB_EINCALLBACK instead of
 * waiting forever for the calling thread; the handle stays usable and
 * closes normally afterwards (issue 11, item 11).
 */
#include "rtest.h"

static struct mrb_ring ring;
static int handler_rc = 1;

static int close_from_handler(void *ctx, const void *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	handler_rc = mrb_close(&ring);
	return 0;
}

static int close_from_visitor(void *ctx, const struct mrb_record_info *rec)
{
	(void)rec;
	*(int *)ctx = mrb_close(&ring);
	return 1;
}

int main(void)
{
	rtest_watchdog(30);
	rtest_create(&ring, rtest_path("ring"), 4096);
	CHECK_RC(mrb_write(&ring, "a", 1), 0);
	CHECK_RC(mrb_write(&ring, "b", 1), 0);
	int visitor_rc = 1;
	CHECK(mrb_inspect(&ring, close_from_visitor, &visitor_rc, 0) == 1);
	CHECK_RC(visitor_rc, MRB_EINCALLBACK);
	CHECK(mrb_read_batch(&ring, close_from_handler, NULL, 1) == 1);
	CHECK_RC(handler_rc, MRB_EINCALLBACK);
	char buf[4];
	size_t len;
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
	CHECK(len == 1 && buf[0] == 'b');
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
