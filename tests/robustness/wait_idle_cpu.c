/* SPDX-License-Identifier: MIT */
/*
 * Description: a consumer blocked in mrb_read_wait sleeps in the kernel
 * rather than spinning: over about 2 s of waiting on an empty ring, the
 * child's user + system CPU time (getrusage) stays under 5% of the wall
 * time. The bound is deliberately loose; a busy-wait would use ~100%.
 */
#include <sys/resource.h>

#include "rtest.h"

static double seconds(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(void)
{
	rtest_watchdog(45);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 4096);
	CHECK_RC(mrb_close(&ring), 0);
	int result[2];
	CHECK(pipe(result) == 0);
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		struct mrb_ring r;
		CHECK_RC(mrb_open(&r, path, 0), 0);
		struct rusage before, after;
		CHECK(getrusage(RUSAGE_SELF, &before) == 0);
		int64_t start = rtest_now_ns();
		uint8_t buf[16];
		size_t len;
		CHECK_RC(mrb_read_wait(&r, buf, sizeof(buf), &len, 2LL * 1000000000),
		         MRB_ETIMEDOUT);
		double wall = (double)(rtest_now_ns() - start) / 1e9;
		CHECK(getrusage(RUSAGE_SELF, &after) == 0);
		double cpu = seconds(after.ru_utime) - seconds(before.ru_utime) +
		             seconds(after.ru_stime) - seconds(before.ru_stime);
		char line[128];
		int n = snprintf(line, sizeof(line), "%.6f %.6f", wall, cpu);
		CHECK(write(result[1], line, (size_t)n) == n);
		_exit(0);
	}
	close(result[1]);
	rtest_expect_exit0(child, "blocked consumer");
	char line[128] = {0};
	CHECK(read(result[0], line, sizeof(line) - 1) > 0);
	double wall, cpu;
	CHECK(sscanf(line, "%lf %lf", &wall, &cpu) == 2);
	printf("blocked %.3f s, CPU %.4f s (%.2f%%)\n", wall, cpu, 100.0 * cpu / wall);
	CHECK(wall >= 1.9);
	if (cpu > 0.05 * wall)
		FAIL("an idle blocked consumer used %.3f s CPU over %.3f s", cpu, wall);
	return 0;
}
