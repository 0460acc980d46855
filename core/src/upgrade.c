/* SPDX-License-Identifier: MIT */
/*
 * Converting a format 1 ring into the current format, offline: its unread
 * committed messages are copied, in order, into a new ring of the same
 * capacity and mode, which replaces the old file atomically (rename).
 * Format 1 cannot tell a dead writer's claim from a live one's, so the
 * conversion refuses while any process named in the old ring lives.
 *
 * The format 1 layout is spelled out here, and only here: the library reads
 * it for nothing else (docs/FORMAT.md, appendix A).
 */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handle.h"

#define V1_HEADER_SIZE        4096u
#define V1_CAPACITY           0x010
#define V1_MAX_MESSAGE        0x018
#define V1_STAMP_SALT         0x020
#define V1_RECORD_HEADER_SIZE 0x034
#define V1_RECORD_ALIGNMENT   0x038
#define V1_FEATURE_FLAGS      0x03c
#define V1_PRODUCER_POSITION  0x080
#define V1_CONSUMER_POSITION  0x180
#define V1_CONSUMER_OWNER     0x200
#define V1_PRODUCERS          0x800
#define V1_PRODUCER_SLOTS     16
#define V1_SLOT_SIZE          128
#define V1_PID_SHIFT          40
#define V1_PID_MASK           ((UINT64_C(1) << 22) - 1)

static uint64_t load64(const uint8_t *map, size_t offset)
{
	return atomic_load_explicit((const _Atomic uint64_t *)(const void *)(map + offset),
	                            memory_order_acquire);
}

static uint32_t load32(const uint8_t *map, size_t offset)
{
	return atomic_load_explicit((const _Atomic uint32_t *)(const void *)(map + offset),
	                            memory_order_acquire);
}

static bool pid_alive(uint32_t pid)
{
	struct mrb_identity id = {.pid = pid};
	return pid != 0 && mrbi_liveness(&id) == MRBI_ALIVE;
}

/* Validates a format 1 header against the file size; 0 or MRB_EFORMAT,
 * MRB_EVERSION (another version), -EBUSY (a process named in it lives). */
static int check_v1(const uint8_t *map, uint64_t file_size, bool force)
{
	if (memcmp(map, "MMAPRBUF", 8) != 0)
		return MRB_EFORMAT;
	if (load32(map, 0x008) != 1 || load32(map, V1_FEATURE_FLAGS) != 0)
		return MRB_EVERSION;
	uint64_t capacity = load64(map, V1_CAPACITY);
	if (load32(map, 0x00c) != V1_HEADER_SIZE || capacity < MRB_MIN_CAPACITY ||
	    capacity > MRB_MAX_CAPACITY || (capacity & (capacity - 1)) != 0 ||
	    file_size != V1_HEADER_SIZE + capacity || load64(map, V1_MAX_MESSAGE) != capacity / 2 ||
	    load32(map, V1_RECORD_HEADER_SIZE) != 16 || load32(map, V1_RECORD_ALIGNMENT) != 16)
		return MRB_EFORMAT;
	uint64_t head = load64(map, V1_CONSUMER_POSITION);
	uint64_t tail = load64(map, V1_PRODUCER_POSITION);
	if (head % 16 != 0 || tail % 16 != 0 || tail - head > capacity)
		return MRB_ECORRUPT;
	if (force)
		return 0;
	if (pid_alive((uint32_t)load64(map, V1_CONSUMER_OWNER)))
		return -EBUSY;
	for (size_t i = 0; i < V1_PRODUCER_SLOTS; i++)
		if (pid_alive(load32(map, V1_PRODUCERS + i * V1_SLOT_SIZE)))
			return -EBUSY;
	return 0;
}

/* Copies the committed, unread messages of the format 1 ring into `to`.
 * A record left BUSY or header-less by a dead writer is dropped, as the
 * format 1 recovery would have. */
static int copy_messages(const uint8_t *map, struct mrb_ring *to, uint64_t *copied)
{
	uint64_t capacity = load64(map, V1_CAPACITY);
	uint64_t salt = load64(map, V1_STAMP_SALT);
	uint64_t pos = load64(map, V1_CONSUMER_POSITION);
	uint64_t tail = load64(map, V1_PRODUCER_POSITION);
	const uint8_t *data = map + V1_HEADER_SIZE;
	*copied = 0;
	while (pos != tail) {
		uint64_t offset = pos & (capacity - 1);
		uint64_t control = load64(data, offset);
		if (load64(data, offset + 8) != (pos ^ salt)) {
			pos += 16; /* a claim without header: skip to the next record */
			continue;
		}
		uint64_t length = control & MRB_CONTROL_LENGTH_MASK;
		uint64_t size = record_span(length);
		if (size > capacity - offset || size > tail - pos)
			return MRB_ECORRUPT;
		bool pad = (control & MRB_CONTROL_PAD) != 0;
		bool busy = (control & MRB_CONTROL_BUSY) != 0;
		if (!pad && !busy) {
			if (length == 0 || length > capacity / 2)
				return MRB_ECORRUPT;
			int rc = mrb_write(to, data + offset + 16, (size_t)length);
			if (rc != 0)
				return rc;
			++*copied;
		}
		pos += size;
	}
	return 0;
}

int mrb_upgrade(const char *path, unsigned flags)
{
	if (path == NULL || (flags & ~(unsigned)MRB_UPGRADE_FORCE) != 0)
		return MRB_EINVAL;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)V1_HEADER_SIZE ||
	    (uint64_t)st.st_size > V1_HEADER_SIZE + MRB_MAX_CAPACITY) {
		close(fd);
		return MRB_EFORMAT;
	}
	size_t size = (size_t)st.st_size;
	uint8_t *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return -errno;
	int rc = check_v1(map, size, (flags & MRB_UPGRADE_FORCE) != 0);
	if (rc != 0) {
		munmap(map, size);
		return rc;
	}
	/* The new ring is built beside the old one and renamed over it, so
	 * a reader opening the path sees either the old ring or the new. */
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.upgrade", path) >= (int)sizeof(tmp)) {
		munmap(map, size);
		return -ENAMETOOLONG;
	}
	struct mrb_ring to;
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE, .mode = st.st_mode & 0777};
	rc = mrb_create(&to, tmp, load64(map, V1_CAPACITY), &opts);
	uint64_t copied = 0;
	if (rc == 0) {
		rc = copy_messages(map, &to, &copied);
		int closed = mrb_close(&to);
		if (rc == 0)
			rc = closed;
	}
	munmap(map, size);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	return copied > INT32_MAX ? INT32_MAX : (int)copied;
}
