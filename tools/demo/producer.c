/* SPDX-License-Identifier: MIT */
/*
 * Pipeline demo, hop 0: the C producer (see pipeline.sh for the message
 * format). Writes numbered messages of 16..256 bytes into RING for SECONDS
 * seconds or COUNT messages, then an end marker carrying the count and a
 * CRC-32 over all bodies, which the last stage checks.
 *
 *   producer RING SIZE (--seconds S | --count N)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mrb/mrb.h"

#define TIMEOUT_NS (30ll * 1000 * 1000 * 1000)

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
		crc_table[i] = c;
	}
}

/* Continues a CRC-32 (as zlib.crc32(data, crc)). */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int k = 0; k < bytes; k++)
		p[k] = (uint8_t)(v >> (8 * k));
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 5 || (strcmp(argv[3], "--seconds") != 0 && strcmp(argv[3], "--count") != 0)) {
		fprintf(stderr, "usage: %s RING SIZE (--seconds S | --count N)\n", argv[0]);
		return 2;
	}
	const int by_time = strcmp(argv[3], "--seconds") == 0;
	const double seconds = by_time ? atof(argv[4]) : 0;
	const uint64_t count = by_time ? UINT64_MAX : strtoull(argv[4], NULL, 10);
	crc_init();
	struct mrb_ring ring;
	int rc = mrb_create(&ring, argv[1], strtoull(argv[2], NULL, 10), NULL);
	if (rc != 0) {
		fprintf(stderr, "producer: %s: %s\n", argv[1], mrb_strerror(rc));
		return 1;
	}
	uint8_t msg[8 + 256 + 4];
	uint32_t digest = 0;
	uint64_t seq = 0, bytes = 0;
	const double start = now_s();
	double end = start + seconds;
	for (; seq < count; seq++) {
		if (by_time && (seq & 1023) == 0 && now_s() >= end)
			break;
		size_t body = 16 + seq % 241;
		put_le(msg, seq, 8);
		for (size_t j = 0; j < body; j++)
			msg[8 + j] = (uint8_t)(seq * 31 + j);
		digest = crc32_update(digest, msg + 8, body);
		put_le(msg + 8 + body, crc32_update(0, msg, 8 + body), 4);
		rc = mrb_write_wait(&ring, msg, 8 + body + 4, TIMEOUT_NS);
		if (rc != 0)
			break;
		bytes += 8 + body + 4;
	}
	const double elapsed = now_s() - start;
	if (rc == 0) {
		/* End marker: all-ones sequence, count, digest, CRC of those. */
		memset(msg, 0xff, 8);
		put_le(msg + 8, seq, 8);
		put_le(msg + 16, digest, 4);
		put_le(msg + 20, crc32_update(0, msg, 20), 4);
		rc = mrb_write_wait(&ring, msg, 24, TIMEOUT_NS);
	}
	mrb_close(&ring);
	if (rc != 0) {
		fprintf(stderr, "producer: write: %s\n", mrb_strerror(rc));
		return 1;
	}
	printf(
	    "C producer       -> ring A: %9llu msgs %8.1f MB in %5.2f s: %10.0f msg/s %7.1f MB/s  "
	    "(body crc32 %08x)\n",
	    (unsigned long long)seq, (double)bytes / 1e6, elapsed, (double)seq / elapsed,
	    (double)bytes / 1e6 / elapsed, digest);
	return 0;
}
