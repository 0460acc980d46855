/* SPDX-License-Identifier: MIT */
/*
 * Writes valid rings in various states into a directory, as the seed
 * corpus of the fuzzer (fuzz_ring.c): empty, with messages, wrapped with a
 * padding record and partly consumed, with an aborted and an unfinished
 * reservation. Capacity 256: each seed is 65792 bytes (format 2).
 * Usage: gen_seeds DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mrb/mrb.h"

static void die(const char *what, int rc)
{
	fprintf(stderr, "gen_seeds: %s: %s\n", what, mrb_strerror(rc));
	exit(1);
}

#define TRY(expr)                                                                                  \
	do {                                                                                       \
		int64_t rc_ = (expr);                                                              \
		if (rc_ < 0)                                                                       \
			die(#expr, (int)rc_);                                                      \
	} while (0)

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_seeds DIR\n");
		return 2;
	}
	char path[4096];
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE};
	uint8_t msg[128], buf[256];
	size_t len;
	for (int kind = 0; kind < 4; kind++) {
		snprintf(path, sizeof(path), "%s/seed-%d.ring", argv[1], kind);
		struct mrb_ring ring;
		TRY(mrb_create(&ring, path, 256, &opts));
		for (size_t i = 0; i < sizeof(msg); i++)
			msg[i] = (uint8_t)(i * 7 + (size_t)kind);
		if (kind == 1) {
			TRY(mrb_write(&ring, msg, 5));
			TRY(mrb_write(&ring, msg, 40));
			TRY(mrb_write(&ring, msg, 100));
		} else if (kind == 2) {
			for (int i = 0; i < 3; i++) {
				TRY(mrb_write(&ring, msg, 60));
				TRY(mrb_read(&ring, buf, sizeof(buf), &len));
			}
			TRY(mrb_write(&ring, msg, 100)); /* pads at the wrap point */
			TRY(mrb_write(&ring, msg, 20));
		} else if (kind == 3) {
			struct mrb_reservation a, b;
			TRY(mrb_write(&ring, msg, 12));
			TRY(mrb_reserve(&ring, 30, &a));
			TRY(mrb_abort(&ring, &a));
			TRY(mrb_reserve(&ring, 50, &b)); /* left unfinished */
			TRY(mrb_write(&ring, msg, 9));
		}
		TRY(mrb_close(&ring));
	}
	return 0;
}
