/* SPDX-License-Identifier: MIT */
/* sched_setaffinity, F_GETPIPE_SZ, and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* Byte-stream baselines: a pipe and a Unix stream socket. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_os.h"
#include "bench_transports.h"

#define STREAM_READ_BYTES (256u * 1024u)

static int pipe_setup(struct bench_cell *cell)
{
	if (pipe(cell->fds) != 0) {
		snprintf(cell->error, sizeof(cell->error), "pipe: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int unix_stream_setup(struct bench_cell *cell)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, cell->fds) != 0) {
		snprintf(cell->error, sizeof(cell->error), "socketpair: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void stream_teardown(struct bench_cell *cell)
{
	(void)cell;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* fds[1] writes, fds[0] reads, for the pipe and the socket pair alike. */
static int stream_produce(struct bench_cell *cell, int producer)
{
	struct bench_party_result *result = &cell->control->producer[producer].result;
	close(cell->fds[0]);
	int fd = cell->fds[1];
	unsigned char *msg = cell->body.bytes;
	size_t size = cell->message_size;
	uint64_t seq = 0, sum = 0;
	const uint64_t clock_mask = bench_clock_check_mask(size);
	int rc = 0;
	int64_t deadline = bench_wait_for_start(cell->control);
	for (;;) {
		/* At least one message: a producer descheduled past the
		 * deadline on a loaded machine still proves its path. */
		if (seq != 0 && (seq & clock_mask) == 0 && bench_now_ns() >= deadline) {
			break;
		}
		uint64_t stamp = bench_stamp(producer, seq);
		bench_put_stamp(msg, stamp);
		int err = write_all(fd, msg, size);
		if (err != 0) {
			rc = bench_fail(result, "write: %s", strerror(-err));
			break;
		}
		sum += bench_message_sum(&cell->body, stamp);
		seq++;
	}
	bench_producer_finish(cell, producer, seq, sum);
	close(fd);
	return rc;
}

static int stream_consume(struct bench_cell *cell)
{
	struct bench_party_result *result = &cell->control->consumer;
	close(cell->fds[1]);
	int fd = cell->fds[0];
	size_t size = cell->message_size;
	size_t capacity = STREAM_READ_BYTES > 2 * size ? STREAM_READ_BYTES : 2 * size;
	unsigned char *buf = aligned_alloc(64, capacity);
	if (buf == NULL) {
		return bench_fail(result, "out of memory");
	}
	struct bench_verifier v;
	bench_verifier_init(&v, &cell->body, cell->producers);
	size_t have = 0;
	bench_wait_for_start(cell->control);
	for (;;) {
		ssize_t n = read(fd, buf + have, capacity - have);
		if (n == 0) {
			break;
		}
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			bench_fail(result, "read: %s", strerror(errno));
			break;
		}
		have += (size_t)n;
		size_t offset = 0;
		while (have - offset >= size) {
			if (bench_verify(&v, buf + offset, size) != 0) {
				break;
			}
			offset += size;
		}
		if (v.failed) {
			break;
		}
		memmove(buf, buf + offset, have - offset);
		have -= offset;
	}
	int rc = bench_consumer_finish(cell, &v);
	if (rc == 0 && have != 0 && !result->failed) {
		rc = bench_fail(result, "stream ended inside a message (%zu bytes left)", have);
	}
	free(buf);
	close(fd);
	return result->failed ? -1 : rc;
}

const struct bench_transport bench_pipe = {
    .id = "pipe",
    .label = "pipe",
    .setup = pipe_setup,
    .produce = stream_produce,
    .consume = stream_consume,
    .teardown = stream_teardown,
};

const struct bench_transport bench_unix_stream = {
    .id = "unix_stream",
    .label = "Unix socket (SOCK_STREAM)",
    .setup = unix_stream_setup,
    .produce = stream_produce,
    .consume = stream_consume,
    .teardown = stream_teardown,
};
