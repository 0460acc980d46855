/* SPDX-License-Identifier: MIT */
/*
 * Description: validating readers joining a ring whose sole producer writes
 * at full speed under the lease. A holder process writes sequence-numbered,
 * checksummed messages to a fan-out ring alone; two subscriber processes
 * each join and leave it over and over (mostly lossy taps; every third join
 * of one of them an evictable durable subscriber with a 1 ms eviction
 * timeout, which holds the producer back until evicted), reading a few
 * hundred messages per join with mrb_read, mrb_read_many and
 * mrb_read_batch. A join counts itself as a validating reader and revokes
 * the lease; after that the producer must claim by CAS (its copies are
 * then word-atomic, and the reader's validation sees any overwrite), so:
 *  - every message a subscriber accepts is intact (length, checksum,
 *    bytes) and newer than the last one it accepted (lapped: skipped, never
 *    repeated or reordered);
 *  - with the lease hook, while a subscriber is joined, the tail never
 *    moves between two samples that both see the lease HELD (the same
 *    acquisition, which must give the lease back at once when it finds a
 *    validating reader: no plain claim);
 *  - once the readers are gone, the holder takes the lease back within its
 *    longest backoff (2^20 CAS claims: every try failed while they were
 *    there), and its close gives it up.
 * Arguments: [seed [joins]]; LEASE_SEED works too.
 */
#include "lease_common.h"

#define RING_SIZE      (256 * 1024)
#define DEFAULT_JOINS  150
#define SUBSCRIBERS    2
#define C_HOLDER_READY 0
#define C_ACCEPTED     1
#define C_LOST_EVENTS  2
#define C_ELAPSED      3
#define C_HELD_SAMPLES 4
#define C_SAMPLES      5
#define C_EVICT_JOINS  6
#define C_BATCH_EINVAL 7
#define C_ALONE_WRITES 8

static struct lctl *ctl;

static void holder_main(void)
{
	lchild(120);
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	uint32_t seq = 0;
	lwrite(&ring, ctl, 0, seq++);
	lease_expect_mine(&ring, "holder's first write, alone");
	atomic_store(&ctl->counter[C_HOLDER_READY], 1);
	while (!atomic_load(&ctl->stop))
		lwrite(&ring, ctl, 0, seq++);
	uint32_t n = lwrite_until_mine(&ring, ctl, 0, &seq, "holder after the readers left");
	atomic_store(&ctl->counter[C_ALONE_WRITES], n);
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

struct reader {
	struct mrb_ring ring;
	uint32_t index;
	int64_t last_seq; /* across joins: the holder's numbers only grow */
	uint64_t accepted;
};

static void accept(struct reader *rd, const uint8_t *msg, size_t len)
{
	struct lmsg_header h = {0, 0, 0, 0, 0};
	const char *bad = lmsg_verify(msg, len, &h);
	if (bad != NULL)
		FAIL("subscriber %u: accepted a torn or corrupt message (%s), %zu bytes, seq %u",
		     rd->index, bad, len, h.seq);
	CHECK(h.producer == 0);
	if ((int64_t)h.seq <= rd->last_seq)
		FAIL("subscriber %u: seq %u after %" PRId64 " (repeated or reordered)", rd->index,
		     h.seq, rd->last_seq);
	rd->last_seq = h.seq;
	rd->accepted++;
}

static int on_batch(void *ctx, const void *data, size_t len)
{
	accept(ctx, data, len);
	return 0;
}

/* Samples the lease and the tail: a HELD lease seen twice around a tail
 * move while this reader is counted as validating is a plain claim after
 * the revocation. */
static void sample(struct reader *rd)
{
	uint64_t w1 = lease_word(&rd->ring);
	uint64_t t1 = ring_load64(&rd->ring, OFF_PRODUCER_POSITION);
	/* Until the producer's next claim (or 100 us). */
	int64_t until = rtest_now_ns() + 100000;
	uint64_t t2;
	while ((t2 = ring_load64(&rd->ring, OFF_PRODUCER_POSITION)) == t1 &&
	       rtest_now_ns() < until) {
	}
	uint64_t w2 = lease_word(&rd->ring);
	lease_check_wellformed(w1);
	atomic_fetch_add(&ctl->counter[C_SAMPLES], 1);
	if (LEASE_TAG(w1) == LEASE_HELD)
		atomic_fetch_add(&ctl->counter[C_HELD_SAMPLES], 1);
	/* 64 claims (the shortest backoff between two tries) of 48 bytes or
	 * more move the tail by 3 KiB or more: below that, one acquisition. */
	if (LEASE_TAG(w1) == LEASE_HELD && w1 == w2 && t1 != t2 && t2 - t1 < 3072)
		FAIL("subscriber %u: the tail moved %#" PRIx64 " -> %#" PRIx64
		     " under lease %#" PRIx64 " while a validating reader was joined",
		     rd->index, t1, t2, w1);
}

static void subscriber_main(uint32_t index, uint32_t joins)
{
	lchild(120);
	struct reader rd = {.index = index, .last_seq = -1};
	static uint8_t buf[8 * LMSG_MAX];
	uint64_t rng = ctl->seed ^ (index + 1) * UINT64_C(0x9e3779b97f4a7c15);
	for (uint32_t j = 0; j < joins; j++) {
		bool evict = index == 1 && j % 3 == 2;
		struct mrb_subscribe_options opts = {.flags = evict ? MRB_SUBSCRIBE_EVICT
		                                                    : MRB_SUBSCRIBE_LOSSY,
		                                     .evict_after_ns = evict ? 1000000 : 0};
		CHECK_RC(mrb_subscribe(&rd.ring, ctl->ring_path, &opts), 0);
		if (evict)
			atomic_fetch_add(&ctl->counter[C_EVICT_JOINS], 1);
		uint32_t want = 1 + (uint32_t)(lrand(&rng) % 300);
		uint64_t start = rd.accepted;
		for (uint32_t tries = 0; rd.accepted - start < want && tries < 20000; tries++) {
			sample(&rd);
			int64_t rc;
			switch ((tries + j) % 3) {
			case 0: {
				size_t len;
				rc = mrb_read(&rd.ring, buf, sizeof(buf), &len);
				if (rc == 0)
					accept(&rd, buf, len);
				break;
			}
			case 1: {
				size_t lengths[8];
				rc = mrb_read_many(&rd.ring, buf, sizeof(buf), lengths, 8);
				size_t off = 0;
				for (int64_t i = 0; i < rc; off += lengths[i], i++)
					accept(&rd, buf + off, lengths[i]);
				break;
			}
			default:
				rc = mrb_read_batch(&rd.ring, on_batch, &rd, 16);
				if (rc == MRB_EINVAL) {
					atomic_fetch_add(&ctl->counter[C_BATCH_EINVAL], 1);
					rc = 0;
				}
				break;
			}
			if (rc == MRB_ELAPPED)
				atomic_fetch_add(&ctl->counter[C_ELAPSED], 1);
			else if (rc == MRB_EEMPTY)
				sched_yield();
			else if (rc < 0)
				FAIL("subscriber %u join %u: read: %s", index, j,
				     mrb_strerror((int)rc));
		}
		sample(&rd);
		struct mrb_subscriber_info info;
		CHECK_RC(mrb_subscriber_info(&rd.ring, &info), 0);
		atomic_fetch_add(&ctl->counter[C_LOST_EVENTS], info.lost_events);
		CHECK_RC(mrb_close(&rd.ring), 0);
	}
	atomic_fetch_add(&ctl->counter[C_ACCEPTED], rd.accepted);
	_exit(0);
}

int main(int argc, char **argv)
{
	uint64_t seed = lseed(argc, argv, 1);
	uint32_t joins = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : DEFAULT_JOINS;
	rtest_watchdog(150);
	ctl = lctl_setup(RING_SIZE, MRB_CREATE_FANOUT, seed);
	struct mrb_ring ring; /* inspects */
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	pid_t holder = fork();
	CHECK(holder >= 0);
	if (holder == 0)
		holder_main();
	while (atomic_load(&ctl->counter[C_HOLDER_READY]) == 0)
		rtest_sleep_ms(1);
	pid_t subs[SUBSCRIBERS];
	for (uint32_t i = 0; i < SUBSCRIBERS; i++) {
		subs[i] = fork();
		CHECK(subs[i] >= 0);
		if (subs[i] == 0)
			subscriber_main(i, joins);
	}
	for (uint32_t i = 0; i < SUBSCRIBERS; i++)
		rtest_expect_exit0(subs[i], "subscriber");
	atomic_store(&ctl->stop, 1);
	rtest_expect_exit0(holder, "holder");
	uint64_t w = lease_word(&ring);
	if (w != 0)
		FAIL("lease %#" PRIx64 " after the holder closed", w);
	CHECK_RC(mrb_close(&ring), 0);
	printf("%u joins x %d subscribers (%" PRIu64 " evictable), %" PRIu64
	       " messages accepted intact, lapped %" PRIu64 " times, MRB_ELAPPED %" PRIu64
	       ", holder wrote %u; lease samples while joined: %" PRIu64 ", HELD %" PRIu64
	       " (transient acquisitions); read_batch refused %" PRIu64
	       "; the lease back after %" PRIu64 " writes alone (lease assertions %s)\n",
	       joins, SUBSCRIBERS, atomic_load(&ctl->counter[C_EVICT_JOINS]),
	       atomic_load(&ctl->counter[C_ACCEPTED]), atomic_load(&ctl->counter[C_LOST_EVENTS]),
	       atomic_load(&ctl->counter[C_ELAPSED]), atomic_load(&ctl->committed[0]),
	       atomic_load(&ctl->counter[C_SAMPLES]), atomic_load(&ctl->counter[C_HELD_SAMPLES]),
	       atomic_load(&ctl->counter[C_BATCH_EINVAL]),
	       atomic_load(&ctl->counter[C_ALONE_WRITES]), lease_checks() ? "on" : "off");
	return 0;
}
