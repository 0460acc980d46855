/* SPDX-License-Identifier: MIT */
/* A program in another Bazel workspace, depending on
 * @mmap_ringbuffer//core:mrb. Round-trips messages through a ring at argv[1]
 * and checks every byte. */
#include <stdio.h>
#include <string.h>

#include "mrb/mrb.h"

#define MESSAGES 1000

int main(int argc, char **argv)
{
	struct mrb_ring ring;
	struct mrb_create_options opts = {MRB_CREATE_REMOVE, 0600};
	char msg[64], got[64];
	size_t len;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s RING_PATH\n", argv[0]);
		return 2;
	}
	rc = mrb_create(&ring, argv[1], 4096, &opts);
	if (rc != 0) {
		fprintf(stderr, "mrb_create: %s\n", mrb_strerror(rc));
		return 1;
	}
	for (int i = 0; i < MESSAGES; i++) {
		int n = snprintf(msg, sizeof(msg), "message %d", i);

		rc = mrb_write(&ring, msg, (size_t)n);
		if (rc == 0)
			rc = mrb_read(&ring, got, sizeof(got), &len);
		if (rc != 0) {
			fprintf(stderr, "message %d: %s\n", i, mrb_strerror(rc));
			return 1;
		}
		if (len != (size_t)n || memcmp(got, msg, len) != 0) {
			fprintf(stderr, "message %d: wrong bytes\n", i);
			return 1;
		}
	}
	printf("ok: %d messages through @mmap_ringbuffer//core:mrb\n", MESSAGES);
	return mrb_close(&ring) == 0 ? 0 : 1;
}
