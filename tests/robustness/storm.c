/* SPDX-License-Identifier: MIT */
/*
 * Description: crash storm. Twenty producer processes (more than the 16
 * slots of format 1) write sequence-numbered, checksummed messages
 * (mrb_write_wait; mrb_reserve + a slow byte-wise fill + mrb_commit, so kills
 * land mid-copy too; and, on every third stream, mrb_write_batch runs of up
 * to 8 messages) while a supervisor SIGKILLs producers at random moments and
 * restarts each as a new incarnation that continues its stream's sequence
 * from the last committed number (kept in shared memory, stored after each
 * successful write or batch), freezes others with SIGSTOP for a few
 * milliseconds (a stalled writer, whose claims must be waited for, never
 * skipped), and sometimes kills the consumer and starts a new one. Each
 * stream's first incarnation exits normally after a while (an ordinary,
 * long-gone producer must change nothing for the others). The consumer
 * peeks, logs, then releases. The checker proves, exactly:
 *  - every message delivered is intact (length, checksum, bytes);
 *  - per producer incarnation, messages arrive in order with no gap and no
 *    duplicate (so a killed batch lost at most a suffix); everything it
 *    recorded as committed arrived; beyond that at most what was in flight
 *    at its kill arrived (one message, or the rest of one batch);
 *  - the only duplicate is, at a consumer kill, the single message the
 *    killed consumer had logged but not released, redelivered first.
 * Default run ≤ ~15 s; `storm --long [seconds]` runs longer (default 300 s).
 */
#include <sys/mman.h>

#include "rtest.h"

#define STREAMS          20
#define BATCH_MAX        8
#define EARLY_EXIT_AFTER 200
#define MAX_INCARNATIONS 8192
#define RING_SIZE        (64 * 1024)
#define HEADER_BYTES     24

struct incarnation {
	uint32_t start_seq;
	_Atomic uint32_t last_committed; /* start_seq - 1 until the first commit */
	uint32_t killed;
};

struct log_entry {
	uint16_t stream;
	uint16_t consumer;
	uint32_t incarnation;
	uint32_t seq;
	uint32_t intact;
};

struct shared {
	struct {
		uint32_t incarnations;
		struct incarnation inc[MAX_INCARNATIONS];
	} stream[STREAMS];
	_Atomic uint32_t stop_producing;
	_Atomic uint32_t producers_done;
	_Atomic uint64_t log_count;
	_Atomic uint32_t consumer_error;
	struct log_entry log[];
};

static struct shared *shm;
static uint64_t log_capacity;
static const char *ring_path;

struct message_header {
	uint32_t stream;
	uint32_t incarnation;
	uint32_t seq;
	uint32_t len;
	uint64_t checksum;
};
_Static_assert(sizeof(struct message_header) == HEADER_BYTES, "message header");

static uint64_t seed_of(uint32_t stream, uint32_t inc, uint32_t seq)
{
	return ((uint64_t)stream << 56) ^ ((uint64_t)inc << 32) ^ seq;
}

static size_t length_of(uint64_t seed)
{
	uint64_t h = seed * UINT64_C(0x9e3779b97f4a7c15);
	h ^= h >> 29;
	/* Mostly small; every 32nd large, so a kill often lands mid-copy. */
	return HEADER_BYTES + ((h >> 8) % 32 == 0 ? (size_t)(h % 6000) : (size_t)(h % 200));
}

static uint64_t checksum_of(const uint8_t *msg, size_t len)
{
	return rtest_fnv1a(msg, 16) ^ rtest_fnv1a(msg + HEADER_BYTES, len - HEADER_BYTES);
}

static size_t build(uint8_t *msg, uint32_t stream, uint32_t inc, uint32_t seq)
{
	uint64_t seed = seed_of(stream, inc, seq);
	size_t len = length_of(seed);
	struct message_header h = {stream, inc, seq, (uint32_t)len, 0};
	memcpy(msg, &h, sizeof(h));
	rtest_fill(msg + HEADER_BYTES, len - HEADER_BYTES, seed);
	h.checksum = checksum_of(msg, len);
	memcpy(msg, &h, sizeof(h));
	return len;
}

static void producer_main(uint32_t stream, uint32_t inc)
{
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ring_path, 0), 0);
	struct incarnation *me = &shm->stream[stream].inc[inc];
	static uint8_t msg[HEADER_BYTES + 6000];
	static uint8_t batch[BATCH_MAX][HEADER_BYTES + 6000];
	for (uint32_t seq = me->start_seq; !atomic_load(&shm->stop_producing); seq++) {
		if (inc == 0 && seq >= me->start_seq + EARLY_EXIT_AFTER) {
			CHECK_RC(mrb_close(&ring), 0);
			_exit(0);
		}
		if (stream % 3 == 1) {
			struct mrb_iovec iov[BATCH_MAX];
			size_t n = 1 + (size_t)(seq % BATCH_MAX);
			for (size_t i = 0; i < n; i++) {
				iov[i].data = batch[i];
				iov[i].len = build(batch[i], stream, inc, seq + (uint32_t)i);
			}
			int64_t written;
			while ((written = mrb_write_batch(&ring, iov, n)) == MRB_EFULL) {
				int rc = mrb_wait_writable(&ring, iov[0].len, 200 * 1000000LL);
				if (rc != 0 && rc != MRB_ETIMEDOUT)
					FAIL("producer wait: %s", mrb_strerror(rc));
			}
			if (written <= 0)
				FAIL("write_batch: %s", mrb_strerror((int)written));
			seq += (uint32_t)written - 1;
			atomic_store(&me->last_committed, seq);
			continue;
		}
		size_t len = build(msg, stream, inc, seq);
		if (seq % 4 == 0) {
			struct mrb_reservation res;
			int rc;
			while ((rc = mrb_reserve(&ring, len, &res)) == MRB_EFULL) {
				rc = mrb_wait_writable(&ring, len, 200 * 1000000LL);
				if (rc != 0 && rc != MRB_ETIMEDOUT)
					FAIL("producer wait: %s", mrb_strerror(rc));
			}
			CHECK_RC(rc, 0);
			/* Byte by byte with a pause half-way: a long window for
			 * kills mid-copy, which is where most of them land. */
			volatile uint8_t *dst = res.data;
			for (size_t i = 0; i < len; i++) {
				dst[i] = msg[i];
				if (i == len / 2) {
					int64_t until =
					    rtest_now_ns() + 20000 + (int64_t)(seq % 8) * 10000;
					while (rtest_now_ns() < until) {
					}
				}
			}
			CHECK_RC(mrb_commit(&ring, &res), 0);
		} else {
			int rc;
			while ((rc = mrb_write_wait(&ring, msg, len, 200 * 1000000LL)) ==
			       MRB_ETIMEDOUT) {
			}
			CHECK_RC(rc, 0);
		}
		atomic_store(&me->last_committed, seq);
	}
	_exit(0);
}

static int verify(const void *data, size_t len, struct log_entry *e)
{
	struct message_header h;
	if (len < HEADER_BYTES)
		return 0;
	memcpy(&h, data, sizeof(h));
	e->stream = (uint16_t)h.stream;
	e->incarnation = h.incarnation;
	e->seq = h.seq;
	if (h.stream >= STREAMS || h.len != len)
		return 0;
	uint64_t seed = seed_of(h.stream, h.incarnation, h.seq);
	return len == length_of(seed) && h.checksum == checksum_of(data, len) &&
	       rtest_matches((const uint8_t *)data + HEADER_BYTES, len - HEADER_BYTES, seed);
}

static void consumer_main(uint16_t consumer)
{
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ring_path, 0), 0);
	for (;;) {
		struct mrb_view view;
		int rc = mrb_peek(&ring, &view);
		if (rc == 0) {
			uint64_t n = atomic_load(&shm->log_count);
			CHECK(n < log_capacity);
			struct log_entry *e = &shm->log[n];
			memset(e, 0, sizeof(*e));
			e->intact = (uint32_t)verify(view.data, view.len, e);
			e->consumer = consumer;
			/* Logged before released: a kill in between redelivers it.
			 * Now and then linger there so that some kills do. */
			atomic_store(&shm->log_count, n + 1);
			if (n % 64 == 0) {
				int64_t until = rtest_now_ns() + 300000;
				while (rtest_now_ns() < until) {
				}
			}
			CHECK_RC(mrb_release(&ring, &view), 0);
			continue;
		}
		if (rc != MRB_EEMPTY) {
			atomic_store(&shm->consumer_error, (uint32_t)-rc);
			FAIL("consumer: %s", mrb_strerror(rc));
		}
		if (atomic_load(&shm->producers_done)) {
			/* Every producer has exited: whatever still blocks the
			 * head is abandoned; skip it at once. */
			rc = mrb_recover(&ring, 0);
			if (rc == 1)
				continue;
			CHECK_RC(rc, 0);
			if (mrb_peek(&ring, &view) == MRB_EEMPTY)
				break;
			continue;
		}
		rc = mrb_wait_readable(&ring, 100 * 1000000LL);
		if (rc != 0 && rc != MRB_ETIMEDOUT)
			FAIL("consumer wait: %s", mrb_strerror(rc));
	}
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

static pid_t producers[STREAMS];
static pid_t consumer_pid;
static uint16_t consumers_started;

static void spawn_producer(uint32_t stream)
{
	uint32_t k = shm->stream[stream].incarnations;
	CHECK(k < MAX_INCARNATIONS);
	struct incarnation *inc = &shm->stream[stream].inc[k];
	inc->start_seq =
	    k == 0 ? 1 : atomic_load(&shm->stream[stream].inc[k - 1].last_committed) + 1;
	atomic_store(&inc->last_committed, inc->start_seq - 1);
	shm->stream[stream].incarnations = k + 1;
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		producer_main(stream, k);
	producers[stream] = pid;
}

static void spawn_consumer(void)
{
	uint16_t c = consumers_started++;
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		consumer_main(c);
	consumer_pid = pid;
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Reaps children that exited on their own; a failing one fails the test. */
static void reap_exited(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			FAIL("child %d %s %d", (int)pid,
			     WIFSIGNALED(status) ? "killed by signal" : "exited with",
			     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		for (int s = 0; s < STREAMS; s++)
			if (producers[s] == pid)
				producers[s] = 0;
		if (pid == consumer_pid)
			FAIL("consumer exited before the producers were done");
	}
}

static int check(void)
{
	uint64_t n = atomic_load(&shm->log_count);
	uint32_t *next[STREAMS];
	for (int s = 0; s < STREAMS; s++) {
		uint32_t incs = shm->stream[s].incarnations;
		next[s] = calloc(incs, sizeof(uint32_t));
		for (uint32_t k = 0; k < incs; k++)
			next[s][k] = shm->stream[s].inc[k].start_seq;
	}
	uint64_t redelivered = 0, in_flight_arrived = 0, in_flight_lost = 0;
	for (uint64_t j = 0; j < n; j++) {
		struct log_entry *e = &shm->log[j];
		if (!e->intact)
			FAIL("log %" PRIu64 ": torn or corrupt message (stream %u inc %u seq %u)",
			     j, e->stream, e->incarnation, e->seq);
		if (j > 0 && e->consumer != shm->log[j - 1].consumer) {
			struct log_entry *prev = &shm->log[j - 1];
			if (e->stream == prev->stream && e->incarnation == prev->incarnation &&
			    e->seq == prev->seq) {
				redelivered++;
				continue;
			}
		}
		if (e->incarnation >= shm->stream[e->stream].incarnations)
			FAIL("log %" PRIu64 ": unknown incarnation %u", j, e->incarnation);
		uint32_t *expected = &next[e->stream][e->incarnation];
		if (e->seq != *expected)
			FAIL("log %" PRIu64 ": stream %u incarnation %u: got seq %u, expected %u "
			     "(gap, duplicate or reorder)",
			     j, e->stream, e->incarnation, e->seq, *expected);
		(*expected)++;
	}
	uint64_t incarnations = 0;
	for (int s = 0; s < STREAMS; s++) {
		for (uint32_t k = 0; k < shm->stream[s].incarnations; k++) {
			struct incarnation *inc = &shm->stream[s].inc[k];
			uint32_t last = atomic_load(&inc->last_committed);
			uint32_t got = next[s][k] - 1;
			incarnations++;
			if (got < last)
				FAIL(
				    "stream %d incarnation %u: committed up to %u, only %u arrived",
				    s, k, last, got);
			uint32_t in_flight = s % 3 == 1 ? BATCH_MAX : 1;
			if (got > last + in_flight || (got > last && !inc->killed))
				FAIL("stream %d incarnation %u: %u arrived, only %u committed", s,
				     k, got, last);
			if (inc->killed) {
				if (got > last)
					in_flight_arrived++;
				else
					in_flight_lost++;
			}
		}
		free(next[s]);
	}
	printf("%" PRIu64 " messages delivered from %" PRIu64 " producer incarnations, "
	       "%u consumers; %" PRIu64 " redelivered after consumer kills; in flight at a "
	       "kill: %" PRIu64 " arrived (committed, not yet recorded), %" PRIu64 " lost\n",
	       n - redelivered, incarnations, consumers_started, redelivered, in_flight_arrived,
	       in_flight_lost);
	return 0;
}

int main(int argc, char **argv)
{
	int long_mode = argc > 1 && strcmp(argv[1], "--long") == 0;
	int64_t kill_ns = (long_mode ? (argc > 2 ? atoll(argv[2]) : 300) : 8) * 1000000000LL;
	rtest_watchdog((unsigned)(kill_ns / 1000000000) + 240);
	/* Random kill timing per run; STORM_SEED=<n> replays a run's choices
	 * (the exact interleaving still differs). */
	const char *seed = getenv("STORM_SEED");
	rng_state = seed != NULL ? strtoull(seed, NULL, 10)
	                         : (uint64_t)rtest_now_ns() ^ ((uint64_t)getpid() << 32);
	if (rng_state == 0)
		rng_state = 1;
	printf("STORM_SEED=%" PRIu64 "\n", rng_state);
	fflush(stdout); /* not inherited by the children's buffers */

	/* Sized for ~200k messages a second, reserved lazily. */
	log_capacity = (uint64_t)(kill_ns / 1000000000 + 30) * 200000;
	size_t shm_size = sizeof(struct shared) + log_capacity * sizeof(struct log_entry);
	shm = mmap(NULL, shm_size, PROT_READ | PROT_WRITE,
	           MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(shm != MAP_FAILED);
	ring_path = rtest_path("storm");
	struct mrb_ring ring;
	rtest_create(&ring, ring_path, RING_SIZE);

	spawn_consumer();
	for (uint32_t s = 0; s < STREAMS; s++)
		spawn_producer(s);
	uint64_t producer_kills = 0, consumer_kills = 0, producer_stops = 0;
	int64_t end = rtest_now_ns() + kill_ns;
	pid_t stopped = 0;
	while (rtest_now_ns() < end) {
		rtest_sleep_ms(1 + (long)(rnd() % 20));
		if (stopped != 0) {
			kill(stopped, SIGCONT);
			stopped = 0;
		}
		reap_exited();
		uint64_t choice = rnd() % 8;
		if (choice == 1 || choice == 2) {
			uint32_t s = (uint32_t)(rnd() % STREAMS);
			if (producers[s] != 0 && kill(producers[s], SIGSTOP) == 0) {
				stopped = producers[s];
				producer_stops++;
			}
		} else if (choice == 0) {
			rtest_kill(consumer_pid);
			consumer_kills++;
			spawn_consumer();
		} else {
			uint32_t s = (uint32_t)(rnd() % STREAMS);
			if (producers[s] != 0) {
				rtest_kill(producers[s]);
				shm->stream[s].inc[shm->stream[s].incarnations - 1].killed = 1;
				producer_kills++;
			}
			spawn_producer(s);
		}
	}
	if (stopped != 0)
		kill(stopped, SIGCONT);
	atomic_store(&shm->stop_producing, 1);
	for (int s = 0; s < STREAMS; s++)
		if (producers[s] != 0)
			rtest_expect_exit0(producers[s], "producer");
	atomic_store(&shm->producers_done, 1);
	rtest_expect_exit0(consumer_pid, "final consumer");

	struct mrb_stats st;
	CHECK_RC(mrb_stats(&ring, &st), 0);
	CHECK_EQ_U64(st.consumer_position, st.producer_position);
	printf("%" PRIu64 " producer kills, %" PRIu64 " producer stops, %" PRIu64
	       " consumer kills, %" PRIu64 " records recovered (%" PRIu64 " bytes)\n",
	       producer_kills, producer_stops, consumer_kills, st.recovered_records,
	       st.recovered_bytes);
	check();
	CHECK(producer_kills > 0 && consumer_kills > 0 && producer_stops > 0);
	CHECK_EQ_U64(st.skipped_live, 0); /* nobody opted in: no live writer skipped */
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
