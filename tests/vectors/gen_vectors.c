/* SPDX-License-Identifier: MIT */
/*
 * Writes the golden ring files of tests/vectors/ (see README.md there) into a
 * directory: for each vector NAME, NAME.ring (made by the C library, with its
 * random and time-dependent fields fixed by mrb__test_set_identity) and
 * NAME.json (what a reader must get from it).
 *
 *   gen_vectors OUTDIR
 *
 * The committed files must equal what this program writes today: the
 * vectors_regenerate test compares them byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mrb/mrb.h"
#include "mrb_testing.h"

/* The fixed identity of every vector. */
#define VECTOR_SALT       0x5eed5eed5eed5eedull  /* odd */
#define VECTOR_CREATED_NS 1767225600000000000ull /* 2026-01-01T00:00:00Z */
#define VECTOR_PID        4242u

#define MAX_MESSAGES 16
#define MAX_MESSAGE  1024

/* A vector being built: the ring, and the messages still unread in it. */
struct vector {
	const char *name;
	const char *description;
	struct mrb_ring ring;
	uint64_t capacity;
	size_t unread;
	size_t lengths[MAX_MESSAGES];
	unsigned char messages[MAX_MESSAGES][MAX_MESSAGE];
};

static void fail(const char *what, const char *name, int rc)
{
	fprintf(stderr, "gen_vectors: %s: %s: %s\n", name, what, mrb_strerror(rc));
	exit(1);
}

static void begin(struct vector *v, const char *dir, const char *name, uint64_t capacity,
                  const char *description)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.ring", dir, name);
	memset(v, 0, sizeof(*v));
	v->name = name;
	v->description = description;
	v->capacity = capacity;
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE, .mode = 0644};
	int rc = mrb_create(&v->ring, path, capacity, &opts);
	if (rc != 0)
		fail("create", name, rc);
	rc = mrb__test_set_identity(&v->ring, VECTOR_SALT, VECTOR_CREATED_NS, VECTOR_PID);
	if (rc != 0)
		fail("set identity", name, rc);
}

static void put(struct vector *v, const void *data, size_t len)
{
	int rc = mrb_write(&v->ring, data, len);
	if (rc != 0)
		fail("write", v->name, rc);
	if (v->unread == MAX_MESSAGES || len > MAX_MESSAGE)
		fail("too many messages for the generator", v->name, MRB_EINVAL);
	memcpy(v->messages[v->unread], data, len);
	v->lengths[v->unread++] = len;
}

static void put_text(struct vector *v, const char *text)
{
	put(v, text, strlen(text));
}

/* Consumes the oldest message, checking it is the one expected. */
static void take(struct vector *v)
{
	unsigned char buf[MAX_MESSAGE];
	size_t len;
	int rc = mrb_read(&v->ring, buf, sizeof(buf), &len);
	if (rc != 0)
		fail("read", v->name, rc);
	if (v->unread == 0 || len != v->lengths[0] || memcmp(buf, v->messages[0], len) != 0)
		fail("read returned an unexpected message", v->name, MRB_ECORRUPT);
	v->unread--;
	memmove(v->lengths, v->lengths + 1, v->unread * sizeof(v->lengths[0]));
	memmove(v->messages, v->messages + 1, v->unread * sizeof(v->messages[0]));
}

/* `extra`: more fields, each line ending in a comma, before "messages". */
static void write_description_extra(const struct vector *v, const char *dir, const char *error,
                                    const char *extra)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.json", dir, v->name);
	FILE *out = fopen(path, "w");
	if (out == NULL) {
		fprintf(stderr, "gen_vectors: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fprintf(out, "{\n");
	fprintf(out, "  \"file\": \"%s.ring\",\n", v->name);
	fprintf(out, "  \"description\": \"%s\",\n", v->description);
	fprintf(out, "  \"capacity\": %llu,\n", (unsigned long long)v->capacity);
	if (error != NULL)
		fprintf(out, "  \"open_error\": \"%s\",\n", error);
	else
		fprintf(out, "  \"open_error\": null,\n");
	if (extra != NULL)
		fputs(extra, out);
	fprintf(out, "  \"messages\": [");
	for (size_t i = 0; error == NULL && i < v->unread; i++) {
		fprintf(out, "%s\n    \"", i == 0 ? "" : ",");
		for (size_t j = 0; j < v->lengths[i]; j++)
			fprintf(out, "%02x", v->messages[i][j]);
		fprintf(out, "\"");
	}
	fprintf(out, "%s]\n}\n", error == NULL && v->unread > 0 ? "\n  " : "");
	if (fclose(out) != 0) {
		fprintf(stderr, "gen_vectors: %s: write failed\n", path);
		exit(1);
	}
}

static void write_description(const struct vector *v, const char *dir, const char *error)
{
	write_description_extra(v, dir, error, NULL);
}

static void finish(struct vector *v, const char *dir)
{
	int rc = mrb_close(&v->ring);
	if (rc != 0)
		fail("close", v->name, rc);
	write_description(v, dir, NULL);
}

struct record_walk {
	unsigned count;
	uint32_t states[8];
	uint64_t lengths[8];
};

static int remember_record(void *ctx, const struct mrb_record_info *rec)
{
	struct record_walk *walk = ctx;
	if (walk->count < 8) {
		walk->states[walk->count] = rec->state;
		walk->lengths[walk->count] = rec->length;
	}
	walk->count++;
	return 0;
}

static void gen_empty(const char *dir)
{
	struct vector v;
	begin(&v, dir, "empty", 256, "a new ring, nothing written");
	finish(&v, dir);
}

static void gen_few_messages(struct vector *v, const char *dir)
{
	begin(v, dir, "few_messages", 256, "three messages: 1 byte, text, 32 binary bytes");
	put_text(v, "a");
	put_text(v, "hello, ring");
	unsigned char binary[32];
	for (unsigned i = 0; i < sizeof(binary); i++)
		binary[i] = (unsigned char)(i * 8 + 1);
	put(v, binary, sizeof(binary));
	finish(v, dir);
}

/* 100 + 60 bytes (records 128 + 80) are written and read; the next 60-byte
 * record does not fit the 48 bytes left before the end, so its claim writes
 * a padding record there and the message starts the second lap. */
static void gen_wrapped_padding(const char *dir)
{
	struct vector v;
	begin(
	    &v, dir, "wrapped_padding", 256,
	    "second lap: a 48-byte padding record at offset 208, then two messages from offset 0");
	unsigned char fill[100];
	memset(fill, 'A', sizeof(fill));
	put(&v, fill, 100);
	memset(fill, 'B', sizeof(fill));
	put(&v, fill, 60);
	take(&v);
	take(&v);
	put_text(&v, "this message starts the second lap, after the padding....");
	put_text(&v, "and this one follows");
	struct record_walk walk = {0};
	int64_t visited = mrb_inspect(&v.ring, remember_record, &walk, 0);
	if (visited != 3 || walk.states[0] != MRB_RECORD_PADDING || walk.lengths[0] != 32 ||
	    walk.states[1] != MRB_RECORD_COMMITTED || walk.states[2] != MRB_RECORD_COMMITTED)
		fail("expected padding + 2 messages", v.name, MRB_ECORRUPT);
	finish(&v, dir);
}

static void gen_partly_consumed(const char *dir)
{
	struct vector v;
	begin(&v, dir, "partly_consumed", 256, "four messages written, the first two read");
	put_text(&v, "first, already read");
	put_text(&v, "second, already read");
	put_text(&v, "third, unread");
	put_text(&v, "fourth, unread");
	take(&v);
	take(&v);
	finish(&v, dir);
}

static void gen_max_message(const char *dir)
{
	struct vector v;
	begin(&v, dir, "max_message", 256, "one message of max_message_size (128) bytes");
	unsigned char big[128];
	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(255 - i);
	if (mrb_max_message_size(&v.ring) != sizeof(big))
		fail("unexpected max_message_size", v.name, MRB_EINVAL);
	put(&v, big, sizeof(big));
	finish(&v, dir);
}

/* Positions just below 2^32 that cross it: 64-bit positions, stamps and
 * masking must agree everywhere. */
static void gen_high_positions(const char *dir)
{
	struct vector v;
	begin(&v, dir, "high_positions", 256,
	      "positions start at 2^32 - 64; three messages cross 2^32");
	int rc = mrb__test_set_positions(&v.ring, (1ull << 32) - 64);
	if (rc != 0)
		fail("set positions", v.name, rc);
	put_text(&v, "below 2^32");
	put_text(&v, "straddling 2^32, a little longer");
	put_text(&v, "above 2^32");
	finish(&v, dir);
}

/* An aborted reservation between two messages: a padding record in the
 * middle of the stream, which readers skip. */
static void gen_aborted_reservation(const char *dir)
{
	struct vector v;
	begin(&v, dir, "aborted_reservation", 256,
	      "a message, a 40-byte reservation aborted into padding, a message");
	put_text(&v, "before the aborted reservation");
	struct mrb_reservation res;
	int rc = mrb_reserve(&v.ring, 40, &res);
	if (rc != 0)
		fail("reserve", v.name, rc);
	memset(res.data, 'X', 40);
	rc = mrb_abort(&v.ring, &res);
	if (rc != 0)
		fail("abort", v.name, rc);
	put_text(&v, "after it");
	finish(&v, dir);
}

/* A copy of few_messages with `value` (a little-endian u32) stored at
 * `offset`, which every reader must refuse with its version error. */
static void gen_patched(struct vector *few, const char *dir, const char *name,
                        const char *description, off_t offset, uint32_t value)
{
	char from[4096], to[4096];
	snprintf(from, sizeof(from), "%s/few_messages.ring", dir);
	snprintf(to, sizeof(to), "%s/%s.ring", dir, name);
	int in = open(from, O_RDONLY);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char buf[4096];
	ssize_t n;
	if (in < 0 || out < 0) {
		fprintf(stderr, "gen_vectors: %s: %s\n", name, strerror(errno));
		exit(1);
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			n = -1;
	const unsigned char patch[4] = {(unsigned char)value, (unsigned char)(value >> 8),
	                                (unsigned char)(value >> 16), (unsigned char)(value >> 24)};
	if (n < 0 || pwrite(out, patch, sizeof(patch), offset) != sizeof(patch) ||
	    close(out) != 0) {
		fprintf(stderr, "gen_vectors: %s: write failed\n", name);
		exit(1);
	}
	close(in);
	struct vector copy = *few;
	copy.name = name;
	copy.description = description;
	write_description(&copy, dir, "version");
}

/* Entry i of the reader table (docs/FORMAT.md section 8). */
#define ENTRY_OFFSET(i)      (0xa000u + (i)*256u)
#define ENTRY_OWNER_IDENTITY 0x08 /* owner_start_time, owner_pid_ns: 16 bytes */

/*
 * A fan-out ring with two subscriber entries: "alpha", a named durable
 * subscriber that read two of four messages and closed (detached; it
 * resumes at the third), and "tap", a named lossy tap that read one and
 * closed. The release position is alpha's. Its "messages" are what a
 * reader resuming "alpha" gets; "subscribers" what the listing shows.
 */
static void gen_fanout(const char *dir)
{
	char path[4096];
	struct vector v;
	memset(&v, 0, sizeof(v));
	v.name = "fanout_subscribers";
	v.description = "fan-out ring: named durable alpha read 2 of 4 and left, named lossy "
	                "tap read 1 and left";
	v.capacity = 256;
	snprintf(path, sizeof(path), "%s/%s.ring", dir, v.name);
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                  .mode = 0644};
	int rc = mrb_create(&v.ring, path, v.capacity, &opts);
	if (rc != 0)
		fail("create", v.name, rc);
	rc = mrb__test_set_identity(&v.ring, VECTOR_SALT, VECTOR_CREATED_NS, VECTOR_PID);
	if (rc != 0)
		fail("set identity", v.name, rc);
	struct mrb_ring alpha, tap;
	struct mrb_subscribe_options alpha_opts = {0, "alpha", 0};
	struct mrb_subscribe_options tap_opts = {MRB_SUBSCRIBE_LOSSY, "tap", 0};
	if ((rc = mrb_subscribe(&alpha, path, &alpha_opts)) != 0 ||
	    (rc = mrb_subscribe(&tap, path, &tap_opts)) != 0)
		fail("subscribe", v.name, rc);
	put_text(&v, "one: read by alpha and tap");
	put_text(&v, "two: read by alpha");
	put_text(&v, "three");
	put_text(&v, "four, the last");
	unsigned char buf[MAX_MESSAGE];
	size_t len;
	for (int i = 0; i < 3; i++) {
		rc = mrb_read(i < 2 ? &alpha : &tap, buf, sizeof(buf), &len);
		if (rc != 0 || len != v.lengths[i == 2 ? 0 : i] ||
		    memcmp(buf, v.messages[i == 2 ? 0 : i], len) != 0)
			fail("read", v.name, rc != 0 ? rc : MRB_ECORRUPT);
	}
	struct mrb_subscriber_info info[2];
	if ((rc = mrb_subscriber_info(&alpha, &info[0])) != 0 ||
	    (rc = mrb_subscriber_info(&tap, &info[1])) != 0)
		fail("subscriber info", v.name, rc);
	if ((rc = mrb_close(&alpha)) != 0 || (rc = mrb_close(&tap)) != 0)
		fail("close subscriber", v.name, rc);
	/* Who owned an entry last (start time, pid namespace) stays behind;
	 * fixed here like every other process-dependent field. */
	unsigned char *base = mrb__test_mapping(&v.ring);
	for (unsigned i = 0; i < 2; i++)
		memset(base + ENTRY_OFFSET(i) + ENTRY_OWNER_IDENTITY, 0, 16);
	/* A reader resuming alpha gets the last two. */
	v.unread = 2;
	memmove(v.lengths, v.lengths + 2, 2 * sizeof(v.lengths[0]));
	memmove(v.messages, v.messages + 2, 2 * sizeof(v.messages[0]));
	struct mrb_stats st;
	if ((rc = mrb_stats(&v.ring, &st)) != 0)
		fail("stats", v.name, rc);
	if (st.consumer_position != info[0].position)
		fail("release position is not alpha's", v.name, MRB_ECORRUPT);
	rc = mrb_close(&v.ring);
	if (rc != 0)
		fail("close", v.name, rc);
	char extra[1024];
	snprintf(extra, sizeof(extra),
	         "  \"mode\": \"fanout\",\n"
	         "  \"release_position\": %llu,\n"
	         "  \"resume\": \"alpha\",\n"
	         "  \"subscribers\": [\n"
	         "    {\"index\": 0, \"name\": \"alpha\", \"lossy\": false, \"state\": %d, "
	         "\"position\": %llu, \"lag_messages\": %llu},\n"
	         "    {\"index\": 1, \"name\": \"tap\", \"lossy\": true, \"state\": %d, "
	         "\"position\": %llu, \"lag_messages\": %llu}\n"
	         "  ],\n",
	         (unsigned long long)st.consumer_position, MRB_SUBSCRIBER_DETACHED,
	         (unsigned long long)info[0].position, (unsigned long long)info[0].lag_messages,
	         MRB_SUBSCRIBER_DETACHED, (unsigned long long)info[1].position,
	         (unsigned long long)info[1].lag_messages);
	write_description_extra(&v, dir, NULL, extra);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	static struct vector few;
	gen_empty(dir);
	gen_few_messages(&few, dir);
	gen_wrapped_padding(dir);
	gen_partly_consumed(dir);
	gen_max_message(dir);
	gen_high_positions(dir);
	gen_aborted_reservation(dir);
	gen_fanout(dir);
	gen_patched(&few, dir, "version3",
	            "few_messages claiming format_version 3: must be refused", 0x008, 3);
	gen_patched(&few, dir, "feature_flags",
	            "few_messages announcing an unknown feature (feature_flags 1): must be refused",
	            0x03c, 1);
	return 0;
}
