/* SPDX-License-Identifier: MIT */
/*
 * Description: a subscriber SIGKILLed while asleep in mrb_read_wait leaves
 * its increment of data_waiters behind (its entry's data_waiting share).
 * Once its entry is reaped, producers must stop paying a futex wake-up for
 * it: data_waiters is back to 0 and writes no longer bump data_seq. Three
 * sleepers on a fan-out ring, each alone: an unnamed durable subscriber
 * (freed when producers short of space find it dead), a named durable one
 * (detached, kept), and a lossy tap, which never holds producers back and
 * so is never judged by a producer short of space: writes that find a
 * sleeper's share must look for dead sleepers themselves. And a dead lossy
 * tap's entry must also stop making producers copy with atomic words
 * (validating_readers).
 */
#include "ring_bytes.h"
#include "rtest.h"

#define OFF_VALIDATING_READERS 0x108

static const char *path;

static pid_t sleeper(const struct mrb_subscribe_options *opts)
{
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring sub;
		CHECK_RC(mrb_subscribe(&sub, path, opts), 0);
		rtest_send(p[1], 'j');
		uint8_t buf[256];
		size_t len;
		mrb_read_wait(&sub, buf, sizeof(buf), &len, -1);
		_exit(1);
	}
	close(p[1]);
	CHECK(rtest_recv(p[0]) == 'j');
	close(p[0]);
	return pid;
}

/* Writes until `done` says the dead sleeper's entry is reaped (or a
 * deadline passes), as producers do: EFULL is waited out briefly. */
static void write_until(struct mrb_ring *ring, int (*done)(struct mrb_ring *), const char *what)
{
	int64_t deadline = rtest_now_ns() + 20 * 1000000000LL;
	uint8_t msg[100] = {1};
	while (!done(ring)) {
		if (rtest_now_ns() > deadline)
			FAIL("%s: the dead sleeper's entry was never reaped", what);
		int rc = mrb_write(ring, msg, sizeof(msg));
		if (rc == MRB_EFULL)
			rtest_sleep_ms(2);
		else
			CHECK_RC(rc, 0);
	}
}

static int no_entries(struct mrb_ring *ring)
{
	return mrb_subscribers(ring, NULL, 0) == 0;
}

static int detached(struct mrb_ring *ring)
{
	struct mrb_subscriber_info info;
	CHECK_RC(mrb_subscribers(ring, &info, 1), 1);
	return info.state == MRB_SUBSCRIBER_DETACHED;
}

static int no_waiters(struct mrb_ring *ring)
{
	rtest_sleep_ms(1);
	return ring_load32(ring, OFF_DATA_WAITERS) == 0;
}

/* Nobody is asleep: writes must not take the wake-up path. */
static int check_no_wakeups(struct mrb_ring *ring, const char *what)
{
	uint32_t seq = ring_load32(ring, OFF_DATA_SEQ);
	uint8_t msg[100] = {2};
	for (int i = 0; i < 10; i++) {
		int rc = mrb_write(ring, msg, sizeof(msg));
		CHECK(rc == 0 || rc == MRB_EFULL);
	}
	if (ring_load32(ring, OFF_DATA_WAITERS) != 0 || ring_load32(ring, OFF_DATA_SEQ) != seq) {
		fprintf(stderr,
		        "FAIL: %s: writers still wake a dead subscriber: data_waiters = %u\n", what,
		        ring_load32(ring, OFF_DATA_WAITERS));
		return 1;
	}
	return 0;
}

static void fresh(struct mrb_ring *ring)
{
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(ring, path, 4096, &copts), 0);
}

static void wait_asleep(struct mrb_ring *ring)
{
	while (ring_load32(ring, OFF_DATA_WAITERS) == 0)
		rtest_sleep_ms(1);
}

int main(void)
{
	rtest_watchdog(100);
	path = rtest_path("ring");
	struct mrb_ring ring;
	int failed = 0;

	fresh(&ring);
	struct mrb_subscribe_options unnamed = {0, NULL, 0};
	pid_t s = sleeper(&unnamed);
	wait_asleep(&ring);
	rtest_kill(s);
	write_until(&ring, no_entries, "unnamed");
	failed |= check_no_wakeups(&ring, "unnamed");
	CHECK_RC(mrb_close(&ring), 0);

	fresh(&ring);
	struct mrb_subscribe_options named = {0, "n", 0};
	s = sleeper(&named);
	wait_asleep(&ring);
	rtest_kill(s);
	write_until(&ring, detached, "named");
	failed |= check_no_wakeups(&ring, "named");
	CHECK_RC(mrb_close(&ring), 0);

	fresh(&ring);
	struct mrb_subscribe_options lossy = {MRB_SUBSCRIBE_LOSSY, NULL, 0};
	s = sleeper(&lossy);
	wait_asleep(&ring);
	CHECK_EQ_U64(ring_load32(&ring, OFF_VALIDATING_READERS), 1);
	rtest_kill(s);
	write_until(&ring, no_waiters, "lossy");
	failed |= check_no_wakeups(&ring, "lossy");
	CHECK_RC(mrb_subscribers(&ring, NULL, 0), 0);
	CHECK_EQ_U64(ring_load32(&ring, OFF_VALIDATING_READERS), 0);
	CHECK_RC(mrb_close(&ring), 0);
	if (!failed)
		printf("sub_waiters_after_kill: ok\n");
	return failed;
}
