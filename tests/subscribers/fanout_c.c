/* SPDX-License-Identifier: MIT */
/*
 * The C side of the cross-language fan-out test (fanout_interop_test.py):
 *
 *   fanout_c produce PATH --spec FILE --scenario NAME --producer ID --barrier DIR
 *   fanout_c tap PATH --spec FILE --scenario NAME --producers N --ready FILE
 *            --done FILE [--lap-at K ...]
 *
 * produce opens the fan-out ring at PATH (it must exist) and writes the
 * scenario's tagged messages of producer ID, after the start barrier.
 *
 * tap joins as a lossy subscriber ("ctap"), creates the ready file, and
 * reads until the done file exists and the ring is drained. Every message
 * must be intact (equal to the scenario's tagged message of its producer
 * and sequence number) and each producer's sequence numbers must increase.
 * After its K-th message (each --lap-at) it stops reading until producers
 * are more than two laps ahead, so that it is lapped. It prints one line:
 *
 *   tap delivered N spans S lost_bytes L lost_events E start P0 end P1
 *
 * (S: the record spans of the N messages it read) and exits 0 if
 * P1 - P0 == S + L, 1 on any mismatch, 2 on any other error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mrb/mrb.h"
#include "scenario.h"

#define MAX_LAPS      8
#define MAX_PRODUCERS 16

struct args {
	const char *role;
	const char *path;
	const char *spec;
	const char *scenario;
	const char *barrier;
	const char *ready;
	const char *done;
	unsigned producer;
	unsigned producers;
	uint64_t lap_at[MAX_LAPS];
	int laps;
};

static void usage(void)
{
	fprintf(stderr, "usage: fanout_c produce PATH --spec FILE --scenario NAME --producer ID "
	                "--barrier DIR\n"
	                "       fanout_c tap PATH --spec FILE --scenario NAME --producers N "
	                "--ready FILE --done FILE [--lap-at K ...]\n");
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
	if (argc < 3)
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
		else if (strcmp(flag, "--ready") == 0)
			a->ready = value;
		else if (strcmp(flag, "--done") == 0)
			a->done = value;
		else if (strcmp(flag, "--producer") == 0)
			a->producer = (unsigned)number(value);
		else if (strcmp(flag, "--producers") == 0)
			a->producers = (unsigned)number(value);
		else if (strcmp(flag, "--lap-at") == 0 && a->laps < MAX_LAPS)
			a->lap_at[a->laps++] = number(value);
		else
			usage();
	}
	if ((argc - 3) % 2 != 0 || a->spec == NULL || a->scenario == NULL)
		usage();
	if (strcmp(a->role, "produce") == 0 ? a->barrier == NULL || a->producer > 255
	    : strcmp(a->role, "tap") == 0   ? a->ready == NULL || a->done == NULL ||
	                                        a->producers == 0 || a->producers > MAX_PRODUCERS
	                                  : 1)
		usage();
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int produce(const struct args *a, const struct scenario *s, uint8_t *buf)
{
	struct mrb_ring ring;
	int rc = mrb_open(&ring, a->path, 0);
	if (rc != 0) {
		fprintf(stderr, "fanout_c produce: open %s: %s\n", a->path, mrb_strerror(rc));
		return 2;
	}
	barrier_wait(a->barrier, a->producer);
	for (uint64_t i = 0; i < s->count; i++) {
		size_t len = tagged_message(s, a->producer, i, buf);
		rc = mrb_write_wait(&ring, buf, len, INTEROP_TIMEOUT_NS);
		if (rc != 0) {
			fprintf(stderr, "fanout_c produce: message %llu: %s\n",
			        (unsigned long long)i, mrb_strerror(rc));
			mrb_close(&ring);
			return 2;
		}
	}
	mrb_close(&ring);
	return 0;
}

struct tap {
	struct mrb_ring ring;
	const struct scenario *s;
	unsigned producers;
	uint64_t delivered, spans;
	int64_t last_seq[MAX_PRODUCERS];
};

/* Checks one message: intact, and after its producer's previous one. */
static int check(struct tap *t, const uint8_t *msg, size_t len, uint8_t *want)
{
	if (len < TAGGED_OVERHEAD)
		return -1;
	unsigned producer = msg[0];
	uint32_t seq;
	memcpy(&seq, msg + 1, sizeof(seq)); /* little-endian, as the machine */
	if (producer >= t->producers || seq >= t->s->count) {
		fprintf(stderr, "fanout_c tap: message of producer %u seq %u out of range\n",
		        producer, seq);
		return -1;
	}
	size_t want_len = tagged_message(t->s, producer, seq, want);
	if (want_len != len || memcmp(want, msg, len) != 0) {
		fprintf(stderr, "fanout_c tap: producer %u seq %u: torn or wrong bytes\n", producer,
		        seq);
		return -1;
	}
	if ((int64_t)seq <= t->last_seq[producer]) {
		fprintf(stderr, "fanout_c tap: producer %u: seq %u after %lld\n", producer, seq,
		        (long long)t->last_seq[producer]);
		return -1;
	}
	t->last_seq[producer] = seq;
	t->delivered++;
	t->spans += (MRB_RECORD_HEADER_SIZE + len + MRB_RECORD_ALIGNMENT - 1) &
	            ~(uint64_t)(MRB_RECORD_ALIGNMENT - 1);
	return 0;
}

/* Stops reading until producers are more than two laps ahead of the tap
 * (or done): its next read finds itself lapped. */
static int fall_behind(struct tap *t, const char *done)
{
	for (long waited = 0; waited < 30000; waited++) {
		struct mrb_stats st;
		struct mrb_subscriber_info info;
		if (mrb_stats(&t->ring, &st) != 0 || mrb_subscriber_info(&t->ring, &info) != 0)
			return -1;
		if (st.producer_position - info.position > 2 * st.capacity ||
		    access(done, F_OK) == 0)
			return 0;
		sleep_ms(1);
	}
	fprintf(stderr, "fanout_c tap: producers did not lap the tap\n");
	return -1;
}

static int tap(const struct args *a, const struct scenario *s, uint8_t *buf, uint8_t *want)
{
	struct tap t = {.s = s, .producers = a->producers};
	for (unsigned p = 0; p < MAX_PRODUCERS; p++)
		t.last_seq[p] = -1;
	struct mrb_subscribe_options opts = {MRB_SUBSCRIBE_LOSSY, "ctap", 0};
	int rc = mrb_subscribe(&t.ring, a->path, &opts);
	struct mrb_subscriber_info info;
	if (rc == 0)
		rc = mrb_subscriber_info(&t.ring, &info);
	if (rc != 0) {
		fprintf(stderr, "fanout_c tap: subscribe %s: %s\n", a->path, mrb_strerror(rc));
		return 2;
	}
	uint64_t start = info.position;
	FILE *ready = fopen(a->ready, "w");
	if (ready == NULL || fclose(ready) != 0)
		return 2;
	size_t size = scenario_max_message(s);
	int status = 0, lap = 0;
	for (;;) {
		if (lap < a->laps && t.delivered == a->lap_at[lap]) {
			lap++;
			if (fall_behind(&t, a->done) != 0) {
				status = 2;
				break;
			}
		}
		/* Seen before the read: if the ring is then empty, it is drained. */
		int done = access(a->done, F_OK) == 0;
		size_t len;
		rc = mrb_read_wait(&t.ring, buf, size, &len, 50 * 1000 * 1000);
		if (rc == MRB_ETIMEDOUT || rc == MRB_EINTR) {
			if (done)
				break;
			continue;
		}
		if (rc != 0) {
			fprintf(stderr, "fanout_c tap: read: %s\n", mrb_strerror(rc));
			status = 2;
			break;
		}
		if (check(&t, buf, len, want) != 0) {
			status = 1;
			break;
		}
	}
	if (mrb_subscriber_info(&t.ring, &info) != 0)
		status = 2;
	printf("tap delivered %llu spans %llu lost_bytes %llu lost_events %llu start %llu end "
	       "%llu\n",
	       (unsigned long long)t.delivered, (unsigned long long)t.spans,
	       (unsigned long long)info.lost_bytes, (unsigned long long)info.lost_events,
	       (unsigned long long)start, (unsigned long long)info.position);
	if (status == 0 && (info.position - start != t.spans + info.lost_bytes ||
	                    info.messages_read != t.delivered)) {
		fprintf(stderr, "fanout_c tap: counts do not add up\n");
		status = 1;
	}
	mrb_close(&t.ring);
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
	int status = strcmp(a.role, "produce") == 0 ? produce(&a, &s, buf) : tap(&a, &s, buf, want);
	free(buf);
	free(want);
	return status;
}
