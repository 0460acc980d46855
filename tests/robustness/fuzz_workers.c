/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the worker groups (docs/FORMAT.md section 9): the
 * group table, the groups and the worker slots (0xe000-0xffff) under
 * hostile patches, as fuzz_subscribers.c does for the reader table. The
 * template is a fan-out ring with messages, an at-least-once group "g" whose
 * worker closed, an at-most-once group "h" with a hold timeout whose worker
 * held a run when the copy was taken (a live owner: this process; rescued
 * after its timeout), a durable subscriber "s" and unread data. Input:
 *   byte 0   bits 0-1: the group joined ("g", "h", "n" new, "g" with
 *            opts that differ); bit 2: at-most-once for a new group;
 *            bit 3: a hold timeout for a new group; bit 4: a second worker
 *            joins (a rescuer); bits 5-7: how they read
 *   byte 1   how many of the patches are applied before the ring is opened
 *            (the rest are pokes of a hostile peer after the workers joined)
 *   then     patches of 8 bytes: u32 where, u32 value. The top 2 bits of
 *            `where` pick a region (group table, groups and worker slots;
 *            the header's hot fields and the reader table; the data;
 *            anywhere) and the rest an offset in it.
 * Every worker call runs: mrb_worker_groups, mrb_workers, mrb_worker_join,
 * mrb_read, mrb_read_many, mrb_read_wait, mrb_wait_readable, mrb_read_len,
 * mrb_worker_ack, mrb_worker_group_remove (with a worker in the group and
 * after), writes, close. Nothing may crash, leave the mapping
 * (guard regions, guarded_mmap.c), trip a sanitizer, hang or spin
 * (-timeout). Run by fuzz_test.sh (fuzz_workers_test).
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

#define CAPACITY      1024
#define FILE_SIZE     (MRB_HEADER_SIZE + CAPACITY)
#define WORKERS_START 0xe000
#define WORKERS_SIZE  (MRB_HEADER_SIZE - WORKERS_START)
#define HOT_START     0x80
#define MAX_PATCHES   64

static uint8_t template[FILE_SIZE];
static char path[512];

static void die(const char *what, int rc)
{
	fprintf(stderr, "fuzz_workers: template: %s: %s\n", what, mrb_strerror(rc));
	abort();
}

#define TRY(expr)                                                                                  \
	do {                                                                                       \
		int64_t rc_ = (expr);                                                              \
		if (rc_ < 0)                                                                       \
			die(#expr, (int)rc_);                                                      \
	} while (0)

static void build_template(void)
{
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                  .mode = 0600};
	struct mrb_ring ring, g, h, sub;
	TRY(mrb_create(&ring, path, CAPACITY, &opts));
	struct mrb_worker_options most = {MRB_AT_MOST_ONCE, 1000000};
	TRY(mrb_worker_join(&g, path, "g", NULL));
	TRY(mrb_worker_join(&h, path, "h", &most));
	struct mrb_subscribe_options s = {0, "s", 0};
	TRY(mrb_subscribe(&sub, path, &s));
	uint8_t msg[200];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 13 + 1);
	uint8_t buf[CAPACITY];
	size_t len, lengths[4];
	for (int i = 0; i < 6; i++) {
		TRY(mrb_write(&ring, msg, 20 + (size_t)i * 20));
		if (i < 3) {
			TRY(mrb_read(&g, buf, sizeof(buf), &len));
			TRY(mrb_read(&sub, buf, sizeof(buf), &len));
		}
	}
	TRY(mrb_worker_ack(&g));
	TRY(mrb_close(&g));
	/* "h" holds a run of two in the copy taken now. */
	TRY(mrb_read_many(&h, buf, sizeof(buf), lengths, 2));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, template, FILE_SIZE, 0) != FILE_SIZE)
		abort();
	close(fd);
	TRY(mrb_close(&h));
	TRY(mrb_close(&sub));
	TRY(mrb_close(&ring));
}

static void patch(uint8_t *base, uint32_t where, uint32_t value)
{
	uint32_t region = where >> 30, off = where & 0x3fffffff;
	size_t at;
	switch (region) {
	case 0:
		at = WORKERS_START + off % WORKERS_SIZE;
		break;
	case 1:
		at = HOT_START + off % (WORKERS_START - HOT_START);
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

/* Returns whether a call found the group's state corrupt: a hostile claim
 * position a lap behind costs each later read call 100 000 retries (bounded,
 * then MRB_ECORRUPT; see take() in workers.c), so the caller stops reading
 * to keep the fuzzer's throughput. */
static int reads(struct mrb_ring *w, unsigned how)
{
	int corrupt = 0;
	static uint8_t buf[CAPACITY];
	size_t len, lengths[8];
	for (int i = 0; i < 24; i++) {
		int rc;
		switch ((how + (unsigned)i) % 4) {
		case 0:
			rc = mrb_read(w, buf, sizeof(buf), &len);
			if (rc == 0 && len > CAPACITY)
				abort();
			break;
		case 1: {
			int64_t n = mrb_read_many(w, buf, sizeof(buf), lengths, 8);
			if (n > 8)
				abort();
			size_t total = 0;
			for (int64_t k = 0; k < n; k++)
				total += lengths[k];
			if (n > 0 && total > sizeof(buf))
				abort();
			rc = n > 0 ? 0 : (int)n;
			break;
		}
		case 2:
			rc = mrb_worker_ack(w);
			break;
		default:
			rc = mrb_read_wait(w, buf, sizeof(buf), &len, 0);
			if (rc == 0 && len > CAPACITY)
				abort();
			break;
		}
		if (rc == MRB_ECLOSED || rc == MRB_EFORKED)
			abort();
		if (rc == MRB_ECORRUPT) {
			corrupt = 1;
			break;
		}
		if (rc == MRB_EEMPTY && i > 8)
			break;
	}
	mrb_wait_readable(w, 0);
	mrb_read_len(w, buf, sizeof(buf));
	mrb_worker_ack(w);
	/* The doorbell: arming over hostile slots and counts (a later write
	 * rings whatever names the patched words hold). */
	int timeout_ms = -1;
	int armed = mrb_arm_read(w, &timeout_ms);
	if (armed == 0 && (timeout_ms < 1 || timeout_ms > 100))
		abort();
	if (armed == MRB_ECLOSED || armed == MRB_EFORKED)
		abort();
	if (mrb_disarm(w, MRB_DOORBELL_READ) != 0)
		abort();
	return corrupt;
}

static void list(struct mrb_ring *ring)
{
	struct mrb_group_info groups[MRB_MAX_GROUPS + 1];
	memset(groups, 0x5a, sizeof(groups));
	int64_t n = mrb_worker_groups(ring, groups, MRB_MAX_GROUPS);
	if (n > MRB_MAX_GROUPS)
		abort();
	for (int64_t i = 0; i < n && i < MRB_MAX_GROUPS; i++)
		if (memchr(groups[i].name, 0, sizeof(groups[i].name)) == NULL ||
		    groups[i].index >= MRB_MAX_GROUPS)
			abort();
	if (groups[MRB_MAX_GROUPS].index != 0x5a5a5a5a)
		abort();
	struct mrb_worker_info workers[MRB_MAX_WORKERS + 1];
	memset(workers, 0x5a, sizeof(workers));
	n = mrb_workers(ring, workers, MRB_MAX_WORKERS);
	if (n > MRB_MAX_WORKERS)
		abort();
	for (int64_t i = 0; i < n && i < MRB_MAX_WORKERS; i++)
		if (workers[i].index >= MRB_MAX_WORKERS)
			abort();
	if (workers[MRB_MAX_WORKERS].index != 0x5a5a5a5a)
		abort();
	/* A short buffer: nothing written past it. */
	memset(workers, 0x5a, sizeof(workers));
	mrb_workers(ring, workers, 1);
	if (workers[1].index != 0x5a5a5a5a)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	if (fd < 0) {
		const char *dir = getenv("FUZZ_RING_DIR");
		snprintf(path, sizeof(path), "%s/fuzz-workers-%d", dir != NULL ? dir : "/tmp",
		         (int)getpid());
		build_template();
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			abort();
	}
	if (size < 2)
		return 0;
	unsigned flags = data[0];
	size_t patches = (size - 2) / 8;
	if (patches > MAX_PATCHES)
		patches = MAX_PATCHES;
	size_t pre = data[1] < patches ? data[1] : patches;
	static uint8_t file[FILE_SIZE];
	memcpy(file, template, FILE_SIZE);
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
	list(&ring);

	static const char *const names[4] = {"g", "h", "n", "g"};
	const char *name = names[flags & 3];
	struct mrb_worker_options opts = {(flags >> 2) & 1, (flags & 8) ? 1000 : 0};
	const struct mrb_worker_options *o = NULL;
	if ((flags & 3) == 2 || (flags & 3) == 3)
		o = &opts;
	struct mrb_ring w, w2;
	int joined2 = 0;
	if (mrb_worker_join(&w, path, name, o) == 0) {
		if ((flags & 16) && mrb_worker_join(&w2, path, name, NULL) == 0)
			joined2 = 1;
		/* The peer's pokes land in the live mapping. */
		uint8_t *live = mrb__test_mapping(&w);
		for (size_t i = pre; i < patches; i++) {
			uint32_t p[2];
			memcpy(p, data + 2 + 8 * i, sizeof(p));
			patch(live, p[0], p[1]);
		}
		int corrupt = reads(&w, flags >> 5);
		if (joined2 && !corrupt)
			corrupt = reads(&w2, (flags >> 5) + 1);
		uint8_t msg[100] = {9};
		mrb_write(&w, msg, 48);
		mrb_write(&ring, msg, 100);
		if (!corrupt)
			reads(&w, (flags >> 5) + 2);
		list(&w);
		mrb_worker_group_remove(path, name);
		if (joined2 && mrb_close(&w2) != 0)
			abort();
		if (mrb_close(&w) != 0)
			abort();
		mrb_worker_group_remove(path, name);
	}
	uint8_t msg[64] = {1};
	for (int i = 0; i < 40 && mrb_write(&ring, msg, sizeof(msg)) == 0; i++) {
	}
	struct mrb_stats st;
	mrb_stats(&ring, &st);
	list(&ring);
	if (mrb_close(&ring) != 0)
		abort();
	return 0;
}
