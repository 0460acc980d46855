/* SPDX-License-Identifier: MIT */
/*
 * Description: hostile worker doorbell words. A peer writes a stranger's
 * doorbell name into every worker slot's doorbell word (0x60; slots past
 * the one really taken, with garbage group indexes too), claims 48 slots
 * used, and sets work_armed to 2^32-1 and data_waiters to 5. Producers
 * must not crash or loop: the first write takes every name out and sends
 * exactly one datagram per word (the stranger's socket, bound by this
 * test, receives them; the other names are refused), the counts are
 * clamped at 0 (data_waiters back to 0, never wrapped), and later writes
 * take no wake-up path at all (data_seq still) and ring nobody, although
 * work_armed stays garbage. A real worker of the group then still gets
 * its ring, and its disarm leaves data_waiters 0.
 */
#include "wdoor.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#define STRANGER UINT64_C(0x5eed00000000abcd)

static int bind_name(uint64_t name)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	struct sockaddr_un addr;
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	int n = snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1,
	                 "mmap_ringbuffer.doorbell.%016" PRIx64, name);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	CHECK(bind(fd, (struct sockaddr *)&addr, len) == 0);
	return fd;
}

static int pending(int fd)
{
	int n = 0;
	char b[8];
	while (recv(fd, b, sizeof(b), MSG_DONTWAIT) > 0)
		n++;
	return n;
}

int main(void)
{
	rtest_watchdog(30);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(&ring, path, 65536, &copts), 0);
	struct mrb_ring w;
	CHECK_RC(mrb_worker_join(&w, path, "jobs", NULL), 0);
	int stranger = bind_name(STRANGER);

	/* The slot really taken (0) and 47 more carry names: the stranger's
	 * in slots 0, 5 and 47, names nobody bound elsewhere. */
	for (unsigned i = 0; i < 48; i++) {
		uint64_t name = i == 0 || i == 5 || i == 47 ? STRANGER : STRANGER + 2 * i + 1;
		atomic_store(slot_doorbell(&ring, i), name);
		if (i > 0)
			atomic_store(
			    ring_u32(&ring, OFF_WORKER_SLOTS + i * WORKER_SLOT_SIZE + WSLOT_GROUP),
			    i % 2 == 0 ? 0 : 1000 + i);
	}
	atomic_store(ring_u32(&ring, OFF_WORKERS_USED), 1000);
	atomic_store(ring_u32(&ring, OFF_GROUPS + GROUP_WORK_ARMED), UINT32_MAX);
	atomic_store(ring_u32(&ring, OFF_DATA_WAITERS), 5);

	uint64_t seq = 1;
	CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
	CHECK_EQ_U64(armed_slots(&ring), 0);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 0);
	CHECK_EQ_U64(pending(stranger), 3);
	uint32_t armed = work_armed(&ring, 0);
	printf("work_armed after the first write: %u\n", armed);
	CHECK(armed >= UINT32_MAX - 48);
	uint32_t data_seq = ring_load32(&ring, OFF_DATA_SEQ);
	for (seq = 2; seq <= 100; seq++)
		CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_SEQ), data_seq);
	CHECK_EQ_U64(pending(stranger), 0);

	/* The real worker: drains, arms, is rung by the next write. */
	uint64_t got;
	size_t len;
	for (uint64_t want = 1; want <= 100; want++) {
		CHECK_RC(mrb_read(&w, &got, sizeof(got), &len), 0);
		CHECK_EQ_U64(got, want);
	}
	CHECK_RC(mrb_read(&w, &got, sizeof(got), &len), MRB_EEMPTY);
	int fd = mrb_doorbell_fd(&w, MRB_DOORBELL_READ);
	CHECK(fd >= 0);
	int timeout_ms;
	CHECK_RC(mrb_arm_read(&w, &timeout_ms), 0);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 1);
	CHECK_RC(mrb_write(&ring, &seq, sizeof(seq)), 0);
	struct pollfd p = {fd, POLLIN, 0};
	CHECK(poll(&p, 1, 10000) == 1);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 0);
	CHECK_RC(mrb_read(&w, &got, sizeof(got), &len), 0);
	CHECK_EQ_U64(got, 101);
	CHECK_RC(mrb_arm_read(&w, &timeout_ms), 0);
	CHECK_RC(mrb_disarm(&w, MRB_DOORBELL_READ), 0);
	CHECK_EQ_U64(ring_load32(&ring, OFF_DATA_WAITERS), 0);
	CHECK_EQ_U64(pending(stranger), 0);
	CHECK_RC(mrb_close(&w), 0);
	close(stranger);
	CHECK_RC(mrb_close(&ring), 0);
	printf("worker_doorbell_hostile: ok\n");
	return 0;
}
