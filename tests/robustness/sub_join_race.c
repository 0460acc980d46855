/* SPDX-License-Identifier: MIT */
/*
 * Description: durable subscribers join and leave over and over while the
 * release position moves under them: a producer process writes
 * sequence-numbered, checksummed messages as fast as it can; a fast durable
 * subscriber process comes and goes (while it is away there is no durable
 * subscriber, and producers short of space release committed records
 * themselves); joiner processes subscribe (unnamed, unnamed from the
 * oldest message, or with a name they resume), read a random number of
 * messages and close. A joiner must never read a message that producers
 * were allowed to overwrite: every message is intact, each session's
 * messages are consecutive (durable: no gap from where it joined), and a
 * named session resumes right after the last message of the one before.
 */
#include <sched.h>
#include <stdbool.h>
#include <sys/mman.h>

#include "sub_join_common.h"

#define JOINERS 3

struct shared {
	_Atomic uint32_t stop;
	_Atomic uint64_t sessions;
	_Atomic uint64_t messages;
	_Atomic uint64_t named_next; /* the next sequence the named joiner reads */
};

static struct shared *shm;
static const char *ring_path;

static void producer(void)
{
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ring_path, 0), 0);
	uint8_t msg[LEN];
	for (uint64_t seq = 0; !atomic_load(&shm->stop);) {
		join_build(msg, seq);
		int rc = mrb_write(&ring, msg, LEN);
		if (rc == 0) {
			seq++;
			continue;
		}
		if (rc != MRB_EFULL)
			FAIL("producer: %s", mrb_strerror(rc));
		rc = mrb_wait_writable(&ring, LEN, 10 * 1000000LL);
		if (rc != 0 && rc != MRB_ETIMEDOUT)
			FAIL("producer wait: %s", mrb_strerror(rc));
	}
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

/* Reads up to `count` messages of one session; returns the last sequence
 * read + 1, or `first_expected` if none. */
static uint64_t session(struct mrb_ring *sub, uint64_t count, uint64_t first_expected,
                        const char *who)
{
	bool any = first_expected != UINT64_MAX;
	uint64_t next = first_expected;
	uint8_t buf[LEN];
	for (uint64_t i = 0; i < count && !atomic_load(&shm->stop);) {
		size_t len;
		int rc = mrb_read(sub, buf, sizeof(buf), &len);
		if (rc == MRB_EEMPTY) {
			rc = mrb_wait_readable(sub, 20 * 1000000LL);
			if (rc != 0 && rc != MRB_ETIMEDOUT)
				FAIL("%s: wait: %s", who, mrb_strerror(rc));
			continue;
		}
		if (rc != 0)
			FAIL("%s: read: %s", who, mrb_strerror(rc));
		uint64_t seq = join_check_msg(buf, len, who);
		if (any && seq != next)
			FAIL("%s: seq %" PRIu64 " where %" PRIu64 " was due", who, seq, next);
		any = true;
		next = seq + 1;
		i++;
		atomic_fetch_add(&shm->messages, 1);
	}
	return next;
}

static void joiner(int k)
{
	uint64_t rnd = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull + (uint64_t)k;
	while (!atomic_load(&shm->stop)) {
		rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
		/* Joiner 0 resumes its name; while it is away between
		 * sessions its kept entry holds producers back. */
		int kind = k == 0 ? 2 : (int)((rnd >> 33) % 2);
		uint64_t count = 1 + (rnd >> 40) % 400;
		struct mrb_ring sub;
		struct mrb_subscribe_options opts = {0, NULL, 0};
		if (kind == 1)
			opts.flags = MRB_SUBSCRIBE_FROM_OLDEST;
		if (kind == 2)
			opts.name = "named";
		int rc = mrb_subscribe(&sub, ring_path, &opts);
		if (rc != 0)
			FAIL("joiner %d: subscribe: %s", k, mrb_strerror(rc));
		if (opts.name != NULL) {
			uint64_t next = atomic_load(&shm->named_next);
			next = session(&sub, count, next, "named joiner");
			atomic_store(&shm->named_next, next);
		} else {
			session(&sub, count, UINT64_MAX, kind == 1 ? "oldest joiner" : "joiner");
		}
		atomic_fetch_add(&shm->sessions, 1);
		CHECK_RC(mrb_close(&sub), 0);
	}
	_exit(0);
}

/* The fast subscriber: reads a while, leaves, comes back. */
static void fast(void)
{
	while (!atomic_load(&shm->stop)) {
		struct mrb_ring sub;
		CHECK_RC(mrb_subscribe(&sub, ring_path, NULL), 0);
		session(&sub, 2000, UINT64_MAX, "fast");
		CHECK_RC(mrb_close(&sub), 0);
		rtest_sleep_ms(3);
	}
	_exit(0);
}

static pid_t spawn(void (*fn)(int), int arg)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		fn(arg);
	return pid;
}

static void producer_fn(int unused)
{
	(void)unused;
	producer();
}

static void fast_fn(int unused)
{
	(void)unused;
	fast();
}

int main(int argc, char **argv)
{
	long ms = argc > 1 ? atol(argv[1]) * 1000 : 2500;
	rtest_watchdog((unsigned)(ms / 1000) + 60);
	ring_path = rtest_path("join.ring");
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shm != MAP_FAILED);
	atomic_store(&shm->named_next, UINT64_MAX);
	struct mrb_ring ring;
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(&ring, ring_path, RING_SIZE, &copts), 0);
	pid_t pids[JOINERS + 2];
	pids[0] = spawn(producer_fn, 0);
	pids[1] = spawn(fast_fn, 0);
	for (int k = 0; k < JOINERS; k++)
		pids[2 + k] = spawn(joiner, k);
	rtest_sleep_ms(ms);
	atomic_store(&shm->stop, 1);
	for (int i = 0; i < JOINERS + 2; i++)
		rtest_expect_exit0(pids[i], i == 0 ? "producer" : i == 1 ? "fast" : "joiner");
	printf("sub_join_race: ok, %" PRIu64 " sessions read %" PRIu64 " messages\n",
	       atomic_load(&shm->sessions), atomic_load(&shm->messages));
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
