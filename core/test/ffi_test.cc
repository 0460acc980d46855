// SPDX-License-Identifier: MIT
// The calls shaped for bindings (core/src/ffi.c): mrb_write_packed,
// mrb_read_len and mrb_read_len_wait. Exact bytes, counts and codes.
#include <string.h>

#include <string>
#include <vector>

#include "test_util.h"

using mrbtest::Pattern;
using mrbtest::ReadOne;
using mrbtest::RingTest;

class Ffi : public RingTest
{
      protected:
	// Appends messages (seed, 0..count-1) of the given lengths to packed/lens.
	static void Pack(uint64_t seed, const std::vector<size_t> &lengths,
	                 std::vector<uint8_t> *packed)
	{
		for (size_t i = 0; i < lengths.size(); i++) {
			std::vector<uint8_t> msg = Pattern(seed, i, lengths[i]);
			packed->insert(packed->end(), msg.begin(), msg.end());
		}
	}
};

TEST_F(Ffi, WritePackedWritesEachMessageWithItsBytes)
{
	ASSERT_EQ(0, Create(1 << 16));
	// 600 messages: more than two internal mrb_write_batch chunks (256).
	std::vector<size_t> lens;
	for (size_t i = 0; i < 600; i++)
		lens.push_back(1 + (i * 7) % 40);
	std::vector<uint8_t> packed;
	Pack(1, lens, &packed);
	EXPECT_EQ(600, mrb_write_packed(&ring_, packed.data(), lens.data(), lens.size()));
	for (size_t i = 0; i < lens.size(); i++) {
		int rc;
		std::vector<uint8_t> got = ReadOne(&ring_, &rc);
		ASSERT_EQ(0, rc) << "message " << i;
		EXPECT_EQ(Pattern(1, i, lens[i]), got) << "message " << i;
	}
	int rc;
	ReadOne(&ring_, &rc);
	EXPECT_EQ(MRB_EEMPTY, rc);
}

TEST_F(Ffi, WritePackedStopsAtTheFirstMessageThatDoesNotFit)
{
	// 256 bytes hold eight 4-byte messages (16-byte header, 16-byte aligned).
	ASSERT_EQ(0, Create(256));
	std::vector<size_t> lens(10, 4);
	std::vector<uint8_t> packed;
	Pack(2, lens, &packed);
	EXPECT_EQ(8, mrb_write_packed(&ring_, packed.data(), lens.data(), lens.size()));
	// Nothing fits now: the first message's error, not a count.
	EXPECT_EQ(MRB_EFULL, mrb_write_packed(&ring_, packed.data(), lens.data(), 2));
	for (size_t i = 0; i < 8; i++) {
		int rc;
		EXPECT_EQ(Pattern(2, i, 4), ReadOne(&ring_, &rc));
		ASSERT_EQ(0, rc);
	}
}

TEST_F(Ffi, WritePackedStopsAcrossChunksAndKeepsOffsets)
{
	// Message 300, in the second internal chunk of 256, is empty (invalid):
	// the call writes the 300 before it and stops there.
	ASSERT_EQ(0, Create(1 << 16));
	std::vector<size_t> lens(600, 16);
	lens[300] = 0;
	std::vector<uint8_t> packed;
	Pack(3, lens, &packed);
	EXPECT_EQ(300, mrb_write_packed(&ring_, packed.data(), lens.data(), lens.size()));
	// The rest, from message 301 on: 299 more, at their own offsets.
	EXPECT_EQ(299, mrb_write_packed(&ring_, packed.data() + 300 * 16, lens.data() + 301, 299));
	for (size_t i = 0; i < 600; i++) {
		if (i == 300)
			continue;
		int rc;
		EXPECT_EQ(Pattern(3, i, 16), ReadOne(&ring_, &rc)) << "message " << i;
		ASSERT_EQ(0, rc);
	}
	int rc;
	ReadOne(&ring_, &rc);
	EXPECT_EQ(MRB_EEMPTY, rc);
}

TEST_F(Ffi, WritePackedReportsInvalidMessagesAndHandles)
{
	ASSERT_EQ(0, Create(1024));
	std::vector<uint8_t> big(mrb_max_message_size(&ring_) + 1, 'x');
	size_t too_big[] = {big.size()};
	EXPECT_EQ(MRB_EMSGSIZE, mrb_write_packed(&ring_, big.data(), too_big, 1));
	size_t empty[] = {0};
	EXPECT_EQ(MRB_EMSGSIZE, mrb_write_packed(&ring_, "x", empty, 1));
	// A valid message, then an invalid one: the count so far.
	size_t mixed[] = {1, 0};
	EXPECT_EQ(1, mrb_write_packed(&ring_, "a", mixed, 2));
	EXPECT_EQ(0, mrb_write_packed(&ring_, nullptr, nullptr, 0));
	mrb_close(&ring_);
	size_t one[] = {1};
	EXPECT_EQ(MRB_ECLOSED, mrb_write_packed(&ring_, "a", one, 1));
}

TEST_F(Ffi, ReadLenReturnsTheLengthAndTheBytes)
{
	ASSERT_EQ(0, Create(4096));
	std::vector<uint8_t> msg = Pattern(4, 0, 100);
	ASSERT_EQ(0, mrb_write(&ring_, msg.data(), msg.size()));
	std::vector<uint8_t> buf(100, 0);
	EXPECT_EQ(100, mrb_read_len(&ring_, buf.data(), buf.size()));
	EXPECT_EQ(msg, buf);
	EXPECT_EQ(MRB_EEMPTY, mrb_read_len(&ring_, buf.data(), buf.size()));
}

TEST_F(Ffi, ReadLenTooSmallGivesTheSizeNeededAndConsumesNothing)
{
	ASSERT_EQ(0, Create(4096));
	std::vector<uint8_t> msg = Pattern(5, 0, 300);
	ASSERT_EQ(0, mrb_write(&ring_, msg.data(), msg.size()));
	std::vector<uint8_t> buf(299, 0xAA);
	EXPECT_EQ(300, mrb_read_len(&ring_, buf.data(), buf.size()));
	EXPECT_EQ(std::vector<uint8_t>(299, 0xAA), buf); // nothing copied
	EXPECT_EQ(300, mrb_read_len(&ring_, nullptr, 0));
	buf.resize(300);
	EXPECT_EQ(300, mrb_read_len(&ring_, buf.data(), buf.size()));
	EXPECT_EQ(msg, buf);
	EXPECT_EQ(MRB_EEMPTY, mrb_read_len(&ring_, buf.data(), buf.size()));
}

TEST_F(Ffi, ReadLenWaitTimesOutThenReads)
{
	ASSERT_EQ(0, Create(4096));
	char buf[16];
	EXPECT_EQ(MRB_ETIMEDOUT, mrb_read_len_wait(&ring_, buf, sizeof(buf), 1000000));
	EXPECT_EQ(MRB_ETIMEDOUT, mrb_read_len_wait(&ring_, buf, sizeof(buf), 0)); // a poll
	ASSERT_EQ(0, mrb_write(&ring_, "hello, world", 12));
	EXPECT_EQ(12, mrb_read_len_wait(&ring_, buf, 4, -1)); // too small: size
	EXPECT_EQ(12, mrb_read_len_wait(&ring_, buf, sizeof(buf), -1));
	EXPECT_EQ(0, memcmp(buf, "hello, world", 12));
	mrb_close(&ring_);
	EXPECT_EQ(MRB_ECLOSED, mrb_read_len_wait(&ring_, buf, sizeof(buf), -1));
}
