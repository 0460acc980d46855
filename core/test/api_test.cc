// SPDX-License-Identifier: MIT
// Single-threaded behaviour of every public call: results, exact bytes,
// error codes.
#include <string.h>
#include <sys/stat.h>

#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

using mrbtest::Pattern;
using mrbtest::ReadOne;
using mrbtest::RingTest;

class Api : public RingTest
{
};

TEST_F(Api, CreateRoundsCapacityToPowerOfTwo)
{
	ASSERT_EQ(0, Create(1000));
	EXPECT_EQ(1024u, mrb_capacity(&ring_));
	EXPECT_EQ(512u, mrb_max_message_size(&ring_));
	mrb_close(&ring_);
	ASSERT_EQ(0, Create(1, MRB_CREATE_REMOVE));
	EXPECT_EQ(MRB_MIN_CAPACITY, mrb_capacity(&ring_));
	mrb_close(&ring_);
	ASSERT_EQ(0, Create(4096, MRB_CREATE_REMOVE));
	EXPECT_EQ(4096u, mrb_capacity(&ring_));
	struct stat st;
	ASSERT_EQ(0, stat(path_.c_str(), &st));
	EXPECT_EQ(MRB_HEADER_SIZE + 4096, (uint64_t)st.st_size);
	EXPECT_EQ(0600u, st.st_mode & 07777);
}

TEST_F(Api, CreateRefusesInvalidArguments)
{
	EXPECT_EQ(MRB_EINVAL, Create(0));
	EXPECT_EQ(MRB_EINVAL, Create(MRB_MAX_CAPACITY + 1));
	EXPECT_EQ(MRB_EINVAL, Create(1024, MRB_CREATE_REMOVE | MRB_CREATE_EXCLUSIVE));
	EXPECT_EQ(MRB_EINVAL, Create(1024, 1u << 7));
	EXPECT_EQ(MRB_EINVAL, mrb_create(&ring_, nullptr, 1024, nullptr));
	EXPECT_EQ(MRB_EINVAL, mrb_create(nullptr, path_.c_str(), 1024, nullptr));
	struct mrb_create_options bad_mode = {0, 010000};
	EXPECT_EQ(MRB_EINVAL, mrb_create(&ring_, path_.c_str(), 1024, &bad_mode));
	EXPECT_EQ(MRB_EINVAL, mrb_open(&ring_, path_.c_str(), 2));
	EXPECT_EQ(-ENOENT, mrb_open(&ring_, path_.c_str(), 0));
	// A failed open leaves a closed handle, never a half-open one.
	EXPECT_EQ(MRB_ECLOSED, mrb_write(&ring_, "x", 1));
}

TEST_F(Api, CreateAppliesModeExactly)
{
	mode_t old = umask(077);
	struct mrb_create_options opts = {0, 0664};
	ASSERT_EQ(0, mrb_create(&ring_, path_.c_str(), 1024, &opts));
	umask(old);
	struct stat st;
	ASSERT_EQ(0, stat(path_.c_str(), &st));
	EXPECT_EQ(0664u, st.st_mode & 07777);
}

TEST_F(Api, WriteThenReadReturnsExactBytes)
{
	ASSERT_EQ(0, Create(4096));
	std::vector<std::vector<uint8_t>> sent;
	for (size_t len : {1, 2, 15, 16, 17, 100, 2048}) {
		sent.push_back(Pattern(1, len, len));
		ASSERT_EQ(0, mrb_write(&ring_, sent.back().data(), len)) << len;
		int rc;
		EXPECT_EQ(sent.back(), ReadOne(&ring_, &rc));
		EXPECT_EQ(0, rc);
	}
	int rc;
	ReadOne(&ring_, &rc);
	EXPECT_EQ(MRB_EEMPTY, rc);
}

TEST_F(Api, MessageSizeLimits)
{
	ASSERT_EQ(0, Create(1024));
	std::vector<uint8_t> max(512, 0xab), over(513, 0xcd);
	EXPECT_EQ(MRB_EMSGSIZE, mrb_write(&ring_, "", 0));
	EXPECT_EQ(MRB_EMSGSIZE, mrb_write(&ring_, over.data(), over.size()));
	std::vector<uint8_t> whole(1024, 1);
	EXPECT_EQ(MRB_EMSGSIZE, mrb_write(&ring_, whole.data(), whole.size()));
	EXPECT_EQ(MRB_EINVAL, mrb_write(&ring_, nullptr, 4));
	ASSERT_EQ(0, mrb_write(&ring_, max.data(), max.size()));
	int rc;
	EXPECT_EQ(max, ReadOne(&ring_, &rc));
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(1u, st.messages_written);
}

TEST_F(Api, FullRingRefusesAndChangesNothing)
{
	ASSERT_EQ(0, Create(256));
	int written = 0;
	int rc;
	while ((rc = mrb_write(&ring_, &written, sizeof(written))) == 0)
		written++;
	EXPECT_EQ(MRB_EFULL, rc);
	// 32 bytes per 4-byte message (16-byte header, 16-byte alignment).
	EXPECT_EQ(256 / 32, written);
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(256u, st.used_bytes);
	EXPECT_EQ(1u, st.full_count);
	EXPECT_EQ((uint64_t)written, st.messages_written);
	for (int i = 0; i < written; i++) {
		int value = -1;
		size_t len = 0;
		ASSERT_EQ(0, mrb_read(&ring_, &value, sizeof(value), &len));
		EXPECT_EQ(sizeof(value), len);
		EXPECT_EQ(i, value);
	}
	int value;
	size_t len;
	EXPECT_EQ(MRB_EEMPTY, mrb_read(&ring_, &value, sizeof(value), &len));
}

TEST_F(Api, ReadIntoSmallBufferReportsSizeAndConsumesNothing)
{
	ASSERT_EQ(0, Create(1024));
	auto msg = Pattern(2, 0, 100);
	ASSERT_EQ(0, mrb_write(&ring_, msg.data(), msg.size()));
	std::vector<uint8_t> small(99);
	size_t len = 0;
	EXPECT_EQ(MRB_EBUFFER_TOO_SMALL, mrb_read(&ring_, small.data(), small.size(), &len));
	EXPECT_EQ(100u, len);
	int rc;
	EXPECT_EQ(msg, ReadOne(&ring_, &rc));
	EXPECT_EQ(MRB_EINVAL, mrb_read(&ring_, small.data(), small.size(), nullptr));
}

TEST_F(Api, ClosedHandleReturnsClosed)
{
	ASSERT_EQ(0, Create(1024));
	ASSERT_EQ(0, mrb_write(&ring_, "abc", 3));
	ASSERT_EQ(0, mrb_close(&ring_));
	EXPECT_EQ(MRB_ECLOSED, mrb_close(&ring_));
	char buf[8];
	size_t len;
	struct mrb_stats st;
	struct mrb_view view;
	struct mrb_reservation res;
	EXPECT_EQ(MRB_ECLOSED, mrb_write(&ring_, "abc", 3));
	EXPECT_EQ(MRB_ECLOSED, mrb_read(&ring_, buf, sizeof(buf), &len));
	EXPECT_EQ(MRB_ECLOSED, mrb_peek(&ring_, &view));
	EXPECT_EQ(MRB_ECLOSED, mrb_reserve(&ring_, 3, &res));
	EXPECT_EQ(MRB_ECLOSED, mrb_stats(&ring_, &st));
	EXPECT_EQ(MRB_ECLOSED, mrb_wait_readable(&ring_, 0));
	EXPECT_EQ(MRB_ECLOSED, mrb_read_wait(&ring_, buf, sizeof(buf), &len, 1000));
	EXPECT_EQ(0u, mrb_capacity(&ring_));
	struct mrb_ring zeroed = {};
	EXPECT_EQ(MRB_ECLOSED, mrb_write(&zeroed, "abc", 3));
	// The message written before close is still in the file.
	ASSERT_EQ(0, mrb_open(&ring_, path_.c_str(), 0));
	ASSERT_EQ(0, mrb_read(&ring_, buf, sizeof(buf), &len));
	EXPECT_EQ(std::string("abc"), std::string(buf, len));
}

TEST_F(Api, PeekAndReleaseInPlace)
{
	ASSERT_EQ(0, Create(1024));
	ASSERT_EQ(0, mrb_write(&ring_, "first", 5));
	ASSERT_EQ(0, mrb_write(&ring_, "second", 6));
	struct mrb_view a, b;
	ASSERT_EQ(0, mrb_peek(&ring_, &a));
	ASSERT_EQ(0, mrb_peek(&ring_, &b));
	EXPECT_EQ(std::string("first"), std::string((const char *)a.data, a.len));
	EXPECT_EQ(a.data, b.data);
	ASSERT_EQ(0, mrb_release(&ring_, &a));
	EXPECT_EQ(MRB_ESTALE, mrb_release(&ring_, &a));
	ASSERT_EQ(0, mrb_peek(&ring_, &b));
	EXPECT_EQ(std::string("second"), std::string((const char *)b.data, b.len));
	struct mrb_view forged = b;
	forged.len = 100;
	EXPECT_EQ(MRB_ESTALE, mrb_release(&ring_, &forged));
	ASSERT_EQ(0, mrb_release(&ring_, &b));
	EXPECT_EQ(MRB_EEMPTY, mrb_peek(&ring_, &b));
}

TEST_F(Api, ReserveCommitAbort)
{
	ASSERT_EQ(0, Create(1024));
	struct mrb_reservation res;
	ASSERT_EQ(0, mrb_reserve(&ring_, 10, &res));
	EXPECT_EQ(0u, (uintptr_t)res.data % MRB_RECORD_ALIGNMENT);
	memcpy(res.data, "0123456789", 10);
	// Uncommitted: the consumer sees nothing yet.
	int rc;
	ReadOne(&ring_, &rc);
	EXPECT_EQ(MRB_EEMPTY, rc);
	ASSERT_EQ(0, mrb_commit(&ring_, &res));
	EXPECT_EQ(MRB_ESTALE, mrb_commit(&ring_, &res));
	ASSERT_EQ(0, mrb_reserve(&ring_, 5, &res));
	memcpy(res.data, "abort", 5);
	ASSERT_EQ(0, mrb_abort(&ring_, &res));
	ASSERT_EQ(0, mrb_write(&ring_, "after", 5));
	std::vector<uint8_t> first = ReadOne(&ring_, &rc);
	EXPECT_EQ(std::string("0123456789"), std::string(first.begin(), first.end()));
	std::vector<uint8_t> second = ReadOne(&ring_, &rc);
	EXPECT_EQ(std::string("after"), std::string(second.begin(), second.end()));
	struct mrb_reservation forged = {};
	EXPECT_EQ(MRB_ESTALE, mrb_commit(&ring_, &forged));
	EXPECT_EQ(MRB_EMSGSIZE, mrb_reserve(&ring_, 0, &res));
	EXPECT_EQ(MRB_EMSGSIZE, mrb_reserve(&ring_, 513, &res));
}

TEST_F(Api, ReadManyPacksMessagesAndStopsAtBufferEnd)
{
	ASSERT_EQ(0, Create(4096));
	for (int i = 1; i <= 5; i++) {
		auto m = Pattern(3, i, i * 10);
		ASSERT_EQ(0, mrb_write(&ring_, m.data(), m.size()));
	}
	std::vector<uint8_t> buf(10 + 20 + 30 + 5);
	size_t lengths[8];
	ASSERT_EQ(3, mrb_read_many(&ring_, buf.data(), buf.size(), lengths, 8));
	EXPECT_EQ(10u, lengths[0]);
	EXPECT_EQ(20u, lengths[1]);
	EXPECT_EQ(30u, lengths[2]);
	size_t off = 0;
	for (int i = 1; i <= 3; i++) {
		auto m = Pattern(3, i, i * 10);
		EXPECT_EQ(0, memcmp(buf.data() + off, m.data(), m.size()));
		off += m.size();
	}
	std::vector<uint8_t> tiny(39);
	EXPECT_EQ(MRB_EBUFFER_TOO_SMALL,
	          mrb_read_many(&ring_, tiny.data(), tiny.size(), lengths, 8));
	EXPECT_EQ(40u, lengths[0]);
	std::vector<uint8_t> big(200);
	ASSERT_EQ(1, mrb_read_many(&ring_, big.data(), big.size(), lengths, 1));
	ASSERT_EQ(1, mrb_read_many(&ring_, big.data(), big.size(), lengths, 8));
	EXPECT_EQ(50u, lengths[0]);
	EXPECT_EQ(MRB_EEMPTY, mrb_read_many(&ring_, big.data(), big.size(), lengths, 8));
	EXPECT_EQ(MRB_EINVAL, mrb_read_many(&ring_, big.data(), big.size(), lengths, 0));
}

struct Collected {
	std::vector<std::string> messages;
	size_t stop_after = 0;
};

static int Collect(void *ctx, const void *data, size_t len)
{
	auto *c = static_cast<Collected *>(ctx);
	c->messages.emplace_back(static_cast<const char *>(data), len);
	return c->stop_after != 0 && c->messages.size() >= c->stop_after;
}

TEST_F(Api, ReadBatchHandsEveryMessageAndHonoursStop)
{
	ASSERT_EQ(0, Create(4096));
	for (int i = 0; i < 10; i++) {
		std::string m = "message-" + std::to_string(i);
		ASSERT_EQ(0, mrb_write(&ring_, m.data(), m.size()));
	}
	Collected c;
	c.stop_after = 3;
	ASSERT_EQ(3, mrb_read_batch(&ring_, Collect, &c, 0));
	c.stop_after = 0;
	ASSERT_EQ(4, mrb_read_batch(&ring_, Collect, &c, 4));
	ASSERT_EQ(3, mrb_read_batch(&ring_, Collect, &c, 0));
	ASSERT_EQ(10u, c.messages.size());
	for (int i = 0; i < 10; i++)
		EXPECT_EQ("message-" + std::to_string(i), c.messages[i]);
	EXPECT_EQ(MRB_EEMPTY, mrb_read_batch(&ring_, Collect, &c, 0));
	EXPECT_EQ(MRB_EINVAL, mrb_read_batch(&ring_, nullptr, &c, 0));
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(10u, st.messages_read);
}

// read_batch's sweep hands committed records in place until the first that
// is anything else (here: wrap padding, the count limit, a handler's stop,
// the end of what was written); each of those hands over to the general
// path. Lengths vary so that every offset within a line and several wraps
// with padding of different sizes occur; every message is checked byte for
// byte and in order, and the counters match.
TEST_F(Api, ReadBatchSweepsAcrossWrapsPaddingLimitsAndStops)
{
	ASSERT_EQ(0, Create(1024));
	uint64_t written = 0, read = 0, bytes = 0;
	Collected c;
	std::vector<std::string> sent;
	for (int round = 0; round < 200; round++) {
		// Up to 500 bytes of a 1 KiB ring in 1-9 messages of 1-100 bytes.
		size_t want = 1 + (size_t)(round * 7) % 9, used = 0;
		for (size_t i = 0; i < want; i++) {
			size_t len = 1 + (written * 37) % 100;
			if (used + len + 32 > 500)
				break;
			std::vector<uint8_t> p = Pattern((uint32_t)written, len, len);
			ASSERT_EQ(0, mrb_write(&ring_, p.data(), len)) << written;
			sent.emplace_back(reinterpret_cast<const char *>(p.data()), len);
			written++;
			used += len + 32;
		}
		// Read in pieces: a count limit, a handler stop, then the rest.
		c.stop_after = c.messages.size() + 1 + round % 3;
		int64_t n = mrb_read_batch(&ring_, Collect, &c, 0);
		ASSERT_GT(n, 0) << round;
		c.stop_after = 0;
		while (c.messages.size() < written) {
			n = mrb_read_batch(&ring_, Collect, &c, 1 + round % 4);
			ASSERT_GT(n, 0) << round;
			ASSERT_LE(n, 1 + round % 4);
		}
		ASSERT_EQ(MRB_EEMPTY, mrb_read_batch(&ring_, Collect, &c, 0));
	}
	ASSERT_EQ(sent.size(), c.messages.size());
	for (size_t i = 0; i < sent.size(); i++) {
		ASSERT_EQ(sent[i], c.messages[i]) << i;
		read++;
		bytes += sent[i].size();
	}
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(read, st.messages_read);
	EXPECT_EQ(bytes, st.bytes_read);
	EXPECT_EQ(st.producer_position, st.consumer_position);
	EXPECT_GT(st.producer_position, 32u * 1024) << "the ring wrapped 32 times or more";
}

struct PositionsSeen {
	struct mrb_ring *ring;
	std::vector<uint64_t> published; // consumer_position as each handler ran
};

static int RecordPublished(void *ctx, const void *, size_t)
{
	auto *p = static_cast<PositionsSeen *>(ctx);
	struct mrb_stats st;
	if (mrb_stats(p->ring, &st) != 0)
		return 1;
	p->published.push_back(st.consumer_position);
	return 0;
}

TEST_F(Api, ReadBatchPublishesEvery16KiBAndNeverPastAHandlerStillRunning)
{
	ASSERT_EQ(0, Create(65536));
	std::string m(100, 'x'); // 128-byte records: 128 of them make 16 KiB
	for (int i = 0; i < 400; i++)
		ASSERT_EQ(0, mrb_write(&ring_, m.data(), m.size()));
	PositionsSeen seen{&ring_, {}};
	ASSERT_EQ(400, mrb_read_batch(&ring_, RecordPublished, &seen, 0));
	ASSERT_EQ(400u, seen.published.size());
	for (uint64_t i = 0; i < 400; i++)
		EXPECT_EQ(16384 * (i / 128), seen.published[i]) << "message " << i;
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(400u * 128, st.consumer_position);
	EXPECT_EQ(400u, st.messages_read);
}

// A consumer call nested in a consumer call of the same handle (here from a
// read_batch handler) is refused, before and after the calling thread was
// adopted for the fast entry (handle.h, consumer_role_enter), and from
// another thread while the call is in progress.
struct NestedCalls {
	struct mrb_ring *ring;
	int read_rc = 1, peek_rc = 1, thread_rc = 1;
};

int NestedConsumerCall(void *ctx, const void *, size_t)
{
	auto *n = static_cast<NestedCalls *>(ctx);
	char buf[64];
	size_t len;
	struct mrb_view view;
	n->read_rc = mrb_read(n->ring, buf, sizeof(buf), &len);
	n->peek_rc = mrb_peek(n->ring, &view);
	std::thread other([n] {
		char b[64];
		size_t l;
		n->thread_rc = mrb_read(n->ring, b, sizeof(b), &l);
	});
	other.join();
	return 1;
}

TEST_F(Api, NestedAndConcurrentConsumerCallsAreRefused)
{
	ASSERT_EQ(0, Create(4096));
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 3; i++)
			ASSERT_EQ(0, mrb_write(&ring_, "abc", 3));
		NestedCalls n;
		n.ring = &ring_;
		ASSERT_EQ(1, mrb_read_batch(&ring_, NestedConsumerCall, &n, 0));
		EXPECT_EQ(MRB_ECONSUMER_BUSY, n.read_rc) << "round " << round;
		EXPECT_EQ(MRB_ECONSUMER_BUSY, n.peek_rc) << "round " << round;
		EXPECT_EQ(MRB_ECONSUMER_BUSY, n.thread_rc) << "round " << round;
		int rc;
		EXPECT_EQ(std::vector<uint8_t>({'a', 'b', 'c'}), ReadOne(&ring_, &rc));
		ASSERT_EQ(0, rc);
		EXPECT_EQ(std::vector<uint8_t>({'a', 'b', 'c'}), ReadOne(&ring_, &rc));
		ASSERT_EQ(0, rc);
	}
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(9u, st.messages_read);
}

TEST_F(Api, WriteBatchStopsAtFirstThatDoesNotFit)
{
	ASSERT_EQ(0, Create(256));
	std::vector<std::string> msgs(10, "0123456789abcdef"); // 32 bytes per record
	std::vector<struct mrb_iovec> iov;
	for (auto &m : msgs)
		iov.push_back({m.data(), m.size()});
	EXPECT_EQ(8, mrb_write_batch(&ring_, iov.data(), iov.size()));
	EXPECT_EQ(MRB_EFULL, mrb_write_batch(&ring_, iov.data(), iov.size()));
	struct mrb_iovec empty = {"", 0};
	EXPECT_EQ(MRB_EMSGSIZE, mrb_write_batch(&ring_, &empty, 1));
	EXPECT_EQ(0, mrb_write_batch(&ring_, iov.data(), 0));
}

TEST_F(Api, SecondConsumerIsRefusedWhileFirstIsAttached)
{
	ASSERT_EQ(0, Create(1024));
	ASSERT_EQ(0, mrb_write(&ring_, "x", 1));
	int rc;
	ReadOne(&ring_, &rc);
	ASSERT_EQ(0, rc);
	struct mrb_ring other;
	ASSERT_EQ(0, mrb_open(&other, path_.c_str(), 0));
	ASSERT_EQ(0, mrb_write(&other, "y", 1)); // producing is always allowed
	ReadOne(&other, &rc);
	EXPECT_EQ(MRB_ECONSUMER_BUSY, rc);
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&other, &st));
	EXPECT_EQ((int32_t)getpid(), st.consumer_pid);
	EXPECT_EQ(1, st.consumer_alive);
	mrb_close(&ring_);
	auto got = ReadOne(&other, &rc);
	ASSERT_EQ(0, rc);
	EXPECT_EQ(std::vector<uint8_t>{'y'}, got);
	mrb_close(&other);
}

TEST_F(Api, StatsCountEverything)
{
	ASSERT_EQ(0, Create(1024));
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(0, mrb_write(&ring_, "hello", 5));
	int rc;
	ReadOne(&ring_, &rc);
	ReadOne(&ring_, &rc);
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(MRB_FORMAT_VERSION, st.format_version);
	EXPECT_EQ(1024u, st.capacity);
	EXPECT_EQ(512u, st.max_message_size);
	EXPECT_EQ(5u, st.messages_written);
	EXPECT_EQ(25u, st.bytes_written);
	EXPECT_EQ(2u, st.messages_read);
	EXPECT_EQ(10u, st.bytes_read);
	EXPECT_EQ(5u * 32, st.producer_position);
	EXPECT_EQ(2u * 32, st.consumer_position);
	EXPECT_EQ(3u * 32, st.used_bytes);
	EXPECT_EQ(1u, st.producers);
	EXPECT_EQ(1u, st.producers_alive);
	EXPECT_EQ((uint32_t)getpid(), st.creator_pid);
	EXPECT_GT(st.created_unix_ns, 1600000000ull * 1000000000ull);
}

struct Seen {
	std::vector<struct mrb_record_info> records;
};

static int Record(void *ctx, const struct mrb_record_info *rec)
{
	static_cast<Seen *>(ctx)->records.push_back(*rec);
	return 0;
}

TEST_F(Api, InspectWalksUnreadRecordsWithoutConsuming)
{
	ASSERT_EQ(0, Create(1024));
	ASSERT_EQ(0, mrb_write(&ring_, "one", 3));
	struct mrb_reservation res;
	ASSERT_EQ(0, mrb_reserve(&ring_, 7, &res));
	Seen seen;
	ASSERT_EQ(2, mrb_inspect(&ring_, Record, &seen, 0));
	EXPECT_EQ(0u, seen.records[0].position);
	EXPECT_EQ(3u, seen.records[0].length);
	EXPECT_EQ((uint32_t)MRB_RECORD_COMMITTED, seen.records[0].state);
	EXPECT_EQ((uint32_t)getpid(), seen.records[0].writer_pid);
	EXPECT_EQ(0, memcmp(seen.records[0].data, "one", 3));
	EXPECT_EQ(32u, seen.records[1].position);
	EXPECT_EQ((uint32_t)MRB_RECORD_BUSY, seen.records[1].state);
	ASSERT_EQ(0, mrb_abort(&ring_, &res));
	seen.records.clear();
	ASSERT_EQ(1, mrb_inspect(&ring_, Record, &seen, 1));
	int rc;
	ReadOne(&ring_, &rc);
	EXPECT_EQ(0, rc); // inspect consumed nothing
}

TEST(Strerror, EveryCodeHasAMessage)
{
	for (int code = -1001; code >= -1014; code--) {
		std::string text = mrb_strerror(code);
		EXPECT_NE("unknown error", text) << code;
		EXPECT_FALSE(text.empty());
	}
	EXPECT_EQ(std::string("success"), mrb_strerror(0));
	EXPECT_NE(std::string("unknown error"), mrb_strerror(-ENOENT));
	EXPECT_EQ(std::string("unknown error"), mrb_strerror(12345));
}

TEST(Version, LinkedLibraryMatchesHeader)
{
	EXPECT_STREQ(MRB_VERSION, mrb_version());
	std::string want = std::to_string(MRB_VERSION_MAJOR) + "." +
	                   std::to_string(MRB_VERSION_MINOR) + "." +
	                   std::to_string(MRB_VERSION_PATCH);
	EXPECT_EQ(want, mrb_version());
}

TEST_F(Api, ReadOnlyHandleInspectsButNeverWrites)
{
	ASSERT_EQ(0, Create(1024));
	ASSERT_EQ(0, mrb_write(&ring_, "seen", 4));
	struct mrb_ring ro;
	ASSERT_EQ(0, mrb_open(&ro, path_.c_str(), MRB_OPEN_READONLY));
	EXPECT_EQ(1024u, mrb_capacity(&ro));
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ro, &st));
	EXPECT_EQ(1u, st.messages_written);
	Seen seen;
	ASSERT_EQ(1, mrb_inspect(&ro, Record, &seen, 0));
	EXPECT_EQ(0, memcmp(seen.records[0].data, "seen", 4));
	char buf[16];
	size_t len;
	struct mrb_reservation res;
	struct mrb_view view;
	EXPECT_EQ(-EROFS, mrb_write(&ro, "x", 1));
	EXPECT_EQ(-EROFS, mrb_reserve(&ro, 1, &res));
	EXPECT_EQ(-EROFS, mrb_read(&ro, buf, sizeof(buf), &len));
	EXPECT_EQ(-EROFS, mrb_peek(&ro, &view));
	EXPECT_EQ(-EROFS, mrb_wait_readable(&ro, 0));
	EXPECT_EQ(-EROFS, mrb_recover(&ro, -1));
	EXPECT_EQ(MRB_EINVAL, mrb_open(&ro, path_.c_str(), 2));
	ASSERT_EQ(0, mrb_open(&ro, path_.c_str(), MRB_OPEN_READONLY));
	EXPECT_EQ(0, mrb_close(&ro));
	// The read-only handle consumed nothing and took no role.
	int rc;
	auto msg = ReadOne(&ring_, &rc);
	EXPECT_EQ(std::string("seen"), std::string(msg.begin(), msg.end()));
}

// Batches are claimed in runs (one CAS for several records, committed last
// to first): across many wraps and partial fits every message arrives once,
// in order, intact.
TEST_F(Api, WriteBatchRunsAcrossWrapsAndPartialFits)
{
	ASSERT_EQ(0, Create(1024));
	uint64_t sent = 0, received = 0;
	std::vector<uint8_t> out(1024);
	for (int round = 0; round < 400; round++) {
		std::vector<std::vector<uint8_t>> batch;
		std::vector<struct mrb_iovec> iov;
		size_t n = 1 + round % 13;
		for (size_t i = 0; i < n; i++) {
			batch.push_back(Pattern(77, sent + i, 1 + ((sent + i) * 53) % 120));
			iov.push_back({batch.back().data(), batch.back().size()});
		}
		int64_t wrote = mrb_write_batch(&ring_, iov.data(), iov.size());
		ASSERT_TRUE(wrote > 0 || wrote == MRB_EFULL) << wrote;
		if (wrote > 0)
			sent += (uint64_t)wrote;
		// Drain only part of the ring each round, so batches meet a
		// nearly full ring and the wrap point at varying offsets.
		for (int k = 0; k < (round % 3 == 0 ? 20 : 4); k++) {
			size_t len;
			int rc = mrb_read(&ring_, out.data(), out.size(), &len);
			if (rc == MRB_EEMPTY)
				break;
			ASSERT_EQ(0, rc);
			auto expect = Pattern(77, received, 1 + (received * 53) % 120);
			ASSERT_EQ(expect.size(), len) << received;
			ASSERT_EQ(0, memcmp(expect.data(), out.data(), len)) << received;
			received++;
		}
	}
	size_t len;
	while (mrb_read(&ring_, out.data(), out.size(), &len) == 0)
		received++;
	EXPECT_EQ(sent, received);
	EXPECT_GT(sent, 1000u);
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(sent, st.messages_read);
	EXPECT_GT(st.full_count, 0u);
}

TEST_F(Api, HoldKeepsMessagesUntilReleasedThrough)
{
	ASSERT_EQ(0, Create(1024));
	for (int i = 1; i <= 5; i++) {
		char m[2] = {'m', (char)('0' + i)};
		ASSERT_EQ(0, mrb_write(&ring_, m, 2));
	}
	ASSERT_EQ(0, mrb_hold(&ring_, 1));
	char buf[64];
	size_t lengths[8];
	uint64_t positions[8];
	EXPECT_EQ(MRB_EINVAL, mrb_read_many_at(&ring_, buf, sizeof buf, lengths, nullptr, 8));
	ASSERT_EQ(3, mrb_read_many_at(&ring_, buf, sizeof buf, lengths, positions, 3));
	EXPECT_EQ(0, memcmp(buf, "m1m2m3", 6));
	// Each 2-byte message takes a 32-byte record (16-byte header, aligned).
	EXPECT_EQ(0u, positions[0]);
	EXPECT_EQ(32u, positions[1]);
	EXPECT_EQ(64u, positions[2]);
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(0u, st.consumer_position); // nothing released yet
	EXPECT_EQ(0u, st.messages_read);
	EXPECT_EQ(5u, st.messages_written);
	EXPECT_EQ(1u, st.salt & 1); // odd, random per file
	EXPECT_EQ(MRB_EINVAL, mrb_set_recovery_timeout(&ring_, 1000000));
	EXPECT_EQ(MRB_EINVAL, mrb_recover(&ring_, 0));

	ASSERT_EQ(0, mrb_release_through(&ring_, 32));
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(64u, st.consumer_position);
	EXPECT_EQ(2u, st.messages_read);
	EXPECT_EQ(4u, st.bytes_read);
	EXPECT_EQ(MRB_ESTALE, mrb_release_through(&ring_, 32)); // released already
	EXPECT_EQ(MRB_ESTALE, mrb_release_through(&ring_, 80)); // not a record
	EXPECT_EQ(MRB_ESTALE, mrb_release_through(&ring_, 96)); // not read yet
	EXPECT_EQ(MRB_EINVAL, mrb_release_through(&ring_, UINT64_MAX));

	// Closed while holding m3: the next consumer reads it again.
	ASSERT_EQ(0, mrb_close(&ring_));
	ASSERT_EQ(0, mrb_open(&ring_, path_.c_str(), 0));
	ASSERT_EQ(MRB_EINVAL, mrb_release_through(&ring_, 64)); // not holding
	ASSERT_EQ(0, mrb_hold(&ring_, 1));
	ASSERT_EQ(3, mrb_read_many_at(&ring_, buf, sizeof buf, lengths, positions, 8));
	EXPECT_EQ(0, memcmp(buf, "m3m4m5", 6));
	EXPECT_EQ(64u, positions[0]);
	EXPECT_EQ(128u, positions[2]);
	// Stopping releases everything read.
	ASSERT_EQ(0, mrb_hold(&ring_, 0));
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(160u, st.consumer_position);
	EXPECT_EQ(5u, st.messages_read);
	EXPECT_EQ(0, mrb_set_recovery_timeout(&ring_, 1000000));
	EXPECT_EQ(MRB_EINVAL, mrb_hold(&ring_, 1));
}

TEST_F(Api, HoldingRingFillsUpAndReleasePastPaddingFreesIt)
{
	ASSERT_EQ(0, Create(256));
	ASSERT_EQ(0, mrb_hold(&ring_, 1));
	std::vector<uint8_t> m(100, 7); // 128-byte records: two fill the ring
	ASSERT_EQ(0, mrb_write(&ring_, m.data(), m.size()));
	ASSERT_EQ(0, mrb_write(&ring_, m.data(), m.size()));
	uint8_t buf[512];
	size_t lengths[4];
	uint64_t positions[4];
	ASSERT_EQ(2, mrb_read_many_at(&ring_, buf, sizeof buf, lengths, positions, 4));
	EXPECT_EQ(MRB_EFULL, mrb_write(&ring_, m.data(), m.size())); // read, still held
	ASSERT_EQ(0, mrb_release_through(&ring_, positions[0]));
	ASSERT_EQ(0, mrb_write(&ring_, m.data(), m.size()));
	EXPECT_EQ(MRB_EFULL, mrb_write(&ring_, m.data(), m.size()));
	ASSERT_EQ(0, mrb_release_through(&ring_, positions[1]));
	ASSERT_EQ(1, mrb_read_many_at(&ring_, buf, sizeof buf, lengths, positions, 4));
	EXPECT_EQ(256u, positions[0]);
}
