// SPDX-License-Identifier: MIT
// Doorbells (event-loop waiting): the descriptor, arming, one-shot rings,
// the waiter counts they leave behind (exactly zero once nobody waits), an
// epoll loop against a producer in another process, and idle CPU.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>

#include "mrb_testing.h"
#include "test_util.h"

using mrbtest::RingTest;

namespace
{

class Doorbell : public RingTest
{
      protected:
	uint8_t *Header()
	{
		return static_cast<uint8_t *>(mrb__test_mapping(&ring_));
	}
	uint32_t DataWaiters()
	{
		return __atomic_load_n(reinterpret_cast<uint32_t *>(Header() + 0x284),
		                       __ATOMIC_SEQ_CST);
	}
	uint32_t SpaceWaiters()
	{
		return __atomic_load_n(reinterpret_cast<uint32_t *>(Header() + 0x304),
		                       __ATOMIC_SEQ_CST);
	}
	uint64_t ConsumerArmed()
	{
		return __atomic_load_n(reinterpret_cast<uint64_t *>(Header() + 0x400),
		                       __ATOMIC_SEQ_CST);
	}
	uint64_t SpaceArmed(int i)
	{
		return __atomic_load_n(reinterpret_cast<uint64_t *>(Header() + 0x480 + 16 * i),
		                       __ATOMIC_SEQ_CST);
	}
};

bool Readable(int fd, int timeout_ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

// Bytes queued on a doorbell (each ring is one one-byte datagram).
int Pending(int fd)
{
	fd = mrbtest::DoorbellSocket(fd);
	int n = 0;
	char b;
	while (recv(fd, &b, 1, MSG_DONTWAIT) == 1)
		n++;
	return n;
}

TEST_F(Doorbell, DescriptorIsStablePerSideAndRefusedBadArguments)
{
	ASSERT_EQ(Create(4096), 0);
	int rfd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ);
	int wfd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_WRITE);
	ASSERT_GE(rfd, 0);
	ASSERT_GE(wfd, 0);
	EXPECT_NE(rfd, wfd);
	EXPECT_EQ(mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ), rfd);
	EXPECT_EQ(mrb_doorbell_fd(&ring_, MRB_DOORBELL_WRITE), wfd);
	EXPECT_EQ(mrb_doorbell_fd(&ring_, 2), MRB_EINVAL);
	EXPECT_EQ(mrb_doorbell_fd(nullptr, MRB_DOORBELL_READ), MRB_EINVAL);
	EXPECT_EQ(mrb_arm_read(&ring_, nullptr), MRB_EINVAL);
	int timeout_ms = -1;
	EXPECT_EQ(mrb_arm_write(&ring_, 0, &timeout_ms), MRB_EMSGSIZE);
	EXPECT_EQ(mrb_arm_write(&ring_, 4096, &timeout_ms), MRB_EMSGSIZE);
	EXPECT_EQ(mrb_disarm(&ring_, 5), MRB_EINVAL);
	// Non-blocking and close-on-exec.
	EXPECT_NE(fcntl(rfd, F_GETFL) & O_NONBLOCK, 0);
	EXPECT_NE(fcntl(rfd, F_GETFD) & FD_CLOEXEC, 0);
	// Closed with the handle.
	ASSERT_EQ(mrb_close(&ring_), 0);
	EXPECT_EQ(fcntl(rfd, F_GETFD), -1);
	EXPECT_EQ(fcntl(wfd, F_GETFD), -1);
	EXPECT_EQ(mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ), MRB_ECLOSED);
}

TEST_F(Doorbell, ReadOnlyHandleHasNoDoorbell)
{
	ASSERT_EQ(Create(4096), 0);
	struct mrb_ring ro = {};
	if (MRB_TSAN)
		GTEST_SKIP() << "two mappings of one file";
	ASSERT_EQ(mrb_open(&ro, path_.c_str(), MRB_OPEN_READONLY), 0);
	EXPECT_EQ(mrb_doorbell_fd(&ro, MRB_DOORBELL_READ), -EROFS);
	int timeout_ms;
	EXPECT_EQ(mrb_arm_read(&ro, &timeout_ms), -EROFS);
	EXPECT_EQ(mrb_close(&ro), 0);
}

TEST_F(Doorbell, ArmedReaderIsRungOnceByTheFirstWrite)
{
	ASSERT_EQ(Create(4096), 0);
	int fd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ);
	ASSERT_GE(fd, 0);
	int timeout_ms = -1;
	ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
	EXPECT_TRUE(timeout_ms == 1000 || timeout_ms == 1) << timeout_ms;
	EXPECT_EQ(DataWaiters(), 1u);
	EXPECT_NE(ConsumerArmed(), 0u);
	EXPECT_FALSE(Readable(fd, 0));
	ASSERT_EQ(mrb_write(&ring_, "a", 1), 0);
	// The ring took the name and its count out, and sent one byte.
	EXPECT_EQ(DataWaiters(), 0u);
	EXPECT_EQ(ConsumerArmed(), 0u);
	EXPECT_TRUE(Readable(fd, 0));
	ASSERT_EQ(mrb_write(&ring_, "b", 1), 0);
	EXPECT_EQ(Pending(fd), 1); // one-shot: the second write rang nothing
	// Messages there: arming returns 1 and arms nothing.
	EXPECT_EQ(mrb_arm_read(&ring_, &timeout_ms), 1);
	EXPECT_EQ(DataWaiters(), 0u);
	EXPECT_EQ(ConsumerArmed(), 0u);
	int rc;
	EXPECT_EQ(mrbtest::ReadOne(&ring_, &rc), std::vector<uint8_t>{'a'});
	EXPECT_EQ(mrbtest::ReadOne(&ring_, &rc), std::vector<uint8_t>{'b'});
	EXPECT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
	EXPECT_EQ(DataWaiters(), 1u);
}

TEST_F(Doorbell, NothingIsRungWithoutAnArmedReader)
{
	ASSERT_EQ(Create(4096), 0);
	int fd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ);
	ASSERT_EQ(mrb_write(&ring_, "x", 1), 0);
	EXPECT_FALSE(Readable(fd, 0));
	int timeout_ms;
	ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 1);
	int rc;
	mrbtest::ReadOne(&ring_, &rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
	// Arming again while armed keeps one registration.
	ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
	EXPECT_EQ(DataWaiters(), 1u);
	EXPECT_EQ(mrb_disarm(&ring_, MRB_DOORBELL_READ), 0);
	EXPECT_EQ(DataWaiters(), 0u);
	EXPECT_EQ(ConsumerArmed(), 0u);
	ASSERT_EQ(mrb_write(&ring_, "y", 1), 0);
	EXPECT_FALSE(Readable(fd, 0));
	EXPECT_EQ(mrb_disarm(&ring_, MRB_DOORBELL_READ), 0); // idempotent
	EXPECT_EQ(DataWaiters(), 0u);
}

// The state a consumer takeover can leave (docs/MODEL.md, finding 6): a
// waker took the dead consumer's name, the new consumer zeroed the counts
// and armed, then the waker took its count out; the new consumer is armed
// with no count, so no write rings it. Its next arming counts it again.
TEST_F(Doorbell, ArmingAgainRestoresALostCount)
{
	ASSERT_EQ(Create(4096), 0);
	int fd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ);
	ASSERT_GE(fd, 0);
	int timeout_ms;
	ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
	uint64_t name = ConsumerArmed();
	ASSERT_NE(name, 0u);
	__atomic_store_n(reinterpret_cast<uint32_t *>(Header() + 0x284), 0u, __ATOMIC_SEQ_CST);
	ASSERT_EQ(mrb_write(&ring_, "a", 1), 0);
	EXPECT_FALSE(Readable(fd, 0)); // the lost wake-up (1 s bound)
	int rc;
	EXPECT_EQ(mrbtest::ReadOne(&ring_, &rc), std::vector<uint8_t>{'a'});
	ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
	EXPECT_EQ(DataWaiters(), 1u);
	EXPECT_EQ(ConsumerArmed(), name);
	ASSERT_EQ(mrb_write(&ring_, "b", 1), 0);
	EXPECT_TRUE(Readable(fd, 0));
	EXPECT_EQ(DataWaiters(), 0u);
	EXPECT_EQ(ConsumerArmed(), 0u);
}

TEST_F(Doorbell, CloseDisarms)
{
	ASSERT_EQ(Create(4096), 0);
	int timeout_ms;
	ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
	if (MRB_TSAN)
		GTEST_SKIP() << "two mappings of one file";
	struct mrb_ring other = {};
	ASSERT_EQ(mrb_open(&other, path_.c_str(), 0), 0);
	uint8_t *hdr = static_cast<uint8_t *>(mrb__test_mapping(&other));
	EXPECT_EQ(__atomic_load_n(reinterpret_cast<uint32_t *>(hdr + 0x284), __ATOMIC_SEQ_CST), 1u);
	ASSERT_EQ(mrb_close(&ring_), 0);
	EXPECT_EQ(__atomic_load_n(reinterpret_cast<uint32_t *>(hdr + 0x284), __ATOMIC_SEQ_CST), 0u);
	EXPECT_EQ(__atomic_load_n(reinterpret_cast<uint64_t *>(hdr + 0x400), __ATOMIC_SEQ_CST), 0u);
	EXPECT_EQ(mrb_close(&other), 0);
}

TEST_F(Doorbell, WriterWaitsForSpace)
{
	ASSERT_EQ(Create(4096), 0);
	std::vector<uint8_t> msg(1000, 7);
	int n = 0;
	while (mrb_write(&ring_, msg.data(), msg.size()) == 0)
		n++;
	ASSERT_GT(n, 0);
	int fd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_WRITE);
	int timeout_ms = -1;
	ASSERT_EQ(mrb_arm_write(&ring_, msg.size(), &timeout_ms), 0);
	EXPECT_TRUE(timeout_ms == 1000 || timeout_ms == 1) << timeout_ms;
	EXPECT_EQ(SpaceWaiters(), 1u);
	EXPECT_NE(SpaceArmed(0), 0u);
	ASSERT_EQ(mrb_arm_write(&ring_, msg.size(), &timeout_ms), 0);
	EXPECT_EQ(SpaceWaiters(), 1u); // still the one entry
	EXPECT_EQ(SpaceArmed(1), 0u);
	EXPECT_FALSE(Readable(fd, 0));
	int rc;
	EXPECT_EQ(mrbtest::ReadOne(&ring_, &rc).size(), msg.size());
	EXPECT_EQ(SpaceWaiters(), 0u);
	EXPECT_EQ(SpaceArmed(0), 0u);
	EXPECT_EQ(Pending(fd), 1);
	EXPECT_EQ(mrb_arm_write(&ring_, msg.size(), &timeout_ms), 1);
	EXPECT_EQ(mrb_write(&ring_, msg.data(), msg.size()), 0);
	ASSERT_EQ(mrb_arm_write(&ring_, msg.size(), &timeout_ms), 0);
	EXPECT_EQ(mrb_disarm(&ring_, MRB_DOORBELL_WRITE), 0);
	EXPECT_EQ(SpaceWaiters(), 0u);
	EXPECT_EQ(SpaceArmed(0), 0u);
}

TEST_F(Doorbell, MoreWritersThanDoorbellsPoll)
{
	if (MRB_TSAN)
		GTEST_SKIP() << "many mappings of one file";
	ASSERT_EQ(Create(4096), 0);
	std::vector<uint8_t> msg(1000, 7);
	while (mrb_write(&ring_, msg.data(), msg.size()) == 0) {
	}
	std::vector<struct mrb_ring> writers(33);
	int timeout_ms = -1;
	for (int i = 0; i < 33; i++) {
		ASSERT_EQ(mrb_open(&writers[i], path_.c_str(), 0), 0);
		ASSERT_EQ(mrb_arm_write(&writers[i], msg.size(), &timeout_ms), 0);
		EXPECT_EQ(timeout_ms, i < 32 ? (timeout_ms == 1 ? 1 : 1000) : 10) << i;
	}
	EXPECT_EQ(SpaceWaiters(), 32u);
	std::vector<int> fds;
	for (int i = 0; i < 33; i++)
		fds.push_back(mrb_doorbell_fd(&writers[i], MRB_DOORBELL_WRITE));
	int rc;
	mrbtest::ReadOne(&ring_, &rc);
	ASSERT_EQ(rc, 0);
	EXPECT_EQ(SpaceWaiters(), 0u);
	for (int i = 0; i < 33; i++)
		EXPECT_EQ(Pending(fds[i]), i < 32 ? 1 : 0) << i;
	for (auto &w : writers)
		EXPECT_EQ(mrb_close(&w), 0);
}

TEST_F(Doorbell, DeadArmedReaderIsClearedByTheNextWrite)
{
	ASSERT_EQ(Create(4096), 0);
	ASSERT_EQ(mrb_close(&ring_), 0);
	pid_t child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		struct mrb_ring r = {};
		int timeout_ms;
		if (mrb_open(&r, path_.c_str(), 0) != 0 || mrb_arm_read(&r, &timeout_ms) != 0)
			_exit(1);
		_exit(0); // killed while armed: no close
	}
	int status;
	ASSERT_EQ(waitpid(child, &status, 0), child);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_EQ(mrb_open(&ring_, path_.c_str(), 0), 0);
	EXPECT_EQ(DataWaiters(), 1u);
	EXPECT_NE(ConsumerArmed(), 0u);
	// A producer (this handle never reads: no takeover) rings the dead
	// doorbell: refused, and the count is gone with the name.
	ASSERT_EQ(mrb_write(&ring_, "z", 1), 0);
	EXPECT_EQ(DataWaiters(), 0u);
	EXPECT_EQ(ConsumerArmed(), 0u);
}

// Subscribers of a fan-out ring each have a doorbell of their own (in their
// reader entry): one write rings every armed subscriber, and the counts go
// back to zero.
TEST_F(Doorbell, EverySubscriberHasItsOwnDoorbell)
{
	if (MRB_TSAN)
		GTEST_SKIP() << "several mappings of one file";
	ASSERT_EQ(Create(4096, MRB_CREATE_FANOUT), 0);
	struct mrb_ring subs[3] = {};
	int fds[3];
	int timeout_ms;
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(mrb_subscribe(&subs[i], path_.c_str(), nullptr), 0);
		fds[i] = mrb_doorbell_fd(&subs[i], MRB_DOORBELL_READ);
		ASSERT_GE(fds[i], 0);
		ASSERT_EQ(mrb_arm_read(&subs[i], &timeout_ms), 0) << i;
	}
	EXPECT_EQ(DataWaiters(), 3u);
	EXPECT_EQ(ConsumerArmed(), 0u);
	for (int i = 0; i < 3; i++)
		EXPECT_NE(__atomic_load_n(
		              reinterpret_cast<uint64_t *>(Header() + 0xa000 + 256 * i + 0x60),
		              __ATOMIC_SEQ_CST),
		          0u)
		    << i;
	ASSERT_EQ(mrb_write(&ring_, "f", 1), 0);
	EXPECT_EQ(DataWaiters(), 0u);
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(Pending(fds[i]), 1) << i;
		EXPECT_EQ(mrb_arm_read(&subs[i], &timeout_ms), 1) << i;
		int rc;
		EXPECT_EQ(mrbtest::ReadOne(&subs[i], &rc), std::vector<uint8_t>{'f'}) << i;
	}
	// A subscriber armed at close is disarmed by it.
	ASSERT_EQ(mrb_arm_read(&subs[0], &timeout_ms), 0);
	EXPECT_EQ(DataWaiters(), 1u);
	for (auto &sub : subs)
		EXPECT_EQ(mrb_close(&sub), 0);
	EXPECT_EQ(DataWaiters(), 0u);
}

// ---- Workers ----------------------------------------------------------------
// A worker's doorbell is in its slot (0xe800 + 128 * i + 0x60), counted in
// data_waiters and its group's work_armed (0xe080 + 384 * g + 0x108).

uint32_t Load32(struct mrb_ring *r, size_t off)
{
	auto *p = static_cast<uint8_t *>(mrb__test_mapping(r)) + off;
	return __atomic_load_n(reinterpret_cast<uint32_t *>(p), __ATOMIC_SEQ_CST);
}

uint64_t Load64(struct mrb_ring *r, size_t off)
{
	auto *p = static_cast<uint8_t *>(mrb__test_mapping(r)) + off;
	return __atomic_load_n(reinterpret_cast<uint64_t *>(p), __ATOMIC_SEQ_CST);
}

uint32_t DataWaitersOf(struct mrb_ring *r)
{
	return Load32(r, 0x284);
}

uint32_t WorkArmed(struct mrb_ring *r, int group = 0)
{
	return Load32(r, 0xe080 + 384 * group + 0x108);
}

uint64_t WorkerArmed(struct mrb_ring *r, int slot)
{
	return Load64(r, 0xe800 + 128 * slot + 0x60);
}

// A job: its sequence number and a checksum of it.
struct Job {
	uint64_t seq;
	uint64_t check;
};

uint64_t Check(uint64_t seq)
{
	return (seq + 1) * 0x9E3779B97F4A7C15ull ^ 0x5bd1e995;
}

// Writes jobs [from, to) with a separate handle (in a child: one mapping).
void WriteJobs(const std::string &path, uint64_t from, uint64_t to, bool pauses)
{
	struct mrb_ring p = {};
	if (mrb_open(&p, path.c_str(), 0) != 0)
		_exit(20);
	for (uint64_t i = from; i < to; i++) {
		Job j = {i, Check(i)};
		if (mrb_write_wait(&p, &j, sizeof(j), 10 * 1000000000ll) != 0)
			_exit(21);
		if (pauses && i % 500 == 499)
			usleep(2000); // let the workers run dry and arm
	}
	mrb_close(&p);
}

pid_t Fork(std::function<void()> body)
{
	pid_t pid = fork();
	if (pid == 0) {
		body();
		_exit(0);
	}
	return pid;
}

int ExitCode(pid_t pid)
{
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class WorkerDoorbell : public RingTest
{
      protected:
	void SetUp() override
	{
		RingTest::SetUp();
		ASSERT_EQ(Create(4096, MRB_CREATE_FANOUT), 0);
	}
	int Join(struct mrb_ring *w)
	{
		return mrb_worker_join(w, path_.c_str(), "jobs", nullptr);
	}
};

// Arming, the counts, the bound, one ring per arming, disarm, close.
TEST_F(WorkerDoorbell, ArmsCountsAndDisarms)
{
	struct mrb_ring w = {};
	ASSERT_EQ(Join(&w), 0);
	int fd = mrb_doorbell_fd(&w, MRB_DOORBELL_READ);
	ASSERT_GE(fd, 0);
	int timeout_ms = -1;
	ASSERT_EQ(mrb_arm_read(&w, &timeout_ms), 0);
	EXPECT_TRUE(timeout_ms == 100 || timeout_ms == 1) << timeout_ms;
	EXPECT_EQ(DataWaitersOf(&w), 1u);
	EXPECT_EQ(WorkArmed(&w), 1u);
	EXPECT_NE(WorkerArmed(&w, 0), 0u);
	// Arming again keeps one registration.
	ASSERT_EQ(mrb_arm_read(&w, &timeout_ms), 0);
	EXPECT_EQ(DataWaitersOf(&w), 1u);
	EXPECT_EQ(WorkArmed(&w), 1u);
	EXPECT_FALSE(Readable(fd, 0));
	Job j = {7, Check(7)};
	ASSERT_EQ(mrb_write(&ring_, &j, sizeof(j)), 0);
	EXPECT_EQ(DataWaitersOf(&w), 0u);
	EXPECT_EQ(WorkArmed(&w), 0u);
	EXPECT_EQ(WorkerArmed(&w, 0), 0u);
	j.seq = 8;
	ASSERT_EQ(mrb_write(&ring_, &j, sizeof(j)), 0);
	EXPECT_EQ(Pending(fd), 1); // one-shot
	// Messages there: arming returns 1 and arms nothing.
	EXPECT_EQ(mrb_arm_read(&w, &timeout_ms), 1);
	EXPECT_EQ(DataWaitersOf(&w), 0u);
	EXPECT_EQ(WorkArmed(&w), 0u);
	Job got[2];
	size_t lens[2];
	ASSERT_EQ(mrb_read_many(&w, got, sizeof(got), lens, 2), 2);
	EXPECT_EQ(got[0].seq, 7u);
	EXPECT_EQ(got[1].seq, 8u);
	ASSERT_EQ(mrb_arm_read(&w, &timeout_ms), 0);
	EXPECT_EQ(mrb_disarm(&w, MRB_DOORBELL_READ), 0);
	EXPECT_EQ(DataWaitersOf(&w), 0u);
	EXPECT_EQ(WorkArmed(&w), 0u);
	EXPECT_EQ(WorkerArmed(&w, 0), 0u);
	ASSERT_EQ(mrb_write(&ring_, &j, sizeof(j)), 0);
	EXPECT_FALSE(Readable(fd, 0)); // disarmed: not rung
	// Close disarms.
	ASSERT_EQ(mrb_arm_read(&w, &timeout_ms), 1);
	ASSERT_EQ(mrb_read(&w, got, sizeof(got), lens), 0);
	ASSERT_EQ(mrb_arm_read(&w, &timeout_ms), 0);
	EXPECT_EQ(WorkArmed(&w), 1u);
	ASSERT_EQ(mrb_close(&w), 0);
	EXPECT_EQ(DataWaitersOf(&ring_), 0u);
	EXPECT_EQ(WorkArmed(&ring_), 0u);
	EXPECT_EQ(WorkerArmed(&ring_, 0), 0u);
}

// A worker's doorbell name carries its group's index (bits 1-2): a waker
// counts the name out of that group, even if the slot's `group` field says
// otherwise by then (the slot freed and taken by a worker of another group
// while the waker looked at it).
TEST_F(WorkerDoorbell, NameCarriesItsGroup)
{
	struct mrb_ring w0 = {}, w1 = {};
	ASSERT_EQ(Join(&w0), 0);                                             // group 0, slot 0
	ASSERT_EQ(mrb_worker_join(&w1, path_.c_str(), "other", nullptr), 0); // group 1, slot 1
	int timeout_ms;
	ASSERT_EQ(mrb_arm_read(&w1, &timeout_ms), 0);
	uint64_t name = WorkerArmed(&ring_, 1);
	EXPECT_EQ((name >> 1) & 3, 1u);
	EXPECT_EQ(name & 1, 1u);
	EXPECT_EQ(WorkArmed(&ring_, 1), 1u);
	auto *group = reinterpret_cast<uint32_t *>(
	    static_cast<uint8_t *>(mrb__test_mapping(&ring_)) + 0xe800 + 128 + 0x20);
	ASSERT_EQ(__atomic_load_n(group, __ATOMIC_SEQ_CST), 1u);
	__atomic_store_n(group, 0u, __ATOMIC_SEQ_CST);
	Job j = {3, Check(3)};
	ASSERT_EQ(mrb_write(&ring_, &j, sizeof(j)), 0);
	EXPECT_EQ(WorkArmed(&ring_, 1), 0u);
	EXPECT_EQ(WorkArmed(&ring_, 0), 0u);
	EXPECT_EQ(DataWaitersOf(&ring_), 0u);
	__atomic_store_n(group, 1u, __ATOMIC_SEQ_CST);
	EXPECT_EQ(mrb_close(&w1), 0);
	EXPECT_EQ(mrb_close(&w0), 0);
}

// An armed worker, a producer in another process: the descriptor becomes
// readable and the worker reads exactly that message.
TEST_F(WorkerDoorbell, ProducerInAnotherProcessRingsTheWorker)
{
	ASSERT_EQ(mrb_close(&ring_), 0);
	struct mrb_ring w = {};
	ASSERT_EQ(Join(&w), 0);
	int fd = mrb_doorbell_fd(&w, MRB_DOORBELL_READ);
	ASSERT_GE(fd, 0);
	int timeout_ms;
	ASSERT_EQ(mrb_arm_read(&w, &timeout_ms), 0);
	pid_t producer = Fork([&] { WriteJobs(path_, 41, 42, false); });
	ASSERT_GT(producer, 0);
	EXPECT_TRUE(Readable(fd, 10000));
	ASSERT_EQ(ExitCode(producer), 0);
	Job j = {};
	size_t len = 0;
	ASSERT_EQ(mrb_read(&w, &j, sizeof(j), &len), 0);
	EXPECT_EQ(len, sizeof(j));
	EXPECT_EQ(j.seq, 41u);
	EXPECT_EQ(j.check, Check(41));
	EXPECT_EQ(mrb_read(&w, &j, sizeof(j), &len), MRB_EEMPTY);
	EXPECT_EQ(DataWaitersOf(&w), 0u);
	EXPECT_EQ(WorkArmed(&w), 0u);
	EXPECT_EQ(mrb_close(&w), 0);
}

enum WaitHow { kEpoll, kPoll, kFutex };

// The documented loop in a worker process, on epoll (edge-triggered) or
// poll, or (kFutex) mrb_read_wait's futex sleep; marks every job it gets in `seen` (shared), until
// `done` jobs of `count` were seen by anyone; counts its waits in `waits`. Exit codes name the
// failure.
void WorkerLoop(const std::string &path, WaitHow how, std::atomic<uint32_t> *seen,
                std::atomic<uint64_t> *done, std::atomic<uint64_t> *waits, uint64_t count)
{
	struct mrb_ring w = {};
	if (mrb_worker_join(&w, path.c_str(), "jobs", nullptr) != 0)
		_exit(10);
	int fd = mrb_doorbell_fd(&w, MRB_DOORBELL_READ);
	if (fd < 0)
		_exit(11);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {};
	ev.events = EPOLLIN | EPOLLET;
	if (how == kEpoll && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		_exit(12);
	for (;;) {
		Job j[4];
		size_t lens[4];
		int64_t n;
		while ((n = mrb_read_many(&w, j, sizeof(j), lens, 4)) > 0) {
			for (int64_t k = 0; k < n; k++) {
				if (lens[k] != sizeof(Job) || j[k].seq >= count ||
				    j[k].check != Check(j[k].seq))
					_exit(13);
				seen[j[k].seq].fetch_add(1);
				done->fetch_add(1);
			}
		}
		if (n != MRB_EEMPTY)
			_exit(14);
		if (done->load() >= count)
			break;
		if (how == kFutex) {
			waits->fetch_add(1);
			int rc = mrb_wait_readable(&w, 50 * 1000000ll);
			if (rc != 0 && rc != MRB_ETIMEDOUT)
				_exit(16);
			continue;
		}
		int timeout_ms;
		int rc = mrb_arm_read(&w, &timeout_ms);
		if (rc == 1)
			continue;
		if (rc < 0)
			_exit(15);
		waits->fetch_add(1);
		if (how == kEpoll) {
			struct epoll_event got;
			epoll_wait(ep, &got, 1, timeout_ms);
		} else {
			struct pollfd p = {fd, POLLIN, 0};
			poll(&p, 1, timeout_ms);
		}
	}
	close(ep);
	mrb_close(&w);
}

// Workers of one group, each in its own process waiting as `hows` says, a
// producer in another: every job exactly once across them.
void ShareJobs(struct mrb_ring *ring, const std::string &path, std::vector<WaitHow> hows)
{
	const uint64_t count = 20000;
	size_t bytes = count * sizeof(uint32_t) + 64 + 8 * hows.size();
	auto *seen = static_cast<std::atomic<uint32_t> *>(
	    mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
	ASSERT_NE(seen, MAP_FAILED);
	auto *done = reinterpret_cast<std::atomic<uint64_t> *>(seen + count);
	std::atomic<uint64_t> *waits = done + 1; // per worker
	// The group exists before the producer starts: it sees every job.
	struct mrb_ring probe = {};
	ASSERT_EQ(mrb_worker_join(&probe, path.c_str(), "jobs", nullptr), 0);
	ASSERT_EQ(mrb_close(&probe), 0);
	std::vector<pid_t> workers;
	for (size_t k = 0; k < hows.size(); k++) {
		workers.push_back(
		    Fork([&] { WorkerLoop(path, hows[k], seen, done, waits + k, count); }));
		ASSERT_GT(workers.back(), 0);
	}
	pid_t producer = Fork([&] { WriteJobs(path, 0, count, true); });
	ASSERT_GT(producer, 0);
	EXPECT_EQ(ExitCode(producer), 0);
	uint64_t waited = 0;
	for (size_t k = 0; k < hows.size(); k++) {
		EXPECT_EQ(ExitCode(workers[k]), 0) << k;
		waited += waits[k].load();
		::testing::Test::RecordProperty("waits_" + std::to_string(k),
		                                std::to_string(waits[k].load()));
	}
	uint64_t wrong = 0;
	for (uint64_t i = 0; i < count; i++)
		if (seen[i].load() != 1) {
			if (wrong++ < 5)
				ADD_FAILURE() << "job " << i << " seen " << seen[i].load();
		}
	EXPECT_EQ(wrong, 0u);
	EXPECT_EQ(done->load(), count);
	// They waited (the producer pauses 40 times).
	EXPECT_GT(waited, 0u);
	struct mrb_group_info g;
	ASSERT_EQ(mrb_worker_groups(ring, &g, 1), 1);
	EXPECT_EQ(g.messages_done, count);
	EXPECT_EQ(g.redelivered, 0u);
	EXPECT_EQ(DataWaitersOf(ring), 0u);
	EXPECT_EQ(WorkArmed(ring), 0u);
	EXPECT_EQ(Load32(ring, 0xe080 + 0x104), 0u); // work_waiters
	munmap(seen, bytes);
}

// Two workers waiting only through their doorbells, one on epoll, one on
// poll.
TEST_F(WorkerDoorbell, TwoArmedWorkersGetEveryMessageOnce)
{
	ShareJobs(&ring_, path_, {kEpoll, kPoll});
}

// Doorbell workers and futex sleepers in one group: the counts they share
// (data_waiters) and their own (work_armed, work_waiters) go back to zero.
TEST_F(WorkerDoorbell, ArmedAndSleepingWorkersGetEveryMessageOnce)
{
	ShareJobs(&ring_, path_, {kEpoll, kFutex, kPoll, kFutex});
}

// Two armed workers; a write rings both. One of them disarms without
// reading (a cancelled wait): the other was rung too and takes the job.
TEST_F(WorkerDoorbell, RungWorkerThatDisarmsStrandsNothing)
{
	ASSERT_EQ(mrb_close(&ring_), 0);
	int to_parent[2], to_child[2];
	ASSERT_EQ(pipe(to_parent), 0);
	ASSERT_EQ(pipe(to_child), 0);
	struct mrb_ring a = {};
	ASSERT_EQ(Join(&a), 0);
	pid_t b = Fork([&] {
		struct mrb_ring w = {};
		if (mrb_worker_join(&w, path_.c_str(), "jobs", nullptr) != 0)
			_exit(10);
		int fd = mrb_doorbell_fd(&w, MRB_DOORBELL_READ);
		int timeout_ms;
		if (fd < 0 || mrb_arm_read(&w, &timeout_ms) != 0)
			_exit(11);
		char c = 'a';
		if (write(to_parent[1], &c, 1) != 1)
			_exit(12);
		// Rung, not timed out: only the ring makes this readable.
		if (!Readable(fd, 10000))
			_exit(13);
		Job j;
		size_t len;
		if (mrb_read(&w, &j, sizeof(j), &len) != 0)
			_exit(14);
		if (write(to_parent[1], &j, sizeof(j)) != sizeof(j))
			_exit(15);
		if (read(to_child[0], &c, 1) != 1) // the parent checked the counts
			_exit(16);
		mrb_close(&w);
	});
	ASSERT_GT(b, 0);
	char c;
	ASSERT_EQ(read(to_parent[0], &c, 1), 1); // b is armed
	int fd = mrb_doorbell_fd(&a, MRB_DOORBELL_READ);
	int timeout_ms;
	ASSERT_EQ(mrb_arm_read(&a, &timeout_ms), 0);
	EXPECT_EQ(DataWaitersOf(&a), 2u);
	EXPECT_EQ(WorkArmed(&a), 2u);
	pid_t producer = Fork([&] { WriteJobs(path_, 5, 6, false); });
	ASSERT_EQ(ExitCode(producer), 0);
	ASSERT_TRUE(Readable(fd, 10000));
	EXPECT_EQ(mrb_disarm(&a, MRB_DOORBELL_READ), 0); // cancelled, nothing read
	Job j = {};
	ASSERT_EQ(read(to_parent[0], &j, sizeof(j)), static_cast<ssize_t>(sizeof(j)));
	EXPECT_EQ(j.seq, 5u);
	EXPECT_EQ(j.check, Check(5));
	EXPECT_EQ(DataWaitersOf(&a), 0u);
	EXPECT_EQ(WorkArmed(&a), 0u);
	size_t len;
	EXPECT_EQ(mrb_read(&a, &j, sizeof(j), &len), MRB_EEMPTY);
	ASSERT_EQ(write(to_child[1], "x", 1), 1);
	EXPECT_EQ(ExitCode(b), 0);
	EXPECT_EQ(mrb_close(&a), 0);
	for (int p : {to_parent[0], to_parent[1], to_child[0], to_child[1]})
		close(p);
}

// A worker killed while armed: its registration (the name in its slot, one
// count in data_waiters and in work_armed) is taken back by the next write
// (whose datagram is refused), and producers then see no waiter at all.
TEST_F(WorkerDoorbell, KilledArmedWorkerIsTakenBackByTheNextWrite)
{
	ASSERT_EQ(mrb_close(&ring_), 0);
	int to_parent[2];
	ASSERT_EQ(pipe(to_parent), 0);
	pid_t child = Fork([&] {
		struct mrb_ring w = {};
		int timeout_ms;
		if (mrb_worker_join(&w, path_.c_str(), "jobs", nullptr) != 0 ||
		    mrb_arm_read(&w, &timeout_ms) != 0)
			_exit(10);
		char c = 'a';
		if (write(to_parent[1], &c, 1) != 1)
			_exit(11);
		pause();
	});
	char c;
	ASSERT_EQ(read(to_parent[0], &c, 1), 1);
	ASSERT_EQ(kill(child, SIGKILL), 0);
	EXPECT_EQ(ExitCode(child), 128 + SIGKILL);
	ASSERT_EQ(mrb_open(&ring_, path_.c_str(), 0), 0);
	EXPECT_EQ(DataWaitersOf(&ring_), 1u);
	EXPECT_EQ(WorkArmed(&ring_), 1u);
	EXPECT_NE(WorkerArmed(&ring_, 0), 0u);
	Job j = {1, Check(1)};
	ASSERT_EQ(mrb_write(&ring_, &j, sizeof(j)), 0);
	EXPECT_EQ(DataWaitersOf(&ring_), 0u);
	EXPECT_EQ(WorkArmed(&ring_), 0u);
	EXPECT_EQ(WorkerArmed(&ring_, 0), 0u);
	ASSERT_EQ(mrb_write(&ring_, &j, sizeof(j)), 0);
	EXPECT_EQ(DataWaitersOf(&ring_), 0u);
	close(to_parent[0]);
	close(to_parent[1]);
}

// The same death, found first by another worker of the group: its audit
// frees the dead idle slot and takes the registration back with it.
TEST_F(WorkerDoorbell, KilledArmedWorkerIsTakenBackByTheGroupsAudit)
{
	ASSERT_EQ(mrb_close(&ring_), 0);
	int to_parent[2];
	ASSERT_EQ(pipe(to_parent), 0);
	pid_t child = Fork([&] {
		struct mrb_ring w = {};
		int timeout_ms;
		if (mrb_worker_join(&w, path_.c_str(), "jobs", nullptr) != 0 ||
		    mrb_arm_read(&w, &timeout_ms) != 0)
			_exit(10);
		char c = 'a';
		if (write(to_parent[1], &c, 1) != 1)
			_exit(11);
		pause();
	});
	char c;
	ASSERT_EQ(read(to_parent[0], &c, 1), 1);
	ASSERT_EQ(kill(child, SIGKILL), 0);
	EXPECT_EQ(ExitCode(child), 128 + SIGKILL);
	struct mrb_ring w = {};
	ASSERT_EQ(Join(&w), 0);
	EXPECT_EQ(DataWaitersOf(&w), 1u);
	EXPECT_EQ(WorkArmed(&w), 1u);
	Job j;
	size_t len;
	EXPECT_EQ(mrb_read(&w, &j, sizeof(j), &len), MRB_EEMPTY); // audits
	EXPECT_EQ(DataWaitersOf(&w), 0u);
	EXPECT_EQ(WorkArmed(&w), 0u);
	EXPECT_EQ(WorkerArmed(&w, 0), 0u);
	EXPECT_EQ(mrb_workers(&w, nullptr, 0), 1); // only this one is left
	EXPECT_EQ(mrb_close(&w), 0);
	close(to_parent[0]);
	close(to_parent[1]);
}

int64_t CpuNs()
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ll +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ll;
}

int64_t NowNs()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

// The documented loop, in epoll, reading `count` messages "i" (8 bytes, in
// order) that a producer in another process writes, waiting for space on its
// own doorbell in a poll loop; the ring is small, so both sides wait often.
void EpollLoop(struct mrb_ring *ring, const std::string &path, uint32_t events);

TEST_F(Doorbell, EpollLoopReadsEveryMessageOnceFromAnotherProcess)
{
	ASSERT_EQ(Create(1024), 0);
	EpollLoop(&ring_, path_, EPOLLIN);
}

// The same loop, edge-triggered: arming drains the socket, so every ring
// after it is a new edge.
TEST_F(Doorbell, EdgeTriggeredEpollLoopReadsEveryMessageOnce)
{
	ASSERT_EQ(Create(1024), 0);
	EpollLoop(&ring_, path_, EPOLLIN | EPOLLET);
}

void EpollLoop(struct mrb_ring *ring, const std::string &path, uint32_t events)
{
	struct mrb_ring &ring_ = *ring;
	const std::string &path_ = path;
	const uint64_t count = 20000;
	pid_t child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		struct mrb_ring w = {};
		if (mrb_open(&w, path_.c_str(), 0) != 0)
			_exit(2);
		int fd = mrb_doorbell_fd(&w, MRB_DOORBELL_WRITE);
		for (uint64_t i = 0; i < count;) {
			int rc = mrb_write(&w, &i, sizeof(i));
			if (rc == 0) {
				i++;
				if (i % 1000 == 0)
					usleep(2000); // let the reader run dry and arm
				continue;
			}
			if (rc != MRB_EFULL)
				_exit(3);
			int timeout_ms;
			rc = mrb_arm_write(&w, sizeof(i), &timeout_ms);
			if (rc < 0)
				_exit(4);
			if (rc == 0) {
				struct pollfd p = {fd, POLLIN, 0};
				poll(&p, 1, timeout_ms);
			}
		}
		mrb_close(&w);
		_exit(0);
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int fd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ);
	struct epoll_event ev = {};
	ev.events = events;
	ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	uint64_t next = 0;
	int waits = 0;
	while (next < count) {
		uint64_t v;
		size_t len;
		int rc;
		while ((rc = mrb_read(&ring_, &v, sizeof(v), &len)) == 0) {
			ASSERT_EQ(len, sizeof(v));
			ASSERT_EQ(v, next);
			next++;
		}
		ASSERT_EQ(rc, MRB_EEMPTY);
		if (next == count)
			break;
		int timeout_ms;
		rc = mrb_arm_read(&ring_, &timeout_ms);
		ASSERT_GE(rc, 0);
		if (rc == 1)
			continue;
		struct epoll_event got;
		epoll_wait(ep, &got, 1, timeout_ms);
		waits++;
	}
	int status;
	ASSERT_EQ(waitpid(child, &status, 0), child);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
	size_t len;
	uint64_t v;
	EXPECT_EQ(mrb_read(&ring_, &v, sizeof(v), &len), MRB_EEMPTY);
	EXPECT_GT(waits, 0);
	close(ep);
}

// An armed reader idle in epoll for 2 s: its CPU time is the 1 s bound's
// wake-ups, far below 2% of a core.
TEST_F(Doorbell, IdleArmedReaderUsesNoCpu)
{
	ASSERT_EQ(Create(4096), 0);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int fd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ);
	struct epoll_event ev = {};
	ev.events = EPOLLIN;
	ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	int64_t wall0 = NowNs(), cpu0 = CpuNs();
	int wakeups = 0;
	while (NowNs() - wall0 < 2000000000ll) {
		int timeout_ms;
		ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
		struct epoll_event got;
		epoll_wait(ep, &got, 1, timeout_ms);
		wakeups++;
	}
	int64_t wall = NowNs() - wall0, cpu = CpuNs() - cpu0;
	EXPECT_LT(cpu * 50, wall) << "cpu " << cpu << " ns over " << wall << " ns";
	// The bound gives 2-3; a busy loop would give thousands. A fresh-clone
	// CI run at load 9 saw 5 (not reproduced alone in 8 runs), so the
	// bound here leaves room for a loaded machine.
	EXPECT_LE(wakeups, 10);
	close(ep);
}

// A worker killed while it holds a job; the other waits only through its
// doorbell: no write announces the dead worker's job, and the armed
// worker's bound (100 ms) makes it look, rescue it and read it again.
TEST_F(WorkerDoorbell, ArmedWorkerRescuesADeadWorkersJob)
{
	ASSERT_EQ(mrb_close(&ring_), 0);
	struct mrb_ring y = {};
	ASSERT_EQ(Join(&y), 0);
	int to_parent[2];
	ASSERT_EQ(pipe(to_parent), 0);
	pid_t x = Fork([&] {
		struct mrb_ring w = {};
		if (mrb_worker_join(&w, path_.c_str(), "jobs", nullptr) != 0)
			_exit(10);
		Job j;
		size_t len;
		if (mrb_read_wait(&w, &j, sizeof(j), &len, 10 * 1000000000ll) != 0)
			_exit(11);
		if (write(to_parent[1], &j, sizeof(j)) != sizeof(j))
			_exit(12);
		pause(); // killed holding it
	});
	ASSERT_GT(x, 0);
	pid_t producer = Fork([&] { WriteJobs(path_, 9, 10, false); });
	ASSERT_EQ(ExitCode(producer), 0);
	Job j = {};
	ASSERT_EQ(read(to_parent[0], &j, sizeof(j)), static_cast<ssize_t>(sizeof(j)));
	ASSERT_EQ(j.seq, 9u);
	ASSERT_EQ(kill(x, SIGKILL), 0);
	EXPECT_EQ(ExitCode(x), 128 + SIGKILL);
	int fd = mrb_doorbell_fd(&y, MRB_DOORBELL_READ);
	ASSERT_GE(fd, 0);
	int rc = MRB_EEMPTY, waits = 0;
	size_t len = 0;
	j = {};
	// The documented loop; bounded in rounds, not in time.
	for (int round = 0; round < 1000; round++) {
		rc = mrb_read(&y, &j, sizeof(j), &len);
		if (rc != MRB_EEMPTY)
			break;
		int timeout_ms;
		int armed = mrb_arm_read(&y, &timeout_ms);
		ASSERT_GE(armed, 0);
		if (armed == 1)
			continue;
		EXPECT_TRUE(timeout_ms == 100 || timeout_ms == 10 || timeout_ms == 1) << timeout_ms;
		struct pollfd p = {fd, POLLIN, 0};
		poll(&p, 1, timeout_ms);
		waits++;
	}
	ASSERT_EQ(rc, 0);
	EXPECT_EQ(j.seq, 9u);
	EXPECT_EQ(j.check, Check(9));
	// (Usually after a wait or two; a slow run may find the job
	// rescuable at its first read already.)
	RecordProperty("waits", std::to_string(waits));
	struct mrb_group_info g;
	ASSERT_EQ(mrb_worker_groups(&y, &g, 1), 1);
	EXPECT_EQ(g.redelivered, 1u);
	EXPECT_EQ(mrb_close(&y), 0);
	close(to_parent[0]);
	close(to_parent[1]);
}

// A worker armed idle in epoll for 1 s: its CPU time is its 100 ms bound's
// wake-ups (each re-checks and may audit the group), far below 2% of a core.
TEST_F(WorkerDoorbell, IdleArmedWorkerUsesNoCpu)
{
	struct mrb_ring w = {};
	ASSERT_EQ(Join(&w), 0);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int fd = mrb_doorbell_fd(&w, MRB_DOORBELL_READ);
	struct epoll_event ev = {};
	ev.events = EPOLLIN;
	ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	int64_t wall0 = NowNs(), cpu0 = CpuNs();
	int wakeups = 0;
	while (NowNs() - wall0 < 1000000000ll) {
		int timeout_ms;
		ASSERT_EQ(mrb_arm_read(&w, &timeout_ms), 0);
		struct epoll_event got;
		// Never rung. (EINTR: where the doorbell uses io_uring, the
		// kernel detaches an earlier test's closed ring from this
		// thread by task work, which interrupts a wait; mrb.h.)
		int n = epoll_wait(ep, &got, 1, timeout_ms);
		EXPECT_TRUE(n == 0 || (n < 0 && errno == EINTR)) << n;
		wakeups++;
	}
	int64_t wall = NowNs() - wall0, cpu = CpuNs() - cpu0;
	EXPECT_LT(cpu * 50, wall) << "cpu " << cpu << " ns over " << wall << " ns";
	EXPECT_LE(wakeups, 1000 / 100 + 2);
	EXPECT_EQ(mrb_close(&w), 0);
	close(ep);
}

} // namespace
