/* SPDX-License-Identifier: MIT */
/*
 * Description: a subscriber joining from the oldest message is passed by a
 * release that did not see its entry (docs/FORMAT.md section 8, Joining),
 * made to happen every time: a producer process fills a fan-out ring that a
 * subscriber holds and waits for room; once that subscriber left, the
 * release its wait starts (no subscriber: up to the producer position)
 * stops the process (SIGSTOP, mrb__test_stop_next_release) after reading
 * the reader table and before its CAS on R. Subscribers join meanwhile
 * (from R, the oldest message), then the producer goes on: its CAS takes R
 * past them once, and it writes until the ring is full again.
 *
 * A durable joiner that has handed nothing over loses nothing: it resumes at
 * the new R, where the join took effect, and reads every message from there
 * exactly once, in order, with no MRB_ELAPPED and no lost bytes, whether the
 * producer overwrote its backlog or not. One that read a message before the
 * pass (R held at the join point by a second joiner) lost what followed it:
 * MRB_ELAPPED once, the skipped bytes counted, then every message from the
 * new R. An evictable joiner reports the pass as a loss, as any lap.
 */
#include <signal.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "sub_join_common.h"

/* Is the producer still stopped where it stopped itself? If something
 * else continued it (a machine whose processes are paused and continued
 * from outside), the case is spoiled: the producer is killed and the case
 * retried. */
static bool producer_held(pid_t pid)
{
	if (join_stopped(pid))
		return true;
	fprintf(stderr, "sub_join_passed: the producer was continued from outside; retrying\n");
	kill(pid, SIGKILL);
	rtest_wait(pid);
	return false;
}

/* Lets the producer's release go on and waits for it (false: spoiled). */
static bool resume_producer(pid_t pid, uint64_t limit)
{
	atomic_store(&join_shm->limit, limit);
	if (!producer_held(pid))
		return false;
	CHECK(kill(pid, SIGCONT) == 0);
	rtest_expect_exit0(pid, "producer");
	return true;
}

static void subscribe(struct mrb_ring *sub, const char *path, unsigned flags)
{
	struct mrb_subscribe_options opts = {MRB_SUBSCRIBE_FROM_OLDEST | flags, NULL, 0};
	if ((flags & MRB_SUBSCRIBE_EVICT) != 0)
		opts.evict_after_ns = 60 * 1000000000LL;
	CHECK_RC(mrb_subscribe(sub, path, &opts), 0);
}

/* Reads everything there is: the first message must be `first` (after one
 * MRB_ELAPPED if `elapsed`), the rest consecutive up to `end`. `peek`:
 * mrb_peek and mrb_release instead of mrb_read. */
static void read_all(struct mrb_ring *sub, uint64_t first, uint64_t end, bool elapsed, bool peek,
                     const char *who)
{
	uint64_t next = first;
	bool reported = false;
	for (;;) {
		uint8_t buf[LEN];
		size_t len = 0;
		struct mrb_view view;
		int rc = peek ? mrb_peek(sub, &view) : mrb_read(sub, buf, sizeof(buf), &len);
		if (rc == MRB_EEMPTY)
			break;
		if (rc == MRB_ELAPPED && elapsed && !reported) {
			reported = true;
			continue;
		}
		if (rc != 0)
			FAIL("%s: read at seq %" PRIu64 ": %s", who, next, mrb_strerror(rc));
		if (elapsed && !reported)
			FAIL("%s: a message before the loss was reported", who);
		uint64_t seq =
		    peek ? join_check_msg(view.data, view.len, who) : join_check_msg(buf, len, who);
		if (seq != next)
			FAIL("%s: seq %" PRIu64 " where %" PRIu64 " was due", who, seq, next);
		if (peek)
			CHECK_RC(mrb_release(sub, &view), 0);
		next++;
	}
	if (elapsed && !reported)
		FAIL("%s: no MRB_ELAPPED", who);
	CHECK_EQ_U64(next, end);
}

static void check_loss(struct mrb_ring *sub, uint64_t bytes, uint64_t events, const char *who)
{
	struct mrb_subscriber_info info;
	CHECK_RC(mrb_subscriber_info(sub, &info), 0);
	if (info.lost_bytes != bytes || info.lost_events != events)
		FAIL("%s: lost %" PRIu64 " bytes in %" PRIu64 " events, want %" PRIu64
		     " in %" PRIu64,
		     who, info.lost_bytes, info.lost_events, bytes, events);
}

static bool spoiled(struct mrb_ring *ring, struct mrb_ring *a, struct mrb_ring *b)
{
	CHECK_RC(mrb_close(a), 0);
	if (b != NULL)
		CHECK_RC(mrb_close(b), 0);
	CHECK_RC(mrb_close(ring), 0);
	return false;
}

/* Passed before it read anything, its backlog overwritten meanwhile (the
 * producer wrote a whole lap past the new R). */
static bool passed_and_overwritten(const char *path, bool peek)
{
	struct mrb_ring ring, sub;
	join_create_ring(&ring, path);
	const uint64_t s = FULL; /* written when it stopped */
	pid_t pid = join_start_stopped_producer(path, 0);
	subscribe(&sub, path, 0);
	if (!resume_producer(pid, 0))
		return spoiled(&ring, &sub, NULL);
	uint64_t n = atomic_load(&join_shm->written);
	CHECK_EQ_U64(n, 2 * s);
	const char *who = peek ? "peeking joiner" : "joiner";
	read_all(&sub, s, n, false, peek, who);
	check_loss(&sub, 0, 0, who);
	CHECK_RC(mrb_close(&sub), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return true;
}

/* Passed before it read anything, its backlog still intact: it still
 * starts at the new R (those messages are released, free to be
 * overwritten under it), where the next message goes. */
static bool passed_not_overwritten(const char *path)
{
	struct mrb_ring ring, sub;
	join_create_ring(&ring, path);
	const uint64_t s = FULL; /* written when it stopped */
	pid_t pid = join_start_stopped_producer(path, 0);
	subscribe(&sub, path, 0);
	if (!resume_producer(pid, s))
		return spoiled(&ring, &sub, NULL);
	uint8_t buf[LEN];
	size_t len;
	CHECK_RC(mrb_read(&sub, buf, sizeof(buf), &len), MRB_EEMPTY);
	join_build(buf, s);
	CHECK_RC(mrb_write(&ring, buf, LEN), 0);
	read_all(&sub, s, s + 1, false, false, "joiner, backlog intact");
	check_loss(&sub, 0, 0, "joiner, backlog intact");
	CHECK_RC(mrb_close(&sub), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return true;
}

/* Reads its first message before the release goes on: its read moves R
 * off the join point, so the release that missed it cannot pass it. */
static bool read_first(const char *path)
{
	struct mrb_ring ring, sub;
	join_create_ring(&ring, path);
	const uint64_t s = FULL; /* written when it stopped */
	pid_t pid = join_start_stopped_producer(path, 0);
	subscribe(&sub, path, 0);
	if (!producer_held(pid))
		return spoiled(&ring, &sub, NULL);
	uint8_t buf[LEN];
	size_t len;
	CHECK_RC(mrb_read(&sub, buf, sizeof(buf), &len), 0);
	CHECK_EQ_U64(join_check_msg(buf, len, "first reader"), 0);
	if (!resume_producer(pid, 0))
		return spoiled(&ring, &sub, NULL);
	/* R waited for it: one message's room. */
	CHECK_EQ_U64(atomic_load(&join_shm->written), s + 1);
	read_all(&sub, 1, s + 1, false, false, "first reader");
	check_loss(&sub, 0, 0, "first reader");
	CHECK_RC(mrb_close(&sub), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return true;
}

/* Two joiners from the same moment: the first reads a message (R stays at
 * the join point: the second holds it there), then the release passes
 * both. The first had handed a message over: a loss, reported. The second
 * had not: none. Both then read every message from the new R. */
static bool two_joiners(const char *path)
{
	struct mrb_ring ring, first, second;
	join_create_ring(&ring, path);
	const uint64_t s = FULL; /* written when it stopped */
	pid_t pid = join_start_stopped_producer(path, 0);
	subscribe(&first, path, 0);
	subscribe(&second, path, 0);
	if (!producer_held(pid))
		return spoiled(&ring, &first, &second);
	uint8_t buf[LEN];
	size_t len;
	CHECK_RC(mrb_read(&first, buf, sizeof(buf), &len), 0);
	CHECK_EQ_U64(join_check_msg(buf, len, "first joiner"), 0);
	if (!resume_producer(pid, 0))
		return spoiled(&ring, &first, &second);
	uint64_t n = atomic_load(&join_shm->written);
	CHECK_EQ_U64(n, 2 * s);
	read_all(&first, s, n, true, false, "first joiner");
	check_loss(&first, (s - 1) * SPAN, 1, "first joiner");
	read_all(&second, s, n, false, false, "second joiner");
	check_loss(&second, 0, 0, "second joiner");
	CHECK_RC(mrb_close(&first), 0);
	CHECK_RC(mrb_close(&second), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return true;
}

/* An evictable joiner validates every copy and reports any lap as a loss;
 * the pass is no exception. */
static bool evictable(const char *path)
{
	struct mrb_ring ring, sub;
	join_create_ring(&ring, path);
	const uint64_t s = FULL; /* written when it stopped */
	pid_t pid = join_start_stopped_producer(path, 0);
	subscribe(&sub, path, MRB_SUBSCRIBE_EVICT);
	if (!resume_producer(pid, 0))
		return spoiled(&ring, &sub, NULL);
	uint64_t n = atomic_load(&join_shm->written);
	CHECK_EQ_U64(n, 2 * s);
	/* Lapped: it resumes at the oldest intact record boundary, the
	 * producer position (a multiple of the capacity). */
	read_all(&sub, n, n, true, false, "evictable joiner");
	check_loss(&sub, 2 * s * SPAN, 1, "evictable joiner");
	CHECK_RC(mrb_close(&sub), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return true;
}

static bool passed_and_overwritten_read(const char *path)
{
	return passed_and_overwritten(path, false);
}

static bool passed_and_overwritten_peek(const char *path)
{
	return passed_and_overwritten(path, true);
}

static const struct {
	const char *name;
	bool (*run)(const char *path);
} cases[] = {
    {"passed_and_overwritten_read", passed_and_overwritten_read},
    {"passed_and_overwritten_peek", passed_and_overwritten_peek},
    {"passed_not_overwritten", passed_not_overwritten},
    {"read_first", read_first},
    {"two_joiners", two_joiners},
    {"evictable", evictable},
};

/* Runs every case, or the one named by argv[1]. */
int main(int argc, char **argv)
{
	rtest_watchdog(60);
	join_shm = mmap(NULL, sizeof(*join_shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	                -1, 0);
	CHECK(join_shm != MAP_FAILED);
	bool any = false;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
			continue;
		/* The stop is ours; a continue from outside spoils the case. */
		int attempt = 0;
		while (!cases[i].run(rtest_path(cases[i].name)))
			if (++attempt == 5)
				FAIL("%s: the producer was continued from outside 5 times",
				     cases[i].name);
		any = true;
	}
	CHECK(any);
	printf("sub_join_passed: ok\n");
	return 0;
}
