/* SPDX-License-Identifier: MIT */
/*
 * Shared parts of the subscriber join tests (sub_join_*.c): their messages
 * (LEN bytes, a sequence number in the first eight, the rest derived from
 * it, so a torn or foreign message is caught byte for byte) and the
 * producer process that stops itself in a release after reading the
 * reader table and before its CAS on R (mrb__test_stop_next_release):
 * subscribers join while it is stopped, and when continued it passes them
 * once, as a release that missed their join does (docs/FORMAT.md section 8,
 * Joining).
 */
#ifndef SUB_JOIN_COMMON_H
#define SUB_JOIN_COMMON_H

#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "mrb_testing.h"
#include "rtest.h"

#define RING_SIZE (16 * 1024)
#define LEN       100
#define SPAN      128 /* 16-byte header + 100 bytes, rounded up to 16 */
#define FULL      (RING_SIZE / SPAN)

/* In a shared mapping the test makes before it forks (join_shm). */
struct join_shared {
	_Atomic uint64_t written; /* messages the stopped producer wrote so far */
	_Atomic uint32_t waiting; /* it found the ring full */
	_Atomic uint64_t limit;   /* after its release, stop at this many (0: when full) */
	_Atomic uint32_t ready;   /* a case's own handshake with a child */
};

/* Unused by a test that forks no stopped producer. */
static struct join_shared *join_shm __attribute__((unused));

static inline void join_build(uint8_t *msg, uint64_t seq)
{
	rtest_fill(msg, LEN, seq);
	memcpy(msg, &seq, sizeof(seq));
}

/* The sequence number of a message that must be exactly join_build's. */
static inline uint64_t join_check_msg(const uint8_t *msg, size_t len, const char *who)
{
	uint64_t seq;
	memcpy(&seq, msg, sizeof(seq));
	uint8_t want[LEN];
	join_build(want, seq);
	if (len != LEN || memcmp(msg, want, LEN) != 0)
		FAIL("%s: torn or foreign message (seq %" PRIu64 ", len %zu)", who, seq, len);
	return seq;
}

static inline void join_create_ring(struct mrb_ring *ring, const char *path)
{
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(ring, path, RING_SIZE, &copts), 0);
}

/* The producer process: writes until the ring is full (a holder keeps R at
 * 0), then waits for room; the release its wait starts once the holder
 * left stops it. After SIGCONT, writes until full again or join_shm->limit. */
static inline void join_producer(const char *path)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never left stopped */
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, path, 0), 0);
	uint8_t msg[LEN];
	uint64_t seq = 0;
	for (;; seq++) {
		join_build(msg, seq);
		int rc = mrb_write(&ring, msg, LEN);
		if (rc == MRB_EFULL)
			break;
		CHECK_RC(rc, 0);
		atomic_store(&join_shm->written, seq + 1);
	}
	CHECK_RC(mrb__test_stop_next_release(&ring), 0);
	atomic_store(&join_shm->waiting, 1);
	for (;;) {
		/* Its release (short of space: no subscriber, so up to the
		 * producer position) stops it; continued, it finds room. */
		int rc = mrb_wait_writable(&ring, LEN, 10 * 1000000LL);
		if (rc == 0)
			break;
		if (rc != MRB_ETIMEDOUT)
			FAIL("producer wait: %s", mrb_strerror(rc));
	}
	for (;; seq++) {
		uint64_t limit = atomic_load(&join_shm->limit);
		if (limit != 0 && seq == limit)
			break;
		join_build(msg, seq);
		int rc = mrb_write(&ring, msg, LEN);
		if (rc == MRB_EFULL)
			break;
		CHECK_RC(rc, 0);
		atomic_store(&join_shm->written, seq + 1);
	}
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

/* Reads /proc/<pid>/<file> into buf, NUL-terminated. */
static inline void join_read_proc(pid_t pid, const char *file, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	size_t n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
}

/* Did the process stop itself, with raise(SIGSTOP), not from outside (a
 * machine whose processes are paused and continued)? It is then in
 * tgkill(2), sending SIGSTOP to itself. */
static inline bool join_stopped_by_itself(pid_t pid)
{
	char buf[512];
	join_read_proc(pid, "syscall", buf, sizeof(buf));
	long nr = 0;
	unsigned long arg0 = 0, arg1 = 0, sig = 0;
	if (sscanf(buf, "%ld 0x%lx 0x%lx 0x%lx", &nr, &arg0, &arg1, &sig) != 4)
		return false;
	return nr == SYS_tgkill && arg0 == (unsigned long)pid && sig == SIGSTOP;
}

/* Starts join_producer and waits until it stopped in its release, FULL
 * messages written; R has not moved yet. `limit` as in join_shared. */
static inline pid_t join_start_stopped_producer(const char *path, uint64_t limit)
{
	atomic_store(&join_shm->written, 0);
	atomic_store(&join_shm->waiting, 0);
	atomic_store(&join_shm->limit, limit);
	struct mrb_ring holder;
	CHECK_RC(mrb_subscribe(&holder, path, NULL), 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		join_producer(path);
	while (atomic_load(&join_shm->waiting) == 0)
		rtest_sleep_ms(1);
	/* R stays at 0: only the producer, short of space, moves it now. */
	CHECK_RC(mrb_close(&holder), 0);
	for (;;) {
		int status;
		CHECK(waitpid(pid, &status, WUNTRACED) == pid);
		if (!WIFSTOPPED(status))
			FAIL("producer did not stop in its release (status %d)", status);
		if (join_stopped_by_itself(pid))
			break;
		CHECK(kill(pid, SIGCONT) == 0); /* stopped from outside: go on */
	}
	CHECK_EQ_U64(atomic_load(&join_shm->written), FULL);
	return pid;
}

/* Is the process stopped (by its SIGSTOP, still)? */
static inline bool join_stopped(pid_t pid)
{
	char buf[512];
	join_read_proc(pid, "stat", buf, sizeof(buf));
	const char *end = strrchr(buf, ')');
	CHECK(end != NULL && end[1] == ' ');
	return end[2] == 'T';
}

#endif /* SUB_JOIN_COMMON_H */
