/* SPDX-License-Identifier: MIT */
/* sched_setaffinity, F_GETPIPE_SZ, and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* Options, the matrix, and running it (mrb_bench_main). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"
#include "bench_os.h"
#include "bench_run.h"
#include "bench_transports.h"

const struct bench_row bench_rows[] = {
    {"pipe", "pipe", &bench_pipe, 1, 0},
    {"unix_stream", "Unix socket (SOCK_STREAM)", &bench_unix_stream, 1, 0},
    {"minimal_per_message", "minimal ring, publish per message", &bench_minimal_per_message, 1, 0},
    {"minimal_per_16k", "minimal ring, publish per 16 KiB", &bench_minimal_per_16k, 1, 0},
    {"mrb_read", "mrb write + read", &bench_mrb_read, 1, 0},
    {"mrb_read_batch", "mrb write + read_batch", &bench_mrb_read_batch, 1, 0},
    {"mrb_read_batch_2p", "mrb 2 producers, write + read_batch", &bench_mrb_read_batch, 2, 0},
    /* One 64 KiB message per batch is no batch. */
    {"mrb_write_batch", "mrb write_batch + read_batch", &bench_mrb_write_batch, 1, 4096},
    {"mrb_write_batch_2p", "mrb 2 producers, write_batch + read_batch", &bench_mrb_write_batch, 2,
     4096},
};
const int bench_row_count = sizeof(bench_rows) / sizeof(bench_rows[0]);

const struct bench_ratio bench_ratios[] = {
    {"mrb_read_vs_minimal_per_message", "mrb read / minimal per msg", "mrb_read",
     "minimal_per_message"},
    {"mrb_read_batch_vs_minimal_per_16k", "mrb read_batch / minimal 16 KiB", "mrb_read_batch",
     "minimal_per_16k"},
    {"mrb_write_batch_vs_minimal_per_16k", "mrb write_batch / minimal 16 KiB", "mrb_write_batch",
     "minimal_per_16k"},
    {"mrb_read_batch_vs_pipe", "mrb read_batch / pipe", "mrb_read_batch", "pipe"},
    {"mrb_read_vs_pipe", "mrb read / pipe", "mrb_read", "pipe"},
    {"mrb_write_batch_vs_pipe", "mrb write_batch / pipe", "mrb_write_batch", "pipe"},
    {"mrb_2p_vs_1p", "mrb 2P / 1P (read_batch)", "mrb_read_batch_2p", "mrb_read_batch"},
    {"mrb_2p_vs_1p_write_batch", "mrb 2P / 1P (write_batch)", "mrb_write_batch_2p",
     "mrb_write_batch"},
};
const int bench_ratio_count = sizeof(bench_ratios) / sizeof(bench_ratios[0]);

const struct bench_target bench_targets[] = {
    {"64 B: mrb write+read / minimal, publish per message", "mrb_read_vs_minimal_per_message", 64,
     0.7},
    {"64 B: mrb read_batch / minimal, publish per 16 KiB", "mrb_read_batch_vs_minimal_per_16k", 64,
     0.7},
    {"64 B: mrb read_batch / pipe", "mrb_read_batch_vs_pipe", 64, 20},
    {"64 KiB GB/s: mrb read_batch / minimal per 16 KiB", "mrb_read_batch_vs_minimal_per_16k", 65536,
     0.8},
    {"64 B: mrb 2 producers / 1 producer (read_batch)", "mrb_2p_vs_1p", 64, 1.0},
    {"64 B: mrb 2 producers / 1 producer (write_batch)", "mrb_2p_vs_1p_write_batch", 64, 1.0},
};
const int bench_target_count = sizeof(bench_targets) / sizeof(bench_targets[0]);

static const size_t default_sizes[] = {8, 64, 256, 4096, 65536};

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
	        "usage: %s [options]\n"
	        "\n"
	        "Measures mrb against a pipe, a Unix stream socket and a minimal SPSC ring,\n"
	        "producers and consumer in separate processes pinned to separate cores,\n"
	        "every message verified (sequence numbers and checksums). Compare only the\n"
	        "ratios: absolute figures move with the placement of the cores.\n"
	        "\n"
	        "  --quick             a few seconds in all (smoke test)\n"
	        "  --duration-ms N     milliseconds per run of a cell (default 300, quick 40)\n"
	        "  --repeat N          runs per cell, the best counts (default 3, quick 1):\n"
	        "                      other load only ever slows a run down\n"
	        "  --sizes LIST        message sizes in bytes, comma-separated\n"
	        "                      (default 8,64,256,4096,65536)\n"
	        "  --ring-size BYTES   ring data size (default 1048576)\n"
	        "  --dir DIR           where ring files go (default /dev/shm)\n"
	        "  --rows LIST         only these rows, comma-separated ids (pipe, unix_stream,\n"
	        "                      minimal_per_message, minimal_per_16k, mrb_read,\n"
	        "                      mrb_read_batch, mrb_read_batch_2p, mrb_write_batch,\n"
	        "                      mrb_write_batch_2p, fanout, pool)\n"
	        "  --fanout LIST       fan-out rows: subscriber counts, comma-separated, 1..%d\n"
	        "                      (default 1,2,4), or none. One producer, 64-byte\n"
	        "                      messages, to one fan-out ring with N durable\n"
	        "                      subscriber processes and to N queue rings with a\n"
	        "                      consumer process each; same duration and repeats\n"
	        "  --pool LIST         worker pool rows: worker counts, comma-separated, 1..%d\n"
	        "                      (default 1,2,4), or none. One producer, 64-byte\n"
	        "                      messages, to one worker group of N worker processes\n"
	        "                      and to one queue ring with one consumer process\n"
	        "  --wakeup-samples N  blocked-reader wake-ups measured (default 500, quick 40)\n"
	        "  --json              print JSON instead of the table\n"
	        "  --json-out FILE     also write the JSON to FILE\n"
	        "  --no-progress       no progress line on stderr\n"
	        "  --help              this text\n"
	        "\n"
	        "Exit status: 0 all ran and verified, 1 a benchmark failed, 2 usage error.\n",
	        prog, BENCH_FANOUT_MAX_READERS, BENCH_FANOUT_MAX_READERS);
}

static int parse_u64(const char *text, uint64_t *value)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
		return -1;
	}
	*value = v;
	return 0;
}

static int parse_sizes(const char *text, struct bench_options *o)
{
	char copy[256];
	snprintf(copy, sizeof(copy), "%s", text);
	o->size_count = 0;
	for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;
		if (o->size_count == BENCH_MAX_SIZES || parse_u64(tok, &v) != 0 || v < 8 ||
		    v > (64u << 20)) {
			return -1;
		}
		o->sizes[o->size_count++] = (size_t)v;
	}
	return o->size_count > 0 ? 0 : -1;
}

static int row_selected(const char *rows, const char *id)
{
	if (rows == NULL) {
		return 1;
	}
	size_t len = strlen(id);
	for (const char *p = rows; *p != '\0';) {
		size_t n = strcspn(p, ",");
		if (n == len && strncmp(p, id, n) == 0) {
			return 1;
		}
		p += n + (p[n] == ',');
	}
	return 0;
}

static int check_rows(const char *rows)
{
	int matched = 0, listed = 1;
	for (const char *p = rows; *p != '\0'; p++) {
		listed += *p == ',';
	}
	for (int r = 0; r < bench_row_count; r++) {
		matched += row_selected(rows, bench_rows[r].id);
	}
	matched += row_selected(rows, "fanout");
	matched += row_selected(rows, "pool");
	return matched == listed ? 0 : -1;
}

static int parse_counts(const char *text, int *counts, int *count_n)
{
	char copy[64];
	if (strcmp(text, "none") == 0) {
		*count_n = 0;
		return 0;
	}
	snprintf(copy, sizeof(copy), "%s", text);
	*count_n = 0;
	for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;
		if (*count_n == BENCH_FANOUT_MAX_COUNTS || parse_u64(tok, &v) != 0 || v < 1 ||
		    v > BENCH_FANOUT_MAX_READERS) {
			return -1;
		}
		counts[(*count_n)++] = (int)v;
	}
	return *count_n > 0 ? 0 : -1;
}

/* Returns 0, 1 for --help, -1 on a usage error (reported). */
static int parse_options(int argc, char **argv, struct bench_options *o)
{
	const char *prog = argc > 0 ? argv[0] : "mrb bench";
	memset(o, 0, sizeof(*o));
	o->duration_ns = -1;
	o->repeats = -1;
	o->ring_bytes = 1 << 20;
	o->dir = "/dev/shm";
	o->progress = 1;
	o->wakeup_samples = -1;
	o->wakeup_gap_ns = 1000000;
	memcpy(o->sizes, default_sizes, sizeof(default_sizes));
	o->fanout_counts[0] = 1;
	o->fanout_counts[1] = 2;
	o->fanout_counts[2] = 4;
	o->fanout_count_n = 3;
	memcpy(o->pool_counts, o->fanout_counts, sizeof(o->pool_counts));
	o->pool_count_n = 3;
	o->size_count = sizeof(default_sizes) / sizeof(default_sizes[0]);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t v;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout, prog);
			return 1;
		} else if (strcmp(a, "--quick") == 0) {
			o->quick = 1;
		} else if (strcmp(a, "--json") == 0) {
			o->json = 1;
		} else if (strcmp(a, "--no-progress") == 0) {
			o->progress = 0;
		} else if (value == NULL) {
			fprintf(stderr, "%s: unknown option or missing value: %s\n", prog, a);
			return -1;
		} else if (strcmp(a, "--json-out") == 0) {
			o->json_out = value;
			i++;
		} else if (strcmp(a, "--rows") == 0) {
			o->rows = value;
			i++;
			if (check_rows(value) != 0) {
				fprintf(stderr, "%s: --rows: unknown row in %s\n", prog, value);
				return -1;
			}
		} else if (strcmp(a, "--fanout") == 0) {
			if (parse_counts(value, o->fanout_counts, &o->fanout_count_n) != 0) {
				fprintf(
				    stderr,
				    "%s: --fanout: up to %d subscriber counts of 1..%d, or none\n",
				    prog, BENCH_FANOUT_MAX_COUNTS, BENCH_FANOUT_MAX_READERS);
				return -1;
			}
			i++;
		} else if (strcmp(a, "--pool") == 0) {
			if (parse_counts(value, o->pool_counts, &o->pool_count_n) != 0) {
				fprintf(stderr,
				        "%s: --pool: up to %d worker counts of 1..%d, or none\n",
				        prog, BENCH_FANOUT_MAX_COUNTS, BENCH_FANOUT_MAX_READERS);
				return -1;
			}
			i++;
		} else if (strcmp(a, "--dir") == 0) {
			o->dir = value;
			i++;
		} else if (strcmp(a, "--duration-ms") == 0) {
			if (parse_u64(value, &v) != 0 || v == 0 || v > 600000) {
				fprintf(stderr, "%s: --duration-ms: 1..600000\n", prog);
				return -1;
			}
			o->duration_ns = (int64_t)v * 1000000;
			i++;
		} else if (strcmp(a, "--repeat") == 0) {
			if (parse_u64(value, &v) != 0 || v == 0 || v > BENCH_MAX_REPEATS) {
				fprintf(stderr, "%s: --repeat: 1..%d\n", prog, BENCH_MAX_REPEATS);
				return -1;
			}
			o->repeats = (int)v;
			i++;
		} else if (strcmp(a, "--ring-size") == 0) {
			if (parse_u64(value, &v) != 0 || v < 4096 || (v & (v - 1)) != 0 ||
			    v > (UINT64_C(1) << 34)) {
				fprintf(stderr, "%s: --ring-size: a power of two, 4096..2^34\n",
				        prog);
				return -1;
			}
			o->ring_bytes = v;
			i++;
		} else if (strcmp(a, "--sizes") == 0) {
			if (parse_sizes(value, o) != 0) {
				fprintf(stderr,
				        "%s: --sizes: up to %d sizes of 8..67108864 bytes\n", prog,
				        BENCH_MAX_SIZES);
				return -1;
			}
			i++;
		} else if (strcmp(a, "--wakeup-samples") == 0) {
			if (parse_u64(value, &v) != 0 || v > 100000) {
				fprintf(stderr, "%s: --wakeup-samples: 0..100000\n", prog);
				return -1;
			}
			o->wakeup_samples = (int)v;
			i++;
		} else {
			fprintf(stderr, "%s: unknown option: %s\n", prog, a);
			return -1;
		}
	}
	if (o->duration_ns < 0) {
		o->duration_ns = o->quick ? 40000000 : 300000000;
	}
	if (o->repeats < 0) {
		o->repeats = o->quick ? 1 : 3;
	}
	if (o->wakeup_samples < 0) {
		o->wakeup_samples = o->quick ? 40 : 500;
	}
	o->round_trips = o->quick ? 2000 : 20000;
	o->path_cost_bytes = o->quick ? 4 << 20 : 64 << 20;
	for (int s = 0; s < o->size_count; s++) {
		if (o->sizes[s] > o->ring_bytes / 4) {
			fprintf(stderr, "%s: message size %zu needs --ring-size of at least %zu\n",
			        prog, o->sizes[s], o->sizes[s] * 4);
			return -1;
		}
	}
	if (!row_selected(o->rows, "fanout")) {
		o->fanout_count_n = 0;
	}
	if (!row_selected(o->rows, "pool")) {
		o->pool_count_n = 0;
	}
	if (o->repeats > BENCH_FANOUT_MAX_REPEATS) {
		o->repeats = BENCH_FANOUT_MAX_REPEATS;
	}
	if (!isatty(STDERR_FILENO)) {
		o->progress = 0;
	}
	return 0;
}

static void describe_machine(struct bench_run *run, int argc, char **argv)
{
	size_t used = 0;
	for (int i = 0; i < argc && used + 1 < sizeof(run->command); i++) {
		int n = snprintf(run->command + used, sizeof(run->command) - used, "%s%s",
		                 i ? " " : "", argv[i]);
		used += n > 0 ? (size_t)n : 0;
	}
	bench_cpu_model(run->cpu_model, sizeof(run->cpu_model));
	struct utsname u;
	if (uname(&u) == 0) {
		snprintf(run->kernel, sizeof(run->kernel), "%s %s %s", u.sysname, u.release,
		         u.machine);
	}
	run->cpus_online = sysconf(_SC_NPROCESSORS_ONLN);
	run->allowed_cpu_count = bench_allowed_cpus(run->allowed_cpus, BENCH_MAX_CPUS);
	/* Consumer on the first allowed CPU, producers on the next ones (all on
	 * the second when only two are allowed). */
	run->pinned = run->allowed_cpu_count >= 2;
	run->consumer_cpu = run->pinned ? run->allowed_cpus[0] : -1;
	for (int i = 0; i < BENCH_MAX_PRODUCERS; i++) {
		run->producer_cpu[i] =
		    run->pinned ? run->allowed_cpus[1 + i % (run->allowed_cpu_count - 1)] : -1;
	}
	int fds[2];
	if (pipe(fds) == 0) {
		run->pipe_buffer_bytes = fcntl(fds[0], F_GETPIPE_SZ);
		close(fds[0]);
		close(fds[1]);
	}
}

static void progress(const struct bench_run *run, int done, int total, const char *what)
{
	if (run->opt.progress) {
		fprintf(stderr, "\r\033[K[%2d/%d] %s", done, total, what);
		fflush(stderr);
	}
}

/* Runs one repeat of a cell and folds it into the cell's best. */
static void run_trial(struct bench_run *run, struct bench_cell *cell, int repeat)
{
	struct bench_cell trial = *cell;
	bench_run_cell(&trial);
	int index = (int)(cell - run->cells);
	run->trial_rates[index * BENCH_MAX_REPEATS + repeat] =
	    trial.ok ? trial.messages_per_second : 0;
	if (!trial.ok) {
		run->ok = 0;
		if (cell->error[0] == '\0') {
			memcpy(cell->error, trial.error, sizeof(cell->error));
		}
		cell->ok = 0;
		cell->messages_per_second = cell->bytes_per_second = 0;
		return;
	}
	if (cell->error[0] == '\0' && trial.messages_per_second > cell->messages_per_second) {
		cell->ok = 1;
		cell->messages = trial.messages;
		cell->seconds = trial.seconds;
		cell->messages_per_second = trial.messages_per_second;
		cell->bytes_per_second = trial.bytes_per_second;
	}
}

static int run_matrix(struct bench_run *run)
{
	const struct bench_options *o = &run->opt;
	run->cell_count = bench_row_count * o->size_count;
	run->cells = calloc((size_t)run->cell_count, sizeof(struct bench_cell));
	run->trial_rates =
	    calloc((size_t)run->cell_count * BENCH_MAX_REPEATS, sizeof(*run->trial_rates));
	if (run->cells == NULL || run->trial_rates == NULL) {
		return -1;
	}
	int total = 3 + (o->fanout_count_n > 0) + (o->pool_count_n > 0), done = 0;
	for (int r = 0; r < bench_row_count; r++) {
		for (int s = 0; s < o->size_count; s++) {
			struct bench_cell *cell = &run->cells[r * o->size_count + s];
			const struct bench_row *row = &bench_rows[r];
			cell->message_size = o->sizes[s];
			if (!row_selected(o->rows, row->id) ||
			    (row->max_size != 0 && o->sizes[s] > row->max_size)) {
				continue;
			}
			total += o->repeats;
			cell->transport = row->transport;
			cell->producers = row->producers;
			cell->duration_ns = o->duration_ns;
			cell->ring_bytes = o->ring_bytes;
			cell->dir = o->dir;
			cell->consumer_cpu = run->consumer_cpu;
			memcpy(cell->producer_cpu, run->producer_cpu, sizeof(cell->producer_cpu));
		}
	}
	char what[160];
	progress(run, done, total, "cross-core round trip");
	bench_measure_round_trip(&run->round_trip_start, run->consumer_cpu, run->producer_cpu[0],
	                         o->round_trips);
	/* Size-major, repeats interleaved across rows: the cells a ratio
	 * compares run close together in time, and a burst of other load or
	 * a change of core placement hits different rows in different
	 * repeats instead of one row in all of them. */
	for (int s = 0; s < o->size_count; s++) {
		for (int repeat = 0; repeat < o->repeats; repeat++) {
			for (int r = 0; r < bench_row_count; r++) {
				struct bench_cell *cell = &run->cells[r * o->size_count + s];
				if (cell->transport == NULL) {
					continue;
				}
				snprintf(what, sizeof(what), "%s, %zu-byte messages (run %d/%d)",
				         bench_rows[r].label, o->sizes[s], repeat + 1, o->repeats);
				progress(run, ++done, total, what);
				run_trial(run, cell, repeat);
			}
		}
	}
	if (o->fanout_count_n > 0) {
		struct bench_fanout *f = &run->fanout;
		f->enabled = 1;
		f->message_size = 64;
		memcpy(f->counts, o->fanout_counts, sizeof(f->counts));
		f->count_n = o->fanout_count_n;
		f->repeats = o->repeats;
		progress(run, ++done, total, "fan-out: one producer, N readers");
		bench_measure_fanout(f, o->dir, o->ring_bytes, o->duration_ns, run->consumer_cpu,
		                     run->producer_cpu[0]);
		if (!f->ok) {
			run->ok = 0;
		}
	}
	if (o->pool_count_n > 0) {
		struct bench_fanout *f = &run->pool;
		f->enabled = 1;
		f->pool = 1;
		f->message_size = 64;
		memcpy(f->counts, o->pool_counts, sizeof(f->counts));
		f->count_n = o->pool_count_n;
		f->repeats = o->repeats;
		progress(run, ++done, total, "worker pools: one producer, N workers");
		/* Readers not pinned: N workers on one core would measure nothing. */
		bench_measure_fanout(f, o->dir, o->ring_bytes, o->duration_ns, -1,
		                     run->producer_cpu[0]);
		if (!f->ok) {
			run->ok = 0;
		}
	}
	progress(run, ++done, total, "path cost on one core");
	for (int s = 0; s < o->size_count; s++) {
		size_t messages = (size_t)o->path_cost_bytes / o->sizes[s];
		messages = messages < 256 ? 256 : messages > 200000 ? 200000 : messages;
		bench_measure_path_cost(&run->path_cost[s], o->sizes[s], o->dir, run->consumer_cpu,
		                        (int)messages);
		if (!run->path_cost[s].ok) {
			run->ok = 0;
		}
	}
	progress(run, ++done, total, "wake-up latency");
	bench_measure_wakeup_mrb(&run->wakeup_mrb, o->dir, run->consumer_cpu, run->producer_cpu[0],
	                         o->wakeup_samples, o->wakeup_gap_ns);
	bench_measure_wakeup_pipe(&run->wakeup_pipe, run->consumer_cpu, run->producer_cpu[0],
	                          o->wakeup_samples, o->wakeup_gap_ns);
	bench_measure_round_trip(&run->round_trip_end, run->consumer_cpu, run->producer_cpu[0],
	                         o->round_trips);
	if (o->progress) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
	return 0;
}

int mrb_bench_main(int argc, char **argv)
{
	struct bench_run *run = calloc(1, sizeof(*run));
	if (run == NULL) {
		fprintf(stderr, "mrb bench: out of memory\n");
		return 1;
	}
	int rc = parse_options(argc, argv, &run->opt);
	if (rc != 0) {
		free(run);
		return rc > 0 ? 0 : 2;
	}
	describe_machine(run, argc, argv);
	run->ok = 1;
	if (run_matrix(run) != 0) {
		fprintf(stderr, "mrb bench: out of memory\n");
		free(run);
		return 1;
	}
	if (run->opt.json) {
		bench_print_json(stdout, run);
	} else {
		bench_print_table(stdout, run);
	}
	fflush(stdout);
	if (run->opt.json_out != NULL) {
		FILE *f = fopen(run->opt.json_out, "w");
		if (f == NULL) {
			fprintf(stderr, "mrb bench: %s: %s\n", run->opt.json_out, strerror(errno));
			run->ok = 0;
		} else {
			bench_print_json(f, run);
			if (fclose(f) != 0) {
				fprintf(stderr, "mrb bench: %s: %s\n", run->opt.json_out,
				        strerror(errno));
				run->ok = 0;
			}
		}
	}
	int status = run->ok ? 0 : 1;
	bench_wakeup_free(&run->wakeup_mrb);
	bench_wakeup_free(&run->wakeup_pipe);
	free(run->cells);
	free(run->trial_rates);
	free(run);
	return status;
}
