/* SPDX-License-Identifier: MIT */
/* sched_setaffinity, F_GETPIPE_SZ, and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_path_cost.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_os.h"
#include "bench_payload.h"
#include "minimal_ring.h"
#include "mrb/mrb.h"

#define PATH_BATCH      16
#define PATH_ROUNDS     5
#define PATH_RING_BYTES (4u << 20) /* 16 messages of 64 KiB fit */

/* Bytes a timed run of writes of the write-alone paths fills at most: the
 * lines stay in a core's own caches, as in a ring a consumer keeps up with. */
#define PATH_WRITE_RUN_BYTES (256u << 10)

const char *const bench_path_ids[BENCH_PATH_COUNT] = {
    "minimal", "mrb_read", "mrb_read_batch", "mrb_write_batch", "minimal_write", "mrb_write"};
const char *const bench_path_labels[BENCH_PATH_COUNT] = {
    "minimal ring write + read",        "mrb write + read",         "mrb 16 x write + read_batch",
    "mrb write_batch(16) + read_batch", "minimal ring write alone", "mrb write alone",
};

struct path_state {
	struct bench_body body;
	struct bench_verifier verifier;
	unsigned char *copy;
	uint64_t seq;
	struct mrb_ring ring;
	struct minimal_ring_side minimal_writer, minimal_reader;
	void *minimal_memory;
	unsigned char *batch;
	struct mrb_iovec iov[PATH_BATCH];
};

static int verify_handler(void *ctx, const void *data, size_t len)
{
	return bench_verify(ctx, data, len);
}

static void stamp_next(struct path_state *s, unsigned char *msg)
{
	bench_put_stamp(msg, bench_stamp(0, s->seq++));
}

/* The write-alone paths: `count` writes, timed (added to *timed_ns), then
 * read back and verified, untimed. Returns 0, -1 for lost or extra
 * messages, or an mrb error. */
static int write_alone(struct path_state *s, enum bench_path path, int count, int64_t *timed_ns)
{
	size_t size = s->body.size, len;
	unsigned char *msg = s->body.bytes;
	int64_t start = bench_now_ns();
	for (int i = 0; i < count; i++) {
		stamp_next(s, msg);
		if (path == BENCH_PATH_MINIMAL_WRITE) {
			if (minimal_ring_write(&s->minimal_writer, msg, size) != 0)
				return -1;
		} else {
			int rc = mrb_write(&s->ring, msg, size);
			if (rc != 0)
				return rc;
		}
	}
	*timed_ns += bench_now_ns() - start;
	if (path == BENCH_PATH_MRB_WRITE) {
		int64_t got = 0;
		while (got < count) {
			int64_t n = mrb_read_batch(&s->ring, verify_handler, &s->verifier, 0);
			if (n <= 0)
				return n < 0 ? (int)n : -1;
			got += n;
		}
		return got == count ? 0 : -1;
	}
	minimal_ring_publish_write(&s->minimal_writer);
	for (int i = 0; i < count; i++) {
		const void *view = minimal_ring_peek(&s->minimal_reader, &len);
		if (view == NULL || len != size)
			return -1;
		memcpy(s->copy, view, len);
		minimal_ring_release(&s->minimal_reader, len);
		if (bench_verify(&s->verifier, s->copy, len) != 0)
			return -1;
	}
	return 0;
}

/* Moves `count` messages along one path; returns 0 or -1 (error set). The
 * time that counts is added to *timed_ns: all of it, but for the
 * write-alone paths only the writes. */
static int run_path(struct path_state *s, enum bench_path path, int count, int64_t *timed_ns,
                    char *error, size_t size_of_error)
{
	size_t size = s->body.size, len;
	unsigned char *msg = s->body.bytes;
	int64_t start = bench_now_ns();
	/* A minimal ring record is never larger than an mrb one. */
	int write_run = (int)(PATH_WRITE_RUN_BYTES / (16 + ((size + 15) & ~(size_t)15)));
	for (int i = 0; i < count;) {
		int rc = 0;
		int64_t got = 0;
		switch (path) {
		case BENCH_PATH_MINIMAL: {
			stamp_next(s, msg);
			if (minimal_ring_write(&s->minimal_writer, msg, size) != 0) {
				snprintf(error, size_of_error, "minimal ring full");
				return -1;
			}
			const void *view = minimal_ring_peek(&s->minimal_reader, &len);
			if (view == NULL || len != size) {
				snprintf(error, size_of_error, "minimal ring lost a message");
				return -1;
			}
			memcpy(s->copy, view, len);
			minimal_ring_release(&s->minimal_reader, len);
			rc = bench_verify(&s->verifier, s->copy, len);
			i++;
			break;
		}
		case BENCH_PATH_MRB_READ:
			stamp_next(s, msg);
			rc = mrb_write(&s->ring, msg, size);
			if (rc == 0) {
				rc = mrb_read(&s->ring, s->copy, size, &len);
			}
			if (rc == 0) {
				rc = bench_verify(&s->verifier, s->copy, len);
			}
			i++;
			break;
		case BENCH_PATH_MRB_READ_BATCH:
			for (int k = 0; k < PATH_BATCH && rc == 0; k++) {
				stamp_next(s, msg);
				rc = mrb_write(&s->ring, msg, size);
			}
			got = rc == 0 ? mrb_read_batch(&s->ring, verify_handler, &s->verifier, 0)
			              : rc;
			rc = got == PATH_BATCH ? 0 : got < 0 ? (int)got : -1;
			i += PATH_BATCH;
			break;
		case BENCH_PATH_MRB_WRITE_BATCH:
			for (int k = 0; k < PATH_BATCH; k++) {
				stamp_next(s, s->batch + (size_t)k * size);
			}
			got = mrb_write_batch(&s->ring, s->iov, PATH_BATCH);
			if (got == PATH_BATCH) {
				got = mrb_read_batch(&s->ring, verify_handler, &s->verifier, 0);
			}
			rc = got == PATH_BATCH ? 0 : got < 0 ? (int)got : -1;
			i += PATH_BATCH;
			break;
		case BENCH_PATH_MINIMAL_WRITE:
		case BENCH_PATH_MRB_WRITE: {
			int run = count - i < write_run ? count - i : write_run > 0 ? write_run : 1;
			rc = write_alone(s, path, run, timed_ns);
			i += run;
			break;
		}
		default:
			return -1;
		}
		if (rc != 0 || s->verifier.failed) {
			snprintf(error, size_of_error, "%s: %s", bench_path_labels[path],
			         s->verifier.failed ? s->verifier.what
			         : rc == -1         ? "lost or extra messages"
			                            : mrb_strerror(rc));
			return -1;
		}
	}
	if (path != BENCH_PATH_MINIMAL_WRITE && path != BENCH_PATH_MRB_WRITE)
		*timed_ns += bench_now_ns() - start;
	return 0;
}

static int setup(struct path_state *s, size_t size, const char *path, char *error,
                 size_t size_of_error)
{
	memset(s, 0, sizeof(*s));
	s->copy = aligned_alloc(64, (size + 63) & ~(size_t)63);
	s->batch = aligned_alloc(64, (PATH_BATCH * size + 63) & ~(size_t)63);
	s->minimal_memory = aligned_alloc(128, MINIMAL_RING_HEADER + PATH_RING_BYTES);
	if (bench_body_init(&s->body, size) != 0 || s->copy == NULL || s->batch == NULL ||
	    s->minimal_memory == NULL) {
		snprintf(error, size_of_error, "out of memory");
		return -1;
	}
	memset(s->minimal_memory, 0, MINIMAL_RING_HEADER + PATH_RING_BYTES);
	minimal_ring_attach(&s->minimal_writer, s->minimal_memory, PATH_RING_BYTES, 1);
	minimal_ring_attach(&s->minimal_reader, s->minimal_memory, PATH_RING_BYTES, 1);
	for (int k = 0; k < PATH_BATCH; k++) {
		memcpy(s->batch + (size_t)k * size, s->body.bytes, size);
		s->iov[k].data = s->batch + (size_t)k * size;
		s->iov[k].len = size;
	}
	bench_verifier_init(&s->verifier, &s->body, 1);
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE, .mode = 0600};
	int rc = mrb_create(&s->ring, path, PATH_RING_BYTES, &opts);
	if (rc != 0) {
		snprintf(error, size_of_error, "mrb_create(%.200s): %s", path, mrb_strerror(rc));
		return -1;
	}
	return 0;
}

void bench_measure_path_cost(struct bench_path_cost *cost, size_t size, const char *dir, int cpu,
                             int messages_per_round)
{
	memset(cost, 0, sizeof(*cost));
	cost->size = size;
	struct bench_path_cost *shared = bench_map_shared(sizeof(*shared));
	if (shared == NULL) {
		snprintf(cost->error, sizeof(cost->error), "mmap: %s", strerror(errno));
		return;
	}
	memset(shared, 0, sizeof(*shared));
	char path[256];
	snprintf(path, sizeof(path), "%s/mrb-bench-path-%d.ring", dir, (int)getpid());
	int rounded = messages_per_round / PATH_BATCH * PATH_BATCH;
	fflush(NULL);
	/* A child, so that pinning it leaves the parent free to run anywhere. */
	pid_t child = fork();
	if (child == 0) {
		if (cpu >= 0) {
			bench_pin_to_cpu(cpu);
		}
		struct path_state s;
		if (setup(&s, size, path, shared->error, sizeof(shared->error)) != 0) {
			_exit(1);
		}
		for (int p = 0; p < BENCH_PATH_COUNT; p++) {
			shared->ns_per_message[p] = 1e30;
		}
		/* Rounds interleave the paths, so a burst of other load does not
		 * land on one path only; the best round counts. */
		for (int round = 0; round < PATH_ROUNDS; round++) {
			for (int p = 0; p < BENCH_PATH_COUNT; p++) {
				int64_t timed = 0;
				if (run_path(&s, (enum bench_path)p, rounded, &timed, shared->error,
				             sizeof(shared->error)) != 0) {
					_exit(1);
				}
				double ns = (double)timed / rounded;
				if (ns < shared->ns_per_message[p]) {
					shared->ns_per_message[p] = ns;
				}
			}
		}
		mrb_close(&s.ring);
		_exit(0);
	}
	int status = 0;
	if (child < 0) {
		snprintf(cost->error, sizeof(cost->error), "fork: %s", strerror(errno));
	} else {
		while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			cost->ok = 1;
			memcpy(cost->ns_per_message, shared->ns_per_message,
			       sizeof(cost->ns_per_message));
		} else {
			snprintf(cost->error, sizeof(cost->error), "%s",
			         shared->error[0] ? shared->error : "the measuring process died");
		}
	}
	unlink(path);
	munmap(shared, sizeof(*shared));
}
