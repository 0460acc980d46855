/* SPDX-License-Identifier: MIT */
/*
 * Doorbells that reach across network namespaces: io_uring FUTEX_WAIT
 * (Linux 6.7+) next to the datagram socket (doorbell.c).
 *
 * A doorbell's datagram is addressed by an abstract socket name, which lives
 * in a network namespace: a waker in another one (containers that share
 * /dev/shm but not the network) cannot reach it. But every waker that rings
 * also bumps the futex word a futex sleeper of the same side would sleep on
 * (data_seq, space_seq) and makes a FUTEX_WAKE on it, because an armed
 * doorbell counts in the same waiter count as a sleeper (wait.c: "the side
 * that makes progress bumps the word and wakes only if the count is
 * non-zero"). A futex wait queued through io_uring is woken by that wake,
 * from any process that maps the file, in any namespace: wakers need no
 * change and producers still pay nothing while nobody is armed.
 *
 * So where the kernel allows it, the handle's doorbell descriptor is an
 * epoll instance holding the datagram socket and an io_uring whose
 * completion queue becomes readable when its FUTEX_WAIT completes (an epoll
 * descriptor is itself pollable: epoll, poll, select, libuv, asyncio and
 * Go's netpoller all wait on it). Arming queues one FUTEX_WAIT (shared, not
 * private: the word is in a MAP_SHARED file mapping) with the value the
 * arming read after counting itself in, so a wake-up between that read and
 * the queueing completes the wait at once (a spurious wake-up at worst).
 * The argument is wait.c's, with io_uring_enter in place of futex(2).
 *
 * Where io_uring is missing, disabled (kernel.io_uring_disabled), refused by
 * seccomp (Docker's default profile), lacks FUTEX_WAIT, or the environment
 * sets MRB_NO_IO_URING, the descriptor is the socket, as before: nothing
 * else changes. A kernel that refuses the first wait (its completion
 * carries an error) drops the io_uring from the epoll set for good.
 *
 * Completions are posted by task work in the thread that queued the wait:
 * if that thread sleeps in epoll_wait(2) at that moment, the call returns
 * EINTR once (the loop calls it again and finds the descriptor readable).
 * Closing the ring does the same to every thread that used it (the kernel
 * detaches it from each by task work, asynchronously): cancelling the
 * waits first would not spare them that.
 */
/* glibc: syscall, epoll, mmap */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "handle.h"

#if defined(__linux__) && !defined(__NR_io_uring_setup) &&                                         \
    (defined(__x86_64__) || defined(__aarch64__) || defined(__i386__) || defined(__arm__) ||       \
     defined(__riscv) || defined(__powerpc64__) || defined(__s390x__))
/* Headers older than Linux 5.1: the numbers are those of the common table
 * every architecture above shares for new system calls. */
#define __NR_io_uring_setup    425
#define __NR_io_uring_enter    426
#define __NR_io_uring_register 427
#endif

#if defined(__linux__) && defined(__NR_io_uring_setup)

/*
 * The io_uring ABI this file uses (include/uapi/linux/io_uring.h and
 * futex.h), restated so that the core builds against any kernel headers:
 * the installed ones may predate Linux 6.7 (no IORING_OP_FUTEX_WAIT, no
 * FUTEX2_*) or io_uring itself. The layouts are stable kernel ABI; the
 * sizes are asserted below.
 */
#define URING_OP_FUTEX_WAIT    51 /* Linux 6.7 */
#define URING_REGISTER_PROBE   8
#define URING_OP_SUPPORTED     1u /* io_uring_probe_op.flags */
#define URING_FEAT_SINGLE_MMAP 1u /* io_uring_params.features */
#define URING_OFF_SQ_RING      0ull
#define URING_OFF_CQ_RING      0x8000000ull
#define URING_OFF_SQES         0x10000000ull
#define URING_FUTEX2_SIZE_U32  0x02u       /* without FUTEX2_PRIVATE (128): shared */
#define URING_FUTEX_MATCH_ANY  0xffffffffu /* FUTEX_BITSET_MATCH_ANY: any wake */

struct uring_sqe {
	uint8_t opcode;
	uint8_t flags;
	uint16_t ioprio;
	int32_t fd;    /* FUTEX_WAIT: FUTEX2_* flags */
	uint64_t off;  /* FUTEX_WAIT: the expected value (addr2) */
	uint64_t addr; /* FUTEX_WAIT: the word */
	uint32_t len;
	uint32_t op_flags; /* FUTEX_WAIT: futex_flags, must be 0 */
	uint64_t user_data;
	uint16_t buf_index;
	uint16_t personality;
	int32_t file_index;
	uint64_t addr3; /* FUTEX_WAIT: the wake mask */
	uint64_t pad;
};

struct uring_cqe {
	uint64_t user_data;
	int32_t res;
	uint32_t flags;
};

struct uring_sq_offsets {
	uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
	uint64_t resv2;
};

struct uring_cq_offsets {
	uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
	uint64_t resv2;
};

struct uring_params {
	uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd;
	uint32_t resv[3];
	struct uring_sq_offsets sq_off;
	struct uring_cq_offsets cq_off;
};

struct uring_probe_op {
	uint8_t op;
	uint8_t resv;
	uint16_t flags;
	uint32_t resv2;
};

struct uring_probe {
	uint8_t last_op;
	uint8_t ops_len;
	uint16_t resv;
	uint32_t resv2[3];
	struct uring_probe_op ops[256];
};

_Static_assert(sizeof(struct uring_sqe) == 64, "io_uring_sqe");
_Static_assert(offsetof(struct uring_sqe, user_data) == 32, "io_uring_sqe");
_Static_assert(offsetof(struct uring_sqe, addr3) == 48, "io_uring_sqe");
_Static_assert(sizeof(struct uring_cqe) == 16, "io_uring_cqe");
_Static_assert(sizeof(struct uring_params) == 120, "io_uring_params");
_Static_assert(offsetof(struct uring_probe, ops) == 16, "io_uring_probe");

/* Waits in flight at once: one per arming whose value differs from every
 * wait already queued (threads of one handle arming its write doorbell
 * together). The rings have room for them and their completions. */
#define URING_WAITS   4
#define URING_ENTRIES 8

struct mrbi_uring_bell {
	int epfd;    /* the doorbell descriptor the caller waits on */
	int ring_fd; /* in epfd until the kernel refuses a wait */
	bool usable;
	/* Held by the one thread touching the rings (arming and disarming
	 * threads of one handle may overlap); short, never across a wait. */
	_Atomic uint32_t lock;
	void *sq_map, *cq_map;
	size_t sq_map_len, cq_map_len;
	struct uring_sqe *sqes;
	size_t sqes_len;
	/* The rings' shared words (written by the kernel too). */
	_Atomic uint32_t *sq_head, *sq_tail, *cq_head, *cq_tail;
	uint32_t *sq_array;
	uint32_t sq_mask, cq_mask;
	struct uring_cqe *cqes;
	/* Waits in flight (bit i: user_data i + 1) and their values. */
	uint32_t in_flight;
	uint32_t values[URING_WAITS];
};

static int sys_setup(unsigned entries, struct uring_params *p)
{
	return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit)
{
	return (int)syscall(__NR_io_uring_enter, fd, to_submit, 0, 0, NULL, (size_t)0);
}

static int sys_register(int fd, unsigned op, void *arg, unsigned n)
{
	return (int)syscall(__NR_io_uring_register, fd, op, arg, n);
}

/* Whether this kernel's io_uring has FUTEX_WAIT. */
static bool probe_futex_wait(int ring_fd)
{
	struct uring_probe *probe = calloc(1, sizeof(*probe));
	if (probe == NULL)
		return false;
	bool ok = sys_register(ring_fd, URING_REGISTER_PROBE, probe, 256) == 0 &&
	          probe->last_op >= URING_OP_FUTEX_WAIT &&
	          (probe->ops[URING_OP_FUTEX_WAIT].flags & URING_OP_SUPPORTED) != 0;
	free(probe);
	return ok;
}

static void bell_free(struct mrbi_uring_bell *b)
{
	if (b->epfd >= 0)
		close(b->epfd);
	if (b->sqes != NULL)
		munmap(b->sqes, b->sqes_len);
	if (b->cq_map != NULL && b->cq_map != b->sq_map)
		munmap(b->cq_map, b->cq_map_len);
	if (b->sq_map != NULL)
		munmap(b->sq_map, b->sq_map_len);
	if (b->ring_fd >= 0)
		close(b->ring_fd); /* cancels whatever is still queued */
	free(b);
}

static bool map_rings(struct mrbi_uring_bell *b, const struct uring_params *p)
{
	b->sq_map_len = p->sq_off.array + p->sq_entries * sizeof(uint32_t);
	b->cq_map_len = p->cq_off.cqes + p->cq_entries * sizeof(struct uring_cqe);
	bool single = (p->features & URING_FEAT_SINGLE_MMAP) != 0;
	if (single && b->cq_map_len > b->sq_map_len)
		b->sq_map_len = b->cq_map_len;
	void *sq = mmap(NULL, b->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
	                b->ring_fd, (off_t)URING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		return false;
	b->sq_map = sq;
	void *cq = sq;
	if (!single) {
		cq = mmap(NULL, b->cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		          b->ring_fd, (off_t)URING_OFF_CQ_RING);
		if (cq == MAP_FAILED)
			return false;
	}
	b->cq_map = cq;
	b->sqes_len = p->sq_entries * sizeof(struct uring_sqe);
	void *sqes = mmap(NULL, b->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
	                  b->ring_fd, (off_t)URING_OFF_SQES);
	if (sqes == MAP_FAILED)
		return false;
	b->sqes = sqes;
	uint8_t *s = sq, *c = cq;
	b->sq_head = (_Atomic uint32_t *)(void *)(s + p->sq_off.head);
	b->sq_tail = (_Atomic uint32_t *)(void *)(s + p->sq_off.tail);
	b->sq_mask = *(uint32_t *)(void *)(s + p->sq_off.ring_mask);
	b->sq_array = (uint32_t *)(void *)(s + p->sq_off.array);
	b->cq_head = (_Atomic uint32_t *)(void *)(c + p->cq_off.head);
	b->cq_tail = (_Atomic uint32_t *)(void *)(c + p->cq_off.tail);
	b->cq_mask = *(uint32_t *)(void *)(c + p->cq_off.ring_mask);
	b->cqes = (struct uring_cqe *)(void *)(c + p->cq_off.cqes);
	return true;
}

struct mrbi_uring_bell *mrbi_uring_open(int sock_fd)
{
	const char *off = getenv("MRB_NO_IO_URING");
	if (off != NULL && off[0] != '\0' && strcmp(off, "0") != 0)
		return NULL;
	struct mrbi_uring_bell *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->epfd = -1;
	struct uring_params p;
	memset(&p, 0, sizeof(p));
	/* ENOSYS (no io_uring), EPERM (io_uring_disabled, seccomp), ENOMEM:
	 * the socket alone, as before. */
	b->ring_fd = sys_setup(URING_ENTRIES, &p);
	if (b->ring_fd < 0 || !probe_futex_wait(b->ring_fd) || !map_rings(b, &p)) {
		bell_free(b);
		return NULL;
	}
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data = {.u64 = 0}};
	if (b->epfd < 0 || fcntl(b->epfd, F_SETFL, O_NONBLOCK) != 0 ||
	    epoll_ctl(b->epfd, EPOLL_CTL_ADD, sock_fd, &ev) != 0 ||
	    epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->ring_fd, &ev) != 0) {
		bell_free(b);
		return NULL;
	}
	b->usable = true;
	return b;
}

void mrbi_uring_close(struct mrbi_uring_bell *b)
{
	if (b != NULL)
		bell_free(b);
}

int mrbi_uring_fd(const struct mrbi_uring_bell *b)
{
	return b->epfd;
}

static void lock(struct mrbi_uring_bell *b)
{
	uint32_t expected = 0;
	while (!atomic_compare_exchange_weak_explicit(&b->lock, &expected, 1, memory_order_acquire,
	                                              memory_order_relaxed)) {
		expected = 0;
		sched_yield();
	}
}

static void unlock(struct mrbi_uring_bell *b)
{
	atomic_store_explicit(&b->lock, 0, memory_order_release);
}

/* The kernel refused a wait or a submission: the socket alone from now on
 * (the ring leaves the epoll set, so a completion still to come cannot keep
 * the descriptor readable). */
static void give_up(struct mrbi_uring_bell *b)
{
	b->usable = false;
	(void)epoll_ctl(b->epfd, EPOLL_CTL_DEL, b->ring_fd, NULL);
}

/* A wait's result that says the kernel will not wait for us: anything but
 * 0 (woken), -EAGAIN (the word had moved), -ECANCELED (the queueing thread
 * exited), -EINTR or -ETIME. -EINVAL, -EOPNOTSUPP, ... are a kernel that
 * probes FUTEX_WAIT but refuses our request. */
static bool refused(int res)
{
	return res != 0 && res != -EAGAIN && res != -ECANCELED && res != -EINTR && res != -ETIME;
}

/* Takes every completion off the queue (under the lock). */
static void reap(struct mrbi_uring_bell *b)
{
	/* Acquire: pairs with the kernel's release of the tail, which
	 * follows its write of the entries. */
	uint32_t head = atomic_load_explicit(b->cq_head, memory_order_relaxed);
	uint32_t tail = atomic_load_explicit(b->cq_tail, memory_order_acquire);
	for (; head != tail; head++) {
		const struct uring_cqe *cqe = &b->cqes[head & b->cq_mask];
		uint64_t id = cqe->user_data;
		if (id >= 1 && id <= URING_WAITS)
			b->in_flight &= ~(1u << (id - 1));
		if (refused(cqe->res))
			give_up(b);
	}
	/* Release: the entries are read before the kernel may reuse them. */
	atomic_store_explicit(b->cq_head, head, memory_order_release);
}

void mrbi_uring_reap(struct mrbi_uring_bell *b)
{
	if (b == NULL)
		return;
	lock(b);
	if (b->usable)
		reap(b);
	unlock(b);
}

/*
 * Makes sure a FUTEX_WAIT on `word` is in flight that a wake-up after the
 * caller read `observed` completes. A wait already in flight with the same
 * value does: it was queued while the word held that value (or it completes
 * at once), so no wake-up since the caller's read has passed it by. A wait
 * with another value might have been queued after such a wake-up, with a
 * later value: queue one with ours too.
 */
void mrbi_uring_arm(struct mrbi_uring_bell *b, _Atomic uint32_t *word, uint32_t observed)
{
	if (b == NULL)
		return;
	lock(b);
	if (b->usable)
		reap(b);
	int slot = -1;
	for (int i = 0; b->usable && i < URING_WAITS; i++) {
		if ((b->in_flight & (1u << i)) == 0) {
			if (slot < 0)
				slot = i;
		} else if (b->values[i] == observed) {
			slot = -2; /* covered */
			break;
		}
	}
	/* slot -1: every wait in flight has another value (four threads
	 * arming at once with four values): the socket and the caller's
	 * bounded wait cover the rare case. */
	if (b->usable && slot >= 0) {
		uint32_t sq_tail = atomic_load_explicit(b->sq_tail, memory_order_relaxed);
		uint32_t index = sq_tail & b->sq_mask;
		struct uring_sqe *sqe = &b->sqes[index];
		memset(sqe, 0, sizeof(*sqe));
		sqe->opcode = URING_OP_FUTEX_WAIT;
		sqe->fd = (int32_t)URING_FUTEX2_SIZE_U32;
		sqe->addr = (uint64_t)(uintptr_t)word;
		sqe->off = observed;
		sqe->addr3 = URING_FUTEX_MATCH_ANY;
		sqe->user_data = (uint64_t)slot + 1;
		b->sq_array[index] = index;
		/* Release: the entry is written before the kernel sees the
		 * tail move. */
		atomic_store_explicit(b->sq_tail, sq_tail + 1, memory_order_release);
		if (sys_enter(b->ring_fd, 1) == 1) {
			b->in_flight |= 1u << slot;
			b->values[slot] = observed;
			/* A wait the kernel refused at once (its completion
			 * is there already): give up now rather than after a
			 * spurious wake-up. Other completions stay for the
			 * caller's loop to see (one may be this wait's, the
			 * word having moved). */
			uint32_t head = atomic_load_explicit(b->cq_head, memory_order_relaxed);
			uint32_t tail = atomic_load_explicit(b->cq_tail, memory_order_acquire);
			bool refusal = false;
			for (; head != tail; head++)
				refusal |= refused(b->cqes[head & b->cq_mask].res);
			if (refusal)
				reap(b);
		} else {
			/* Not consumed (EBUSY, EAGAIN, ...): an entry left in
			 * the queue would be submitted later with a stale
			 * value; simplest to stop here. */
			give_up(b);
		}
	}
	unlock(b);
}

#else /* no io_uring on this platform */

struct mrbi_uring_bell *mrbi_uring_open(int sock_fd)
{
	(void)sock_fd;
	return NULL;
}
void mrbi_uring_close(struct mrbi_uring_bell *b)
{
	(void)b;
}
int mrbi_uring_fd(const struct mrbi_uring_bell *b)
{
	(void)b;
	return -1;
}
void mrbi_uring_reap(struct mrbi_uring_bell *b)
{
	(void)b;
}
void mrbi_uring_arm(struct mrbi_uring_bell *b, _Atomic uint32_t *word, uint32_t observed)
{
	(void)b;
	(void)word;
	(void)observed;
}

#endif
