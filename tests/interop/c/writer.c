/* SPDX-License-Identifier: MIT */
/* Interop writer (C): sends a scenario's messages; see docs/INTEROP.md. */
#include <stdio.h>
#include <stdlib.h>

#include "mrb/mrb.h"
#include "scenario.h"

static int write_all(struct mrb_ring *ring, const struct scenario *s,
                     const struct interop_args *args, uint8_t *buf)
{
	uint64_t bytes = 0;
	if (s->kind == SCENARIO_TAGGED && args->barrier != NULL)
		barrier_wait(args->barrier, args->producer);
	for (uint64_t i = 0; i < s->count; i++) {
		size_t len = s->kind == SCENARIO_STREAM ? stream_message(s, i, buf)
		                                        : tagged_message(s, args->producer, i, buf);
		int rc = mrb_write_wait(ring, buf, len, INTEROP_TIMEOUT_NS);
		if (rc != 0) {
			fprintf(stderr, "c writer: %s: message %llu (%zu bytes): %s\n", s->name,
			        (unsigned long long)i, len, mrb_strerror(rc));
			return 1;
		}
		bytes += len;
	}
	printf("c writer: %s: %llu messages, %llu bytes\n", s->name, (unsigned long long)s->count,
	       (unsigned long long)bytes);
	return 0;
}

int main(int argc, char **argv)
{
	struct interop_args args;
	struct scenario s;
	interop_parse_args(argc, argv, &args);
	if (scenario_load(args.spec, args.scenario, &s) != 0)
		return 2;
	struct mrb_ring ring;
	int rc = mrb_create(&ring, args.path, s.capacity, NULL);
	if (rc != 0) {
		fprintf(stderr, "c writer: create %s: %s\n", args.path, mrb_strerror(rc));
		return 2;
	}
	uint8_t *buf = malloc(scenario_max_message(&s));
	if (buf == NULL)
		return 2;
	int status = write_all(&ring, &s, &args, buf);
	free(buf);
	mrb_close(&ring);
	return status;
}
