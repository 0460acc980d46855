/* SPDX-License-Identifier: MIT */
/*
 * Description: a worker frozen with SIGSTOP while others wait on their
 * doorbells. Two worker processes run the documented epoll loop on a group
 * with a 50 ms hold timeout (at-least-once).
 * 1. One is stopped while armed (holding nothing): the other gets every
 *    one of 500 messages, exactly once, and the first ring took the
 *    stopped worker's registration out (work_armed and data_waiters then
 *    count the running worker alone).
 * 2. SIGCONT: 500 more messages go exactly once across the two.
 * 3. A worker stops itself while holding a message: the other, waiting
 *    armed, rescues it after the hold timeout (redelivered 1) and gets
 *    every later message; after SIGCONT the frozen worker's release is
 *    refused (stale_releases 1) and it gets no further duplicate: that
 *    message is seen twice, every other once.
 */
#include "wdoor.h"

#include <stdbool.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#define COUNT     1600
#define STOP_FLAG 1u

struct msg {
	uint32_t seq;
	uint32_t flags;
	uint64_t check;
};

struct shared {
	_Atomic uint32_t seen[COUNT];
	_Atomic uint32_t by[2][COUNT];
	_Atomic int stopped_self; /* which worker stopped itself, -1 none */
};

static const char *path;
static struct shared *sh;

static uint64_t check_of(uint32_t seq)
{
	return seq * UINT64_C(0x9e3779b97f4a7c15) + 7;
}

static void worker_main(int me)
{
	struct mrb_ring w;
	struct mrb_worker_options opts = {MRB_AT_LEAST_ONCE, 50 * 1000000LL};
	CHECK_RC(mrb_worker_join(&w, path, "jobs", &opts), 0);
	int ep = wdoor_epoll(&w);
	for (;;) {
		struct msg m;
		size_t len;
		int rc;
		while ((rc = mrb_read(&w, &m, sizeof(m), &len)) == 0) {
			if (len != sizeof(m) || m.seq >= COUNT || m.check != check_of(m.seq))
				FAIL("worker %d: a wrong message", me);
			atomic_fetch_add(&sh->seen[m.seq], 1);
			atomic_fetch_add(&sh->by[me][m.seq], 1);
			int none = -1;
			if ((m.flags & STOP_FLAG) != 0 &&
			    atomic_compare_exchange_strong(&sh->stopped_self, &none, me))
				raise(SIGSTOP); /* frozen while holding it */
		}
		if (rc == MRB_ESTALE)
			continue; /* its late release refused (step 3) */
		if (rc != MRB_EEMPTY)
			FAIL("worker %d: read: %s", me, mrb_strerror(rc));
		wdoor_wait(&w, ep);
	}
}

static void write_msgs(struct mrb_ring *ring, uint32_t from, uint32_t to, uint32_t flags)
{
	for (uint32_t s = from; s < to; s++) {
		struct msg m = {s, flags, check_of(s)};
		CHECK_RC(mrb_write_wait(ring, &m, sizeof(m), -1), 0);
		if (s % 16 == 0)
			rtest_sleep_ms(1); /* the workers arm again in between */
	}
}

static void wait_seen(uint32_t from, uint32_t to)
{
	for (uint32_t s = from; s < to; s++)
		while (atomic_load(&sh->seen[s]) == 0)
			rtest_sleep_ms(1);
}

static void wait_armed(struct mrb_ring *ring, unsigned n)
{
	while (armed_slots(ring) != n)
		rtest_sleep_ms(1);
}

int main(void)
{
	rtest_watchdog(20);
	path = rtest_path("ring");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
	atomic_store(&sh->stopped_self, -1);
	struct mrb_ring ring;
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(&ring, path, 8192, &copts), 0);
	pid_t pid[2];
	for (int k = 0; k < 2; k++) {
		pid[k] = fork();
		CHECK(pid[k] >= 0);
		if (pid[k] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			worker_main(k);
			_exit(0);
		}
	}
	wait_armed(&ring, 2);

	/* 1. Worker 0 stopped while armed. */
	kill(pid[0], SIGSTOP);
	write_msgs(&ring, 0, 500, 0);
	wait_seen(0, 500);
	wait_armed(&ring, 1);
	CHECK_EQ_U64(work_armed(&ring, 0), 1);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 1);
	for (uint32_t s = 0; s < 500; s++) {
		CHECK_EQ_U64(atomic_load(&sh->seen[s]), 1);
		CHECK_EQ_U64(atomic_load(&sh->by[1][s]), 1);
	}

	/* 2. Running again: exactly once across both. */
	kill(pid[0], SIGCONT);
	write_msgs(&ring, 500, 1000, 0);
	wait_seen(500, 1000);

	/* 3. A worker frozen while holding a message. */
	wait_armed(&ring, 2);
	write_msgs(&ring, 1000, 1001, STOP_FLAG);
	while (atomic_load(&sh->stopped_self) < 0)
		rtest_sleep_ms(1);
	int frozen = atomic_load(&sh->stopped_self);
	int other = 1 - frozen;
	write_msgs(&ring, 1001, 1500, 0);
	/* Rescued after the hold timeout, by the armed worker. */
	while (atomic_load(&sh->by[other][1000]) == 0)
		rtest_sleep_ms(1);
	wait_seen(1001, 1500);
	for (uint32_t s = 1001; s < 1500; s++)
		CHECK_EQ_U64(atomic_load(&sh->by[other][s]), 1);
	struct mrb_group_info g;
	CHECK_RC(mrb_worker_groups(&ring, &g, 1), 1);
	CHECK_EQ_U64(g.redelivered, 1);
	CHECK_EQ_U64(g.stale_releases, 0);
	kill(pid[frozen], SIGCONT);
	write_msgs(&ring, 1500, COUNT, 0);
	wait_seen(1500, COUNT);
	/* The frozen worker's release, refused, once it read again. */
	while (mrb_worker_groups(&ring, &g, 1) == 1 && g.stale_releases == 0)
		rtest_sleep_ms(1);
	CHECK_EQ_U64(g.stale_releases, 1);
	wait_armed(&ring, 2);
	CHECK_RC(mrb_worker_groups(&ring, &g, 1), 1);
	CHECK_EQ_U64(g.redelivered, 1);
	CHECK_EQ_U64(g.dropped, 0);
	CHECK_EQ_U64(g.messages_done, COUNT);
	for (uint32_t s = 0; s < COUNT; s++)
		if (atomic_load(&sh->seen[s]) != (s == 1000 ? 2u : 1u))
			FAIL("message %u seen %u times", s, atomic_load(&sh->seen[s]));
	CHECK_EQ_U64(atomic_load(&sh->by[frozen][1000]), 1);
	CHECK_EQ_U64(atomic_load(&sh->by[other][1000]), 1);
	CHECK_EQ_U64(work_armed(&ring, 0), 2);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 2);
	for (int k = 0; k < 2; k++) {
		kill(pid[k], SIGKILL);
		CHECK(WIFSIGNALED(rtest_wait(pid[k])));
	}
	CHECK_RC(mrb_close(&ring), 0);
	printf("worker_doorbell_sigstop: ok\n");
	return 0;
}
