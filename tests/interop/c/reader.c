/* SPDX-License-Identifier: MIT */
/* Interop reader (C): receives a scenario's messages and checks bytes, order
 * and count exactly; see docs/INTEROP.md. Exit 1 on any mismatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "mrb/mrb.h"
#include "scenario.h"

struct reader {
	struct mrb_ring ring;
	const struct scenario *s;
	uint8_t *got;
	uint8_t *want;
	size_t buf_size;
	uint64_t bytes;
	uint64_t switches; /* consecutive tagged messages from different producers */
	int epoll;         /* MRB_INTEROP_WAIT=evloop: the loop; -1 otherwise */
};

/* MRB_INTEROP_WAIT=evloop: wait in an epoll loop on the ring's doorbell (the
 * loop documented in mrb.h) instead of blocking in mrb_read_wait. */
static int read_evloop(struct reader *r, size_t *len)
{
	int64_t waited_ms = 0;
	for (;;) {
		int rc = mrb_read(&r->ring, r->got, r->buf_size, len);
		if (rc != MRB_EEMPTY)
			return rc;
		int timeout_ms;
		rc = mrb_arm_read(&r->ring, &timeout_ms);
		if (rc < 0)
			return rc;
		if (rc == 1)
			continue;
		if (waited_ms > INTEROP_TIMEOUT_NS / 1000000)
			return MRB_ETIMEDOUT;
		struct epoll_event ev;
		if (epoll_wait(r->epoll, &ev, 1, timeout_ms) == 0)
			waited_ms += timeout_ms;
	}
}

static int read_one(struct reader *r, uint64_t index, size_t *len)
{
	int rc = r->epoll >= 0
	             ? read_evloop(r, len)
	             : mrb_read_wait(&r->ring, r->got, r->buf_size, len, INTEROP_TIMEOUT_NS);
	if (rc != 0)
		fprintf(stderr, "c reader: %s: reading message %llu: %s\n", r->s->name,
		        (unsigned long long)index, mrb_strerror(rc));
	r->bytes += *len;
	return rc;
}

static int report_mismatch(const char *what, uint64_t index, const uint8_t *got, size_t got_len,
                           const uint8_t *want, size_t want_len)
{
	size_t at = 0;
	while (at < got_len && at < want_len && got[at] == want[at])
		at++;
	fprintf(stderr,
	        "c reader: %s %llu: got %zu bytes, want %zu; first difference at byte %zu\n", what,
	        (unsigned long long)index, got_len, want_len, at);
	return 1;
}

static int read_stream(struct reader *r, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++) {
		size_t len;
		if (read_one(r, i, &len) != 0)
			return 1;
		size_t want_len = stream_message(r->s, i, r->want);
		if (len != want_len || memcmp(r->got, r->want, len) != 0)
			return report_mismatch("message", i, r->got, len, r->want, want_len);
	}
	return 0;
}

static uint32_t get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Each producer's messages must arrive complete (crc), in its order, none
 * missing or repeated; producers interleave freely. */
static int read_tagged(struct reader *r, unsigned producers)
{
	uint64_t *next = calloc(producers, sizeof(*next));
	uint64_t total = r->s->count * producers;
	unsigned last = 0;
	int status = 0;
	for (uint64_t i = 0; i < total && status == 0; i++) {
		size_t len;
		if (read_one(r, i, &len) != 0) {
			status = 1;
			break;
		}
		if (len < TAGGED_OVERHEAD ||
		    get_u32le(r->got + len - 4) != crc32_ieee(r->got, len - 4)) {
			fprintf(stderr, "c reader: message %llu: bad checksum (torn?)\n",
			        (unsigned long long)i);
			status = 1;
			break;
		}
		unsigned producer = r->got[0];
		uint32_t seq = get_u32le(r->got + 1);
		if (producer >= producers || next[producer] >= r->s->count ||
		    seq != next[producer]) {
			fprintf(stderr,
			        "c reader: message %llu: producer %u seq %u, expected seq %llu\n",
			        (unsigned long long)i, producer, seq,
			        producer < producers ? (unsigned long long)next[producer] : 0ull);
			status = 1;
			break;
		}
		size_t want_len = tagged_message(r->s, producer, seq, r->want);
		if (len != want_len || memcmp(r->got, r->want, len) != 0)
			status =
			    report_mismatch("tagged message", i, r->got, len, r->want, want_len);
		next[producer]++;
		if (i > 0 && producer != last)
			r->switches++;
		last = producer;
	}
	free(next);
	return status;
}

int main(int argc, char **argv)
{
	struct interop_args args;
	struct scenario s;
	interop_parse_args(argc, argv, &args);
	if (scenario_load(args.spec, args.scenario, &s) != 0)
		return 2;
	struct reader r = {.s = &s, .epoll = -1};
	int rc = mrb_create(&r.ring, args.path, s.capacity, NULL);
	if (rc != 0) {
		fprintf(stderr, "c reader: create %s: %s\n", args.path, mrb_strerror(rc));
		return 2;
	}
	const char *wait = getenv("MRB_INTEROP_WAIT");
	if (wait != NULL && strcmp(wait, "evloop") == 0) {
		int fd = mrb_doorbell_fd(&r.ring, MRB_DOORBELL_READ);
		struct epoll_event ev = {.events = EPOLLIN};
		r.epoll = epoll_create1(EPOLL_CLOEXEC);
		if (fd < 0 || r.epoll < 0 || epoll_ctl(r.epoll, EPOLL_CTL_ADD, fd, &ev) != 0) {
			fprintf(stderr, "c reader: doorbell: %s\n", mrb_strerror(fd));
			return 2;
		}
	}
	/* One byte more than any expected message, so an oversized one shows up
	 * as a length mismatch rather than as "buffer too small". */
	r.buf_size = scenario_max_message(&s) + 1;
	r.got = malloc(r.buf_size);
	r.want = malloc(r.buf_size);
	if (r.got == NULL || r.want == NULL)
		return 2;
	uint64_t to = args.to < s.count ? args.to : s.count;
	uint64_t from = args.from < to ? args.from : to;
	int status =
	    s.kind == SCENARIO_STREAM ? read_stream(&r, from, to) : read_tagged(&r, args.producers);
	/* Only the last of several turns sees the end of the stream. */
	if (status == 0 && (s.kind == SCENARIO_TAGGED || to == s.count)) {
		size_t len;
		rc = mrb_read(&r.ring, r.got, r.buf_size, &len);
		if (rc != MRB_EEMPTY) {
			fprintf(stderr, "c reader: %s: expected an empty ring at the end, got %s\n",
			        s.name, rc == 0 ? "another message" : mrb_strerror(rc));
			status = 1;
		}
	}
	if (status == 0 && s.kind == SCENARIO_TAGGED)
		printf("c reader: %s: %llu messages from %u producers, %llu bytes OK "
		       "(%llu producer switches)\n",
		       s.name, (unsigned long long)(s.count * args.producers), args.producers,
		       (unsigned long long)r.bytes, (unsigned long long)r.switches);
	else if (status == 0)
		printf("c reader: %s: %llu messages (%llu..%llu), %llu bytes OK\n", s.name,
		       (unsigned long long)(to - from), (unsigned long long)from,
		       (unsigned long long)to, (unsigned long long)r.bytes);
	free(r.got);
	free(r.want);
	mrb_close(&r.ring);
	return status;
}
