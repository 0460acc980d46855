// SPDX-License-Identifier: MIT
// Many producers, one consumer, threads and processes. Every message carries
// (producer, sequence, length, checksum); the consumer proves nothing is
// lost, duplicated, reordered within a producer, or torn.
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "test_util.h"

using mrbtest::RingTest;

namespace
{

struct MessageHeader {
	uint32_t producer;
	uint32_t length;
	uint64_t sequence;
	uint64_t checksum;
};

uint64_t Checksum(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull; // FNV-1a
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

// Builds message `seq` of `producer`: a header then pseudo-random bytes;
// sizes vary from the bare header to ~1.5 KiB so wraps land everywhere.
size_t BuildMessage(uint32_t producer, uint64_t seq, uint8_t *out)
{
	size_t body = (seq * 2654435761u + producer * 40503u) % 1500;
	MessageHeader h = {producer, (uint32_t)(sizeof(h) + body), seq, 0};
	uint64_t x = seq * 0x9E3779B97F4A7C15ull ^ producer;
	for (size_t i = 0; i < body; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		out[sizeof(h) + i] = (uint8_t)(x >> 56);
	}
	h.checksum = Checksum(out + sizeof(h), body);
	memcpy(out, &h, sizeof(h));
	return h.length;
}

// Consumer-side bookkeeping shared by the thread and process variants.
struct Verifier {
	explicit Verifier(size_t producers) : next(producers, 0)
	{
	}
	std::vector<uint64_t> next;
	uint64_t total = 0;
	int Check(const uint8_t *data, size_t len)
	{
		MessageHeader h;
		if (len < sizeof(h))
			return 1;
		memcpy(&h, data, sizeof(h));
		if (h.length != len || h.producer >= next.size())
			return 2;
		if (h.sequence != next[h.producer])
			return 3; // lost, duplicated or reordered
		if (Checksum(data + sizeof(h), len - sizeof(h)) != h.checksum)
			return 4; // torn
		next[h.producer]++;
		total++;
		return 0;
	}
};

int VerifyHandler(void *ctx, const void *data, size_t len)
{
	auto *v = static_cast<Verifier *>(ctx);
	int rc = v->Check(static_cast<const uint8_t *>(data), len);
	if (rc != 0) {
		ADD_FAILURE() << "bad message, check " << rc;
		return 1;
	}
	return 0;
}

int ProduceAll(struct mrb_ring *ring, uint32_t producer, uint64_t count, bool batch)
{
	std::vector<uint8_t> buf(2048 * 8);
	for (uint64_t seq = 0; seq < count;) {
		if (batch) {
			struct mrb_iovec iov[8];
			uint64_t n = 0;
			for (; n < 8 && seq + n < count; n++) {
				uint8_t *slot = buf.data() + n * 2048;
				iov[n] = {slot, BuildMessage(producer, seq + n, slot)};
			}
			int64_t rc = mrb_write_batch(ring, iov, n);
			if (rc > 0)
				seq += (uint64_t)rc;
			else if (rc != MRB_EFULL)
				return (int)rc;
			else if (mrb_wait_writable(ring, iov[0].len, 1000000000) == MRB_ECLOSED)
				return MRB_ECLOSED;
		} else {
			size_t len = BuildMessage(producer, seq, buf.data());
			int rc = mrb_write_wait(ring, buf.data(), len, -1);
			if (rc != 0)
				return rc;
			seq++;
		}
	}
	return 0;
}

} // namespace

class Stress : public RingTest
{
};

TEST_F(Stress, ProducerThreadsSharingAndOwningHandles)
{
	const uint32_t kProducers = 4;
	const uint64_t kPerProducer = getenv("MRB_STRESS_LONG") ? 2000000 : 60000;
	ASSERT_EQ(0, Create(64 * 1024));
	struct mrb_ring own[2];
	ASSERT_EQ(0, mrb_open(&own[0], path_.c_str(), 0));
	ASSERT_EQ(0, mrb_open(&own[1], path_.c_str(), 0));
	std::atomic<int> failures{0};
	std::vector<std::thread> producers;
	for (uint32_t p = 0; p < kProducers; p++) {
		// Producers 0,1 share the consumer's handle; 2,3 have their own
		// (except under TSan, which cannot see through two mappings).
		struct mrb_ring *ring = p < 2 || MRB_TSAN ? &ring_ : &own[p - 2];
		producers.emplace_back([&, ring, p] {
			if (ProduceAll(ring, p, kPerProducer, p % 2 == 1) != 0)
				failures++;
		});
	}
	Verifier v(kProducers);
	std::vector<uint8_t> buf(4096);
	while (v.total < kProducers * kPerProducer && !HasFailure()) {
		if (v.total % 3 == 0) {
			int64_t n = mrb_read_batch(&ring_, VerifyHandler, &v, 64);
			if (n == MRB_EEMPTY)
				ASSERT_EQ(0, mrb_wait_readable(&ring_, 5000000000ll));
			else
				ASSERT_GT(n, 0) << mrb_strerror((int)n);
		} else {
			size_t len;
			int rc = mrb_read_wait(&ring_, buf.data(), buf.size(), &len, 5000000000ll);
			ASSERT_EQ(0, rc) << mrb_strerror(rc);
			ASSERT_EQ(0, v.Check(buf.data(), len));
		}
	}
	for (auto &t : producers)
		t.join();
	EXPECT_EQ(0, failures.load());
	for (uint32_t p = 0; p < kProducers; p++)
		EXPECT_EQ(kPerProducer, v.next[p]);
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(kProducers * kPerProducer, st.messages_written);
	EXPECT_EQ(kProducers * kPerProducer, st.messages_read);
	EXPECT_EQ(st.bytes_written, st.bytes_read);
	mrb_close(&own[0]);
	mrb_close(&own[1]);
}

// Forked producer processes and a forked consumer process on one file.
TEST_F(Stress, ProducerProcessesAndConsumerProcess)
{
	const uint32_t kProducers = 3;
	const uint64_t kPerProducer = getenv("MRB_STRESS_LONG") ? 3000000 : 100000;
	ASSERT_EQ(0, Create(128 * 1024));
	mrb_close(&ring_);
	pid_t consumer = fork();
	if (consumer == 0) {
		struct mrb_ring r;
		if (mrb_open(&r, path_.c_str(), 0) != 0)
			_exit(10);
		Verifier v(kProducers);
		while (v.total < kProducers * kPerProducer) {
			int64_t n = mrb_read_batch(&r, VerifyHandler, &v, 0);
			if (n == MRB_EEMPTY) {
				if (mrb_wait_readable(&r, 10000000000ll) != 0)
					_exit(11);
			} else if (n < 0 || ::testing::Test::HasFailure()) {
				_exit(12);
			}
		}
		for (uint32_t p = 0; p < kProducers; p++)
			if (v.next[p] != kPerProducer)
				_exit(13);
		_exit(mrb_close(&r) == 0 ? 0 : 14);
	}
	std::vector<pid_t> producers;
	for (uint32_t p = 0; p < kProducers; p++) {
		pid_t child = fork();
		if (child == 0) {
			struct mrb_ring w;
			if (mrb_open(&w, path_.c_str(), 0) != 0)
				_exit(20);
			int rc = ProduceAll(&w, p, kPerProducer, p == 0);
			_exit(rc == 0 && mrb_close(&w) == 0 ? 0 : 21);
		}
		producers.push_back(child);
	}
	for (pid_t child : producers) {
		int status;
		ASSERT_EQ(child, waitpid(child, &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
	}
	int status;
	ASSERT_EQ(consumer, waitpid(consumer, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(0, mrb_open(&ring_, path_.c_str(), 0));
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(kProducers * kPerProducer, st.messages_written);
	EXPECT_EQ(kProducers * kPerProducer, st.messages_read);
	EXPECT_EQ(0u, st.producers); // released at close
	EXPECT_EQ(0u, st.producers_alive);
	EXPECT_EQ(0, st.consumer_pid);
}

// Closing a handle wakes its own blocked reader, which returns ECLOSED.
TEST_F(Stress, CloseWakesBlockedReaderOnSameHandle)
{
	ASSERT_EQ(0, Create(1024));
	std::atomic<int> result{1};
	std::thread reader([&] {
		char buf[64];
		size_t len;
		result = mrb_read_wait(&ring_, buf, sizeof(buf), &len, -1);
	});
	usleep(50000);
	ASSERT_EQ(0, mrb_close(&ring_));
	reader.join();
	EXPECT_EQ(MRB_ECLOSED, result.load());
}

// Reader threads sharing one consumer handle, first all at once, then taking
// turns in runs longer than MRB_CONSUMER_ADOPT_WAIT: one call at a time is
// inside (the others get ECONSUMER_BUSY), whether it entered by the adopted
// thread's plain stores or by CAS after revoking that thread (handle.h,
// consumer_role_enter). Every message is read exactly once, intact; TSan
// sees any overlap of two calls on the handle's consumer state.
TEST_F(Stress, ConsumerThreadsSharingOneHandle)
{
	const uint32_t kReaders = 3;
	const uint64_t kMessages = MRB_TSAN ? 1500 : 5000;
	for (int turns = 0; turns < 2; turns++) {
		ASSERT_EQ(0, Create(1 << 16, MRB_CREATE_REMOVE));
		struct mrb_ring writer;
		ASSERT_EQ(0, mrb_open(&writer, path_.c_str(), 0));
		std::atomic<uint64_t> read{0};
		std::atomic<int> bad{0};
		std::atomic<bool> written{false};
		std::atomic<int> idle{0}; // empty polls after the writer is done
		std::mutex turn;
		std::vector<std::vector<uint64_t>> seen(kReaders);
		std::vector<std::thread> readers;
		for (uint32_t r = 0; r < kReaders; r++) {
			readers.emplace_back([&, r] {
				std::vector<uint8_t> buf(2048);
				// A lost message ends the test (idle), not hangs it.
				while (read.load() < kMessages && bad.load() == 0 &&
				       idle.load() < 100000) {
					std::unique_lock<std::mutex> hold(turn, std::defer_lock);
					if (turns)
						hold.lock();
					for (int i = 0; i < 300 && read.load() < kMessages; i++) {
						size_t len = 0;
						int rc =
						    mrb_read(&ring_, buf.data(), buf.size(), &len);
						if (rc == MRB_EEMPTY && written.load())
							idle++;
						if (rc == MRB_EEMPTY || rc == MRB_ECONSUMER_BUSY)
							continue;
						MessageHeader h;
						if (rc != 0 || len < sizeof(h)) {
							bad++;
							return;
						}
						memcpy(&h, buf.data(), sizeof(h));
						if (h.length != len || h.producer != 0 ||
						    Checksum(buf.data() + sizeof(h),
						             len - sizeof(h)) != h.checksum) {
							bad++;
							return;
						}
						seen[r].push_back(h.sequence);
						read++;
					}
				}
			});
		}
		EXPECT_EQ(0, ProduceAll(&writer, 0, kMessages, false));
		written = true;
		for (auto &t : readers)
			t.join();
		EXPECT_EQ(0, bad.load());
		std::vector<uint32_t> times(kMessages, 0);
		for (auto &v : seen) {
			for (size_t i = 0; i < v.size(); i++) {
				ASSERT_LT(v[i], kMessages);
				times[v[i]]++;
				// Each thread's own reads come in order.
				if (i > 0) {
					EXPECT_LT(v[i - 1], v[i]);
				}
			}
		}
		for (uint64_t seq = 0; seq < kMessages; seq++)
			ASSERT_EQ(1u, times[seq]) << "message " << seq << " turns " << turns;
		ASSERT_EQ(0, mrb_close(&writer));
		ASSERT_EQ(0, mrb_close(&ring_));
	}
}

// mrb_close racing with the reader thread of the same handle, after that
// thread was adopted for the fast entry: the reader sees ECLOSED, never a
// message after close returned, and close never unmaps under its call.
TEST_F(Stress, CloseRacesWithTheReaderOfTheSameHandle)
{
	const int kRounds = MRB_TSAN ? 20 : 100;
	for (int round = 0; round < kRounds && !HasFailure(); round++) {
		ASSERT_EQ(0, Create(1 << 20, MRB_CREATE_REMOVE));
		struct mrb_ring writer;
		ASSERT_EQ(0, mrb_open(&writer, path_.c_str(), 0));
		std::atomic<bool> closed{false};
		std::atomic<int> bad{0}, result{1};
		std::thread reader([&] {
			std::vector<uint8_t> buf(2048);
			uint64_t next = 0;
			for (;;) {
				bool after_close = closed.load();
				size_t len = 0;
				int rc = mrb_read_wait(&ring_, buf.data(), buf.size(), &len,
				                       (round % 2) ? 1000000 : 0);
				if (rc == 0) {
					MessageHeader h;
					memcpy(&h, buf.data(), sizeof(h));
					if (after_close || h.sequence != next++)
						bad++;
				} else if (rc != MRB_EEMPTY && rc != MRB_ETIMEDOUT) {
					result = rc;
					return;
				}
			}
		});
		std::vector<uint8_t> buf(2048);
		for (uint64_t seq = 0; seq < 200 + (uint64_t)round * 7; seq++) {
			size_t len = BuildMessage(0, seq, buf.data());
			ASSERT_EQ(0, mrb_write_wait(&writer, buf.data(), len, -1));
		}
		usleep(100 + (round % 5) * 200);
		ASSERT_EQ(0, mrb_close(&ring_));
		closed = true;
		reader.join();
		EXPECT_EQ(MRB_ECLOSED, result.load()) << "round " << round;
		EXPECT_EQ(0, bad.load()) << "round " << round;
		ASSERT_EQ(0, mrb_close(&writer));
	}
}

// mrb_close racing with writers on the same handle: the handle's producer
// thread (plain-store call counting, membarrier handshake) and other threads
// (atomic counting). Every write that returned 0 must be in the file intact,
// in order per producer; no write that started after close returned may
// succeed; close must not unmap under a write in flight (ASan, TSan).
TEST_F(Stress, CloseRacesWithWritersOnTheSameHandle)
{
	const uint32_t kWriters = 3;
	const int kRounds = MRB_TSAN ? 20 : 100;
	for (int round = 0; round < kRounds && !HasFailure(); round++) {
		ASSERT_EQ(0, Create(1 << 20, MRB_CREATE_REMOVE));
		std::atomic<bool> closed{false};
		std::atomic<int> bad{0};
		std::vector<uint64_t> written(kWriters, 0);
		std::vector<std::thread> writers;
		for (uint32_t p = 0; p < kWriters; p++) {
			writers.emplace_back([&, p] {
				std::vector<uint8_t> buf(2048);
				for (uint64_t seq = 0;; seq++) {
					bool after_close = closed.load();
					size_t len = BuildMessage(p, seq, buf.data());
					int rc = mrb_write(&ring_, buf.data(), len);
					if (rc == 0 && after_close)
						bad++;
					if (rc == 0) {
						written[p]++;
						continue;
					}
					if (rc != MRB_ECLOSED && rc != MRB_EFULL)
						bad++;
					if (rc == MRB_ECLOSED)
						return;
					seq--; // full: the same message again
				}
			});
		}
		usleep(200 + (round % 7) * 300);
		ASSERT_EQ(0, mrb_close(&ring_));
		closed = true;
		for (auto &t : writers)
			t.join();
		EXPECT_EQ(0, bad.load());
		// Everything acknowledged is there, in order, untorn.
		ASSERT_EQ(0, mrb_open(&ring_, path_.c_str(), 0));
		Verifier v(kWriters);
		int64_t n;
		while ((n = mrb_read_batch(&ring_, VerifyHandler, &v, 256)) > 0) {
		}
		EXPECT_EQ(MRB_EEMPTY, n);
		for (uint32_t p = 0; p < kWriters; p++)
			EXPECT_EQ(written[p], v.next[p]) << "writer " << p << " round " << round;
		ASSERT_EQ(0, mrb_close(&ring_));
	}
}
