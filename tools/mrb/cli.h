/* SPDX-License-Identifier: MIT */
/* Shared pieces of the `mrb` command-line tool: exit codes, argument parsing
 * and error reporting. Each subcommand lives in its own cmd_*.c file. */
#ifndef MRB_CLI_H
#define MRB_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "mrb/mrb.h"

/* Exit codes, documented in docs/CLI.md. Scripts branch on these, so a
 * value never changes meaning once released. */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILURE = 1,       /* anything not listed below */
	CLI_EXIT_USAGE = 2,         /* bad option, argument or value */
	CLI_EXIT_IO = 3,            /* file missing, permission, other OS error */
	CLI_EXIT_FORMAT = 4,        /* not a ring, unsupported version, corrupt */
	CLI_EXIT_FULL_TIMEOUT = 5,  /* ring full, timeout, fewer than --count */
	CLI_EXIT_CONSUMER_BUSY = 6, /* another live process is the consumer, holds
	                             * the subscriber name, or every subscriber
	                             * entry is taken */
	CLI_EXIT_EXISTS = 7,        /* create: a different file is in the way */
	CLI_EXIT_MSGSIZE = 8,       /* a message is empty or too large */
	CLI_EXIT_BAD_INPUT = 9,     /* write --framed: truncated frame on stdin */
	CLI_EXIT_UNAVAILABLE = 10,  /* feature not built into this binary */
	CLI_EXIT_MODE = 11,         /* queue ring read as fan-out or the reverse */
};

/* Name the tool uses in messages ("mrb"). */
extern const char *cli_program;

/* Maps a library result code (negative mrb_error or -errno) to an exit code. */
int cli_exit_for(int code);

/* Prints "mrb <cmd>: <what>: <mrb_strerror(code)>" on stderr and returns
 * cli_exit_for(code). */
int cli_fail(const char *cmd, const char *what, int code);

/* Prints "mrb <cmd>: <message>" and a hint to use --help; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For getopt_long's '?' (unknown option or missing value): getopt has
 * already named the option on stderr; adds the --help hint and returns
 * CLI_EXIT_USAGE. */
int cli_getopt_error(const char *cmd);

/* Writes `bytes` with the largest K/M/G/T suffix that divides it exactly
 * ("4G", "1536K", "100"). */
void cli_format_size(uint64_t bytes, char *buf, size_t size);

/* Prepares getopt_long for a subcommand: getopt's own messages then read
 * "mrb <cmd>: ...". */
void cli_getopt_begin(char **argv, const char *cmd_label);

/* True if argv[i] asks for help, so help works even with other arguments
 * missing. */
int cli_wants_help(int argc, char **argv);

/* Parses a byte count: decimal digits with an optional K, M, G or T suffix
 * (powers of 1024, case-insensitive, an optional trailing "B" or "iB").
 * Returns 0 or -1 on a malformed or overflowing value. */
int cli_parse_size(const char *text, uint64_t *out);

/* Parses a plain unsigned decimal integer. Returns 0 or -1. */
int cli_parse_u64(const char *text, uint64_t *out);

/* Parses seconds (decimal, fractions allowed, "inf" for forever) into
 * nanoseconds; forever is -1. Returns 0 or -1. */
int cli_parse_seconds(const char *text, int64_t *timeout_ns);

/* Parses octal permission bits (e.g. "0640"): at most 0777, so setuid, setgid
 * and sticky bits are refused. Returns 0 or -1. */
int cli_parse_mode(const char *text, unsigned *mode);

/* Writes `len` bytes as printable text: printable ASCII as is, backslash and
 * everything else escaped (\n, \t, \\, \xNN). */
void cli_put_escaped(FILE *out, const void *data, size_t len);

/* "committed", "busy", "padding", "unwritten" (enum mrb_record_state). */
const char *cli_record_state_name(uint32_t state);

/* Subcommands: argv[0] is the subcommand name. Each returns an exit code. */
int cmd_create(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_write(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_upgrade(int argc, char **argv);
int cmd_unsubscribe(int argc, char **argv);
int cmd_rmgroup(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif /* MRB_CLI_H */
