// SPDX-License-Identifier: MIT
// Worker groups: each message to one worker, claim order, runs, gating,
// dead workers (both policies), hung workers (hold timeout, refused late
// release), limits, listing, groups beside subscribers, waking.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "mrb_testing.h"
#include "test_util.h"

using mrbtest::Pattern;
using mrbtest::RingTest;

namespace
{

std::vector<uint8_t> Msg(uint64_t i, size_t len = 40)
{
	auto out = Pattern(11, i, len);
	memcpy(out.data(), &i, sizeof(i));
	return out;
}

void Sleep(int64_t ns)
{
	struct timespec ts = {static_cast<time_t>(ns / 1000000000),
	                      static_cast<long>(ns % 1000000000)};
	nanosleep(&ts, nullptr);
}

class Workers : public RingTest
{
      protected:
	void SetUp() override
	{
		RingTest::SetUp();
		ASSERT_EQ(0, Create(4096, MRB_CREATE_FANOUT));
	}
	void TearDown() override
	{
		for (auto &w : w_)
			mrb_close(&w);
		RingTest::TearDown();
	}
	int Join(size_t k, const char *group = "jobs", unsigned policy = MRB_AT_LEAST_ONCE,
	         int64_t timeout = 0)
	{
		struct mrb_worker_options opts = {policy, timeout};
		return mrb_worker_join(&w_[k], path_.c_str(), group, &opts);
	}
	int Write(uint64_t i, size_t len = 40)
	{
		auto m = Msg(i, len);
		return mrb_write(&ring_, m.data(), m.size());
	}
	// The next message of worker k (its sequence number) or an error;
	// checks the bytes.
	int64_t Next(size_t k)
	{
		uint8_t buf[256];
		size_t len = 0;
		int rc = mrb_read(&w_[k], buf, sizeof(buf), &len);
		if (rc != 0)
			return rc;
		uint64_t seq;
		memcpy(&seq, buf, sizeof(seq));
		EXPECT_EQ(Msg(seq, len), std::vector<uint8_t>(buf, buf + len));
		return static_cast<int64_t>(seq);
	}
	// Up to max messages in one run; their sequence numbers, or {rc}.
	std::vector<int64_t> Many(size_t k, size_t max)
	{
		uint8_t buf[4096];
		size_t lens[64];
		int64_t n = mrb_read_many(&w_[k], buf, sizeof(buf), lens, max);
		if (n < 0)
			return {n};
		std::vector<int64_t> out;
		size_t at = 0;
		for (int64_t i = 0; i < n; i++) {
			uint64_t seq;
			memcpy(&seq, buf + at, sizeof(seq));
			EXPECT_EQ(Msg(seq, lens[i]),
			          std::vector<uint8_t>(buf + at, buf + at + lens[i]));
			out.push_back(static_cast<int64_t>(seq));
			at += lens[i];
		}
		return out;
	}
	struct mrb_group_info Group(const char *name = "jobs")
	{
		struct mrb_group_info info[MRB_MAX_GROUPS];
		int64_t n = mrb_worker_groups(&ring_, info, MRB_MAX_GROUPS);
		for (int64_t i = 0; i < n; i++)
			if (strcmp(info[i].name, name) == 0)
				return info[i];
		ADD_FAILURE() << "no group " << name;
		return {};
	}
	struct mrb_ring w_[8] = {};
};

TEST_F(Workers, ShouldRefuseQueueRingsAndBadArguments)
{
	struct mrb_ring q = {};
	std::string qpath = path_ + ".queue";
	struct mrb_create_options copts = {MRB_CREATE_REMOVE, 0};
	ASSERT_EQ(0, mrb_create(&q, qpath.c_str(), 4096, &copts));
	EXPECT_EQ(MRB_EMODE, mrb_worker_join(&w_[0], qpath.c_str(), "jobs", nullptr));
	mrb_close(&q);
	unlink(qpath.c_str());
	EXPECT_EQ(MRB_EINVAL, mrb_worker_join(&w_[0], path_.c_str(), "", nullptr));
	EXPECT_EQ(MRB_EINVAL, mrb_worker_join(&w_[0], path_.c_str(), nullptr, nullptr));
	std::string longname(MRB_GROUP_NAME_MAX + 1, 'x');
	EXPECT_EQ(MRB_EINVAL, mrb_worker_join(&w_[0], path_.c_str(), longname.c_str(), nullptr));
	struct mrb_worker_options bad = {2, 0};
	EXPECT_EQ(MRB_EINVAL, mrb_worker_join(&w_[0], path_.c_str(), "jobs", &bad));
	struct mrb_worker_options neg = {MRB_AT_LEAST_ONCE, -1};
	EXPECT_EQ(MRB_EINVAL, mrb_worker_join(&w_[0], path_.c_str(), "jobs", &neg));
	EXPECT_EQ(MRB_EMODE, mrb_worker_ack(&ring_)); // a plain fan-out handle
	struct mrb_ring sub = {};
	ASSERT_EQ(0, mrb_subscribe(&sub, path_.c_str(), nullptr));
	EXPECT_EQ(MRB_EINVAL, mrb_worker_ack(&sub));
	mrb_close(&sub);
	EXPECT_STREQ("every worker slot (or group) of the ring is taken",
	             mrb_strerror(MRB_ENOWORKER));
}

TEST_F(Workers, ShouldHandEachMessageToOneWorkerInClaimOrder)
{
	ASSERT_EQ(0, Write(0)); // written before any worker: the group starts here
	ASSERT_EQ(0, Join(0));
	ASSERT_EQ(0, Join(1));
	for (uint64_t i = 1; i < 10; i++)
		ASSERT_EQ(0, Write(i));
	EXPECT_EQ((std::vector<int64_t>{0, 1, 2}), Many(0, 3));
	EXPECT_EQ(3, Next(1));
	EXPECT_EQ((std::vector<int64_t>{4, 5}), Many(1, 2));
	EXPECT_EQ(6, Next(0));
	EXPECT_EQ((std::vector<int64_t>{7, 8, 9}), Many(0, 64));
	EXPECT_EQ(MRB_EEMPTY, Next(1));
	EXPECT_EQ(MRB_EEMPTY, Next(0));
	auto g = Group();
	EXPECT_EQ(10u, g.messages_done);
	EXPECT_EQ(400u, g.bytes_done);
	EXPECT_EQ(0u, g.redelivered);
	EXPECT_EQ(2u, g.workers);
	EXPECT_EQ(2u, g.workers_alive);
	EXPECT_EQ(MRB_AT_LEAST_ONCE, g.policy);
	EXPECT_EQ(0u, g.lag_bytes);
}

TEST_F(Workers, ShouldOnlyTakeWhatFitsTheBuffer)
{
	ASSERT_EQ(0, Join(0));
	ASSERT_EQ(0, Write(0, 100));
	ASSERT_EQ(0, Write(1, 100));
	uint8_t buf[150];
	size_t lens[4];
	EXPECT_EQ(1, mrb_read_many(&w_[0], buf, sizeof(buf), lens, 4));
	EXPECT_EQ(100u, lens[0]);
	EXPECT_EQ(MRB_EBUFFER_TOO_SMALL, mrb_read_many(&w_[0], buf, 50, lens, 4));
	EXPECT_EQ(100u, lens[0]);
	size_t len = 0;
	EXPECT_EQ(MRB_EBUFFER_TOO_SMALL, mrb_read(&w_[0], buf, 10, &len));
	EXPECT_EQ(100u, len);
	EXPECT_EQ(1, Next(0));
	EXPECT_EQ(MRB_EEMPTY, Next(0));
	EXPECT_EQ(2u, Group().messages_done);
}

TEST_F(Workers, ShouldHoldSpaceUntilReleased)
{
	ASSERT_EQ(0, Join(0));
	// 40-byte messages take 64 bytes: 64 fill the 4 KiB ring.
	for (uint64_t i = 0; i < 64; i++)
		ASSERT_EQ(0, Write(i));
	EXPECT_EQ(MRB_EFULL, Write(64));
	EXPECT_EQ(0, Next(0)); // held: no space yet
	EXPECT_EQ(MRB_EFULL, Write(64));
	EXPECT_EQ(1, Next(0)); // released message 0
	EXPECT_EQ(0, Write(64));
	EXPECT_EQ(MRB_EFULL, Write(65));
	EXPECT_EQ(0, mrb_worker_ack(&w_[0]));
	EXPECT_EQ(0, Write(65));
	EXPECT_EQ(0, mrb_worker_ack(&w_[0])); // nothing held: no-op
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(2u * 64, st.consumer_position);
}

TEST_F(Workers, ShouldRefuseOtherConsumerCalls)
{
	ASSERT_EQ(0, Join(0));
	ASSERT_EQ(0, Write(0));
	struct mrb_view v;
	EXPECT_EQ(MRB_EINVAL, mrb_peek(&w_[0], &v));
	EXPECT_EQ(MRB_EINVAL, mrb_hold(&w_[0], 1));
	EXPECT_EQ(MRB_EINVAL,
	          mrb_read_batch(
	              &w_[0], [](void *, const void *, size_t) { return 0; }, nullptr, 0));
	uint8_t buf[64];
	size_t lens[1];
	uint64_t pos[1];
	EXPECT_EQ(MRB_EINVAL, mrb_read_many_at(&w_[0], buf, sizeof(buf), lens, pos, 1));
	EXPECT_EQ(0, Next(0));
	// A plain handle of a fan-out ring reads nothing.
	EXPECT_EQ(MRB_EMODE, mrb_read(&ring_, buf, sizeof(buf), lens));
}

TEST_F(Workers, ShouldCheckGroupOptionsAndLimits)
{
	ASSERT_EQ(0, Join(0, "a", MRB_AT_MOST_ONCE, 5000000));
	EXPECT_EQ(MRB_EINVAL, Join(1, "a", MRB_AT_LEAST_ONCE, 5000000));
	EXPECT_EQ(MRB_EINVAL, Join(1, "a", MRB_AT_MOST_ONCE, 0));
	EXPECT_EQ(0, mrb_worker_join(&w_[1], path_.c_str(), "a", nullptr)); // the group's own
	EXPECT_EQ(0, Join(2, "b"));
	EXPECT_EQ(0, Join(3, "c"));
	EXPECT_EQ(0, Join(4, "d"));
	EXPECT_EQ(MRB_ENOWORKER, Join(5, "e"));
	auto a = Group("a");
	EXPECT_EQ(MRB_AT_MOST_ONCE, a.policy);
	EXPECT_EQ(5000000, a.hold_timeout_ns);
	EXPECT_EQ(2u, a.workers);
	EXPECT_EQ(4, mrb_worker_groups(&ring_, nullptr, 0));
	EXPECT_EQ(5, mrb_workers(&ring_, nullptr, 0));
	// Slots: MRB_MAX_WORKERS per ring.
	std::vector<struct mrb_ring> more(MRB_MAX_WORKERS);
	int joined = 0, refused = 0;
	for (auto &m : more) {
		int rc = mrb_worker_join(&m, path_.c_str(), "b", nullptr);
		if (rc == 0)
			joined++;
		else if (rc == MRB_ENOWORKER)
			refused++;
	}
	EXPECT_EQ(MRB_MAX_WORKERS - 5, joined);
	EXPECT_EQ(5, refused);
	for (auto &m : more)
		mrb_close(&m);
	EXPECT_EQ(5, mrb_workers(&ring_, nullptr, 0));
}

TEST_F(Workers, ShouldListWorkersAndWhatTheyHold)
{
	ASSERT_EQ(0, Join(0));
	ASSERT_EQ(0, Join(1));
	for (uint64_t i = 0; i < 4; i++)
		ASSERT_EQ(0, Write(i));
	EXPECT_EQ((std::vector<int64_t>{0, 1, 2}), Many(0, 3));
	struct mrb_worker_info info[4];
	ASSERT_EQ(2, mrb_workers(&ring_, info, 4));
	EXPECT_EQ(getpid(), info[0].pid);
	EXPECT_EQ(1, info[0].alive);
	EXPECT_EQ(1, info[0].holding);
	EXPECT_EQ(0, info[0].rescued);
	EXPECT_EQ(0u, info[0].held_from);
	EXPECT_EQ(3u * 64, info[0].held_to);
	EXPECT_EQ(0, info[1].holding);
	EXPECT_EQ(0, mrb_worker_ack(&w_[0]));
	ASSERT_EQ(2, mrb_workers(&ring_, info, 4));
	EXPECT_EQ(0, info[0].holding);
	EXPECT_EQ(3u, info[0].messages_done);
	EXPECT_EQ(120u, info[0].bytes_done);
	auto g = Group();
	EXPECT_EQ(3u * 64, g.claim_position);
	EXPECT_EQ(64u, g.lag_bytes);
}

TEST_F(Workers, ShouldRunBesideSubscribers)
{
	struct mrb_ring sub = {};
	ASSERT_EQ(0, mrb_subscribe(&sub, path_.c_str(), nullptr));
	ASSERT_EQ(0, Join(0));
	ASSERT_EQ(0, Join(1));
	for (uint64_t i = 0; i < 6; i++)
		ASSERT_EQ(0, Write(i));
	EXPECT_EQ((std::vector<int64_t>{0, 1, 2}), Many(0, 3));
	EXPECT_EQ((std::vector<int64_t>{3, 4, 5}), Many(1, 3));
	uint8_t buf[64];
	size_t len;
	for (uint64_t i = 0; i < 6; i++) {
		ASSERT_EQ(0, mrb_read(&sub, buf, sizeof(buf), &len));
		uint64_t seq;
		memcpy(&seq, buf, 8);
		EXPECT_EQ(i, seq);
	}
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(0u, st.consumer_position); // the workers still hold theirs
	EXPECT_EQ(0, mrb_worker_ack(&w_[0]));
	EXPECT_EQ(0, mrb_worker_ack(&w_[1]));
	EXPECT_EQ(MRB_EEMPTY, mrb_read(&sub, buf, sizeof(buf), &len));
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(6u * 64, st.consumer_position);
	mrb_close(&sub);
}

// A child process joins, takes three messages and dies holding them.
void DieHolding(const std::string &path, unsigned policy, size_t count)
{
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct mrb_ring w = {};
		struct mrb_worker_options opts = {policy, 0};
		if (mrb_worker_join(&w, path.c_str(), "jobs", &opts) != 0)
			_exit(2);
		uint8_t buf[1024];
		size_t lens[16];
		if (mrb_read_many(&w, buf, sizeof(buf), lens, count) != (int64_t)count)
			_exit(3);
		kill(getpid(), SIGKILL);
		_exit(4);
	}
	int status = 0;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status)) << status;
}

TEST_F(Workers, ShouldRedeliverWhatADeadWorkerHeldAtLeastOnce)
{
	ASSERT_EQ(0, Join(0));
	for (uint64_t i = 0; i < 6; i++)
		ASSERT_EQ(0, Write(i));
	DieHolding(path_, MRB_AT_LEAST_ONCE, 3);
	EXPECT_EQ(3, Next(0));
	EXPECT_EQ(4, Next(0));
	EXPECT_EQ(5, Next(0));
	Sleep(20000000); // the dead worker's hold is judged after 10 ms
	std::vector<int64_t> got;
	uint8_t buf[64];
	size_t len;
	while (mrb_read_wait(&w_[0], buf, sizeof(buf), &len, 300000000) == 0) {
		uint64_t seq;
		memcpy(&seq, buf, 8);
		got.push_back(static_cast<int64_t>(seq));
	}
	EXPECT_EQ((std::vector<int64_t>{0, 1, 2}), got);
	auto g = Group();
	EXPECT_EQ(3u, g.redelivered);
	EXPECT_EQ(0u, g.dropped);
	EXPECT_EQ(6u, g.messages_done);
	EXPECT_EQ(1u, g.workers); // the dead one's slot was freed
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(6u * 64, st.consumer_position);
}

TEST_F(Workers, ShouldDropAndCountWhatADeadWorkerHeldAtMostOnce)
{
	ASSERT_EQ(0, Join(0, "jobs", MRB_AT_MOST_ONCE));
	for (uint64_t i = 0; i < 6; i++)
		ASSERT_EQ(0, Write(i));
	DieHolding(path_, MRB_AT_MOST_ONCE, 2);
	EXPECT_EQ(2, Next(0));
	Sleep(20000000);
	uint8_t buf[64];
	size_t len;
	EXPECT_EQ(0, mrb_read_wait(&w_[0], buf, sizeof(buf), &len, 300000000));
	EXPECT_EQ(3u, buf[0]);
	EXPECT_EQ(4, Next(0));
	EXPECT_EQ(5, Next(0));
	EXPECT_EQ(MRB_ETIMEDOUT, mrb_read_wait(&w_[0], buf, sizeof(buf), &len, 200000000));
	auto g = Group();
	EXPECT_EQ(0u, g.redelivered);
	EXPECT_EQ(2u, g.dropped);
	EXPECT_EQ(4u, g.messages_done);
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(6u * 64, st.consumer_position);
}

TEST_F(Workers, ShouldRedeliverAHungWorkersMessagesAndRefuseItsRelease)
{
	ASSERT_EQ(0, Join(0, "jobs", MRB_AT_LEAST_ONCE, 30000000));
	ASSERT_EQ(0, Join(1, "jobs", MRB_AT_LEAST_ONCE, 30000000));
	for (uint64_t i = 0; i < 4; i++)
		ASSERT_EQ(0, Write(i));
	EXPECT_EQ((std::vector<int64_t>{0, 1}), Many(0, 2));
	EXPECT_EQ(2, Next(1));
	Sleep(50000000); // worker 0 holds past its timeout
	EXPECT_EQ(3, Next(1));
	// Worker 1 audits when it finds nothing new: it takes 0 and 1 over.
	EXPECT_EQ((std::vector<int64_t>{0, 1}), Many(1, 8));
	EXPECT_EQ(MRB_ESTALE, mrb_worker_ack(&w_[0]));
	EXPECT_EQ(MRB_EEMPTY, Next(0)); // its old run is still being redelivered
	EXPECT_EQ(MRB_EEMPTY, Next(1)); // releases 0 and 1
	ASSERT_EQ(0, Write(4));
	EXPECT_EQ(4, Next(0)); // its slot is its own again
	auto g = Group();
	EXPECT_EQ(2u, g.redelivered);
	EXPECT_EQ(1u, g.stale_releases);
	EXPECT_EQ(4u, g.messages_done);
	EXPECT_EQ(0, mrb_worker_ack(&w_[0]));
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(5u * 64, st.consumer_position);
}

TEST_F(Workers, ShouldDropAHungWorkersMessagesAtMostOnce)
{
	ASSERT_EQ(0, Join(0, "jobs", MRB_AT_MOST_ONCE, 30000000));
	ASSERT_EQ(0, Join(1, "jobs", MRB_AT_MOST_ONCE, 30000000));
	for (uint64_t i = 0; i < 3; i++)
		ASSERT_EQ(0, Write(i));
	EXPECT_EQ((std::vector<int64_t>{0, 1}), Many(0, 2));
	Sleep(50000000);
	EXPECT_EQ(2, Next(1));
	EXPECT_EQ(MRB_EEMPTY, Next(1)); // audits: drops 0 and 1
	uint8_t buf[64];
	size_t len;
	// Its read releases first: refused, and nothing was taken.
	EXPECT_EQ(MRB_ESTALE, mrb_read(&w_[0], buf, sizeof(buf), &len));
	EXPECT_EQ(MRB_EEMPTY, Next(0));
	auto g = Group();
	EXPECT_EQ(2u, g.dropped);
	EXPECT_EQ(1u, g.stale_releases);
	EXPECT_EQ(1u, g.messages_done);
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(3u * 64, st.consumer_position);
}

TEST_F(Workers, ShouldWakeASleepingWorker)
{
	ASSERT_EQ(0, Join(0));
	int64_t got = -1;
	std::thread t([&] {
		uint8_t buf[64];
		size_t len;
		if (mrb_read_wait(&w_[0], buf, sizeof(buf), &len, 5000000000) == 0)
			memcpy(&got, buf, 8);
	});
	Sleep(50000000);
	ASSERT_EQ(0, Write(7));
	t.join();
	EXPECT_EQ(7, got);
}

TEST_F(Workers, ShouldCloseReleasingWhatItHeld)
{
	ASSERT_EQ(0, Join(0));
	ASSERT_EQ(0, Join(1));
	for (uint64_t i = 0; i < 3; i++)
		ASSERT_EQ(0, Write(i));
	EXPECT_EQ((std::vector<int64_t>{0, 1}), Many(0, 2));
	EXPECT_EQ(0, mrb_close(&w_[0]));
	EXPECT_EQ(2, Next(1));
	EXPECT_EQ(MRB_EEMPTY, Next(1));
	EXPECT_EQ(3u, Group().messages_done);
	EXPECT_EQ(1u, Group().workers);
}

// A hostile peer's bytes (docs/FORMAT.md section 9 is untrusted): a written
// record header no record can have at the claim position, and a misaligned
// claim position, are MRB_ECORRUPT for the worker's read calls and its
// readiness check (the first made mrb_read_wait spin forever; the second a
// misaligned header load). fuzz_workers_test covers the rest.
TEST_F(Workers, ShouldReportAHostileClaimAsCorrupt)
{
	ASSERT_EQ(0, Join(0));
	ASSERT_EQ(0, Write(0));
	auto *base = static_cast<uint8_t *>(mrb__test_mapping(&ring_));
	auto *control = reinterpret_cast<std::atomic<uint64_t> *>(base + MRB_HEADER_SIZE);
	uint64_t was = control->load();
	control->store(0); // length 0, not padding
	uint8_t buf[256];
	size_t len = 0;
	EXPECT_EQ(MRB_ECORRUPT, mrb_read_wait(&w_[0], buf, sizeof(buf), &len, 0));
	EXPECT_EQ(MRB_ECORRUPT, mrb_read(&w_[0], buf, sizeof(buf), &len));
	control->store(was);
	// Group 0's claim_position (0xe080 + 0x80), 8 bytes off any record.
	auto *claim = reinterpret_cast<std::atomic<uint64_t> *>(base + 0xe100);
	ASSERT_EQ(0u, claim->load());
	claim->store(8);
	EXPECT_EQ(MRB_ECORRUPT, mrb_wait_readable(&w_[0], 0));
	EXPECT_EQ(MRB_ECORRUPT, mrb_read(&w_[0], buf, sizeof(buf), &len));
	claim->store(0);
	EXPECT_EQ(0, Next(0));
}

} // namespace

TEST_F(Workers, ShouldRemoveAGroupWithoutLiveWorkers)
{
	ASSERT_EQ(0, Join(0, "a"));
	ASSERT_EQ(0, Join(1, "b", MRB_AT_MOST_ONCE, 5000000));
	ASSERT_EQ(0, Join(2, "c"));
	ASSERT_EQ(0, Join(3, "d"));
	EXPECT_EQ(MRB_ENOWORKER, Join(4, "e"));
	const char *p = path_.c_str();
	EXPECT_EQ(MRB_ENAMEBUSY, mrb_worker_group_remove(p, "a")); // w_[0] is in it
	EXPECT_EQ(-ENOENT, mrb_worker_group_remove(p, "e"));
	EXPECT_EQ(MRB_EINVAL, mrb_worker_group_remove(p, ""));
	EXPECT_EQ(MRB_EINVAL, mrb_worker_group_remove(p, nullptr));
	EXPECT_EQ(MRB_EINVAL, mrb_worker_group_remove(nullptr, "a"));
	std::string longname(MRB_GROUP_NAME_MAX + 1, 'x');
	EXPECT_EQ(MRB_EINVAL, mrb_worker_group_remove(p, longname.c_str()));
	ASSERT_EQ(0, mrb_close(&w_[0]));
	EXPECT_EQ(0, mrb_worker_group_remove(p, "a"));
	EXPECT_EQ(-ENOENT, mrb_worker_group_remove(p, "a"));
	EXPECT_EQ(3, mrb_worker_groups(&ring_, nullptr, 0));
	ASSERT_EQ(0, Join(4, "e")); // its place
	EXPECT_EQ(0u, Group("e").index);
	// A group with a hold timeout counts in validating_readers (0x108)
	// while it exists.
	auto *base = static_cast<uint8_t *>(mrb__test_mapping(&ring_));
	auto *validating = reinterpret_cast<std::atomic<uint32_t> *>(base + 0x108);
	EXPECT_EQ(1u, validating->load());
	ASSERT_EQ(0, mrb_close(&w_[1]));
	EXPECT_EQ(0, mrb_worker_group_remove(p, "b"));
	EXPECT_EQ(0u, validating->load());
	// Joining the name again makes a new group.
	ASSERT_EQ(0, Join(1, "a", MRB_AT_LEAST_ONCE, 0));
	EXPECT_EQ(MRB_AT_LEAST_ONCE, Group("a").policy);
	EXPECT_EQ(4, mrb_worker_groups(&ring_, nullptr, 0));

	struct mrb_ring q = {};
	std::string qpath = path_ + ".queue";
	struct mrb_create_options copts = {MRB_CREATE_REMOVE, 0};
	ASSERT_EQ(0, mrb_create(&q, qpath.c_str(), 4096, &copts));
	EXPECT_EQ(MRB_EMODE, mrb_worker_group_remove(qpath.c_str(), "a"));
	mrb_close(&q);
	unlink(qpath.c_str());
}

TEST_F(Workers, ShouldStopHoldingProducersBackOnceRemoved)
{
	// 40-byte messages take 64 bytes: 64 fill the 4 KiB ring. A worker
	// process takes 3 and is killed holding them; the group gates R.
	ASSERT_EQ(0, Join(0));
	for (uint64_t i = 0; i < 64; i++)
		ASSERT_EQ(0, Write(i));
	ASSERT_EQ(0, mrb_close(&w_[0]));
	DieHolding(path_, MRB_AT_LEAST_ONCE, 3);
	EXPECT_EQ(MRB_EFULL, Write(64));
	EXPECT_EQ(1u, Group().workers); // the dead one
	EXPECT_EQ(0, mrb_worker_group_remove(path_.c_str(), "jobs"));
	EXPECT_EQ(0, mrb_worker_groups(&ring_, nullptr, 0));
	EXPECT_EQ(0, mrb_workers(&ring_, nullptr, 0));
	// Nothing gates R any more: a producer short of space moves it.
	EXPECT_EQ(0, Write(64));
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(64u * 64, st.consumer_position);
	// A new group of that name starts at the oldest message in the ring.
	ASSERT_EQ(0, Join(0));
	EXPECT_EQ(64, Next(0));
	EXPECT_EQ(MRB_EEMPTY, Next(0));
	auto g = Group();
	EXPECT_EQ(0u, g.redelivered);
	EXPECT_EQ(1u, g.messages_done);
}
