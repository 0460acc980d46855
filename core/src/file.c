/* SPDX-License-Identifier: MIT */
/*
 * Creating, opening, validating and closing ring files.
 *
 * A ring is built under a temporary name in the target directory and then
 * published with link(2) (no-clobber) or rename(2) (replace), so no process
 * can ever open a half-initialised ring, and a symlink planted at the path is
 * replaced or refused, never followed.
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
#include <time.h>
#include <unistd.h>

#include "handle.h"

static void handle_reset(struct mrb_ring *ring)
{
	memset(ring, 0, sizeof(*ring));
	atomic_init(&handle_of(ring)->flags, 0);
	atomic_init(&handle_of(ring)->producer_calls, 0);
	atomic_init(&handle_of(ring)->owner_calls, 0);
	atomic_init(&handle_of(ring)->producer_thread, 0);
	atomic_init(&handle_of(ring)->consumer_calls, 0);
	atomic_init(&handle_of(ring)->owner_consumer_calls, 0);
	atomic_init(&handle_of(ring)->consumer_thread, 0);
	atomic_init(&handle_of(ring)->writer, 0);
	atomic_init(&handle_of(ring)->lanes_busy, 0);
	atomic_init(&handle_of(ring)->reservations_open, 0);
	atomic_init(&handle_of(ring)->callback_thread, 0);
}

static bool positions_valid(uint64_t head, uint64_t tail, uint64_t capacity)
{
	return head % MRB_RECORD_ALIGNMENT == 0 && tail % MRB_RECORD_ALIGNMENT == 0 &&
	       tail - head <= capacity;
}

/* Validates an untrusted mapping of file_size bytes. */
static int validate_header(const struct mrb_file_header *hdr, uint64_t file_size)
{
	if (file_size < MRB_V1_HEADER_SIZE || memcmp(hdr->magic, MRB_MAGIC, MRB_MAGIC_SIZE) != 0)
		return MRB_EFORMAT;
	/* Pairs with the release store that publishes a new ring in create. */
	uint32_t version = atomic_load_explicit(&hdr->format_version, memory_order_acquire);
	if (version == 0)
		return MRB_EFORMAT; /* creation never finished */
	if (version != MRB_FORMAT_VERSION)
		return MRB_EVERSION;
	if (hdr->feature_flags != 0)
		return MRB_EVERSION;
	if (file_size < MRB_HEADER_SIZE)
		return MRB_EFORMAT;
	uint64_t capacity = hdr->capacity;
	if (hdr->header_size != MRB_HEADER_SIZE ||
	    hdr->record_header_size != MRB_RECORD_HEADER_SIZE ||
	    hdr->record_alignment != MRB_RECORD_ALIGNMENT ||
	    hdr->producer_slot_offset != MRB_PRODUCER_SLOT_OFFSET ||
	    hdr->producer_slot_count != MRB_PRODUCER_SLOTS)
		return MRB_EFORMAT;
	if (capacity < MRB_MIN_CAPACITY || capacity > MRB_MAX_CAPACITY ||
	    (capacity & (capacity - 1)) != 0)
		return MRB_EFORMAT;
	if (file_size != MRB_HEADER_SIZE + capacity)
		return MRB_EFORMAT;
	if (hdr->max_message_size != capacity / 2)
		return MRB_EFORMAT;
	if (hdr->readers.mode != MRB_MODE_QUEUE && hdr->readers.mode != MRB_MODE_FANOUT)
		return MRB_EFORMAT;
	uint64_t head = atomic_load_explicit(&hdr->consumer_position, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&hdr->producer_position, memory_order_acquire);
	if (!positions_valid(head, tail, capacity))
		return MRB_ECORRUPT;
	return 0;
}

static int handle_init(struct mrb_handle *h, void *map, size_t map_size, bool readonly)
{
	const _Atomic uint32_t *guard = mrbi_fork_guard_create();
	struct mrb_identity self;
	mrbi_identity_self(&self);
	h->header = map;
	h->data = (uint8_t *)map + MRB_HEADER_SIZE;
	h->map_size = map_size;
	h->capacity = h->header->capacity;
	h->mask = h->capacity - 1;
	h->max_message_size = h->header->max_message_size;
	h->salt = h->header->stamp_salt;
	h->mode = h->header->readers.mode == MRB_MODE_FANOUT ? MRB_MODE_FANOUT : MRB_MODE_QUEUE;
	h->pid = self.pid;
	h->start_time = self.start_time;
	h->pid_ns = self.pid_ns;
	h->fork_guard = guard;
	h->recovery_timeout_ns = 0;
	/* Only writable handles publish or sleep; registering is idempotent
	 * and costs a system call per open. */
	h->barriers = readonly ? 0 : mrbi_barrier_register();
	h->prefetchw = !readonly && mrbi_cpu_prefetchw();
	atomic_store_explicit(&h->writer, 0, memory_order_relaxed);
	atomic_store_explicit(&h->flags, MRB_STATE_OPEN | (readonly ? MRB_STATE_READONLY : 0),
	                      memory_order_release);
	return 0;
}

/* Maps and validates an open descriptor. Takes ownership of nothing. */
static int map_ring(struct mrb_ring *ring, int fd, bool readonly)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR; /* as O_RDWR reports it, for read-only opens too */
	if (!S_ISREG(st.st_mode))
		return MRB_EFORMAT;
	if (st.st_size < (off_t)MRB_V1_HEADER_SIZE ||
	    (uint64_t)st.st_size > MRB_HEADER_SIZE + MRB_MAX_CAPACITY)
		return MRB_EFORMAT;
	size_t size = (size_t)st.st_size;
	void *map =
	    mmap(NULL, size, readonly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	int rc = validate_header(map, size);
	if (rc != 0) {
		munmap(map, size);
		return rc;
	}
	return handle_init(handle_of(ring), map, size, readonly);
}

int mrb_open(struct mrb_ring *ring, const char *path, unsigned flags)
{
	if (ring == NULL)
		return MRB_EINVAL;
	handle_reset(ring);
	if (path == NULL || (flags & ~(unsigned)MRB_OPEN_READONLY) != 0)
		return MRB_EINVAL;
	bool readonly = (flags & MRB_OPEN_READONLY) != 0;
	/* O_NONBLOCK: a FIFO planted at the path must not block the open
	 * (read-only opens of a FIFO wait for a writer); no effect on files. */
	int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	int rc = map_ring(ring, fd, readonly);
	close(fd);
	return rc;
}

static uint64_t round_up_capacity(uint64_t size)
{
	uint64_t capacity = MRB_MIN_CAPACITY;
	while (capacity < size)
		capacity <<= 1;
	return capacity;
}

static void header_init(struct mrb_file_header *hdr, uint64_t capacity, uint32_t reader_mode)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	memcpy(hdr->magic, MRB_MAGIC, MRB_MAGIC_SIZE);
	hdr->header_size = MRB_HEADER_SIZE;
	hdr->capacity = capacity;
	hdr->max_message_size = capacity / 2;
	hdr->stamp_salt = mrbi_random64() | 1;
	hdr->created_unix_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	hdr->creator_pid = (uint32_t)getpid();
	hdr->record_header_size = MRB_RECORD_HEADER_SIZE;
	hdr->record_alignment = MRB_RECORD_ALIGNMENT;
	hdr->feature_flags = 0;
	hdr->producer_slot_offset = MRB_PRODUCER_SLOT_OFFSET;
	hdr->producer_slot_count = MRB_PRODUCER_SLOTS;
	hdr->readers.mode = reader_mode;
	/* Pairs with the acquire in validate_header: everything above is
	 * visible to whoever sees a non-zero version. */
	atomic_store_explicit(&hdr->format_version, MRB_FORMAT_VERSION, memory_order_release);
}

/* Builds a complete ring in a new temporary file next to `path`. */
static int build_temporary(const char *path, uint64_t capacity, uint32_t reader_mode, mode_t mode,
                           char *tmp_path, size_t tmp_size, int *fd_out)
{
	/* A short name of its own in the target's directory, so that any name
	 * valid for the ring (up to NAME_MAX) leaves room for it. */
	const char *slash = strrchr(path, '/');
	int dir_len = slash != NULL ? (int)(slash - path) + 1 : 0;
	for (int attempt = 0; attempt < 16; attempt++) {
		int n = snprintf(tmp_path, tmp_size, "%.*s.mrb-%08x.tmp", dir_len, path,
		                 (unsigned)(mrbi_random64() & 0xffffffffu));
		if (n < 0 || (size_t)n >= tmp_size)
			return -ENAMETOOLONG;
		int fd = open(tmp_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			if (errno == EEXIST)
				continue;
			return -errno;
		}
		int rc = 0;
		/* The mode is applied exactly: a shared ring's permissions are
		 * deliberate, not the creator's umask. */
		if (fchmod(fd, mode) != 0)
			rc = -errno;
		/* Allocate now, so a full disk or tmpfs fails here with ENOSPC
		 * rather than with SIGBUS on first touch of a sparse page. */
		if (rc == 0) {
			int err = posix_fallocate(fd, 0, (off_t)(MRB_HEADER_SIZE + capacity));
			if (err == EOPNOTSUPP || err == EINVAL) {
				if (ftruncate(fd, (off_t)(MRB_HEADER_SIZE + capacity)) != 0)
					rc = -errno;
			} else if (err != 0) {
				rc = -err;
			}
		}
		if (rc == 0) {
			void *map =
			    mmap(NULL, MRB_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (map == MAP_FAILED) {
				rc = -errno;
			} else {
				header_init(map, capacity, reader_mode);
				munmap(map, MRB_HEADER_SIZE);
			}
		}
		if (rc != 0) {
			close(fd);
			unlink(tmp_path);
			return rc;
		}
		*fd_out = fd;
		return 0;
	}
	return -EEXIST;
}

/*
 * Opens `path` if it is a ring of `capacity`; MRB_EEXIST if another size.
 * Create never adopts a file planted by someone else: in a sticky,
 * world-writable directory such as /dev/shm another user could otherwise
 * pre-create the path, read what we write and truncate it under us. So the
 * file must belong to this user and grant no permission beyond `mode`.
 */
static int open_existing(struct mrb_ring *ring, const char *path, uint64_t capacity,
                         uint32_t reader_mode, mode_t mode)
{
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = map_ring(ring, fd, false);
	/* Checked once it is known to be a ring: anything else is refused
	 * as not a ring (MRB_EFORMAT) in any case. */
	if (rc == 0 &&
	    (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 07777 & ~mode) != 0)) {
		mrb_close(ring);
		handle_reset(ring);
		rc = MRB_EFOREIGN;
	}
	close(fd);
	if (rc != 0)
		return rc;
	if (handle_of(ring)->capacity != capacity || handle_of(ring)->mode != reader_mode) {
		mrb_close(ring);
		handle_reset(ring);
		return MRB_EEXIST;
	}
	return 0;
}

int mrb_create(struct mrb_ring *ring, const char *path, uint64_t size,
               const struct mrb_create_options *opts)
{
	if (ring == NULL)
		return MRB_EINVAL;
	handle_reset(ring);
	unsigned flags = opts != NULL ? opts->flags : 0;
	mode_t mode = opts != NULL && opts->mode != 0 ? opts->mode : 0600;
	if (path == NULL || size == 0 || size > MRB_MAX_CAPACITY ||
	    (flags & ~(unsigned)(MRB_CREATE_REMOVE | MRB_CREATE_EXCLUSIVE | MRB_CREATE_FANOUT)) !=
	        0 ||
	    (flags & MRB_CREATE_REMOVE && flags & MRB_CREATE_EXCLUSIVE) || (mode & ~0777u) != 0)
		return MRB_EINVAL;
	uint64_t capacity = round_up_capacity(size);
	uint32_t reader_mode = (flags & MRB_CREATE_FANOUT) != 0 ? MRB_MODE_FANOUT : MRB_MODE_QUEUE;

	if ((flags & (MRB_CREATE_REMOVE | MRB_CREATE_EXCLUSIVE)) == 0) {
		int rc = open_existing(ring, path, capacity, reader_mode, mode);
		if (rc != -ENOENT)
			return rc;
	}

	char tmp_path[PATH_MAX];
	int fd = -1;
	int rc =
	    build_temporary(path, capacity, reader_mode, mode, tmp_path, sizeof(tmp_path), &fd);
	if (rc != 0)
		return rc;
	if (flags & MRB_CREATE_REMOVE) {
		if (rename(tmp_path, path) != 0)
			rc = -errno;
	} else if (link(tmp_path, path) != 0) {
		rc = errno == EEXIST ? MRB_EEXIST : -errno;
	}
	unlink(tmp_path);
	if (rc == MRB_EEXIST && (flags & MRB_CREATE_EXCLUSIVE) == 0) {
		/* Another process created it between our check and link: use
		 * theirs, as if it had been there first. */
		close(fd);
		return open_existing(ring, path, capacity, reader_mode, mode);
	}
	if (rc == 0)
		rc = map_ring(ring, fd, false);
	close(fd);
	return rc;
}

/* The last step of a close: the mapping and the fork guard go, and the
 * handle stays closed (CLOSING without OPEN) for any later call. */
static int unmap_handle(struct mrb_handle *h)
{
	munmap(h->header, h->map_size);
	mrbi_fork_guard_destroy(h->fork_guard);
	h->header = NULL;
	h->data = NULL;
	h->fork_guard = NULL;
	atomic_store_explicit(&h->flags, MRB_STATE_CLOSING, memory_order_release);
	return 0;
}

int mrb_close(struct mrb_ring *ring)
{
	if (ring == NULL)
		return MRB_EINVAL;
	struct mrb_handle *h = handle_of(ring);
	uint32_t flags = atomic_load_explicit(&h->flags, memory_order_acquire);
	if ((flags & MRB_STATE_OPEN) == 0 || (flags & MRB_STATE_CLOSING) != 0)
		return MRB_ECLOSED;
	/* From inside this handle's own read_batch handler or inspect visitor
	 * the wait below would wait for the calling thread itself. */
	if (atomic_load_explicit(&h->callback_thread, memory_order_relaxed) == thread_self())
		return MRB_EINCALLBACK;
	uint32_t old = atomic_fetch_or_explicit(&h->flags, MRB_STATE_CLOSING, memory_order_seq_cst);
	if ((old & MRB_STATE_OPEN) == 0 || (old & MRB_STATE_CLOSING) != 0)
		return MRB_ECLOSED;
	/* A child's inherited copy: the calls it counts are the parent's, and
	 * the roles and slot it names are the parent's too. Unmap only. */
	if (!handle_in_opener(h)) {
		mrbi_doorbell_close(h, false);
		return unmap_handle(h);
	}
	/* The producer thread's half of the handshake in producer_enter, and
	 * the adopted consumer thread's in consumer_role_enter: after this,
	 * their call counts are visible or they see CLOSING. */
	if (atomic_load_explicit(&h->producer_thread, memory_order_seq_cst) != 0 ||
	    atomic_load_explicit(&h->consumer_thread, memory_order_seq_cst) != 0)
		mrbi_barrier_private();
	/* Wake this handle's sleepers, if it has calls in progress; they see
	 * CLOSING and leave. Other handles' sleepers wake spuriously and sleep
	 * again, which is why an idle handle's close wakes nobody. */
	for (;;) {
		/* Pairs with the releases in role_leave, producer_leave. */
		if (atomic_load_explicit(&h->producer_calls, memory_order_seq_cst) == 0 &&
		    atomic_load_explicit(&h->owner_calls, memory_order_seq_cst) == 0 &&
		    atomic_load_explicit(&h->consumer_calls, memory_order_seq_cst) == 0 &&
		    atomic_load_explicit(&h->owner_consumer_calls, memory_order_seq_cst) == 0)
			break;
		/* A read-only handle has no sleepers, and cannot write. */
		if ((old & MRB_STATE_READONLY) == 0) {
			atomic_fetch_add_explicit(&h->header->data_seq, 1, memory_order_seq_cst);
			atomic_fetch_add_explicit(&h->header->space_seq, 1, memory_order_seq_cst);
			mrbi_futex_wake_all(&h->header->data_seq);
			mrbi_futex_wake_all(&h->header->space_seq);
		}
		struct timespec pause = {0, 100000};
		nanosleep(&pause, NULL);
	}
	/* Before a subscriber leaves its entry (and its doorbell). */
	mrbi_doorbell_close(h, true);
	if (h->is_consumer) {
		mrbi_publish_head(h);
		mrbi_detach_consumer(h);
	}
	if ((old & MRB_STATE_READONLY) == 0)
		mrbi_slot_release(h);
	return unmap_handle(h);
}

uint64_t mrb_capacity(struct mrb_ring *ring)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || role_enter(h, MRB_STATE_CALL) != 0)
		return 0;
	uint64_t capacity = h->capacity;
	role_leave(h, MRB_STATE_CALL);
	return capacity;
}

uint64_t mrb_max_message_size(struct mrb_ring *ring)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || role_enter(h, MRB_STATE_CALL) != 0)
		return 0;
	uint64_t max = h->max_message_size;
	role_leave(h, MRB_STATE_CALL);
	return max;
}
