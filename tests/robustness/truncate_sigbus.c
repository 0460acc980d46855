/* SPDX-License-Identifier: MIT */
/*
 * Description: the documented behaviour when another process truncates a
 * ring file under a live mapping (docs/ROBUSTNESS.md, "Truncation"): the
 * library does not catch it, so the next access to a page past the new end
 * of file raises SIGBUS in the process touching it (here a reader, which
 * dies by SIGBUS unless it handles the signal itself, as this one does to
 * report it). What can be prevented is prevented: a ring is never opened
 * with the wrong size (MRB_EFORMAT), so only a truncation after open
 * faults; permissions (0600) keep other users from doing it.
 */
#include <signal.h>

#include "rtest.h"

static void on_sigbus(int sig)
{
	(void)sig;
	_exit(42);
}

int main(void)
{
	rtest_watchdog(45);
	const char *path = rtest_path("ring");
	struct mrb_ring ring;
	rtest_create(&ring, path, 64 * 1024);
	uint8_t msg[1000];
	memset(msg, 3, sizeof(msg));
	/* Messages spread over several pages of the data region. */
	for (int i = 0; i < 40; i++)
		CHECK_RC(mrb_write(&ring, msg, sizeof(msg)), 0);
	CHECK_RC(mrb_close(&ring), 0);

	int ready[2], go[2];
	CHECK(pipe(ready) == 0 && pipe(go) == 0);
	pid_t reader = fork();
	CHECK(reader >= 0);
	if (reader == 0) {
		struct sigaction sa = {.sa_handler = on_sigbus};
		sigemptyset(&sa.sa_mask);
		CHECK(sigaction(SIGBUS, &sa, NULL) == 0);
		struct mrb_ring r;
		CHECK_RC(mrb_open(&r, path, 0), 0);
		uint8_t buf[1000];
		size_t len;
		CHECK_RC(mrb_read(&r, buf, sizeof(buf), &len), 0);
		rtest_send(ready[1], 'r');
		CHECK(rtest_recv(go[0]) == 'g');
		for (int i = 1; i < 40; i++)
			mrb_read(&r, buf, sizeof(buf), &len);
		_exit(0); /* not reached: the reads fault */
	}
	CHECK(rtest_recv(ready[0]) == 'r');
	CHECK(truncate(path, MRB_HEADER_SIZE + 4096) == 0);
	rtest_send(go[1], 'g');
	int status = rtest_wait(reader);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 42)
		FAIL("reader after truncation: status 0x%x, expected SIGBUS", status);

	/* The truncated file is now refused at open, never mapped. */
	CHECK_RC(mrb_open(&ring, path, 0), MRB_EFORMAT);
	return 0;
}
