// SPDX-License-Identifier: MIT
// Worker groups across real processes: a kill -9 storm of workers and
// producers under both policies, and a worker frozen with SIGSTOP while it
// holds messages.
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"

using mrbtest::Pattern;
using mrbtest::RingTest;

namespace
{

constexpr size_t kMsgLen = 32;

std::vector<uint8_t> Msg(uint64_t key)
{
	auto out = Pattern(5, key, kMsgLen);
	memcpy(out.data(), &key, sizeof(key));
	return out;
}

void Sleep(int64_t ns)
{
	struct timespec ts = {static_cast<time_t>(ns / 1000000000),
	                      static_cast<long>(ns % 1000000000)};
	nanosleep(&ts, nullptr);
}

std::vector<uint64_t> ReadLog(const std::string &path)
{
	std::vector<uint64_t> out;
	int fd = open(path.c_str(), O_RDONLY);
	if (fd < 0)
		return out;
	uint64_t key;
	while (read(fd, &key, sizeof(key)) == sizeof(key))
		out.push_back(key);
	close(fd);
	return out;
}

// A worker process: takes runs of up to 8 messages, checks each and logs
// its key (processing), forever. Exit codes other than by a signal are
// failures.
[[noreturn]] void WorkerMain(const std::string &path, unsigned policy, const std::string &log)
{
	struct mrb_ring w = {};
	struct mrb_worker_options opts = {policy, 0};
	if (mrb_worker_join(&w, path.c_str(), "storm", &opts) != 0)
		_exit(10);
	int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0)
		_exit(11);
	uint8_t buf[8 * kMsgLen];
	size_t lens[8];
	for (;;) {
		int64_t n = mrb_read_many(&w, buf, sizeof(buf), lens, 8);
		if (n == MRB_EEMPTY) {
			int rc = mrb_wait_readable(&w, 100000000);
			if (rc != 0 && rc != MRB_ETIMEDOUT)
				_exit(12);
			continue;
		}
		if (n <= 0)
			_exit(13);
		Sleep(200000); // processing: a kill now finds the run held
		for (int64_t i = 0; i < n; i++) {
			uint64_t key;
			memcpy(&key, buf + i * kMsgLen, 8);
			if (lens[i] != kMsgLen ||
			    Msg(key) !=
			        std::vector<uint8_t>(buf + i * kMsgLen, buf + (i + 1) * kMsgLen))
				_exit(14);
			if (write(fd, &key, sizeof(key)) != sizeof(key))
				_exit(15);
		}
	}
}

// A producer process: writes messages (incarnation << 32 | seq) for seq in
// [0, count), logging each once written.
[[noreturn]] void ProducerMain(const std::string &path, uint64_t incarnation, uint64_t count,
                               const std::string &log)
{
	struct mrb_ring r = {};
	if (mrb_open(&r, path.c_str(), 0) != 0)
		_exit(20);
	int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0)
		_exit(21);
	for (uint64_t seq = 0; seq < count; seq++) {
		uint64_t key = incarnation << 32 | seq;
		auto m = Msg(key);
		for (;;) {
			int rc = mrb_write(&r, m.data(), m.size());
			if (rc == 0)
				break;
			if (rc != MRB_EFULL)
				_exit(22);
			rc = mrb_wait_writable(&r, m.size(), 100000000);
			if (rc != 0 && rc != MRB_ETIMEDOUT)
				_exit(23);
		}
		if (write(fd, &key, sizeof(key)) != sizeof(key))
			_exit(24);
		if (seq % 8 == 7)
			Sleep(2000000); // paced: production spans the storm
	}
	mrb_close(&r);
	_exit(0);
}

class WorkerProcesses : public RingTest, public ::testing::WithParamInterface<unsigned>
{
      protected:
	void SetUp() override
	{
		RingTest::SetUp();
		ASSERT_EQ(0, Create(16384, MRB_CREATE_FANOUT));
	}
	void TearDown() override
	{
		for (auto &[pid, log] : workers_) {
			kill(pid, SIGKILL);
			waitpid(pid, nullptr, 0);
			unlink(log.c_str());
		}
		for (auto &log : logs_)
			unlink(log.c_str());
		RingTest::TearDown();
	}
	pid_t SpawnWorker(unsigned policy)
	{
		std::string log = path_ + ".w" + std::to_string(next_log_++);
		logs_.push_back(log);
		pid_t pid = fork();
		if (pid == 0)
			WorkerMain(path_, policy, log);
		workers_[pid] = log;
		return pid;
	}
	std::map<pid_t, std::string> workers_; // live worker pid -> its log
	std::vector<std::string> logs_;
	int next_log_ = 0;
};

struct Lane {
	uint64_t total;
	uint64_t confirmed = 0; // by earlier incarnations
	pid_t pid = 0;
	std::string log;
	uint64_t incarnation = 0;
};

TEST_P(WorkerProcesses, ShouldSurviveAKillStormOfWorkersAndProducers)
{
	const unsigned policy = GetParam();
	std::mt19937_64 rng(getpid());
	std::set<std::string> killed_logs;
	uint64_t next_incarnation = 1;
	std::vector<Lane> lanes(2);
	std::vector<std::string> producer_logs;
	auto spawn_producer = [&](Lane &lane) {
		lane.incarnation = next_incarnation++;
		lane.log = path_ + ".p" + std::to_string(lane.incarnation);
		producer_logs.push_back(lane.log);
		logs_.push_back(lane.log);
		uint64_t left = lane.total - lane.confirmed;
		pid_t pid = fork();
		if (pid == 0)
			ProducerMain(path_, lane.incarnation, left, lane.log);
		lane.pid = pid;
	};
	for (auto &lane : lanes) {
		lane.total = 6000;
		spawn_producer(lane);
	}
	for (int i = 0; i < 4; i++)
		SpawnWorker(policy);
	int worker_kills = 0, producer_kills = 0;
	const int64_t storm_ns = 2000000000;
	int64_t start = 0;
	{
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		start = ts.tv_sec * 1000000000LL + ts.tv_nsec;
	}
	for (;;) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t now = ts.tv_sec * 1000000000LL + ts.tv_nsec;
		bool storming = now - start < storm_ns;
		bool producing = false;
		for (auto &lane : lanes) {
			if (lane.pid == 0)
				continue;
			int status;
			pid_t done = waitpid(lane.pid, &status, WNOHANG);
			if (done == lane.pid) {
				ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
				    << status;
				lane.confirmed += ReadLog(lane.log).size();
				ASSERT_EQ(lane.total, lane.confirmed);
				lane.pid = 0;
			} else {
				producing = true;
			}
		}
		if (!producing && !storming)
			break;
		Sleep(static_cast<int64_t>(rng() % 20000000) + 2000000);
		if (!storming)
			continue;
		uint64_t dice = rng() % 100;
		if (dice < 60) {
			auto it = workers_.begin();
			std::advance(it, static_cast<long>(rng() % workers_.size()));
			kill(it->first, SIGKILL);
			int status;
			ASSERT_EQ(it->first, waitpid(it->first, &status, 0));
			ASSERT_TRUE(WIFSIGNALED(status)) << "worker failed: " << status;
			killed_logs.insert(it->second);
			workers_.erase(it);
			SpawnWorker(policy);
			worker_kills++;
		} else if (dice < 75) {
			Lane &lane = lanes[rng() % lanes.size()];
			if (lane.pid != 0) {
				kill(lane.pid, SIGKILL);
				int status;
				ASSERT_EQ(lane.pid, waitpid(lane.pid, &status, 0));
				lane.confirmed += ReadLog(lane.log).size();
				if (WIFEXITED(status)) {
					ASSERT_EQ(0, WEXITSTATUS(status));
					lane.pid = 0;
				} else if (lane.confirmed < lane.total) {
					spawn_producer(lane);
					producer_kills++;
				} else {
					lane.pid = 0;
				}
			}
		}
	}
	// Drained: the group took everything and no worker holds anything.
	bool drained = false;
	for (int i = 0; i < 2000 && !drained; i++) {
		struct mrb_stats st;
		ASSERT_EQ(0, mrb_stats(&ring_, &st));
		struct mrb_group_info g;
		ASSERT_EQ(1, mrb_worker_groups(&ring_, &g, 1));
		struct mrb_worker_info info[MRB_MAX_WORKERS];
		int64_t n = mrb_workers(&ring_, info, MRB_MAX_WORKERS);
		ASSERT_GE(n, 0);
		bool holding = false;
		for (int64_t k = 0; k < n; k++)
			holding |= info[k].holding || info[k].rescued;
		drained = !holding && g.claim_position == st.producer_position &&
		          st.consumer_position == st.producer_position;
		if (!drained)
			Sleep(10000000);
	}
	ASSERT_TRUE(drained);
	for (auto &[pid, log] : workers_) {
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		EXPECT_TRUE(WIFSIGNALED(status)) << "worker failed: " << status;
	}
	workers_.clear();

	std::set<uint64_t> confirmed;
	for (auto &log : producer_logs)
		for (uint64_t key : ReadLog(log))
			confirmed.insert(key);
	EXPECT_EQ(12000u, confirmed.size());
	std::map<uint64_t, int> processed;
	std::set<uint64_t> by_killed;
	for (int i = 0; i < next_log_; i++) {
		std::string log = path_ + ".w" + std::to_string(i);
		for (uint64_t key : ReadLog(log)) {
			processed[key]++;
			if (killed_logs.count(log))
				by_killed.insert(key);
		}
	}
	uint64_t duplicates = 0, missing = 0, dup_not_killed = 0;
	for (auto &[key, count] : processed) {
		duplicates += static_cast<uint64_t>(count - 1);
		if (count > 1 && by_killed.count(key) == 0)
			dup_not_killed++;
	}
	for (uint64_t key : confirmed)
		if (processed.count(key) == 0)
			missing++;
	struct mrb_group_info g;
	ASSERT_EQ(1, mrb_worker_groups(&ring_, &g, 1));
	RecordProperty("worker_kills", worker_kills);
	RecordProperty("producer_kills", producer_kills);
	printf("policy %u: %d worker kills, %d producer kills; %zu processed keys, "
	       "%llu duplicates, %llu missing; redelivered %llu, dropped %llu, done %llu\n",
	       policy, worker_kills, producer_kills, processed.size(),
	       (unsigned long long)duplicates, (unsigned long long)missing,
	       (unsigned long long)g.redelivered, (unsigned long long)g.dropped,
	       (unsigned long long)g.messages_done);
	EXPECT_GT(worker_kills, 10);
	if (policy == MRB_AT_LEAST_ONCE) {
		EXPECT_EQ(0u, missing);
		// Every duplicate is a message handed again after a death, and
		// one that a killed worker had processed.
		EXPECT_LE(duplicates, g.redelivered);
		EXPECT_EQ(0u, dup_not_killed);
		EXPECT_EQ(0u, g.dropped);
		EXPECT_GE(g.messages_done, confirmed.size());
	} else {
		EXPECT_EQ(0u, duplicates);
		// Every loss is a message a killed worker held.
		EXPECT_LE(missing, g.dropped);
		EXPECT_EQ(0u, g.redelivered);
		EXPECT_GE(g.messages_done + g.dropped, confirmed.size());
	}
	EXPECT_EQ(0u, g.stale_releases);
}

INSTANTIATE_TEST_SUITE_P(Policies, WorkerProcesses,
                         ::testing::Values(MRB_AT_LEAST_ONCE, MRB_AT_MOST_ONCE));

class FrozenWorker : public RingTest, public ::testing::WithParamInterface<unsigned>
{
};

// A child worker takes three messages, reports, and is frozen with SIGSTOP
// before it releases them; the parent's worker goes on. After the hold
// timeout the three are redelivered (at-least-once) or dropped (at-most-
// once); the child, resumed, finds its release refused.
TEST_P(FrozenWorker, ShouldBeRescuedAndHaveItsLateReleaseRefused)
{
	const unsigned policy = GetParam();
	ASSERT_EQ(0, Create(4096, MRB_CREATE_FANOUT));
	struct mrb_worker_options opts = {policy, 100000000};
	struct mrb_ring w = {};
	ASSERT_EQ(0, mrb_worker_join(&w, path_.c_str(), "frozen", &opts));
	for (uint64_t i = 0; i < 8; i++) {
		auto m = Msg(i);
		ASSERT_EQ(0, mrb_write(&ring_, m.data(), m.size()));
	}
	int took[2], go[2];
	ASSERT_EQ(0, pipe(took));
	ASSERT_EQ(0, pipe(go));
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct mrb_ring c = {};
		if (mrb_worker_join(&c, path_.c_str(), "frozen", &opts) != 0)
			_exit(2);
		uint8_t buf[256];
		size_t lens[8];
		int64_t n = mrb_read_many(&c, buf, sizeof(buf), lens, 3);
		char byte = static_cast<char>(n);
		if (write(took[1], &byte, 1) != 1)
			_exit(3);
		if (read(go[0], &byte, 1) != 1)
			_exit(4);
		_exit(mrb_worker_ack(&c) == MRB_ESTALE ? 0 : 5);
	}
	char byte;
	ASSERT_EQ(1, read(took[0], &byte, 1));
	ASSERT_EQ(3, byte);
	ASSERT_EQ(0, kill(pid, SIGSTOP));
	ASSERT_EQ(1, write(go[1], &byte, 1)); // it reads this only once resumed
	std::vector<uint64_t> got;
	uint8_t buf[64];
	size_t len;
	// The other worker keeps going, then (after the timeout, at-least-once)
	// gets the frozen worker's three.
	for (;;) {
		int rc = mrb_read_wait(&w, buf, sizeof(buf), &len, 400000000);
		if (rc == MRB_ETIMEDOUT)
			break;
		ASSERT_EQ(0, rc);
		uint64_t key;
		memcpy(&key, buf, 8);
		got.push_back(key);
	}
	ASSERT_EQ(0, mrb_worker_ack(&w));
	if (policy == MRB_AT_LEAST_ONCE)
		EXPECT_EQ((std::vector<uint64_t>{3, 4, 5, 6, 7, 0, 1, 2}), got);
	else
		EXPECT_EQ((std::vector<uint64_t>{3, 4, 5, 6, 7}), got);
	ASSERT_EQ(0, kill(pid, SIGCONT));
	int status = 0;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
	struct mrb_group_info g;
	ASSERT_EQ(1, mrb_worker_groups(&ring_, &g, 1));
	EXPECT_EQ(policy == MRB_AT_LEAST_ONCE ? 3u : 0u, g.redelivered);
	EXPECT_EQ(policy == MRB_AT_MOST_ONCE ? 3u : 0u, g.dropped);
	EXPECT_EQ(1u, g.stale_releases);
	EXPECT_EQ(policy == MRB_AT_LEAST_ONCE ? 8u : 5u, g.messages_done);
	struct mrb_stats st;
	ASSERT_EQ(0, mrb_stats(&ring_, &st));
	EXPECT_EQ(8u * 48, st.consumer_position);
	mrb_close(&w);
	close(took[0]);
	close(took[1]);
	close(go[0]);
	close(go[1]);
}

INSTANTIATE_TEST_SUITE_P(Policies, FrozenWorker,
                         ::testing::Values(MRB_AT_LEAST_ONCE, MRB_AT_MOST_ONCE));

} // namespace
