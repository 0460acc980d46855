/* SPDX-License-Identifier: MIT */
/*
 * Shared parts of the sole-producer lease tests (lease_*.c): sequence-numbered,
 * checksummed messages of numbered producers, a control block in a file
 * (so exec'd producers map it too) where producers record what they
 * committed and the consumer what it received, a consumer process that
 * proves per-producer order (no loss, duplicate, tear or reordering), the
 * final accounting, and readers of the lease word (docs/FORMAT.md header
 * 0x088: 0 none, HELD = gen << 32 | slot << 8 | 1, REVOKING = ... | 2).
 *
 * The lease is invisible through the public API. Its state is read through
 * mrb__test_sole_producer when the library has it (a weak reference: the
 * assertions on the state switch on by themselves), else raw from the
 * mapping, where a library without a lease leaves 0.
 */
#ifndef LEASE_COMMON_H
#define LEASE_COMMON_H

#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#if defined(__aarch64__)
#include <elf.h>
#endif

#include "ring_bytes.h"
#include "rtest.h"

/* Under ThreadSanitizer every instruction single-stepped and every message
 * costs ~20x: the tests do fewer rounds there. */
#if defined(__SANITIZE_THREAD__)
#define LEASE_SLOW 1
#else
#define LEASE_SLOW 0
#endif

/* ---- The lease word -------------------------------------------------------- */

#define OFF_SOLE_PRODUCER   0x088
#define LEASE_HELD          1u
#define LEASE_REVOKING      2u
#define LEASE_TAG(w)        ((unsigned)((w)&0xff))
#define LEASE_SLOT(w)       ((uint32_t)(((w) >> 8) & 0xffffff))
#define LEASE_GEN(w)        ((uint32_t)((w) >> 32))
#define LEASE_IS_HELD(w, s) (LEASE_TAG(w) == LEASE_HELD && LEASE_SLOT(w) == (uint32_t)(s))

uint64_t mrb__test_sole_producer(struct mrb_ring *ring) __attribute__((weak));

/* True when the library reports its lease: the state assertions apply. */
static inline bool lease_checks(void)
{
	return mrb__test_sole_producer != NULL;
}

static inline uint64_t lease_word(struct mrb_ring *ring)
{
	uint64_t raw = ring_load64(ring, OFF_SOLE_PRODUCER);
	if (!lease_checks()) {
		if (raw != 0)
			FAIL("header 0x088 = %#" PRIx64 " in a library without a lease hook", raw);
		return 0;
	}
	return mrb__test_sole_producer(ring);
}

/* 0, or HELD / REVOKING of a slot that exists: never garbage from honest
 * processes. */
static inline void lease_check_wellformed(uint64_t w)
{
	if (w == 0)
		return;
	unsigned tag = LEASE_TAG(w);
	if ((tag != LEASE_HELD && tag != LEASE_REVOKING) || LEASE_SLOT(w) >= PRODUCER_SLOTS)
		FAIL("lease word %#" PRIx64 " is neither 0, HELD nor REVOKING", w);
}

static inline const char *lease_name(uint64_t w)
{
	return w == 0 ? "none" : LEASE_TAG(w) == LEASE_HELD ? "HELD" : "REVOKING";
}

/* After this process's handle wrote while it was the only producer: the
 * lease is its own (with the lease hook). */
static inline void lease_expect_mine(struct mrb_ring *ring, const char *when)
{
	if (!lease_checks())
		return;
	uint64_t w = lease_word(ring);
	size_t slot = ring_own_slot(ring);
	if (!LEASE_IS_HELD(w, slot))
		FAIL("%s: lease word %#" PRIx64 " (%s slot %u), expected HELD by slot %zu", when, w,
		     lease_name(w), LEASE_SLOT(w), slot);
	uint64_t owner = ring_load64(ring, OFF_PRODUCERS + slot * PRODUCER_SLOT_SIZE + SLOT_OWNER);
	if ((uint32_t)owner != (uint32_t)getpid())
		FAIL("%s: slot %zu owner %#" PRIx64 " is not pid %d", when, slot, owner,
		     (int)getpid());
}

/* Lane 0 of producer slot `slot`: its claim announcement (position | 1, or 0). */
static inline uint64_t lane0_claiming(struct mrb_ring *ring, size_t slot)
{
	return ring_load64(ring, OFF_PRODUCERS + slot * PRODUCER_SLOT_SIZE + SLOT_LANES);
}

/* Is the slot's lane 0 inside a claim window (announced at the current tail,
 * the tail not yet moved past it)? The revoker's R3 test. */
static inline bool lane0_in_window(struct mrb_ring *ring, size_t slot)
{
	uint64_t c = lane0_claiming(ring, slot);
	uint64_t t = ring_load64(ring, OFF_PRODUCER_POSITION);
	return c == (t | 1);
}

/* The slot whose owner is process `pid`, or -1. */
static inline long slot_of_pid(struct mrb_ring *ring, pid_t pid)
{
	for (size_t i = 0; i < PRODUCER_SLOTS; i++) {
		uint64_t owner =
		    ring_load64(ring, OFF_PRODUCERS + i * PRODUCER_SLOT_SIZE + SLOT_OWNER);
		if ((uint32_t)owner == (uint32_t)pid)
			return (long)i;
	}
	return -1;
}

/*
 * Puts process `pid` (a child of the caller, running its writes) to a stop
 * exactly inside a claim window: seizes it with ptrace and single-steps it
 * until lane 0 of `slot` announces the current tail (and, with
 * `need_held`, the lease is HELD by that slot) and then `depth` steps more
 * inside it (0: at its first instruction; less if the window is shorter),
 * then detaches delivering
 * `detach_sig` before it runs another instruction (SIGSTOP: it stays
 * stopped there; a handled signal: its handler runs there). Returns the
 * number of steps, or -1 if the window was not reached within `max_steps`
 * (the process is then detached running) or ptrace is not permitted.
 */
static inline long lstep_into_window_then(struct mrb_ring *ring, pid_t pid, size_t slot,
                                          long max_steps, bool need_held, int detach_sig,
                                          long depth)
{
	/* Seized and interrupted, not attached: no SIGSTOP, so the other
	 * threads of the process run on. */
	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) != 0)
		return -1;
	CHECK(ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) == 0);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFSTOPPED(status));
	int pass = 0;    /* a signal that arrived meanwhile, passed on */
	long inside = 0; /* consecutive steps inside the window */
	for (long steps = 0; steps < max_steps; steps++) {
		/* (After a step: a signal given at detach is delivered only from
		 * a signal-delivery stop, not from the interrupt's stop.) */
		if (steps > 0 && lane0_in_window(ring, slot) &&
		    (!need_held || LEASE_IS_HELD(lease_word(ring), slot)) && inside++ >= depth) {
			CHECK(ptrace(PTRACE_DETACH, pid, NULL, (void *)(long)detach_sig) == 0);
			if (detach_sig == SIGSTOP)
				CHECK(waitpid(pid, &status, WUNTRACED) == pid &&
				      WIFSTOPPED(status));
			return steps;
		} else if (!lane0_in_window(ring, slot)) {
			/* The window closed first: it is shorter than `depth`. */
			if (inside > 0 && inside <= depth)
				depth = inside - 1;
			inside = 0;
		}
		CHECK(ptrace(PTRACE_SINGLESTEP, pid, NULL, (void *)(long)pass) == 0);
		CHECK(waitpid(pid, &status, 0) == pid);
		if (!WIFSTOPPED(status))
			FAIL("process %d ended while single-stepped: status %#x", (int)pid, status);
		pass = WSTOPSIG(status) == SIGTRAP || WSTOPSIG(status) == SIGSTOP
		           ? 0
		           : WSTOPSIG(status);
	}
	CHECK(ptrace(PTRACE_DETACH, pid, NULL, (void *)(long)pass) == 0);
	return -1;
}

static inline long lstep_into_window(struct mrb_ring *ring, pid_t pid, size_t slot, long max_steps,
                                     bool need_held)
{
	return lstep_into_window_then(ring, pid, slot, max_steps, need_held, SIGSTOP, 0);
}

/* The program counter of a ptrace-stopped thread (0 where not supported:
 * the tests that stop at code points then skip those rounds). */
static inline uint64_t lpc(pid_t pid)
{
#if defined(__x86_64__)
	struct user_regs_struct regs;
	CHECK(ptrace(PTRACE_GETREGS, pid, NULL, &regs) == 0);
	return regs.rip;
#elif defined(__aarch64__)
	struct user_pt_regs regs;
	struct iovec iov = {&regs, sizeof(regs)};
	CHECK(ptrace(PTRACE_GETREGSET, pid, (void *)(long)NT_PRSTATUS, &iov) == 0);
	return regs.pc;
#else
	(void)pid;
	return 0;
#endif
}

#define LCLAIM_TRAIL 32

/*
 * Learns the code points of a claim: seizes `pid` (writing alone, with the
 * lease held if `need_held`), single-steps it until the producer position
 * moves, and fills trail[k] with the address of the instruction k steps
 * before that move (trail[0]: the store or CAS that moved it). Detaches
 * with it running. Returns false if ptrace or the program counter is not
 * available.
 */
static inline bool llearn_claim(struct mrb_ring *ring, pid_t pid, bool need_held,
                                uint64_t trail[LCLAIM_TRAIL])
{
	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) != 0)
		return false;
	CHECK(ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) == 0);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFSTOPPED(status));
	uint64_t ring_pcs[LCLAIM_TRAIL] = {0};
	size_t slot = 0;
	bool ok = false;
	for (long steps = 0; steps < 4000000; steps++) {
		uint64_t pc = lpc(pid);
		if (pc == 0)
			break;
		uint64_t tail = ring_load64(ring, OFF_PRODUCER_POSITION);
		bool held = !need_held || LEASE_TAG(lease_word(ring)) == LEASE_HELD;
		ring_pcs[slot++ % LCLAIM_TRAIL] = pc;
		CHECK(ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) == 0);
		CHECK(waitpid(pid, &status, 0) == pid && WIFSTOPPED(status));
		if (ring_load64(ring, OFF_PRODUCER_POSITION) != tail && held &&
		    steps >= LCLAIM_TRAIL) {
			for (size_t k = 0; k < LCLAIM_TRAIL; k++)
				trail[k] = ring_pcs[(slot - 1 - k) % LCLAIM_TRAIL];
			ok = true;
			break;
		}
	}
	CHECK(ptrace(PTRACE_DETACH, pid, NULL, NULL) == 0);
	return ok;
}

/* Is the instruction at `pc` of stopped-or-running child `pid` a locked
 * read-modify-write (x86 LOCK prefix: the CAS of a claim)? false where it
 * cannot be told. */
static inline bool linsn_locked(pid_t pid, uint64_t pc)
{
#if defined(__x86_64__)
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	uint8_t b = 0;
	bool locked = pread(fd, &b, 1, (off_t)pc) == 1 && b == 0xf0;
	close(fd);
	return locked;
#else
	(void)pid;
	(void)pc;
	return false;
#endif
}

/* Seizes `pid` and single-steps it until it is about to execute one of
 * the instructions at `pcs` (with the lease HELD, if `need_held`), then
 * detaches leaving it stopped there by SIGSTOP. Returns the steps, or -1. */
static inline long lstep_to_pcs(struct mrb_ring *ring, pid_t pid, const uint64_t *pcs, size_t npcs,
                                long max_steps, bool need_held)
{
	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) != 0)
		return -1;
	CHECK(ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) == 0);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFSTOPPED(status));
	for (long steps = 0; steps < max_steps; steps++) {
		bool at = false;
		if (steps > 0) {
			uint64_t pc = lpc(pid);
			for (size_t i = 0; i < npcs; i++)
				at = at || pc == pcs[i];
		}
		if (at && (!need_held || LEASE_TAG(lease_word(ring)) == LEASE_HELD)) {
			CHECK(ptrace(PTRACE_DETACH, pid, NULL, (void *)(long)SIGSTOP) == 0);
			CHECK(waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status));
			return steps;
		}
		CHECK(ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) == 0);
		CHECK(waitpid(pid, &status, 0) == pid && WIFSTOPPED(status));
	}
	CHECK(ptrace(PTRACE_DETACH, pid, NULL, NULL) == 0);
	return -1;
}

static inline long lstep_to_pc(struct mrb_ring *ring, pid_t pid, uint64_t pc, long max_steps,
                               bool need_held)
{
	return lstep_to_pcs(ring, pid, &pc, 1, max_steps, need_held);
}

/* Waits until the producer in slot `slot` holds the lease and has claimed
 * 320 KiB under it: a lease taken back after that counts as a long one,
 * so its next try comes after the shortest backoff (lease.c), not after up
 * to 2^20 claims. Returns false if it lost the lease meanwhile. */
static inline bool lwait_long_lease(struct mrb_ring *ring, size_t slot)
{
	while (!LEASE_IS_HELD(lease_word(ring), slot))
		sched_yield();
	uint64_t from = ring_load64(ring, OFF_PRODUCER_POSITION);
	while (ring_load64(ring, OFF_PRODUCER_POSITION) - from < 320 * 1024)
		if (!LEASE_IS_HELD(lease_word(ring), slot))
			return false;
	return true;
}

/* ---- Messages -------------------------------------------------------------- */

#define LMSG_HEADER  24
#define LMSG_MAGIC   0x4c454153u /* "LEAS" */
#define LMSG_MAX     (LMSG_HEADER + 3000)
#define LMSG_MAX_IDS 4096
#define LMSG_END_ID  (LMSG_MAX_IDS - 1) /* the parent's end marker */

struct lmsg_header {
	uint32_t producer;
	uint32_t seq;
	uint32_t len;
	uint32_t magic;
	uint64_t checksum;
};
_Static_assert(sizeof(struct lmsg_header) == LMSG_HEADER, "message header");

static inline uint64_t lmsg_seed(uint32_t producer, uint32_t seq)
{
	return ((uint64_t)producer << 40) ^ seq ^ UINT64_C(0x5bd1e9955bd1e995);
}

/* Mostly small (the lease matters most for small messages); every 64th up
 * to 3000 bytes, so claims wrap and copies take a while. */
static inline size_t lmsg_len(uint32_t producer, uint32_t seq)
{
	uint64_t h = lmsg_seed(producer, seq) * UINT64_C(0x9e3779b97f4a7c15);
	h ^= h >> 31;
	return LMSG_HEADER + ((h >> 8) % 64 == 0 ? (size_t)(h % 3000) : (size_t)(h % 120));
}

static inline uint64_t lmsg_checksum(const uint8_t *msg, size_t len)
{
	return rtest_fnv1a(msg, 16) ^ rtest_fnv1a(msg + LMSG_HEADER, len - LMSG_HEADER);
}

static inline size_t lmsg_build(uint8_t *msg, uint32_t producer, uint32_t seq)
{
	size_t len = lmsg_len(producer, seq);
	struct lmsg_header h = {producer, seq, (uint32_t)len, LMSG_MAGIC, 0};
	memcpy(msg, &h, sizeof(h));
	rtest_fill(msg + LMSG_HEADER, len - LMSG_HEADER, lmsg_seed(producer, seq));
	h.checksum = lmsg_checksum(msg, len);
	memcpy(msg, &h, sizeof(h));
	return len;
}

/* Checks a delivered message completely; returns NULL or what is wrong. */
static inline const char *lmsg_verify(const uint8_t *msg, size_t len, struct lmsg_header *out)
{
	if (len < LMSG_HEADER)
		return "shorter than a header";
	memcpy(out, msg, sizeof(*out));
	if (out->magic != LMSG_MAGIC)
		return "bad magic";
	if (out->len != len)
		return "length differs from the header's";
	if (out->producer >= LMSG_MAX_IDS)
		return "producer id out of range";
	if (len != lmsg_len(out->producer, out->seq))
		return "length differs from the sequence number's";
	if (out->checksum != lmsg_checksum(msg, len))
		return "checksum";
	if (!rtest_matches(msg + LMSG_HEADER, len - LMSG_HEADER,
	                   lmsg_seed(out->producer, out->seq)))
		return "payload bytes";
	return NULL;
}

/* ---- Control block (a file, mapped by every process) ----------------------- */

struct lctl {
	char ring_path[512];
	char ctl_path[512];
	uint64_t seed;
	/* Messages producer i committed (stored after each successful write). */
	_Atomic uint32_t committed[LMSG_MAX_IDS];
	/* Messages of producer i the consumer received (the next seq). */
	_Atomic uint32_t received[LMSG_MAX_IDS];
	/* Producer i was SIGKILLed: up to this many in-flight messages (1, or
	 * a batch's rest) may or may not have arrived. */
	_Atomic uint32_t killed[LMSG_MAX_IDS];
	_Atomic uint32_t phase; /* test-defined */
	_Atomic uint32_t stop;  /* test-defined */
	_Atomic uint64_t counter[16];
	/* Lease states the consumer saw while reading: none, HELD, REVOKING. */
	_Atomic uint64_t seen[3];
	_Atomic uint64_t consumed;
};

static inline struct lctl *lctl_map(const char *path, bool create)
{
	int fd = open(path, create ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR, 0600);
	if (fd < 0)
		FAIL("open %s: %s", path, strerror(errno));
	if (create && ftruncate(fd, sizeof(struct lctl)) != 0)
		FAIL("ftruncate: %s", strerror(errno));
	void *p = mmap(NULL, sizeof(struct lctl), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	close(fd);
	return p;
}

/* Creates the ring (`flags` of mrb_create_options) and the control block. */
static inline struct lctl *lctl_setup(uint64_t ring_size, unsigned flags, uint64_t seed)
{
	const char *ring_path = rtest_path("ring");
	const char *ctl_path = rtest_path("ctl");
	struct lctl *ctl = lctl_map(ctl_path, true);
	snprintf(ctl->ring_path, sizeof(ctl->ring_path), "%s", ring_path);
	snprintf(ctl->ctl_path, sizeof(ctl->ctl_path), "%s", ctl_path);
	ctl->seed = seed;
	struct mrb_ring ring;
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE | flags, .mode = 0600};
	CHECK_RC(mrb_create(&ring, ring_path, ring_size, &opts), 0);
	CHECK_RC(mrb_close(&ring), 0);
	return ctl;
}

/* The test's seed: argv, else $LEASE_SEED, else from the clock; printed so
 * that a failing run can be repeated. */
static inline uint64_t lseed(int argc, char **argv, int index)
{
	uint64_t seed;
	if (argc > index)
		seed = strtoull(argv[index], NULL, 0);
	else if (getenv("LEASE_SEED") != NULL)
		seed = strtoull(getenv("LEASE_SEED"), NULL, 0);
	else
		seed = (uint64_t)rtest_now_ns() ^ ((uint64_t)getpid() << 32);
	printf("seed %#" PRIx64 " (repeat with LEASE_SEED=%#" PRIx64 ")\n", seed, seed);
	fflush(stdout);
	return seed;
}

/* xorshift64*: per-process streams from the seed. */
static inline uint64_t lrand(uint64_t *s)
{
	uint64_t x = *s ? *s : UINT64_C(0x2545f4914f6cdd1d);
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545f4914f6cdd1d);
}

/* First thing in every child: it dies with the test (a failing parent
 * leaves no process behind) and fails by itself after `seconds` (alarms
 * are not inherited across fork). */
static inline void lchild(unsigned seconds)
{
	CHECK(prctl(PR_SET_PDEATHSIG, SIGKILL) == 0);
	rtest_watchdog(seconds);
}

/* ---- Producers -------------------------------------------------------------- */

/* Writes message `seq` of `producer` (waiting while the ring is full) and
 * records it as committed. Returns the number of MRB_EFULL retries. */
static inline unsigned lwrite(struct mrb_ring *ring, struct lctl *ctl, uint32_t producer,
                              uint32_t seq)
{
	static _Thread_local uint8_t msg[LMSG_MAX];
	size_t len = lmsg_build(msg, producer, seq);
	unsigned full = 0;
	int rc;
	while ((rc = mrb_write(ring, msg, len)) == MRB_EFULL) {
		full++;
		rc = mrb_wait_writable(ring, len, 100 * 1000000LL);
		if (rc != 0 && rc != MRB_ETIMEDOUT)
			FAIL("producer %u: wait_writable: %s", producer, mrb_strerror(rc));
	}
	if (rc != 0)
		FAIL("producer %u seq %u: mrb_write: %s", producer, seq, mrb_strerror(rc));
	atomic_store(&ctl->committed[producer], seq + 1);
	return full;
}

/* The longest a producer waits between two tries to take the lease: 2^20
 * CAS claims (lease.c's backoff, doubled after each failed try or short
 * lease, e.g. while validating readers come and go). */
#define LEASE_BACKOFF_MAX (UINT32_C(1) << 20)

/* A producer alone writes single messages until the lease is its own: it
 * must be within the longest backoff (and a margin). Without the lease
 * hook it writes 70000. Returns how many it wrote. */
static inline uint32_t lwrite_until_mine(struct mrb_ring *ring, struct lctl *ctl, uint32_t producer,
                                         uint32_t *seq, const char *when)
{
	uint32_t n = 0;
	if (!lease_checks()) {
		for (; n < 70000; n++)
			lwrite(ring, ctl, producer, (*seq)++);
		return n;
	}
	size_t slot = ring_own_slot(ring);
	for (; !LEASE_IS_HELD(lease_word(ring), slot); n++) {
		if (n > LEASE_BACKOFF_MAX + LEASE_BACKOFF_MAX / 8)
			FAIL("%s: no lease after %u writes alone (lease word %#" PRIx64 ")", when,
			     n, lease_word(ring));
		lwrite(ring, ctl, producer, (*seq)++);
	}
	return n;
}

/* The same through mrb_reserve + mrb_commit. */
static inline void lwrite_reserved(struct mrb_ring *ring, struct lctl *ctl, uint32_t producer,
                                   uint32_t seq)
{
	uint8_t msg[LMSG_MAX];
	size_t len = lmsg_build(msg, producer, seq);
	struct mrb_reservation res;
	int rc;
	while ((rc = mrb_reserve(ring, len, &res)) == MRB_EFULL) {
		rc = mrb_wait_writable(ring, len, 100 * 1000000LL);
		if (rc != 0 && rc != MRB_ETIMEDOUT)
			FAIL("producer %u: wait_writable: %s", producer, mrb_strerror(rc));
	}
	if (rc != 0)
		FAIL("producer %u seq %u: mrb_reserve: %s", producer, seq, mrb_strerror(rc));
	memcpy(res.data, msg, len);
	CHECK_RC(mrb_commit(ring, &res), 0);
	atomic_store(&ctl->committed[producer], seq + 1);
}

/* A batch of `n` (<= 8) messages from `seq` through mrb_write_batch; returns
 * how many were written (all, or a prefix when the ring is full). */
static inline uint32_t lwrite_batch(struct mrb_ring *ring, struct lctl *ctl, uint32_t producer,
                                    uint32_t seq, uint32_t n)
{
	static _Thread_local uint8_t msgs[8][LMSG_MAX];
	struct mrb_iovec iov[8];
	CHECK(n >= 1 && n <= 8);
	for (uint32_t i = 0; i < n; i++) {
		iov[i].data = msgs[i];
		iov[i].len = lmsg_build(msgs[i], producer, seq + i);
	}
	int64_t written;
	while ((written = mrb_write_batch(ring, iov, n)) == MRB_EFULL) {
		int rc = mrb_wait_writable(ring, iov[0].len, 100 * 1000000LL);
		if (rc != 0 && rc != MRB_ETIMEDOUT)
			FAIL("producer %u: wait_writable: %s", producer, mrb_strerror(rc));
	}
	if (written <= 0)
		FAIL("producer %u: mrb_write_batch: %s", producer, mrb_strerror((int)written));
	atomic_store(&ctl->committed[producer], seq + (uint32_t)written);
	return (uint32_t)written;
}

/* The parent's end marker, written once every producer is gone. */
static inline void lwrite_end(struct mrb_ring *ring)
{
	uint8_t msg[LMSG_MAX];
	size_t len = lmsg_build(msg, LMSG_END_ID, 0);
	int rc;
	while ((rc = mrb_write(ring, msg, len)) == MRB_EFULL)
		CHECK(mrb_wait_writable(ring, len, 100 * 1000000LL) != MRB_ECORRUPT);
	CHECK_RC(rc, 0);
}

/* ---- The consumer ----------------------------------------------------------- */

/* Accepts message (producer, seq) in order; fails on anything else. */
static inline void laccept(struct lctl *ctl, const uint8_t *msg, size_t len, bool *end)
{
	struct lmsg_header h = {0, 0, 0, 0, 0};
	const char *bad = lmsg_verify(msg, len, &h);
	if (bad != NULL)
		FAIL("consumer: torn or corrupt message (%s), %zu bytes, producer %u seq %u", bad,
		     len, h.producer, h.seq);
	if (h.producer == LMSG_END_ID) {
		*end = true;
		return;
	}
	uint32_t want = atomic_load(&ctl->received[h.producer]);
	if (h.seq != want)
		FAIL("consumer: producer %u: seq %u arrived, expected %u (%s)", h.producer, h.seq,
		     want, h.seq < want ? "duplicate or reordered" : "lost or reordered");
	atomic_store(&ctl->received[h.producer], want + 1);
	atomic_fetch_add(&ctl->consumed, 1);
}

struct lbatch_ctx {
	struct lctl *ctl;
	bool end;
};

static inline int lbatch_handler(void *ctx, const void *data, size_t len)
{
	struct lbatch_ctx *b = ctx;
	laccept(b->ctl, data, len, &b->end);
	return b->end ? 1 : 0;
}

/* Consumer process body: reads (alternating mrb_read, mrb_read_batch and
 * mrb_read_many) until the end marker, sampling the lease word as it goes;
 * then checks that nothing follows the marker and exits 0. */
static inline void lconsumer_main(struct lctl *ctl)
{
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ctl->ring_path, 0), 0);
	static uint8_t buf[8 * LMSG_MAX];
	bool end = false;
	uint64_t round = 0;
	while (!end) {
		round++;
		uint64_t w = lease_word(&ring);
		lease_check_wellformed(w);
		atomic_fetch_add(&ctl->seen[w == 0 ? 0 : LEASE_TAG(w)], 1);
		int64_t rc;
		switch (round % 3) {
		case 0: {
			size_t len;
			rc = mrb_read(&ring, buf, sizeof(buf), &len);
			if (rc == 0)
				laccept(ctl, buf, len, &end);
			break;
		}
		case 1: {
			struct lbatch_ctx b = {ctl, false};
			rc = mrb_read_batch(&ring, lbatch_handler, &b, 256);
			end = b.end;
			if (rc == 0)
				rc = MRB_EEMPTY;
			break;
		}
		default: {
			size_t lengths[8];
			rc = mrb_read_many(&ring, buf, sizeof(buf), lengths, 8);
			size_t off = 0;
			for (int64_t i = 0; i < rc && !end; off += lengths[i], i++)
				laccept(ctl, buf + off, lengths[i], &end);
			break;
		}
		}
		if (rc == MRB_EEMPTY) {
			rc = mrb_wait_readable(&ring, 50 * 1000000LL);
			if (rc != 0 && rc != MRB_ETIMEDOUT)
				FAIL("consumer: wait_readable: %s", mrb_strerror((int)rc));
		} else if (rc < 0)
			FAIL("consumer: read: %s", mrb_strerror((int)rc));
	}
	size_t len;
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_EEMPTY);
	struct mrb_stats st;
	CHECK_RC(mrb_stats(&ring, &st), 0);
	atomic_store(&ctl->counter[15], st.recovered_records);
	CHECK_RC(mrb_close(&ring), 0);
}

static pid_t lconsumer_pid;

/* The consumer found a fault and exited: fail now (producers would wait
 * for space forever otherwise). Looks without reaping it (WNOWAIT). */
static inline void lon_sigchld(int sig)
{
	(void)sig;
	int saved = errno;
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)lconsumer_pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == lconsumer_pid && !(si.si_code == CLD_EXITED && si.si_status == 0)) {
		static const char msg[] = "FAIL: the consumer process failed (see above)\n";
		ssize_t ignored = write(2, msg, sizeof(msg) - 1);
		(void)ignored;
		_exit(1);
	}
	errno = saved;
}

static inline pid_t lconsumer_start(struct lctl *ctl)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		lchild(150);
		lconsumer_main(ctl);
		_exit(0);
	}
	lconsumer_pid = pid;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = lon_sigchld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
	return pid;
}

/*
 * Ends the run: writes the end marker from `ring` (every producer must be
 * gone and reaped), waits for the consumer, and accounts for every message
 * of producers 0 .. ids-1: a producer that ran to the end delivered exactly
 * what it committed; a killed one at most its in-flight write(s) more.
 * Returns the number of messages delivered; the consumer's recovered record
 * count goes to *recovered.
 */
static inline uint64_t lfinish(struct lctl *ctl, struct mrb_ring *ring, pid_t consumer,
                               uint32_t ids, uint64_t *recovered)
{
	lwrite_end(ring);
	rtest_expect_exit0(consumer, "consumer");
	uint64_t total = 0;
	for (uint32_t i = 0; i < ids; i++) {
		uint32_t c = atomic_load(&ctl->committed[i]);
		uint32_t r = atomic_load(&ctl->received[i]);
		uint32_t in_flight = atomic_load(&ctl->killed[i]);
		if (r < c || r > c + in_flight)
			FAIL("producer %u%s: committed %u, delivered %u", i,
			     in_flight ? " (killed)" : "", c, r);
		total += r;
	}
	CHECK_EQ_U64(total, atomic_load(&ctl->consumed));
	if (recovered != NULL)
		*recovered = atomic_load(&ctl->counter[15]);
	return total;
}

static inline void lprint_seen(struct lctl *ctl)
{
	printf("lease states seen by the consumer: none %" PRIu64 ", HELD %" PRIu64
	       ", REVOKING %" PRIu64 " (lease assertions %s)\n",
	       atomic_load(&ctl->seen[0]), atomic_load(&ctl->seen[1]), atomic_load(&ctl->seen[2]),
	       lease_checks() ? "on" : "off: no mrb__test_sole_producer in this library");
}

/* Re-executes this program as a child ("child" mode) with arguments. */
static inline pid_t lspawn_exec(char *const argv[])
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(prctl(PR_SET_PDEATHSIG, SIGKILL) == 0);
		execv("/proc/self/exe", argv);
		fprintf(stderr, "execv /proc/self/exe: %s\n", strerror(errno));
		_exit(127);
	}
	return pid;
}

#endif /* LEASE_COMMON_H */
