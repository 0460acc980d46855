/* SPDX-License-Identifier: MIT */
/*
 * Description: hung and dead durable subscribers, with real processes, and
 * a producer process that blocks in mrb_write_wait (never polls):
 *  1. evict policy: the subscriber process is SIGSTOPped; after its timeout
 *     the producer is no longer held back (every blocking write succeeds).
 *     After SIGCONT the subscriber's next read returns MRB_ELAPPED, once,
 *     then intact messages in order from the start of the producers'
 *     current lap to the last one written; lost_bytes is exactly the record
 *     bytes it did not get.
 *  2. keep policy: a SIGSTOPped subscriber holds the producer back for the
 *     whole window (its blocking write times out, nothing more is
 *     committed) and, resumed, loses nothing.
 *  3. an unnamed durable subscriber killed with SIGKILL while the ring is
 *     full: the producer blocked in mrb_write_wait goes on (the dead entry
 *     is freed), without polling.
 * In 1 another durable subscriber process keeps up, so the stopped one is
 * what holds the producer back; in 3 the dead one is the only durable
 * subscriber (once it is freed, producers release committed records).
 * Each record is 128 bytes and the ring holds 32 of them.
 */
#include <stdbool.h>
#include <sys/mman.h>

#include "rtest.h"

#define RING_SIZE 4096
#define SPAN      128
#define LEN       100
#define TOTAL     200

struct shared {
	_Atomic uint32_t written; /* messages the producer committed */
	_Atomic uint32_t received;
	_Atomic uint32_t elapsed;
	_Atomic uint32_t first_seq; /* of the messages read after the stop */
	_Atomic uint32_t bad;
	_Atomic uint64_t lost_bytes;
	_Atomic uint32_t reader_joined;
};

static struct shared *shm;
static const char *ring_path;

static void msg_of(uint8_t *buf, uint32_t seq)
{
	rtest_fill(buf, LEN, seq);
	memcpy(buf, &seq, sizeof(seq));
}

/* Writes messages [from, to) with mrb_write_wait; exits 0 when all are
 * written, 3 when a write timed out (held back). */
static void producer_main(uint32_t from, uint32_t to, int64_t timeout_ns)
{
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ring_path, 0), 0);
	uint8_t buf[LEN];
	for (uint32_t seq = from; seq < to; seq++) {
		msg_of(buf, seq);
		int rc = mrb_write_wait(&ring, buf, LEN, timeout_ns);
		if (rc == MRB_ETIMEDOUT)
			_exit(3);
		CHECK_RC(rc, 0);
		atomic_store(&shm->written, seq + 1);
	}
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

static pid_t spawn_producer(uint32_t from, uint32_t to, int64_t timeout_ns)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		producer_main(from, to, timeout_ns);
	return pid;
}

/* Joins, says so on `ready`, then reads until it has message `last`. */
static void subscriber_main(const struct mrb_subscribe_options *opts, int ready, uint32_t last)
{
	struct mrb_ring sub;
	CHECK_RC(mrb_subscribe(&sub, ring_path, opts), 0);
	rtest_send(ready, 'j');
	uint8_t buf[LEN + 16];
	bool any = false;
	uint32_t expect = 0;
	for (;;) {
		size_t len;
		int rc = mrb_read_wait(&sub, buf, sizeof(buf), &len, 60 * 1000000000LL);
		if (rc == MRB_ELAPPED) {
			if (any)
				atomic_store(&shm->bad, 1); /* only before the first */
			atomic_fetch_add(&shm->elapsed, 1);
			continue;
		}
		CHECK_RC(rc, 0);
		uint32_t seq;
		memcpy(&seq, buf, sizeof(seq));
		uint8_t want[LEN];
		msg_of(want, seq);
		if (len != LEN || memcmp(buf, want, LEN) != 0)
			atomic_store(&shm->bad, 2);
		if (!any)
			atomic_store(&shm->first_seq, seq);
		else if (seq != expect)
			atomic_store(&shm->bad, 3);
		any = true;
		expect = seq + 1;
		atomic_fetch_add(&shm->received, 1);
		if (seq == last)
			break;
	}
	struct mrb_subscriber_info info;
	CHECK_RC(mrb_subscriber_info(&sub, &info), 0);
	atomic_store(&shm->lost_bytes, info.lost_bytes);
	CHECK_RC(mrb_close(&sub), 0);
	_exit(0);
}

static pid_t spawn_subscriber(const struct mrb_subscribe_options *opts, uint32_t last)
{
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		subscriber_main(opts, p[1], last);
	}
	close(p[1]);
	CHECK(rtest_recv(p[0]) == 'j');
	close(p[0]);
	return pid;
}

/* A durable subscriber that keeps up (reads until message `last`): the
 * stopped or dead one is then the only one holding producers back. */
static pid_t spawn_reader(uint32_t last)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid != 0)
		return pid;
	struct mrb_ring sub;
	CHECK_RC(mrb_subscribe(&sub, ring_path, NULL), 0);
	atomic_store(&shm->reader_joined, 1);
	uint8_t buf[LEN];
	for (uint32_t seq = 0; seq <= last; seq++) {
		size_t len;
		CHECK_RC(mrb_read_wait(&sub, buf, sizeof(buf), &len, 60 * 1000000000LL), 0);
		uint32_t got;
		memcpy(&got, buf, sizeof(got));
		if (got != seq)
			FAIL("reader: got %u, expected %u", got, seq);
	}
	CHECK_RC(mrb_close(&sub), 0);
	_exit(0);
}

static void reset(struct mrb_ring *ring)
{
	memset(shm, 0, sizeof(*shm));
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(ring, ring_path, RING_SIZE, &copts), 0);
	CHECK_EQ_U64(mrb_capacity(ring), 32 * SPAN);
}

static void evict_policy(void)
{
	struct mrb_ring ring;
	reset(&ring);
	struct mrb_subscribe_options opts = {MRB_SUBSCRIBE_EVICT, "ev", 100 * 1000000LL};
	pid_t sub = spawn_subscriber(&opts, TOTAL - 1);
	CHECK(kill(sub, SIGSTOP) == 0);
	pid_t reader = spawn_reader(TOTAL - 1);
	while (!atomic_load(&shm->reader_joined))
		rtest_sleep_ms(1);
	/* The ring holds 32; the rest is written only if the stopped
	 * subscriber stops holding the producer back. */
	pid_t prod = spawn_producer(0, TOTAL, 30 * 1000000000LL);
	int status = rtest_wait(prod);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		FAIL("evict: the producer was held back (%u written, status %d)",
		     atomic_load(&shm->written), status);
	CHECK_EQ_U64(atomic_load(&shm->written), TOTAL);
	rtest_expect_exit0(reader, "reader");
	struct mrb_subscriber_info list[2];
	CHECK_RC(mrb_subscribers(&ring, list, 2), 1);
	CHECK_EQ_U64(list[0].state, MRB_SUBSCRIBER_EVICTED);
	CHECK_EQ_U64(list[0].evictions, 1);

	CHECK(kill(sub, SIGCONT) == 0);
	rtest_expect_exit0(sub, "evicted subscriber");
	CHECK_RC(atomic_load(&shm->bad), 0);
	CHECK_EQ_U64(atomic_load(&shm->elapsed), 1);
	uint32_t first = atomic_load(&shm->first_seq);
	CHECK_EQ_U64(atomic_load(&shm->received), TOTAL - first);
	/* It read nothing before the stop: it lost messages 0..first-1. */
	/* It resumes at the start of the producers' current lap (record
	 * boundaries before it cannot be trusted once overwritten), so up to a
	 * ring's worth of the older messages still there are skipped too. */
	CHECK(first > 0 && first < TOTAL);
	CHECK_EQ_U64((uint64_t)first * SPAN % RING_SIZE, 0);
	CHECK_EQ_U64(atomic_load(&shm->lost_bytes), (uint64_t)first * SPAN);
	printf("evict: producer went on after the timeout; the subscriber lost %u messages "
	       "(%" PRIu64 " B), read %u\n",
	       first, atomic_load(&shm->lost_bytes), atomic_load(&shm->received));
	CHECK_RC(mrb_close(&ring), 0);
}

static void keep_policy(void)
{
	struct mrb_ring ring;
	reset(&ring);
	struct mrb_subscribe_options opts = {0, "keep", 0};
	pid_t sub = spawn_subscriber(&opts, 99);
	CHECK(kill(sub, SIGSTOP) == 0);
	/* Held back: the 33rd write times out, for the whole window. */
	pid_t prod = spawn_producer(0, 100, 500 * 1000000LL);
	int status = rtest_wait(prod);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	CHECK_EQ_U64(atomic_load(&shm->written), 32);
	struct mrb_subscriber_info list[2];
	CHECK_RC(mrb_subscribers(&ring, list, 2), 1);
	CHECK_EQ_U64(list[0].state, MRB_SUBSCRIBER_ACTIVE);
	CHECK_EQ_U64(list[0].lag_messages, 32);

	CHECK(kill(sub, SIGCONT) == 0);
	prod = spawn_producer(32, 100, 30 * 1000000000LL);
	rtest_expect_exit0(prod, "producer after SIGCONT");
	rtest_expect_exit0(sub, "keep subscriber");
	CHECK_RC(atomic_load(&shm->bad), 0);
	CHECK_EQ_U64(atomic_load(&shm->elapsed), 0);
	CHECK_EQ_U64(atomic_load(&shm->first_seq), 0);
	CHECK_EQ_U64(atomic_load(&shm->received), 100);
	CHECK_EQ_U64(atomic_load(&shm->lost_bytes), 0);
	CHECK_RC(mrb_close(&ring), 0);
}

static void dead_unnamed(void)
{
	struct mrb_ring ring;
	reset(&ring);
	struct mrb_subscribe_options opts = {0, NULL, 0};
	pid_t sub = spawn_subscriber(&opts, UINT32_MAX);
	CHECK(kill(sub, SIGSTOP) == 0);
	/* Full, and a producer asleep in mrb_write_wait... */
	pid_t prod = spawn_producer(0, 100, 30 * 1000000000LL);
	while (atomic_load(&shm->written) < 32)
		rtest_sleep_ms(1);
	rtest_sleep_ms(50);
	CHECK_EQ_U64(atomic_load(&shm->written), 32);
	/* ...when the subscriber dies: it goes on by itself. */
	rtest_kill(sub);
	int status = rtest_wait(prod);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		FAIL("dead unnamed: the producer was held back (%u written, status %d)",
		     atomic_load(&shm->written), status);
	CHECK_RC(mrb_subscribers(&ring, NULL, 0), 0);
	CHECK_RC(mrb_close(&ring), 0);
}

int main(void)
{
	rtest_watchdog(150);
	ring_path = rtest_path("evict.ring");
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shm != MAP_FAILED);
	evict_policy();
	keep_policy();
	dead_unnamed();
	printf("sub_evict_sigstop: ok\n");
	return 0;
}
