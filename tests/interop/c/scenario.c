/* SPDX-License-Identifier: MIT */
#include "scenario.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(const char *prog)
{
	fprintf(stderr,
	        "usage: %s PATH --scenario NAME --spec FILE [--producer ID] [--producers N] "
	        "[--barrier DIR] [--from I] [--to J]\n",
	        prog);
	exit(2);
}

static uint64_t parse_number(const char *prog, const char *text, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno != 0 || *text < '0' || *text > '9' || *end != '\0' || value > max)
		usage(prog);
	return value;
}

void interop_parse_args(int argc, char **argv, struct interop_args *args)
{
	memset(args, 0, sizeof(*args));
	args->producers = 1;
	args->to = UINT64_MAX;
	const char *spec_env = getenv("MRB_INTEROP_SPEC");
	args->spec = spec_env;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		if (arg[0] != '-') {
			if (args->path != NULL)
				usage(argv[0]);
			args->path = arg;
			continue;
		}
		if (value == NULL)
			usage(argv[0]);
		if (strcmp(arg, "--scenario") == 0)
			args->scenario = value;
		else if (strcmp(arg, "--spec") == 0)
			args->spec = value;
		else if (strcmp(arg, "--producer") == 0)
			args->producer = (unsigned)parse_number(argv[0], value, 255);
		else if (strcmp(arg, "--producers") == 0)
			args->producers = (unsigned)parse_number(argv[0], value, 255);
		else if (strcmp(arg, "--from") == 0)
			args->from = parse_number(argv[0], value, UINT64_MAX - 1);
		else if (strcmp(arg, "--to") == 0)
			args->to = parse_number(argv[0], value, UINT64_MAX - 1);
		else if (strcmp(arg, "--barrier") == 0)
			args->barrier = value;
		else
			usage(argv[0]);
		i++;
	}
	if (args->path == NULL || args->scenario == NULL || args->spec == NULL ||
	    args->producers == 0)
		usage(argv[0]);
}

int scenario_load(const char *spec_path, const char *name, struct scenario *out)
{
	FILE *spec = fopen(spec_path, "r");
	if (spec == NULL) {
		fprintf(stderr, "cannot open spec %s: %s\n", spec_path, strerror(errno));
		return -1;
	}
	char line[512];
	int found = -1;
	while (found != 0 && fgets(line, sizeof(line), spec) != NULL) {
		char line_name[64], kind[16];
		unsigned long long capacity, count, seed, base, mult, mod;
		if (line[0] == '#' ||
		    sscanf(line, "%63s %15s %llu %llu %llu %llu %llu %llu", line_name, kind,
		           &capacity, &count, &seed, &base, &mult, &mod) != 8 ||
		    strcmp(line_name, name) != 0)
			continue;
		if (mod == 0 || (strcmp(kind, "stream") != 0 && strcmp(kind, "stored") != 0 &&
		                 strcmp(kind, "tagged") != 0)) {
			fprintf(stderr, "bad spec line for %s\n", name);
			break;
		}
		snprintf(out->name, sizeof(out->name), "%s", line_name);
		/* A stored scenario differs only in how the driver runs it. */
		out->kind = strcmp(kind, "tagged") == 0 ? SCENARIO_TAGGED : SCENARIO_STREAM;
		out->capacity = capacity;
		out->count = count;
		out->seed = seed;
		out->size_base = base;
		out->size_mult = mult;
		out->size_mod = mod;
		found = 0;
	}
	fclose(spec);
	if (found != 0)
		fprintf(stderr, "no scenario %s in %s\n", name, spec_path);
	return found;
}

size_t scenario_length(const struct scenario *s, uint64_t index)
{
	return (size_t)(s->size_base + (index * s->size_mult) % s->size_mod);
}

size_t scenario_max_message(const struct scenario *s)
{
	size_t body = (size_t)(s->size_base + s->size_mod - 1);
	return s->kind == SCENARIO_TAGGED ? body + TAGGED_OVERHEAD : body;
}

size_t stream_message(const struct scenario *s, uint64_t index, uint8_t *buf)
{
	size_t len = scenario_length(s, index);
	uint64_t start = s->seed + 7 * index;
	for (size_t j = 0; j < len; j++)
		buf[j] = (uint8_t)(start + j);
	return len;
}

static void put_u32le(uint8_t *p, uint32_t v)
{
	for (int k = 0; k < 4; k++)
		p[k] = (uint8_t)(v >> (8 * k));
}

size_t tagged_message(const struct scenario *s, unsigned producer, uint64_t seq, uint8_t *buf)
{
	size_t body = scenario_length(s, seq);
	buf[0] = (uint8_t)producer;
	put_u32le(buf + 1, (uint32_t)seq);
	uint64_t start = s->seed + 7 * seq + 31 * (uint64_t)producer;
	for (size_t j = 0; j < body; j++)
		buf[5 + j] = (uint8_t)(start + j);
	put_u32le(buf + 5 + body, crc32_ieee(buf, 5 + body));
	return body + TAGGED_OVERHEAD;
}

uint32_t crc32_ieee(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t crc = 0xffffffffu;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static int file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

void barrier_wait(const char *dir, unsigned producer)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/ready.%u", dir, producer);
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	if (fd < 0) {
		fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
		exit(2);
	}
	close(fd);
	snprintf(path, sizeof(path), "%s/go", dir);
	const struct timespec tick = {0, 1000 * 1000};
	while (!file_exists(path))
		nanosleep(&tick, NULL);
}
