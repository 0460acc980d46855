/* SPDX-License-Identifier: MIT */
/*
 * Description: a consumer blocked behind an unfinished claim does not spin
 * (issue 11, item 7). With 48 MiB of committed messages behind a claim of
 * a stopped (live) writer in a 64 MiB ring, a consumer blocked in
 * mrb_read_wait for 2 s uses under 5% of a core (getrusage): its liveness
 * checks, every 10 ms, look at the announcing lanes, not at the ring between
 * its position and the producer's. Format 1 rescanned that whole span on
 * every check (a full core on a 1 GiB ring). Once the writer is killed the
 * consumer moves on within the same bound.
 */
#include <sys/resource.h>

#include "ring_bytes.h"
#include "rtest.h"

static double cpu_seconds(void)
{
	struct rusage ru;
	CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(void)
{
	rtest_watchdog(90);
	const char *path = rtest_path("ring");
	struct mrb_ring consumer;
	rtest_create(&consumer, path, 64 * 1024 * 1024);

	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t writer = fork();
	CHECK(writer >= 0);
	if (writer == 0) {
		struct mrb_ring w;
		CHECK_RC(mrb_open(&w, path, 0), 0);
		CHECK_RC(mrb_write(&w, "w", 1), 0);
		ring_claim_without_header(&w, 0, 64);
		rtest_send(ready[1], 's');
		for (;;)
			pause();
	}
	CHECK(rtest_recv(ready[0]) == 's');
	CHECK(kill(writer, SIGSTOP) == 0);
	static uint8_t msg[4000];
	for (int i = 0; i < 12 * 1024; i++) /* ~48 MiB behind the claim */
		CHECK_RC(mrb_write(&consumer, msg, sizeof(msg)), 0);

	char buf[4096];
	size_t len;
	CHECK_RC(mrb_read(&consumer, buf, sizeof(buf), &len), 0); /* "w" */
	double before = cpu_seconds();
	int64_t start = rtest_now_ns();
	CHECK_RC(mrb_read_wait(&consumer, buf, sizeof(buf), &len, 2LL * 1000000000), MRB_ETIMEDOUT);
	double wall = (double)(rtest_now_ns() - start) / 1e9;
	double used = cpu_seconds() - before;
	printf("blocked 2 s behind a stopped writer's claim: %.1f%% of a core\n",
	       100.0 * used / wall);
	if (used > 0.05 * wall)
		FAIL("the blocked consumer used %.3f s of CPU in %.3f s", used, wall);

	rtest_kill(writer);
	CHECK_RC(mrb_read_wait(&consumer, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
	CHECK_EQ_U64(len, sizeof(msg));
	struct mrb_stats st;
	CHECK_RC(mrb_stats(&consumer, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 1);
	CHECK_RC(mrb_close(&consumer), 0);
	return 0;
}
