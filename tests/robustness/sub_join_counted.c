/* SPDX-License-Identifier: MIT */
/*
 * Description: a durable subscriber joining from the oldest message copies
 * its backlog with validation (docs/FORMAT.md section 8, Joining), and
 * counts itself in the header's validating_readers for exactly as long:
 * from before its join point until it reaches the live end it read there,
 * or leaves, or dies (its entry's VALIDATING flag carries the count).
 *
 * While it is not counted, producers store payloads with plain stores
 * (memcpy) and may hold the sole-producer lease: a release that missed the
 * join (the one pass join_point allows) lets a producer overwrite the
 * backlog the joiner is copying with relaxed atomic loads, a data race in
 * C11 terms. passed_while_copying makes that happen in one process on one
 * mapping, so that ThreadSanitizer (--config=tsan) sees both sides: the
 * joiner peeks its first message (a racy copy of record 0), then a
 * producer process stopped in its release (mrb__test_stop_next_release,
 * having read the reader table before the join) takes R past the joiner,
 * and a second thread of this process writes over record 0 through the
 * joiner's handle. Nothing orders the two threads but relaxed atomics, so
 * the write must be atomic words: with the joiner uncounted it was a
 * memcpy and TSan reported the race. The other cases check the count
 * exactly: caught up, closed (named or not), killed mid-backlog, nothing
 * to read.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "sub_join_common.h"

/* The header's validating_readers (docs/FORMAT.md section 2). */
#define VALIDATING_READERS_OFFSET 0x108

static uint32_t counted(struct mrb_ring *ring)
{
	uint8_t *base = mrb__test_mapping(ring);
	CHECK(base != NULL);
	return atomic_load((_Atomic uint32_t *)(void *)(base + VALIDATING_READERS_OFFSET));
}

static void join_oldest(struct mrb_ring *sub, const char *path, const char *name)
{
	struct mrb_subscribe_options opts = {MRB_SUBSCRIBE_FROM_OLDEST, name, 0};
	CHECK_RC(mrb_subscribe(sub, path, &opts), 0);
}

static void write_seqs(struct mrb_ring *ring, uint64_t from, uint64_t to)
{
	uint8_t msg[LEN];
	for (uint64_t seq = from; seq < to; seq++) {
		join_build(msg, seq);
		CHECK_RC(mrb_write(ring, msg, LEN), 0);
	}
}

static void read_expect(struct mrb_ring *sub, uint64_t seq, const char *who)
{
	uint8_t buf[LEN];
	size_t len = 0;
	CHECK_RC(mrb_read(sub, buf, sizeof(buf), &len), 0);
	uint64_t got = join_check_msg(buf, len, who);
	if (got != seq)
		FAIL("%s: seq %" PRIu64 " where %" PRIu64 " was due", who, got, seq);
}

static void check_no_loss(struct mrb_ring *sub, const char *who)
{
	struct mrb_subscriber_info info;
	CHECK_RC(mrb_subscriber_info(sub, &info), 0);
	if (info.lost_bytes != 0 || info.lost_events != 0)
		FAIL("%s: lost %" PRIu64 " bytes in %" PRIu64 " events", who, info.lost_bytes,
		     info.lost_events);
}

/* ---- The producer process stopped in its release (as sub_join_passed) -- */

/* ---- Cases --------------------------------------------------------------- */

struct writer_arg {
	struct mrb_ring *ring;
	_Atomic uint32_t go; /* relaxed only: no happens-before for TSan */
	int rc;
};

static void *writer_main(void *p)
{
	struct writer_arg *w = p;
	while (atomic_load_explicit(&w->go, memory_order_relaxed) == 0)
		sched_yield();
	uint8_t msg[LEN];
	join_build(msg, FULL);
	w->rc = mrb_write(w->ring, msg, LEN);
	return NULL;
}

/* The joiner's racy copy of record 0, the release that missed it, then a
 * write over record 0 from another thread of this process (see the top).
 * The joiner loses nothing: it had the view of message 0, and reads 1 ..
 * FULL - 1 and then the new message FULL. */
static bool passed_while_copying(const char *path)
{
	struct mrb_ring ring, sub;
	join_create_ring(&ring, path);
	pid_t pid = join_start_stopped_producer(path, FULL);
	join_oldest(&sub, path, NULL);
	CHECK_EQ_U64(counted(&sub), 1);
	/* Created before the copy: the thread's start orders nothing after. */
	struct writer_arg w = {.ring = &sub};
	pthread_t thread;
	CHECK(pthread_create(&thread, NULL, writer_main, &w) == 0);
	struct mrb_view view;
	CHECK_RC(mrb_peek(&sub, &view), 0);
	CHECK_EQ_U64(join_check_msg(view.data, view.len, "joiner"), 0);
	bool held = join_stopped(pid);
	CHECK(kill(pid, SIGCONT) == 0);
	rtest_expect_exit0(pid, "producer");
	if (!held) {
		/* Continued from outside before the join: no pass; retry. */
		fprintf(stderr, "sub_join_counted: producer continued from outside; retrying\n");
		atomic_store_explicit(&w.go, 1, memory_order_relaxed);
		CHECK(pthread_join(thread, NULL) == 0);
		CHECK_RC(mrb_close(&sub), 0);
		CHECK_RC(mrb_close(&ring), 0);
		return false;
	}
	/* R is at the producer position now: room for one message, written
	 * over record 0, which the joiner copied. */
	atomic_store_explicit(&w.go, 1, memory_order_relaxed);
	CHECK(pthread_join(thread, NULL) == 0);
	CHECK_RC(w.rc, 0);
	CHECK_EQ_U64(counted(&sub), 1); /* still inside its backlog */
	CHECK_RC(mrb_release(&sub, &view), 0);
	for (uint64_t seq = 1; seq < FULL; seq++)
		read_expect(&sub, seq, "joiner");
	CHECK_EQ_U64(counted(&sub), 0); /* reached the live end */
	read_expect(&sub, FULL, "joiner");
	uint8_t buf[LEN];
	size_t len;
	CHECK_RC(mrb_read(&sub, buf, sizeof(buf), &len), MRB_EEMPTY);
	check_no_loss(&sub, "joiner");
	CHECK_RC(mrb_close(&sub), 0);
	CHECK_EQ_U64(counted(&ring), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return true;
}

/* A ring with messages 0 .. n - 1 held by `holder` (R at 0). */
static void backlog(struct mrb_ring *ring, struct mrb_ring *holder, const char *path, uint64_t n)
{
	join_create_ring(ring, path);
	CHECK_RC(mrb_subscribe(holder, path, NULL), 0);
	write_seqs(ring, 0, n);
}

/* Counted until the last message of the backlog is read, not after; a
 * joiner with no backlog is never counted; messages after the join do not
 * prolong it. */
static bool caught_up(const char *path)
{
	struct mrb_ring ring, holder, sub, empty;
	backlog(&ring, &holder, path, 5);
	join_oldest(&sub, path, NULL);
	CHECK_EQ_U64(counted(&ring), 1);
	write_seqs(&ring, 5, 7);
	for (uint64_t seq = 0; seq < 4; seq++)
		read_expect(&sub, seq, "joiner");
	CHECK_EQ_U64(counted(&ring), 1);
	read_expect(&sub, 4, "joiner");
	CHECK_EQ_U64(counted(&ring), 0);
	read_expect(&sub, 5, "joiner");
	read_expect(&sub, 6, "joiner");
	check_no_loss(&sub, "joiner");
	/* From the oldest, with nothing between R and the producers. */
	for (uint64_t seq = 0; seq < 7; seq++)
		read_expect(&holder, seq, "holder");
	join_oldest(&empty, path, NULL);
	CHECK_EQ_U64(counted(&ring), 0);
	/* Batches and peeks end the backlog the same way. */
	CHECK_RC(mrb_close(&sub), 0);
	write_seqs(&ring, 7, 10);
	join_oldest(&sub, path, NULL);
	CHECK_EQ_U64(counted(&ring), 1);
	struct mrb_view view;
	CHECK_RC(mrb_peek(&sub, &view), 0);
	CHECK_EQ_U64(join_check_msg(view.data, view.len, "peeker"), 7);
	CHECK_EQ_U64(counted(&ring), 1);
	CHECK_RC(mrb_release(&sub, &view), 0);
	uint8_t bufs[4 * LEN];
	size_t lengths[4];
	CHECK_RC(mrb_read_many(&sub, bufs, sizeof(bufs), lengths, 4), 2);
	CHECK_EQ_U64(join_check_msg(bufs, lengths[0], "batch"), 8);
	CHECK_EQ_U64(join_check_msg(bufs + lengths[0], lengths[1], "batch"), 9);
	CHECK_EQ_U64(counted(&ring), 0);
	CHECK_RC(mrb_close(&sub), 0);
	CHECK_RC(mrb_close(&empty), 0);
	CHECK_RC(mrb_close(&holder), 0);
	CHECK_EQ_U64(counted(&ring), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return true;
}

/* Closed inside its backlog: the count goes with it, named or not. A
 * resumer of the name validates up to the live end it read (a release that
 * missed the first join may still pass it): counted until it gets there. */
static bool closed_inside_backlog(const char *path)
{
	struct mrb_ring ring, holder, sub;
	backlog(&ring, &holder, path, 5);
	join_oldest(&sub, path, NULL);
	read_expect(&sub, 0, "unnamed");
	CHECK_EQ_U64(counted(&ring), 1);
	CHECK_RC(mrb_close(&sub), 0);
	CHECK_EQ_U64(counted(&ring), 0);
	join_oldest(&sub, path, "n");
	read_expect(&sub, 0, "named");
	CHECK_EQ_U64(counted(&ring), 1);
	CHECK_RC(mrb_close(&sub), 0);
	CHECK_EQ_U64(counted(&ring), 0);
	join_oldest(&sub, path, "n");
	CHECK_EQ_U64(counted(&ring), 1);
	for (uint64_t seq = 1; seq < 5; seq++)
		read_expect(&sub, seq, "named, resumed");
	CHECK_EQ_U64(counted(&ring), 0);
	check_no_loss(&sub, "named, resumed");
	CHECK_RC(mrb_close(&sub), 0);
	CHECK_RC(mrb_unsubscribe(path, "n"), 0);
	CHECK_RC(mrb_close(&holder), 0);
	CHECK_EQ_U64(counted(&ring), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return true;
}

/* A child joins, reads one message of its backlog and is killed there. Its
 * count stays with its entry: an unnamed entry is freed by the next join
 * (its reaping), taking the count; a named one is kept (DETACHED, like a
 * dead lossy or evictable subscriber's) until its name is resumed, and the
 * resumer's own count replaces it until it reaches the live end. */
static void killed(const char *path, const char *name)
{
	struct mrb_ring ring, holder, sub;
	backlog(&ring, &holder, path, 5);
	atomic_store(&join_shm->ready, 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring child;
		join_oldest(&child, path, name);
		read_expect(&child, 0, "child");
		atomic_store(&join_shm->ready, 1);
		for (;;)
			pause();
	}
	while (atomic_load(&join_shm->ready) == 0)
		rtest_sleep_ms(1);
	CHECK_EQ_U64(counted(&ring), 1);
	rtest_kill(pid);
	CHECK_EQ_U64(counted(&ring), 1);
	if (name == NULL) {
		CHECK_RC(mrb_subscribe(&sub, path, NULL), 0); /* reaps it */
		CHECK_EQ_U64(counted(&ring), 0);
	} else {
		join_oldest(&sub, path, name); /* resumes it */
		CHECK_EQ_U64(counted(&ring), 1);
		for (uint64_t seq = 1; seq < 5; seq++)
			read_expect(&sub, seq, "resumer");
		CHECK_EQ_U64(counted(&ring), 0);
		check_no_loss(&sub, "resumer");
	}
	CHECK_RC(mrb_close(&sub), 0);
	if (name != NULL)
		CHECK_RC(mrb_unsubscribe(path, name), 0);
	CHECK_RC(mrb_close(&holder), 0);
	CHECK_EQ_U64(counted(&ring), 0);
	CHECK_RC(mrb_close(&ring), 0);
}

static bool killed_unnamed(const char *path)
{
	killed(path, NULL);
	return true;
}

static bool killed_named(const char *path)
{
	killed(path, "k");
	return true;
}

/* An evictable named subscriber, evicted, resumed as a durable one: it
 * resumes at R (its place was overwritten) and validates up to the live
 * end, counted (the evictable's count becomes the backlog's), then not. */
static bool evicted_resumed_durable(const char *path)
{
	struct mrb_ring ring, sub;
	join_create_ring(&ring, path);
	struct mrb_subscribe_options evict = {MRB_SUBSCRIBE_EVICT, "v", 1000000};
	CHECK_RC(mrb_subscribe(&sub, path, &evict), 0);
	CHECK_EQ_U64(counted(&ring), 1);
	uint64_t n = 0;
	uint8_t msg[LEN];
	for (;; n++) {
		join_build(msg, n);
		int rc = mrb_write(&ring, msg, LEN);
		if (rc == MRB_EFULL)
			break;
		CHECK_RC(rc, 0);
	}
	CHECK_EQ_U64(n, FULL);
	/* Producers short of space evict it after its timeout. */
	for (int full = 0;; full++) {
		int rc = mrb_write(&ring, msg, LEN);
		if (rc == 0)
			break;
		CHECK_RC(rc, MRB_EFULL);
		CHECK(full < 20000);
		rtest_sleep_ms(1);
	}
	CHECK_RC(mrb_close(&sub), 0);
	CHECK_EQ_U64(counted(&ring), 1); /* kept with its entry */
	struct mrb_subscribe_options durable = {0, "v", 0};
	CHECK_RC(mrb_subscribe(&sub, path, &durable), 0);
	CHECK_EQ_U64(counted(&ring), 1);
	uint8_t buf[LEN];
	size_t len;
	CHECK_RC(mrb_read(&sub, buf, sizeof(buf), &len), MRB_ELAPPED);
	CHECK_EQ_U64(counted(&ring), 1);
	read_expect(&sub, FULL, "resumer");
	CHECK_EQ_U64(counted(&ring), 0);
	CHECK_RC(mrb_read(&sub, buf, sizeof(buf), &len), MRB_EEMPTY);
	struct mrb_subscriber_info info;
	CHECK_RC(mrb_subscriber_info(&sub, &info), 0);
	CHECK_EQ_U64(info.lost_bytes, (uint64_t)FULL * SPAN);
	CHECK_EQ_U64(info.lost_events, 1);
	CHECK_RC(mrb_close(&sub), 0);
	CHECK_RC(mrb_unsubscribe(path, "v"), 0);
	CHECK_EQ_U64(counted(&ring), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return true;
}

/* After a pass that skipped the whole first lap (FULL messages), then
 * FULL and FULL + 1 written: the resumer `sub` of `name` reports the loss
 * once (MRB_ELAPPED, FULL records in lost_bytes), reads both, is counted
 * out at the live end; then it leaves and both are closed. */
static void expect_resumed_at_r(struct mrb_ring *ring, struct mrb_ring *sub, const char *path,
                                const char *name)
{
	uint8_t buf[LEN];
	size_t len;
	CHECK_RC(mrb_read(sub, buf, sizeof(buf), &len), MRB_ELAPPED);
	read_expect(sub, FULL, "resumer");
	read_expect(sub, FULL + 1, "resumer");
	CHECK_RC(mrb_read(sub, buf, sizeof(buf), &len), MRB_EEMPTY);
	CHECK_EQ_U64(counted(ring), 0);
	struct mrb_subscriber_info info;
	CHECK_RC(mrb_subscriber_info(sub, &info), 0);
	CHECK_EQ_U64(info.lost_bytes, (uint64_t)FULL * SPAN);
	CHECK_EQ_U64(info.lost_events, 1);
	CHECK_RC(mrb_close(sub), 0);
	CHECK_RC(mrb_unsubscribe(path, name), 0);
	CHECK_EQ_U64(counted(ring), 0);
	CHECK_RC(mrb_close(ring), 0);
}

/* A named joiner from the oldest message that leaves before the release
 * that missed its join passes it (at its join point, R still there): its
 * entry is then behind R. A resumer of the name starts at R and reports
 * what was skipped as a loss (MRB_ELAPPED once, lost_bytes), as after an
 * eviction. It returned MRB_ECORRUPT, at every resume, for good. */
static bool named_passed_after_close(const char *path)
{
	struct mrb_ring ring, sub;
	join_create_ring(&ring, path);
	pid_t pid = join_start_stopped_producer(path, FULL);
	join_oldest(&sub, path, "late");
	CHECK_RC(mrb_close(&sub), 0); /* DETACHED at its join point, R there */
	bool held = join_stopped(pid);
	CHECK(kill(pid, SIGCONT) == 0);
	rtest_expect_exit0(pid, "producer");
	if (!held) {
		CHECK_RC(mrb_unsubscribe(path, "late"), 0);
		CHECK_RC(mrb_close(&ring), 0);
		return false;
	}
	write_seqs(&ring, FULL, FULL + 2);
	struct mrb_subscribe_options opts = {0, "late", 0};
	CHECK_RC(mrb_subscribe(&sub, path, &opts), 0);
	CHECK_EQ_U64(counted(&ring), 1);
	expect_resumed_at_r(&ring, &sub, path, "late");
	return true;
}

/* The same, the name resumed before the release that missed the first
 * join goes on: the resumer stood at R (the join point) and read in place,
 * so the pass left it at a record overwritten for the next lap, which it
 * took for a claim not yet written: MRB_EEMPTY for good, the messages
 * after it never delivered, and R held there until producers were stuck.
 * Now it validates up to the live end it read, sees the lap, resumes at R
 * and reports the loss. */
static bool resumed_then_passed(const char *path)
{
	struct mrb_ring ring, sub;
	join_create_ring(&ring, path);
	pid_t pid = join_start_stopped_producer(path, FULL);
	join_oldest(&sub, path, "late2");
	CHECK_RC(mrb_close(&sub), 0);
	struct mrb_subscribe_options opts = {0, "late2", 0};
	CHECK_RC(mrb_subscribe(&sub, path, &opts), 0);
	CHECK_EQ_U64(counted(&ring), 1);
	bool held = join_stopped(pid);
	CHECK(kill(pid, SIGCONT) == 0);
	rtest_expect_exit0(pid, "producer");
	if (!held) {
		CHECK_RC(mrb_close(&sub), 0);
		CHECK_RC(mrb_unsubscribe(path, "late2"), 0);
		CHECK_RC(mrb_close(&ring), 0);
		return false;
	}
	write_seqs(&ring, FULL, FULL + 2); /* over records 0 and 1 */
	expect_resumed_at_r(&ring, &sub, path, "late2");
	return true;
}

static const struct {
	const char *name;
	bool (*run)(const char *path);
} cases[] = {
    {"passed_while_copying", passed_while_copying},
    {"caught_up", caught_up},
    {"closed_inside_backlog", closed_inside_backlog},
    {"killed_unnamed", killed_unnamed},
    {"killed_named", killed_named},
    {"evicted_resumed_durable", evicted_resumed_durable},
    {"named_passed_after_close", named_passed_after_close},
    {"resumed_then_passed", resumed_then_passed},
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
		any = true;
		int attempt = 0;
		while (!cases[i].run(rtest_path(cases[i].name))) {
			if (++attempt == 5)
				FAIL("%s: spoiled 5 times", cases[i].name);
		}
		printf("ok %s\n", cases[i].name);
	}
	CHECK(any);
	return 0;
}
