/* SPDX-License-Identifier: MIT */
/*
 * Doorbells: waiting inside an event loop (docs/FORMAT.md section 6).
 *
 * A futex sleeper blocks a thread; an event loop wants a descriptor. A
 * doorbell is an abstract Unix datagram socket the waiting handle binds;
 * its name is in shared memory (struct mrb_doorbell) while it is armed.
 * Arming is the futex sleeper's handshake with a different last step: count
 * yourself in the waiter count, publish your name, fence and membarrier,
 * re-check the ring; then, instead of FUTEX_WAIT, return to the loop. A
 * waker that sees the count non-zero (the same test it makes for futex
 * sleepers, so producers pay nothing while nobody waits) exchanges the name
 * for 0 and sends one byte to it. The exchange makes the ring one-shot: one
 * datagram per arming, from the first waker only, and whoever takes a name
 * out of the word takes its count out of the waiter count (exactly once).
 * An armed waiter that died is thus cleaned up by the next waker, whose
 * datagram is refused.
 *
 * The consumer, each subscriber (its reader entry) and each worker (its
 * worker slot, counted in its group's work_armed too) has a read doorbell.
 * Workers are rung all at once, not one with turn passing as futex
 * sleepers are (ring_workers says why). Registration and settling are
 * wait.c's (mrbi_waiter_register, mrbi_waiter_settle): the sleeper's steps
 * with the name published in between.
 *
 * Why a datagram socket: any process that shares the ring file can reach
 * it by name without fd passing (an eventfd cannot), it never raises SIGPIPE
 * and never blocks the sender (a FIFO does both), it works with every event
 * loop and with Go's netpoller, and it needs no recent kernel. Its cost
 * falls on the slow path only: a sendto(2) of about 2 us per arming, next
 * to the FUTEX_WAKE the waker makes anyway. Its one blind spot, a waker in
 * another network namespace, is covered where the kernel allows by an
 * io_uring FUTEX_WAIT on the side's futex word next to the socket
 * (doorbell_uring.c; the descriptor is then an epoll set of both). For it,
 * wakers ring before they bump and wake the word, and arming reads the word
 * before it publishes its name: whoever takes a name wakes the word after.
 */
/* glibc: SOCK_NONBLOCK, SOCK_CLOEXEC, MSG_NOSIGNAL */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#if defined(__linux__)
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#include "handle.h"

/* Longest a descriptor waiter may wait before arming again: a waker killed
 * between its progress and its ring costs at most this (as wait.c's 1 s
 * bound); 10 ms while a claimed record blocks the reader, so that recovery
 * runs; 1 ms when this process's membarrier failed (wait.c). */
#define MRB_DOORBELL_WAIT_MS       1000
#define MRB_DOORBELL_UNFINISHED_MS 10
#define MRB_DOORBELL_UNORDERED_MS  1
/* A worker's bound, as its futex sleep's (wait.c): rescues of a dead or
 * hung worker's run, which no write announces, happen at least this often
 * while every worker of the group waits in an event loop. */
#define MRB_DOORBELL_WORKER_MS 100
/* A writer that found every space doorbell taken polls this often. */
#define MRB_DOORBELL_NO_ENTRY_MS 10

#if defined(__linux__)
/* A worker's read doorbell name carries its group (layout.h). */
static uint32_t worker_name_bits(struct mrb_handle *h, uint32_t bits)
{
	struct mrb_doorbell *word;
	_Atomic uint32_t *group_armed;
	uint32_t group;
	mrbi_worker_doorbell(h, &word, &group_armed, &group);
	return (bits & ~(uint32_t)(MRB_DOORBELL_GROUP_MASK << MRB_DOORBELL_GROUP_SHIFT)) |
	       (uint32_t)((group & MRB_DOORBELL_GROUP_MASK) << MRB_DOORBELL_GROUP_SHIFT);
}

/* The abstract address a doorbell name stands for. Any 64-bit value read from
 * shared memory makes a valid address of this form (at worst another
 * doorbell's, which then wakes spuriously), so nothing else needs checking. */
static socklen_t doorbell_address(uint64_t name, struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	int n = snprintf(addr->sun_path + 1, sizeof(addr->sun_path) - 1,
	                 "mmap_ringbuffer.doorbell.%016" PRIx64, name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* The handle's doorbell socket for `which`, created and bound on first use;
 * returns the descriptor or -errno, and the name in *name. */
static int doorbell_socket(struct mrb_handle *h, int which, uint64_t *name)
{
	_Atomic uint64_t *slot = &h->doorbells[which];
	uint64_t v = atomic_load_explicit(slot, memory_order_acquire);
	if (v == 0) {
		int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		uint32_t bits;
		for (int attempt = 0;; attempt++) {
			/* pid in the high half: names of live processes differ
			 * but for the random half, which bind() settles. */
			bits = (uint32_t)mrbi_random64() | 1u;
			if (which == MRB_DOORBELL_READ && h->worker != NULL)
				bits = worker_name_bits(h, bits);
			struct sockaddr_un addr;
			socklen_t len = doorbell_address((uint64_t)h->pid << 32 | bits, &addr);
			if (bind(fd, (struct sockaddr *)&addr, len) == 0)
				break;
			if (errno != EADDRINUSE || attempt == 16) {
				int err = -errno;
				close(fd);
				return err;
			}
		}
		uint64_t mine = (uint64_t)(uint32_t)(fd + 1) << 32 | bits;
		/* The io_uring companion is claimed first, by CAS; its winner
		 * then publishes the word (release: a thread that sees the
		 * word sees the bound socket and the companion). A loser
		 * waits for that store, a few instructions away. */
		struct mrbi_uring_bell *b = mrbi_uring_open(fd);
		uintptr_t none = 0;
		if (atomic_compare_exchange_strong_explicit(
		        &h->uring_bells[which], &none, b != NULL ? (uintptr_t)b : MRB_NO_URING_BELL,
		        memory_order_acq_rel, memory_order_acquire)) {
			v = mine;
			atomic_store_explicit(slot, v, memory_order_release);
		} else {
			mrbi_uring_close(b);
			close(fd);
			while ((v = atomic_load_explicit(slot, memory_order_acquire)) == 0)
				sched_yield();
		}
	}
	*name = (uint64_t)h->pid << 32 | (uint32_t)v;
	return (int)(uint32_t)(v >> 32) - 1;
}

/* The doorbell's io_uring companion, NULL if it has none (doorbell_uring.c).
 * Only after doorbell_socket succeeded for `which`. */
static struct mrbi_uring_bell *uring_bell(struct mrb_handle *h, int which)
{
	uintptr_t b = atomic_load_explicit(&h->uring_bells[which], memory_order_acquire);
	return b == MRB_NO_URING_BELL ? NULL : (struct mrbi_uring_bell *)b;
}

/* Takes pending rings out of the socket: the check that follows sees what
 * they announced. */
static void doorbell_drain(int fd)
{
	char buf[64];
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0) {
	}
}

/* One byte to the doorbell `name`. Failures are ignored: ECONNREFUSED is a
 * waiter that is gone (its count was taken out with its name), EAGAIN one
 * whose queue is full (it is readable already). */
static void doorbell_send(struct mrb_handle *h, uint64_t name)
{
	/* Sent from the handle's own write doorbell (any Unix datagram socket
	 * can send; the handle's struct has no room for another descriptor). */
	uint64_t self;
	int fd = doorbell_socket(h, MRB_DOORBELL_WRITE, &self);
	if (fd < 0)
		return;
	struct sockaddr_un addr;
	socklen_t len = doorbell_address(name, &addr);
	(void)sendto(fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&addr, len);
}

static void close_plus_one(int fd_plus_one)
{
	if (fd_plus_one > 0)
		close(fd_plus_one - 1);
}
#else
static int doorbell_socket(struct mrb_handle *h, int which, uint64_t *name)
{
	(void)h;
	(void)which;
	*name = 0;
	return -ENOSYS;
}
static void doorbell_drain(int fd)
{
	(void)fd;
}
static void doorbell_send(struct mrb_handle *h, uint64_t name)
{
	(void)h;
	(void)name;
}
static void close_plus_one(int fd_plus_one)
{
	(void)fd_plus_one;
}
#endif

/* Takes one count out of a waiter count, never below zero: a count another
 * path reset (a consumer's takeover zeroes data_waiters) or a hostile value
 * must not wrap to "4 billion waiters", which would cost every write a
 * wake-up for good. */
static void count_out(_Atomic uint32_t *waiters)
{
	uint32_t cur = atomic_load_explicit(waiters, memory_order_relaxed);
	while (cur != 0 &&
	       !atomic_compare_exchange_weak_explicit(waiters, &cur, cur - 1, memory_order_seq_cst,
	                                              memory_order_relaxed)) {
	}
}

/* A doorbell word and the counts its name stands in while it is there:
 * the shared waiter count, and for a worker its group's work_armed. */
struct bell {
	struct mrb_doorbell *word;
	_Atomic uint32_t *waiters;
	_Atomic uint32_t *group_armed; /* NULL but for a worker */
};

/* Takes a name's counts out (whoever took the name out of the word). */
static void counts_out(const struct bell *b)
{
	count_out(b->waiters);
	if (b->group_armed != NULL)
		count_out(b->group_armed);
}

/* The counts `name` stands in, taken out of `b`'s word: a worker's go to
 * the group its name carries (layout.h), which is the slot's own group
 * unless the slot changed hands since the caller looked at it. */
static struct bell named(struct mrb_handle *h, const struct bell *b, uint64_t name)
{
	struct bell n = *b;
	if (n.group_armed != NULL)
		n.group_armed = &h->header->groups[doorbell_name_group(name)].work_armed;
	return n;
}

/* Takes `name` out of the word if it is still there, and with it its
 * counts. */
static void disarm_bell(const struct bell *b, uint64_t name)
{
	uint64_t expected = name;
	if (atomic_compare_exchange_strong_explicit(&b->word->armed, &expected, 0,
	                                            memory_order_seq_cst, memory_order_relaxed))
		counts_out(b);
}

/* The read doorbell of the handle's reader: its worker slot's, its
 * subscriber entry's, or the consumer's. */
static struct bell read_bell(struct mrb_handle *h)
{
	struct bell b = {&h->header->consumer_doorbell, &h->header->data_waiters, NULL};
	uint32_t group;
	if (h->worker != NULL)
		mrbi_worker_doorbell(h, &b.word, &b.group_armed, &group);
	else if (h->entry != NULL)
		b.word = &h->entry->doorbell;
	return b;
}

static void disarm_space(struct mrb_handle *h, uint64_t name)
{
	struct mrb_file_header *hdr = h->header;
	for (int i = 0; i < MRB_SPACE_DOORBELLS; i++)
		if (atomic_load_explicit(&hdr->space_doorbells[i].armed, memory_order_relaxed) ==
		    name) {
			struct bell b = {&hdr->space_doorbells[i], &hdr->space_waiters, NULL};
			disarm_bell(&b, name);
		}
}

/*
 * The waker's half, after its progress and a non-zero waiter count
 * (mrbi_wake_consumer, mrbi_publish_head). The fence pairs with the one in
 * settle(): either this load sees the waiter's name, or the waiter's re-check
 * sees the progress. (The waiter count itself was read as for futex
 * sleepers: ordered by the sleeper's membarrier, or a read-modify-write.)
 */
static void ring_bell(struct mrb_handle *h, const struct bell *b)
{
	if (atomic_load_explicit(&b->word->armed, memory_order_relaxed) == 0)
		return;
	uint64_t name = atomic_exchange_explicit(&b->word->armed, 0, memory_order_seq_cst);
	if (name == 0)
		return;
	struct bell taken = named(h, b, name);
	counts_out(&taken);
	doorbell_send(h, name);
}

/*
 * Workers' doorbells (docs/FORMAT.md section 9): looked at only while a
 * group counts an armed one (work_armed, read after the fence: a worker
 * counts itself there before its name, so the fence argument of ring_bell
 * covers the count as it covers the name). Every armed worker is rung, not
 * one with turn passing as for futex sleepers: each arming then gets the
 * ring of every commit after it, whatever the group's other workers do, so
 * a rung worker that stops waiting (disarmed, cancelled, killed) strands
 * nothing while others wait armed. The cost, up to 48 datagrams per commit,
 * is paid only while workers are armed, once per arming.
 */
static void ring_workers(struct mrb_handle *h)
{
	struct mrb_file_header *hdr = h->header;
	uint32_t groups = atomic_load_explicit(&hdr->group_table.groups_used, memory_order_acquire);
	if (groups > MRB_GROUPS)
		groups = MRB_GROUPS;
	bool armed = false;
	for (uint32_t g = 0; g < groups; g++)
		if (atomic_load_explicit(&hdr->groups[g].work_armed, memory_order_seq_cst) != 0)
			armed = true;
	if (!armed)
		return;
	uint32_t used = atomic_load_explicit(&hdr->group_table.workers_used, memory_order_acquire);
	if (used > MRB_WORKERS)
		used = MRB_WORKERS;
	for (uint32_t i = 0; i < used; i++) {
		/* Its group's count is the one its name carries (ring_bell),
		 * not the slot's `group`, which may change hands meanwhile. */
		struct bell b = {&hdr->workers[i].doorbell, &hdr->data_waiters,
		                 &hdr->groups[0].work_armed};
		ring_bell(h, &b);
	}
}

void mrbi_doorbell_ring_readers(struct mrb_handle *h)
{
	struct mrb_file_header *hdr = h->header;
	atomic_thread_fence(memory_order_seq_cst);
	struct bell consumer = {&hdr->consumer_doorbell, &hdr->data_waiters, NULL};
	ring_bell(h, &consumer);
	/* Subscribers' doorbells: entries past entries_used were never taken
	 * (untrusted: clamped to the table). */
	uint32_t used = atomic_load_explicit(&hdr->readers.entries_used, memory_order_acquire);
	if (used > MRB_READER_ENTRIES)
		used = MRB_READER_ENTRIES;
	for (uint32_t i = 0; i < used; i++) {
		struct bell b = {&hdr->entries[i].doorbell, &hdr->data_waiters, NULL};
		ring_bell(h, &b);
	}
	if (h->mode == MRB_MODE_FANOUT)
		ring_workers(h);
}

void mrbi_doorbell_ring_space(struct mrb_handle *h)
{
	struct mrb_file_header *hdr = h->header;
	atomic_thread_fence(memory_order_seq_cst);
	for (int i = 0; i < MRB_SPACE_DOORBELLS; i++) {
		struct bell b = {&hdr->space_doorbells[i], &hdr->space_waiters, NULL};
		ring_bell(h, &b);
	}
}

int mrb_doorbell_fd(struct mrb_ring *ring, int which)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || (which != MRB_DOORBELL_READ && which != MRB_DOORBELL_WRITE))
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_STATE_CALL);
	if (rc != 0)
		return rc;
	if ((atomic_load_explicit(&h->flags, memory_order_relaxed) & MRB_STATE_READONLY) != 0) {
		role_leave(h, MRB_STATE_CALL);
		return -EROFS;
	}
	uint64_t name;
	rc = doorbell_socket(h, which, &name);
	if (rc >= 0 && uring_bell(h, which) != NULL)
		rc = mrbi_uring_fd(uring_bell(h, which));
	role_leave(h, MRB_STATE_CALL);
	return rc;
}

int mrb_arm_read(struct mrb_ring *ring, int *timeout_ms)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || timeout_ms == NULL)
		return MRB_EINVAL;
	int rc = mrbi_consumer_enter(h);
	if (rc != 0)
		return rc;
	struct bell b = read_bell(h);
	uint64_t name;
	int fd = doorbell_socket(h, MRB_DOORBELL_READ, &name);
	if (fd < 0) {
		mrbi_consumer_leave(h);
		return fd;
	}
	doorbell_drain(fd);
	mrbi_uring_reap(uring_bell(h, MRB_DOORBELL_READ));
	bool unfinished = false;
	rc = mrbi_ready_to_read(h, &unfinished);
	if (rc == MRB_EEMPTY) {
		/* Our own earlier arming, if no waker took it, comes out first
		 * with its counts: each arming counts itself afresh. (Counting
		 * in before taking the replaced arming out carried over a count
		 * that a waker had taken after a takeover zeroed the counts: a
		 * lost wake-up at every later arming, docs/MODEL.md finding 6.)
		 * Counts, then name: a waker that takes the name takes counts
		 * that are there. The exchange replaces a stale name (a dead
		 * reader's): its counts go with it. */
		disarm_bell(&b, name);
		/* The futex word for the io_uring wait (every reader's, a
		 * worker's too: armed workers count in data_waiters, whose
		 * wakers bump data_seq), read before the name is published: a
		 * waker that takes the name bumps the word after
		 * (mrbi_wake_consumer), so the wait cannot miss it. */
		_Atomic uint32_t *seq = &h->header->data_seq;
		uint32_t seen = atomic_load_explicit(seq, memory_order_seq_cst);
		struct mrbi_waiter_words ww = {b.waiters, NULL, b.group_armed, 0};
		mrbi_waiter_register(&ww);
		uint64_t replaced =
		    atomic_exchange_explicit(&b.word->armed, name, memory_order_seq_cst);
		if (replaced != 0) {
			struct bell r = named(h, &b, replaced);
			counts_out(&r);
		}
		bool ordered = mrbi_waiter_settle(h);
		rc = mrbi_ready_to_read(h, &unfinished);
		if (rc == MRB_EEMPTY)
			mrbi_uring_arm(uring_bell(h, MRB_DOORBELL_READ), seq, seen);
		*timeout_ms = unfinished              ? MRB_DOORBELL_UNFINISHED_MS
		              : !ordered              ? MRB_DOORBELL_UNORDERED_MS
		              : b.group_armed != NULL ? MRB_DOORBELL_WORKER_MS
		                                      : MRB_DOORBELL_WAIT_MS;
	}
	if (rc != MRB_EEMPTY)
		disarm_bell(&b, name);
	mrbi_consumer_leave(h);
	return rc == 0 ? 1 : rc == MRB_EEMPTY ? 0 : rc;
}

/* This writer's armed entry of the space table, or a free one armed now
 * (counted in space_waiters first); NULL if every entry is taken. */
static struct mrb_doorbell *arm_space(struct mrb_handle *h, uint64_t name)
{
	struct mrb_file_header *hdr = h->header;
	for (int i = 0; i < MRB_SPACE_DOORBELLS; i++)
		if (atomic_load_explicit(&hdr->space_doorbells[i].armed, memory_order_relaxed) ==
		    name)
			return &hdr->space_doorbells[i];
	for (int i = 0; i < MRB_SPACE_DOORBELLS; i++) {
		struct mrb_doorbell *bell = &hdr->space_doorbells[i];
		if (atomic_load_explicit(&bell->armed, memory_order_relaxed) != 0)
			continue;
		atomic_fetch_add_explicit(&hdr->space_waiters, 1, memory_order_seq_cst);
		uint64_t expected = 0;
		if (atomic_compare_exchange_strong_explicit(
		        &bell->armed, &expected, name, memory_order_seq_cst, memory_order_relaxed))
			return bell;
		count_out(&hdr->space_waiters);
	}
	return NULL;
}

int mrb_arm_write(struct mrb_ring *ring, size_t len, int *timeout_ms)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || timeout_ms == NULL)
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_PRODUCER_CALL);
	if (rc != 0)
		return rc;
	if (len == 0 || len > h->max_message_size) {
		role_leave(h, MRB_PRODUCER_CALL);
		return MRB_EMSGSIZE;
	}
	uint64_t name;
	int fd = doorbell_socket(h, MRB_DOORBELL_WRITE, &name);
	if (fd < 0) {
		role_leave(h, MRB_PRODUCER_CALL);
		return fd;
	}
	doorbell_drain(fd);
	mrbi_uring_reap(uring_bell(h, MRB_DOORBELL_WRITE));
	rc = mrbi_ready_to_write(h, len);
	if (rc == MRB_EFULL) {
		/* Before the name, as in mrb_arm_read. */
		_Atomic uint32_t *seq = &h->header->space_seq;
		uint32_t seen = atomic_load_explicit(seq, memory_order_seq_cst);
		struct mrb_doorbell *bell = arm_space(h, name);
		bool ordered = mrbi_waiter_settle(h);
		rc = mrbi_ready_to_write(h, len);
		if (rc == MRB_EFULL && bell != NULL)
			mrbi_uring_arm(uring_bell(h, MRB_DOORBELL_WRITE), seq, seen);
		*timeout_ms = bell == NULL ? MRB_DOORBELL_NO_ENTRY_MS
		              : ordered    ? MRB_DOORBELL_WAIT_MS
		                           : MRB_DOORBELL_UNORDERED_MS;
	}
	if (rc != MRB_EFULL)
		disarm_space(h, name);
	role_leave(h, MRB_PRODUCER_CALL);
	return rc == 0 ? 1 : rc == MRB_EFULL ? 0 : rc;
}

int mrb_disarm(struct mrb_ring *ring, int which)
{
	struct mrb_handle *h = handle_of(ring);
	if (ring == NULL || (which != MRB_DOORBELL_READ && which != MRB_DOORBELL_WRITE))
		return MRB_EINVAL;
	int rc = role_enter(h, MRB_STATE_CALL);
	if (rc != 0)
		return rc;
	uint64_t v = atomic_load_explicit(&h->doorbells[which], memory_order_acquire);
	if (v != 0) {
		uint64_t name = (uint64_t)h->pid << 32 | (uint32_t)v;
		if (which == MRB_DOORBELL_READ) {
			struct bell b = read_bell(h);
			disarm_bell(&b, name);
		} else {
			disarm_space(h, name);
		}
		mrbi_uring_reap(uring_bell(h, which));
	}
	role_leave(h, MRB_STATE_CALL);
	return 0;
}

void mrbi_doorbell_close(struct mrb_handle *h, bool in_opener)
{
	for (int which = 0; which < 2; which++) {
		uint64_t v =
		    atomic_exchange_explicit(&h->doorbells[which], 0, memory_order_acq_rel);
		if (v == 0)
			continue;
		if (in_opener) {
			uint64_t name = (uint64_t)h->pid << 32 | (uint32_t)v;
			if (which == MRB_DOORBELL_READ) {
				struct bell b = read_bell(h);
				disarm_bell(&b, name);
			} else {
				disarm_space(h, name);
			}
		}
		close_plus_one((int)(uint32_t)(v >> 32));
		uintptr_t b =
		    atomic_exchange_explicit(&h->uring_bells[which], 0, memory_order_acq_rel);
		if (b != MRB_NO_URING_BELL)
			mrbi_uring_close((struct mrbi_uring_bell *)b);
	}
}
