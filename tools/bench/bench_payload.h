/* SPDX-License-Identifier: MIT */
/*
 * What every data-carrying benchmark sends, and how the consumer proves it
 * arrived intact. A message is a fixed pseudo-random body whose first 8 bytes
 * are replaced by a stamp (producer index << 56 | sequence number). The
 * consumer checks the length, the per-producer sequence and the sum of all
 * 64-bit words of every message, so a transport that loses, duplicates,
 * reorders, tears or invents data fails instead of looking fast.
 */
#ifndef MRB_TOOLS_BENCH_BENCH_PAYLOAD_H
#define MRB_TOOLS_BENCH_BENCH_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BENCH_MAX_PRODUCERS  4
#define BENCH_STAMP_SEQ_MASK ((UINT64_C(1) << 56) - 1)

static inline uint64_t bench_stamp(int producer, uint64_t seq)
{
	return ((uint64_t)producer << 56) | seq;
}

static inline void bench_put_stamp(void *msg, uint64_t stamp)
{
	memcpy(msg, &stamp, sizeof(stamp));
}

/* Sum of the message's little 64-bit words, a short tail zero-extended.
 * Four accumulators so it runs near load bandwidth. */
static inline uint64_t bench_sum_words(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
	size_t i = 0;
	for (; i + 32 <= len; i += 32) {
		uint64_t w[4];
		memcpy(w, p + i, sizeof(w));
		a0 += w[0];
		a1 += w[1];
		a2 += w[2];
		a3 += w[3];
	}
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, sizeof(w));
		a0 += w;
	}
	if (i < len) {
		uint64_t w = 0;
		memcpy(&w, p + i, len - i);
		a1 += w;
	}
	return a0 + a1 + a2 + a3;
}

/* The body every message of one size is made from (16-byte aligned, at least
 * 8 bytes). `rest_sum` is the word sum of everything after the stamp. */
struct bench_body {
	unsigned char *bytes;
	size_t size;
	uint64_t rest_sum;
};

int bench_body_init(struct bench_body *body, size_t size);
void bench_body_free(struct bench_body *body);

/* Producer-side bookkeeping: the checksum the consumer must reproduce. */
static inline uint64_t bench_message_sum(const struct bench_body *body, uint64_t stamp)
{
	return stamp + body->rest_sum;
}

struct bench_verifier {
	size_t size;
	int producers;
	uint64_t rest_sum;
	uint64_t next_seq[BENCH_MAX_PRODUCERS];
	uint64_t messages;
	uint64_t checksum;
	int failed;
	char what[200];
};

void bench_verifier_init(struct bench_verifier *v, const struct bench_body *body, int producers);

int bench_verifier_fail(struct bench_verifier *v, const void *msg, size_t len);

/* Returns 0 if `msg` is the next expected message of its producer, else
 * records why in v->what and returns -1. */
static inline int bench_verify(struct bench_verifier *v, const void *msg, size_t len)
{
	uint64_t stamp;
	if (len != v->size || len < sizeof(stamp)) {
		return bench_verifier_fail(v, msg, len);
	}
	memcpy(&stamp, msg, sizeof(stamp));
	unsigned producer = (unsigned)(stamp >> 56);
	if (producer >= (unsigned)v->producers ||
	    (stamp & BENCH_STAMP_SEQ_MASK) != v->next_seq[producer]) {
		return bench_verifier_fail(v, msg, len);
	}
	uint64_t sum = bench_sum_words(msg, len);
	if (sum != stamp + v->rest_sum) {
		return bench_verifier_fail(v, msg, len);
	}
	v->next_seq[producer]++;
	v->messages++;
	v->checksum += sum;
	return 0;
}

#endif /* MRB_TOOLS_BENCH_BENCH_PAYLOAD_H */
