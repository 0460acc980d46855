/* SPDX-License-Identifier: MIT */
/*
 * Description: create never adopts a ring file it did not make for this
 * user: one owned by another user, or granting more than the requested mode,
 * is refused with MRB_EFOREIGN and left untouched; names up to NAME_MAX
 * bytes work (the temporary name is short); issue 11, items 8 and 11.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rtest.h"

static void make_ring(const char *path, mode_t mode)
{
	struct mrb_ring ring;
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE, .mode = mode};
	CHECK_RC(mrb_create(&ring, path, 4096, &opts), 0);
	CHECK_RC(mrb_write(&ring, "planted", 7), 0);
	CHECK_RC(mrb_close(&ring), 0);
}

int main(void)
{
	rtest_watchdog(60);
	const char *path = rtest_path("planted");
	struct mrb_ring ring;
	struct mrb_create_options opts = {.mode = 0600};

	/* A valid ring, more permissive than asked for: refused. */
	make_ring(path, 0666);
	CHECK_RC(mrb_create(&ring, path, 4096, &opts), MRB_EFOREIGN);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0666);
	/* Asking for what it grants, it is ours: adopted with its messages. */
	opts.mode = 0666;
	CHECK_RC(mrb_create(&ring, path, 4096, &opts), 0);
	char buf[16];
	size_t len;
	CHECK_RC(mrb_read(&ring, buf, sizeof(buf), &len), 0);
	CHECK(len == 7 && memcmp(buf, "planted", 7) == 0);
	CHECK_RC(mrb_close(&ring), 0);

	/* Owned by another user (needs root to plant): refused. */
	make_ring(path, 0600);
	if (chown(path, 65534, 65534) == 0) {
		opts.mode = 0600;
		CHECK_RC(mrb_create(&ring, path, 4096, &opts), MRB_EFOREIGN);
		CHECK(stat(path, &st) == 0 && st.st_uid == 65534);
	} else {
		/* Not root, or a user namespace without that uid (a sandbox). */
		fprintf(stderr, "cannot chown (%s): the other-owner case is not exercised\n",
		        strerror(errno));
	}

	/* A 255-byte file name: valid for the ring, so create works. */
	char long_path[4096];
	char name[256];
	memset(name, 'n', 255);
	name[255] = '\0';
	snprintf(long_path, sizeof(long_path), "%s/%s", rtest_dir(), name);
	CHECK_RC(mrb_create(&ring, long_path, 4096, NULL), 0);
	CHECK_RC(mrb_close(&ring), 0);
	opts = (struct mrb_create_options){.flags = MRB_CREATE_REMOVE};
	CHECK_RC(mrb_create(&ring, long_path, 4096, &opts), 0);
	CHECK_RC(mrb_close(&ring), 0);
	CHECK(unlink(long_path) == 0);
	return 0;
}
