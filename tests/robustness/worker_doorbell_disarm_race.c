/* SPDX-License-Identifier: MIT */
/*
 * Description: a worker that arms and disarms in a tight loop (never
 * reading), so that rings keep landing on it just as it disarms, beside a
 * worker that waits on its doorbell with no bound at all (epoll_wait -1
 * where the library says 100 ms: that bound is for rescues, and nobody
 * dies here). A producer writes 3000 bursts of 1..3 messages, each burst
 * once the previous one is read. Every commit rings every armed worker,
 * so the waiting worker is rung for every burst whatever the other does:
 * a message stranded while it waits armed hangs the test (watchdog).
 * Every message is read exactly once, by the waiting worker, and at the
 * end no doorbell is armed and data_waiters and work_armed are 0.
 */
#include "wdoor.h"

#include <stdbool.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#define BURSTS 3000

struct shared {
	_Atomic uint64_t read;  /* messages read by the waiting worker */
	_Atomic uint64_t wrong; /* out of order */
	_Atomic int stop;
	_Atomic uint64_t flips; /* the flipper's arm/disarm pairs */
	_Atomic uint64_t rung;  /* its rings */
};

static const char *path;
static struct shared *sh;

static void flipper(void)
{
	struct mrb_ring w;
	CHECK_RC(mrb_worker_join(&w, path, "jobs", NULL), 0);
	int fd = mrb_doorbell_fd(&w, MRB_DOORBELL_READ);
	CHECK(fd >= 0);
	while (!atomic_load(&sh->stop)) {
		int timeout_ms;
		int rc = mrb_arm_read(&w, &timeout_ms);
		if (rc < 0)
			FAIL("flipper arm: %s", mrb_strerror(rc));
		CHECK_RC(mrb_disarm(&w, MRB_DOORBELL_READ), 0);
		char b[8];
		if (recv(fd, b, sizeof(b), MSG_DONTWAIT) > 0)
			atomic_fetch_add(&sh->rung, 1);
		atomic_fetch_add(&sh->flips, 1);
	}
	CHECK_RC(mrb_close(&w), 0);
	_exit(0);
}

static void waiter(void)
{
	struct mrb_ring w;
	CHECK_RC(mrb_worker_join(&w, path, "jobs", NULL), 0);
	int ep = wdoor_epoll(&w);
	uint64_t expect = 0;
	while (!atomic_load(&sh->stop)) {
		uint64_t seq;
		size_t len;
		int rc;
		while ((rc = mrb_read(&w, &seq, sizeof(seq), &len)) == 0) {
			if (len != sizeof(seq) || seq != expect)
				atomic_fetch_add(&sh->wrong, 1);
			expect = seq + 1;
			atomic_fetch_add(&sh->read, 1);
		}
		if (rc != MRB_EEMPTY)
			FAIL("waiter read: %s", mrb_strerror(rc));
		int timeout_ms;
		rc = mrb_arm_read(&w, &timeout_ms);
		if (rc == 1)
			continue;
		if (rc != 0)
			FAIL("waiter arm: %s", mrb_strerror(rc));
		struct epoll_event got;
		/* Unbounded but for the library's shorter bounds (its
		 * membarrier failed: 1 ms); the stop is announced by a write. */
		epoll_wait(ep, &got, 1, timeout_ms == 100 ? -1 : timeout_ms);
	}
	CHECK_RC(mrb_close(&w), 0);
	_exit(0);
}

static pid_t spawn(void (*fn)(void))
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fn();
	}
	return pid;
}

int main(void)
{
	rtest_watchdog(50);
	path = rtest_path("ring");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
	struct mrb_ring ring;
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(&ring, path, 65536, &copts), 0);
	pid_t w = spawn(waiter);
	while (armed_slots(&ring) == 0)
		rtest_sleep_ms(1);
	pid_t f = spawn(flipper);
	while (atomic_load(&sh->flips) == 0)
		rtest_sleep_ms(1);
	unsigned r = 12345;
	uint64_t seq = 0;
	for (int b = 0; b < BURSTS; b++) {
		int n = 1 + (int)(rand_r(&r) % 3);
		for (int i = 0; i < n; i++, seq++)
			CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
		while (atomic_load(&sh->read) != seq)
			sched_yield();
	}
	atomic_store(&sh->stop, 1);
	uint64_t last = UINT64_MAX;
	CHECK_RC(mrb_write(&ring, &last, sizeof(last)), 0); /* wakes the waiter */
	rtest_expect_exit0(w, "waiter");
	rtest_expect_exit0(f, "flipper");
	printf("%" PRIu64 " messages; the flipper armed and disarmed %" PRIu64
	       " times, rung %" PRIu64 " times\n",
	       seq, (uint64_t)atomic_load(&sh->flips), (uint64_t)atomic_load(&sh->rung));
	CHECK_EQ_U64(atomic_load(&sh->wrong), 0);
	CHECK(atomic_load(&sh->read) == seq || atomic_load(&sh->read) == seq + 1);
	CHECK_EQ_U64(armed_slots(&ring), 0);
	CHECK_EQ_U64(work_armed(&ring, 0), 0);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 0);
	CHECK_RC(mrb_close(&ring), 0);
	printf("worker_doorbell_disarm_race: ok\n");
	return 0;
}
