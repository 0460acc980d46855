/* SPDX-License-Identifier: MIT */
/*
 * The interop scenarios (tests/interop/scenarios.txt, docs/INTEROP.md): which
 * messages a writer sends and a reader expects, computed from the scenario and
 * the message index alone so that every language agrees without sharing code.
 */
#ifndef INTEROP_SCENARIO_H
#define INTEROP_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

enum scenario_kind {
	SCENARIO_STREAM, /* one writer, exact bytes ("stream" and "stored") */
	SCENARIO_TAGGED, /* many producers, sequence numbers and checksums */
};

struct scenario {
	char name[64];
	enum scenario_kind kind;
	uint64_t capacity;
	uint64_t count;
	uint64_t seed;
	uint64_t size_base;
	uint64_t size_mult;
	uint64_t size_mod;
};

/* Bytes a tagged message adds around its body: producer, sequence, crc. */
#define TAGGED_OVERHEAD 9u

/* Command line shared by the C writer and reader:
 *   PROG PATH --scenario NAME --spec FILE [--producer ID] [--producers N]
 *        [--barrier DIR] [--from I] [--to J]
 * A reader given --from/--to reads only messages I..J-1 of a stream scenario
 * (the ring's consumer position must be at I), so that readers in several
 * processes can take turns. */
struct interop_args {
	const char *path;
	const char *scenario;
	const char *spec;
	unsigned producer;
	unsigned producers;
	const char *barrier;
	uint64_t from;
	uint64_t to; /* UINT64_MAX: the scenario's count */
};

/* Parses argv or exits with status 2 and a usage message. */
void interop_parse_args(int argc, char **argv, struct interop_args *args);

/* Finds `name` in the spec file; 0, or -1 after printing why. */
int scenario_load(const char *spec_path, const char *name, struct scenario *out);

/* length(i) of the formula. */
size_t scenario_length(const struct scenario *s, uint64_t index);

/* The largest message the scenario produces (upper bound), for buffers. */
size_t scenario_max_message(const struct scenario *s);

/* Writes message `index` of a stream scenario into buf; returns its length. */
size_t stream_message(const struct scenario *s, uint64_t index, uint8_t *buf);

/* Writes message `seq` of `producer` in a tagged scenario; returns its length. */
size_t tagged_message(const struct scenario *s, unsigned producer, uint64_t seq, uint8_t *buf);

/* CRC-32 (IEEE 802.3, as zlib.crc32 and Go's crc32.ChecksumIEEE). */
uint32_t crc32_ieee(const void *data, size_t len);

/* Producer side of the start barrier: announce readiness, wait for "go". */
void barrier_wait(const char *dir, unsigned producer);

/* Blocking calls give up after this long: a dead partner fails the test
 * instead of hanging it. */
#define INTEROP_TIMEOUT_NS (30ll * 1000 * 1000 * 1000)

#endif
