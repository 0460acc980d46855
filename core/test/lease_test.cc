// SPDX-License-Identifier: MIT
// The sole-producer lease (core/src/lease.c, docs/FORMAT.md section 7): who
// holds it, who takes it back, and that messages stay exact and in order
// across every hand-over. Kills and stalls of a holder are in
// tests/robustness/lease_*.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "mrb_testing.h"
#include "test_util.h"

namespace
{
using mrbtest::Pattern;
using mrbtest::ReadOne;
using mrbtest::RingTest;

// CAS claims between two tries to take the lease: MRB_LEASE_BACKOFF_MIN,
// doubled after each failed try or short lease, up to MRB_LEASE_BACKOFF_MAX.
constexpr uint64_t kBackoffMin = 64;
constexpr uint64_t kBackoffMax = 1 << 20;

uint64_t Held(uint32_t slot, uint32_t generation)
{
	return static_cast<uint64_t>(generation) << 32 | static_cast<uint64_t>(slot) << 8 | 1;
}

// Message i of writer w: 8 bytes of w, 8 of i, then the pattern.
std::vector<uint8_t> Msg(uint64_t w, uint64_t i, size_t len = 48)
{
	std::vector<uint8_t> m = Pattern(w, i, len);
	memcpy(m.data(), &w, 8);
	memcpy(m.data() + 8, &i, 8);
	return m;
}

class Lease : public RingTest
{
      protected:
	void TearDown() override
	{
		mrb_close(&other_);
		mrb_close(&reader_);
		RingTest::TearDown();
	}
	int Write(struct mrb_ring *ring, uint64_t w, uint64_t i)
	{
		auto m = Msg(w, i);
		return mrb_write(ring, m.data(), m.size());
	}
	// Reads one message and checks it is (w, i), byte for byte.
	void Expect(uint64_t w, uint64_t i)
	{
		int rc;
		auto got = ReadOne(&ring_, &rc);
		ASSERT_EQ(0, rc);
		EXPECT_EQ(Msg(w, i), got) << "writer " << w << " message " << i;
	}
	// Writes n messages of writer w through `ring`, reading each back.
	void WriteAndReadBack(struct mrb_ring *ring, uint64_t w, uint64_t first, uint64_t n)
	{
		for (uint64_t i = first; i < first + n; i++) {
			ASSERT_EQ(0, Write(ring, w, i));
			ASSERT_NO_FATAL_FAILURE(Expect(w, i));
		}
	}
	uint64_t Word()
	{
		return mrb__test_sole_producer(&ring_);
	}
	struct mrb_ring other_ = {};
	struct mrb_ring reader_ = {};
};

TEST_F(Lease, TheOnlyProducerHoldsItFromItsFirstWrite)
{
	ASSERT_EQ(0, Create(1 << 16));
	EXPECT_EQ(0u, Word());
	ASSERT_NO_FATAL_FAILURE(WriteAndReadBack(&ring_, 1, 0, 1));
	// The first handle to write takes slot 0, generation 1.
	EXPECT_EQ(Held(0, 1), Word());
	// Past several laps of the 64 KiB ring, still exact and still held.
	ASSERT_NO_FATAL_FAILURE(WriteAndReadBack(&ring_, 1, 1, 5000));
	EXPECT_EQ(Held(0, 1), Word());
}

TEST_F(Lease, CloseGivesItBack)
{
	ASSERT_EQ(0, Create(1 << 16));
	ASSERT_EQ(0, Write(&ring_, 1, 0));
	ASSERT_EQ(Held(0, 1), Word());
	ASSERT_EQ(0, mrb_open(&reader_, path_.c_str(), 0));
	mrb_close(&ring_);
	EXPECT_EQ(0u, mrb__test_sole_producer(&reader_));
	// The next producer takes slot 0 again, one generation on.
	ASSERT_EQ(0, mrb_open(&ring_, path_.c_str(), 0));
	ASSERT_EQ(0, Write(&ring_, 2, 0));
	EXPECT_EQ(Held(0, 2), Word());
	ASSERT_NO_FATAL_FAILURE(Expect(1, 0));
	ASSERT_NO_FATAL_FAILURE(Expect(2, 0));
}

// mrb_stats names the holder: its pid and slot while the word is HELD by
// the slot's current generation, none otherwise.
TEST_F(Lease, StatsNameTheHolder)
{
	ASSERT_EQ(0, Create(1 << 16));
	ASSERT_EQ(0, mrb_open(&reader_, path_.c_str(), MRB_OPEN_READONLY));
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&reader_, &st));
	EXPECT_EQ(0, st.sole_producer_pid);
	EXPECT_EQ(UINT32_MAX, st.sole_producer_slot);
	ASSERT_EQ(0, Write(&ring_, 1, 0));
	ASSERT_EQ(Held(0, 1), Word());
	ASSERT_EQ(0, mrb_stats(&reader_, &st));
	EXPECT_EQ(getpid(), st.sole_producer_pid);
	EXPECT_EQ(0u, st.sole_producer_slot);
	// A second producer takes it back, then, alone in its claim, takes it
	// itself in slot 1 (this process too).
	ASSERT_EQ(0, mrb_open(&other_, path_.c_str(), 0));
	ASSERT_EQ(0, Write(&other_, 2, 0));
	ASSERT_EQ(Held(1, 1), Word());
	ASSERT_EQ(0, mrb_stats(&reader_, &st));
	EXPECT_EQ(getpid(), st.sole_producer_pid);
	EXPECT_EQ(1u, st.sole_producer_slot);
	// Closing the holder gives it back: none.
	mrb_close(&other_);
	ASSERT_EQ(0u, Word());
	ASSERT_EQ(0, mrb_stats(&reader_, &st));
	EXPECT_EQ(0, st.sole_producer_pid);
	EXPECT_EQ(UINT32_MAX, st.sole_producer_slot);
	ASSERT_NO_FATAL_FAILURE(Expect(1, 0));
	ASSERT_NO_FATAL_FAILURE(Expect(2, 0));
}

// A word that is not a HELD lease of a current slot owner is reported as
// none, never trusted: REVOKING, a slot out of range, a free slot, a stale
// generation, stray bits, a state that is no state.
TEST_F(Lease, StatsDoNotTrustTheWord)
{
	ASSERT_EQ(0, Create(1 << 16));
	ASSERT_EQ(0, Write(&ring_, 1, 0));
	ASSERT_EQ(Held(0, 1), Word());
	auto *word = reinterpret_cast<std::atomic<uint64_t> *>(
	    static_cast<uint8_t *>(mrb__test_mapping(&ring_)) + 0x88);
	struct mrb_stats st;
	for (uint64_t bad : {Held(0, 1) + 1, Held(200, 1), Held(128, 1), Held(5, 1), Held(0, 2),
	                     Held(0, 1) | UINT64_C(1) << 16, UINT64_C(0xdeadbeef00000077)}) {
		word->store(bad);
		ASSERT_EQ(0, mrb_stats(&ring_, &st));
		EXPECT_EQ(0, st.sole_producer_pid) << std::hex << bad;
		EXPECT_EQ(UINT32_MAX, st.sole_producer_slot) << std::hex << bad;
	}
	word->store(Held(0, 1));
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(getpid(), st.sole_producer_pid);
	EXPECT_EQ(0u, st.sole_producer_slot);
}

TEST_F(Lease, ASecondProducerTakesItBackAndTheirTriesBackOff)
{
	ASSERT_EQ(0, Create(1 << 16));
	ASSERT_EQ(0, mrb_open(&other_, path_.c_str(), 0));
	ASSERT_EQ(0, Write(&ring_, 1, 0));
	ASSERT_EQ(Held(0, 1), Word());
	// The newcomer takes it back, and, with nobody claiming beside it,
	// takes it itself at its first claim; the first holder's next claim
	// takes it back in turn.
	ASSERT_EQ(0, Write(&other_, 2, 0));
	EXPECT_EQ(Held(1, 1), Word());
	// Writers taking turns message by message, in claim order: each lease
	// one takes is taken back by the other's next write, so each try waits
	// twice as long as the last; without the backoff a lease would change
	// hands every kBackoffMin claims (about 1000 times here).
	constexpr uint64_t kTurns = 65536;
	uint64_t held_after_turn = 0;
	for (uint64_t i = 1; i < kTurns; i++) {
		ASSERT_EQ(0, Write(&ring_, 1, i));
		ASSERT_EQ(0, Write(&other_, 2, i));
		ASSERT_NO_FATAL_FAILURE(Expect(1, i - 1));
		ASSERT_NO_FATAL_FAILURE(Expect(2, i - 1));
		if (Word() != 0)
			held_after_turn++;
	}
	EXPECT_LE(held_after_turn, 2 * 11u); // 64 << 10 > kTurns: ~10 tries each
	EXPECT_GE(held_after_turn, 1u);      // ...but they do try
}

TEST_F(Lease, TheRemainingProducerTakesItAgainAfterTheOtherCloses)
{
	ASSERT_EQ(0, Create(1 << 16));
	ASSERT_EQ(0, Write(&ring_, 1, 0));
	ASSERT_EQ(0, mrb_open(&other_, path_.c_str(), 0));
	ASSERT_EQ(0, Write(&other_, 2, 0));
	ASSERT_EQ(Held(1, 1), Word());
	mrb_close(&other_);
	ASSERT_EQ(0u, Word());
	ASSERT_NO_FATAL_FAILURE(Expect(1, 0));
	ASSERT_NO_FATAL_FAILURE(Expect(2, 0));
	// Its lease was taken back at once: it tries again after twice the
	// minimum backoff of claims by CAS.
	ASSERT_NO_FATAL_FAILURE(WriteAndReadBack(&ring_, 1, 1, 2 * kBackoffMin + 1));
	EXPECT_EQ(Held(0, 1), Word());
}

TEST_F(Lease, ADeadHoldersLeaseIsTakenBackByTheNextProducer)
{
	ASSERT_EQ(0, Create(1 << 16));
	pid_t child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		struct mrb_ring r = {};
		if (mrb_open(&r, path_.c_str(), 0) != 0 || Write(&r, 7, 0) != 0 ||
		    mrb__test_sole_producer(&r) != Held(0, 1))
			_exit(1);
		raise(SIGKILL); // dies holding the lease and its slot
		_exit(2);
	}
	int status;
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
	ASSERT_EQ(Held(0, 1), Word());
	// The dead holder's slot is not reusable yet; this handle takes slot 1,
	// revokes the dead holder's lease, and, alone, takes it itself.
	ASSERT_EQ(0, Write(&ring_, 1, 0));
	EXPECT_EQ(Held(1, 1), Word());
	ASSERT_NO_FATAL_FAILURE(Expect(7, 0));
	ASSERT_NO_FATAL_FAILURE(Expect(1, 0));
}

TEST_F(Lease, AValidatingSubscriberTakesItBackAndKeepsItAway)
{
	ASSERT_EQ(0, Create(1 << 16, MRB_CREATE_FANOUT));
	ASSERT_EQ(0, Write(&ring_, 1, 0));
	ASSERT_EQ(Held(0, 1), Word());
	struct mrb_subscribe_options opts = {MRB_SUBSCRIBE_LOSSY, nullptr, 0};
	ASSERT_EQ(0, mrb_subscribe(&reader_, path_.c_str(), &opts));
	EXPECT_EQ(0u, Word());
	// Many tries later: not taken while a validating reader reads.
	uint64_t i = 1;
	for (; i <= 40000; i++) {
		ASSERT_EQ(0, Write(&ring_, 1, i));
		int rc;
		auto got = ReadOne(&reader_, &rc);
		ASSERT_EQ(0, rc);
		ASSERT_EQ(Msg(1, i), got);
		ASSERT_EQ(0u, Word());
	}
	mrb_close(&reader_);
	// Taken again by a later try (no durable subscriber: a full fan-out
	// ring drops, so writes never fail).
	uint64_t until = i + 2 * kBackoffMax;
	for (; i < until && Word() == 0; i++)
		ASSERT_EQ(0, Write(&ring_, 1, i));
	EXPECT_EQ(Held(0, 1), Word());
}

TEST_F(Lease, AProcessWithoutMembarrierNeverHoldsIt)
{
	ASSERT_EQ(0, Create(1 << 16));
	ASSERT_EQ(0, mrb__test_set_barriers(&ring_, MRB_TEST_BARRIERS_NONE));
	ASSERT_NO_FATAL_FAILURE(WriteAndReadBack(&ring_, 1, 0, 4 * kBackoffMin));
	EXPECT_EQ(0u, Word());
	// ...but it still takes a holder's lease back before it claims.
	ASSERT_EQ(0, mrb_open(&other_, path_.c_str(), 0));
	mrb_close(&ring_);
	ASSERT_EQ(0, mrb_open(&ring_, path_.c_str(), 0));
	ASSERT_EQ(0, mrb__test_set_barriers(&ring_, MRB_TEST_BARRIERS_NONE));
	ASSERT_EQ(0, Write(&other_, 2, 0));
	ASSERT_NE(0u, Word());
	ASSERT_EQ(0, Write(&ring_, 1, 0));
	EXPECT_EQ(0u, Word());
	ASSERT_NO_FATAL_FAILURE(Expect(2, 0));
	ASSERT_NO_FATAL_FAILURE(Expect(1, 0));
}

TEST_F(Lease, AGarbageLeaseWordIsClearedNotTrusted)
{
	ASSERT_EQ(0, Create(1 << 16));
	auto *word = reinterpret_cast<std::atomic<uint64_t> *>(
	    static_cast<uint8_t *>(mrb__test_mapping(&ring_)) + 0x88);
	// A slot out of range, a free slot, a state that is no state.
	for (uint64_t garbage : {Held(200, 1), Held(5, 9), UINT64_C(0xdeadbeef00000077)}) {
		word->store(garbage);
		ASSERT_EQ(0, Write(&ring_, 1, garbage & 0xffff));
		ASSERT_NO_FATAL_FAILURE(Expect(1, garbage & 0xffff));
		EXPECT_NE(garbage, Word());
	}
}

// What an acquirer gives the lease back for (FORMAT.md section 7): a live
// producer's lane announcing a claim at the producer position (its CAS may
// still come), or marked revoking (its last CAS on the word may clear a
// later round). Slot 5 is faked in shared memory, owned by this live process.
TEST_F(Lease, AnAcquirerGivesItBackToAClaimAtThePositionOrAMarkedLane)
{
	ASSERT_EQ(0, Create(1 << 16));
	uint8_t *base = static_cast<uint8_t *>(mrb__test_mapping(&ring_));
	auto word = [&](size_t offset) {
		return reinterpret_cast<std::atomic<uint64_t> *>(base + offset);
	};
	const size_t slot5 = 0x1000 + 5 * 256;
	word(slot5)->store(static_cast<uint64_t>(1) << 32 | static_cast<uint32_t>(getpid()));
	reinterpret_cast<std::atomic<uint32_t> *>(base + 0x48)->store(6); // slots used
	std::atomic<uint64_t> *claiming = word(slot5 + 0x40);
	std::atomic<uint64_t> *tail = word(0x80);

	// A claim announced at the producer position as it is after this
	// write's own claim (a 48-byte message takes 64 bytes): no lease.
	claiming->store((tail->load() + 64) | 1);
	ASSERT_EQ(0, Write(&ring_, 1, 0));
	EXPECT_EQ(0u, Word());
	// The same announcement, now below the position (that CAS would fail
	// and start over, checking the word): the next try takes it.
	uint64_t i = 1;
	for (; i < 4 * kBackoffMin && Word() == 0; i++)
		ASSERT_EQ(0, Write(&ring_, 1, i));
	EXPECT_EQ(Held(0, 1), Word());
	mrb_close(&ring_);
	ASSERT_EQ(0, mrb_open(&ring_, path_.c_str(), 0));

	// Marked revoking, below the position: no lease either.
	claiming->store(16 | 1 | 2);
	ASSERT_EQ(0, Write(&ring_, 2, 0));
	EXPECT_EQ(0u, Word());
	for (uint64_t j = 1; j < 4 * kBackoffMin; j++)
		ASSERT_EQ(0, Write(&ring_, 2, j));
	EXPECT_EQ(0u, Word());
	// Once the faked producer is gone (its slot freed), it is taken.
	word(slot5)->store(static_cast<uint64_t>(1) << 32);
	for (uint64_t j = 4 * kBackoffMin; j < 12 * kBackoffMin && Word() == 0; j++)
		ASSERT_EQ(0, Write(&ring_, 2, j));
	EXPECT_EQ(Held(0, 2), Word());
	for (uint64_t j = 0; j < i; j++)
		ASSERT_NO_FATAL_FAILURE(Expect(1, j));
}

// Another thread of the holder's own handle claims through lane 1: it takes
// the lease back from the producer thread, and nothing is lost or repeated.
TEST_F(Lease, AnotherThreadOfTheHoldingHandleTakesItBack)
{
	ASSERT_EQ(0, Create(1 << 20));
	ASSERT_EQ(0, Write(&ring_, 1, 0));
	ASSERT_EQ(Held(0, 1), Word());
	constexpr uint64_t kEach = 20000;
	std::thread second([&] {
		for (uint64_t i = 0; i < kEach;) {
			int rc = Write(&ring_, 2, i);
			if (rc == 0)
				i++;
			else
				ASSERT_EQ(MRB_EFULL, rc);
		}
	});
	uint64_t next[3] = {1, 0, 0};
	uint64_t written = 1;
	while (next[1] < kEach || next[2] < kEach) {
		if (written < kEach && Write(&ring_, 1, written) == 0)
			written++;
		int rc;
		auto got = ReadOne(&ring_, &rc);
		if (rc == MRB_EEMPTY)
			continue;
		ASSERT_EQ(0, rc);
		ASSERT_EQ(48u, got.size());
		uint64_t w, i;
		memcpy(&w, got.data(), 8);
		memcpy(&i, got.data() + 8, 8);
		ASSERT_TRUE(w == 1 || w == 2);
		ASSERT_EQ(next[w], i) << "writer " << w;
		ASSERT_EQ(Msg(w, i), got);
		next[w]++;
	}
	second.join();
	EXPECT_EQ(kEach, next[1]);
	EXPECT_EQ(kEach, next[2]);
}

} // namespace
