// SPDX-License-Identifier: MIT
// Records at every offset around the wrap point, large positions, and a ring
// larger than 4 GiB.
#include <string.h>
#include <sys/statvfs.h>

#include <vector>

#include "mrb_testing.h"
#include "test_util.h"

using mrbtest::Pattern;
using mrbtest::ReadOne;
using mrbtest::RingTest;

class Wrap : public RingTest, public ::testing::WithParamInterface<std::tuple<size_t, uint64_t>>
{
};

// For every 16-byte starting offset in a 1 KiB ring, a message of the given
// size, followed by a second one while the first is still unread, is
// written and read back intact, including when either forces padding.
TEST_P(Wrap, EveryOffsetForMessageSize)
{
	const size_t size = std::get<0>(GetParam());
	const uint64_t base = std::get<1>(GetParam());
	const uint64_t capacity = 1024;
	for (uint64_t offset = 0; offset < capacity; offset += 16) {
		SCOPED_TRACE(offset);
		mrb_close(&ring_);
		ASSERT_EQ(0, Create(capacity, MRB_CREATE_REMOVE));
		ASSERT_EQ(0, mrb__test_set_positions(&ring_, base + offset));
		auto first = Pattern(size, offset, size);
		auto second = Pattern(size, offset + 1, 1 + (offset * 7) % 200);
		// The model: a record that does not fit before the end takes the
		// gap as padding; if gap + record exceed the free space, the write
		// reports full (having taken just the gap, for the first record).
		auto record = [](size_t n) { return (16 + n + 15) / 16 * 16; };
		auto gap_at = [&](uint64_t pos, uint64_t rec) {
			uint64_t to_end = capacity - pos % capacity;
			return rec > to_end ? to_end : 0;
		};
		uint64_t pad1 = gap_at(base + offset, record(first.size()));
		int rc = mrb_write(&ring_, first.data(), first.size());
		uint64_t used = pad1 + record(first.size());
		if (used > capacity) {
			ASSERT_EQ(MRB_EFULL, rc);
			ReadOne(&ring_, &rc); // skips the padding the write took
			ASSERT_EQ(MRB_EEMPTY, rc);
			rc = mrb_write(&ring_, first.data(), first.size());
			used = record(first.size());
		}
		ASSERT_EQ(0, rc) << mrb_strerror(rc);
		uint64_t pos2 = base + offset + pad1 + record(first.size());
		uint64_t need2 = gap_at(pos2, record(second.size())) + record(second.size());
		bool second_fits = used + need2 <= capacity;
		rc = mrb_write(&ring_, second.data(), second.size());
		ASSERT_EQ(second_fits ? 0 : MRB_EFULL, rc) << mrb_strerror(rc);
		ASSERT_EQ(first, ReadOne(&ring_, &rc));
		if (second_fits) {
			ASSERT_EQ(second, ReadOne(&ring_, &rc));
		}
		ReadOne(&ring_, &rc);
		ASSERT_EQ(MRB_EEMPTY, rc);
		struct mrb_stats st;
		ASSERT_EQ(0, mrb_stats(&ring_, &st));
		EXPECT_EQ(st.producer_position, st.consumer_position);
		EXPECT_GT(st.consumer_position, base + offset);
	}
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, Wrap,
    ::testing::Combine(::testing::Values(1, 8, 16, 17, 100, 255, 496, 497, 512),
                       ::testing::Values(0ull, (1ull << 32) - 512, (1ull << 63) - 512)));

class Positions : public RingTest
{
};

// Mixed sizes through a small ring across the 2^32 and 2^63 boundaries,
// with the consumer lagging so the ring is often nearly full.
TEST_F(Positions, StreamAcrossLargePositionBoundaries)
{
	for (uint64_t base : {(1ull << 32) - 4096, (1ull << 63) - 4096}) {
		ASSERT_EQ(0, Create(4096, MRB_CREATE_REMOVE));
		ASSERT_EQ(0, mrb__test_set_positions(&ring_, base));
		uint64_t next_write = 0, next_read = 0;
		while (next_read < 5000) {
			size_t len = 1 + (next_write * 37) % 700;
			auto msg = Pattern(base, next_write, len);
			int rc = next_write < 5000 ? mrb_write(&ring_, msg.data(), len) : MRB_EFULL;
			if (rc == 0) {
				next_write++;
				if (next_write % 3 != 0)
					continue;
			}
			ASSERT_TRUE(rc == 0 || rc == MRB_EFULL) << mrb_strerror(rc);
			auto got = ReadOne(&ring_, &rc);
			if (rc == MRB_EEMPTY)
				continue;
			ASSERT_EQ(0, rc);
			size_t expect_len = 1 + (next_read * 37) % 700;
			ASSERT_EQ(Pattern(base, next_read, expect_len), got) << next_read;
			next_read++;
		}
		struct mrb_stats st;
		ASSERT_EQ(0, mrb_stats(&ring_, &st));
		EXPECT_GT(st.consumer_position, base + 4096);
		EXPECT_EQ(5000u, st.messages_read);
		mrb_close(&ring_);
	}
}

TEST_F(Positions, SetPositionsRefusesNonEmptyOrMisaligned)
{
	ASSERT_EQ(0, Create(1024));
	EXPECT_EQ(MRB_EINVAL, mrb__test_set_positions(&ring_, 8));
	ASSERT_EQ(0, mrb_write(&ring_, "x", 1));
	EXPECT_EQ(MRB_EINVAL, mrb__test_set_positions(&ring_, 1024));
}

// A real ring above 4 GiB (8 GiB data region, allocated on disk): the
// capacity arithmetic, the maximum message of 4 GiB... is far too slow to
// move in a test, so a 64 MiB message and positions beyond 2^32.
TEST_F(Positions, RingLargerThanFourGiB)
{
	const uint64_t size = 8ull << 30;
	struct statvfs vfs;
	ASSERT_EQ(0, statvfs(mrbtest::TempDir().c_str(), &vfs));
	if ((uint64_t)vfs.f_bavail * vfs.f_frsize < size + (4ull << 30))
		GTEST_SKIP() << "not enough free disk for an 8 GiB ring";
	ASSERT_EQ(0, Create(size));
	EXPECT_EQ(size, mrb_capacity(&ring_));
	EXPECT_EQ(size / 2, mrb_max_message_size(&ring_));
	ASSERT_EQ(0, mrb__test_set_positions(&ring_, size - (32ull << 20)));
	std::vector<uint8_t> big = Pattern(9, 9, 64u << 20);
	ASSERT_EQ(0, mrb_write(&ring_, big.data(), big.size())); // wraps: padding first
	std::vector<uint8_t> out(big.size());
	size_t len = 0;
	ASSERT_EQ(0, mrb_read(&ring_, out.data(), out.size(), &len));
	ASSERT_EQ(big.size(), len);
	EXPECT_TRUE(out == big);
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_GT(st.consumer_position, 1ull << 32);
	EXPECT_EQ(st.producer_position, st.consumer_position);
}
