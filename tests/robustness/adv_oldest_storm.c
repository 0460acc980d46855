/* SPDX-License-Identifier: MIT */
/*
 * Description: adversarial storm of subscribers joining a fan-out ring from
 * the oldest message under load. Two producer processes write
 * checksummed, per-incarnation sequence-numbered messages of 24..200 bytes
 * (mrb_write_wait); a named durable "anchor" subscriber drains; three
 * joiner slots run processes that join with MRB_SUBSCRIBE_FROM_OLDEST
 * (durable, unnamed or named, or evictable), read a random number of
 * messages with a random read API (mrb_read, mrb_peek/mrb_release,
 * mrb_read_many, mrb_read_batch) and leave. A controller SIGKILLs and
 * SIGSTOPs/SIGCONTs joiners, the anchor and producers at random instants
 * (killed ones are restarted; a producer as a new incarnation).
 *
 * Checks, exactly: every message any joiner or the anchor receives is
 * intact (length, checksum, bytes); for durable readers, per producer
 * incarnation the sequence is consecutive from its first appearance (no
 * loss, no duplicate, no reordering) unless the reader was told of a loss
 * (MRB_ELAPPED), after which it is still strictly increasing; evictable
 * readers strictly increasing. At the end, with every joiner gone and its
 * entry reaped or unsubscribed, validating_readers is 0 unless a kill hit
 * the few instructions between a joiner's increment and its entry flags
 * (reported, not failed).
 * `adv_oldest_storm [seconds]` (default 2).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "mrb_testing.h"
#include "rtest.h"

#define RING_SIZE                 (32 * 1024)
#define PRODUCERS                 2
#define JOINERS                   3
#define MIN_LEN                   24
#define MAX_LEN                   200
#define MAX_TRACK                 64 /* producer incarnations a reader tracks */
#define HDR                       24 /* producer u32, incarnation u32, seq u64, checksum u64 */
#define VALIDATING_READERS_OFFSET 0x108

struct shared {
	_Atomic uint32_t stop_producers;
	_Atomic uint64_t written[PRODUCERS];
	_Atomic uint64_t delivered;  /* messages checked, all readers */
	_Atomic uint64_t elapsed;    /* MRB_ELAPPED seen by durable joiners */
	_Atomic uint64_t joins;      /* joins that succeeded */
	_Atomic uint64_t join_fails; /* joins that failed (reported) */
};

static struct shared *shm;
static const char *ring_path;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

static size_t msg_len(uint32_t p, uint32_t inc, uint64_t seq)
{
	return MIN_LEN + (size_t)(mix(seq * 7 + p * 131 + inc) % (MAX_LEN - MIN_LEN + 1));
}

static void build(uint8_t *buf, uint32_t p, uint32_t inc, uint64_t seq, size_t *len)
{
	*len = msg_len(p, inc, seq);
	memcpy(buf, &p, 4);
	memcpy(buf + 4, &inc, 4);
	memcpy(buf + 8, &seq, 8);
	for (size_t i = HDR; i < *len; i++)
		buf[i] = (uint8_t)mix(seq ^ (uint64_t)i << 40 ^ (uint64_t)p << 56 ^ inc);
	uint64_t sum = rtest_fnv1a(buf + HDR, *len - HDR) ^ mix(seq) ^ p ^ (uint64_t)inc << 32;
	memcpy(buf + 16, &sum, 8);
}

/* ---- Producers --------------------------------------------------------- */

static void producer(uint32_t p, uint32_t inc)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ring_path, 0), 0);
	uint8_t buf[MAX_LEN];
	for (uint64_t seq = 0; atomic_load(&shm->stop_producers) == 0;) {
		size_t len;
		build(buf, p, inc, seq, &len);
		int rc = mrb_write_wait(&ring, buf, len, 100 * 1000000LL);
		if (rc == MRB_ETIMEDOUT)
			continue;
		CHECK_RC(rc, 0);
		seq++;
		atomic_fetch_add(&shm->written[p], 1);
	}
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

/* ---- Readers ------------------------------------------------------------ */

struct tracker {
	const char *who;
	bool durable;
	bool told; /* a loss was reported: strictly increasing from then on */
	uint32_t n;
	uint32_t p[MAX_TRACK], inc[MAX_TRACK];
	uint64_t next[MAX_TRACK];
};

static void check(struct tracker *t, const uint8_t *buf, size_t len)
{
	if (len < HDR || len > MAX_LEN)
		FAIL("%s: length %zu", t->who, len);
	uint32_t p, inc;
	uint64_t seq;
	memcpy(&p, buf, 4);
	memcpy(&inc, buf + 4, 4);
	memcpy(&seq, buf + 8, 8);
	uint8_t want[MAX_LEN];
	size_t wlen;
	if (p >= PRODUCERS)
		FAIL("%s: foreign message (producer %u)", t->who, p);
	build(want, p, inc, seq, &wlen);
	if (wlen != len || memcmp(want, buf, len) != 0)
		FAIL("%s: torn message p%u.%u seq %" PRIu64 " len %zu", t->who, p, inc, seq, len);
	uint32_t i = 0;
	while (i < t->n && (t->p[i] != p || t->inc[i] != inc))
		i++;
	if (i == t->n) {
		if (t->n == MAX_TRACK)
			return;
		t->p[i] = p;
		t->inc[i] = inc;
		t->next[i] = seq + 1;
		t->n++;
	} else {
		bool exact = t->durable && !t->told;
		if (exact ? seq != t->next[i] : seq < t->next[i])
			FAIL("%s: p%u.%u seq %" PRIu64 " where %" PRIu64 " was due%s", t->who, p,
			     inc, seq, t->next[i], exact ? "" : " or later");
		t->next[i] = seq + 1;
	}
	atomic_fetch_add(&shm->delivered, 1);
}

struct batch_ctx {
	struct tracker *t;
	long left;
};

static int on_msg(void *ctx, const void *data, size_t len)
{
	struct batch_ctx *b = ctx;
	check(b->t, data, len);
	return --b->left <= 0;
}

/* One read by a random API; false if there was nothing. */
static bool read_some(struct mrb_ring *sub, struct tracker *t, unsigned how, long *left)
{
	uint8_t buf[8 * MAX_LEN];
	size_t lens[8];
	int64_t rc;
	if (!t->durable && how % 4 == 1)
		how = 0; /* mrb_peek is for durable subscribers only */
	switch (how % 4) {
	case 0: {
		size_t len;
		rc = mrb_read(sub, buf, MAX_LEN, &len);
		if (rc == 0) {
			check(t, buf, len);
			--*left;
		}
		break;
	}
	case 1: {
		struct mrb_view view;
		rc = mrb_peek(sub, &view);
		if (rc == 0) {
			check(t, view.data, view.len);
			CHECK_RC(mrb_release(sub, &view), 0);
			--*left;
		}
		break;
	}
	case 2:
		rc = mrb_read_many(sub, buf, sizeof(buf), lens, 8);
		if (rc > 0) {
			size_t off = 0;
			for (int64_t i = 0; i < rc; i++) {
				check(t, buf + off, lens[i]);
				off += lens[i];
			}
			*left -= rc;
			rc = 0;
		}
		break;
	default: {
		struct batch_ctx b = {t, *left < 16 ? *left : 16};
		long before = b.left;
		rc = mrb_read_batch(sub, on_msg, &b, 16);
		if (rc > 0) {
			*left -= before - b.left;
			rc = 0;
		}
		break;
	}
	}
	if (rc == MRB_ELAPPED) {
		if (!t->durable)
			return true; /* evictable: told of an eviction */
		t->told = true;
		atomic_fetch_add(&shm->elapsed, 1);
		return true;
	}
	if (rc == MRB_EEMPTY) {
		int w = mrb_wait_readable(sub, 50 * 1000000LL);
		if (w != 0 && w != MRB_ETIMEDOUT && w != MRB_ELAPPED)
			FAIL("%s: wait: %s", t->who, mrb_strerror(w));
		return false;
	}
	if (rc != 0)
		FAIL("%s: read (api %u): %s", t->who, how % 4, mrb_strerror((int)rc));
	return true;
}

static void joiner(int slot, uint64_t seed)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	uint64_t r = mix(seed);
	unsigned kind = (unsigned)(r % 4); /* 0,1 unnamed, 2 named, 3 evictable */
	char name[16];
	snprintf(name, sizeof(name), "j%d", slot);
	struct mrb_subscribe_options opts = {MRB_SUBSCRIBE_FROM_OLDEST, NULL, 0};
	if (kind == 2)
		opts.name = name;
	if (kind == 3) {
		opts.flags |= MRB_SUBSCRIBE_EVICT;
		opts.evict_after_ns = 20 * 1000000LL;
	}
	struct mrb_ring sub;
	int rc = mrb_subscribe(&sub, ring_path, &opts);
	if (rc == MRB_ENOSUB || rc == MRB_ENAMEBUSY) {
		atomic_fetch_add(&shm->join_fails, 1);
		_exit(0);
	}
	CHECK_RC(rc, 0);
	atomic_fetch_add(&shm->joins, 1);
	char who[32];
	snprintf(who, sizeof(who), "joiner %d kind %u", slot, kind);
	struct tracker t = {.who = who, .durable = kind != 3};
	long left = (long)(mix(r + 1) % 3000);
	unsigned how = (unsigned)mix(r + 2);
	while (left > 0) {
		if (!read_some(&sub, &t, how, &left))
			continue;
		if (mix(r + (uint64_t)left) % 64 == 0)
			how++;
	}
	CHECK_RC(mrb_close(&sub), 0);
	/* A killed named joiner's entry is kept for the slot's next named
	 * joiner to resume (it holds R meanwhile); a clean one leaves. */
	if (kind == 2)
		CHECK_RC(mrb_unsubscribe(ring_path, name), 0);
	_exit(0);
}

static void anchor(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct mrb_subscribe_options opts = {0, "anchor", 0};
	struct mrb_ring sub;
	CHECK_RC(mrb_subscribe(&sub, ring_path, &opts), 0);
	/* Resumed after a kill: may re-read what it read and did not release,
	 * so only strictly increasing across restarts; within one, exact. */
	struct tracker t = {.who = "anchor", .durable = true};
	long left = 1L << 40;
	for (unsigned how = 0;; how++)
		read_some(&sub, &t, how, &left);
}

/* ---- Controller ------------------------------------------------------------ */

static pid_t spawn_producer(uint32_t p, uint32_t inc)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		producer(p, inc);
	return pid;
}

static pid_t spawn_joiner(int slot, uint64_t seed)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		joiner(slot, seed);
	return pid;
}

static pid_t spawn_anchor(void)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		anchor();
	return pid;
}

/* A child that ended: it must have exited 0 or been killed by us. */
static void reaped(int status, const char *what)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		return;
	FAIL("%s ended with status %d", what, status);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 2.0;
	rtest_watchdog((unsigned)(seconds + 60));
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shm != MAP_FAILED);
	ring_path = rtest_path("storm.ring");
	struct mrb_ring ring;
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	uint64_t size = RING_SIZE; /* STORM_RING_SIZE: smaller, more laps */
	if (getenv("STORM_RING_SIZE") != NULL)
		size = strtoull(getenv("STORM_RING_SIZE"), NULL, 0);
	CHECK_RC(mrb_create(&ring, ring_path, size, &copts), 0);
	uint64_t seed = (uint64_t)rtest_now_ns();
	if (getenv("STORM_SEED") != NULL)
		seed = strtoull(getenv("STORM_SEED"), NULL, 0);
	printf("seed %" PRIu64 "\n", seed);
	pid_t prod[PRODUCERS], join[JOINERS], anc;
	uint32_t inc[PRODUCERS] = {0};
	bool prod_stopped[PRODUCERS] = {0}, join_stopped[JOINERS] = {0}, anc_stopped = false;
	for (uint32_t p = 0; p < PRODUCERS; p++)
		prod[p] = spawn_producer(p, inc[p]);
	/* STORM_NO_ANCHOR=1: no gating subscriber but the joiners, so that
	 * producers short of space race every join (passes, MRB_ELAPPED). */
	bool no_anchor = getenv("STORM_NO_ANCHOR") != NULL;
	anc = no_anchor ? 0 : spawn_anchor();
	for (int j = 0; j < JOINERS; j++)
		join[j] = spawn_joiner(j, seed + (uint64_t)j * 1000003);
	uint64_t events = 0, kills = 0, stops = 0;
	int64_t end = rtest_now_ns() + (int64_t)(seconds * 1e9);
	uint64_t r = seed;
	while (rtest_now_ns() < end) {
		r = mix(r + 1);
		/* Finished joiners are replaced. */
		for (int j = 0; j < JOINERS; j++) {
			int status;
			pid_t got = waitpid(join[j], &status, WNOHANG);
			if (got == join[j]) {
				reaped(status, "joiner");
				join_stopped[j] = false;
				join[j] = spawn_joiner(j, r + (uint64_t)j);
			}
		}
		unsigned action = (unsigned)(r % 100);
		int j = (int)((r >> 8) % JOINERS);
		uint32_t p = (uint32_t)((r >> 16) % PRODUCERS);
		if (action < 20) { /* kill a joiner mid-read */
			if (join_stopped[j])
				kill(join[j], SIGCONT);
			rtest_kill(join[j]);
			join_stopped[j] = false;
			join[j] = spawn_joiner(j, r);
			kills++;
		} else if (action < 35) { /* stop or continue a joiner */
			kill(join[j], join_stopped[j] ? SIGCONT : SIGSTOP);
			join_stopped[j] = !join_stopped[j];
			stops++;
		} else if (action < 43 && no_anchor) {
			/* no anchor */
		} else if (action < 40) { /* stop or continue the anchor */
			kill(anc, anc_stopped ? SIGCONT : SIGSTOP);
			anc_stopped = !anc_stopped;
			stops++;
		} else if (action < 43) { /* kill the anchor */
			rtest_kill(anc);
			anc_stopped = false;
			anc = spawn_anchor();
			kills++;
		} else if (action < 48) { /* stop or continue a producer */
			kill(prod[p], prod_stopped[p] ? SIGCONT : SIGSTOP);
			prod_stopped[p] = !prod_stopped[p];
			stops++;
		} else if (action < 50) { /* kill a producer */
			rtest_kill(prod[p]);
			prod_stopped[p] = false;
			prod[p] = spawn_producer(p, ++inc[p]);
			kills++;
		}
		events++;
		rtest_sleep_ms(1 + (long)((r >> 24) % 4));
		/* Nothing stays stopped long: a stopped durable reader holds
		 * everyone back. */
		if ((r >> 32) % 8 == 0) {
			for (int k = 0; k < JOINERS; k++)
				if (join_stopped[k])
					kill(join[k], SIGCONT), join_stopped[k] = false;
			if (anc_stopped)
				kill(anc, SIGCONT), anc_stopped = false;
			for (uint32_t k = 0; k < PRODUCERS; k++)
				if (prod_stopped[k])
					kill(prod[k], SIGCONT), prod_stopped[k] = false;
		}
	}
	/* Wind down: continue everyone, stop the producers, end the joiners. */
	for (int j = 0; j < JOINERS; j++)
		kill(join[j], SIGCONT);
	if (!no_anchor)
		kill(anc, SIGCONT);
	for (uint32_t p = 0; p < PRODUCERS; p++)
		kill(prod[p], SIGCONT);
	atomic_store(&shm->stop_producers, 1);
	for (uint32_t p = 0; p < PRODUCERS; p++)
		reaped(rtest_wait(prod[p]), "producer");
	for (int j = 0; j < JOINERS; j++) {
		kill(join[j], SIGKILL);
		reaped(rtest_wait(join[j]), "joiner");
	}
	if (!no_anchor)
		rtest_kill(anc);
	/* Reap what the joiners left: a join reaps dead unnamed entries; the
	 * named ones are removed by name. */
	struct mrb_ring last;
	CHECK_RC(mrb_subscribe(&last, ring_path, NULL), 0);
	CHECK_RC(mrb_close(&last), 0);
	for (int j = 0; j < JOINERS; j++) {
		char name[16];
		snprintf(name, sizeof(name), "j%d", j);
		int rc = mrb_unsubscribe(ring_path, name);
		if (rc != 0 && rc != -ENOENT)
			FAIL("unsubscribe %s: %s", name, mrb_strerror(rc));
	}
	if (!no_anchor)
		CHECK_RC(mrb_unsubscribe(ring_path, "anchor"), 0);
	struct mrb_subscriber_info infos[8];
	int64_t left = mrb_subscribers(&ring, infos, 8);
	uint8_t *base = mrb__test_mapping(&ring);
	uint32_t counted =
	    atomic_load((_Atomic uint32_t *)(void *)(base + VALIDATING_READERS_OFFSET));
	printf("events %" PRIu64 ", kills %" PRIu64 ", stops %" PRIu64 ", joins %" PRIu64
	       " (%" PRIu64 " refused), delivered %" PRIu64 ", elapsed %" PRIu64
	       ", written %" PRIu64 "+%" PRIu64 ", entries left %" PRId64
	       ", validating_readers %u\n",
	       events, kills, stops, atomic_load(&shm->joins), atomic_load(&shm->join_fails),
	       atomic_load(&shm->delivered), atomic_load(&shm->elapsed),
	       atomic_load(&shm->written[0]), atomic_load(&shm->written[1]), left, counted);
	CHECK_EQ_U64(left, 0);
	if (counted != 0)
		fprintf(stderr,
		        "validating_readers left at %u (a kill between a joiner's "
		        "increment and its entry flags?)\n",
		        counted);
	CHECK(atomic_load(&shm->delivered) > 0);
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
