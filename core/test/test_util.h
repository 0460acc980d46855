// SPDX-License-Identifier: MIT
// Shared fixtures for the core tests: a fresh path per test, and small
// helpers that make assertions about exact bytes and codes read well.
#ifndef MRB_TEST_UTIL_H
#define MRB_TEST_UTIL_H

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "mrb/mrb.h"

namespace mrbtest
{

inline std::string TempDir()
{
	const char *dir = getenv("TEST_TMPDIR");
	return dir != nullptr ? dir : "/tmp";
}

// A unique ring path per test, removed afterwards.
class RingTest : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		const ::testing::TestInfo *info =
		    ::testing::UnitTest::GetInstance()->current_test_info();
		path_ = TempDir() + "/" + info->test_suite_name() + "." + info->name() + "." +
		        std::to_string(getpid()) + ".ring";
		for (size_t i = TempDir().size() + 1; i < path_.size(); i++)
			if (path_[i] == '/')
				path_[i] = '_';
		unlink(path_.c_str());
	}
	void TearDown() override
	{
		mrb_close(&ring_);
		unlink(path_.c_str());
	}
	int Create(uint64_t size, unsigned flags = 0)
	{
		struct mrb_create_options opts = {flags, 0};
		return mrb_create(&ring_, path_.c_str(), size, &opts);
	}
	std::string path_;
	struct mrb_ring ring_ = {};
};

// Deterministic message content: byte j of message (seed, i).
inline std::vector<uint8_t> Pattern(uint64_t seed, uint64_t i, size_t len)
{
	std::vector<uint8_t> out(len);
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull + 1;
	for (size_t j = 0; j < len; j++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		out[j] = static_cast<uint8_t>(x);
	}
	return out;
}

inline std::vector<uint8_t> ReadOne(struct mrb_ring *ring, int *rc)
{
	// Reused: zero-filling a fresh megabyte per read dominated sanitizer runs.
	static thread_local std::vector<uint8_t> buf(1 << 20);
	size_t len = 0;
	*rc = mrb_read(ring, buf.data(), buf.size(), &len);
	return std::vector<uint8_t>(buf.begin(), buf.begin() + (*rc == 0 ? len : 0));
}

// ThreadSanitizer tracks memory by virtual address, so two mappings of one
// file (two handles in one process) look like unrelated memory to it and
// every correctly synchronised hand-over between them reads as a race.
#if defined(__SANITIZE_THREAD__)
#define MRB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MRB_TSAN 1
#endif
#endif
#ifndef MRB_TSAN
#define MRB_TSAN 0
#endif

// The datagram socket behind a doorbell descriptor (mrb_doorbell_fd): the
// descriptor itself, or where io_uring is used the socket member of that
// epoll set (its members are listed in /proc/self/fdinfo as "tfd: N ...").
// -1 if there is none.
inline int DoorbellSocket(int fd)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
		return fd;
	FILE *f = fopen(("/proc/self/fdinfo/" + std::to_string(fd)).c_str(), "r");
	if (f == nullptr)
		return -1;
	char line[256];
	int found = -1, member;
	while (found < 0 && fgets(line, sizeof(line), f) != nullptr)
		if (sscanf(line, "tfd: %d", &member) == 1 && fstat(member, &st) == 0 &&
		    S_ISSOCK(st.st_mode))
			found = member;
	fclose(f);
	return found;
}

} // namespace mrbtest

#endif
