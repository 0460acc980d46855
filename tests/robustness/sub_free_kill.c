/* SPDX-License-Identifier: MIT */
/*
 * Description: a process killed inside the freeing of a subscriber entry
 * (docs/FORMAT.md section 8, "Freeing": the CAS of `owner` to the freer's
 * freeing word, then the rest). The state is made here as the kill leaves
 * it, right after that CAS (the entry otherwise untouched), and the freer
 * is killed:
 *   close       - an unnamed durable subscriber closing its handle: its
 *                 entry still gates R. Producers short of space must find
 *                 the freer dead and finish the freeing: the ring takes
 *                 writes again (before: full for good);
 *   unsubscribe - mrb_unsubscribe of a dead named subscriber: a second
 *                 mrb_unsubscribe finishes it (before: MRB_ENAMEBUSY for
 *                 good), and so does a join by that name, which then
 *                 starts a new subscriber;
 *                 A freeing word naming another pid namespace is a live
 *                 process's (refused);
 *   legacy      - the freeing word of code from before it named its
 *                 process (2^64-1) reads as a dead process's: the same.
 */
#include "wdoor.h"

#define OFF_ENTRIES 0xa000
#define ENTRY_OWNER 0x00
#define FREEING_BIT (UINT64_C(1) << 31)
#define ENTRY_FLAGS 0x1c
#define ENTRY_STATE 0x18
#define STATE_FREE  0u
#define NAMED       4u

static _Atomic uint64_t *entry_owner(struct mrb_ring *r)
{
	return ring_u64(r, OFF_ENTRIES + ENTRY_OWNER);
}

/* A child that subscribes (named or not), reports, and waits to be killed. */
static pid_t subscriber(const char *path, const char *name, int fd)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mrb_ring s;
		struct mrb_subscribe_options o = {.name = name};
		CHECK_RC(mrb_subscribe(&s, path, &o), 0);
		rtest_send(fd, 's');
		for (;;)
			pause();
	}
	return pid;
}

static void create(struct mrb_ring *ring, const char *path)
{
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(ring, path, 4096, &copts), 0);
}

static void killed_in_close(uint64_t freeing_of_dead)
{
	const char *path = rtest_path(freeing_of_dead == UINT64_MAX ? "legacy" : "close");
	struct mrb_ring ring;
	create(&ring, path);
	int ch[2];
	CHECK(pipe(ch) == 0);
	pid_t pid = subscriber(path, NULL, ch[1]);
	CHECK(rtest_recv(ch[0]) == 's');
	CHECK(atomic_load(entry_owner(&ring)) != 0);
	/* The freer's CAS, then the kill (the freer is the subscriber). */
	atomic_store(entry_owner(&ring),
	             freeing_of_dead != 0 ? freeing_of_dead : (FREEING_BIT | (uint32_t)pid));
	rtest_kill(pid);
	/* 40-byte messages take 64 bytes: 64 fill the 4 KiB ring. Producers
	 * short of space judge the entry at most every 10 ms. */
	uint8_t msg[40] = {0};
	int refused = 0;
	for (int i = 0; i < 200; i++) {
		int rc = mrb_write(&ring, msg, sizeof(msg));
		if (rc == MRB_EFULL) {
			if (++refused > 50)
				FAIL("the ring stays full: the dead freer's entry still gates R");
			rtest_sleep_ms(11);
			continue;
		}
		CHECK_RC(rc, 0);
	}
	CHECK_EQ_U64(atomic_load(entry_owner(&ring)), 0);
	CHECK_EQ_U64(ring_load32(&ring, OFF_ENTRIES + ENTRY_STATE), STATE_FREE);
	CHECK_RC(mrb_subscribers(&ring, NULL, 0), 0);
	CHECK_RC(mrb_close(&ring), 0);
}

static void killed_in_unsubscribe(void)
{
	const char *path = rtest_path("unsubscribe");
	struct mrb_ring ring;
	create(&ring, path);
	int ch[2];
	CHECK(pipe(ch) == 0);
	for (int round = 0; round < 2; round++) {
		/* A named subscriber, killed (its place kept for it). */
		pid_t pid = subscriber(path, "rec", ch[1]);
		CHECK(rtest_recv(ch[0]) == 's');
		rtest_kill(pid);
		struct mrb_subscriber_info info;
		CHECK_RC(mrb_subscribers(&ring, &info, 1), 1);
		CHECK_EQ_U64(info.alive, 0);
		/* An mrb_unsubscribe process's CAS (from the dead owner to its
		 * freeing word), then its kill: the pid of a process gone. */
		pid_t freer = fork();
		CHECK(freer >= 0);
		if (freer == 0)
			_exit(0);
		rtest_wait(freer);
		atomic_store(entry_owner(&ring), FREEING_BIT | (uint32_t)freer);
		CHECK_EQ_U64(ring_load32(&ring, OFF_ENTRIES + ENTRY_FLAGS) & NAMED, NAMED);
		if (round == 0) {
			/* The same pid in another pid namespace (bits 32-63) is
			 * not taken for dead: refused as a live freer. */
			struct stat st;
			CHECK(stat("/proc/self/ns/pid", &st) == 0);
			uint64_t other_ns = ((uint64_t)st.st_ino + 1) & UINT32_MAX;
			atomic_store(entry_owner(&ring),
			             other_ns << 32 | FREEING_BIT | (uint32_t)freer);
			CHECK_RC(mrb_unsubscribe(path, "rec"), MRB_ENAMEBUSY);
			atomic_store(entry_owner(&ring), FREEING_BIT | (uint32_t)freer);
			CHECK_RC(mrb_unsubscribe(path, "rec"), 0);
			CHECK_RC(mrb_unsubscribe(path, "rec"), -ENOENT);
		} else {
			/* A join by the name finishes the freeing and starts anew. */
			struct mrb_ring s;
			struct mrb_subscribe_options o = {.name = "rec"};
			CHECK_RC(mrb_subscribe(&s, path, &o), 0);
			struct mrb_subscriber_info si;
			CHECK_RC(mrb_subscriber_info(&s, &si), 0);
			CHECK_EQ_U64(si.pid, getpid());
			CHECK_RC(mrb_close(&s), 0);
			CHECK_RC(mrb_unsubscribe(path, "rec"), 0);
		}
		CHECK_RC(mrb_subscribers(&ring, NULL, 0), 0);
	}
	CHECK_RC(mrb_close(&ring), 0);
}

int main(void)
{
	rtest_watchdog(60);
	killed_in_close(0);
	killed_in_close(UINT64_MAX);
	killed_in_unsubscribe();
	printf("sub_free_kill: ok\n");
	return 0;
}
