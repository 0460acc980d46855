/* SPDX-License-Identifier: MIT */
/* sched_setaffinity, F_GETPIPE_SZ, and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* The human table and the JSON document, both from a finished bench_run. */
#include <math.h>
#include <string.h>

#include "bench_run.h"
#include "bench_transports.h"

const struct bench_cell *bench_find_cell(const struct bench_run *run, const char *row_id,
                                         size_t size)
{
	for (int r = 0; r < bench_row_count; r++) {
		if (strcmp(bench_rows[r].id, row_id) != 0) {
			continue;
		}
		for (int s = 0; s < run->opt.size_count; s++) {
			const struct bench_cell *cell = &run->cells[r * run->opt.size_count + s];
			if (run->opt.sizes[s] == size && cell->transport != NULL) {
				return cell;
			}
		}
	}
	return NULL;
}

const struct bench_ratio *bench_find_ratio(const char *id)
{
	for (int i = 0; i < bench_ratio_count; i++) {
		if (strcmp(bench_ratios[i].id, id) == 0) {
			return &bench_ratios[i];
		}
	}
	return NULL;
}

double bench_ratio_value(const struct bench_run *run, const struct bench_ratio *ratio, size_t size)
{
	const struct bench_cell *a = bench_find_cell(run, ratio->numerator, size);
	const struct bench_cell *b = bench_find_cell(run, ratio->denominator, size);
	if (a == NULL || b == NULL || !a->ok || !b->ok || b->messages_per_second <= 0) {
		return NAN;
	}
	return a->messages_per_second / b->messages_per_second;
}

static const char *size_label(size_t size, char *buf, size_t len)
{
	if (size >= 1024 && size % 1024 == 0) {
		snprintf(buf, len, "%zu KiB", size / 1024);
	} else {
		snprintf(buf, len, "%zu B", size);
	}
	return buf;
}

/* Three significant figures without switching to exponents. */
static const char *number(double v, char *buf, size_t len)
{
	if (isnan(v)) {
		snprintf(buf, len, "-");
	} else if (v >= 100) {
		snprintf(buf, len, "%.0f", v);
	} else if (v >= 10) {
		snprintf(buf, len, "%.1f", v);
	} else if (v >= 1) {
		snprintf(buf, len, "%.2f", v);
	} else {
		snprintf(buf, len, "%.3f", v);
	}
	return buf;
}

#define LABEL_WIDTH  38
#define COLUMN_WIDTH 15

static void print_header(FILE *out, const struct bench_run *run, const char *title)
{
	fprintf(out, "%-*s", LABEL_WIDTH, title);
	for (int s = 0; s < run->opt.size_count; s++) {
		char buf[32];
		fprintf(out, "%*s", COLUMN_WIDTH, size_label(run->opt.sizes[s], buf, sizeof(buf)));
	}
	fprintf(out, "\n");
}

static void print_round_trip(FILE *out, const char *when, const struct bench_round_trip *rt)
{
	if (rt->ok) {
		fprintf(out, "%s %.0f ns (min %.0f)", when, rt->median_ns, rt->min_ns);
	} else {
		fprintf(out, "%s unavailable", when);
	}
}

static void print_wakeup(FILE *out, const struct bench_wakeup *w)
{
	if (w->available) {
		fprintf(out, "  %-16s p50 %7.1f us   p99 %7.1f us   (min %.1f, max %.1f)\n",
		        w->label, (double)w->p50_ns / 1e3, (double)w->p99_ns / 1e3,
		        (double)w->min_ns / 1e3, (double)w->max_ns / 1e3);
	} else {
		fprintf(out, "  %-16s unavailable: %s\n", w->label, w->error);
	}
}

static void print_fanout(FILE *out, const struct bench_fanout *f)
{
	static const char *const fanout_labels[2] = {"1 fan-out ring, N subscribers",
	                                             "N queue rings, 1 consumer each"};
	static const char *const pool_labels[2] = {"1 group of N workers",
	                                           "1 queue ring, 1 consumer"};
	const char *const *labels = f->pool ? pool_labels : fanout_labels;
	char a[32], b[32], text[64];
	if (f->pool) {
		fprintf(out,
		        "\nworker pools: one producer, %zu B messages, each to one reader; million "
		        "messages/s\nthrough the pool (best of %d; in brackets the slowest "
		        "worker's share of that run)\n",
		        f->message_size, f->repeats);
	} else {
		fprintf(out,
		        "\nfan-out: one producer, %zu B messages, N reader processes; million "
		        "messages/s per reader\n(best of %d; in brackets the slowest reader of "
		        "that run)\n",
		        f->message_size, f->repeats);
	}
	fprintf(out, "%-*s", LABEL_WIDTH, f->pool ? "N workers" : "N readers");
	for (int n = 0; n < f->count_n; n++) {
		fprintf(out, "%*d", COLUMN_WIDTH, f->counts[n]);
	}
	fprintf(out, "\n");
	for (int k = 0; k < 2; k++) {
		fprintf(out, "%-*s", LABEL_WIDTH, labels[k]);
		for (int n = 0; n < f->count_n; n++) {
			const struct bench_fanout_cell *c = &f->cells[k][n];
			if (!c->ok) {
				snprintf(text, sizeof(text), "FAILED");
			} else {
				snprintf(text, sizeof(text), "%s (%s)",
				         number(c->per_reader_rate / 1e6, a, sizeof(a)),
				         number(c->slowest_reader_rate / 1e6, b, sizeof(b)));
			}
			fprintf(out, "%*s", COLUMN_WIDTH, text);
		}
		fprintf(out, "\n");
	}
	fprintf(out, "%-*s", LABEL_WIDTH,
	        f->pool ? "ratio pool / 1 consumer" : "ratio fan-out / N rings");
	for (int n = 0; n < f->count_n; n++) {
		fprintf(out, "%*s", COLUMN_WIDTH, number(bench_fanout_ratio(f, n), a, sizeof(a)));
	}
	fprintf(out, "\n");
	if (f->repeats > 1) {
		fprintf(out, "%-*s", LABEL_WIDTH, "  repeat by repeat, min-max");
		for (int n = 0; n < f->count_n; n++) {
			double lo, hi;
			bench_fanout_ratio_spread(f, n, &lo, &hi);
			snprintf(text, sizeof(text), "%s-%s", number(lo, a, sizeof(a)),
			         number(hi, b, sizeof(b)));
			fprintf(out, "%*s", COLUMN_WIDTH, text);
		}
		fprintf(out, "\n");
	}
	for (int k = 0; k < 2; k++) {
		for (int n = 0; n < f->count_n; n++) {
			if (!f->cells[k][n].ok) {
				fprintf(out, "  %s, N = %d: %s\n", labels[k], f->counts[n],
				        f->cells[k][n].error);
			}
		}
	}
}

void bench_print_table(FILE *out, const struct bench_run *run)
{
	const struct bench_options *o = &run->opt;
	fprintf(out, "mrb bench: %s, best of %d run%s of %lld ms per cell, ring %llu KiB in %s\n",
	        o->quick ? "quick" : "full", o->repeats, o->repeats == 1 ? "" : "s",
	        (long long)(o->duration_ns / 1000000), (unsigned long long)(o->ring_bytes / 1024),
	        o->dir);
	fprintf(out, "machine: %s, %ld CPUs online; consumer on CPU %d, producers on CPU %d%s\n",
	        run->cpu_model, run->cpus_online, run->consumer_cpu, run->producer_cpu[0],
	        run->pinned ? "" : " (NOT pinned: fewer than 2 CPUs allowed)");
	fprintf(out, "cross-core round trip (~100 ns near, ~500 ns far): ");
	print_round_trip(out, "start", &run->round_trip_start);
	fprintf(out, ", ");
	print_round_trip(out, "end", &run->round_trip_end);
	fprintf(out, "\n\n");

	print_header(out, run, "million messages/s (GB/s)");
	for (int r = 0; r < bench_row_count; r++) {
		fprintf(out, "%-*s", LABEL_WIDTH, bench_rows[r].label);
		for (int s = 0; s < o->size_count; s++) {
			const struct bench_cell *cell = &run->cells[r * o->size_count + s];
			char text[64], a[32], b[32];
			if (cell->transport == NULL) {
				snprintf(text, sizeof(text), "n/a");
			} else if (!cell->ok) {
				snprintf(text, sizeof(text), "FAILED");
			} else {
				snprintf(text, sizeof(text), "%s (%s)",
				         number(cell->messages_per_second / 1e6, a, sizeof(a)),
				         number(cell->bytes_per_second / 1e9, b, sizeof(b)));
			}
			fprintf(out, "%*s", COLUMN_WIDTH, text);
		}
		fprintf(out, "\n");
	}
	fprintf(out, "\n");
	print_header(out, run, "ratios (same run)");
	for (int i = 0; i < bench_ratio_count; i++) {
		fprintf(out, "%-*s", LABEL_WIDTH, bench_ratios[i].label);
		for (int s = 0; s < o->size_count; s++) {
			char a[32];
			double v = bench_ratio_value(run, &bench_ratios[i], o->sizes[s]);
			fprintf(out, "%*s", COLUMN_WIDTH, number(v, a, sizeof(a)));
		}
		fprintf(out, "\n");
	}
	fprintf(out, "\ntargets\n");
	for (int i = 0; i < bench_target_count; i++) {
		const struct bench_target *t = &bench_targets[i];
		double v = bench_ratio_value(run, bench_find_ratio(t->ratio), t->size);
		char a[32];
		fprintf(out, "  %-56s %6s  (>= %g)  %s\n", t->label, number(v, a, sizeof(a)),
		        t->minimum,
		        isnan(v)          ? "not measured"
		        : v >= t->minimum ? "met"
		                          : "MISSED");
	}
	if (run->fanout.enabled) {
		print_fanout(out, &run->fanout);
	}
	if (run->pool.enabled) {
		print_fanout(out, &run->pool);
	}
	fprintf(out, "\n");
	print_header(out, run, "path cost on one core, ns/message");
	for (int p = 0; p < BENCH_PATH_COUNT; p++) {
		fprintf(out, "%-*s", LABEL_WIDTH, bench_path_labels[p]);
		for (int s = 0; s < o->size_count; s++) {
			const struct bench_path_cost *c = &run->path_cost[s];
			char a[32];
			fprintf(out, "%*s", COLUMN_WIDTH,
			        c->ok ? number(c->ns_per_message[p], a, sizeof(a)) : "FAILED");
		}
		fprintf(out, "\n");
	}
	for (int s = 0; s < o->size_count; s++) {
		if (!run->path_cost[s].ok) {
			char buf[32];
			fprintf(out, "  path cost, %s: %s\n",
			        size_label(o->sizes[s], buf, sizeof(buf)), run->path_cost[s].error);
		}
	}
	fprintf(out,
	        "\nwake-up latency of a blocked reader (write -> read returns), %d samples, "
	        "%lld us apart:\n",
	        o->wakeup_samples, (long long)(o->wakeup_gap_ns / 1000));
	print_wakeup(out, &run->wakeup_mrb);
	print_wakeup(out, &run->wakeup_pipe);

	int failures = 0;
	for (int i = 0; i < run->cell_count; i++) {
		const struct bench_cell *cell = &run->cells[i];
		if (cell->transport != NULL && !cell->ok) {
			if (failures++ == 0) {
				fprintf(out, "\nfailures\n");
			}
			char buf[32];
			fprintf(out, "  %s, %s: %s\n", bench_rows[i / o->size_count].label,
			        size_label(cell->message_size, buf, sizeof(buf)), cell->error);
		}
	}
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			fprintf(out, "\\%c", c);
		} else if (c < 0x20) {
			fprintf(out, "\\u%04x", c);
		} else {
			fputc(c, out);
		}
	}
	fputc('"', out);
}

static void json_number(FILE *out, double v)
{
	if (isnan(v) || isinf(v)) {
		fprintf(out, "null");
	} else {
		fprintf(out, "%.6g", v);
	}
}

static void json_round_trip(FILE *out, const struct bench_round_trip *rt)
{
	if (!rt->ok) {
		fprintf(out, "null");
		return;
	}
	fprintf(out, "{\"median_ns\": ");
	json_number(out, rt->median_ns);
	fprintf(out, ", \"min_ns\": ");
	json_number(out, rt->min_ns);
	fprintf(out, ", \"rounds_ns\": [");
	for (int i = 0; i < rt->rounds; i++) {
		fprintf(out, i ? ", " : "");
		json_number(out, rt->round_ns[i]);
	}
	fprintf(out, "]}");
}

static void json_wakeup(FILE *out, const struct bench_wakeup *w, int64_t gap_ns)
{
	fprintf(out, "    {\"id\": ");
	json_string(out, w->id);
	fprintf(out, ", \"label\": ");
	json_string(out, w->label);
	fprintf(out, ", \"available\": %s, \"error\": ", w->available ? "true" : "false");
	if (w->available) {
		fprintf(out, "null");
	} else {
		json_string(out, w->error);
	}
	fprintf(out, ", \"gap_ns\": %lld, \"samples\": %d", (long long)gap_ns, w->samples);
	if (w->available) {
		fprintf(out,
		        ", \"p50_ns\": %lld, \"p99_ns\": %lld, \"min_ns\": %lld, \"max_ns\": %lld",
		        (long long)w->p50_ns, (long long)w->p99_ns, (long long)w->min_ns,
		        (long long)w->max_ns);
	}
	fprintf(out, ", \"samples_ns\": [");
	for (int i = 0; i < w->samples && w->sample_ns != NULL; i++) {
		fprintf(out, "%s%lld", i ? ", " : "", (long long)w->sample_ns[i]);
	}
	fprintf(out, "]}");
}

static void json_fanout(FILE *out, const struct bench_fanout *f)
{
	static const char *const fanout_kinds[2] = {"fanout_ring", "separate_rings"};
	static const char *const pool_kinds[2] = {"worker_group", "one_consumer"};
	const char *const *kinds = f->pool ? pool_kinds : fanout_kinds;
	if (!f->enabled) {
		fprintf(out, "null");
		return;
	}
	fprintf(out, "{\"message_size\": %zu, \"producers\": 1, \"%s\": [", f->message_size,
	        f->pool ? "workers" : "readers");
	for (int n = 0; n < f->count_n; n++) {
		fprintf(out, "%s%d", n ? ", " : "", f->counts[n]);
	}
	fprintf(out, "], \"ok\": %s,\n    \"results\": [", f->ok ? "true" : "false");
	for (int n = 0; n < f->count_n; n++) {
		for (int k = 0; k < 2; k++) {
			const struct bench_fanout_cell *c = &f->cells[k][n];
			fprintf(out, "%s\n      {\"kind\": \"%s\", \"readers\": %d, \"ok\": %s",
			        n || k ? "," : "", kinds[k], c->readers, c->ok ? "true" : "false");
			fprintf(out, ", \"messages\": %llu, \"producer_seconds\": ",
			        (unsigned long long)c->messages);
			json_number(out, c->ok ? c->producer_seconds : NAN);
			fprintf(out, f->pool ? ", \"messages_per_second\": "
			                     : ", \"per_reader_messages_per_second\": ");
			json_number(out, c->ok ? c->per_reader_rate : NAN);
			fprintf(out, f->pool ? ", \"slowest_worker_messages_per_second\": "
			                     : ", \"slowest_reader_messages_per_second\": ");
			json_number(out, c->ok ? c->slowest_reader_rate : NAN);
			fprintf(out, f->pool ? ", \"trial_messages_per_second\": ["
			                     : ", \"trial_per_reader_messages_per_second\": [");
			for (int t = 0; t < f->repeats; t++) {
				fprintf(out, t ? ", " : "");
				json_number(out, c->trial_rate[t]);
			}
			fprintf(out, "], \"error\": ");
			if (c->ok) {
				fprintf(out, "null");
			} else {
				json_string(out, c->error);
			}
			fprintf(out, "}");
		}
	}
	fprintf(out, "\n    ],\n    \"ratios\": [");
	for (int n = 0; n < f->count_n; n++) {
		double lo, hi;
		bench_fanout_ratio_spread(f, n, &lo, &hi);
		fprintf(out, "%s\n      {\"%s\": %d, \"%s\": ", n ? "," : "",
		        f->pool ? "workers" : "readers", f->counts[n],
		        f->pool ? "pool_vs_one_consumer" : "fanout_vs_separate_rings");
		json_number(out, bench_fanout_ratio(f, n));
		fprintf(out, ", \"trial_min\": ");
		json_number(out, lo);
		fprintf(out, ", \"trial_max\": ");
		json_number(out, hi);
		fprintf(out, "}");
	}
	fprintf(out, "\n    ]}");
}

void bench_print_json(FILE *out, const struct bench_run *run)
{
	const struct bench_options *o = &run->opt;
	fprintf(out, "{\n  \"schema\": \"mrb-bench/1\",\n  \"command\": ");
	json_string(out, run->command);
	fprintf(out,
	        ",\n  \"ok\": %s,\n  \"machine\": {\"cpu_model\": ", run->ok ? "true" : "false");
	json_string(out, run->cpu_model);
	fprintf(out, ", \"cpus_online\": %ld, \"kernel\": ", run->cpus_online);
	json_string(out, run->kernel);
	fprintf(out,
	        "},\n  \"config\": {\"quick\": %s, \"duration_ms\": %lld, \"repeats\": %d, "
	        "\"ring_bytes\": %llu, \"dir\": ",
	        o->quick ? "true" : "false", (long long)(o->duration_ns / 1000000), o->repeats,
	        (unsigned long long)o->ring_bytes);
	json_string(out, o->dir);
	fprintf(out, ", \"sizes\": [");
	for (int s = 0; s < o->size_count; s++) {
		fprintf(out, "%s%zu", s ? ", " : "", o->sizes[s]);
	}
	fprintf(out,
	        "], \"pinned\": %s, \"consumer_cpu\": %d, \"producer_cpus\": [%d, %d], "
	        "\"unix_socket\": \"SOCK_STREAM\", \"batch_bytes\": %u, "
	        "\"pipe_buffer_bytes\": %d},\n",
	        run->pinned ? "true" : "false", run->consumer_cpu, run->producer_cpu[0],
	        run->producer_cpu[1], BENCH_BATCH_BYTES, run->pipe_buffer_bytes);
	fprintf(out, "  \"round_trip\": {\"start\": ");
	json_round_trip(out, &run->round_trip_start);
	fprintf(out, ", \"end\": ");
	json_round_trip(out, &run->round_trip_end);
	fprintf(out, "},\n  \"results\": [\n");
	int first = 1;
	for (int i = 0; i < run->cell_count; i++) {
		const struct bench_cell *cell = &run->cells[i];
		const struct bench_row *row = &bench_rows[i / o->size_count];
		if (cell->transport == NULL) {
			continue;
		}
		fprintf(out, "%s    {\"id\": ", first ? "" : ",\n");
		first = 0;
		json_string(out, row->id);
		fprintf(out, ", \"label\": ");
		json_string(out, row->label);
		fprintf(out,
		        ", \"size\": %zu, \"producers\": %d, \"ok\": %s, \"messages\": %llu, "
		        "\"seconds\": ",
		        cell->message_size, row->producers, cell->ok ? "true" : "false",
		        (unsigned long long)cell->messages);
		json_number(out, cell->seconds);
		fprintf(out, ", \"messages_per_second\": ");
		json_number(out, cell->ok ? cell->messages_per_second : NAN);
		fprintf(out, ", \"gb_per_second\": ");
		json_number(out, cell->ok ? cell->bytes_per_second / 1e9 : NAN);
		fprintf(out, ", \"trial_messages_per_second\": [");
		for (int t = 0; t < o->repeats; t++) {
			fprintf(out, t ? ", " : "");
			json_number(out, run->trial_rates[i * BENCH_MAX_REPEATS + t]);
		}
		fprintf(out, "], \"error\": ");
		if (cell->ok) {
			fprintf(out, "null");
		} else {
			json_string(out, cell->error);
		}
		fprintf(out, "}");
	}
	fprintf(out, "\n  ],\n  \"ratios\": [\n");
	for (int i = 0; i < bench_ratio_count; i++) {
		const struct bench_ratio *ratio = &bench_ratios[i];
		fprintf(out, "    {\"id\": ");
		json_string(out, ratio->id);
		fprintf(out, ", \"label\": ");
		json_string(out, ratio->label);
		fprintf(out, ", \"numerator\": ");
		json_string(out, ratio->numerator);
		fprintf(out, ", \"denominator\": ");
		json_string(out, ratio->denominator);
		fprintf(out, ", \"values\": {");
		for (int s = 0; s < o->size_count; s++) {
			fprintf(out, "%s\"%zu\": ", s ? ", " : "", o->sizes[s]);
			json_number(out, bench_ratio_value(run, ratio, o->sizes[s]));
		}
		fprintf(out, "}}%s\n", i + 1 < bench_ratio_count ? "," : "");
	}
	fprintf(out, "  ],\n  \"targets\": [\n");
	for (int i = 0; i < bench_target_count; i++) {
		const struct bench_target *t = &bench_targets[i];
		double v = bench_ratio_value(run, bench_find_ratio(t->ratio), t->size);
		fprintf(out, "    {\"label\": ");
		json_string(out, t->label);
		fprintf(out, ", \"ratio\": ");
		json_string(out, t->ratio);
		fprintf(out, ", \"size\": %zu, \"minimum\": %g, \"value\": ", t->size, t->minimum);
		json_number(out, v);
		fprintf(out, ", \"met\": %s}%s\n",
		        isnan(v)          ? "null"
		        : v >= t->minimum ? "true"
		                          : "false",
		        i + 1 < bench_target_count ? "," : "");
	}
	fprintf(out, "  ],\n  \"path_cost\": [\n");
	for (int s = 0; s < o->size_count; s++) {
		const struct bench_path_cost *c = &run->path_cost[s];
		fprintf(out, "    {\"size\": %zu, \"ok\": %s, \"ns_per_message\": {", o->sizes[s],
		        c->ok ? "true" : "false");
		for (int p = 0; p < BENCH_PATH_COUNT; p++) {
			fprintf(out, "%s\"%s\": ", p ? ", " : "", bench_path_ids[p]);
			json_number(out, c->ok ? c->ns_per_message[p] : NAN);
		}
		fprintf(out, "}, \"error\": ");
		if (c->ok) {
			fprintf(out, "null");
		} else {
			json_string(out, c->error);
		}
		fprintf(out, "}%s\n", s + 1 < o->size_count ? "," : "");
	}
	fprintf(out, "  ],\n  \"fanout\": ");
	json_fanout(out, &run->fanout);
	fprintf(out, ",\n  \"pool\": ");
	json_fanout(out, &run->pool);
	fprintf(out, ",\n  \"wakeup_latency\": [\n");
	json_wakeup(out, &run->wakeup_mrb, o->wakeup_gap_ns);
	fprintf(out, ",\n");
	json_wakeup(out, &run->wakeup_pipe, o->wakeup_gap_ns);
	fprintf(out, "\n  ]\n}\n");
}
