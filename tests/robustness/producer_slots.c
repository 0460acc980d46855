/* SPDX-License-Identifier: MIT */
/*
 * Description: producer slots (issue 11, item 5). Every writing handle owns
 * one of 128 slots, released at close: more than 16 producer processes
 * write at once and are all told apart; the 129th live writing handle gets
 * MRB_ENOSLOT (explicit, nothing shared or lost) until one closes; a dead
 * process's slot is taken over, but only once nothing in the ring still
 * needs its announcement (a dead claim ahead of the consumer keeps it).
 */
#include <stdlib.h>

#include "ring_bytes.h"
#include "rtest.h"

#define SLOTS 128

int main(void)
{
	rtest_watchdog(120);
	const char *path = rtest_path("ring");
	struct mrb_ring consumer;
	rtest_create(&consumer, path, 64 * 1024);
	char buf[64];
	size_t len;
	struct mrb_stats st;

	/* 1. Twenty producer processes at once, each its own slot. */
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t kids[20];
	for (int i = 0; i < 20; i++) {
		kids[i] = fork();
		CHECK(kids[i] >= 0);
		if (kids[i] == 0) {
			close(go[1]);
			struct mrb_ring w;
			CHECK_RC(mrb_open(&w, path, 0), 0);
			char msg[16];
			int n = snprintf(msg, sizeof(msg), "p%d", i);
			CHECK_RC(mrb_write(&w, msg, (size_t)n), 0);
			char c;
			CHECK(read(go[0], &c, 1) == 0); /* until the parent lets go */
			_exit(mrb_close(&w) == 0 ? 0 : 1);
		}
	}
	for (int got = 0; got < 20; got++)
		CHECK_RC(mrb_read_wait(&consumer, buf, sizeof(buf), &len, 30LL * 1000000000), 0);
	CHECK_RC(mrb_stats(&consumer, &st), 0);
	CHECK_EQ_U64(st.producers, 20);
	CHECK_EQ_U64(st.producers_alive, 20);
	close(go[0]);
	close(go[1]);
	for (int i = 0; i < 20; i++)
		rtest_expect_exit0(kids[i], "producer");
	CHECK_RC(mrb_stats(&consumer, &st), 0);
	CHECK_EQ_U64(st.producers, 0); /* all released at close */

	/* 2. 128 writing handles; the 129th gets MRB_ENOSLOT until one closes.
	 * The consumer handle writes too (slot 0 of them). */
	struct mrb_ring *w = calloc(SLOTS, sizeof(*w));
	CHECK(w != NULL);
	CHECK_RC(mrb_write(&consumer, "c", 1), 0);
	for (int i = 0; i < SLOTS - 1; i++) {
		CHECK_RC(mrb_open(&w[i], path, 0), 0);
		CHECK_RC(mrb_write(&w[i], "x", 1), 0);
	}
	struct mrb_ring extra;
	CHECK_RC(mrb_open(&extra, path, 0), 0);
	CHECK_RC(mrb_write(&extra, "y", 1), MRB_ENOSLOT);
	struct mrb_reservation res;
	CHECK_RC(mrb_reserve(&extra, 1, &res), MRB_ENOSLOT);
	CHECK_RC(mrb_close(&w[5]), 0);
	CHECK_RC(mrb_write(&extra, "y", 1), 0);
	for (int got = 0; got < SLOTS + 1; got++)
		CHECK_RC(mrb_read(&consumer, buf, sizeof(buf), &len), 0);

	/* 3. A dead process's slot is taken over, once its evidence is
	 * settled: here it died inside a claim, ahead of the consumer. */
	CHECK_RC(mrb_close(&extra), 0);
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t dead = fork();
	CHECK(dead >= 0);
	if (dead == 0) {
		struct mrb_ring d;
		CHECK_RC(mrb_open(&d, path, 0), 0);
		CHECK_RC(mrb_write(&d, "d", 1), 0);
		ring_claim_without_header(&d, 0, 64);
		rtest_send(ready[1], 'c');
		for (;;)
			pause();
	}
	CHECK(rtest_recv(ready[0]) == 'c');
	rtest_kill(dead); /* every slot now owned: 127 live, 1 dead */
	CHECK_RC(mrb_open(&extra, path, 0), 0);
	CHECK_RC(mrb_write(&extra, "z", 1), MRB_ENOSLOT);         /* its claim is ahead */
	CHECK_RC(mrb_read(&consumer, buf, sizeof(buf), &len), 0); /* "d" */
	CHECK(len == 1 && buf[0] == 'd');
	CHECK_RC(mrb_read_wait(&consumer, buf, sizeof(buf), &len, 200 * 1000000LL),
	         MRB_ETIMEDOUT); /* the dead claim is recovered meanwhile */
	CHECK_RC(mrb_stats(&consumer, &st), 0);
	CHECK_EQ_U64(st.recovered_records, 1);
	CHECK_RC(mrb_write(&extra, "z", 1), 0); /* now its slot is free to take */
	CHECK_RC(mrb_read(&consumer, buf, sizeof(buf), &len), 0);
	CHECK(len == 1 && buf[0] == 'z');

	for (int i = 0; i < SLOTS - 1; i++)
		if (i != 5)
			CHECK_RC(mrb_close(&w[i]), 0);
	CHECK_RC(mrb_close(&extra), 0);
	CHECK_RC(mrb_close(&consumer), 0);
	free(w);
	return 0;
}
