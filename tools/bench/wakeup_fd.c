/* SPDX-License-Identifier: MIT */
/*
 * Wake-up latency of a reader blocked in epoll: on a ring's doorbell (the
 * loop documented in mrb.h) against a pipe in the same epoll set, same run.
 *
 *   wakeup_fd [--count N] [--path FILE]
 *
 * A producer process alternately sleeps 1-3 ms (so that the reader is back
 * in epoll_wait) and writes its CLOCK_MONOTONIC time, once into the ring,
 * once into the pipe. The reader records now minus the time written and
 * prints p50 and p99 of each (microseconds) as a Markdown table row.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
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

static void producer(const char *path, int pipe_w, int count)
{
	struct mrb_ring ring;
	if (mrb_open(&ring, path, 0) != 0)
		_exit(2);
	unsigned seed = 5;
	for (int i = 0; i < count; i++) {
		for (int target = 0; target < 2; target++) {
			struct timespec pause = {0, 1000000 + (long)(rand_r(&seed) % 2000000)};
			nanosleep(&pause, NULL);
			int64_t stamp = now_ns();
			if (target == 0) {
				if (mrb_write_wait(&ring, &stamp, sizeof(stamp), -1) != 0)
					_exit(3);
			} else if (write(pipe_w, &stamp, sizeof(stamp)) != sizeof(stamp)) {
				_exit(4);
			}
		}
	}
	mrb_close(&ring);
	_exit(0);
}

int main(int argc, char **argv)
{
	int count = 1000;
	const char *path = "/dev/shm/mrb-wakeup-fd.ring";
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--count") == 0)
			count = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--path") == 0)
			path = argv[i + 1];
	}
	if (count < 1)
		count = 1;
	struct mrb_ring ring;
	struct mrb_create_options opts = {MRB_CREATE_REMOVE, 0};
	int rc = mrb_create(&ring, path, 1 << 16, &opts);
	if (rc != 0) {
		fprintf(stderr, "wakeup_fd: create %s: %s\n", path, mrb_strerror(rc));
		return 2;
	}
	int pipefd[2];
	if (pipe(pipefd) != 0)
		return 2;
	int bell = mrb_doorbell_fd(&ring, MRB_DOORBELL_READ);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
	if (bell < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, bell, &ev) != 0)
		return 2;
	ev.data.u32 = 1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &ev) != 0)
		return 2;
	pid_t child = fork();
	if (child == 0)
		producer(path, pipefd[1], count);
	int64_t *ring_lat = calloc((size_t)count, sizeof(int64_t));
	int64_t *pipe_lat = calloc((size_t)count, sizeof(int64_t));
	int nr = 0, np = 0;
	while (nr < count || np < count) {
		/* Drain, then check (arming), then wait: the ring's side. */
		int64_t stamp;
		size_t len;
		while (nr < count && mrb_read(&ring, &stamp, sizeof(stamp), &len) == 0)
			ring_lat[nr++] = now_ns() - stamp;
		int timeout_ms = -1;
		if (nr < count) {
			rc = mrb_arm_read(&ring, &timeout_ms);
			if (rc < 0) {
				fprintf(stderr, "wakeup_fd: arm: %s\n", mrb_strerror(rc));
				return 1;
			}
			if (rc == 1)
				continue;
		}
		struct epoll_event got[2];
		int n = epoll_wait(ep, got, 2, timeout_ms);
		for (int i = 0; i < n; i++)
			if (got[i].data.u32 == 1 &&
			    read(pipefd[0], &stamp, sizeof(stamp)) == sizeof(stamp))
				pipe_lat[np++] = now_ns() - stamp;
	}
	int status;
	waitpid(child, &status, 0);
	printf("| C epoll | %.1f | %.1f | %.1f | %.1f |\n", pct(ring_lat, count, 50),
	       pct(ring_lat, count, 99), pct(pipe_lat, count, 50), pct(pipe_lat, count, 99));
	mrb_close(&ring);
	unlink(path);
	free(ring_lat);
	free(pipe_lat);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
