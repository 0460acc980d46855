/* SPDX-License-Identifier: MIT */
/*
 * The C side of the cross-language pool test (pool_interop_test.py):
 *
 *   pool_c produce PATH --spec FILE --scenario NAME --producer ID --barrier DIR
 *   pool_c work PATH --spec FILE --scenario NAME --producers N --group NAME
 *          --ready FILE --done FILE [--pause-us U]
 *
 * produce opens the fan-out ring at PATH (it must exist) and writes the
 * scenario's tagged messages of producer ID, after the start barrier.
 *
 * work joins group NAME (at-least-once, no hold timeout), creates the ready
 * file and takes one message per read call (mrb_read_wait) until the done
 * file exists and a read then finds nothing to take. Each message is
 * processed: checked to be exactly the scenario's tagged message of its
 * producer and sequence number (so its CRC-32 too), then U microseconds
 * are slept (simulated work). After processing it prints one line,
 *
 *   PRODUCER SEQ LENGTH CRC32
 *
 * (CRC32 the message's own CRC field, %08x), flushed before the next read
 * call releases the message. Exit status: 0 done, 1 a wrong message, 2 any
 * other error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mrb/mrb.h"
#include "scenario.h"

struct args {
	const char *role;
	const char *path;
	const char *spec;
	const char *scenario;
	const char *barrier;
	const char *group;
	const char *ready;
	const char *done;
	unsigned producer;
	unsigned producers;
	unsigned long pause_us;
};

static void usage(void)
{
	fprintf(stderr, "usage: pool_c produce PATH --spec FILE --scenario NAME --producer ID "
	                "--barrier DIR\n"
	                "       pool_c work PATH --spec FILE --scenario NAME --producers N "
	                "--group NAME --ready FILE --done FILE [--pause-us U]\n");
	exit(2);
}

static unsigned long long number(const char *text)
{
	char *end;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno != 0 || *text < '0' || *text > '9' || *end != '\0')
		usage();
	return value;
}

static void parse(int argc, char **argv, struct args *a)
{
	memset(a, 0, sizeof(*a));
	if (argc < 3 || (argc - 3) % 2 != 0)
		usage();
	a->role = argv[1];
	a->path = argv[2];
	for (int i = 3; i + 1 < argc; i += 2) {
		const char *flag = argv[i], *value = argv[i + 1];
		if (strcmp(flag, "--spec") == 0)
			a->spec = value;
		else if (strcmp(flag, "--scenario") == 0)
			a->scenario = value;
		else if (strcmp(flag, "--barrier") == 0)
			a->barrier = value;
		else if (strcmp(flag, "--group") == 0)
			a->group = value;
		else if (strcmp(flag, "--ready") == 0)
			a->ready = value;
		else if (strcmp(flag, "--done") == 0)
			a->done = value;
		else if (strcmp(flag, "--producer") == 0)
			a->producer = (unsigned)number(value);
		else if (strcmp(flag, "--producers") == 0)
			a->producers = (unsigned)number(value);
		else if (strcmp(flag, "--pause-us") == 0)
			a->pause_us = (unsigned long)number(value);
		else
			usage();
	}
	if (a->spec == NULL || a->scenario == NULL)
		usage();
	if (strcmp(a->role, "produce") == 0 ? a->barrier == NULL || a->producer > 255
	    : strcmp(a->role, "work") == 0
	        ? a->group == NULL || a->ready == NULL || a->done == NULL || a->producers == 0 ||
	              a->producers > 256 || a->pause_us > 1000000
	        : 1)
		usage();
}

static int produce(const struct args *a, const struct scenario *s, uint8_t *buf)
{
	struct mrb_ring ring;
	int rc = mrb_open(&ring, a->path, 0);
	if (rc != 0) {
		fprintf(stderr, "pool_c produce: open %s: %s\n", a->path, mrb_strerror(rc));
		return 2;
	}
	barrier_wait(a->barrier, a->producer);
	for (uint64_t i = 0; i < s->count; i++) {
		size_t len = tagged_message(s, a->producer, i, buf);
		rc = mrb_write_wait(&ring, buf, len, INTEROP_TIMEOUT_NS);
		if (rc != 0) {
			fprintf(stderr, "pool_c produce: message %llu: %s\n", (unsigned long long)i,
			        mrb_strerror(rc));
			mrb_close(&ring);
			return 2;
		}
	}
	mrb_close(&ring);
	return 0;
}

/* Processes one message: exactly the scenario's, then the simulated work. */
static int process(const struct args *a, const struct scenario *s, const uint8_t *msg, size_t len,
                   uint8_t *want)
{
	if (len < TAGGED_OVERHEAD) {
		fprintf(stderr, "pool_c work: message of %zu bytes\n", len);
		return 1;
	}
	unsigned producer = msg[0];
	uint32_t seq, crc;
	memcpy(&seq, msg + 1, sizeof(seq)); /* little-endian, as the machine */
	memcpy(&crc, msg + len - sizeof(crc), sizeof(crc));
	if (producer >= a->producers || seq >= s->count ||
	    tagged_message(s, producer, seq, want) != len || memcmp(want, msg, len) != 0) {
		fprintf(stderr, "pool_c work: producer %u seq %u (%zu bytes): not the scenario's\n",
		        producer, seq, len);
		return 1;
	}
	if (a->pause_us > 0) {
		struct timespec ts = {0, (long)a->pause_us * 1000L};
		nanosleep(&ts, NULL);
	}
	if (printf("%u %u %zu %08x\n", producer, seq, len, crc) < 0 || fflush(stdout) != 0)
		return 2;
	return 0;
}

static int work(const struct args *a, const struct scenario *s, uint8_t *buf, uint8_t *want)
{
	struct mrb_ring w;
	int rc = mrb_worker_join(&w, a->path, a->group, NULL);
	if (rc != 0) {
		fprintf(stderr, "pool_c work: join %s: %s\n", a->path, mrb_strerror(rc));
		return 2;
	}
	FILE *ready = fopen(a->ready, "w");
	if (ready == NULL || fclose(ready) != 0) {
		mrb_close(&w);
		return 2;
	}
	size_t size = scenario_max_message(s);
	int status = 0;
	uint64_t processed = 0;
	long idle = 0;
	for (;;) {
		/* Seen before the read: if nothing is then left to take, all is taken. */
		int done = access(a->done, F_OK) == 0;
		size_t len;
		rc = mrb_read_wait(&w, buf, size, &len, 50 * 1000 * 1000);
		if (rc == MRB_ETIMEDOUT || rc == MRB_EINTR) {
			if (done)
				break;
			if (++idle > 600) { /* 30 s without a message */
				fprintf(stderr, "pool_c work: no message for too long\n");
				status = 2;
				break;
			}
			continue;
		}
		if (rc != 0) {
			fprintf(stderr, "pool_c work: read: %s\n", mrb_strerror(rc));
			status = 2;
			break;
		}
		idle = 0;
		status = process(a, s, buf, len, want);
		if (status != 0)
			break;
		processed++;
	}
	if (status == 0 && (rc = mrb_worker_ack(&w)) != 0) {
		fprintf(stderr, "pool_c work: ack: %s\n", mrb_strerror(rc));
		status = 2;
	}
	fprintf(stderr, "pool_c work: %llu messages\n", (unsigned long long)processed);
	mrb_close(&w);
	return status;
}

int main(int argc, char **argv)
{
	struct args a;
	struct scenario s;
	parse(argc, argv, &a);
	if (scenario_load(a.spec, a.scenario, &s) != 0 || s.kind != SCENARIO_TAGGED)
		return 2;
	size_t size = scenario_max_message(&s);
	uint8_t *buf = malloc(size), *want = malloc(size);
	if (buf == NULL || want == NULL)
		return 2;
	int status =
	    strcmp(a.role, "produce") == 0 ? produce(&a, &s, buf) : work(&a, &s, buf, want);
	free(buf);
	free(want);
	return status;
}
