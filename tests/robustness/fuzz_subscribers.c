/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the reader table (subscribers, docs/FORMAT.md
 * section 8). A format 2 ring is 64 KiB of header before any data, too
 * large to mutate byte by byte usefully, so the input is a compact list of
 * patches over a template ring built once: a fan-out ring (or a queue ring)
 * with messages, a detached named durable subscriber, an evicted one, a
 * live lossy tap's entry and unread data. Input:
 *   byte 0   bit 0: queue ring instead of fan-out; bits 1-3: the options
 *            of the subscriber that joins (LOSSY, EVICT, FROM_OLDEST);
 *            bits 4-5: its name ("a" the template's, "b", "e", none);
 *            bits 6-7: how it reads
 *   byte 1   how many of the patches are applied before the ring is opened
 *            (the rest are pokes of a hostile peer after the subscriber
 *            joined: states that open-time checks never see)
 *   then     patches of 8 bytes: u32 where, u32 value. The top 2 bits of
 *            `where` pick a region (reader table and entries, the header's
 *            hot fields, the data, anywhere) and the rest an offset in it.
 * Every public call that touches the table runs: list, subscribe, every
 * read call, write, subscriber_info, unsubscribe, close. Nothing may crash,
 * leave the mapping (guard regions, guarded_mmap.c), trip a sanitizer, hang
 * or spin (-timeout). Run by fuzz_test.sh (fuzz_subscribers_test).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mrb/mrb.h"
#include "mrb_testing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAPACITY     1024
#define FILE_SIZE    (MRB_HEADER_SIZE + CAPACITY)
#define TABLE_OFFSET 0x9000
#define TABLE_SIZE   (0xe000 - 0x9000)
#define HOT_SIZE     0x400
#define MAX_PATCHES  64

static uint8_t templates[2][FILE_SIZE];
static char path[512];
static const uint8_t *lo, *hi;

static void die(const char *what, int rc)
{
	fprintf(stderr, "fuzz_subscribers: template: %s: %s\n", what, mrb_strerror(rc));
	abort();
}

#define TRY(expr)                                                                                  \
	do {                                                                                       \
		int64_t rc_ = (expr);                                                              \
		if (rc_ < 0)                                                                       \
			die(#expr, (int)rc_);                                                      \
	} while (0)

/* The template of each mode, read back from the file mrb_create made. */
static void build_template(int queue)
{
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE, .mode = 0600};
	if (!queue)
		opts.flags |= MRB_CREATE_FANOUT;
	struct mrb_ring ring, named, evicted, tap;
	TRY(mrb_create(&ring, path, CAPACITY, &opts));
	uint8_t msg[200];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 13 + 1);
	if (!queue) {
		struct mrb_subscribe_options a = {0, "a", 0};
		TRY(mrb_subscribe(&named, path, &a));
		struct mrb_subscribe_options e = {MRB_SUBSCRIBE_EVICT, "e", 1};
		TRY(mrb_subscribe(&evicted, path, &e));
	}
	struct mrb_subscribe_options l = {MRB_SUBSCRIBE_LOSSY, "tap", 0};
	TRY(mrb_subscribe(&tap, path, &l));
	uint8_t buf[256];
	size_t len;
	for (int i = 0; i < 6; i++) {
		TRY(mrb_write(&ring, msg, 20 + (size_t)i * 30));
		if (!queue && i < 3)
			TRY(mrb_read(&named, buf, sizeof(buf), &len));
	}
	if (!queue) {
		/* "e" holds the full ring back past its timeout: evicted. */
		for (int tries = 0; tries < 40; tries++) {
			while (mrb_write(&ring, msg, 100) == 0) {
			}
			usleep(2000);
		}
		TRY(mrb_close(&named));
		TRY(mrb_close(&evicted));
	}
	TRY(mrb_read(&tap, buf, sizeof(buf), &len));
	/* The tap's handle stays open (its entry live, validating_readers 1)
	 * in the copy taken now. */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, templates[queue], FILE_SIZE, 0) != FILE_SIZE)
		abort();
	close(fd);
	TRY(mrb_close(&tap));
	TRY(mrb_close(&ring));
}

static void patch(uint8_t *base, uint32_t where, uint32_t value)
{
	uint32_t region = where >> 30, off = where & 0x3fffffff;
	size_t at;
	switch (region) {
	case 0:
		at = TABLE_OFFSET + off % TABLE_SIZE;
		break;
	case 1:
		at = 0x80 + off % (HOT_SIZE - 0x80);
		break;
	case 2:
		at = MRB_HEADER_SIZE + off % CAPACITY;
		break;
	default:
		at = off % FILE_SIZE;
		break;
	}
	at &= ~(size_t)3;
	/* A hostile peer writes whole words, as the shared atomics are. */
	__atomic_store_n((uint32_t *)(void *)(base + at), value, __ATOMIC_RELAXED);
}

static int on_message(void *ctx, const void *p, size_t len)
{
	(void)ctx;
	const uint8_t *b = p;
	if (len == 0 || len > CAPACITY / 2)
		abort();
	/* A validating subscriber's copy is in its own buffer; a durable
	 * one's message is in the mapping. */
	if (b >= lo && b < hi && b + len > hi)
		abort();
	return 0;
}

static void reads(struct mrb_ring *sub, unsigned how)
{
	static uint8_t buf[CAPACITY];
	size_t len, lengths[8];
	uint64_t positions[8];
	struct mrb_view view;
	for (int i = 0; i < 32; i++) {
		int rc;
		switch ((how + (unsigned)i) % 4) {
		case 0:
			rc = mrb_read(sub, buf, sizeof(buf), &len);
			if (rc == 0 && (len == 0 || len > CAPACITY / 2))
				abort();
			break;
		case 1: {
			int64_t n = mrb_read_many_at(sub, buf, sizeof(buf), lengths, positions, 8);
			for (int64_t k = 0; k < n; k++)
				if (lengths[k] == 0 || lengths[k] > CAPACITY / 2)
					abort();
			rc = n > 0 ? 0 : (int)n;
			break;
		}
		case 2:
			rc = (int)mrb_read_batch(sub, on_message, NULL, 4);
			break;
		default:
			rc = mrb_peek(sub, &view);
			if (rc == 0) {
				/* In the ring, or (a durable subscriber's backlog) a
				 * validated copy in the handle's buffer, which ASan
				 * checks as the bytes are read here. */
				const uint8_t *b = view.data;
				if (view.len == 0 || view.len > CAPACITY / 2 ||
				    (b >= lo && b < hi && b + view.len > hi))
					abort();
				volatile uint8_t sum = 0;
				for (size_t k = 0; k < view.len; k++)
					sum ^= b[k];
				(void)sum;
				rc = mrb_release(sub, &view);
			}
			break;
		}
		if (rc == MRB_ECLOSED || rc == MRB_EFORKED)
			abort();
		if (rc == MRB_EEMPTY && i > 8)
			break;
	}
	mrb_read_wait(sub, buf, sizeof(buf), &len, 0);
	mrb_wait_readable(sub, 0);
	mrb_read_len(sub, buf, sizeof(buf));
}

static void list(struct mrb_ring *ring)
{
	struct mrb_subscriber_info info[MRB_MAX_SUBSCRIBERS + 1];
	memset(info, 0x5a, sizeof(info));
	int64_t n = mrb_subscribers(ring, info, MRB_MAX_SUBSCRIBERS);
	if (n > MRB_MAX_SUBSCRIBERS)
		abort();
	for (int64_t i = 0; i < n; i++) {
		if (memchr(info[i].name, 0, sizeof(info[i].name)) == NULL ||
		    info[i].index >= MRB_MAX_SUBSCRIBERS)
			abort();
	}
	/* Nothing written past max. */
	if (info[MRB_MAX_SUBSCRIBERS].index != 0x5a5a5a5a)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	if (fd < 0) {
		const char *dir = getenv("FUZZ_RING_DIR");
		snprintf(path, sizeof(path), "%s/fuzz-sub-%d", dir != NULL ? dir : "/tmp",
		         (int)getpid());
		build_template(0);
		build_template(1);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			abort();
	}
	if (size < 2)
		return 0;
	unsigned flags = data[0];
	int queue = flags & 1;
	size_t patches = (size - 2) / 8;
	if (patches > MAX_PATCHES)
		patches = MAX_PATCHES;
	size_t pre = data[1] < patches ? data[1] : patches;
	static uint8_t file[FILE_SIZE];
	memcpy(file, templates[queue], FILE_SIZE);
	for (size_t i = 0; i < pre; i++) {
		uint32_t p[2];
		memcpy(p, data + 2 + 8 * i, sizeof(p));
		patch(file, p[0], p[1]);
	}
	if (ftruncate(fd, FILE_SIZE) != 0 || pwrite(fd, file, FILE_SIZE, 0) != FILE_SIZE)
		abort();

	struct mrb_ring ring;
	if (mrb_open(&ring, path, 0) != 0)
		return 0;
	lo = mrb__test_mapping(&ring);
	hi = lo + FILE_SIZE;
	list(&ring);
	mrb_is_fanout(&ring);

	static const char *const names[4] = {"a", "b", "e", NULL};
	unsigned options = (flags >> 1) & 7;
	struct mrb_subscribe_options opts = {0, names[(flags >> 4) & 3], 0};
	if (options & 1)
		opts.flags |= MRB_SUBSCRIBE_LOSSY;
	if (options & 2) {
		opts.flags |= MRB_SUBSCRIBE_EVICT;
		opts.evict_after_ns = 1000;
	}
	if (options & 4)
		opts.flags |= MRB_SUBSCRIBE_FROM_OLDEST;
	struct mrb_ring sub;
	if (mrb_subscribe(&sub, path, &opts) == 0) {
		/* The peer's pokes land in the live mapping. */
		uint8_t *live = mrb__test_mapping(&sub);
		/* Views and batches point into the subscriber's own mapping. */
		lo = live;
		hi = live + FILE_SIZE;
		for (size_t i = pre; i < patches; i++) {
			uint32_t p[2];
			memcpy(p, data + 2 + 8 * i, sizeof(p));
			patch(live, p[0], p[1]);
		}
		reads(&sub, flags >> 6);
		struct mrb_subscriber_info self;
		if (mrb_subscriber_info(&sub, &self) == 0 &&
		    memchr(self.name, 0, sizeof(self.name)) == NULL)
			abort();
		uint8_t msg[100] = {9};
		mrb_write(&sub, msg, 48);
		mrb_write(&ring, msg, 100);
		reads(&sub, (flags >> 6) + 1);
		list(&ring);
		if (mrb_close(&sub) != 0)
			abort();
	}
	uint8_t msg[64] = {1};
	for (int i = 0; i < 40 && mrb_write(&ring, msg, sizeof(msg)) == 0; i++) {
	}
	struct mrb_stats st;
	mrb_stats(&ring, &st);
	list(&ring);
	if (mrb_close(&ring) != 0)
		abort();
	mrb_unsubscribe(path, "a");
	mrb_unsubscribe(path, "e");
	return 0;
}
