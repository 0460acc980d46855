// SPDX-License-Identifier: MIT
// Doorbells across network namespaces (doorbell_uring.c): where io_uring has
// FUTEX_WAIT, the doorbell descriptor is an epoll set holding the socket and
// an io_uring waiting on the side's futex word, so that a waker in another
// network namespace, whose datagram cannot reach the socket's abstract name,
// still makes it readable. Without io_uring (MRB_NO_IO_URING=1 here), the
// descriptor is the socket, as before.
//
// The namespace tests need CAP_SYS_ADMIN (unshare(CLONE_NEWNET)) and an
// io_uring with FUTEX_WAIT (Linux 6.7, not blocked by sysctl or seccomp);
// they skip, saying which, where either is missing. Their 20 s poll bounds
// are no timing assertion: without the mechanism the descriptor would never
// become readable at all (the caller's own timeout is the only bound).
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "mrb_testing.h"
#include "test_util.h"

using mrbtest::RingTest;

namespace
{

constexpr int kGenerousMs = 20000;

bool Readable(int fd, int timeout_ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

int Pending(int fd)
{
	int n = 0;
	char b;
	while (recv(fd, &b, 1, MSG_DONTWAIT) == 1)
		n++;
	return n;
}

std::string FdTarget(int fd)
{
	char buf[256];
	ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof(buf));
	return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

bool IsEpoll(int fd)
{
	return FdTarget(fd) == "anon_inode:[eventpoll]";
}

// Open descriptors of this process whose target contains `what` ("" for all).
int CountFds(const char *what)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0 && FdTarget(fd).find(what) != std::string::npos)
			n++;
	return n;
}

// Whether a child may unshare its network namespace; if not, why.
bool CanUnshareNet(std::string *why)
{
	pid_t child = fork();
	if (child == 0)
		_exit(unshare(CLONE_NEWNET) == 0 ? 0 : errno);
	int status = 0;
	if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status)) {
		*why = "fork/wait failed";
		return false;
	}
	if (WEXITSTATUS(status) != 0)
		*why = strerror(WEXITSTATUS(status));
	return WEXITSTATUS(status) == 0;
}

// Forks a child that leaves this network namespace, opens the ring at
// `path` and runs body(ring), which says whether it did its part; the exit
// status is 0 only then (2: unshare, 3: open, 4: body, 5: close). The child
// closes `unused_fd` (the parent's end of a pipe) unless it is -1.
template <typename Body> pid_t ForkInAnotherNetns(const std::string &path, int unused_fd, Body body)
{
	pid_t child = fork();
	if (child != 0)
		return child;
	if (unused_fd >= 0)
		close(unused_fd);
	if (unshare(CLONE_NEWNET) != 0)
		_exit(2);
	struct mrb_ring ring = {};
	if (mrb_open(&ring, path.c_str(), 0) != 0)
		_exit(3);
	if (!body(&ring))
		_exit(4);
	_exit(mrb_close(&ring) == 0 ? 0 : 5);
}

// Writes message i (its 8-byte index) each time a byte arrives on `cue`.
bool WriteOnCue(struct mrb_ring *ring, int cue, uint64_t rounds)
{
	char c;
	for (uint64_t i = 0; i < rounds; i++)
		if (read(cue, &c, 1) != 1 || mrb_write(ring, &i, sizeof(i)) != 0)
			return false;
	return true;
}

class DoorbellUring : public RingTest
{
      protected:
	// Skips unless the descriptor is the io_uring kind and this process
	// may make a network namespace.
	void RequireNetnsAndUring(int fd)
	{
		if (!IsEpoll(fd))
			GTEST_SKIP() << "io_uring FUTEX_WAIT unavailable here (kernel older than "
			                "6.7, kernel.io_uring_disabled, seccomp or "
			                "MRB_NO_IO_URING): the doorbell is the socket alone";
		std::string why;
		if (!CanUnshareNet(&why))
			GTEST_SKIP() << "unshare(CLONE_NEWNET) refused (" << why
			             << "): needs CAP_SYS_ADMIN, e.g. root";
	}
};

TEST_F(DoorbellUring, DescriptorIsANonBlockingEpollSetHoldingTheSocket)
{
	ASSERT_EQ(Create(4096), 0);
	for (int which : {MRB_DOORBELL_READ, MRB_DOORBELL_WRITE}) {
		int fd = mrb_doorbell_fd(&ring_, which);
		ASSERT_GE(fd, 0);
		EXPECT_EQ(mrb_doorbell_fd(&ring_, which), fd);
		EXPECT_NE(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
		EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
		if (!IsEpoll(fd))
			GTEST_SKIP() << "io_uring FUTEX_WAIT unavailable here: the socket alone";
		int sock = mrbtest::DoorbellSocket(fd);
		EXPECT_GE(sock, 0);
		EXPECT_NE(sock, fd);
		EXPECT_EQ(CountFds("anon_inode:[io_uring]"), 1 + which);
	}
}

TEST_F(DoorbellUring, WithoutIoUringTheDescriptorIsTheSocketAsBefore)
{
	ASSERT_EQ(setenv("MRB_NO_IO_URING", "1", 1), 0);
	ASSERT_EQ(Create(4096), 0);
	int fd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ);
	ASSERT_EQ(unsetenv("MRB_NO_IO_URING"), 0);
	ASSERT_GE(fd, 0);
	struct stat st;
	ASSERT_EQ(fstat(fd, &st), 0);
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	EXPECT_EQ(CountFds("anon_inode:[io_uring]"), 0);
	int timeout_ms;
	ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
	EXPECT_FALSE(Readable(fd, 0));
	ASSERT_EQ(mrb_write(&ring_, "a", 1), 0);
	EXPECT_TRUE(Readable(fd, 0));
	EXPECT_EQ(Pending(fd), 1);
}

// Docker's default seccomp profile refuses io_uring_setup (EPERM): in a
// child under such a filter the doorbell is the socket, rung as before.
#ifdef __NR_io_uring_setup
TEST_F(DoorbellUring, SeccompRefusingIoUringKeepsTheSocket)
{
	ASSERT_EQ(Create(4096), 0);
	ASSERT_EQ(mrb_close(&ring_), 0);
	ring_ = {};
	pid_t child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		struct sock_filter filter[] = {
		    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = {4, filter};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
			_exit(2);
		struct mrb_ring r = {};
		int timeout_ms;
		if (mrb_open(&r, path_.c_str(), 0) != 0)
			_exit(3);
		int fd = mrb_doorbell_fd(&r, MRB_DOORBELL_READ);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
			_exit(4);
		if (mrb_arm_read(&r, &timeout_ms) != 0 || mrb_write(&r, "s", 1) != 0 ||
		    !Readable(fd, 0) || Pending(fd) != 1)
			_exit(5);
		_exit(mrb_close(&r) == 0 ? 0 : 6);
	}
	int status;
	ASSERT_EQ(waitpid(child, &status, 0), child);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}
#endif

// A reader armed in an epoll-able doorbell; a producer in a new network
// namespace writes one message per round: the descriptor becomes readable
// (no datagram reaches it: the socket stays empty), and the round's message
// is read exactly once.
TEST_F(DoorbellUring, ReaderIsWokenByAProducerInAnotherNetworkNamespace)
{
	ASSERT_EQ(Create(4096), 0);
	int fd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ);
	ASSERT_GE(fd, 0);
	RequireNetnsAndUring(fd);
	if (IsSkipped())
		return;
	int go[2];
	ASSERT_EQ(pipe(go), 0);
	constexpr uint64_t kRounds = 300;
	pid_t child = ForkInAnotherNetns(
	    path_, go[1], [&](struct mrb_ring *w) { return WriteOnCue(w, go[0], kRounds); });
	ASSERT_GE(child, 0);
	close(go[0]);
	int sock = mrbtest::DoorbellSocket(fd);
	for (uint64_t i = 0; i < kRounds; i++) {
		int timeout_ms;
		ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0) << i;
		ASSERT_FALSE(Readable(fd, 0)) << i;
		ASSERT_EQ(write(go[1], "g", 1), 1);
		ASSERT_TRUE(Readable(fd, kGenerousMs)) << i;
		uint64_t v = ~0ull;
		size_t len = 0;
		ASSERT_EQ(mrb_read(&ring_, &v, sizeof(v), &len), 0) << i;
		ASSERT_EQ(len, sizeof(v));
		ASSERT_EQ(v, i);
		ASSERT_EQ(mrb_read(&ring_, &v, sizeof(v), &len), MRB_EEMPTY) << i;
		ASSERT_EQ(Pending(sock), 0) << i; // the datagram never arrives
	}
	close(go[1]);
	int status;
	ASSERT_EQ(waitpid(child, &status, 0), child);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// A writer armed for space; the consumer, in a new network namespace, reads
// one message per round: the writer's descriptor becomes readable and the
// write fits.
TEST_F(DoorbellUring, WriterIsWokenByAConsumerInAnotherNetworkNamespace)
{
	ASSERT_EQ(Create(4096), 0);
	std::vector<uint8_t> msg(1000, 7);
	int n = 0;
	while (mrb_write(&ring_, msg.data(), msg.size()) == 0)
		n++;
	ASSERT_GT(n, 0);
	int fd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_WRITE);
	ASSERT_GE(fd, 0);
	RequireNetnsAndUring(fd);
	if (IsSkipped())
		return;
	int go[2];
	ASSERT_EQ(pipe(go), 0);
	constexpr int kRounds = 100;
	pid_t child = ForkInAnotherNetns(path_, go[1], [&](struct mrb_ring *r) {
		std::vector<uint8_t> buf(2000);
		size_t len;
		char c;
		for (int i = 0; i < kRounds; i++)
			if (read(go[0], &c, 1) != 1 ||
			    mrb_read(r, buf.data(), buf.size(), &len) != 0 || len != 1000)
				return false;
		return true;
	});
	ASSERT_GE(child, 0);
	close(go[0]);
	int sock = mrbtest::DoorbellSocket(fd);
	for (int i = 0; i < kRounds; i++) {
		int timeout_ms;
		ASSERT_EQ(mrb_arm_write(&ring_, msg.size(), &timeout_ms), 0) << i;
		ASSERT_FALSE(Readable(fd, 0)) << i;
		ASSERT_EQ(write(go[1], "g", 1), 1);
		ASSERT_TRUE(Readable(fd, kGenerousMs)) << i;
		ASSERT_EQ(mrb_arm_write(&ring_, msg.size(), &timeout_ms), 1) << i;
		ASSERT_EQ(mrb_write(&ring_, msg.data(), msg.size()), 0) << i;
		ASSERT_EQ(Pending(sock), 0) << i;
	}
	close(go[1]);
	int status;
	ASSERT_EQ(waitpid(child, &status, 0), child);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// A worker's doorbell (armed workers count in data_waiters, so its wait is
// on data_seq, not on its group's wake-one word): the same, one job a round.
TEST_F(DoorbellUring, WorkerIsWokenByAProducerInAnotherNetworkNamespace)
{
	ASSERT_EQ(Create(4096, MRB_CREATE_FANOUT), 0);
	struct mrb_ring w = {};
	ASSERT_EQ(mrb_worker_join(&w, path_.c_str(), "jobs", nullptr), 0);
	int fd = mrb_doorbell_fd(&w, MRB_DOORBELL_READ);
	ASSERT_GE(fd, 0);
	RequireNetnsAndUring(fd);
	if (IsSkipped()) {
		mrb_close(&w);
		return;
	}
	int go[2];
	ASSERT_EQ(pipe(go), 0);
	constexpr uint64_t kRounds = 100;
	pid_t child = ForkInAnotherNetns(
	    path_, go[1], [&](struct mrb_ring *p) { return WriteOnCue(p, go[0], kRounds); });
	ASSERT_GE(child, 0);
	close(go[0]);
	int sock = mrbtest::DoorbellSocket(fd);
	for (uint64_t i = 0; i < kRounds; i++) {
		int timeout_ms;
		ASSERT_EQ(mrb_arm_read(&w, &timeout_ms), 0) << i;
		ASSERT_FALSE(Readable(fd, 0)) << i;
		ASSERT_EQ(write(go[1], "g", 1), 1);
		ASSERT_TRUE(Readable(fd, kGenerousMs)) << i;
		uint64_t v = ~0ull;
		size_t len = 0;
		ASSERT_EQ(mrb_read(&w, &v, sizeof(v), &len), 0) << i;
		ASSERT_EQ(v, i);
		ASSERT_EQ(mrb_read(&w, &v, sizeof(v), &len), MRB_EEMPTY) << i;
		ASSERT_EQ(Pending(sock), 0) << i;
	}
	close(go[1]);
	int status;
	ASSERT_EQ(waitpid(child, &status, 0), child);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
	EXPECT_EQ(mrb_close(&w), 0);
}

// The documented loop (drain, arm, poll) against a producer in another
// network namespace writing freely into a small ring (so that it waits for
// space too): every message arrives once, in order, and every poll of an
// armed doorbell ends readable.
TEST_F(DoorbellUring, LoopReadsEveryMessageOnceFromAnotherNetworkNamespace)
{
	ASSERT_EQ(Create(1024), 0);
	int fd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ);
	ASSERT_GE(fd, 0);
	RequireNetnsAndUring(fd);
	if (IsSkipped())
		return;
	constexpr uint64_t kCount = 3000;
	pid_t child = ForkInAnotherNetns(path_, -1, [&](struct mrb_ring *w) {
		for (uint64_t i = 0; i < kCount; i++) {
			uint64_t rec[4] = {i, i * 3, i * 5, i * 7};
			if (mrb_write_wait(w, rec, sizeof(rec), -1) != 0)
				return false;
		}
		return true;
	});
	ASSERT_GE(child, 0);
	uint64_t next = 0;
	int waits = 0;
	while (next < kCount) {
		uint64_t rec[4];
		size_t len;
		int rc;
		while ((rc = mrb_read(&ring_, rec, sizeof(rec), &len)) == 0) {
			ASSERT_EQ(len, sizeof(rec));
			ASSERT_EQ(rec[0], next);
			ASSERT_EQ(rec[3], next * 7);
			next++;
		}
		ASSERT_EQ(rc, MRB_EEMPTY);
		if (next == kCount)
			break;
		int timeout_ms;
		rc = mrb_arm_read(&ring_, &timeout_ms);
		ASSERT_GE(rc, 0);
		if (rc == 1)
			continue;
		waits++;
		ASSERT_TRUE(Readable(fd, kGenerousMs)) << next;
	}
	int status;
	ASSERT_EQ(waitpid(child, &status, 0), child);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
	EXPECT_GT(waits, 0);
}

// Threads of one producer handle share its write doorbell (one descriptor,
// one space entry, one io_uring): each waits for space in its own poll loop,
// bounded by *timeout_ms as documented, while the consumer, in another
// network namespace, drains the ring. The consumer gets every thread's
// messages once, in that thread's order, and the wake-ups come through the
// doorbell: one thread's arming drains a ring meant for another now and then
// (that one then waits out its bound), but without the io_uring wait every
// poll would.
TEST_F(DoorbellUring, WriterThreadsShareTheDoorbellAcrossNamespaces)
{
	if (MRB_TSAN)
		GTEST_SKIP() << "the threads' payload writes are ordered by the consumer "
		                "process's releases, which ThreadSanitizer does not see";
	ASSERT_EQ(Create(1024), 0);
	int fd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_WRITE);
	ASSERT_GE(fd, 0);
	RequireNetnsAndUring(fd);
	if (IsSkipped())
		return;
	constexpr int kThreads = 4;
	constexpr uint32_t kPerThread = 400;
	pid_t child = ForkInAnotherNetns(path_, -1, [&](struct mrb_ring *r) {
		uint32_t next[kThreads] = {};
		for (uint32_t n = 0; n < kThreads * kPerThread; n++) {
			uint32_t msg[24];
			size_t len;
			if (mrb_read_wait(r, msg, sizeof(msg), &len, 60000000000ll) != 0 ||
			    len != sizeof(msg) || msg[0] >= kThreads || msg[1] != next[msg[0]]++ ||
			    msg[23] != msg[1] * 7)
				return false;
		}
		return true;
	});
	ASSERT_GE(child, 0);
	std::atomic<int> failures{0}, waits{0}, bounds{0};
	std::vector<std::thread> threads;
	for (int t = 0; t < kThreads; t++)
		threads.emplace_back([&, t] {
			for (uint32_t i = 0; i < kPerThread; i++) {
				uint32_t msg[24] = {};
				msg[0] = static_cast<uint32_t>(t);
				msg[1] = i;
				msg[23] = i * 7;
				for (;;) {
					int rc = mrb_write(&ring_, msg, sizeof(msg));
					if (rc == 0)
						break;
					int timeout_ms;
					if (rc != MRB_EFULL ||
					    (rc = mrb_arm_write(&ring_, sizeof(msg), &timeout_ms)) <
					        0) {
						failures++;
						return;
					}
					if (rc == 0) {
						waits++;
						if (!Readable(fd, timeout_ms))
							bounds++;
					}
				}
			}
		});
	for (auto &th : threads)
		th.join();
	EXPECT_EQ(failures.load(), 0);
	int status;
	ASSERT_EQ(waitpid(child, &status, 0), child);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
	// Socket datagrams cannot cross the namespace: only the io_uring wait
	// makes a poll end before its bound. The threads wait only a few times
	// (8-15 here), and a drain by another thread ends one or two of those
	// by the bound (a tenth was too tight: 2 of 15); without the io_uring
	// wait every one would.
	EXPECT_GT(waits.load(), 0);
	EXPECT_LE(bounds.load() * 2, waits.load() + 4) << bounds.load() << " of " << waits.load();
}

// Close with waits queued on both doorbells releases every descriptor (the
// epoll sets, the io_uring instances, the sockets) and mapping; ASan's leak
// check covers the memory.
TEST_F(DoorbellUring, CloseWithWaitsInFlightLeavesNothingBehind)
{
	int before = CountFds("");
	ASSERT_EQ(Create(4096), 0);
	int timeout_ms;
	ASSERT_GE(mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ), 0);
	ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
	std::vector<uint8_t> msg(1000, 7);
	while (mrb_write(&ring_, msg.data(), msg.size()) == 0) {
	}
	ASSERT_EQ(mrb_arm_write(&ring_, msg.size(), &timeout_ms), 0);
	ASSERT_EQ(mrb_close(&ring_), 0);
	ring_ = {};
	EXPECT_EQ(CountFds(""), before);
	EXPECT_EQ(CountFds("anon_inode:[io_uring]"), 0);
	EXPECT_EQ(CountFds("anon_inode:[eventpoll]"), 0);
}

// A wait left in flight by a disarm does no harm: nothing wakes it while
// nobody counts as a waiter, and the next arming reuses it. Arming drains
// completions as it drains the socket.
TEST_F(DoorbellUring, DisarmedWaitCompletesHarmlessly)
{
	ASSERT_EQ(Create(4096), 0);
	int fd = mrb_doorbell_fd(&ring_, MRB_DOORBELL_READ);
	int timeout_ms;
	ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
	ASSERT_EQ(mrb_disarm(&ring_, MRB_DOORBELL_READ), 0);
	EXPECT_FALSE(Readable(fd, 0));
	ASSERT_EQ(mrb_write(&ring_, "x", 1), 0);
	// Nobody counted as a waiter: no wake-up, nothing readable.
	EXPECT_FALSE(Readable(fd, 0));
	EXPECT_EQ(mrb_arm_read(&ring_, &timeout_ms), 1);
	int rc;
	EXPECT_EQ(mrbtest::ReadOne(&ring_, &rc), std::vector<uint8_t>{'x'});
	ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
	EXPECT_FALSE(Readable(fd, 0));
	ASSERT_EQ(mrb_write(&ring_, "y", 1), 0);
	EXPECT_TRUE(Readable(fd, kGenerousMs));
	// Arming drains the completion too, even when it finds the message.
	EXPECT_EQ(mrb_arm_read(&ring_, &timeout_ms), 1);
	EXPECT_FALSE(Readable(fd, 0));
	EXPECT_EQ(mrbtest::ReadOne(&ring_, &rc), std::vector<uint8_t>{'y'});
	ASSERT_EQ(mrb_arm_read(&ring_, &timeout_ms), 0);
	EXPECT_FALSE(Readable(fd, 0));
}

} // namespace
