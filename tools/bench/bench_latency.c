/* SPDX-License-Identifier: MIT */
/* sched_setaffinity, F_GETPIPE_SZ, and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_latency.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_os.h"
#include "mrb/mrb.h"

/* ---- Cross-core round trip ---------------------------------------------- */

struct round_trip_shared {
	_Alignas(128) _Atomic uint64_t line; /* the bounced cache line */
	_Alignas(128) atomic_int ready;
	double round_ns[BENCH_ROUND_TRIP_ROUNDS];
};

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int compare_int64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static pid_t fork_pinned(int cpu)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		if (cpu >= 0) {
			bench_pin_to_cpu(cpu);
		}
	}
	return pid;
}

static int wait_child(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			return -1;
		}
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

void bench_measure_round_trip(struct bench_round_trip *rt, int cpu_a, int cpu_b,
                              int trips_per_round)
{
	memset(rt, 0, sizeof(*rt));
	struct round_trip_shared *s = bench_map_shared(sizeof(*s));
	if (s == NULL) {
		return;
	}
	memset(s, 0, sizeof(*s));
	uint64_t total = (uint64_t)trips_per_round * BENCH_ROUND_TRIP_ROUNDS;

	/* The responder turns every odd value into the next even one. */
	pid_t responder = fork_pinned(cpu_b);
	if (responder == 0) {
		atomic_fetch_add(&s->ready, 1);
		for (uint64_t i = 0; i < total; i++) {
			uint64_t want = 2 * i + 1;
			while (atomic_load_explicit(&s->line, memory_order_acquire) != want) {
				bench_cpu_relax();
			}
			atomic_store_explicit(&s->line, want + 1, memory_order_release);
		}
		_exit(0);
	}
	pid_t initiator = responder < 0 ? -1 : fork_pinned(cpu_a);
	if (initiator == 0) {
		while (atomic_load(&s->ready) < 1) {
			sched_yield();
		}
		uint64_t value = 0;
		for (int round = 0; round < BENCH_ROUND_TRIP_ROUNDS; round++) {
			int64_t start = bench_now_ns();
			for (int i = 0; i < trips_per_round; i++) {
				atomic_store_explicit(&s->line, value + 1, memory_order_release);
				while (atomic_load_explicit(&s->line, memory_order_acquire) !=
				       value + 2) {
					bench_cpu_relax();
				}
				value += 2;
			}
			s->round_ns[round] =
			    (double)(bench_now_ns() - start) / (double)trips_per_round;
		}
		_exit(0);
	}
	int ok = responder > 0 && initiator > 0;
	if (initiator > 0) {
		ok &= wait_child(initiator) == 0;
	} else if (responder > 0) {
		kill(responder, SIGKILL);
	}
	if (responder > 0) {
		ok &= wait_child(responder) == 0;
	}
	if (ok) {
		rt->ok = 1;
		rt->rounds = BENCH_ROUND_TRIP_ROUNDS;
		memcpy(rt->round_ns, s->round_ns, sizeof(rt->round_ns));
		double sorted[BENCH_ROUND_TRIP_ROUNDS];
		memcpy(sorted, s->round_ns, sizeof(sorted));
		qsort(sorted, BENCH_ROUND_TRIP_ROUNDS, sizeof(double), compare_double);
		rt->min_ns = sorted[0];
		rt->median_ns = sorted[BENCH_ROUND_TRIP_ROUNDS / 2];
	}
	munmap(s, sizeof(*s));
}

/* ---- Wake-up latency of a blocked reader --------------------------------- */

struct wakeup_shared {
	_Alignas(128) atomic_int reader_ready;
	_Alignas(128) atomic_int taken; /* samples the reader has recorded */
	_Alignas(128) atomic_int failed;
	char error[200];
	int64_t sample_ns[];
};

struct wakeup_channel {
	/* mrb */
	const char *path;
	struct mrb_ring ring;
	/* pipe */
	int fds[2];
};

typedef int (*wakeup_open_fn)(struct wakeup_channel *ch, int reader, char *error, size_t size);
typedef int (*wakeup_read_fn)(struct wakeup_channel *ch, int64_t *sent_ns, char *error,
                              size_t size);
typedef int (*wakeup_write_fn)(struct wakeup_channel *ch, int64_t sent_ns);
typedef void (*wakeup_close_fn)(struct wakeup_channel *ch);

struct wakeup_ops {
	wakeup_open_fn open;
	wakeup_read_fn read;
	wakeup_write_fn write;
	wakeup_close_fn close;
};

static void wakeup_fail(struct wakeup_shared *s, const char *what)
{
	if (atomic_exchange(&s->failed, 1) == 0) {
		snprintf(s->error, sizeof(s->error), "%s", what);
	}
}

static void measure_wakeup(struct bench_wakeup *w, const struct wakeup_ops *ops,
                           struct wakeup_channel *ch, int reader_cpu, int writer_cpu, int samples,
                           int64_t gap_ns)
{
	size_t shared_size = sizeof(struct wakeup_shared) + (size_t)samples * sizeof(int64_t);
	struct wakeup_shared *s = bench_map_shared(shared_size);
	if (s == NULL) {
		snprintf(w->error, sizeof(w->error), "mmap: %s", strerror(errno));
		return;
	}
	memset(s, 0, shared_size);

	pid_t reader = fork_pinned(reader_cpu);
	if (reader == 0) {
		char error[200];
		if (ops->open(ch, 1, error, sizeof(error)) != 0) {
			wakeup_fail(s, error);
			atomic_store(&s->reader_ready, 1);
			_exit(1);
		}
		atomic_store(&s->reader_ready, 1);
		for (int i = 0; i < samples && !atomic_load(&s->failed); i++) {
			int64_t sent_ns;
			if (ops->read(ch, &sent_ns, error, sizeof(error)) != 0) {
				wakeup_fail(s, error);
				break;
			}
			s->sample_ns[i] = bench_now_ns() - sent_ns;
			atomic_store_explicit(&s->taken, i + 1, memory_order_release);
		}
		ops->close(ch);
		_exit(0);
	}
	pid_t writer = reader < 0 ? -1 : fork_pinned(writer_cpu);
	if (writer == 0) {
		char error[200];
		if (ops->open(ch, 0, error, sizeof(error)) != 0) {
			wakeup_fail(s, error);
			_exit(1);
		}
		while (!atomic_load(&s->reader_ready)) {
			bench_sleep_ns(100000);
		}
		for (int i = 0; i < samples && !atomic_load(&s->failed); i++) {
			while (atomic_load_explicit(&s->taken, memory_order_acquire) < i &&
			       !atomic_load(&s->failed)) {
				bench_sleep_ns(50000);
			}
			bench_sleep_ns(gap_ns);
			if (ops->write(ch, bench_now_ns()) != 0) {
				wakeup_fail(s, "write failed");
				break;
			}
		}
		ops->close(ch);
		_exit(0);
	}
	if (ch->fds[0] >= 0) {
		close(ch->fds[0]);
		close(ch->fds[1]);
	}
	if (writer > 0) {
		wait_child(writer);
	} else if (reader > 0) {
		kill(reader, SIGKILL);
	}
	if (reader > 0) {
		wait_child(reader);
	}
	int taken = atomic_load(&s->taken);
	if (atomic_load(&s->failed)) {
		snprintf(w->error, sizeof(w->error), "%s", s->error);
	} else if (taken == samples && samples > 0) {
		w->available = 1;
		w->samples = samples;
		w->sample_ns = malloc((size_t)samples * sizeof(int64_t));
		if (w->sample_ns == NULL) {
			w->available = 0;
		} else {
			memcpy(w->sample_ns, s->sample_ns, (size_t)samples * sizeof(int64_t));
			qsort(w->sample_ns, (size_t)samples, sizeof(int64_t), compare_int64);
			w->min_ns = w->sample_ns[0];
			w->max_ns = w->sample_ns[samples - 1];
			w->p50_ns = w->sample_ns[samples / 2];
			int p99 = (int)((int64_t)samples * 99 / 100);
			w->p99_ns = w->sample_ns[p99 < samples ? p99 : samples - 1];
		}
	} else {
		snprintf(w->error, sizeof(w->error), "only %d of %d samples", taken, samples);
	}
	munmap(s, shared_size);
}

/* mrb: the reader blocks in mrb_read_wait, the writer uses mrb_write. */

static int mrb_channel_open(struct wakeup_channel *ch, int reader, char *error, size_t size)
{
	int rc = mrb_open(&ch->ring, ch->path, 0);
	if (rc != 0) {
		snprintf(error, size, "mrb_open: %s", mrb_strerror(rc));
		return -1;
	}
	if (reader) {
		int64_t ignored;
		size_t len;
		rc = mrb_read_wait(&ch->ring, &ignored, sizeof(ignored), &len, 0);
		if (rc != MRB_ETIMEDOUT && rc != MRB_EEMPTY) {
			snprintf(error, size, "mrb_read_wait on an empty ring: %s",
			         rc == 0 ? "returned a message" : mrb_strerror(rc));
			mrb_close(&ch->ring);
			return -1;
		}
	}
	return 0;
}

/* A reader blocked for this long has missed a wake-up. */
#define WAKEUP_TIMEOUT_NS (INT64_C(5) * 1000000000)

static int mrb_channel_read(struct wakeup_channel *ch, int64_t *sent_ns, char *error, size_t size)
{
	size_t len = 0;
	int rc = mrb_read_wait(&ch->ring, sent_ns, sizeof(*sent_ns), &len, WAKEUP_TIMEOUT_NS);
	if (rc != 0 || len != sizeof(*sent_ns)) {
		snprintf(error, size, "mrb_read_wait: %s",
		         rc == 0 ? "wrong message length" : mrb_strerror(rc));
		return -1;
	}
	return 0;
}

static int mrb_channel_write(struct wakeup_channel *ch, int64_t sent_ns)
{
	return mrb_write(&ch->ring, &sent_ns, sizeof(sent_ns));
}

static void mrb_channel_close(struct wakeup_channel *ch)
{
	mrb_close(&ch->ring);
}

void bench_measure_wakeup_mrb(struct bench_wakeup *w, const char *dir, int reader_cpu,
                              int writer_cpu, int samples, int64_t gap_ns)
{
	memset(w, 0, sizeof(*w));
	w->id = "mrb_read_wait";
	w->label = "mrb_read_wait";
	char path[256];
	snprintf(path, sizeof(path), "%s/mrb-bench-wakeup-%d.ring", dir, (int)getpid());
	struct wakeup_channel ch = {.path = path, .fds = {-1, -1}};
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE, .mode = 0600};
	int rc = mrb_create(&ch.ring, path, 64 * 1024, &opts);
	if (rc != 0) {
		snprintf(w->error, sizeof(w->error), "mrb_create: %s", mrb_strerror(rc));
		return;
	}
	mrb_close(&ch.ring);
	static const struct wakeup_ops ops = {mrb_channel_open, mrb_channel_read, mrb_channel_write,
	                                      mrb_channel_close};
	measure_wakeup(w, &ops, &ch, reader_cpu, writer_cpu, samples, gap_ns);
	unlink(path);
}

/* pipe: the reader blocks in read(). */

static int pipe_channel_open(struct wakeup_channel *ch, int reader, char *error, size_t size)
{
	(void)error;
	(void)size;
	close(ch->fds[reader ? 1 : 0]);
	return 0;
}

static int pipe_channel_read(struct wakeup_channel *ch, int64_t *sent_ns, char *error, size_t size)
{
	ssize_t n;
	while ((n = read(ch->fds[0], sent_ns, sizeof(*sent_ns))) < 0 && errno == EINTR) {
	}
	if (n != (ssize_t)sizeof(*sent_ns)) {
		snprintf(error, size, "read: %s", n < 0 ? strerror(errno) : "short read");
		return -1;
	}
	return 0;
}

static int pipe_channel_write(struct wakeup_channel *ch, int64_t sent_ns)
{
	return write(ch->fds[1], &sent_ns, sizeof(sent_ns)) == (ssize_t)sizeof(sent_ns) ? 0 : -1;
}

static void pipe_channel_close(struct wakeup_channel *ch)
{
	close(ch->fds[0]);
	close(ch->fds[1]);
}

void bench_measure_wakeup_pipe(struct bench_wakeup *w, int reader_cpu, int writer_cpu, int samples,
                               int64_t gap_ns)
{
	memset(w, 0, sizeof(*w));
	w->id = "pipe";
	w->label = "pipe read()";
	struct wakeup_channel ch = {.path = NULL, .fds = {-1, -1}};
	if (pipe(ch.fds) != 0) {
		snprintf(w->error, sizeof(w->error), "pipe: %s", strerror(errno));
		return;
	}
	static const struct wakeup_ops ops = {pipe_channel_open, pipe_channel_read,
	                                      pipe_channel_write, pipe_channel_close};
	measure_wakeup(w, &ops, &ch, reader_cpu, writer_cpu, samples, gap_ns);
}

void bench_wakeup_free(struct bench_wakeup *w)
{
	free(w->sample_ns);
	w->sample_ns = NULL;
}
