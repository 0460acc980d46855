/* SPDX-License-Identifier: MIT */
/*
 * Description: opening things that are not (whole) rings. Empty file, a
 * short file, a header without its data region, a ring truncated by a byte
 * or a page, extended by a byte or a page, doubled; a header whose creation
 * never finished (version 0) or of another version; a directory, a symlink
 * to a valid ring and a dangling one (-ELOOP: O_NOFOLLOW), a FIFO and a
 * character device (MRB_EFORMAT, and open must not block), a missing path.
 * Each gives its documented code, the handle behaves as closed, and the
 * file is left untouched.
 */
#include <sys/stat.h>

#include "ring_bytes.h"
#include "rtest.h"

#define CAPACITY 4096

static uint8_t ring_image[MRB_HEADER_SIZE + CAPACITY];

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, len) == (ssize_t)len);
	close(fd);
}

static void expect_open(const char *path, int expected, const char *what)
{
	struct stat before, after;
	int had = lstat(path, &before) == 0;
	struct mrb_ring ring;
	int rc = mrb_open(&ring, path, 0);
	if (rc != expected)
		FAIL("%s: mrb_open = %d (%s), expected %d (%s)", what, rc, mrb_strerror(rc),
		     expected, mrb_strerror(expected));
	if (rc == 0) {
		CHECK_RC(mrb_close(&ring), 0);
		return;
	}
	uint8_t buf[8];
	size_t len;
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), MRB_ECLOSED);
	CHECK_RC(mrb_write(&ring, "x", 1), MRB_ECLOSED);
	CHECK_RC(mrb_close(&ring), MRB_ECLOSED);
	CHECK_EQ_U64(mrb_capacity(&ring), 0);
	if (had) { /* untouched */
		CHECK(lstat(path, &after) == 0);
		CHECK_EQ_U64(after.st_size, before.st_size);
		CHECK_EQ_U64(after.st_mode, before.st_mode);
	}
}

static const char *expect_sized(size_t size, int expected, const char *what)
{
	static uint8_t big[2 * sizeof(ring_image)];
	memset(big, 0, sizeof(big));
	memcpy(big, ring_image, size < sizeof(ring_image) ? size : sizeof(ring_image));
	static const char *path;
	if (path == NULL)
		path = rtest_path("sized");
	write_file(path, big, size);
	expect_open(path, expected, what);
	return path;
}

int main(void)
{
	rtest_watchdog(45);
	const char *valid = rtest_path("valid");
	struct mrb_ring ring;
	rtest_create(&ring, valid, CAPACITY);
	CHECK_RC(mrb_write(&ring, "keep me", 7), 0);
	memcpy(ring_image, ring_base(&ring), sizeof(ring_image));
	CHECK_RC(mrb_close(&ring), 0);

	const char *copy = expect_sized(sizeof(ring_image), 0, "control: an exact copy");
	CHECK_RC(mrb_open(&ring, copy, 0), 0);
	uint8_t buf[16];
	size_t len;
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
	CHECK(len == 7 && memcmp(buf, "keep me", 7) == 0);
	CHECK_RC(mrb_close(&ring), 0);

	expect_sized(0, MRB_EFORMAT, "empty file");
	expect_sized(100, MRB_EFORMAT, "100 bytes");
	expect_sized(MRB_HEADER_SIZE - 1, MRB_EFORMAT, "header minus one");
	expect_sized(MRB_HEADER_SIZE, MRB_EFORMAT, "header only");
	expect_sized(sizeof(ring_image) - 1, MRB_EFORMAT, "truncated by a byte");
	expect_sized(sizeof(ring_image) - 4096, MRB_EFORMAT, "truncated by a page");
	expect_sized(sizeof(ring_image) + 1, MRB_EFORMAT, "extended by a byte");
	expect_sized(sizeof(ring_image) + 4096, MRB_EFORMAT, "extended by a page");
	expect_sized(2 * sizeof(ring_image), MRB_EFORMAT, "doubled");

	uint32_t version = 0;
	memcpy(ring_image + OFF_FORMAT_VERSION, &version, 4);
	expect_sized(sizeof(ring_image), MRB_EFORMAT, "creation never finished");
	version = 1;
	memcpy(ring_image + OFF_FORMAT_VERSION, &version, 4);
	expect_sized(sizeof(ring_image), MRB_EVERSION, "format version 1");
	version = 3;
	memcpy(ring_image + OFF_FORMAT_VERSION, &version, 4);
	expect_sized(sizeof(ring_image), MRB_EVERSION, "format version 3");
	version = MRB_FORMAT_VERSION;
	memcpy(ring_image + OFF_FORMAT_VERSION, &version, 4);
	memset(ring_image, 'X', 8);
	expect_sized(sizeof(ring_image), MRB_EFORMAT, "foreign magic");

	const char *dir = rtest_path("a-directory");
	CHECK(mkdir(dir, 0700) == 0);
	expect_open(dir, -EISDIR, "directory");

	const char *link_path = rtest_path("link-to-valid");
	CHECK(symlink(valid, link_path) == 0);
	expect_open(link_path, -ELOOP, "symlink to a valid ring");
	const char *dangling = rtest_path("dangling");
	CHECK(symlink(rtest_path("nowhere"), dangling) == 0);
	expect_open(dangling, -ELOOP, "dangling symlink");

	const char *fifo = rtest_path("fifo");
	CHECK(mkfifo(fifo, 0600) == 0);
	expect_open(fifo, MRB_EFORMAT, "FIFO");
	expect_open("/dev/null", MRB_EFORMAT, "character device");
	expect_open(rtest_path("missing"), -ENOENT, "missing file");

	CHECK_RC(mrb_open(&ring, NULL, 0), MRB_EINVAL);
	CHECK_RC(mrb_open(&ring, valid, 2), MRB_EINVAL);
	CHECK_RC(mrb_open(NULL, valid, 0), MRB_EINVAL);

	/* The valid ring is still intact after all of it. */
	CHECK_RC(mrb_open(&ring, valid, 0), 0);
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
	CHECK(len == 7 && memcmp(buf, "keep me", 7) == 0);
	CHECK_RC(mrb_close(&ring), 0);
	return 0;
}
