/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char stat_help[] =
    "Usage: mrb stat PATH [--json]\n"
    "\n"
    "Shows the ring's format version, capacity, maximum message size, producer\n"
    "and consumer positions, fill level, counters and the liveness of its\n"
    "consumer and producers, and which producer, if any, holds the\n"
    "sole-producer lease (claims with a plain store instead of a CAS).\n"
    "Consumes nothing and never attaches as consumer (the file is opened\n"
    "read-only), so it is safe while other processes use the ring. The\n"
    "values are read one by one from live memory, not as one atomic\n"
    "snapshot. The mode is \"queue\" (one consumer) or \"fan-out\"\n"
    "(subscribers only); every subscriber is listed with its pid, liveness,\n"
    "state, policy, position, lag, counters and losses. In a fan-out ring the\n"
    "consumer position is the release position: the slowest durable\n"
    "subscriber's (or worker group's). Every worker group is listed with its\n"
    "policy, hold timeout, claim position, lag and counters, and every worker\n"
    "with its slot, group, pid, liveness and what it holds. Messages read are counted by the "
    "consumer; unread ones\n"
    "are counted by walking the records; \"written\" is their sum (writers\n"
    "keep no count). A record that fails validation is reported as corrupt.\n"
    "\n"
    "Options:\n"
    "  -j, --json   print one JSON object (keys as in docs/CLI.md)\n"
    "  -h, --help   show this help\n"
    "\n"
    "Exit codes: 0 ok, 2 usage, 3 not found or I/O error, 4 not a ring,\n"
    "unsupported version or corrupt (the output is still printed).\n";

/* The unread messages. mrb_stats counts them by walking the records (writers
 * keep no count) and treats a walk that fails validation as zero unread, so
 * stat walks them again with mrb_inspect to tell corruption apart. */
struct unread {
	int corrupt; /* the walk's error code, or 0 */
	uint64_t messages;
	uint64_t bytes;
};

static int visit_nothing(void *ctx, const struct mrb_record_info *rec)
{
	(void)ctx;
	(void)rec;
	return 0;
}

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

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_sequence(const unsigned char *s)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A JSON string. JSON text is Unicode, and a path is any bytes: a byte that
 * is not part of well-formed UTF-8 becomes U+FFFD. */
static void put_json_string(FILE *out, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;

	fputc('"', out);
	while (*s) {
		size_t n = utf8_sequence(s);

		if (n == 0) {
			fputs("\\ufffd", out);
			s++;
		} else if (*s == '"' || *s == '\\') {
			fprintf(out, "\\%c", *s++);
		} else if (*s < 0x20) {
			fprintf(out, "\\u%04x", *s++);
		} else {
			fwrite(s, 1, n, out);
			s += n;
		}
	}
	fputc('"', out);
}

/* The ring's subscribers, read from the reader table. */
struct subscribers {
	int fanout;
	size_t count;
	struct mrb_subscriber_info info[MRB_MAX_SUBSCRIBERS];
};

/* The ring's worker groups and workers. */
struct workers {
	size_t groups;
	struct mrb_group_info group[MRB_MAX_GROUPS];
	size_t count;
	struct mrb_worker_info info[MRB_MAX_WORKERS];
};

static const char *group_policy_name(unsigned policy)
{
	return policy == MRB_AT_MOST_ONCE ? "at-most-once" : "at-least-once";
}

/* The name of the group with index `index`, or NULL. */
static const char *group_name(const struct workers *w, uint32_t index)
{
	for (size_t i = 0; i < w->groups; i++)
		if (w->group[i].index == index)
			return w->group[i].name;
	return NULL;
}

static const char *subscriber_state_name(int32_t state)
{
	switch (state) {
	case MRB_SUBSCRIBER_JOINING:
		return "joining";
	case MRB_SUBSCRIBER_ACTIVE:
		return "active";
	case MRB_SUBSCRIBER_DETACHED:
		return "detached";
	case MRB_SUBSCRIBER_EVICTED:
		return "evicted";
	default:
		return "unknown";
	}
}

static const char *subscriber_policy_name(unsigned flags)
{
	if (flags & MRB_SUBSCRIBE_LOSSY)
		return "lossy";
	if (flags & MRB_SUBSCRIBE_EVICT)
		return "evict";
	return "keep";
}

/* Seconds as the shortest decimal that names them exactly to the
 * nanosecond ("2", "0.25", "1.000000001"). */
static void format_seconds(int64_t ns, char *buf, size_t size)
{
	int len = snprintf(buf, size, "%lld.%09lld", (long long)(ns / 1000000000),
	                   (long long)(ns % 1000000000));

	while (len > 0 && buf[len - 1] == '0')
		buf[--len] = '\0';
	if (len > 0 && buf[len - 1] == '.')
		buf[--len] = '\0';
}

static void print_json_subscriber(const struct mrb_subscriber_info *s)
{
	printf("{\"index\": %u, \"name\": ", s->index);
	put_json_string(stdout, s->name);
	printf(", \"pid\": %d, \"alive\": %s", (int)s->pid, s->alive ? "true" : "false");
	printf(", \"state\": \"%s\"", subscriber_state_name(s->state));
	printf(", \"policy\": \"%s\"", subscriber_policy_name(s->flags));
	if (s->flags & MRB_SUBSCRIBE_EVICT)
		printf(", \"evict_after_ns\": %lld", (long long)s->evict_after_ns);
	else
		printf(", \"evict_after_ns\": null");
	printf(", \"position\": %llu", (unsigned long long)s->position);
	printf(", \"lag_bytes\": %llu", (unsigned long long)s->lag_bytes);
	printf(", \"lag_messages\": %llu", (unsigned long long)s->lag_messages);
	printf(", \"messages_read\": %llu", (unsigned long long)s->messages_read);
	printf(", \"bytes_read\": %llu", (unsigned long long)s->bytes_read);
	printf(", \"lost_bytes\": %llu", (unsigned long long)s->lost_bytes);
	printf(", \"lost_events\": %llu", (unsigned long long)s->lost_events);
	printf(", \"evictions\": %llu}", (unsigned long long)s->evictions);
}

static void print_text_subscriber(const struct mrb_subscriber_info *s)
{
	char seconds[40];

	printf("subscriber %-6u  ", s->index);
	if (s->name[0] != '\0')
		cli_put_escaped(stdout, s->name, strlen(s->name));
	else
		fputs("(unnamed)", stdout);
	if (s->pid != 0)
		printf(": pid %d (%s), %s, ", (int)s->pid, s->alive ? "alive" : "dead",
		       subscriber_state_name(s->state));
	else
		printf(": no process, %s, ", subscriber_state_name(s->state));
	if (s->flags & MRB_SUBSCRIBE_EVICT) {
		format_seconds(s->evict_after_ns, seconds, sizeof(seconds));
		printf("evict after %ss\n", seconds);
	} else {
		printf("%s\n", subscriber_policy_name(s->flags));
	}
	printf("  position         %llu, lag %llu bytes, %llu messages\n",
	       (unsigned long long)s->position, (unsigned long long)s->lag_bytes,
	       (unsigned long long)s->lag_messages);
	printf("  read             %llu messages, %llu bytes\n",
	       (unsigned long long)s->messages_read, (unsigned long long)s->bytes_read);
	printf("  lost             %llu bytes in %llu events, %llu evictions\n",
	       (unsigned long long)s->lost_bytes, (unsigned long long)s->lost_events,
	       (unsigned long long)s->evictions);
}

static void print_json_group(const struct mrb_group_info *g)
{
	printf("{\"index\": %u, \"name\": ", g->index);
	put_json_string(stdout, g->name);
	printf(", \"policy\": \"%s\"", group_policy_name(g->policy));
	if (g->hold_timeout_ns > 0)
		printf(", \"hold_timeout_ns\": %lld", (long long)g->hold_timeout_ns);
	else
		printf(", \"hold_timeout_ns\": null");
	printf(", \"claim_position\": %llu", (unsigned long long)g->claim_position);
	printf(", \"lag_bytes\": %llu", (unsigned long long)g->lag_bytes);
	printf(", \"workers\": %u", g->workers);
	printf(", \"workers_alive\": %u", g->workers_alive);
	printf(", \"messages_done\": %llu", (unsigned long long)g->messages_done);
	printf(", \"bytes_done\": %llu", (unsigned long long)g->bytes_done);
	printf(", \"redelivered\": %llu", (unsigned long long)g->redelivered);
	printf(", \"dropped\": %llu", (unsigned long long)g->dropped);
	printf(", \"stale_releases\": %llu}", (unsigned long long)g->stale_releases);
}

static void print_json_worker(const struct workers *w, const struct mrb_worker_info *k)
{
	const char *group = group_name(w, k->group);

	printf("{\"index\": %u, \"group\": ", k->index);
	if (group != NULL)
		put_json_string(stdout, group);
	else
		printf("null");
	printf(", \"group_index\": %u", k->group);
	printf(", \"pid\": %d, \"alive\": %s", (int)k->pid, k->alive ? "true" : "false");
	printf(", \"holding\": %s", k->holding ? "true" : "false");
	printf(", \"rescued\": %s", k->rescued ? "true" : "false");
	if (k->holding || k->rescued)
		printf(", \"held_from\": %llu, \"held_to\": %llu", (unsigned long long)k->held_from,
		       (unsigned long long)k->held_to);
	else
		printf(", \"held_from\": null, \"held_to\": null");
	printf(", \"messages_done\": %llu", (unsigned long long)k->messages_done);
	printf(", \"bytes_done\": %llu}", (unsigned long long)k->bytes_done);
}

static void print_text_group(const struct mrb_group_info *g)
{
	char seconds[40];

	printf("group %-11u  ", g->index);
	cli_put_escaped(stdout, g->name, strlen(g->name));
	printf(": %s, ", group_policy_name(g->policy));
	if (g->hold_timeout_ns > 0) {
		format_seconds(g->hold_timeout_ns, seconds, sizeof(seconds));
		printf("hold timeout %ss\n", seconds);
	} else {
		printf("no hold timeout\n");
	}
	printf("  claim position   %llu, lag %llu bytes\n", (unsigned long long)g->claim_position,
	       (unsigned long long)g->lag_bytes);
	printf("  workers          %u, %u alive\n", g->workers, g->workers_alive);
	printf("  done             %llu messages, %llu bytes\n",
	       (unsigned long long)g->messages_done, (unsigned long long)g->bytes_done);
	printf("  redelivered      %llu, dropped %llu, stale releases %llu\n",
	       (unsigned long long)g->redelivered, (unsigned long long)g->dropped,
	       (unsigned long long)g->stale_releases);
}

static void print_text_worker(const struct workers *w, const struct mrb_worker_info *k)
{
	const char *group = group_name(w, k->group);

	printf("worker %-10u  ", k->index);
	if (group != NULL)
		cli_put_escaped(stdout, group, strlen(group));
	else
		printf("(group %u)", k->group);
	if (k->pid != 0)
		printf(": pid %d (%s), ", (int)k->pid, k->alive ? "alive" : "dead");
	else
		printf(": no process, ");
	if (k->holding)
		printf("holding [%llu, %llu)\n", (unsigned long long)k->held_from,
		       (unsigned long long)k->held_to);
	else if (k->rescued)
		printf("held [%llu, %llu), taken over by another worker\n",
		       (unsigned long long)k->held_from, (unsigned long long)k->held_to);
	else
		printf("idle\n");
	printf("  done             %llu messages, %llu bytes\n",
	       (unsigned long long)k->messages_done, (unsigned long long)k->bytes_done);
}

static void print_json(const char *path, const struct mrb_stats *st, const struct unread *u,
                       const struct subscribers *subs, const struct workers *w)
{
	char created[32];

	format_time(st->created_unix_ns, created, sizeof(created));
	printf("{\"path\": ");
	put_json_string(stdout, path);
	printf(", \"format_version\": %u", st->format_version);
	printf(", \"mode\": \"%s\"", subs->fanout ? "fanout" : "queue");
	printf(", \"capacity\": %llu", (unsigned long long)st->capacity);
	printf(", \"max_message_size\": %llu", (unsigned long long)st->max_message_size);
	printf(", \"producer_position\": %llu", (unsigned long long)st->producer_position);
	printf(", \"consumer_position\": %llu", (unsigned long long)st->consumer_position);
	printf(", \"used_bytes\": %llu", (unsigned long long)st->used_bytes);
	printf(", \"fill_percent\": %.2f", fill_percent(st));
	if (u->corrupt) {
		printf(", \"messages_written\": null, \"bytes_written\": null");
		printf(", \"unread_messages\": null, \"unread_bytes\": null");
	} else {
		printf(", \"messages_written\": %llu",
		       (unsigned long long)(st->messages_read + u->messages));
		printf(", \"bytes_written\": %llu",
		       (unsigned long long)(st->bytes_read + u->bytes));
		printf(", \"unread_messages\": %llu", (unsigned long long)u->messages);
		printf(", \"unread_bytes\": %llu", (unsigned long long)u->bytes);
	}
	printf(", \"messages_read\": %llu", (unsigned long long)st->messages_read);
	printf(", \"bytes_read\": %llu", (unsigned long long)st->bytes_read);
	printf(", \"full_count\": %llu", (unsigned long long)st->full_count);
	printf(", \"recovered_records\": %llu", (unsigned long long)st->recovered_records);
	printf(", \"recovered_bytes\": %llu", (unsigned long long)st->recovered_bytes);
	printf(", \"consumer_pid\": %d", (int)st->consumer_pid);
	printf(", \"consumer_alive\": %s", st->consumer_alive ? "true" : "false");
	printf(", \"producers\": %u", st->producers);
	printf(", \"producers_alive\": %u", st->producers_alive);
	if (st->sole_producer_pid != 0)
		printf(", \"sole_producer_pid\": %d, \"sole_producer_slot\": %u",
		       (int)st->sole_producer_pid, st->sole_producer_slot);
	else
		printf(", \"sole_producer_pid\": null, \"sole_producer_slot\": null");
	printf(", \"creator_pid\": %u", st->creator_pid);
	printf(", \"created_unix_ns\": %llu", (unsigned long long)st->created_unix_ns);
	printf(", \"created_utc\": \"%s\"", created);
	printf(", \"subscribers\": [");
	for (size_t i = 0; i < subs->count; i++) {
		if (i)
			printf(", ");
		print_json_subscriber(&subs->info[i]);
	}
	printf("]");
	printf(", \"groups\": [");
	for (size_t i = 0; i < w->groups; i++) {
		if (i)
			printf(", ");
		print_json_group(&w->group[i]);
	}
	printf("]");
	printf(", \"workers\": [");
	for (size_t i = 0; i < w->count; i++) {
		if (i)
			printf(", ");
		print_json_worker(w, &w->info[i]);
	}
	printf("]");
	printf(", \"corrupt\": %s}\n", u->corrupt ? "true" : "false");
}

static void print_text(const char *path, const struct mrb_stats *st, const struct unread *u,
                       const struct subscribers *subs, const struct workers *w)
{
	char created[32];

	format_time(st->created_unix_ns, created, sizeof(created));
	printf("ring               %s\n", path);
	printf("format version     %u\n", st->format_version);
	printf("mode               %s\n", subs->fanout ? "fan-out" : "queue");
	printf("capacity           %llu bytes\n", (unsigned long long)st->capacity);
	printf("max message size   %llu bytes\n", (unsigned long long)st->max_message_size);
	printf("producer position  %llu\n", (unsigned long long)st->producer_position);
	printf("consumer position  %llu\n", (unsigned long long)st->consumer_position);
	printf("used               %llu bytes (%.2f%%)\n", (unsigned long long)st->used_bytes,
	       fill_percent(st));
	printf("read               %llu messages, %llu bytes\n",
	       (unsigned long long)st->messages_read, (unsigned long long)st->bytes_read);
	if (u->corrupt) {
		printf("unread             unknown: %s\n", mrb_strerror(u->corrupt));
		printf("written            unknown (read + unread)\n");
	} else {
		printf("unread             %llu messages, %llu bytes\n",
		       (unsigned long long)u->messages, (unsigned long long)u->bytes);
		printf("written            %llu messages, %llu bytes (read + unread)\n",
		       (unsigned long long)st->messages_written,
		       (unsigned long long)st->bytes_written);
	}
	printf("refused as full    %llu writes\n", (unsigned long long)st->full_count);
	printf("recovered          %llu records, %llu bytes\n",
	       (unsigned long long)st->recovered_records, (unsigned long long)st->recovered_bytes);
	if (subs->fanout)
		printf("consumer           none (fan-out ring: subscribers)\n");
	else if (st->consumer_pid != 0)
		printf("consumer           pid %d (%s)\n", (int)st->consumer_pid,
		       st->consumer_alive ? "alive" : "dead");
	else
		printf("consumer           none\n");
	printf("producers          %u registered, %u alive\n", st->producers, st->producers_alive);
	if (st->sole_producer_pid != 0)
		printf("sole producer      pid %d (slot %u)\n", (int)st->sole_producer_pid,
		       st->sole_producer_slot);
	else
		printf("sole producer      none (producers claim by CAS)\n");
	printf("created            %s by pid %u\n", created, st->creator_pid);
	printf("subscribers        %zu\n", subs->count);
	for (size_t i = 0; i < subs->count; i++)
		print_text_subscriber(&subs->info[i]);
	printf("groups             %zu\n", w->groups);
	for (size_t i = 0; i < w->groups; i++)
		print_text_group(&w->group[i]);
	printf("workers            %zu\n", w->count);
	for (size_t i = 0; i < w->count; i++)
		print_text_worker(w, &w->info[i]);
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
	struct unread unread = {0, 0, 0};
	struct subscribers subs = {0};
	struct workers workers;
	int64_t listed = 0;
	int json = 0;
	int64_t walked;
	int opt, rc;

	if (cli_wants_help(argc, argv)) {
		fputs(stat_help, stdout);
		return CLI_EXIT_OK;
	}
	cli_getopt_begin(argv, "mrb stat");
	while ((opt = getopt_long(argc, argv, "jh", options, NULL)) != -1) {
		if (opt != 'j')
			return cli_getopt_error("stat");
		json = 1;
	}
	if (optind != argc - 1)
		return cli_usage_error("stat", "expected exactly one PATH");

	memset(&workers, 0, sizeof(workers));
	rc = mrb_open(&ring, argv[optind], MRB_OPEN_READONLY);
	if (rc != 0)
		return cli_fail("stat", argv[optind], rc);
	rc = mrb_stats(&ring, &st);
	if (rc == 0) {
		walked = mrb_inspect(&ring, visit_nothing, NULL, 0);
		if (walked < 0)
			unread.corrupt = (int)walked;
		/* The same snapshot as the read counters. */
		unread.messages = st.messages_written - st.messages_read;
		unread.bytes = st.bytes_written - st.bytes_read;
		rc = mrb_is_fanout(&ring);
		subs.fanout = rc == 1;
		if (rc >= 0)
			rc = 0;
	}
	if (rc == 0) {
		listed = mrb_subscribers(&ring, subs.info, MRB_MAX_SUBSCRIBERS);
		if (listed < 0)
			rc = (int)listed;
		else
			subs.count = (size_t)listed < MRB_MAX_SUBSCRIBERS ? (size_t)listed
			                                                  : MRB_MAX_SUBSCRIBERS;
	}
	if (rc == 0) {
		listed = mrb_worker_groups(&ring, workers.group, MRB_MAX_GROUPS);
		if (listed < 0)
			rc = (int)listed;
		else
			workers.groups =
			    (size_t)listed < MRB_MAX_GROUPS ? (size_t)listed : MRB_MAX_GROUPS;
	}
	if (rc == 0) {
		listed = mrb_workers(&ring, workers.info, MRB_MAX_WORKERS);
		if (listed < 0)
			rc = (int)listed;
		else
			workers.count =
			    (size_t)listed < MRB_MAX_WORKERS ? (size_t)listed : MRB_MAX_WORKERS;
	}
	mrb_close(&ring);
	if (rc != 0)
		return cli_fail("stat", argv[optind], rc);
	if (json)
		print_json(argv[optind], &st, &unread, &subs, &workers);
	else
		print_text(argv[optind], &st, &unread, &subs, &workers);
	if (unread.corrupt) {
		fflush(stdout);
		return cli_fail("stat", argv[optind], unread.corrupt);
	}
	return CLI_EXIT_OK;
}
