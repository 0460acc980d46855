/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the input is a whole ring file. It is written to disk,
 * opened, and drained with every read API, inspected, recovered, written
 * to and drained again. The header's reserved bytes 0x40-0x7f (not
 * validated by open) double as up to 8 "pokes" (u32 offset, u32 value) that
 * a hostile peer applies to the live mapping after the consumer attached,
 * which reaches states open-time validation rules out (unaligned or
 * inconsistent positions, records changed under the consumer). Built by fuzz_test.sh with clang
 * -fsanitize=fuzzer,address,undefined and guard regions around every
 * mapping (guarded_mmap.c), so any access outside the mapping, any UB and
 * any hang (-timeout) is a finding. Seeds: corpus/ (valid rings made by
 * gen_seeds.c).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mrb/mrb.h"
#include "mrb_testing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *lo, *hi;
static uint64_t max_message;

static void check_span(const void *p, size_t len)
{
	const uint8_t *b = p;
	if (len == 0 || len > max_message || b < lo || b + len > hi)
		abort();
}

static int on_message(void *ctx, const void *p, size_t len)
{
	(void)ctx;
	check_span(p, len);
	return 0;
}

static int on_record(void *ctx, const struct mrb_record_info *rec)
{
	(void)ctx;
	if (rec->state > MRB_RECORD_UNWRITTEN)
		abort();
	if (rec->state != MRB_RECORD_UNWRITTEN) {
		const uint8_t *b = rec->data;
		if (b < lo || b + rec->length > hi)
			abort();
	}
	return 0;
}

static void drain(struct mrb_ring *ring)
{
	static uint8_t buf[1 << 16];
	size_t len, lengths[16];
	struct mrb_view view;
	for (int i = 0; i < 64 && mrb_peek(ring, &view) == 0; i++) {
		check_span(view.data, view.len);
		if (mrb_release(ring, &view) != 0)
			abort();
	}
	for (int i = 0; i < 64 && mrb_read(ring, buf, sizeof(buf), &len) == 0; i++)
		if (len == 0 || len > max_message)
			abort();
	int64_t n = mrb_read_many(ring, buf, sizeof(buf), lengths, 16);
	for (int64_t i = 0; i < n; i++)
		if (lengths[i] == 0 || lengths[i] > max_message)
			abort();
	mrb_read_batch(ring, on_message, NULL, 0);
	mrb_read_wait(ring, buf, sizeof(buf), &len, 0);
	mrb_wait_readable(ring, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[512];
	static int fd = -1;
	if (fd < 0) {
		const char *dir = getenv("FUZZ_RING_DIR");
		snprintf(path, sizeof(path), "%s/fuzz-ring-%d", dir != NULL ? dir : "/tmp",
		         (int)getpid());
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			abort();
	}
	if (ftruncate(fd, (off_t)size) != 0 ||
	    (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	struct mrb_ring ring;
	if (mrb_open(&ring, path, 0) != 0)
		return 0;
	lo = mrb__test_mapping(&ring);
	hi = lo + size;
	max_message = mrb_max_message_size(&ring);
	mrb_wait_readable(&ring, 0); /* attach as consumer */
	for (size_t i = 0; i < 8; i++) {
		uint32_t poke[2];
		memcpy(poke, data + 0x40 + 8 * i, sizeof(poke));
		if (poke[0] == 0 && poke[1] == 0)
			continue;
		size_t offset = (poke[0] % size) & ~(size_t)3;
		memcpy((uint8_t *)lo + offset, &poke[1], 4);
	}
	struct mrb_stats st;
	mrb_stats(&ring, &st);
	mrb_inspect(&ring, on_record, NULL, 0);
	drain(&ring);
	mrb_recover(&ring, -1);
	mrb_recover(&ring, 0);
	drain(&ring);
	uint8_t msg[64] = {1, 2, 3};
	mrb_write(&ring, msg, sizeof(msg));
	struct mrb_reservation res;
	if (mrb_reserve(&ring, 17, &res) == 0) {
		check_span(res.data, 17);
		memset(res.data, 7, 17);
		mrb_commit(&ring, &res);
	}
	mrb_write_wait(&ring, msg, 3, 0);
	mrb_inspect(&ring, on_record, NULL, 0);
	drain(&ring);
	mrb_stats(&ring, &st);
	if (mrb_close(&ring) != 0)
		abort();
	return 0;
}
