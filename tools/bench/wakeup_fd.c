/* SPDX-License-Identifier: MIT */
/*
 * Wake-up latency of a reader blocked in epoll: on a ring's doorbell (the
 * loop documented in mrb.h) against a pipe in the same epoll set, same run.
 * Two rings: one whose doorbell is the datagram socket alone (created with
 * MRB_NO_IO_URING=1), one whose doorbell nests the socket and an io_uring
 * FUTEX_WAIT in an epoll set where the kernel allows (the default), so the
 * cost of the nesting shows in the same run.
 *
 *   wakeup_fd [--count N] [--path FILE] [--netns]
 *
 * A producer process alternately sleeps 1-3 ms (so that the reader is back
 * in epoll_wait) and writes its CLOCK_MONOTONIC time, once into each ring,
 * once into the pipe. The reader records now minus the time written and
 * prints p50 and p99 of each (microseconds) as a Markdown table row:
 * | C epoll | io_uring p50 | p99 | socket p50 | p99 | pipe p50 | p99 |
 * (io_uring: "-" where the kernel refused it). --netns: the producer runs in
 * a new network namespace (needs CAP_SYS_ADMIN), where only the io_uring
 * doorbell is reached at once (the socket ring is skipped then).
 */
/* glibc: unshare, CLONE_NEWNET, setenv */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mrb/mrb.h"

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(int64_t *v, int n, int p)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	int i = n * p / 100;
	return (double)v[i < n ? i : n - 1] / 1000.0;
}

/* Targets of a round, in turn: the io_uring ring, the socket ring, the
 * pipe. */
enum { T_URING, T_SOCKET, T_PIPE, T_COUNT };

static void producer(const char *paths[2], int pipe_w, int count, int netns)
{
	if (netns && unshare(CLONE_NEWNET) != 0)
		_exit(5);
	struct mrb_ring rings[2];
	for (int t = 0; t < 2; t++)
		if (mrb_open(&rings[t], paths[t], 0) != 0)
			_exit(2);
	unsigned seed = 5;
	for (int i = 0; i < count; i++) {
		for (int target = 0; target < T_COUNT; target++) {
			if (netns && target == T_SOCKET)
				continue;
			struct timespec pause = {0, 1000000 + (long)(rand_r(&seed) % 2000000)};
			nanosleep(&pause, NULL);
			int64_t stamp = now_ns();
			if (target != T_PIPE) {
				if (mrb_write_wait(&rings[target], &stamp, sizeof(stamp), -1) != 0)
					_exit(3);
			} else if (write(pipe_w, &stamp, sizeof(stamp)) != sizeof(stamp)) {
				_exit(4);
			}
		}
	}
	for (int t = 0; t < 2; t++)
		mrb_close(&rings[t]);
	_exit(0);
}

/* Whether a doorbell descriptor is the nested kind (an epoll set). */
static int is_epoll(int fd)
{
	char link[64], target[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return 0;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventpoll]") == 0;
}

int main(int argc, char **argv)
{
	int count = 1000, netns = 0;
	const char *path = "/dev/shm/mrb-wakeup-fd.ring";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--netns") == 0)
			netns = 1;
		else if (i + 1 < argc && strcmp(argv[i], "--count") == 0)
			count = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--path") == 0)
			path = argv[++i];
	}
	if (count < 1)
		count = 1;
	char socket_path[4096];
	snprintf(socket_path, sizeof(socket_path), "%s.socket", path);
	const char *paths[2] = {path, socket_path};
	struct mrb_ring rings[2];
	int bells[2];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return 2;
	for (int t = 0; t < 2; t++) {
		struct mrb_create_options opts = {MRB_CREATE_REMOVE, 0};
		int rc = mrb_create(&rings[t], paths[t], 1 << 16, &opts);
		if (rc != 0) {
			fprintf(stderr, "wakeup_fd: create %s: %s\n", paths[t], mrb_strerror(rc));
			return 2;
		}
		/* Read when the doorbell is made: the socket ring's alone. */
		if (t == T_SOCKET)
			setenv("MRB_NO_IO_URING", "1", 1);
		bells[t] = mrb_doorbell_fd(&rings[t], MRB_DOORBELL_READ);
		unsetenv("MRB_NO_IO_URING");
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)t};
		if (bells[t] < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, bells[t], &ev) != 0)
			return 2;
	}
	int nested = is_epoll(bells[T_URING]);
	int pipefd[2];
	if (pipe(pipefd) != 0)
		return 2;
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = T_PIPE};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &ev) != 0)
		return 2;
	pid_t child = fork();
	if (child == 0)
		producer(paths, pipefd[1], count, netns);
	int64_t *lat[T_COUNT];
	int got[T_COUNT] = {0, 0, 0};
	int want[T_COUNT] = {count, netns ? 0 : count, count};
	for (int t = 0; t < T_COUNT; t++)
		lat[t] = calloc((size_t)count, sizeof(int64_t));
	for (;;) {
		int pending = 0;
		for (int t = 0; t < T_COUNT; t++)
			pending |= got[t] < want[t];
		if (!pending)
			break;
		/* Drain, then check (arming), then wait: each ring's side. */
		int timeout_ms = 1000, ready = 0;
		for (int t = 0; t < 2; t++) {
			int64_t stamp;
			size_t len;
			while (got[t] < want[t] &&
			       mrb_read(&rings[t], &stamp, sizeof(stamp), &len) == 0)
				lat[t][got[t]++] = now_ns() - stamp;
			if (got[t] < want[t]) {
				int ms;
				int rc = mrb_arm_read(&rings[t], &ms);
				if (rc < 0) {
					fprintf(stderr, "wakeup_fd: arm: %s\n", mrb_strerror(rc));
					return 1;
				}
				ready |= rc == 1;
				if (ms < timeout_ms)
					timeout_ms = ms;
			}
		}
		if (ready)
			continue;
		struct epoll_event events[T_COUNT];
		int n = epoll_wait(ep, events, T_COUNT, timeout_ms);
		for (int i = 0; i < n; i++) {
			int64_t stamp;
			if (events[i].data.u32 == T_PIPE &&
			    read(pipefd[0], &stamp, sizeof(stamp)) == sizeof(stamp))
				lat[T_PIPE][got[T_PIPE]++] = now_ns() - stamp;
		}
	}
	int status;
	waitpid(child, &status, 0);
	if (nested)
		printf("| C epoll | %.1f | %.1f |", pct(lat[T_URING], count, 50),
		       pct(lat[T_URING], count, 99));
	else
		printf("| C epoll | - | - |");
	if (netns)
		printf(" - | - |");
	else
		printf(" %.1f | %.1f |", pct(lat[T_SOCKET], count, 50),
		       pct(lat[T_SOCKET], count, 99));
	printf(" %.1f | %.1f |\n", pct(lat[T_PIPE], count, 50), pct(lat[T_PIPE], count, 99));
	for (int t = 0; t < 2; t++) {
		mrb_close(&rings[t]);
		unlink(paths[t]);
	}
	for (int t = 0; t < T_COUNT; t++)
		free(lat[t]);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
