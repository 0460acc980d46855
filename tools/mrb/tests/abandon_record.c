/* SPDX-License-Identifier: MIT */
/* Test helper: reserves space for a message and never commits it, as a
 * producer that crashes mid-write would.
 *   abandon_record PATH LEN         reserve, then exit without committing
 *   abandon_record PATH LEN --hold  reserve, print "reserved", wait to be
 *                                   killed (a live but stuck producer) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mrb/mrb.h"

int main(int argc, char **argv)
{
	struct mrb_ring ring;
	struct mrb_reservation res;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: %s PATH LEN [--hold]\n", argv[0]);
		return 2;
	}
	rc = mrb_open(&ring, argv[1], 0);
	if (rc == 0)
		rc = mrb_reserve(&ring, (size_t)strtoul(argv[2], NULL, 10), &res);
	if (rc != 0) {
		fprintf(stderr, "abandon_record: %s\n", mrb_strerror(rc));
		return 1;
	}
	memset(res.data, 'A', res.len / 2);
	if (argc > 3 && strcmp(argv[3], "--hold") == 0) {
		printf("reserved\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	_exit(0);
}
