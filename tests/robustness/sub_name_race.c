/* SPDX-License-Identifier: MIT */
/*
 * Description: several processes join the same subscriber name at the same
 * instant. Exactly one wins; every other gets MRB_ENAMEBUSY, and the table
 * lists the name once. Even rounds race for a name nobody has (each joiner
 * takes an entry of its own, so they must settle it between them); odd
 * rounds for a name whose holder closed (a takeover of the kept entry).
 */
#include <sched.h>
#include <sys/mman.h>

#include "rtest.h"

#define RACERS 6
#define ROUNDS 60

static int rounds = ROUNDS;

struct shared {
	_Atomic uint32_t go;
	_Atomic uint32_t ready;
	_Atomic int32_t rc[RACERS];
	_Atomic uint32_t done[RACERS];
	_Atomic uint32_t release;
};

static struct shared *shm;
static const char *ring_path;

static void racer(int k)
{
	struct mrb_ring sub;
	struct mrb_subscribe_options opts = {0, "race", 0};
	atomic_fetch_add(&shm->ready, 1);
	while (!atomic_load(&shm->go))
		sched_yield();
	/* A different head start each time, so that joiners interleave at
	 * different points of the join. */
	uint64_t spin = ((uint64_t)getpid() * 2654435761u) % 2000;
	for (volatile uint64_t i = 0; i < spin; i++) {
	}
	int rc = mrb_subscribe(&sub, ring_path, &opts);
	atomic_store(&shm->rc[k], rc);
	atomic_store(&shm->done[k], 1);
	if (rc == 0) {
		/* Hold the name until every racer has answered. */
		while (!atomic_load(&shm->release))
			sched_yield();
		CHECK_RC(mrb_close(&sub), 0);
	}
	_exit(0);
}

int main(void)
{
	rtest_watchdog(120);
	ring_path = rtest_path("race.ring");
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shm != MAP_FAILED);
	struct mrb_ring ring;
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(&ring, ring_path, 4096, &copts), 0);
	if (getenv("SUB_NAME_RACE_ROUNDS") != NULL)
		rounds = atoi(getenv("SUB_NAME_RACE_ROUNDS"));
	for (int round = 0; round < rounds; round++) {
		memset(shm, 0, sizeof(*shm));
		pid_t pids[RACERS];
		for (int k = 0; k < RACERS; k++) {
			pids[k] = fork();
			CHECK(pids[k] >= 0);
			if (pids[k] == 0)
				racer(k);
		}
		while (atomic_load(&shm->ready) < RACERS)
			sched_yield();
		atomic_store(&shm->go, 1);
		for (int k = 0; k < RACERS; k++)
			while (!atomic_load(&shm->done[k]))
				sched_yield();
		int winners = 0;
		for (int k = 0; k < RACERS; k++) {
			int rc = atomic_load(&shm->rc[k]);
			if (rc == 0)
				winners++;
			else if (rc != MRB_ENAMEBUSY)
				FAIL("round %d racer %d: %d (%s)", round, k, rc, mrb_strerror(rc));
		}
		struct mrb_subscriber_info list[MRB_MAX_SUBSCRIBERS];
		int64_t n = mrb_subscribers(&ring, list, MRB_MAX_SUBSCRIBERS);
		int named = 0;
		for (int64_t i = 0; i < n; i++)
			if (strcmp(list[i].name, "race") == 0)
				named++;
		if (winners != 1 || named != 1)
			FAIL("round %d: %d winners, the name listed %d times (%" PRId64 " entries)",
			     round, winners, named, n);
		atomic_store(&shm->release, 1);
		for (int k = 0; k < RACERS; k++)
			rtest_expect_exit0(pids[k], "racer");
		/* Even rounds start from no entry at all, odd ones from the kept
		 * entry of the last winner. */
		if (round % 2 == 1)
			CHECK_RC(mrb_unsubscribe(ring_path, "race"), 0);
		CHECK_RC(mrb_subscribers(&ring, NULL, 0), round % 2 == 1 ? 0 : 1);
	}
	CHECK_RC(mrb_close(&ring), 0);
	printf("sub_name_race: ok, %d rounds of %d racers\n", rounds, RACERS);
	return 0;
}
