/* SPDX-License-Identifier: MIT */
/*
 * Description: hostile shared memory. Builds valid rings (empty; with
 * messages; wrapped with padding and partly consumed; with an open
 * reservation and an aborted record), then mutates every header field
 * (identity, geometry, salt, positions, consumer owner, counters, futex and
 * waiter words, producer slots, reserved bytes) and every record word
 * (control: lengths huge/zero/unaligned/at the limits, BUSY/PAD bits, pids;
 * stamps: zero, other positions' stamps, bit flips) in many ways: each bit
 * flipped, boundary values, values relative to the original and the
 * capacity, random values. Each mutant is hit twice: written to a file and
 * opened, and written into a live mapping under an open consumer. Every API
 * call must return a valid code and never crash, hang (a per-case watchdog)
 * or touch memory outside the mapping (guard regions around every mapping,
 * plus ASan/UBSan under --config=asan). Delivered messages must lie inside
 * the mapping and respect max_message_size.
 * Usage: hostile_mutation [random_values_per_field]
 */
#include "ring_bytes.h"
#include "rtest.h"

#define CAPACITY  1024
#define FILE_SIZE (MRB_HEADER_SIZE + CAPACITY)

static uint8_t base[FILE_SIZE];
static const char *mutant_path;
static const char *base_path;
static char case_name[160];
static uint64_t cases, opened_ok, delivered;

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL: hang on mutation case ";
	ssize_t ignored = write(2, msg, sizeof(msg) - 1);
	ignored = write(2, case_name, strlen(case_name));
	ignored = write(2, "\n", 1);
	(void)ignored;
	_exit(1);
}

static int valid_code(int64_t rc)
{
	if (rc >= 0)
		return 1;
	if (rc <= MRB_EFULL && rc >= MRB_ESTALE)
		return 1;
	return rc > -4096; /* -errno */
}

#define CHECK_CODE(expr)                                                                           \
	do {                                                                                       \
		int64_t rc_ = (expr);                                                              \
		if (!valid_code(rc_))                                                              \
			FAIL("%s: %s returned %" PRId64, case_name, #expr, rc_);                   \
		CHECK(mrb_strerror((int)rc_) != NULL);                                             \
	} while (0)

struct bounds {
	const uint8_t *lo, *hi;
	uint64_t max_message;
};
static struct bounds cur;

static void check_span(const void *data, size_t len, const char *what)
{
	const uint8_t *p = data;
	if (len > cur.max_message)
		FAIL("%s: %s delivered %zu bytes > max_message_size", case_name, what, len);
	if (p < cur.lo || p + len > cur.hi)
		FAIL("%s: %s points outside the mapping", case_name, what);
	delivered++;
}

static int on_message(void *ctx, const void *data, size_t len)
{
	(void)ctx;
	check_span(data, len, "read_batch");
	return 0;
}

static int on_record(void *ctx, const struct mrb_record_info *rec)
{
	(void)ctx;
	CHECK(rec->state <= MRB_RECORD_UNWRITTEN);
	if (rec->state != MRB_RECORD_UNWRITTEN) {
		const uint8_t *p = rec->data;
		if (p < cur.lo || p + rec->length > cur.hi)
			FAIL("%s: inspect record outside the mapping", case_name);
	}
	return 0;
}

/* Proves the guard regions are in place: the pages right before and after
 * the mapping are inaccessible (/proc/self/maps shows "---p"). */
static void check_guarded(const uint8_t *lo, const uint8_t *hi)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	CHECK(maps != NULL);
	char line[512];
	int before = 0, after = 0;
	while (fgets(line, sizeof(line), maps) != NULL) {
		uintptr_t start, end;
		char perms[8];
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &start, &end, perms) != 3)
			continue;
		if (strcmp(perms, "---p") != 0)
			continue;
		before |= start <= (uintptr_t)lo - 1 && (uintptr_t)lo - 1 < end;
		after |= start <= (uintptr_t)hi + 4095 && (uintptr_t)hi + 4095 < end;
	}
	fclose(maps);
	if (!before || !after)
		FAIL("no guard pages around the mapping: is guarded_mmap linked with --wrap?");
}

/* Every API a reader, writer or tool would call on a suspicious ring. */
static void exercise(struct mrb_ring *ring)
{
	cur.lo = ring_base(ring);
	cur.hi = cur.lo + FILE_SIZE;
	static int guard_checked;
	if (!guard_checked++)
		check_guarded(cur.lo, cur.hi);
	cur.max_message = mrb_max_message_size(ring);
	CHECK(cur.max_message == CAPACITY / 2);
	struct mrb_stats st;
	CHECK_CODE(mrb_stats(ring, &st));
	CHECK_CODE(mrb_inspect(ring, on_record, NULL, 0));
	struct mrb_view view;
	int rc = mrb_peek(ring, &view);
	CHECK_CODE(rc);
	if (rc == 0) {
		check_span(view.data, view.len, "peek");
		CHECK_CODE(mrb_release(ring, &view));
		CHECK_CODE(mrb_release(ring, &view));
	}
	uint8_t buf[CAPACITY];
	size_t len, lengths[8];
	for (int i = 0; i < 4; i++) {
		rc = mrb_read(ring, buf, sizeof(buf), &len);
		CHECK_CODE(rc);
		if (rc == 0 && len > cur.max_message)
			FAIL("%s: read %zu bytes", case_name, len);
	}
	int64_t n = mrb_read_many(ring, buf, sizeof(buf), lengths, 8);
	CHECK_CODE(n);
	for (int64_t i = 0; i < n; i++)
		CHECK(lengths[i] <= cur.max_message);
	CHECK_CODE(mrb_read_batch(ring, on_message, NULL, 0));
	CHECK_CODE(mrb_read_wait(ring, buf, sizeof(buf), &len, 0));
	CHECK_CODE(mrb_wait_readable(ring, 0));
	CHECK_CODE(mrb_recover(ring, -1));
	CHECK_CODE(mrb_recover(ring, 0));
	for (int i = 0; i < 64; i++) {
		rc = mrb_read(ring, buf, sizeof(buf), &len);
		CHECK_CODE(rc);
		if (rc != 0)
			break;
	}
	CHECK_CODE(mrb_write(ring, "hostile", 7));
	CHECK_CODE(mrb_write_wait(ring, buf, 300, 0));
	CHECK_CODE(mrb_wait_writable(ring, 100, 0));
	struct mrb_iovec iov[2] = {{"a", 1}, {buf, 200}};
	CHECK_CODE(mrb_write_batch(ring, iov, 2));
	struct mrb_reservation res;
	rc = mrb_reserve(ring, 40, &res);
	CHECK_CODE(rc);
	if (rc == 0) {
		CHECK((const uint8_t *)res.data >= cur.lo &&
		      (const uint8_t *)res.data + 40 <= cur.hi);
		memset(res.data, 0x5a, 40);
		CHECK_CODE(mrb_commit(ring, &res));
	}
	CHECK_CODE(mrb_inspect(ring, on_record, NULL, 0));
	rc = mrb_peek(ring, &view);
	CHECK_CODE(rc);
	if (rc == 0)
		check_span(view.data, view.len, "peek");
	CHECK_CODE(mrb_stats(ring, &st));
}

/* Overwritten in place, never truncated: truncate-and-rewrite makes ext4
 * flush each file to disk (auto_da_alloc), which costs a disk write per case. */
static void write_mutant(const uint8_t *image)
{
	int fd = open(mutant_path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, image, FILE_SIZE, 0) == FILE_SIZE);
	close(fd);
}

/* Mode 1: the mutant is a file on disk; open validates it. */
static void run_file_case(const uint8_t *image)
{
	write_mutant(image);
	struct mrb_ring ring;
	int rc = mrb_open(&ring, mutant_path, 0);
	CHECK_CODE(rc);
	if (rc == 0) {
		opened_ok++;
		exercise(&ring);
		CHECK_RC(mrb_close(&ring), 0);
	} else {
		CHECK_RC(mrb_close(&ring), MRB_ECLOSED);
	}
}

/* Mode 2: a peer scribbles on the live mapping of an attached consumer. */
static void run_live_case(size_t offset, const uint8_t *bytes, size_t width)
{
	write_mutant(base);
	struct mrb_ring ring;
	int rc = mrb_open(&ring, mutant_path, 0);
	CHECK_RC(rc, 0);
	struct mrb_stats st;
	CHECK_RC(mrb_stats(&ring, &st), 0);
	rc = mrb_wait_readable(&ring, 0); /* attach as consumer */
	CHECK(rc == 0 || rc == MRB_ETIMEDOUT || rc == MRB_ECONSUMER_BUSY);
	memcpy(ring_base(&ring) + offset, bytes, width);
	exercise(&ring);
	CHECK_RC(mrb_close(&ring), 0);
}

static void run_case(size_t offset, uint64_t value, size_t width, const char *field,
                     const char *how)
{
	snprintf(case_name, sizeof(case_name), "%s@0x%zx %s = 0x%" PRIx64, field, offset, how,
	         value);
	alarm(10);
	static uint8_t image[FILE_SIZE];
	memcpy(image, base, FILE_SIZE);
	memcpy(image + offset, &value, width);
	run_file_case(image);
	run_live_case(offset, image + offset, width);
	alarm(0);
	cases++;
}

static uint64_t original(size_t offset, size_t width)
{
	uint64_t v = 0;
	memcpy(&v, base + offset, width);
	return v;
}

static void mutate_field(size_t offset, size_t width, const char *field, int randoms)
{
	uint64_t orig = original(offset, width);
	uint64_t mask = width == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * width)) - 1;
	for (size_t bit = 0; bit < 8 * width; bit++)
		run_case(offset, orig ^ (UINT64_C(1) << bit), width, field, "bit flip");
	const uint64_t special[] = {0,
	                            1,
	                            2,
	                            8,
	                            15,
	                            16,
	                            17,
	                            UINT64_MAX,
	                            UINT64_MAX - 15,
	                            INT64_MAX,
	                            (uint64_t)INT64_MIN,
	                            0xffffffffu,
	                            0x80000000u,
	                            CAPACITY - 16,
	                            CAPACITY,
	                            CAPACITY + 16,
	                            2 * CAPACITY,
	                            CAPACITY / 2,
	                            CAPACITY / 2 + 1,
	                            MRB_MAX_CAPACITY,
	                            MRB_MAX_CAPACITY + 1,
	                            (uint64_t)getpid(),
	                            4194303,
	                            4194304};
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		run_case(offset, special[i] & mask, width, field, "boundary");
	const int64_t deltas[] = {1,
	                          -1,
	                          8,
	                          -8,
	                          16,
	                          -16,
	                          CAPACITY,
	                          -CAPACITY,
	                          CAPACITY + 16,
	                          -(CAPACITY + 16),
	                          CAPACITY - 16,
	                          2 * CAPACITY};
	for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++)
		run_case(offset, (orig + (uint64_t)deltas[i]) & mask, width, field, "relative");
	for (int i = 0; i < randoms; i++)
		run_case(offset, rnd() & mask, width, field, "random");
}

/* Control words that mean something: each length class with each flag. */
static void mutate_control(size_t offset, uint64_t pos, const char *field)
{
	uint64_t orig = original(offset, 8);
	const uint64_t lengths[] = {0,
	                            1,
	                            7,
	                            15,
	                            16,
	                            CAPACITY / 2,
	                            CAPACITY / 2 + 1,
	                            CAPACITY - 16,
	                            CAPACITY,
	                            CAPACITY + 1,
	                            CONTROL_LENGTH_MASK,
	                            CAPACITY - (pos % CAPACITY),
	                            CAPACITY - (pos % CAPACITY) - 16};
	/* Writer fields: slot | generation << 7, own slot and foreign ones. */
	const uint64_t writers[] = {0, 1, 127, 127 | (CONTROL_GEN_MASK << 7), 3 | (5 << 7)};
	const uint64_t flags[] = {0, CONTROL_PAD, CONTROL_BUSY, CONTROL_PAD | CONTROL_BUSY};
	for (size_t l = 0; l < sizeof(lengths) / sizeof(lengths[0]); l++)
		for (size_t f = 0; f < 4; f++)
			for (size_t p = 0; p < sizeof(writers) / sizeof(writers[0]); p += 2)
				run_case(offset,
				         (lengths[l] & CONTROL_LENGTH_MASK) |
				             (writers[p] << CONTROL_SLOT_SHIFT) | flags[f],
				         8, field, "control");
	(void)orig;
}

static void mutate_stamp(size_t offset, uint64_t pos, uint64_t salt, const char *field)
{
	const uint64_t others[] = {pos - CAPACITY, pos + CAPACITY, pos + 16, pos - 16, pos + 1, 0};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		run_case(offset, others[i] ^ salt, 8, field, "other stamp");
	run_case(offset, 0, 8, field, "zero stamp");
}

static void save_base(struct mrb_ring *ring)
{
	CHECK_RC(mrb_close(ring), 0);
	int fd = open(base_path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(read(fd, base, FILE_SIZE) == FILE_SIZE);
	close(fd);
}

static uint64_t record_positions[64];
static size_t record_count;
static int collect(void *ctx, const struct mrb_record_info *rec)
{
	(void)ctx;
	if (record_count < 64)
		record_positions[record_count++] = rec->position;
	return 0;
}

static void build_base(int kind)
{
	struct mrb_ring ring;
	rtest_create(&ring, base_path, CAPACITY);
	uint8_t msg[400], buf[CAPACITY];
	size_t len;
	switch (kind) {
	case 0: /* empty */
		break;
	case 1: /* a few messages */
		for (int i = 0; i < 5; i++) {
			rtest_fill(msg, 10 + 50 * (size_t)i, (uint64_t)i);
			CHECK_RC(mrb_write(&ring, msg, 10 + 50 * (size_t)i), 0);
		}
		break;
	case 2: /* wrapped, with padding, partly consumed */
		for (int i = 0; i < 9; i++) {
			CHECK_RC(mrb_write(&ring, msg, 100), 0);
			CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
		}
		for (int i = 0; i < 3; i++)
			CHECK_RC(mrb_write(&ring, msg, 150), 0);
		CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
		break;
	default: { /* an open reservation of a live writer, an aborted one */
		struct mrb_reservation a, b;
		CHECK_RC(mrb_write(&ring, msg, 30), 0);
		CHECK_RC(mrb_reserve(&ring, 60, &a), 0);
		CHECK_RC(mrb_abort(&ring, &a), 0);
		CHECK_RC(mrb_write(&ring, msg, 20), 0);
		CHECK_RC(mrb_reserve(&ring, 80, &b), 0);
		CHECK_RC(mrb_write(&ring, msg, 40), 0);
		break;
	}
	}
	record_count = 0;
	CHECK_CODE(mrb_inspect(&ring, collect, NULL, 0));
	save_base(&ring);
}

int main(int argc, char **argv)
{
	int randoms = argc > 1 ? atoi(argv[1]) : 8;
	rtest_watchdog(3000);
	signal(SIGALRM, on_alarm);
	base_path = rtest_path("base");
	mutant_path = rtest_path("mutant");
	static const struct {
		size_t offset, width;
		const char *name;
	} fields[] = {
	    {OFF_MAGIC, 8, "magic"},
	    {OFF_FORMAT_VERSION, 4, "format_version"},
	    {OFF_HEADER_SIZE, 4, "header_size"},
	    {OFF_CAPACITY, 8, "capacity"},
	    {OFF_MAX_MESSAGE_SIZE, 8, "max_message_size"},
	    {OFF_STAMP_SALT, 8, "stamp_salt"},
	    {OFF_CREATED_UNIX_NS, 8, "created_unix_ns"},
	    {OFF_CREATOR_PID, 4, "creator_pid"},
	    {OFF_RECORD_HEADER_SIZE, 4, "record_header_size"},
	    {OFF_RECORD_ALIGNMENT, 4, "record_alignment"},
	    {OFF_FEATURE_FLAGS, 4, "feature_flags"},
	    {0x040, 8, "reserved0"},
	    {OFF_PRODUCER_POSITION, 8, "producer_position"},
	    {OFF_CONSUMER_POSITION_CACHE, 8, "consumer_position_cache"},
	    {OFF_CONSUMER_POSITION, 8, "consumer_position"},
	    {OFF_CONSUMER_OWNER, 8, "consumer_owner"},
	    {OFF_CONSUMER_OWNER, 4, "consumer_owner.pid"},
	    {OFF_MESSAGES_READ, 8, "messages_read"},
	    {OFF_BYTES_READ, 8, "bytes_read"},
	    {OFF_DATA_SEQ, 4, "data_seq"},
	    {OFF_DATA_WAITERS, 4, "data_waiters"},
	    {OFF_SPACE_SEQ, 4, "space_seq"},
	    {OFF_SPACE_WAITERS, 4, "space_waiters"},
	    {OFF_RECOVERED_RECORDS, 8, "recovered_records"},
	    {OFF_RECOVERED_BYTES, 8, "recovered_bytes"},
	    {OFF_PRODUCER_SLOTS_USED, 4, "producer_slots_used"},
	    {OFF_CONSUMER_START_TIME, 8, "consumer_start_time"},
	    {OFF_CONSUMER_PID_NS, 8, "consumer_pid_ns"},
	    {OFF_SKIPPED_LIVE, 8, "skipped_live"},
	    {0x400, 8, "reserved1"},
	    {OFF_PRODUCERS + SLOT_OWNER, 8, "producers[0].owner"},
	    {OFF_PRODUCERS + SLOT_OWNER, 4, "producers[0].owner.pid"},
	    {OFF_PRODUCERS + SLOT_START_TIME, 8, "producers[0].owner_start_time"},
	    {OFF_PRODUCERS + SLOT_PID_NS, 8, "producers[0].owner_pid_ns"},
	    {OFF_PRODUCERS + SLOT_IDENTITY_GEN, 4, "producers[0].identity_gen"},
	    {OFF_PRODUCERS + SLOT_SPACE_WAITING, 4, "producers[0].space_waiting"},
	    {OFF_PRODUCERS + SLOT_FULL, 8, "producers[0].full"},
	    {OFF_PRODUCERS + SLOT_LANES, 8, "producers[0].lanes[0].claiming"},
	    {OFF_PRODUCERS + SLOT_LANES + 8, 8, "producers[0].lanes[0].claim_end"},
	    {OFF_PRODUCERS + SLOT_LANES + 11 * LANE_SIZE, 8, "producers[0].lanes[11].claiming"},
	    {OFF_PRODUCERS + PRODUCER_SLOT_SIZE + SLOT_LANES, 8, "producers[1].lanes[0].claiming"},
	    {OFF_PRODUCERS + PRODUCER_SLOT_SIZE + SLOT_LANES + 8, 8,
	     "producers[1].lanes[0].claim_end"},
	    {OFF_PRODUCERS + 127 * PRODUCER_SLOT_SIZE, 8, "producers[127].owner"},
	};
	for (int kind = 0; kind < 4; kind++) {
		build_base(kind);
		uint64_t salt = original(OFF_STAMP_SALT, 8);
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
			mutate_field(fields[f].offset, fields[f].width, fields[f].name, randoms);
		/* Every record header of the base, and the words at a few
		 * other aligned offsets (stale or payload bytes). */
		for (size_t r = 0; r < record_count; r++) {
			uint64_t pos = record_positions[r];
			size_t off = MRB_HEADER_SIZE + (size_t)(pos % CAPACITY);
			mutate_control(off, pos, "record.control");
			mutate_field(off, 8, "record.control", randoms);
			mutate_stamp(off + 8, pos, salt, "record.stamp");
			mutate_field(off + 8, 8, "record.stamp", 2);
			mutate_field(off + 16, 1, "record.payload", 2);
		}
		uint64_t tail = original(OFF_PRODUCER_POSITION, 8);
		for (int i = 0; i < 4; i++) {
			uint64_t pos = tail + 16 * (rnd() % (CAPACITY / 16));
			size_t off = MRB_HEADER_SIZE + (size_t)(pos % CAPACITY);
			mutate_control(off, pos, "data.control");
			mutate_stamp(off + 8, pos, salt, "data.stamp");
		}
	}
	printf("%" PRIu64 " mutants x 2 modes; %" PRIu64 " files still opened; %" PRIu64
	       " messages delivered, all within bounds\n",
	       cases, opened_ok, delivered);
	return 0;
}
