// SPDX-License-Identifier: MIT
// The file: creation semantics, persistence across processes, and every
// kind of bad file refused with its own code.
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <string>
#include <vector>

#include "mrb_testing.h"
#include "test_util.h"

using mrbtest::Pattern;
using mrbtest::ReadOne;
using mrbtest::RingTest;

class File : public RingTest
{
      protected:
	void WriteFile(const std::vector<uint8_t> &bytes)
	{
		unlink(path_.c_str());
		std::ofstream out(path_, std::ios::binary);
		out.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
	}
	std::vector<uint8_t> ReadFile()
	{
		std::ifstream in(path_, std::ios::binary);
		return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
	}
	// A valid ring's bytes with one 32/64-bit field replaced.
	std::vector<uint8_t> ValidRingWith(size_t offset, uint64_t value, size_t width)
	{
		EXPECT_EQ(0, Create(1024, MRB_CREATE_REMOVE));
		EXPECT_EQ(0, mrb_write(&ring_, "abc", 3));
		mrb_close(&ring_);
		auto bytes = ReadFile();
		memcpy(bytes.data() + offset, &value, width);
		return bytes;
	}
	int OpenBytes(const std::vector<uint8_t> &bytes)
	{
		WriteFile(bytes);
		return mrb_open(&ring_, path_.c_str(), 0);
	}
};

TEST_F(File, UnreadMessagesPersistAcrossProcessesAndReopen)
{
	ASSERT_EQ(0, Create(16384));
	mrb_close(&ring_);
	pid_t child = fork();
	if (child == 0) {
		struct mrb_ring w;
		if (mrb_open(&w, path_.c_str(), 0) != 0)
			_exit(2);
		for (int i = 0; i < 50; i++) {
			auto m = Pattern(5, i, 1 + i * 3);
			if (mrb_write(&w, m.data(), m.size()) != 0)
				_exit(3);
		}
		_exit(mrb_close(&w) == 0 ? 0 : 4);
	}
	int status;
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	// Read half, close, reopen (a fresh handle), read the rest in order.
	ASSERT_EQ(0, mrb_open(&ring_, path_.c_str(), 0));
	int rc;
	for (int i = 0; i < 25; i++)
		ASSERT_EQ(Pattern(5, i, 1 + i * 3), ReadOne(&ring_, &rc));
	mrb_close(&ring_);
	// Creating again with the same size and no flags opens, never wipes.
	ASSERT_EQ(0, Create(16384));
	for (int i = 25; i < 50; i++)
		ASSERT_EQ(Pattern(5, i, 1 + i * 3), ReadOne(&ring_, &rc));
	ReadOne(&ring_, &rc);
	EXPECT_EQ(MRB_EEMPTY, rc);
}

TEST_F(File, CreateOverExistingRing)
{
	ASSERT_EQ(0, Create(1024));
	ASSERT_EQ(0, mrb_write(&ring_, "keep", 4));
	mrb_close(&ring_);
	EXPECT_EQ(MRB_EEXIST, Create(4096)); // another size: refused
	EXPECT_EQ(MRB_EEXIST, Create(1024, MRB_CREATE_EXCLUSIVE));
	ASSERT_EQ(0, Create(1024)); // same size: opened
	int rc;
	auto kept = ReadOne(&ring_, &rc);
	EXPECT_EQ(std::string("keep"), std::string(kept.begin(), kept.end()));
	ASSERT_EQ(0, mrb_write(&ring_, "gone", 4));
	mrb_close(&ring_);
	ASSERT_EQ(0, Create(4096, MRB_CREATE_REMOVE)); // replaced
	EXPECT_EQ(4096u, mrb_capacity(&ring_));
	ReadOne(&ring_, &rc);
	EXPECT_EQ(MRB_EEMPTY, rc);
}

// The mode is the permission bits, applied exactly; 0 means 0600, and a bit
// above 0777 (setuid, setgid, sticky, a file type) is refused, creating
// nothing.
TEST_F(File, CreateModeIsPermissionBitsOnly)
{
	struct stat st;
	for (mode_t mode : {0, 0640, 0777, 0001}) {
		struct mrb_create_options opts = {MRB_CREATE_REMOVE, mode};
		ASSERT_EQ(0, mrb_create(&ring_, path_.c_str(), 1024, &opts)) << mode;
		mrb_close(&ring_);
		ASSERT_EQ(0, stat(path_.c_str(), &st));
		EXPECT_EQ(mode == 0 ? 0600u : mode, st.st_mode & 07777u) << mode;
	}
	ASSERT_EQ(0, unlink(path_.c_str()));
	for (mode_t mode : {01000, 02600, 04600, 07777, 010600}) {
		struct mrb_create_options opts = {0, mode};
		EXPECT_EQ(MRB_EINVAL, mrb_create(&ring_, path_.c_str(), 1024, &opts)) << mode;
		EXPECT_EQ(-1, stat(path_.c_str(), &st)) << mode;
	}
}

TEST_F(File, CreateNeverClobbersAForeignFile)
{
	WriteFile(std::vector<uint8_t>(5000, 'z'));
	ASSERT_EQ(0, chmod(path_.c_str(), 0600));
	EXPECT_EQ(MRB_EFORMAT, Create(1024));
	EXPECT_EQ(std::vector<uint8_t>(5000, 'z'), ReadFile());
}

TEST_F(File, SymlinksAreNeitherFollowedNorWrittenThrough)
{
	std::string target = path_ + ".target";
	{
		std::ofstream out(target);
		out << "precious";
	}
	ASSERT_EQ(0, symlink(target.c_str(), path_.c_str()));
	EXPECT_EQ(-ELOOP, mrb_open(&ring_, path_.c_str(), 0));
	EXPECT_EQ(-ELOOP, Create(1024));
	ASSERT_EQ(0, Create(1024, MRB_CREATE_REMOVE));
	struct stat st;
	ASSERT_EQ(0, lstat(path_.c_str(), &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	std::ifstream in(target);
	std::string content;
	in >> content;
	EXPECT_EQ("precious", content);
	unlink(target.c_str());
}

TEST_F(File, MissingEmptyTruncatedAndForeignFiles)
{
	EXPECT_EQ(-ENOENT, mrb_open(&ring_, path_.c_str(), 0));
	EXPECT_EQ(MRB_EFORMAT, OpenBytes({}));
	EXPECT_EQ(MRB_EFORMAT, OpenBytes(std::vector<uint8_t>(100, 0)));
	EXPECT_EQ(MRB_EFORMAT, OpenBytes(std::vector<uint8_t>(4096 + 1024, 0)));
	EXPECT_EQ(MRB_EFORMAT, OpenBytes(std::vector<uint8_t>(8192, 0xff)));
	auto valid = ValidRingWith(0x50, 0, 8); // reserved bytes are not checked
	auto truncated = valid;
	truncated.resize(truncated.size() - 16);
	EXPECT_EQ(MRB_EFORMAT, OpenBytes(truncated));
	auto extended = valid;
	extended.resize(extended.size() + 4096);
	EXPECT_EQ(MRB_EFORMAT, OpenBytes(extended));
	truncated.resize(4095);
	EXPECT_EQ(MRB_EFORMAT, OpenBytes(truncated));
	EXPECT_EQ(0, OpenBytes(valid));
	int rc;
	auto msg = ReadOne(&ring_, &rc);
	EXPECT_EQ(std::string("abc"), std::string(msg.begin(), msg.end()));
	mrb_close(&ring_);
	EXPECT_EQ(-EISDIR, mrb_open(&ring_, mrbtest::TempDir().c_str(), 0));
}

TEST_F(File, EveryHeaderFieldIsValidated)
{
	struct Case {
		const char *name;
		size_t offset;
		uint64_t value;
		size_t width;
		int expected;
	};
	const Case cases[] = {
	    {"magic", 0x000, 0x4655425250414d4dull ^ 1, 8, MRB_EFORMAT},
	    {"version 0 (unfinished)", 0x008, 0, 4, MRB_EFORMAT},
	    {"version 1 (convert with mrb upgrade)", 0x008, 1, 4, MRB_EVERSION},
	    {"version 3", 0x008, 3, 4, MRB_EVERSION},
	    {"version max", 0x008, 0xffffffff, 4, MRB_EVERSION},
	    {"header size", 0x00c, 8192, 4, MRB_EFORMAT},
	    {"capacity not power of two", 0x010, 1000, 8, MRB_EFORMAT},
	    {"capacity vs file size", 0x010, 2048, 8, MRB_EFORMAT},
	    {"capacity huge", 0x010, 1ull << 62, 8, MRB_EFORMAT},
	    {"capacity zero", 0x010, 0, 8, MRB_EFORMAT},
	    {"max message", 0x018, 1024, 8, MRB_EFORMAT},
	    {"record header size", 0x034, 8, 4, MRB_EFORMAT},
	    {"record alignment", 0x038, 8, 4, MRB_EFORMAT},
	    {"feature flags", 0x03c, 1, 4, MRB_EVERSION},
	    {"producer slot offset", 0x040, 0x800, 4, MRB_EFORMAT},
	    {"producer slot count", 0x044, 16, 4, MRB_EFORMAT},
	    {"producer misaligned", 0x080, 40, 8, MRB_ECORRUPT},
	    {"producer beyond capacity", 0x080, 4096, 8, MRB_ECORRUPT},
	    {"consumer ahead of producer", 0x180, 64, 8, MRB_ECORRUPT},
	    {"consumer misaligned", 0x180, 8, 8, MRB_ECORRUPT},
	};
	for (const Case &c : cases) {
		SCOPED_TRACE(c.name);
		EXPECT_EQ(c.expected, OpenBytes(ValidRingWith(c.offset, c.value, c.width)));
		mrb_close(&ring_);
	}
}

// Reads until something other than "empty" comes back: the consumer looks
// at the producer position only every so many empty polls.
static int ReadPastEmpty(struct mrb_ring *ring, char *buf, size_t size, size_t *len)
{
	int rc = MRB_EEMPTY;
	for (int i = 0; i < 1000 && rc == MRB_EEMPTY; i++)
		rc = mrb_read(ring, buf, size, len);
	return rc;
}

// After a large message mrb_read prefetches the next record, trusting its
// header only as far as the end of the data region: a corrupt length there
// must neither fault nor change what is read, and is reported when reached.
TEST_F(File, PrefetchAfterLargeMessageToleratesCorruptNextHeader)
{
	ASSERT_EQ(0, Create(8192));
	std::vector<uint8_t> big(2000), buf(4096);
	for (size_t i = 0; i < big.size(); i++)
		big[i] = (uint8_t)(i * 7);
	ASSERT_EQ(0, mrb_write(&ring_, big.data(), big.size()));
	ASSERT_EQ(0, mrb_write(&ring_, big.data(), big.size()));
	ASSERT_EQ(0, mrb_write(&ring_, "tail", 4));
	auto *base = static_cast<uint8_t *>(mrb__test_mapping(&ring_));
	// A 2000-byte message takes a 16 + 2000 = 2016-byte record (16-aligned).
	uint64_t *third = reinterpret_cast<uint64_t *>(base + MRB_HEADER_SIZE + 2 * 2016);
	const uint64_t good = *third;
	*third = (good & ~((1ull << 40) - 1)) | ((1ull << 40) - 1); // length 2^40-1
	size_t len = 0;
	ASSERT_EQ(0, mrb_read(&ring_, buf.data(), buf.size(), &len));
	ASSERT_EQ(big.size(), len);
	EXPECT_EQ(0, memcmp(big.data(), buf.data(), len));
	ASSERT_EQ(0, mrb_read(&ring_, buf.data(), buf.size(), &len)); // prefetches the bad one
	ASSERT_EQ(big.size(), len);
	EXPECT_EQ(0, memcmp(big.data(), buf.data(), len));
	EXPECT_EQ(MRB_ECORRUPT, mrb_read(&ring_, buf.data(), buf.size(), &len));
	*third = good;
	ASSERT_EQ(0, mrb_read(&ring_, buf.data(), buf.size(), &len));
	EXPECT_EQ(std::string("tail"), std::string(reinterpret_cast<char *>(buf.data()), len));
}

TEST_F(File, CorruptRecordsAreReportedNotFollowed)
{
	ASSERT_EQ(0, Create(1024));
	ASSERT_EQ(0, mrb_write(&ring_, "abcdef", 6));
	auto *base = static_cast<uint8_t *>(mrb__test_mapping(&ring_));
	uint64_t *control = reinterpret_cast<uint64_t *>(base + MRB_HEADER_SIZE);
	const uint64_t good = *control;
	char buf[2048];
	size_t len;
	struct Case {
		const char *name;
		uint64_t control;
	};
	const uint64_t pid_bits = good & ~((1ull << 40) - 1);
	const Case cases[] = {
	    {"length beyond ring", pid_bits | 5000},
	    {"length 2^40-1", pid_bits | ((1ull << 40) - 1)},
	    {"zero length message", pid_bits | 0},
	};
	for (const Case &c : cases) {
		SCOPED_TRACE(c.name);
		*control = c.control;
		EXPECT_EQ(MRB_ECORRUPT, mrb_read(&ring_, buf, sizeof(buf), &len));
		struct mrb_view view;
		EXPECT_EQ(MRB_ECORRUPT, mrb_peek(&ring_, &view));
	}
	*control = good;
	ASSERT_EQ(0, mrb_read(&ring_, buf, sizeof(buf), &len));
	EXPECT_EQ(std::string("abcdef"), std::string(buf, len));

	// A producer position pushed beyond the ring is caught on read and write.
	uint64_t *producer = reinterpret_cast<uint64_t *>(base + 0x80);
	const uint64_t saved = *producer;
	*producer = saved + 4096;
	EXPECT_EQ(MRB_ECORRUPT, ReadPastEmpty(&ring_, buf, sizeof(buf), &len));
	EXPECT_EQ(MRB_ECORRUPT, mrb_write(&ring_, "x", 1));
	*producer = saved;
	EXPECT_EQ(MRB_EEMPTY, ReadPastEmpty(&ring_, buf, sizeof(buf), &len));

	// A length that passes the producer position but stays inside the data
	// region: a valid stamp proves a claim, so the consumer (which does not
	// read the producer position per message) hands out those bytes --
	// never anything outside the mapping -- and the corruption surfaces as
	// soon as the positions are compared again.
	ASSERT_EQ(0, mrb_write(&ring_, "abcdef", 6));
	uint64_t *second = reinterpret_cast<uint64_t *>(base + MRB_HEADER_SIZE + 32);
	*second = (*second & ~((1ull << 40) - 1)) | 100;
	ASSERT_EQ(0, mrb_read(&ring_, buf, sizeof(buf), &len));
	EXPECT_EQ(100u, len);
	EXPECT_EQ(MRB_ECORRUPT, ReadPastEmpty(&ring_, buf, sizeof(buf), &len));
	mrb_close(&ring_);
	EXPECT_EQ(MRB_ECORRUPT, mrb_open(&ring_, path_.c_str(), 0));
}
