// SPDX-License-Identifier: MIT
// Doorbells (event-loop waiting): the descriptor, arming, one-shot rings,
// the waiter counts they leave behind (exactly zero once nobody waits), an
// epoll loop against a producer in another process, and idle CPU.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include <cstring>

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
	EXPECT_LE(wakeups, 4);
	close(ep);
}

} // namespace
