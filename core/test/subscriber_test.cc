// SPDX-License-Identifier: MIT
// Subscribers: modes, durable fan-out, named resume, lossy laps, eviction,
// dead subscribers, the listing, and a hostile reader table.
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "mrb_testing.h"
#include "test_util.h"

using mrbtest::Pattern;
using mrbtest::ReadOne;
using mrbtest::RingTest;

namespace
{

// Message i of a stream: its sequence number, then a pattern.
std::vector<uint8_t> Msg(uint64_t i, size_t len = 40)
{
	auto out = Pattern(7, i, len);
	memcpy(out.data(), &i, sizeof(i));
	return out;
}

uint64_t SeqOf(const std::vector<uint8_t> &m)
{
	uint64_t i;
	memcpy(&i, m.data(), sizeof(i));
	return i;
}

void Sleep(int64_t ns)
{
	struct timespec ts = {static_cast<time_t>(ns / 1000000000),
	                      static_cast<long>(ns % 1000000000)};
	nanosleep(&ts, nullptr);
}

class Subscribers : public RingTest
{
      protected:
	void TearDown() override
	{
		for (auto &s : subs_)
			mrb_close(&s);
		RingTest::TearDown();
	}
	// Opens subscriber k (0..7) with the given options.
	int Subscribe(size_t k, const char *name = nullptr, unsigned flags = 0,
	              int64_t evict_after_ns = 0)
	{
		struct mrb_subscribe_options opts = {flags, name, evict_after_ns};
		return mrb_subscribe(&subs_[k], path_.c_str(), &opts);
	}
	int Write(uint64_t i, size_t len = 40)
	{
		auto m = Msg(i, len);
		return mrb_write(&ring_, m.data(), m.size());
	}
	// Reads the next message of subscriber k; checks it is intact.
	int64_t Next(size_t k)
	{
		int rc;
		auto m = ReadOne(&subs_[k], &rc);
		if (rc != 0)
			return rc;
		uint64_t seq = SeqOf(m);
		EXPECT_EQ(Msg(seq, m.size()), m) << "torn or foreign message";
		return static_cast<int64_t>(seq);
	}
	struct mrb_ring subs_[8] = {};
};

TEST_F(Subscribers, ModesAreEnforced)
{
	ASSERT_EQ(0, Create(4096));
	EXPECT_EQ(0, mrb_is_fanout(&ring_));
	// A durable subscriber needs a fan-out ring; a lossy tap does not.
	EXPECT_EQ(MRB_EMODE, Subscribe(0));
	EXPECT_EQ(0, Subscribe(1, nullptr, MRB_SUBSCRIBE_LOSSY));
	ASSERT_EQ(0, Write(1));
	EXPECT_EQ(1, Next(1));
	// The queue's consumer is unaffected by the tap.
	int rc;
	auto m = ReadOne(&ring_, &rc);
	ASSERT_EQ(0, rc);
	EXPECT_EQ(1u, SeqOf(m));

	mrb_close(&ring_);
	ASSERT_EQ(0, Create(4096, MRB_CREATE_REMOVE | MRB_CREATE_FANOUT));
	EXPECT_EQ(1, mrb_is_fanout(&ring_));
	m = ReadOne(&ring_, &rc);
	EXPECT_EQ(MRB_EMODE, rc);
	// Reopening with the other mode is another ring.
	struct mrb_ring other = {};
	struct mrb_create_options opts = {0, 0};
	EXPECT_EQ(MRB_EEXIST, mrb_create(&other, path_.c_str(), 4096, &opts));
}

TEST_F(Subscribers, BadOptions)
{
	ASSERT_EQ(0, Create(4096, MRB_CREATE_FANOUT));
	EXPECT_EQ(MRB_EINVAL,
	          Subscribe(0, nullptr, MRB_SUBSCRIBE_LOSSY | MRB_SUBSCRIBE_EVICT, 1000));
	EXPECT_EQ(MRB_EINVAL, Subscribe(0, nullptr, MRB_SUBSCRIBE_EVICT, 0));
	EXPECT_EQ(MRB_EINVAL, Subscribe(0, nullptr, 0, 1000));
	EXPECT_EQ(MRB_EINVAL, Subscribe(0, nullptr, 1u << 9));
	std::string long_name(MRB_SUBSCRIBER_NAME_MAX + 1, 'x');
	EXPECT_EQ(MRB_EINVAL, Subscribe(0, long_name.c_str()));
	std::string max_name(MRB_SUBSCRIBER_NAME_MAX, 'y');
	EXPECT_EQ(0, Subscribe(0, max_name.c_str()));
	struct mrb_subscriber_info info;
	ASSERT_EQ(0, mrb_subscriber_info(&subs_[0], &info));
	EXPECT_EQ(max_name, info.name);
	EXPECT_EQ(MRB_EINVAL, mrb_subscriber_info(&ring_, &info));
	EXPECT_EQ(MRB_EINVAL, mrb_set_recovery_timeout(&subs_[0], 1000000));
	EXPECT_EQ(0, mrb_set_recovery_timeout(&subs_[0], 0));
	EXPECT_EQ(MRB_EMODE, mrb_recover(&subs_[0], -1));
}

// Each durable subscriber sees every message in order; producers are held
// back by the slowest one, and only by it.
TEST_F(Subscribers, DurableFanOutBoundedBySlowest)
{
	ASSERT_EQ(0, Create(4096, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0));
	ASSERT_EQ(0, Subscribe(1));
	uint64_t written = 0;
	while (Write(written) == 0)
		written++;
	// 64-byte records in 4 KiB: exactly 64 fit.
	ASSERT_EQ(64u, written);
	// The fast subscriber reads everything; the ring stays full.
	for (uint64_t i = 0; i < written; i++)
		ASSERT_EQ(static_cast<int64_t>(i), Next(0));
	EXPECT_EQ(MRB_EEMPTY, Next(0));
	EXPECT_EQ(MRB_EFULL, Write(written));
	// The slow one reads 10: exactly 10 more fit.
	for (uint64_t i = 0; i < 10; i++)
		ASSERT_EQ(static_cast<int64_t>(i), Next(1));
	for (uint64_t i = 0; i < 10; i++)
		ASSERT_EQ(0, Write(written++));
	EXPECT_EQ(MRB_EFULL, Write(written));
	for (uint64_t i = 64; i < written; i++)
		ASSERT_EQ(static_cast<int64_t>(i), Next(0));
	for (uint64_t i = 10; i < written; i++)
		ASSERT_EQ(static_cast<int64_t>(i), Next(1));
	// Closing the laggard's unnamed subscription frees its hold at once.
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(st.producer_position, st.consumer_position);
}

TEST_F(Subscribers, UnnamedJoinsAtLiveEndFromOldestSeesBacklog)
{
	ASSERT_EQ(0, Create(4096, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0)); // holds the backlog
	for (uint64_t i = 0; i < 5; i++)
		ASSERT_EQ(0, Write(i));
	ASSERT_EQ(0, Subscribe(1));
	ASSERT_EQ(0, Subscribe(2, "old", MRB_SUBSCRIBE_FROM_OLDEST));
	ASSERT_EQ(0, Write(5));
	EXPECT_EQ(5, Next(1));
	EXPECT_EQ(MRB_EEMPTY, Next(1));
	// The backlog is read with validated copies: a peek shows a copy, and
	// its release consumes the message.
	struct mrb_view view;
	ASSERT_EQ(0, mrb_peek(&subs_[2], &view));
	EXPECT_EQ(Msg(0), std::vector<uint8_t>(static_cast<const uint8_t *>(view.data),
	                                       static_cast<const uint8_t *>(view.data) + view.len));
	ASSERT_EQ(0, mrb_release(&subs_[2], &view));
	EXPECT_EQ(MRB_ESTALE, mrb_release(&subs_[2], &view));
	for (int64_t i = 1; i <= 5; i++)
		EXPECT_EQ(i, Next(2));
	// The handle reports the join-time choice; the other one did not make it.
	struct mrb_subscriber_info info;
	ASSERT_EQ(0, mrb_subscriber_info(&subs_[2], &info));
	EXPECT_EQ(static_cast<unsigned>(MRB_SUBSCRIBE_FROM_OLDEST), info.flags);
	ASSERT_EQ(0, mrb_subscriber_info(&subs_[1], &info));
	EXPECT_EQ(0u, info.flags);
}

// A named subscriber that closes (or whose process is gone) keeps its place
// and its messages; rejoining resumes right after the last release.
TEST_F(Subscribers, NamedResumeExactly)
{
	ASSERT_EQ(0, Create(4096, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0, "recorder"));
	EXPECT_EQ(MRB_ENAMEBUSY, Subscribe(1, "recorder"));
	for (uint64_t i = 0; i < 20; i++)
		ASSERT_EQ(0, Write(i));
	for (int64_t i = 0; i < 7; i++)
		ASSERT_EQ(i, Next(0));
	mrb_close(&subs_[0]);
	subs_[0] = {};
	for (uint64_t i = 20; i < 30; i++)
		ASSERT_EQ(0, Write(i));
	struct mrb_subscriber_info list[4];
	ASSERT_EQ(1, mrb_subscribers(&ring_, list, 4));
	EXPECT_STREQ("recorder", list[0].name);
	EXPECT_EQ(MRB_SUBSCRIBER_DETACHED, list[0].state);
	EXPECT_EQ(0, list[0].pid);
	EXPECT_EQ(23u, list[0].lag_messages);
	EXPECT_EQ(23u * 64, list[0].lag_bytes);
	EXPECT_EQ(7u, list[0].messages_read);
	ASSERT_EQ(0, Subscribe(1, "recorder"));
	for (int64_t i = 7; i < 30; i++)
		ASSERT_EQ(i, Next(1));
	// Peek and release work in place for a durable subscriber.
	ASSERT_EQ(0, Write(30));
	struct mrb_view view;
	ASSERT_EQ(0, mrb_peek(&subs_[1], &view));
	EXPECT_EQ(Msg(30),
	          std::vector<uint8_t>(static_cast<const uint8_t *>(view.data),
	                               static_cast<const uint8_t *>(view.data) + view.len));
	ASSERT_EQ(0, mrb_release(&subs_[1], &view));
	EXPECT_EQ(MRB_EEMPTY, Next(1));
}

TEST_F(Subscribers, UnsubscribeReleasesSpace)
{
	ASSERT_EQ(0, Create(4096, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0, "gone"));
	mrb_close(&subs_[0]);
	subs_[0] = {};
	uint64_t written = 0;
	while (Write(written) == 0)
		written++;
	EXPECT_EQ(64u, written);
	EXPECT_EQ(-ENOENT, mrb_unsubscribe(path_.c_str(), "nobody"));
	ASSERT_EQ(0, Subscribe(1, "live"));
	EXPECT_EQ(MRB_ENAMEBUSY, mrb_unsubscribe(path_.c_str(), "live"));
	EXPECT_EQ(0, mrb_unsubscribe(path_.c_str(), "gone"));
	// Only "live" gates now, and it joined at the live end.
	EXPECT_EQ(0, Write(written));
	EXPECT_EQ(static_cast<int64_t>(written), Next(1));
}

// A lossy tap never holds producers back; when lapped it skips to the
// oldest intact record boundary and counts exactly the bytes it lost.
TEST_F(Subscribers, LossyTapLappedCountsBytes)
{
	ASSERT_EQ(0, Create(1024, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0, "tap", MRB_SUBSCRIBE_LOSSY));
	ASSERT_EQ(0, Subscribe(1));
	// 4.5 laps of 64-byte records (16 per lap), read by the durable one.
	for (uint64_t i = 0; i < 72; i++) {
		ASSERT_EQ(0, Write(i));
		ASSERT_EQ(static_cast<int64_t>(i), Next(1));
	}
	// Producer position 72 * 64 = 4608; the oldest lap boundary is 4096,
	// where message 64 starts: 4096 bytes were lost.
	EXPECT_EQ(64, Next(0));
	struct mrb_subscriber_info info;
	ASSERT_EQ(0, mrb_subscriber_info(&subs_[0], &info));
	EXPECT_EQ(4096u, info.lost_bytes);
	EXPECT_EQ(1u, info.lost_events);
	for (int64_t i = 65; i < 72; i++)
		EXPECT_EQ(i, Next(0));
	EXPECT_EQ(MRB_EEMPTY, Next(0));
	// A lossy tap cannot read in place.
	struct mrb_view view;
	EXPECT_EQ(MRB_EINVAL, mrb_peek(&subs_[0], &view));
	ASSERT_EQ(0, mrb_subscriber_info(&subs_[0], &info));
	EXPECT_EQ(8u, info.messages_read);
	// delivered + lost = produced since it joined, in bytes.
	EXPECT_EQ(72u * 64, info.bytes_read / 40 * 64 + info.lost_bytes);
}

// A stopped evictable subscriber holds producers back until its timeout,
// then not; when it reads again it is told once, and goes on intact.
TEST_F(Subscribers, EvictionAfterTimeoutReportsLoss)
{
	ASSERT_EQ(0, Create(1024, MRB_CREATE_FANOUT));
	const int64_t timeout = 50 * 1000 * 1000;
	ASSERT_EQ(0, Subscribe(0, "slow", MRB_SUBSCRIBE_EVICT, timeout));
	ASSERT_EQ(0, Subscribe(1));
	uint64_t written = 0;
	while (Write(written) == 0)
		written++;
	ASSERT_EQ(16u, written);
	for (uint64_t i = 0; i < written; i++)
		ASSERT_EQ(static_cast<int64_t>(i), Next(1));
	// Held back, then (after the timeout, judged by producers short of
	// space) free again.
	int full = 0;
	for (;;) {
		int rc = Write(written);
		if (rc == 0)
			break;
		ASSERT_EQ(MRB_EFULL, rc);
		full++;
		Sleep(1000000);
		ASSERT_LT(full, 20000) << "never evicted";
	}
	EXPECT_GT(full, 0);
	ASSERT_EQ(static_cast<int64_t>(written), Next(1));
	written++;
	for (int lap = 0; lap < 40; lap++) {
		ASSERT_EQ(0, Write(written));
		ASSERT_EQ(static_cast<int64_t>(written), Next(1));
		written++;
	}
	struct mrb_subscriber_info info;
	ASSERT_EQ(0, mrb_subscriber_info(&subs_[0], &info));
	EXPECT_EQ(MRB_SUBSCRIBER_EVICTED, info.state);
	EXPECT_EQ(1u, info.evictions);
	// Its next read says so, once; then messages again, intact, in order.
	EXPECT_EQ(MRB_ELAPPED, Next(0));
	int64_t first = Next(0);
	ASSERT_GT(first, 0);
	for (int64_t i = first + 1; i < static_cast<int64_t>(written); i++)
		ASSERT_EQ(i, Next(0));
	ASSERT_EQ(0, mrb_subscriber_info(&subs_[0], &info));
	EXPECT_EQ(MRB_SUBSCRIBER_ACTIVE, info.state);
	EXPECT_EQ(static_cast<uint64_t>(first) * 64, info.lost_bytes);
	// Gating again: it holds producers back like any durable subscriber.
	int fitted = 0;
	while (Write(written) == 0) {
		ASSERT_EQ(static_cast<int64_t>(written), Next(1));
		written++;
		fitted++;
	}
	EXPECT_EQ(16, fitted);
}

// A named subscriber's process dies: by default its messages wait for it;
// an unnamed one's hold ends when producers find it dead.
TEST_F(Subscribers, DeadSubscriberKeptOrFreed)
{
	ASSERT_EQ(0, Create(1024, MRB_CREATE_FANOUT));
	for (const char *name : {"kept", ""}) {
		SCOPED_TRACE(name);
		pid_t child = fork();
		ASSERT_GE(child, 0);
		if (child == 0) {
			struct mrb_ring sub = {};
			struct mrb_subscribe_options opts = {0, name, 0};
			if (mrb_subscribe(&sub, path_.c_str(), &opts) != 0)
				_exit(2);
			_exit(0); // no close: the entry is left as a crash leaves it
		}
		int status;
		ASSERT_EQ(child, waitpid(child, &status, 0));
		ASSERT_EQ(0, WEXITSTATUS(status));
	}
	struct mrb_subscriber_info list[4];
	ASSERT_EQ(2, mrb_subscribers(&ring_, list, 4));
	uint64_t written = 0;
	int full = 0;
	while (written < 40) {
		int rc = Write(written);
		if (rc == 0) {
			written++;
			continue;
		}
		ASSERT_EQ(MRB_EFULL, rc);
		Sleep(1000000);
		if (++full > 300)
			break;
	}
	// "kept" holds 16 messages; the unnamed one was freed.
	EXPECT_EQ(16u, written);
	ASSERT_EQ(1, mrb_subscribers(&ring_, list, 4));
	EXPECT_STREQ("kept", list[0].name);
	EXPECT_EQ(MRB_SUBSCRIBER_DETACHED, list[0].state);
	ASSERT_EQ(0, Subscribe(0, "kept"));
	for (int64_t i = 0; i < 16; i++)
		ASSERT_EQ(i, Next(0));
}

// A subscriber killed while reading (not asleep: no waiter share to find
// it by) leaves its unnamed entry holding R. With the producers stopped,
// nobody is ever short of space to judge it: the next joiner frees it, and
// its walk over the backlog takes R to the end.
TEST_F(Subscribers, JoinFreesDeadUnnamedEntryHoldingRelease)
{
	ASSERT_EQ(0, Create(1024, MRB_CREATE_FANOUT));
	pid_t child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		struct mrb_ring sub = {};
		if (mrb_subscribe(&sub, path_.c_str(), nullptr) != 0)
			_exit(2);
		_exit(0); // no close: the entry is left as a crash leaves it
	}
	int status;
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	for (uint64_t i = 0; i < 3; i++)
		ASSERT_EQ(0, Write(i));
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(0u, st.consumer_position);
	ASSERT_EQ(0, Subscribe(0));
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(st.producer_position, st.consumer_position);
	struct mrb_subscriber_info list[4];
	ASSERT_EQ(1, mrb_subscribers(&ring_, list, 4));
	EXPECT_EQ(MRB_EEMPTY, Next(0));
}

// A batch writer that died after its first header (BUSY, one 128-byte
// record of a longer claim), and the padding another subscriber's recovery
// then wrote over the whole claim: a reader that saw the BUSY record reads
// on past the longer padding. (It returned MRB_ECORRUPT: the BUSY record's
// size was taken as a bound on what was claimed.) Here the claim is a
// reservation made to look like the batch's first record, and the abort
// pads it as recovery would.
TEST_F(Subscribers, PaddingLongerThanTheBusyRecordSeenIsNoCorruption)
{
	ASSERT_EQ(0, Create(4096, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0));
	struct mrb_reservation res;
	ASSERT_EQ(0, mrb_reserve(&ring_, 1008, &res)); // claims [0, 1024)
	ASSERT_EQ(0u, res.position);
	auto *control =
	    reinterpret_cast<uint64_t *>(static_cast<uint8_t *>(res.data) - MRB_RECORD_HEADER_SIZE);
	const uint64_t length_mask = (uint64_t{1} << 40) - 1;
	uint64_t busy = __atomic_load_n(control, __ATOMIC_SEQ_CST);
	ASSERT_EQ(1008u, busy & length_mask);
	__atomic_store_n(control, (busy & ~length_mask) | 112, __ATOMIC_SEQ_CST);
	EXPECT_EQ(MRB_EEMPTY, Next(0)); // sees the BUSY 128-byte record
	__atomic_store_n(control, busy, __ATOMIC_SEQ_CST);
	ASSERT_EQ(0, mrb_abort(&ring_, &res)); // padding over [0, 1024)
	ASSERT_EQ(0, Write(1));
	EXPECT_EQ(1, Next(0));
	EXPECT_EQ(MRB_EEMPTY, Next(0));
}

// The tap and a writer on one handle (one mapping, so ThreadSanitizer sees
// both sides): the tap is lapped over and over while copying, and every
// message it returns is intact and in order.
TEST_F(Subscribers, LossyTapRacingWriterNeverTorn)
{
	ASSERT_EQ(0, Create(4096, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0, nullptr, MRB_SUBSCRIBE_LOSSY));
	ASSERT_EQ(0, Subscribe(1)); // drains, so producers keep lapping
	std::atomic<bool> done{false};
	const uint64_t total = MRB_TSAN ? 5000 : 40000;
	std::thread drain([&] {
		std::vector<uint8_t> buf(4096);
		uint64_t expect = 0;
		while (expect < total) {
			size_t len;
			int rc = mrb_read(&subs_[1], buf.data(), buf.size(), &len);
			if (rc == MRB_EEMPTY)
				continue;
			ASSERT_EQ(0, rc);
			uint64_t seq;
			memcpy(&seq, buf.data(), 8);
			ASSERT_EQ(expect, seq);
			expect++;
		}
	});
	std::thread writer([&] {
		for (uint64_t i = 0; i < total;) {
			auto m = Msg(i, 16 + i % 300);
			int rc = mrb_write(&subs_[0], m.data(), m.size());
			if (rc == 0)
				i++;
		}
		done = true;
	});
	uint64_t last = 0, delivered = 0;
	bool any = false;
	std::vector<uint8_t> buf(4096);
	while (!done || any) {
		size_t len;
		int rc = mrb_read(&subs_[0], buf.data(), buf.size(), &len);
		if (rc == MRB_EEMPTY) {
			any = false;
			continue;
		}
		ASSERT_EQ(0, rc);
		any = true;
		std::vector<uint8_t> m(buf.begin(), buf.begin() + len);
		uint64_t seq = SeqOf(m);
		ASSERT_EQ(Msg(seq, 16 + seq % 300), m);
		if (delivered > 0) {
			ASSERT_GT(seq, last);
		}
		last = seq;
		delivered++;
	}
	writer.join();
	drain.join();
	EXPECT_GT(delivered, 0u);
}

// Garbage in every field of the reader table: opening, subscribing,
// writing, reading and listing return codes; nothing crashes or hangs.
TEST_F(Subscribers, HostileTableNeverCrashes)
{
	std::mt19937_64 rng(42);
	for (int round = 0; round < 200; round++) {
		SCOPED_TRACE(round);
		mrb_close(&ring_);
		ASSERT_EQ(0, Create(1024, MRB_CREATE_REMOVE | MRB_CREATE_FANOUT));
		auto *base = static_cast<uint8_t *>(mrb__test_mapping(&ring_));
		ASSERT_NE(nullptr, base);
		// Entries 0..3 and the table's used count, with plausible and
		// implausible values mixed.
		for (int k = 0; k < 48; k++) {
			size_t off = 0xa000 + rng() % (4 * 256);
			off &= ~size_t{7};
			uint64_t v = rng();
			switch (rng() % 4) {
			case 0:
				v %= 6;
				break;
			case 1:
				v = (v % 64) * 16;
				break;
			case 2:
				v = getpid() | (v << 32);
				break;
			default:
				break;
			}
			__atomic_store_n(reinterpret_cast<uint64_t *>(base + off), v,
			                 __ATOMIC_SEQ_CST);
		}
		__atomic_store_n(reinterpret_cast<uint32_t *>(base + 0x9004),
		                 static_cast<uint32_t>(rng() % 80), __ATOMIC_SEQ_CST);
		struct mrb_subscriber_info list[64];
		EXPECT_LE(mrb_subscribers(&ring_, list, 64), 64);
		struct mrb_ring sub = {};
		struct mrb_subscribe_options opts = {
		    static_cast<unsigned>(rng() % 2 ? MRB_SUBSCRIBE_LOSSY : 0), "x", 0};
		int rc = mrb_subscribe(&sub, path_.c_str(), &opts);
		for (int i = 0; i < 40; i++) {
			auto m = Msg(i);
			mrb_write(&ring_, m.data(), m.size());
			if (rc == 0) {
				int r;
				ReadOne(&sub, &r);
			}
		}
		mrb_close(&sub);
	}
}

} // namespace

namespace
{

// A writer blocked in mrb_write_wait judges the subscriber that holds it
// back while it sleeps: the evictable one is evicted after its timeout and
// the write goes through; with only a keep-policy subscriber it times out.
TEST_F(Subscribers, BlockedWriterEvictsHungSubscriber)
{
	ASSERT_EQ(0, Create(1024, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0, "hung", MRB_SUBSCRIBE_EVICT, 30 * 1000 * 1000));
	uint64_t written = 0;
	while (Write(written) == 0)
		written++;
	auto m = Msg(written);
	EXPECT_EQ(0, mrb_write_wait(&ring_, m.data(), m.size(), 10ll * 1000 * 1000 * 1000));
	struct mrb_subscriber_info info;
	ASSERT_EQ(0, mrb_subscriber_info(&subs_[0], &info));
	EXPECT_EQ(MRB_SUBSCRIBER_EVICTED, info.state);
	mrb_close(&subs_[0]);
	subs_[0] = {};
	ASSERT_EQ(0, mrb_unsubscribe(path_.c_str(), "hung"));

	ASSERT_EQ(0, Subscribe(1, "kept"));
	while (Write(written) == 0)
		written++;
	m = Msg(written);
	EXPECT_EQ(MRB_ETIMEDOUT, mrb_write_wait(&ring_, m.data(), m.size(), 100 * 1000 * 1000));
}

} // namespace

namespace
{

// No durable subscriber: nothing holds messages for anyone, producers never
// wait (committed records are released as space is needed), and a lossy
// tap alone only counts what it missed.
TEST_F(Subscribers, NoDurableSubscriberProducersNeverWait)
{
	ASSERT_EQ(0, Create(1024, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0, nullptr, MRB_SUBSCRIBE_LOSSY));
	for (uint64_t i = 0; i < 100; i++)
		ASSERT_EQ(0, Write(i)) << i;
	// 100 records of 64 bytes: the tap resumes at 6144, message 96.
	EXPECT_EQ(96, Next(0));
	struct mrb_subscriber_info info;
	ASSERT_EQ(0, mrb_subscriber_info(&subs_[0], &info));
	EXPECT_EQ(6144u, info.lost_bytes);
	// A claim still being written is never released: with a reservation
	// open at R, producers fill the ring and then wait.
	struct mrb_reservation res;
	ASSERT_EQ(0, mrb_reserve(&ring_, 40, &res));
	memcpy(res.data, Msg(5000).data(), 40);
	uint64_t fill = 0;
	while (Write(2000 + fill) == 0 && fill < 100)
		fill++;
	EXPECT_EQ(15u, fill); // everything but the reserved record
	EXPECT_EQ(MRB_EFULL, Write(3000));
	ASSERT_EQ(0, mrb_commit(&ring_, &res));
	EXPECT_EQ(0, Write(3000));
}

} // namespace

// mrb_read_many_at reports positions for every kind of subscriber: a lossy
// tap (which copies and validates) the same as a durable one. It used to
// leave a validating subscriber's positions unwritten.
TEST_F(Subscribers, ReadManyAtPositionsOfValidatingSubscribers)
{
	ASSERT_EQ(0, Create(4096, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0));
	ASSERT_EQ(0, Subscribe(1, nullptr, MRB_SUBSCRIBE_LOSSY));
	ASSERT_EQ(0, Subscribe(2, "ev", MRB_SUBSCRIBE_EVICT, 1000000000));
	for (uint64_t i = 0; i < 3; i++)
		ASSERT_EQ(0, Write(i, 20 + i * 30));
	std::vector<uint64_t> want;
	for (size_t k = 0; k < 3; k++) {
		uint8_t buf[512];
		size_t lens[4];
		uint64_t positions[4];
		memset(positions, 0xab, sizeof(positions));
		ASSERT_EQ(3, mrb_read_many_at(&subs_[k], buf, sizeof(buf), lens, positions, 4))
		    << "subscriber " << k;
		if (k == 0)
			want.assign(positions, positions + 3);
		for (size_t i = 0; i < 3; i++)
			EXPECT_EQ(want[i], positions[i]) << "subscriber " << k << " message " << i;
	}
	// Durable positions: records of 16 + 20, 16 + 50, 16 + 80 bytes.
	EXPECT_EQ(want[1] - want[0], 48u);
	EXPECT_EQ(want[2] - want[1], 80u);
}

// An evictable subscriber lapped in the middle of a batch: the call returns
// what it read before the loss, and the next one says MRB_ELAPPED before any
// message after it. It used to go on with the later messages silently.
TEST_F(Subscribers, ElapsedInTheMiddleOfABatchIsReported)
{
	ASSERT_EQ(0, Create(4096, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0, "ev", MRB_SUBSCRIBE_EVICT, 1));
	ASSERT_EQ(0, Subscribe(1)); // keeps up
	uint64_t next = 0;
	while (Write(next) == 0)
		next++;
	ASSERT_EQ(64u, next); // 64-byte records
	struct Ctx {
		decltype(this) test;
		uint64_t next;
		int calls;
		bool ok;
	} ctx = {this, next, 0, false};
	auto handler = [](void *c, const void *, size_t) -> int {
		auto *x = static_cast<Ctx *>(c);
		if (x->calls++ > 0)
			return 0;
		// The reader hangs here long enough to be evicted; producers lap it.
		for (int tries = 0;; tries++) {
			while (x->test->Next(1) >= 0) {
			}
			if (x->test->Write(x->next) == 0)
				break;
			if (tries == 2000)
				return 1;
			Sleep(2000000);
		}
		x->next++;
		for (int i = 0; i < 100; i++) {
			while (x->test->Next(1) >= 0) {
			}
			if (x->test->Write(x->next++) != 0)
				return 1;
		}
		x->ok = true;
		return 0;
	};
	int64_t n = mrb_read_batch(&subs_[0], handler, &ctx, 0);
	ASSERT_TRUE(ctx.ok);
	EXPECT_GE(n, 1);
	EXPECT_EQ(MRB_ELAPPED, Next(0));
	int64_t first = Next(0);
	ASSERT_GE(first, 65);
	struct mrb_subscriber_info info;
	ASSERT_EQ(0, mrb_subscriber_info(&subs_[0], &info));
	// Lost: every message between the batch's last and `first`.
	EXPECT_EQ(static_cast<uint64_t>(first - n) * 64, info.lost_bytes);
	for (int64_t seq = first + 1; seq < static_cast<int64_t>(ctx.next); seq++)
		ASSERT_EQ(seq, Next(0));
	EXPECT_EQ(MRB_EEMPTY, Next(0));
}

// A hostile entry's position that is not even aligned for a record header:
// listing (which counts the entry's lag by walking headers) must not walk
// from it. Under UBSan (--config=asan) this was a misaligned atomic load.
TEST_F(Subscribers, ListingMisalignedPosition)
{
	ASSERT_EQ(0, Create(1024, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0, "m"));
	for (uint64_t i = 0; i < 3; i++)
		ASSERT_EQ(0, Write(i));
	auto *base = static_cast<uint8_t *>(mrb__test_mapping(&ring_));
	// Entry 0's position (0xa000 + 0x80): 7, behind the producers.
	__atomic_store_n(reinterpret_cast<uint64_t *>(base + 0xa080), uint64_t{7},
	                 __ATOMIC_SEQ_CST);
	struct mrb_subscriber_info info;
	ASSERT_EQ(1, mrb_subscribers(&ring_, &info, 1));
	EXPECT_EQ(7u, info.position);
	EXPECT_EQ(0u, info.lag_messages);
}

// A hostile release position that is not aligned for a record header: the
// walk over committed records (what moves R) must not start from it. Under
// UBSan (--config=asan) this was a misaligned atomic load at close. Found by
// fuzz_subscribers.
TEST_F(Subscribers, MisalignedReleasePositionIsNotWalked)
{
	ASSERT_EQ(0, Create(1024, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0, "m"));
	for (uint64_t i = 0; i < 3; i++)
		ASSERT_EQ(0, Write(i));
	EXPECT_EQ(0, Next(0));
	auto *base = static_cast<uint8_t *>(mrb__test_mapping(&ring_));
	// consumer_position (0x180), the release position: 0x11.
	__atomic_store_n(reinterpret_cast<uint64_t *>(base + 0x180), uint64_t{0x11},
	                 __ATOMIC_SEQ_CST);
	EXPECT_EQ(0, mrb_close(&subs_[0]));
	subs_[0] = {};
	EXPECT_EQ(0x11u,
	          __atomic_load_n(reinterpret_cast<uint64_t *>(base + 0x180), __ATOMIC_SEQ_CST));
}

// mrb_subscriber_info (an observer call, any thread) while the
// subscriber's own thread reads its backlog from the oldest message: the
// reader's state changes as it settles its join and reaches the live end,
// and the listing reports MRB_SUBSCRIBE_FROM_OLDEST throughout. Under
// ThreadSanitizer the join-time flag used to share a plain word with the
// reader's changing state (a data race).
TEST_F(Subscribers, InfoWhileReadingBacklogFromOldest)
{
	ASSERT_EQ(0, Create(4096, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Subscribe(0)); // holds the backlog
	for (uint64_t i = 0; i < 20; i++)
		ASSERT_EQ(0, Write(i));
	ASSERT_EQ(0, Subscribe(1, nullptr, MRB_SUBSCRIBE_FROM_OLDEST));
	std::atomic<bool> done{false};
	std::atomic<int> bad{0};
	std::thread observer([&] {
		while (!done.load()) {
			struct mrb_subscriber_info info;
			if (mrb_subscriber_info(&subs_[1], &info) != 0 ||
			    (info.flags & MRB_SUBSCRIBE_FROM_OLDEST) == 0)
				bad++;
		}
	});
	for (uint64_t i = 0; i < 20; i++)
		ASSERT_EQ(static_cast<int64_t>(i), Next(1));
	done = true;
	observer.join();
	EXPECT_EQ(0, bad.load());
}
