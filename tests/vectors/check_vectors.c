/* SPDX-License-Identifier: MIT */
/*
 * The C side of the golden-vector test: for every NAME.json in a directory,
 * opens a copy of NAME.ring (reading moves the consumer position, so the
 * committed file is never opened) and reads exactly the listed messages, or
 * checks that opening fails with the listed error.
 *
 *   check_vectors VECTORS_DIR
 *
 * The descriptions are the JSON gen_vectors writes; this reads only the
 * fields it needs ("capacity", "open_error", "messages") with a scanner that
 * accepts that layout, not arbitrary JSON.
 */
#include <dirent.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mrb/mrb.h"

#define MAX_DESCRIPTION (1 << 20)

static char *read_file(const char *path, size_t *size)
{
	FILE *in = fopen(path, "rb");
	if (in == NULL)
		return NULL;
	char *text = malloc(MAX_DESCRIPTION + 1);
	size_t n = text != NULL ? fread(text, 1, MAX_DESCRIPTION, in) : 0;
	fclose(in);
	if (text == NULL || n == MAX_DESCRIPTION) {
		free(text);
		return NULL;
	}
	text[n] = '\0';
	*size = n;
	return text;
}

/* The text just after `"key":` (whitespace skipped), or NULL. */
static const char *field(const char *json, const char *key)
{
	char quoted[64];
	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	const char *at = strstr(json, quoted);
	if (at == NULL)
		return NULL;
	at += strlen(quoted);
	at += strspn(at, " \t\r\n");
	if (*at != ':')
		return NULL;
	at++;
	return at + strspn(at, " \t\r\n");
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the hex string starting at `at` (just after its opening quote)
 * into out; returns the byte count and sets *end after the closing quote, or
 * returns -1. */
static long decode_hex(const char *at, unsigned char *out, size_t out_size, const char **end)
{
	size_t n = 0;
	while (*at != '"') {
		int hi = hex_value(at[0]);
		int lo = hi < 0 ? -1 : hex_value(at[1]);
		if (lo < 0 || n == out_size)
			return -1;
		out[n++] = (unsigned char)(hi << 4 | lo);
		at += 2;
	}
	*end = at + 1;
	return (long)n;
}

static int copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char buf[65536];
	ssize_t n = 0;
	if (in >= 0 && out >= 0)
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				n = -1;
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0)
		n = -1;
	return in >= 0 && out >= 0 && n == 0 ? 0 : -1;
}

static int check_messages(const char *name, struct mrb_ring *ring, const char *json)
{
	const char *at = field(json, "messages");
	if (at == NULL || *at != '[') {
		fprintf(stderr, "%s: no messages list\n", name);
		return 1;
	}
	at++;
	unsigned char *want = malloc(1u << 20);
	unsigned char *got = malloc(1u << 20);
	int status = 0;
	for (unsigned index = 0; status == 0; index++) {
		at += strspn(at, " \t\r\n,");
		if (*at == ']') {
			size_t len;
			int rc = mrb_read(ring, got, 1u << 20, &len);
			if (rc != MRB_EEMPTY) {
				fprintf(stderr, "%s: %u messages expected, then %s\n", name, index,
				        rc == 0 ? "another message" : mrb_strerror(rc));
				status = 1;
			}
			break;
		}
		long want_len = *at == '"' ? decode_hex(at + 1, want, 1u << 20, &at) : -1;
		if (want_len < 0) {
			fprintf(stderr, "%s: bad message %u in the description\n", name, index);
			status = 1;
			break;
		}
		size_t len;
		int rc = mrb_read(ring, got, 1u << 20, &len);
		if (rc != 0) {
			fprintf(stderr, "%s: message %u: %s\n", name, index, mrb_strerror(rc));
			status = 1;
		} else if (len != (size_t)want_len || memcmp(got, want, len) != 0) {
			fprintf(stderr,
			        "%s: message %u: got %zu bytes, want %ld (or other bytes)\n", name,
			        index, len, want_len);
			status = 1;
		}
	}
	free(want);
	free(got);
	return status;
}

/* The unsigned number of field `key` in json, or UINT64_MAX. */
static uint64_t number(const char *json, const char *key)
{
	const char *at = field(json, key);
	if (at == NULL || *at < '0' || *at > '9')
		return UINT64_MAX;
	return strtoull(at, NULL, 10);
}

/*
 * A fan-out vector: the listing (mrb_subscribers) shows the entries of
 * "subscribers" in order, the release position is "release_position", and
 * a reader resuming the subscriber named "resume" reads "messages".
 */
static int check_fanout(const char *name, struct mrb_ring *ring, const char *copy, const char *json)
{
	int status = 0;
	if (mrb_is_fanout(ring) != 1) {
		fprintf(stderr, "%s: not a fan-out ring\n", name);
		return 1;
	}
	struct mrb_stats st;
	if (mrb_stats(ring, &st) != 0 || st.consumer_position != number(json, "release_position")) {
		fprintf(stderr, "%s: release position %llu\n", name,
		        (unsigned long long)st.consumer_position);
		status = 1;
	}
	struct mrb_subscriber_info list[MRB_MAX_SUBSCRIBERS];
	int64_t n = mrb_subscribers(ring, list, MRB_MAX_SUBSCRIBERS);
	const char *at = field(json, "subscribers");
	int64_t k = 0;
	for (at = at != NULL ? strchr(at, '{') : NULL; at != NULL && status == 0; k++) {
		const char *end = strchr(at, '}');
		if (end == NULL)
			break;
		char entry[512];
		snprintf(entry, sizeof(entry), "%.*s", (int)(end - at), at);
		const char *want_name = field(entry, "name");
		const char *lossy = field(entry, "lossy");
		size_t name_len = strlen(list[k].name);
		if (k >= n || want_name == NULL || lossy == NULL ||
		    list[k].index != number(entry, "index") ||
		    strncmp(want_name + 1, list[k].name, name_len) != 0 ||
		    want_name[1 + name_len] != '"' ||
		    ((list[k].flags & MRB_SUBSCRIBE_LOSSY) != 0) !=
		        (strncmp(lossy, "true", 4) == 0) ||
		    (uint64_t)list[k].state != number(entry, "state") ||
		    list[k].position != number(entry, "position") ||
		    list[k].lag_messages != number(entry, "lag_messages")) {
			fprintf(stderr, "%s: subscriber %lld is not %s\n", name, (long long)k,
			        entry);
			status = 1;
		}
		at = strchr(end, '{');
		const char *close = strchr(end, ']');
		if (at != NULL && close != NULL && close < at)
			at = NULL;
	}
	if (status == 0 && k != n) {
		fprintf(stderr, "%s: %lld subscribers listed, %lld described\n", name, (long long)n,
		        (long long)k);
		status = 1;
	}
	const char *resume = field(json, "resume");
	char resume_name[64];
	if (resume == NULL || sscanf(resume, "\"%63[^\"]\"", resume_name) != 1) {
		fprintf(stderr, "%s: no subscriber to resume\n", name);
		return 1;
	}
	struct mrb_ring sub;
	struct mrb_subscribe_options opts = {0, resume_name, 0};
	int rc = mrb_subscribe(&sub, copy, &opts);
	if (rc != 0) {
		fprintf(stderr, "%s: subscribe %s: %s\n", name, resume_name, mrb_strerror(rc));
		return 1;
	}
	status |= check_messages(name, &sub, json);
	mrb_close(&sub);
	return status;
}

static int check_vector(const char *dir, const char *json_name, const char *scratch)
{
	char path[4096], copy[4096];
	size_t size;
	snprintf(path, sizeof(path), "%s/%s", dir, json_name);
	char *json = read_file(path, &size);
	if (json == NULL) {
		fprintf(stderr, "%s: cannot read\n", path);
		return 1;
	}
	size_t stem = strlen(json_name) - strlen(".json");
	snprintf(path, sizeof(path), "%s/%.*s.ring", dir, (int)stem, json_name);
	snprintf(copy, sizeof(copy), "%s/%.*s.ring", scratch, (int)stem, json_name);
	if (copy_file(path, copy) != 0) {
		fprintf(stderr, "%s: cannot copy to %s\n", path, copy);
		free(json);
		return 1;
	}
	const char *error = field(json, "open_error");
	const char *capacity = field(json, "capacity");
	int expect_version_error = error != NULL && strncmp(error, "\"version\"", 9) == 0;
	struct mrb_ring ring;
	int rc = mrb_open(&ring, copy, 0);
	int status = 0;
	if (expect_version_error) {
		if (rc != MRB_EVERSION) {
			fprintf(stderr, "%s: open gave %s, want MRB_EVERSION\n", json_name,
			        mrb_strerror(rc));
			status = 1;
		}
		if (rc == 0)
			mrb_close(&ring);
	} else if (error == NULL || strncmp(error, "null", 4) != 0 || capacity == NULL) {
		fprintf(stderr, "%s: unsupported description\n", json_name);
		status = 1;
	} else if (rc != 0) {
		fprintf(stderr, "%s: open: %s\n", json_name, mrb_strerror(rc));
		status = 1;
	} else {
		if (mrb_capacity(&ring) != strtoull(capacity, NULL, 10)) {
			fprintf(stderr, "%s: capacity %llu\n", json_name,
			        (unsigned long long)mrb_capacity(&ring));
			status = 1;
		}
		const char *mode = field(json, "mode");
		if (mode != NULL && strncmp(mode, "\"fanout\"", 8) == 0)
			status |= check_fanout(json_name, &ring, copy, json);
		else if (mrb_is_fanout(&ring) != 0)
			status = 1;
		else
			status |= check_messages(json_name, &ring, json);
		mrb_close(&ring);
	}
	unlink(copy);
	free(json);
	if (status == 0)
		printf("c vectors: %.*s OK\n", (int)stem, json_name);
	return status;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]);
		return 2;
	}
	const char *tmp = getenv("TEST_TMPDIR");
	char scratch[4096];
	snprintf(scratch, sizeof(scratch), "%s/check_vectors.XXXXXX",
	         tmp != NULL ? tmp : (getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp"));
	if (mkdtemp(scratch) == NULL) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		return 2;
	}
	struct dirent **entries;
	int n = scandir(argv[1], &entries, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	int status = 0;
	unsigned vectors = 0;
	for (int i = 0; i < n; i++) {
		const char *name = entries[i]->d_name;
		size_t len = strlen(name);
		if (len > 5 && strcmp(name + len - 5, ".json") == 0) {
			status |= check_vector(argv[1], name, scratch);
			vectors++;
		}
		free(entries[i]);
	}
	free(entries);
	rmdir(scratch);
	if (vectors == 0) {
		fprintf(stderr, "no vectors in %s\n", argv[1]);
		return 1;
	}
	return status;
}
