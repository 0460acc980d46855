/* SPDX-License-Identifier: MIT */
/*
 * Description: closing a handle from another thread wakes that handle's
 * calls blocked forever in mrb_read_wait / mrb_wait_readable (consumer) and
 * mrb_write_wait / mrb_wait_writable (producer on a full ring); they return
 * MRB_ECLOSED, and close returns only after they have left.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "rtest.h"

struct blocked_call {
	struct mrb_ring *ring;
	int kind;
	_Atomic int started;
	int rc;
};

static void *run_blocked(void *arg)
{
	struct blocked_call *call = arg;
	uint8_t buf[64];
	size_t len;
	atomic_store(&call->started, 1);
	switch (call->kind) {
	case 0:
		call->rc = mrb_read_wait(call->ring, buf, sizeof(buf), &len, -1);
		break;
	case 1:
		call->rc = mrb_wait_readable(call->ring, -1);
		break;
	case 2:
		memset(buf, 1, sizeof(buf));
		call->rc = mrb_write_wait(call->ring, buf, 64, -1);
		break;
	default:
		call->rc = mrb_wait_writable(call->ring, 64, -1);
		break;
	}
	return NULL;
}

int main(void)
{
	rtest_watchdog(45);
	const char *path = rtest_path("ring");
	for (int kind = 0; kind < 4; kind++) {
		struct mrb_ring ring;
		rtest_create(&ring, path, 256);
		if (kind >= 2) {
			/* Fill the ring so that a 64-byte write has no room. */
			uint8_t msg[64] = {0};
			int writes = 0;
			while (mrb_write(&ring, msg, sizeof(msg)) == 0)
				writes++;
			CHECK(writes > 0);
			CHECK_RC(mrb_write(&ring, msg, sizeof(msg)), MRB_EFULL);
		}
		struct blocked_call call = {.ring = &ring, .kind = kind, .rc = 12345};
		pthread_t thread;
		CHECK(pthread_create(&thread, NULL, run_blocked, &call) == 0);
		while (!atomic_load(&call.started))
			rtest_sleep_ms(1);
		/* Long enough to be asleep in the futex, past the spin phase. */
		rtest_sleep_ms(200);
		CHECK_RC(mrb_close(&ring), 0);
		CHECK(pthread_join(thread, NULL) == 0);
		if (call.rc != MRB_ECLOSED)
			FAIL("kind %d: blocked call returned %d (%s), expected MRB_ECLOSED", kind,
			     call.rc, mrb_strerror(call.rc));
		CHECK_RC(mrb_close(&ring), MRB_ECLOSED);
	}
	return 0;
}
