/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the worker doorbell tests (worker_doorbell_*.c): the format's
 * offsets of the worker words (docs/FORMAT.md sections 6 and 9, spelled out
 * here independently of layout.h), and the documented event-loop worker
 * loop (docs/WORKERS.md "In an event loop").
 */
#ifndef WDOOR_H
#define WDOOR_H

#include <sys/epoll.h>

#include "ring_bytes.h"
#include "rtest.h"

#define OFF_GROUP_TABLE    0xe000
#define OFF_GROUPS_USED    (OFF_GROUP_TABLE + 0x18)
#define OFF_WORKERS_USED   (OFF_GROUP_TABLE + 0x1c)
#define OFF_GROUPS         0xe080
#define GROUP_SIZE         384
#define GROUP_WORK_WAITERS 0x104
#define GROUP_WORK_ARMED   0x108
#define OFF_WORKER_SLOTS   0xe800
#define WORKER_SLOT_SIZE   128
#define WSLOT_OWNER        0x00
#define WSLOT_GROUP        0x20
#define WSLOT_WAITING      0x24
#define WSLOT_DOORBELL     0x60

static inline uint32_t work_armed(struct mrb_ring *r, unsigned group)
{
	return ring_load32(r, OFF_GROUPS + group * GROUP_SIZE + GROUP_WORK_ARMED);
}

static inline uint32_t work_waiters(struct mrb_ring *r, unsigned group)
{
	return ring_load32(r, OFF_GROUPS + group * GROUP_SIZE + GROUP_WORK_WAITERS);
}

static inline _Atomic uint64_t *slot_doorbell(struct mrb_ring *r, unsigned slot)
{
	return ring_u64(r, OFF_WORKER_SLOTS + slot * WORKER_SLOT_SIZE + WSLOT_DOORBELL);
}

/* Worker slots whose doorbell word holds a name. */
static inline unsigned armed_slots(struct mrb_ring *r)
{
	unsigned n = 0;
	for (unsigned i = 0; i < 48; i++)
		n += atomic_load(slot_doorbell(r, i)) != 0;
	return n;
}

/* An epoll instance watching the worker's read doorbell. */
static inline int wdoor_epoll(struct mrb_ring *w)
{
	int fd = mrb_doorbell_fd(w, MRB_DOORBELL_READ);
	if (fd < 0)
		FAIL("mrb_doorbell_fd: %s", mrb_strerror(fd));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0);
	struct epoll_event ev = {.events = EPOLLIN};
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
	return ep;
}

/* Arms the worker and waits on epoll as the documented loop does: returns
 * after a ring, the bound, or at once if work arrived meanwhile. */
static inline void wdoor_wait(struct mrb_ring *w, int ep)
{
	int timeout_ms = -1;
	int rc = mrb_arm_read(w, &timeout_ms);
	if (rc == 1)
		return;
	if (rc != 0)
		FAIL("mrb_arm_read: %s", mrb_strerror(rc));
	if (timeout_ms <= 0 || timeout_ms > 100)
		FAIL("worker bound %d ms", timeout_ms);
	struct epoll_event got;
	epoll_wait(ep, &got, 1, timeout_ms);
}

#endif /* WDOOR_H */
