/* SPDX-License-Identifier: MIT */
/* sched_setaffinity, F_GETPIPE_SZ, and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_payload.h"

#include <stdlib.h>

int bench_body_init(struct bench_body *body, size_t size)
{
	size_t alloc = (size + 63) & ~(size_t)63;
	body->bytes = aligned_alloc(64, alloc);
	if (body->bytes == NULL) {
		return -1;
	}
	body->size = size;
	/* xorshift64*: different bytes in every word, deterministic per size. */
	uint64_t x = UINT64_C(0x9E3779B97F4A7C15) ^ size;
	for (size_t i = 0; i < alloc; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		uint64_t w = x * UINT64_C(0x2545F4914F6CDD1D);
		memcpy(body->bytes + i, &w, sizeof(w));
	}
	body->rest_sum = bench_sum_words(body->bytes + 8, size - 8);
	return 0;
}

void bench_body_free(struct bench_body *body)
{
	free(body->bytes);
	body->bytes = NULL;
}

void bench_verifier_init(struct bench_verifier *v, const struct bench_body *body, int producers)
{
	memset(v, 0, sizeof(*v));
	v->size = body->size;
	v->producers = producers;
	v->rest_sum = body->rest_sum;
}

int bench_verifier_fail(struct bench_verifier *v, const void *msg, size_t len)
{
	if (v->failed) {
		return -1;
	}
	v->failed = 1;
	uint64_t stamp = 0;
	if (len >= sizeof(stamp)) {
		memcpy(&stamp, msg, sizeof(stamp));
	}
	unsigned producer = (unsigned)(stamp >> 56);
	if (len != v->size) {
		snprintf(v->what, sizeof(v->what), "message %llu has length %zu, expected %zu",
		         (unsigned long long)v->messages, len, v->size);
	} else if (producer >= (unsigned)v->producers) {
		snprintf(v->what, sizeof(v->what),
		         "message %llu names producer %u of %d (stamp %016llx)",
		         (unsigned long long)v->messages, producer, v->producers,
		         (unsigned long long)stamp);
	} else if ((stamp & BENCH_STAMP_SEQ_MASK) != v->next_seq[producer]) {
		snprintf(v->what, sizeof(v->what), "producer %u: sequence %llu, expected %llu",
		         producer, (unsigned long long)(stamp & BENCH_STAMP_SEQ_MASK),
		         (unsigned long long)v->next_seq[producer]);
	} else {
		snprintf(v->what, sizeof(v->what),
		         "producer %u sequence %llu: payload checksum mismatch (torn or "
		         "corrupted bytes)",
		         producer, (unsigned long long)v->next_seq[producer]);
	}
	return -1;
}
