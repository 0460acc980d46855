/* SPDX-License-Identifier: MIT */
/*
 * mmap_ringbuffer: a many-producer, single-consumer message ring that lives in
 * a memory-mapped file, shared by threads, processes and languages.
 *
 * The byte layout of the file is specified in docs/FORMAT.md; this header is
 * the C API over it. Every function returns 0 (or a count) on success and a
 * negative code on failure: one of enum mrb_error below, or -errno for an
 * operating-system failure. mrb_strerror() turns any code into a message.
 * No function sets errno as its result channel, and there is no global state.
 *
 * Roles. Any number of handles, in any number of threads and processes, may
 * write. One handle at a time may read: the first read call attaches the
 * handle as the ring's consumer; a second handle trying to read while the
 * first is alive gets MRB_ECONSUMER_BUSY. Consumer calls on one handle must
 * not run concurrently (they return MRB_ECONSUMER_BUSY if they do).
 */
#ifndef MRB_MRB_H
#define MRB_MRB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Format constants shared with every implementation (docs/FORMAT.md). */
#define MRB_FORMAT_VERSION     2u
#define MRB_HEADER_SIZE        65536u
#define MRB_RECORD_HEADER_SIZE 16u
#define MRB_RECORD_ALIGNMENT   16u
#define MRB_MIN_CAPACITY       256ull
#define MRB_MAX_CAPACITY       (1ull << 40)

/* Error codes. OS failures are returned as -errno, which never collides with
 * these because they all lie below -1000. */
enum mrb_error {
	MRB_OK = 0,
	MRB_EFULL = -1001,             /* not enough free space; nothing was written */
	MRB_EEMPTY = -1002,            /* no committed message to read */
	MRB_EMSGSIZE = -1003,          /* message empty or above max_message_size */
	MRB_ECLOSED = -1004,           /* handle closed (or never opened) */
	MRB_EFORMAT = -1005,           /* not a ring file, or its header is invalid */
	MRB_EVERSION = -1006,          /* ring file of an unsupported format version */
	MRB_ECONSUMER_BUSY = -1007,    /* another live handle is the consumer */
	MRB_ECORRUPT = -1008,          /* shared positions or a record are invalid */
	MRB_EINVAL = -1009,            /* invalid argument */
	MRB_ETIMEDOUT = -1010,         /* a blocking call's timeout expired */
	MRB_EBUFFER_TOO_SMALL = -1011, /* destination too small; nothing consumed */
	MRB_EINTR = -1012,             /* a blocking call was interrupted by a signal */
	MRB_EEXIST = -1013,            /* file exists (exclusive create, or another size) */
	MRB_ESTALE = -1014,            /* reservation/view no longer matches the ring */
	MRB_EFORKED = -1015,           /* handle used in a process other than its opener */
	MRB_ENOSLOT = -1016,           /* every producer slot is owned by a live handle */
	MRB_EFOREIGN = -1017,          /* existing file owned by another user or too open */
	MRB_EINCALLBACK = -1018,       /* close called from inside this handle's callback */
	MRB_ENOSUB = -1019,            /* every subscriber entry is taken */
	MRB_ELAPPED = -1020,           /* a subscriber was evicted or lapped: messages lost */
	MRB_EMODE = -1021,             /* not in this ring's read mode (queue / fan-out) */
	MRB_ENAMEBUSY = -1022, /* a live subscriber (or worker of the group) uses this name */
	MRB_ENOWORKER = -1023, /* every worker slot (or group) of the ring is taken */
};

/* A message for any code this library returns (never NULL, static storage). */
const char *mrb_strerror(int code);

/* The release version, one number for the C library, the Go module (tag
 * bindings/go/vX.Y.Z) and the Python package; this is the one place that
 * defines it (CHANGELOG.md). MRB_VERSION is "MAJOR.MINOR.PATCH". */
#define MRB_VERSION_MAJOR   0
#define MRB_VERSION_MINOR   1
#define MRB_VERSION_PATCH   0
#define MRB_VERSION_STR_(x) #x
#define MRB_VERSION_STR(x)  MRB_VERSION_STR_(x)
#define MRB_VERSION                                                                                \
	MRB_VERSION_STR(MRB_VERSION_MAJOR)                                                         \
	"." MRB_VERSION_STR(MRB_VERSION_MINOR) "." MRB_VERSION_STR(MRB_VERSION_PATCH)

/* The MRB_VERSION of the library linked at run time (a shared library may be
 * newer than the header a program was compiled with). Static storage. */
const char *mrb_version(void);

/* Handle storage, owned by the caller (stack, heap or a binding's allocator).
 * Its contents are private. A zero-filled or failed-to-open handle behaves as
 * closed. A handle shared by a producer thread and a consumer thread is
 * fastest aligned to 128 bytes (aligned_alloc(128, ...), alignas): its
 * per-role parts then sit on cache lines of their own. */
struct mrb_ring {
	uint64_t opaque[64];
};

/* ---- Create, open, close -------------------------------------------------- */

enum mrb_create_flags {
	/* Replace an existing file atomically (rename over it; symlinks at the
	 * path are replaced, never followed). Unread messages in it are lost. */
	MRB_CREATE_REMOVE = 1u << 0,
	/* Fail with MRB_EEXIST if the path exists. */
	MRB_CREATE_EXCLUSIVE = 1u << 1,
	/* A fan-out ring: read by subscribers (mrb_subscribe), not by one
	 * consumer. Space is released once every durable subscriber has read
	 * it. Fixed at creation; opening an existing ring keeps its mode. */
	MRB_CREATE_FANOUT = 1u << 2,
};

struct mrb_create_options {
	unsigned flags; /* enum mrb_create_flags */
	/* Permission bits 0001..0777, applied exactly (umask ignored); 0 means
	 * the default, 0600. Any other bit (setuid, setgid, sticky, file type)
	 * gives MRB_EINVAL. An existing ring that is opened keeps its mode. */
	mode_t mode;
};

/*
 * Creates a ring of at least `size` data bytes at `path` and opens it.
 * The data capacity is `size` rounded up to a power of two, at least
 * MRB_MIN_CAPACITY; sizes of 0 or above MRB_MAX_CAPACITY give MRB_EINVAL,
 * as do unknown flags, both flags together and a mode above 0777.
 * The file (MRB_HEADER_SIZE + capacity bytes) is built under a temporary name
 * in the same directory and published by link/rename, so no process ever
 * sees a half-initialised ring.
 *
 * Without flags, an existing valid ring with the same capacity is opened
 * as-is (its unread messages are kept); an existing file that is not such a
 * ring gives MRB_EEXIST (other capacity) or its open error (MRB_EFORMAT, ...),
 * and is left untouched. `opts` may be NULL.
 *
 * Errors: MRB_EINVAL, MRB_EEXIST, MRB_EFORMAT, MRB_EVERSION, -errno.
 * Thread safety: any thread, any process.
 */
int mrb_create(struct mrb_ring *ring, const char *path, uint64_t size,
               const struct mrb_create_options *opts);

/*
 * Opens an existing ring. Validates magic, version, header size, capacity
 * against the file's real size, and the shared positions before trusting
 * anything. Symlinks at `path` are not followed (O_NOFOLLOW).
 * `flags`: 0 or MRB_OPEN_READONLY.
 *
 * A writable open (and mrb_create) also registers the process for
 * membarrier(2) expedited barriers, once per process; the wake-up handshake
 * relies on it (docs/FORMAT.md section 6) and falls back to fences where the
 * kernel refuses.
 *
 * Errors: MRB_EFORMAT (missing header, truncated, foreign, corrupt),
 * MRB_EVERSION, MRB_ECORRUPT (positions inconsistent), MRB_EINVAL, -errno
 * (-ENOENT for a missing file, -ELOOP for a symlink, ...).
 */
int mrb_open(struct mrb_ring *ring, const char *path, unsigned flags);

enum mrb_open_flags {
	/* Open and map the file read-only, for monitoring (needs only read
	 * permission): mrb_stats, mrb_inspect, mrb_capacity and
	 * mrb_max_message_size work; producer, consumer and recovery calls
	 * return -EROFS. */
	MRB_OPEN_READONLY = 1u << 0,
};

/*
 * Closes the handle: wakes this handle's blocked calls (they return
 * MRB_ECLOSED), waits for calls in progress on it to leave, gives up the
 * consumer role, unmaps. Later calls on the handle return MRB_ECLOSED; a
 * second close returns MRB_ECLOSED. Safe to call while other threads use the
 * handle. Reservations and views obtained from it become invalid.
 */
int mrb_close(struct mrb_ring *ring);

/* ---- Producer side (any thread, any process, lock-free) -------------------- */

/*
 * While one producer thread writes to a ring alone, it holds the ring's
 * sole-producer lease and claims space without a locked instruction
 * (docs/FORMAT.md section 7). Another producer's claim (or a lossy or
 * evictable subscriber joining) first takes the lease back, which costs a
 * membarrier(2) and waits for the holder to finish the claim it may be
 * making: a few instructions, but as long as the holder is stopped there
 * (SIGSTOP, a debugger). Nothing else ever waits for another producer. A
 * write from a signal handler that interrupted the holder's claim on the
 * same thread may fail with MRB_EFULL although there is room.
 */

/*
 * Copies one message of `len` bytes (1 .. max_message_size) into the ring.
 * Returns 0, MRB_EFULL (nothing written; see docs/FORMAT.md on the padding a
 * full write may leave at the wrap point), MRB_EMSGSIZE, MRB_ECLOSED,
 * MRB_ECORRUPT, MRB_EFORKED, or MRB_ENOSLOT (the handle's first write found
 * every one of the ring's 128 producer slots owned by a live writing handle;
 * each writing handle holds one until it closes). Never blocks, except to
 * take the sole-producer lease back (above).
 */
int mrb_write(struct mrb_ring *ring, const void *data, size_t len);

struct mrb_iovec {
	const void *data;
	size_t len;
};

/*
 * Writes messages msgs[0..count) in order, stopping at the first that does
 * not fit. Returns how many were written (0..count) or, if the first one
 * fails, its error (MRB_EFULL, MRB_EMSGSIZE, MRB_EINVAL, ...). Much cheaper
 * per message than mrb_write: consecutive messages (up to 64 or 64 KiB) are
 * claimed with one CAS and published by one commit of the first, so the
 * consumer finds a whole run ready at once; one entry/exit and one wake-up
 * check per call. A writer killed inside the call loses a suffix of the
 * batch (the run being written), never a message in the middle.
 */
int64_t mrb_write_batch(struct mrb_ring *ring, const struct mrb_iovec *msgs, size_t count);

/* Space reserved in the ring for zero-copy writing. */
struct mrb_reservation {
	void *data;        /* len writable bytes, 16-byte aligned */
	size_t len;        /* requested message length */
	uint64_t position; /* ring position of the record (private) */
};

/*
 * Reserves space for a `len`-byte message and returns a pointer to fill in
 * place. The record blocks the consumer (messages after it wait) until
 * mrb_commit or mrb_abort, so keep the window short. Errors as mrb_write.
 */
int mrb_reserve(struct mrb_ring *ring, size_t len, struct mrb_reservation *res);

/* Publishes a reserved message. MRB_ESTALE if `res` is not a live reservation
 * of this ring (never commits anything else); MRB_ECLOSED. */
int mrb_commit(struct mrb_ring *ring, struct mrb_reservation *res);

/* Turns a reservation into padding the consumer skips. Errors as commit. */
int mrb_abort(struct mrb_ring *ring, struct mrb_reservation *res);

/* ---- Consumer side (one handle at a time) ----------------------------------
 * The first consumer call attaches the handle as consumer (MRB_ECONSUMER_BUSY
 * if another live handle is). A consumer whose process died is replaced
 * automatically; it resumes at the last released position.
 */

/*
 * Copies the next message into buf. On success returns 0 and sets *len.
 * If buf_size is too small: MRB_EBUFFER_TOO_SMALL, *len = the size needed,
 * nothing consumed. Otherwise MRB_EEMPTY, MRB_ECLOSED, MRB_ECONSUMER_BUSY,
 * MRB_ECORRUPT. Never blocks. Delivery: exactly once to this consumer.
 */
int mrb_read(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *len);

/*
 * Copies up to max_count messages back to back into buf and their lengths into
 * lengths[]; the consumer position is published once. Returns the count (>0),
 * MRB_EEMPTY, MRB_EBUFFER_TOO_SMALL (the first message alone does not fit;
 * lengths[0] = its size), or another error.
 */
int64_t mrb_read_many(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *lengths,
                      size_t max_count);

/* Called for each message by mrb_read_batch. `data` is valid only during
 * the call. Return 0 to continue, non-zero to stop after this message. */
typedef int (*mrb_handler)(void *ctx, const void *data, size_t len);

/*
 * Hands up to max_count available messages (0 means all) to `handler` in
 * place, then publishes the consumer position. Returns the count handed
 * (>0), MRB_EEMPTY, or an error. A call that finds nothing returns
 * MRB_EEMPTY at once. One that has handed over messages and then finds the
 * next not yet written (it caught up with a producer) publishes, waits a
 * moment without touching the ring (0.128-8 us: adapted so that each wait
 * collects 8-32 KiB of a stream, and shortened when a wait collects fewer
 * than 8 messages, so a trickle waits 0.128 us) and looks again, at most
 * 32 times per call, so that it reads a stream in sweeps instead of taking
 * each record's cache line from the producer as it is written; a look that
 * finds nothing ends the call. A long call also publishes every 16 KiB. A
 * message that arrives during a wait is handed over when it ends.
 */
int64_t mrb_read_batch(struct mrb_ring *ring, mrb_handler handler, void *ctx, size_t max_count);

/* A message seen in place. */
struct mrb_view {
	const void *data;
	size_t len;
	uint64_t position; /* private */
	uint64_t next;     /* private */
};

/*
 * Returns the next message in place without consuming it. Repeated peeks
 * return the same message until mrb_release. Errors as mrb_read.
 */
int mrb_peek(struct mrb_ring *ring, struct mrb_view *view);

/* Consumes the message returned by the last mrb_peek. MRB_ESTALE if `view`
 * is not the current head message. */
int mrb_release(struct mrb_ring *ring, const struct mrb_view *view);

/* ---- Deferred release (forwarding: at-least-once) --------------------------
 * A consumer that forwards messages elsewhere (a bridge to a network) must
 * not free them before the other side has them. After mrb_hold(ring, 1) the
 * handle's read calls still move its own cursor forward, message by
 * message, but the ring's consumer position (the space producers may reuse,
 * and where a consumer that replaces this one resumes) stays where it was
 * until mrb_release_through. If the handle is closed or its process dies,
 * the next consumer reads every unreleased message again: at-least-once.
 * messages_read and bytes_read (mrb_stats) count released messages.
 */

/* on != 0: start holding (attaches as consumer); 0: stop, releasing every
 * message read. MRB_EINVAL with the hung-writer timeout (a skipped claim is
 * released out of order): mrb_set_recovery_timeout > 0 and mrb_recover with
 * stale_after_ns >= 0 refuse while holding, and holding refuses while they
 * are in force. On a durable subscriber the same: its position (where a
 * named subscriber resumes) stays at the hold point; a lossy or evictable
 * subscriber cannot hold (MRB_EINVAL). Consumer. */
int mrb_hold(struct mrb_ring *ring, int on);

/* Releases the held messages up to and including the one at `position` (as
 * mrb_read_many_at reports it), and any padding after it. MRB_ESTALE if no
 * message read and still held starts there (already released, not read yet,
 * or not a message boundary); MRB_EINVAL if not holding. Consumer; never
 * blocks. */
int mrb_release_through(struct mrb_ring *ring, uint64_t position);

/* mrb_read_many, also storing each message's ring position in
 * positions[0..count): the byte offset of its record since the ring was
 * created, unique within the ring (positions only grow) and what
 * mrb_release_through takes. Errors as mrb_read_many; MRB_EINVAL if
 * positions is NULL. Consumer; never blocks. */
int64_t mrb_read_many_at(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *lengths,
                         uint64_t *positions, size_t max_count);

/* ---- Blocking waits --------------------------------------------------------
 * timeout_ns < 0 waits forever, 0 polls. A short spin precedes sleeping; the
 * sleep is a futex in the shared mapping (Linux) so any process's write wakes
 * a reader, and a writer makes no system call when nobody waits.
 * Return MRB_ETIMEDOUT, MRB_EINTR (a signal arrived: check it, call again) or
 * MRB_ECLOSED (the handle was closed) besides their normal results.
 */
int mrb_wait_readable(struct mrb_ring *ring, int64_t timeout_ns);
int mrb_wait_writable(struct mrb_ring *ring, size_t len, int64_t timeout_ns);
int mrb_read_wait(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *len,
                  int64_t timeout_ns);
int mrb_write_wait(struct mrb_ring *ring, const void *data, size_t len, int64_t timeout_ns);

/* ---- Waiting in an event loop (doorbells) ----------------------------------
 * A descriptor to wait on with epoll, poll, select, libuv's uv_poll,
 * asyncio's add_reader or Go's netpoller, instead of blocking a thread. It
 * becomes readable when a message (MRB_DOORBELL_READ) or space
 * (MRB_DOORBELL_WRITE) may be there; level- or edge-triggered both work
 * with the loop below, because arming drains it and re-checks the ring:
 *
 *     int fd = mrb_doorbell_fd(ring, MRB_DOORBELL_READ);   // add to epoll
 *     for (;;) {
 *         while ((rc = mrb_read(ring, buf, sizeof buf, &len)) == 0)
 *             handle(buf, len);                             // drain
 *         if (rc != MRB_EEMPTY) break;                      // an error
 *         int timeout_ms;
 *         rc = mrb_arm_read(ring, &timeout_ms);             // check
 *         if (rc == 1) continue;                            // arrived meanwhile
 *         if (rc < 0) break;
 *         epoll_wait(ep, events, 8, timeout_ms);            // wait
 *     }
 *
 * A message committed after mrb_arm_read's check rings the doorbell; one
 * committed before it is seen by the check (returns 1). Producers pay
 * nothing while no doorbell is armed: they ring (one datagram, sent by the
 * first writer after arming, and only by it) only when the reader counts
 * as a waiter, exactly like a futex sleeper. Wait no longer than
 * *timeout_ms (1000 normally; 100 for a worker; 10 while a claimed record
 * whose writer may have died holds the reader back; 1 in a process without
 * membarrier), then call again: a waker killed between its commit and its
 * ring would otherwise cost a hang instead of that latency. Threads sharing
 * one handle's doorbell need the bound too: one thread's arming drains a
 * ring meant for another.
 *
 * The consumer, every subscriber and every worker has a doorbell of its
 * own. A commit rings every armed worker of a group (not one, as for
 * futex sleepers): a worker rung that then stops waiting (disarmed,
 * cancelled, killed) strands no message while others of its group wait
 * armed, and workers that find nothing arm again. A worker's bound is
 * 100 ms because a dead or hung worker's run is rescued by a worker that
 * looks (docs/WORKERS.md), and no write announces that.
 */
#define MRB_DOORBELL_READ  0
#define MRB_DOORBELL_WRITE 1

/* The handle's doorbell descriptor for `which` (MRB_DOORBELL_READ or
 * MRB_DOORBELL_WRITE), non-blocking and close-on-exec, created on the first
 * call and the same afterwards, owned by the handle (mrb_close closes it:
 * remove it from your loop first; never close or read it yourself). It is an
 * abstract Unix datagram socket, or, where the kernel's io_uring has
 * FUTEX_WAIT (Linux 6.7 and later, io_uring not disabled by the
 * kernel.io_uring_disabled sysctl or a seccomp filter), an epoll descriptor
 * holding that socket and an io_uring that waits on the ring's futex word:
 * then wakers in any network namespace reach it (containers that share
 * /dev/shm but not the network). Otherwise rings reach only doorbells in the
 * waker's network namespace, and a waker in another one costs the reader the
 * 1 s bound in latency. MRB_NO_IO_URING=1 in the environment keeps the
 * socket alone. With io_uring, a wake-up is completed by the thread that
 * armed last, and closing the handle detaches the io_uring from every
 * thread that armed, both by the kernel's task work: a thread asleep in
 * epoll_wait(2) at that time may see it return EINTR (call it again, as
 * asyncio, libuv and Go do). Returns the descriptor (>= 0),
 * MRB_EINVAL, MRB_ECLOSED, MRB_EFORKED, -EROFS (read-only handle), or -errno
 * of socket(2)/bind(2). Any handle, any thread; does not block. */
int mrb_doorbell_fd(struct mrb_ring *ring, int which);

/* Drains the read doorbell, then either finds a message ready (returns 1:
 * read it; nothing is armed) or arms the doorbell and returns 0: wait for
 * the descriptor to become readable, at most *timeout_ms milliseconds, then
 * read. Consumer call (attaches as the consumer, as mrb_read); errors as
 * mrb_read (MRB_ECONSUMER_BUSY, MRB_ECORRUPT, MRB_ECLOSED, ...), MRB_EINVAL
 * for a NULL argument, or mrb_doorbell_fd's. A subscriber or a worker
 * (mrb_worker_join) arms a doorbell of its own; a worker's "message ready"
 * means one its group has not taken yet (another worker may take it
 * first: then the read returns MRB_EEMPTY, and the loop arms again), or
 * the rest of a run it holds. Does not block. The doorbell
 * stays armed until a write rings it, the next mrb_arm_read finds a message,
 * mrb_disarm, or mrb_close; the first commit after arming pays for the ring
 * (a futex wake-up and a datagram) whether anyone still waits or not, so
 * disarm when you stop waiting. */
int mrb_arm_read(struct mrb_ring *ring, int *timeout_ms);

/* The writer's side: drains the write doorbell, then returns 1 if a message
 * of `len` bytes fits now, or arms the doorbell and returns 0: wait for the
 * descriptor (at most *timeout_ms) and write. MRB_EMSGSIZE if `len` can
 * never fit. At most 32 writers of a ring wait on doorbells at once; one
 * more gets 0 with *timeout_ms = 10 and no doorbell (it polls). Producer
 * call, any thread; does not block. */
int mrb_arm_write(struct mrb_ring *ring, size_t len, int *timeout_ms);

/* Disarms the handle's `which` doorbell, if armed (a cancelled wait), so
 * that producers (or the consumer) no longer ring it. The descriptor may
 * still become readable once afterwards (a ring already under way); the
 * next arming takes that away. 0, MRB_EINVAL, MRB_ECLOSED, MRB_EFORKED. Any
 * thread; does not block. */
int mrb_disarm(struct mrb_ring *ring, int which);

/* ---- Inspection (any handle; consumes nothing) ------------------------------ */

struct mrb_stats {
	uint32_t format_version;
	uint64_t capacity;         /* data bytes */
	uint64_t max_message_size; /* largest payload accepted */
	uint64_t producer_position;
	uint64_t consumer_position;
	uint64_t used_bytes; /* producer - consumer position */
	uint64_t messages_written;
	uint64_t bytes_written; /* payload bytes */
	uint64_t messages_read;
	uint64_t bytes_read;
	uint64_t full_count;        /* writes refused as full */
	uint64_t recovered_records; /* abandoned records skipped by recovery */
	uint64_t recovered_bytes;
	int32_t consumer_pid;   /* 0 when no consumer is attached */
	int32_t consumer_alive; /* 1 alive, 0 dead or none */
	uint32_t producers;     /* producer slots in use */
	uint32_t producers_alive;
	uint32_t creator_pid;
	uint64_t created_unix_ns;
	uint64_t skipped_live;   /* live writers' claims skipped by the hung-writer timeout */
	uint64_t delivered_late; /* messages of such claims delivered after all */
	/* The ring's random stamp salt, fixed at creation: with created_unix_ns
	 * it names this ring (a file re-created at the same path gets another),
	 * e.g. for message ids a forwarder derives from ring and position. */
	uint64_t salt;
	/* The sole-producer lease (docs/FORMAT.md section 7): while one
	 * producer writes alone it claims with a plain store instead of a CAS
	 * (the fast path). The pid of the process whose producer slot holds the
	 * lease and the slot's index; 0 and UINT32_MAX when nobody holds it
	 * (producers claim by CAS), it is being taken back, or the shared word
	 * does not name a current slot owner. */
	int32_t sole_producer_pid;
	uint32_t sole_producer_slot;
};

int mrb_stats(struct mrb_ring *ring, struct mrb_stats *stats);

uint64_t mrb_capacity(struct mrb_ring *ring);         /* 0 if closed */
uint64_t mrb_max_message_size(struct mrb_ring *ring); /* 0 if closed */

/* ---- Subscribers -------------------------------------------------------------
 * Several readers of one stream (docs/FORMAT.md section 8, docs/SUBSCRIBERS.md).
 * A subscriber is a handle of its own: mrb_subscribe opens the ring and joins
 * its reader table, and the handle then reads with the consumer calls
 * (mrb_read, mrb_read_many, mrb_read_batch, mrb_peek/mrb_release,
 * mrb_read_wait, mrb_wait_readable, mrb_read_len*), which on it read the
 * subscriber's own position. mrb_close leaves the table.
 *
 *  - Durable (the default; fan-out rings only, MRB_EMODE on a queue ring):
 *    sees every message from where it joined, in order; producers never
 *    overwrite what it has not read (the ring's free space is bounded by the
 *    slowest durable subscriber).
 *  - Named (opts->name): when a process joins with the name of a subscriber
 *    whose handle is gone, it resumes right after the last message that
 *    subscriber released. A name held by a live handle: MRB_ENAMEBUSY. An
 *    unnamed subscriber joins at the live end and its entry is freed when
 *    its handle closes or its process dies; a named one that is new joins
 *    at the live end too (MRB_SUBSCRIBE_FROM_OLDEST: at the oldest message
 *    still in the ring).
 *  - Dead or hung (MRB_SUBSCRIBE_EVICT): a durable subscriber's policy. By
 *    default its messages wait for it: a named subscriber whose process died
 *    keeps holding the space until it returns or mrb_unsubscribe removes
 *    it. With MRB_SUBSCRIBE_EVICT it is evicted once it has held producers
 *    back for evict_after_ns (or at once when its process is found dead):
 *    producers move on, and its next read returns MRB_ELAPPED once if
 *    messages were overwritten meanwhile (the count is in
 *    mrb_subscriber_info), then continues: from its own position if that
 *    is still intact, else (lapped while reading) from the start of the
 *    producers' current lap, the last multiple of the capacity at or below
 *    the producer position, which is where a record is known to begin
 *    (records never cross it); intact messages before it are skipped and
 *    counted as lost. A named one resumed by mrb_subscribe after an
 *    eviction continues from the release position if its own was passed.
 *    An evictable subscriber validates every copy, so it cannot use
 *    mrb_peek (MRB_EINVAL).
 *  - Lossy (MRB_SUBSCRIBE_LOSSY; either mode): never holds producers back.
 *    When producers lap it, it skips to the start of the producers' current
 *    lap (as above) and counts the bytes it lost (lost_bytes, lost_events); every message it
 *    returns was copied and then checked not to have been overwritten, so
 *    it is never torn. It cannot use mrb_peek (MRB_EINVAL).
 *
 * Limits: MRB_MAX_SUBSCRIBERS entries per ring (MRB_ENOSUB beyond), names
 * of 1..MRB_SUBSCRIBER_NAME_MAX bytes without NUL. A subscriber handle can
 * also write. The hung-writer timeout is not available on subscribers
 * (mrb_set_recovery_timeout with a positive timeout: MRB_EINVAL); dead
 * writers' claims are recovered as for a consumer.
 */
#define MRB_MAX_SUBSCRIBERS     64
#define MRB_SUBSCRIBER_NAME_MAX 31

enum mrb_subscribe_flags {
	MRB_SUBSCRIBE_LOSSY = 1u << 0,
	MRB_SUBSCRIBE_EVICT = 1u << 1,
	MRB_SUBSCRIBE_FROM_OLDEST = 1u << 2,
};

struct mrb_subscribe_options {
	unsigned flags;         /* enum mrb_subscribe_flags */
	const char *name;       /* NULL or "" for an unnamed subscriber */
	int64_t evict_after_ns; /* MRB_SUBSCRIBE_EVICT: > 0 */
};

/*
 * Opens the ring at `path` as a subscriber (`opts` may be NULL: unnamed,
 * durable). Errors: those of mrb_open, MRB_EMODE, MRB_ENOSUB,
 * MRB_ENAMEBUSY, MRB_EINVAL (flags, name, LOSSY with EVICT, EVICT without
 * a timeout). Thread safety: any thread, any process.
 */
int mrb_subscribe(struct mrb_ring *ring, const char *path,
                  const struct mrb_subscribe_options *opts);

/*
 * Removes the named subscriber from the ring at `path` for good, so that
 * its unread messages stop holding producers back. MRB_ENAMEBUSY while a
 * live handle uses the name, -ENOENT if there is no such subscriber.
 */
int mrb_unsubscribe(const char *path, const char *name);

enum mrb_subscriber_state {
	MRB_SUBSCRIBER_JOINING = 1,
	MRB_SUBSCRIBER_ACTIVE = 2,   /* its handle is open (or not yet seen gone) */
	MRB_SUBSCRIBER_DETACHED = 3, /* named, no handle: its messages wait for it */
	MRB_SUBSCRIBER_EVICTED = 4,  /* no longer holds producers back */
};

struct mrb_subscriber_info {
	char name[MRB_SUBSCRIBER_NAME_MAX + 1]; /* "" when unnamed */
	unsigned flags;                         /* enum mrb_subscribe_flags given at join
	                                         * (FROM_OLDEST: own handle only) */
	int32_t state;                          /* enum mrb_subscriber_state */
	int32_t pid;                            /* 0 when no handle owns it */
	int32_t alive;                          /* 1 if that process lives */
	uint32_t index;                         /* entry in the reader table */
	int64_t evict_after_ns;
	uint64_t position;     /* next message it reads */
	uint64_t lag_bytes;    /* producer position - position */
	uint64_t lag_messages; /* committed messages between the two */
	uint64_t messages_read;
	uint64_t bytes_read;
	uint64_t lost_bytes;  /* overwritten before it read them */
	uint64_t lost_events; /* times it was lapped or evicted with a loss */
	uint64_t evictions;
};

/*
 * Lists the ring's subscribers (any handle, read-only ones too): fills up to
 * `max` entries and returns how many exist, or an error. For a queue ring
 * with no lossy subscriber, 0.
 */
int64_t mrb_subscribers(struct mrb_ring *ring, struct mrb_subscriber_info *out, size_t max);

/* This subscriber handle's own entry; MRB_EINVAL on a non-subscriber. */
int mrb_subscriber_info(struct mrb_ring *ring, struct mrb_subscriber_info *info);

/* 1 for a fan-out ring, 0 for a queue ring, or an error. */
int mrb_is_fanout(struct mrb_ring *ring);

/* ---- Worker groups -----------------------------------------------------------
 * Competing consumers in a fan-out ring (docs/FORMAT.md section 9,
 * docs/WORKERS.md): any number of processes (up to MRB_MAX_WORKERS per ring)
 * join a named group, and each message goes to exactly one worker of the
 * group. A group is a durable reader: producers never overwrite a message
 * the group has not finished, so a new group starts at the oldest message
 * still in the ring for it, and its messages wait while no worker is there.
 * A ring can have groups and subscribers side by side (jobs to workers while
 * a recorder sees every one). A group stays until mrb_worker_group_remove
 * removes it (at most MRB_MAX_GROUPS per ring).
 *
 * A worker is a handle of its own (mrb_worker_join) and reads with the
 * consumer calls mrb_read, mrb_read_many, mrb_read_wait, mrb_wait_readable
 * and mrb_read_len*: each read call on it first releases the messages its
 * previous read call returned (they are done), then takes the next ones: a
 * run of up to max_count messages claimed at once (mrb_read: one). The
 * messages a worker has taken and not released are held by it. mrb_worker_ack
 * releases them without taking more; mrb_close releases them too. Other
 * consumer calls (mrb_peek, mrb_read_batch, mrb_hold, ...) give MRB_EINVAL.
 *
 * Order: messages are taken in the order producers committed them (claim
 * order); workers process them in parallel, so the order in which they
 * finish is not kept.
 *
 * A dead worker (its process is gone): another worker of the group takes
 * its slot over and handles exactly the messages it held, by the group's
 * policy: MRB_AT_LEAST_ONCE redelivers them to that worker (so a message
 * may be processed twice: only one that a dead worker held), MRB_AT_MOST_ONCE
 * drops them and counts them (a message is never handed to two workers).
 * A hung worker (hold_timeout_ns > 0: it held messages that long without
 * releasing them) is treated the same way while it lives; when it resumes,
 * its release is refused (its read call or mrb_worker_ack returns
 * MRB_ESTALE once, nothing is released, stale_releases counts it) and it
 * then takes new messages as before. A worker redelivering a dead or hung
 * worker's messages that makes no progress for the hold timeout is taken
 * over the same way. Workers of a group with a hold timeout copy with
 * atomic loads and check that they still own what they copied (producers
 * store payloads with atomic words meanwhile).
 *
 * Waking: a new message wakes one sleeping worker of each group, and a
 * worker that takes messages while more wait wakes the next one; producers
 * make no system call while no reader sleeps. Sleeps are bounded (100 ms
 * slices), so a woken worker that dies before passing the turn on costs
 * latency, not a hang; sleeping workers look for dead and hung workers.
 */
#define MRB_MAX_WORKERS    48
#define MRB_MAX_GROUPS     4
#define MRB_GROUP_NAME_MAX 31

enum mrb_worker_policy {
	MRB_AT_LEAST_ONCE = 0,
	MRB_AT_MOST_ONCE = 1,
};

struct mrb_worker_options {
	unsigned policy;         /* enum mrb_worker_policy */
	int64_t hold_timeout_ns; /* 0: never time out a live worker */
};

/*
 * Opens the fan-out ring at `path` as a worker of group `group` (1 to
 * MRB_GROUP_NAME_MAX bytes), creating the group with `opts` if it does not
 * exist (opts NULL: MRB_AT_LEAST_ONCE, no hold timeout). Joining an existing
 * group with opts whose policy or timeout differ gives MRB_EINVAL; opts NULL
 * joins with the group's own. Errors: those of mrb_open, MRB_EMODE (a queue
 * ring), MRB_ENOWORKER (every worker slot, or every group, is taken),
 * MRB_EINVAL, MRB_ETIMEDOUT (the group table stayed locked by a live process
 * for 0.5 s). Any thread, any process.
 */
int mrb_worker_join(struct mrb_ring *ring, const char *path, const char *group,
                    const struct mrb_worker_options *opts);

/*
 * Releases the messages this worker holds (those its last read call
 * returned): they are done. 0, MRB_ESTALE (they were taken from it after
 * its hold timeout: redelivered or dropped; counted), MRB_EINVAL on a handle
 * that is not a worker (MRB_EMODE on a plain handle of a fan-out ring).
 * Never blocks.
 */
int mrb_worker_ack(struct mrb_ring *ring);

/*
 * Removes group `group` of the fan-out ring at `path` for good, so that the
 * messages it has not finished stop holding producers back and its place
 * is free for a new group. Only a group without live workers: what its dead
 * workers held is let go (neither redelivered nor counted). A worker
 * joining the same name afterwards creates a new group, which starts at
 * the oldest message still in the ring. Errors: those of mrb_open,
 * MRB_EINVAL, MRB_EMODE (a queue ring), -ENOENT (no such group),
 * MRB_ENAMEBUSY (a live worker is in the group, or was joining or leaving
 * it: try again), MRB_ETIMEDOUT (as mrb_worker_join). Any thread, any
 * process.
 */
int mrb_worker_group_remove(const char *path, const char *group);

struct mrb_group_info {
	char name[MRB_GROUP_NAME_MAX + 1];
	unsigned policy; /* enum mrb_worker_policy */
	uint32_t index;
	int64_t hold_timeout_ns;
	uint64_t claim_position; /* the next message no worker has taken */
	uint64_t lag_bytes;      /* producer position - claim position */
	uint32_t workers;        /* worker slots of the group in use */
	uint32_t workers_alive;
	uint64_t messages_done; /* released by its workers */
	uint64_t bytes_done;
	uint64_t redelivered;    /* handed again after their worker died or hung */
	uint64_t dropped;        /* given up (at-most-once) after that */
	uint64_t stale_releases; /* late releases refused */
};

/* Lists the ring's worker groups (any handle): fills up to `max` and returns
 * how many exist, or an error. */
int64_t mrb_worker_groups(struct mrb_ring *ring, struct mrb_group_info *out, size_t max);

struct mrb_worker_info {
	uint32_t index; /* worker slot */
	uint32_t group; /* group index (mrb_group_info.index) */
	int32_t pid;
	int32_t alive;
	int32_t holding;    /* 1 while it holds messages */
	int32_t rescued;    /* 1 while another worker handles what it held */
	uint64_t held_from; /* the held range [held_from, held_to) */
	uint64_t held_to;
	uint64_t messages_done;
	uint64_t bytes_done;
};

/* Lists the ring's workers (any handle): fills up to `max` and returns how
 * many exist, or an error. */
int64_t mrb_workers(struct mrb_ring *ring, struct mrb_worker_info *out, size_t max);

/* ---- Crash recovery ----------------------------------------------------------
 * A writer that dies (or closes its handle) between claiming space and
 * committing leaves a claim that holds the consumer back. Every claim is
 * attributed to its writer (docs/FORMAT.md sections 4, 6, 7): recovery turns
 * the claims of writers that are gone into padding, which the consumer
 * skips, and counts them (mrb_stats: recovered_records/_bytes). A live
 * writer's claim is never skipped by default, however long it takes. No
 * committed message is lost and no partial message is ever delivered; a
 * killed batch writer loses a suffix of its batch, never a message in the
 * middle.
 *
 * The read calls recover by themselves, about 10 ms after an unfinished
 * claim starts blocking the consumer and then every 10 ms.
 *
 * mrb_recover(), called by the consumer's handle (it attaches as consumer,
 * MRB_ECONSUMER_BUSY if another live handle is the consumer), does the same
 * check now; with stale_after_ns >= 0 it also observes a live writer's claim
 * for that long (blocking, in slices that mrb_close interrupts: then
 * MRB_ECLOSED) and then skips it as mrb_set_recovery_timeout does. Returns
 * 1 if the consumer can move on (a claim was padded or skipped), 0 if not,
 * or an error.
 */
int mrb_recover(struct mrb_ring *ring, int64_t stale_after_ns);

/* Sets how long a read call lets a live writer's unfinished claim block the
 * consumer before skipping it (hung writers); 0 (default): never, only
 * claims of writers that are gone are skipped; < 0: no automatic recovery
 * at all. A skipped live claim is not written to: the consumer reads on
 * past it, but does not release its space (consumer_position stays at the
 * claim) until the writer is done with it or gone, and then delivers what
 * the writer committed there, late (mrb_stats: skipped_live,
 * delivered_late). One such claim at a time. Per handle, consumer side. */
int mrb_set_recovery_timeout(struct mrb_ring *ring, int64_t stale_after_ns);

/* ---- Non-consuming inspection of unread records (tools, debugging) ---------- */

enum mrb_record_state {
	MRB_RECORD_COMMITTED = 0, /* a message the consumer will receive */
	MRB_RECORD_BUSY = 1,      /* reserved, being written */
	MRB_RECORD_PADDING = 2,   /* skipped by the consumer (wrap gap, abort, recovery) */
	MRB_RECORD_UNWRITTEN = 3, /* claimed, header not yet written; walk stops here */
};

struct mrb_record_info {
	uint64_t position; /* absolute ring position of the record header */
	uint64_t length;   /* payload bytes (0 for UNWRITTEN) */
	uint32_t writer_pid;
	uint32_t state;   /* enum mrb_record_state */
	const void *data; /* payload in the mapping; may change under you */
};

typedef int (*mrb_record_visitor)(void *ctx, const struct mrb_record_info *rec);

/*
 * Walks the records between the consumer and producer positions, as they are
 * now, calling `visit` for each (up to max_records, 0 = no limit) until it
 * returns non-zero. Consumes nothing and does not attach as consumer, so it
 * works while another process reads. A snapshot of live memory: payloads may
 * be overwritten while visited (memory-safe, but possibly torn). Returns the
 * number visited or an error (MRB_ECORRUPT on an invalid record).
 */
int64_t mrb_inspect(struct mrb_ring *ring, mrb_record_visitor visit, void *ctx, size_t max_records);

/*
 * Calls shaped for bindings (core/src/ffi.c): no out-parameters and no arrays
 * of structs, so that one crossing from Go or Python into C carries a whole
 * call with plain arguments and one plain result.
 */

/*
 * Writes count messages stored back to back at data, message i being lens[i]
 * bytes, with mrb_write_batch; stops at the first that does not fit. Returns
 * how many were written (0 < n <= count; 0 when count is 0), or, when the
 * first message is not written, its error (MRB_EFULL, MRB_EMSGSIZE,
 * MRB_ECLOSED, ...). Any handle, any thread; never blocks.
 */
int64_t mrb_write_packed(struct mrb_ring *ring, const void *data, const size_t *lens, size_t count);

/*
 * Copies the next message into buf and returns its length (>= 1). If the
 * message is longer than buf_size, nothing is copied or consumed and the
 * result is still its length: call again with a buffer that large. Otherwise
 * a negative code as mrb_read (MRB_EEMPTY, MRB_ECLOSED, MRB_ECONSUMER_BUSY,
 * MRB_ECORRUPT). Consumer; never blocks.
 */
int64_t mrb_read_len(struct mrb_ring *ring, void *buf, size_t buf_size);

/*
 * mrb_read_len, waiting up to timeout_ns (< 0: forever) for a message as
 * mrb_read_wait does: MRB_ETIMEDOUT, MRB_EINTR, or as mrb_read_len. Consumer;
 * blocks.
 */
int64_t mrb_read_len_wait(struct mrb_ring *ring, void *buf, size_t buf_size, int64_t timeout_ns);

/* ---- Format conversion ---------------------------------------------------- */

enum mrb_upgrade_flags {
	/* Convert even though a process named in the old ring seems alive
	 * (its unfinished records are dropped; it must not write again). */
	MRB_UPGRADE_FORCE = 1u << 0,
};

/*
 * Converts the format 1 ring at `path` into the current format, offline:
 * its unread committed messages are copied in order into a new ring of the
 * same capacity and permission bits, which replaces the file atomically.
 * Refuses with -EBUSY while its consumer or a producer named in it lives
 * (format 1 cannot attribute their claims), unless MRB_UPGRADE_FORCE.
 * Returns the number of messages carried over, or MRB_EVERSION (not a
 * format 1 ring; a current one needs no upgrade), MRB_EFORMAT, MRB_ECORRUPT,
 * -errno. Records left unfinished by dead writers are dropped.
 */
int mrb_upgrade(const char *path, unsigned flags);

#ifdef __cplusplus
}
#endif

#endif /* MRB_MRB_H */
