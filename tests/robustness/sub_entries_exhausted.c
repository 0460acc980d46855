/* SPDX-License-Identifier: MIT */
/*
 * Description: every one of a ring's 64 reader entries taken by a process
 * that is then SIGKILLed. While it lives, joining gets MRB_ENOSUB (durable,
 * named or lossy alike). Once it is dead: its unnamed entries are reclaimed
 * by the next join (which succeeds, and the dead ones are gone from the
 * listing); its named entries are kept (their messages wait for them), so a
 * new name still gets MRB_ENOSUB while an old name resumes, and
 * mrb_unsubscribe makes room.
 */
#include <stdbool.h>

#include "rtest.h"

static const char *path;

/* Takes every entry (named n0..n63 or unnamed), says so, then waits. */
static pid_t hog(bool named)
{
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		static struct mrb_ring subs[MRB_MAX_SUBSCRIBERS];
		for (int i = 0; i < MRB_MAX_SUBSCRIBERS; i++) {
			char name[16];
			snprintf(name, sizeof(name), "n%d", i);
			struct mrb_subscribe_options opts = {0, named ? name : NULL, 0};
			CHECK_RC(mrb_subscribe(&subs[i], path, &opts), 0);
		}
		struct mrb_ring extra;
		CHECK_RC(mrb_subscribe(&extra, path, NULL), MRB_ENOSUB);
		rtest_send(p[1], 'f');
		for (;;)
			pause();
	}
	close(p[1]);
	CHECK(rtest_recv(p[0]) == 'f');
	close(p[0]);
	return pid;
}

static int join(const char *name, unsigned flags)
{
	struct mrb_ring sub;
	struct mrb_subscribe_options opts = {flags, name, 0};
	int rc = mrb_subscribe(&sub, path, &opts);
	if (rc == 0)
		CHECK_RC(mrb_close(&sub), 0);
	return rc;
}

static void fresh(struct mrb_ring *ring)
{
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(ring, path, 4096, &copts), 0);
}

int main(void)
{
	rtest_watchdog(60);
	path = rtest_path("ring");
	struct mrb_ring ring;

	/* Unnamed: reclaimed from the dead owner. */
	fresh(&ring);
	pid_t pid = hog(false);
	CHECK_RC(join(NULL, 0), MRB_ENOSUB);
	CHECK_RC(join("new", 0), MRB_ENOSUB);
	CHECK_RC(join(NULL, MRB_SUBSCRIBE_LOSSY), MRB_ENOSUB);
	CHECK_RC(mrb_subscribers(&ring, NULL, 0), MRB_MAX_SUBSCRIBERS);
	rtest_kill(pid);
	struct mrb_ring sub;
	CHECK_RC(mrb_subscribe(&sub, path, NULL), 0);
	/* The join reclaimed every dead entry, not only the one it took. */
	CHECK_RC(mrb_subscribers(&ring, NULL, 0), 1);
	CHECK_RC(mrb_close(&sub), 0);
	CHECK_RC(mrb_subscribers(&ring, NULL, 0), 0);
	CHECK_RC(mrb_close(&ring), 0);

	/* Named: kept for their owners; a new name waits for room. */
	fresh(&ring);
	pid = hog(true);
	CHECK_RC(join("new", 0), MRB_ENOSUB);
	CHECK_RC(join("n5", 0), MRB_ENAMEBUSY);
	rtest_kill(pid);
	CHECK_RC(join("new", 0), MRB_ENOSUB);
	CHECK_RC(join(NULL, MRB_SUBSCRIBE_LOSSY), MRB_ENOSUB);
	CHECK_RC(join("n5", 0), 0); /* resumes its kept entry */
	struct mrb_subscriber_info list[MRB_MAX_SUBSCRIBERS];
	CHECK_RC(mrb_subscribers(&ring, list, MRB_MAX_SUBSCRIBERS), MRB_MAX_SUBSCRIBERS);
	for (int i = 0; i < MRB_MAX_SUBSCRIBERS; i++)
		CHECK_EQ_U64(list[i].state, MRB_SUBSCRIBER_DETACHED);
	CHECK_RC(mrb_unsubscribe(path, "n7"), 0);
	CHECK_RC(join("new", 0), 0);
	CHECK_RC(join("other", 0), MRB_ENOSUB); /* "new" kept the freed entry */
	CHECK_RC(mrb_close(&ring), 0);
	printf("sub_entries_exhausted: ok\n");
	return 0;
}
