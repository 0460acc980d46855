/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the robustness tests: assertions that name the failing
 * expression and the codes involved, a watchdog that turns a hang into a
 * failure, scratch paths, and small process utilities. Header-only so that
 * each test stays one self-contained program.
 */
#ifndef RTEST_H
#define RTEST_H

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mrb/mrb.h"

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                              \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fprintf(stderr, "\n");                                                             \
		exit(1);                                                                           \
	} while (0)

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			FAIL("%s", #cond);                                                         \
	} while (0)

/* Compares two codes and prints both with their messages when they differ. */
#define CHECK_RC(expr, expected)                                                                   \
	do {                                                                                       \
		long long rtest_got_ = (long long)(expr);                                          \
		long long rtest_want_ = (long long)(expected);                                     \
		if (rtest_got_ != rtest_want_)                                                     \
			FAIL("%s = %lld (%s), expected %lld (%s)", #expr, rtest_got_,              \
			     mrb_strerror((int)rtest_got_), rtest_want_,                           \
			     mrb_strerror((int)rtest_want_));                                      \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                                         \
	do {                                                                                       \
		uint64_t rtest_a_ = (uint64_t)(a), rtest_b_ = (uint64_t)(b);                       \
		if (rtest_a_ != rtest_b_)                                                          \
			FAIL("%s = %" PRIu64 ", expected %s = %" PRIu64, #a, rtest_a_, #b,         \
			     rtest_b_);                                                            \
	} while (0)

static inline void rtest_watchdog_fired(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL: watchdog expired (a wait hung or a wake-up was lost)\n";
	ssize_t ignored = write(2, msg, sizeof(msg) - 1);
	(void)ignored;
	_exit(1);
}

/* Fails the test (and any child that inherits it before exec) if it runs for
 * longer than `seconds`: a lost wake-up or a livelock shows up as a hang. */
static inline void rtest_watchdog(unsigned seconds)
{
	signal(SIGALRM, rtest_watchdog_fired);
	alarm(seconds);
}

static inline int64_t rtest_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void rtest_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* A fresh scratch directory under $TEST_TMPDIR (or /tmp). */
static inline const char *rtest_dir(void)
{
	static char dir[512];
	if (dir[0] == '\0') {
		const char *base = getenv("TEST_TMPDIR");
		snprintf(dir, sizeof(dir), "%s/rtest-XXXXXX", base != NULL ? base : "/tmp");
		if (mkdtemp(dir) == NULL)
			FAIL("mkdtemp(%s): %s", dir, strerror(errno));
	}
	return dir;
}

/* A path inside the scratch directory, in static storage that lives as
 * long as the program (up to 64 paths per test). */
static inline const char *rtest_path(const char *name)
{
	static char paths[64][640];
	static unsigned next;
	if (next == 64)
		FAIL("more than 64 scratch paths");
	char *p = paths[next++];
	snprintf(p, sizeof(paths[0]), "%s/%s", rtest_dir(), name);
	return p;
}

static inline void rtest_create(struct mrb_ring *ring, const char *path, uint64_t size)
{
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE, .mode = 0600};
	CHECK_RC(mrb_create(ring, path, size, &opts), 0);
}

/* Waits for a child and returns its wait status; fails on waitpid errors. */
static inline int rtest_wait(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			FAIL("waitpid(%d): %s", (int)pid, strerror(errno));
	}
	return status;
}

/* Kills and reaps a child: a zombie still counts as alive for kill(pid, 0),
 * so recovery only sees a producer as dead once it is reaped. */
static inline void rtest_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	int status = rtest_wait(pid);
	CHECK(WIFSIGNALED(status) || WIFEXITED(status));
}

static inline void rtest_expect_exit0(pid_t pid, const char *what)
{
	int status = rtest_wait(pid);
	if (WIFSIGNALED(status))
		FAIL("%s: killed by signal %d", what, WTERMSIG(status));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		FAIL("%s: exit status %d", what, WEXITSTATUS(status));
}

/* One-byte pipe signalling between a parent and a child. */
static inline void rtest_send(int fd, char c)
{
	while (write(fd, &c, 1) != 1) {
		if (errno != EINTR)
			FAIL("pipe write: %s", strerror(errno));
	}
}

static inline char rtest_recv(int fd)
{
	char c;
	ssize_t n;
	while ((n = read(fd, &c, 1)) != 1) {
		if (n == 0)
			FAIL("pipe closed by the other side");
		if (errno != EINTR)
			FAIL("pipe read: %s", strerror(errno));
	}
	return c;
}

/* Deterministic test payloads: byte i of message `seq` of length `len`. */
static inline uint8_t rtest_byte(uint64_t seq, size_t i)
{
	uint64_t x = seq * UINT64_C(0x9e3779b97f4a7c15) + i * UINT64_C(0xbf58476d1ce4e5b9);
	return (uint8_t)(x >> 56);
}

static inline void rtest_fill(uint8_t *buf, size_t len, uint64_t seq)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = rtest_byte(seq, i);
}

static inline int rtest_matches(const uint8_t *buf, size_t len, uint64_t seq)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != rtest_byte(seq, i))
			return 0;
	return 1;
}

static inline uint64_t rtest_fnv1a(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

#endif /* RTEST_H */
