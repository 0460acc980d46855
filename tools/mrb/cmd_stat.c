/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"

static const char stat_help[] =
    "Usage: mrb stat PATH [--json]\n"
    "\n"
    "Shows the ring's format version, capacity, maximum message size, producer\n"
    "and consumer positions, fill level, counters and the liveness of its\n"
    "consumer and producers. Consumes nothing and never attaches as consumer,\n"
    "so it is safe while other processes use the ring. The values are read\n"
    "one by one from live memory, not as one atomic snapshot.\n"
    "\n"
    "Options:\n"
    "  -j, --json   print one JSON object (keys as in docs/CLI.md)\n"
    "  -h, --help   show this help\n"
    "\n"
    "Exit codes: 0 ok, 2 usage, 3 not found or I/O error, 4 not a ring,\n"
    "unsupported version or corrupt.\n";

static double fill_percent(const struct mrb_stats *st)
{
	return st->capacity ? 100.0 * (double)st->used_bytes / (double)st->capacity : 0.0;
}

/* UTC timestamp as ISO 8601, or "unknown" when the header holds none. */
static void format_time(uint64_t unix_ns, char *buf, size_t size)
{
	time_t seconds = (time_t)(unix_ns / 1000000000u);
	struct tm tm;

	if (unix_ns == 0 || gmtime_r(&seconds, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "unknown");
}

static void put_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void print_json(const char *path, const struct mrb_stats *st)
{
	char created[32];

	format_time(st->created_unix_ns, created, sizeof(created));
	printf("{\"path\": ");
	put_json_string(stdout, path);
	printf(", \"format_version\": %u", st->format_version);
	printf(", \"capacity\": %llu", (unsigned long long)st->capacity);
	printf(", \"max_message_size\": %llu", (unsigned long long)st->max_message_size);
	printf(", \"producer_position\": %llu", (unsigned long long)st->producer_position);
	printf(", \"consumer_position\": %llu", (unsigned long long)st->consumer_position);
	printf(", \"used_bytes\": %llu", (unsigned long long)st->used_bytes);
	printf(", \"fill_percent\": %.2f", fill_percent(st));
	printf(", \"messages_written\": %llu", (unsigned long long)st->messages_written);
	printf(", \"bytes_written\": %llu", (unsigned long long)st->bytes_written);
	printf(", \"messages_read\": %llu", (unsigned long long)st->messages_read);
	printf(", \"bytes_read\": %llu", (unsigned long long)st->bytes_read);
	printf(", \"full_count\": %llu", (unsigned long long)st->full_count);
	printf(", \"recovered_records\": %llu", (unsigned long long)st->recovered_records);
	printf(", \"recovered_bytes\": %llu", (unsigned long long)st->recovered_bytes);
	printf(", \"consumer_pid\": %d", (int)st->consumer_pid);
	printf(", \"consumer_alive\": %s", st->consumer_alive ? "true" : "false");
	printf(", \"producers\": %u", st->producers);
	printf(", \"producers_alive\": %u", st->producers_alive);
	printf(", \"creator_pid\": %u", st->creator_pid);
	printf(", \"created_unix_ns\": %llu", (unsigned long long)st->created_unix_ns);
	printf(", \"created_utc\": \"%s\"}\n", created);
}

static void print_text(const char *path, const struct mrb_stats *st)
{
	char created[32];

	format_time(st->created_unix_ns, created, sizeof(created));
	printf("ring               %s\n", path);
	printf("format version     %u\n", st->format_version);
	printf("capacity           %llu bytes\n", (unsigned long long)st->capacity);
	printf("max message size   %llu bytes\n", (unsigned long long)st->max_message_size);
	printf("producer position  %llu\n", (unsigned long long)st->producer_position);
	printf("consumer position  %llu\n", (unsigned long long)st->consumer_position);
	printf("used               %llu bytes (%.2f%%)\n", (unsigned long long)st->used_bytes,
	       fill_percent(st));
	printf("written            %llu messages, %llu bytes\n",
	       (unsigned long long)st->messages_written, (unsigned long long)st->bytes_written);
	printf("read               %llu messages, %llu bytes\n",
	       (unsigned long long)st->messages_read, (unsigned long long)st->bytes_read);
	printf("refused as full    %llu writes\n", (unsigned long long)st->full_count);
	printf("recovered          %llu records, %llu bytes\n",
	       (unsigned long long)st->recovered_records, (unsigned long long)st->recovered_bytes);
	if (st->consumer_pid != 0)
		printf("consumer           pid %d (%s)\n", (int)st->consumer_pid,
		       st->consumer_alive ? "alive" : "dead");
	else
		printf("consumer           none\n");
	printf("producers          %u registered, %u alive\n", st->producers, st->producers_alive);
	printf("created            %s by pid %u\n", created, st->creator_pid);
}

int cmd_stat(int argc, char **argv)
{
	static const struct option options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct mrb_ring ring;
	struct mrb_stats st;
	int json = 0;
	int opt, rc;

	if (cli_wants_help(argc, argv)) {
		fputs(stat_help, stdout);
		return CLI_EXIT_OK;
	}
	cli_getopt_begin(argv, "mrb stat");
	while ((opt = getopt_long(argc, argv, "jh", options, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage_error("stat", "bad arguments");
		json = 1;
	}
	if (optind != argc - 1)
		return cli_usage_error("stat", "expected exactly one PATH");

	rc = mrb_open(&ring, argv[optind], MRB_OPEN_READONLY);
	if (rc != 0)
		return cli_fail("stat", argv[optind], rc);
	rc = mrb_stats(&ring, &st);
	mrb_close(&ring);
	if (rc != 0)
		return cli_fail("stat", argv[optind], rc);
	if (json)
		print_json(argv[optind], &st);
	else
		print_text(argv[optind], &st);
	return CLI_EXIT_OK;
}
