/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *cli_program = "mrb";

int cli_exit_for(int code)
{
	switch (code) {
	case MRB_OK:
		return CLI_EXIT_OK;
	case MRB_EFULL:
	case MRB_ETIMEDOUT:
	case MRB_EEMPTY:
		return CLI_EXIT_FULL_TIMEOUT;
	case MRB_EFORMAT:
	case MRB_EVERSION:
	case MRB_ECORRUPT:
		return CLI_EXIT_FORMAT;
	case MRB_ECONSUMER_BUSY:
	case MRB_ENAMEBUSY:
	case MRB_ENOSUB:
		return CLI_EXIT_CONSUMER_BUSY;
	case MRB_EMODE:
		return CLI_EXIT_MODE;
	case MRB_EEXIST:
	case MRB_EFOREIGN:
	case -EEXIST:
		return CLI_EXIT_EXISTS;
	case MRB_EMSGSIZE:
		return CLI_EXIT_MSGSIZE;
	case MRB_EINVAL:
		return CLI_EXIT_USAGE;
	case -ENOMEM:
		return CLI_EXIT_FAILURE;
	default:
		/* Every other -errno is an operating-system failure; library codes
		 * all lie below -1000. */
		if (code < 0 && code > -1000)
			return CLI_EXIT_IO;
		return CLI_EXIT_FAILURE;
	}
}

int cli_fail(const char *cmd, const char *what, int code)
{
	fprintf(stderr, "%s %s: %s: %s\n", cli_program, cmd, what, mrb_strerror(code));
	return cli_exit_for(code);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s %s: ", cli_program, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s %s --help'.\n", cli_program, cmd);
	return CLI_EXIT_USAGE;
}

int cli_getopt_error(const char *cmd)
{
	fprintf(stderr, "Try '%s %s --help'.\n", cli_program, cmd);
	return CLI_EXIT_USAGE;
}

void cli_format_size(uint64_t bytes, char *buf, size_t size)
{
	static const char suffixes[] = "KMGT";
	unsigned i = 0;

	while (i < 4 && bytes != 0 && bytes % 1024 == 0) {
		bytes /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, size, "%llu", (unsigned long long)bytes);
	else
		snprintf(buf, size, "%llu%c", (unsigned long long)bytes, suffixes[i - 1]);
}

void cli_getopt_begin(char **argv, const char *cmd_label)
{
	argv[0] = (char *)cmd_label;
	optind = 1;
	opterr = 1;
}

int cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

/* Accepts digits only: strtoull alone would take "-1", " 5" and "0x10". */
static int parse_digits(const char **text, uint64_t *out)
{
	const char *p = *text;
	uint64_t value = 0;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (value > (UINT64_MAX - digit) / 10)
			return -1;
		value = value * 10 + digit;
	}
	*text = p;
	*out = value;
	return 0;
}

int cli_parse_u64(const char *text, uint64_t *out)
{
	const char *p = text;

	if (parse_digits(&p, out) != 0 || *p != '\0')
		return -1;
	return 0;
}

int cli_parse_size(const char *text, uint64_t *out)
{
	const char *p = text;
	uint64_t value;
	unsigned shift = 0;

	if (parse_digits(&p, &value) != 0)
		return -1;
	switch (toupper((unsigned char)*p)) {
	case '\0':
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return -1;
	}
	if (shift != 0) {
		p++;
		if (*p == 'i')
			p++;
		if (*p == 'B' || *p == 'b')
			p++;
	} else if (*p == 'B' || *p == 'b') {
		p++;
	}
	if (*p != '\0')
		return -1;
	if (shift != 0 && value > (UINT64_MAX >> shift))
		return -1;
	*out = value << shift;
	return 0;
}

int cli_parse_seconds(const char *text, int64_t *timeout_ns)
{
	char *end;
	double seconds;

	if (strcmp(text, "inf") == 0 || strcmp(text, "forever") == 0) {
		*timeout_ns = -1;
		return 0;
	}
	if (!isdigit((unsigned char)text[0]) && text[0] != '.')
		return -1;
	errno = 0;
	seconds = strtod(text, &end);
	if (errno != 0 || *end != '\0' || !isfinite(seconds) || seconds < 0 || seconds > 9.0e9)
		return -1;
	*timeout_ns = (int64_t)(seconds * 1e9);
	return 0;
}

int cli_parse_mode(const char *text, unsigned *mode)
{
	unsigned value = 0;
	const char *p = text;

	if (*p == '\0')
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '7')
			return -1;
		value = value * 8 + (unsigned)(*p - '0');
		if (value > 0777)
			return -1;
	}
	*mode = value;
	return 0;
}

void cli_put_escaped(FILE *out, const void *data, size_t len)
{
	const unsigned char *bytes = data;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = bytes[i];

		switch (c) {
		case '\n':
			fputs("\\n", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		default:
			if (c >= 0x20 && c < 0x7f)
				fputc(c, out);
			else
				fprintf(out, "\\x%02x", c);
		}
	}
}

const char *cli_record_state_name(uint32_t state)
{
	switch (state) {
	case MRB_RECORD_COMMITTED:
		return "committed";
	case MRB_RECORD_BUSY:
		return "busy";
	case MRB_RECORD_PADDING:
		return "padding";
	case MRB_RECORD_UNWRITTEN:
		return "unwritten";
	default:
		return "unknown";
	}
}
