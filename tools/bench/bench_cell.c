/* SPDX-License-Identifier: MIT */
/* sched_setaffinity, F_GETPIPE_SZ, and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_cell.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_os.h"

/* A cell that does not finish within its duration plus this is killed. */
#define CELL_GRACE_NS (INT64_C(20) * 1000000000)

int bench_fail(struct bench_party_result *result, const char *fmt, ...)
{
	if (!result->failed) {
		result->failed = 1;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(result->what, sizeof(result->what), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Per child process (each starts from the parent's zeroes after fork): lets
 * spawn() stand in for a child that failed before reaching these points, so
 * the others are not left waiting for it. */
static int announced_ready;
static int producer_finished;

int64_t bench_wait_for_start(struct bench_control *control)
{
	announced_ready = 1;
	atomic_fetch_add_explicit(&control->ready, 1, memory_order_release);
	/* Yield rather than spin: the parent needs a core to say "go". */
	while (!atomic_load_explicit(&control->go, memory_order_acquire)) {
		sched_yield();
	}
	return control->deadline_ns;
}

void bench_producer_finish(struct bench_cell *cell, int producer, uint64_t messages,
                           uint64_t checksum)
{
	struct bench_party_result *r = &cell->control->producer[producer].result;
	producer_finished = 1;
	r->messages = messages;
	r->checksum = checksum;
	r->end_ns = bench_now_ns();
	atomic_fetch_add_explicit(&cell->control->producers_done, 1, memory_order_release);
}

int bench_consumer_finish(struct bench_cell *cell, const struct bench_verifier *v)
{
	struct bench_party_result *r = &cell->control->consumer;
	r->end_ns = bench_now_ns();
	r->messages = v->messages;
	r->checksum = v->checksum;
	if (v->failed) {
		return bench_fail(r, "consumer: %s", v->what);
	}
	return 0;
}

static pid_t spawn(struct bench_cell *cell, int cpu, int producer)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0) {
		return pid;
	}
	signal(SIGPIPE, SIG_IGN);
	if (cpu >= 0) {
		bench_pin_to_cpu(cpu);
	}
	int rc = producer < 0 ? cell->transport->consume(cell)
	                      : cell->transport->produce(cell, producer);
	if (!announced_ready) {
		atomic_fetch_add_explicit(&cell->control->ready, 1, memory_order_release);
	}
	if (producer >= 0 && !producer_finished) {
		bench_producer_finish(cell, producer, 0, 0);
	}
	_exit(rc == 0 ? 0 : 1);
}

static void kill_all(pid_t *pids, int count)
{
	for (int i = 0; i < count; i++) {
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
		}
	}
}

/* Waits for every child; returns 0 if all exited with status 0. */
static int reap_all(pid_t *pids, int count, int64_t deadline_ns, char *error, size_t size)
{
	int remaining = 0, failed = 0;
	for (int i = 0; i < count; i++) {
		remaining += pids[i] > 0;
	}
	while (remaining > 0) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno != EINTR) {
			break;
		}
		if (pid <= 0) {
			if (bench_now_ns() > deadline_ns) {
				snprintf(error, size, "timed out; processes killed");
				kill_all(pids, count);
				deadline_ns = INT64_MAX;
				failed = 1;
			}
			bench_sleep_ns(1000000);
			continue;
		}
		for (int i = 0; i < count; i++) {
			if (pids[i] == pid) {
				pids[i] = 0;
				remaining--;
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
					failed = 1;
					if (error[0] == '\0' && WIFSIGNALED(status)) {
						snprintf(error, size,
						         "a %s process died of signal %d",
						         i == 0 ? "consumer" : "producer",
						         WTERMSIG(status));
					}
				}
			}
		}
	}
	return failed ? -1 : 0;
}

static void collect(struct bench_cell *cell, int children_failed)
{
	struct bench_control *c = cell->control;
	uint64_t sent = 0, sent_sum = 0;
	for (int i = 0; i < cell->producers; i++) {
		const struct bench_party_result *r = &c->producer[i].result;
		if (r->failed && cell->error[0] == '\0') {
			snprintf(cell->error, sizeof(cell->error), "producer %d: %s", i, r->what);
		}
		sent += r->messages;
		sent_sum += r->checksum;
	}
	if (c->consumer.failed && cell->error[0] == '\0') {
		snprintf(cell->error, sizeof(cell->error), "%s", c->consumer.what);
	}
	if (cell->error[0] == '\0' && children_failed) {
		snprintf(cell->error, sizeof(cell->error), "a benchmark process failed");
	}
	if (cell->error[0] == '\0' && c->consumer.messages != sent) {
		snprintf(cell->error, sizeof(cell->error),
		         "producers sent %llu messages, consumer verified %llu",
		         (unsigned long long)sent, (unsigned long long)c->consumer.messages);
	}
	if (cell->error[0] == '\0' && c->consumer.checksum != sent_sum) {
		snprintf(cell->error, sizeof(cell->error),
		         "end checksum mismatch: sent %016llx, received %016llx",
		         (unsigned long long)sent_sum, (unsigned long long)c->consumer.checksum);
	}
	if (cell->error[0] == '\0' && sent == 0) {
		snprintf(cell->error, sizeof(cell->error), "no message was sent");
	}
	cell->ok = cell->error[0] == '\0';
	cell->messages = c->consumer.messages;
	cell->seconds = (double)(c->consumer.end_ns - c->start_ns) / 1e9;
	if (cell->ok && cell->seconds > 0) {
		cell->messages_per_second = (double)cell->messages / cell->seconds;
		cell->bytes_per_second = cell->messages_per_second * (double)cell->message_size;
	}
}

int bench_run_cell(struct bench_cell *cell)
{
	cell->ok = 0;
	cell->error[0] = '\0';
	cell->messages = 0;
	cell->seconds = cell->messages_per_second = cell->bytes_per_second = 0;
	cell->fds[0] = cell->fds[1] = -1;
	cell->path[0] = '\0';

	if (bench_body_init(&cell->body, cell->message_size) != 0) {
		snprintf(cell->error, sizeof(cell->error), "out of memory");
		return -1;
	}
	cell->control = bench_map_shared(sizeof(struct bench_control));
	if (cell->control == NULL) {
		snprintf(cell->error, sizeof(cell->error), "mmap: %s", strerror(errno));
		bench_body_free(&cell->body);
		return -1;
	}
	memset(cell->control, 0, sizeof(*cell->control));

	int rc = cell->transport->setup(cell);
	if (rc != 0) {
		if (cell->error[0] == '\0') {
			snprintf(cell->error, sizeof(cell->error), "setup failed");
		}
		goto out;
	}

	pid_t pids[1 + BENCH_MAX_PRODUCERS] = {0};
	int children = 0;
	pids[children++] = spawn(cell, cell->consumer_cpu, -1);
	for (int i = 0; i < cell->producers; i++) {
		pids[children++] = spawn(cell, cell->producer_cpu[i], i);
	}
	/* The children hold what they need; a stream's reader sees end-of-file
	 * only once no write end is left open here. */
	for (int i = 0; i < 2; i++) {
		if (cell->fds[i] >= 0) {
			close(cell->fds[i]);
			cell->fds[i] = -1;
		}
	}
	int spawn_failed = 0;
	for (int i = 0; i < children; i++) {
		spawn_failed |= pids[i] < 0;
	}
	int children_failed = 0;
	if (!spawn_failed) {
		int64_t ready_deadline = bench_now_ns() + CELL_GRACE_NS;
		while (atomic_load_explicit(&cell->control->ready, memory_order_acquire) <
		           children &&
		       bench_now_ns() < ready_deadline) {
			bench_sleep_ns(100000);
		}
		cell->control->start_ns = bench_now_ns();
		cell->control->deadline_ns = cell->control->start_ns + cell->duration_ns;
		atomic_store_explicit(&cell->control->go, 1, memory_order_release);
	} else {
		snprintf(cell->error, sizeof(cell->error), "fork: %s", strerror(errno));
		kill_all(pids, children);
	}
	children_failed =
	    reap_all(pids, children, bench_now_ns() + cell->duration_ns + CELL_GRACE_NS,
	             cell->error, sizeof(cell->error));
	cell->transport->teardown(cell);
	collect(cell, children_failed || spawn_failed);
out:
	munmap(cell->control, sizeof(struct bench_control));
	cell->control = NULL;
	bench_body_free(&cell->body);
	return cell->ok ? 0 : -1;
}
