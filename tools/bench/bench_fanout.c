/* SPDX-License-Identifier: MIT */
/* sched_setaffinity and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_fanout.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_cell.h"
#include "bench_os.h"
#include "mrb/mrb.h"

/* A cell that does not finish within its duration plus this is killed. */
#define FANOUT_GRACE_NS (INT64_C(20) * 1000000000)

/* Shared by the parent and the cell's processes; each field one process
 * writes and another polls sits in its own 128-byte slot. */
struct fanout_control {
	_Alignas(128) atomic_int ready;
	_Alignas(128) atomic_int go;
	int64_t start_ns;
	int64_t deadline_ns;
	_Alignas(128) atomic_int producer_done;
	_Alignas(128) struct bench_party_result producer;
	struct {
		_Alignas(128) struct bench_party_result result;
	} reader[BENCH_FANOUT_MAX_READERS];
};

/* What the children inherit. */
struct fanout_setup {
	int pool;
	int kind;
	int readers;
	size_t message_size;
	struct bench_body body;
	struct fanout_control *control;
	char paths[BENCH_FANOUT_MAX_READERS][256]; /* one ring, or one per reader */
};

static int party_fail(struct bench_party_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int party_fail(struct bench_party_result *r, const char *fmt, ...)
{
	if (!r->failed) {
		va_list ap;
		r->failed = 1;
		va_start(ap, fmt);
		vsnprintf(r->what, sizeof(r->what), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int64_t wait_for_go(struct fanout_control *c)
{
	atomic_fetch_add_explicit(&c->ready, 1, memory_order_release);
	while (!atomic_load_explicit(&c->go, memory_order_acquire)) {
		sched_yield();
	}
	return c->deadline_ns;
}

/* Writes one message, waiting while the ring is full; 0 or -1 (reported). */
static int write_one(struct mrb_ring *ring, const void *msg, size_t size, int64_t give_up_ns,
                     struct bench_party_result *r)
{
	int rc;
	unsigned spins = 0;
	while ((rc = mrb_write(ring, msg, size)) == MRB_EFULL) {
		if ((++spins & 1023) == 0 && bench_now_ns() > give_up_ns) {
			return party_fail(r, "mrb_write: ring full for %lld s past the deadline",
			                  (long long)(FANOUT_GRACE_NS / 2000000000));
		}
		bench_cpu_relax();
	}
	if (rc != 0) {
		return party_fail(r, "mrb_write: %s", mrb_strerror(rc));
	}
	return 0;
}

static int produce(struct fanout_setup *s)
{
	struct fanout_control *c = s->control;
	struct bench_party_result *r = &c->producer;
	struct mrb_ring rings[BENCH_FANOUT_MAX_READERS];
	int nrings = s->kind == BENCH_FANOUT_RING ? 1 : s->readers;
	int opened = 0;
	for (; opened < nrings; opened++) {
		int rc = mrb_open(&rings[opened], s->paths[opened], 0);
		if (rc != 0) {
			party_fail(r, "mrb_open: %s", mrb_strerror(rc));
			break;
		}
	}
	unsigned char *msg = s->body.bytes;
	const size_t size = s->message_size;
	const uint64_t clock_mask = bench_clock_check_mask(size);
	uint64_t seq = 0, sum = 0;
	int64_t deadline = wait_for_go(c);
	const int64_t give_up = deadline + FANOUT_GRACE_NS / 2;
	while (!r->failed) {
		if (seq != 0 && (seq & clock_mask) == 0 && bench_now_ns() >= deadline) {
			break;
		}
		uint64_t stamp = bench_stamp(0, seq);
		bench_put_stamp(msg, stamp);
		/* A message is complete once every ring has it: the deadline is
		 * only looked at between messages. */
		for (int i = 0; i < nrings && !r->failed; i++) {
			write_one(&rings[i], msg, size, give_up, r);
		}
		if (r->failed) {
			break;
		}
		sum += bench_message_sum(&s->body, stamp);
		seq++;
	}
	r->messages = seq;
	r->checksum = sum;
	r->end_ns = bench_now_ns();
	atomic_store_explicit(&c->producer_done, 1, memory_order_release);
	for (int i = 0; i < opened; i++) {
		mrb_close(&rings[i]);
	}
	return r->failed ? -1 : 0;
}

static int verify_handler(void *ctx, const void *data, size_t len)
{
	return bench_verify(ctx, data, len);
}

/* A worker of a pool sees a subset of the messages: each must be intact
 * and later than the one before (claim order); the counts and checksums of
 * all readers must add up to the producer's. */
static int verify_share(struct bench_verifier *v, const void *msg, size_t len)
{
	uint64_t stamp;
	if (len != v->size || len < sizeof(stamp)) {
		return bench_verifier_fail(v, msg, len);
	}
	memcpy(&stamp, msg, sizeof(stamp));
	if ((stamp >> 56) != 0 || (stamp & BENCH_STAMP_SEQ_MASK) < v->next_seq[0]) {
		return bench_verifier_fail(v, msg, len);
	}
	uint64_t sum = bench_sum_words(msg, len);
	if (sum != stamp + v->rest_sum) {
		return bench_verifier_fail(v, msg, len);
	}
	v->next_seq[0] = (stamp & BENCH_STAMP_SEQ_MASK) + 1;
	v->messages++;
	v->checksum += sum;
	return 0;
}

#define POOL_BATCH 64

/* A pool reader (a worker, or the baseline's consumer): mrb_read_many. */
static int consume_pool(struct fanout_setup *s, int reader)
{
	struct fanout_control *c = s->control;
	struct bench_party_result *r = &c->reader[reader].result;
	struct mrb_ring ring;
	int rc;
	if (s->kind == BENCH_FANOUT_RING) {
		rc = mrb_worker_join(&ring, s->paths[0], "bench", NULL);
	} else {
		rc = mrb_open(&ring, s->paths[0], 0);
	}
	if (rc == 0) {
		/* Attach (consumer) or join before the clock starts. */
		unsigned char probe[8];
		size_t len;
		rc = mrb_read(&ring, probe, sizeof(probe), &len);
		rc = rc == MRB_EEMPTY ? 0 : rc == 0 ? MRB_ECORRUPT : rc;
		if (rc != 0) {
			mrb_close(&ring);
		}
	}
	if (rc != 0) {
		party_fail(r, "joining: %s", mrb_strerror(rc));
		wait_for_go(c);
		return -1;
	}
	unsigned char *buf = malloc(POOL_BATCH * s->message_size);
	size_t lengths[POOL_BATCH];
	struct bench_verifier v;
	bench_verifier_init(&v, &s->body, 1);
	if (buf == NULL) {
		party_fail(r, "out of memory");
	}
	int done_seen = 0;
	wait_for_go(c);
	while (!v.failed && buf != NULL) {
		int64_t n =
		    mrb_read_many(&ring, buf, POOL_BATCH * s->message_size, lengths, POOL_BATCH);
		if (n > 0) {
			size_t off = 0;
			for (int64_t i = 0; i < n && !v.failed; i++) {
				verify_share(&v, buf + off, lengths[i]);
				off += lengths[i];
			}
			continue;
		}
		if (n == MRB_EEMPTY) {
			if (done_seen) {
				break;
			}
			done_seen =
			    atomic_load_explicit(&c->producer_done, memory_order_acquire) != 0;
			sched_yield();
		} else {
			party_fail(r, "mrb_read_many: %s", mrb_strerror((int)n));
			break;
		}
	}
	r->end_ns = bench_now_ns();
	r->messages = v.messages;
	r->checksum = v.checksum;
	if (v.failed) {
		party_fail(r, "reader %d: %s", reader, v.what);
	}
	mrb_close(&ring);
	free(buf);
	return r->failed ? -1 : 0;
}

static int consume(struct fanout_setup *s, int reader)
{
	struct fanout_control *c = s->control;
	struct bench_party_result *r = &c->reader[reader].result;
	struct mrb_ring ring;
	int rc;
	if (s->kind == BENCH_FANOUT_RING) {
		/* Unnamed and durable: joins at the live end, which is the
		 * start, since the producer waits for every reader. */
		rc = mrb_subscribe(&ring, s->paths[0], NULL);
		if (rc != 0) {
			party_fail(r, "mrb_subscribe: %s", mrb_strerror(rc));
			wait_for_go(c);
			return -1;
		}
	} else {
		rc = mrb_open(&ring, s->paths[reader], 0);
		unsigned char probe[8];
		size_t len;
		/* Attach as consumer before the clock starts. */
		if (rc == 0) {
			rc = mrb_read(&ring, probe, sizeof(probe), &len);
			rc = rc == MRB_EEMPTY ? 0 : rc == 0 ? MRB_ECORRUPT : rc;
		}
		if (rc != 0) {
			party_fail(r, "attaching as consumer: %s", mrb_strerror(rc));
			wait_for_go(c);
			return -1;
		}
	}
	struct bench_verifier v;
	bench_verifier_init(&v, &s->body, 1);
	int done_seen = 0;
	wait_for_go(c);
	while (!v.failed) {
		int64_t n = mrb_read_batch(&ring, verify_handler, &v, 0);
		if (n > 0) {
			continue;
		}
		if (n == MRB_EEMPTY) {
			if (done_seen) {
				break;
			}
			done_seen =
			    atomic_load_explicit(&c->producer_done, memory_order_acquire) != 0;
			/* Readers share cores: give the others the time. */
			sched_yield();
		} else {
			party_fail(r, "mrb_read_batch: %s", mrb_strerror((int)n));
			break;
		}
	}
	r->end_ns = bench_now_ns();
	r->messages = v.messages;
	r->checksum = v.checksum;
	if (v.failed) {
		party_fail(r, "reader %d: %s", reader, v.what);
	}
	mrb_close(&ring);
	return r->failed ? -1 : 0;
}

static pid_t spawn(struct fanout_setup *s, int cpu, int reader)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0) {
		return pid;
	}
	if (cpu >= 0) {
		bench_pin_to_cpu(cpu);
	}
	int rc = reader < 0 ? produce(s) : s->pool ? consume_pool(s, reader) : consume(s, reader);
	_exit(rc == 0 ? 0 : 1);
}

static int create_ring(const char *path, uint64_t ring_bytes, unsigned flags, char *error,
                       size_t size)
{
	struct mrb_ring ring;
	struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE | flags, .mode = 0600};
	int rc = mrb_create(&ring, path, ring_bytes, &opts);
	if (rc != 0) {
		snprintf(error, size, "mrb_create(%s): %s", path, mrb_strerror(rc));
		return -1;
	}
	mrb_close(&ring);
	return 0;
}

/* One run of one cell. Fills the rates; returns 0 or -1 with error set. */
static int run_once(int pool, int kind, int readers, const char *dir, uint64_t ring_bytes,
                    int64_t duration_ns, int reader_cpu, int producer_cpu, size_t message_size,
                    struct bench_fanout_cell *out, double *per_reader, double *slowest)
{
	struct fanout_setup s;
	memset(&s, 0, sizeof(s));
	s.pool = pool;
	s.kind = kind;
	s.readers = readers;
	s.message_size = message_size;
	char *error = out->error;
	const size_t error_size = sizeof(out->error);
	int nrings = kind == BENCH_FANOUT_RING || pool ? 1 : readers;
	int created = 0, rc = -1;
	pid_t pids[1 + BENCH_FANOUT_MAX_READERS] = {0};
	int children = 0;

	if (bench_body_init(&s.body, message_size) != 0) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	s.control = bench_map_shared(sizeof(struct fanout_control));
	if (s.control == NULL) {
		snprintf(error, error_size, "mmap: %s", strerror(errno));
		bench_body_free(&s.body);
		return -1;
	}
	memset(s.control, 0, sizeof(*s.control));
	for (; created < nrings; created++) {
		snprintf(s.paths[created], sizeof(s.paths[created]),
		         "%s/mrb-bench-fanout-%d-%d.ring", dir, (int)getpid(), created);
		if (create_ring(s.paths[created], ring_bytes,
		                kind == BENCH_FANOUT_RING ? MRB_CREATE_FANOUT : 0, error,
		                error_size) != 0) {
			goto out;
		}
	}
	for (int i = 0; i < readers; i++) {
		pids[children++] = spawn(&s, reader_cpu, i);
	}
	pids[children++] = spawn(&s, producer_cpu, -1);
	int failed = 0;
	for (int i = 0; i < children; i++) {
		if (pids[i] < 0) {
			snprintf(error, error_size, "fork: %s", strerror(errno));
			failed = 1;
		}
	}
	if (!failed) {
		int64_t ready_deadline = bench_now_ns() + FANOUT_GRACE_NS;
		while (atomic_load_explicit(&s.control->ready, memory_order_acquire) < children &&
		       bench_now_ns() < ready_deadline) {
			bench_sleep_ns(100000);
		}
		s.control->start_ns = bench_now_ns();
		s.control->deadline_ns = s.control->start_ns + duration_ns;
	}
	atomic_store_explicit(&s.control->go, 1, memory_order_release);
	/* Reap, killing everything past the grace period. */
	int64_t reap_deadline = bench_now_ns() + duration_ns + FANOUT_GRACE_NS;
	int remaining = 0;
	for (int i = 0; i < children; i++) {
		remaining += pids[i] > 0;
	}
	while (remaining > 0) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno != EINTR) {
			break;
		}
		if (pid <= 0) {
			if (bench_now_ns() > reap_deadline) {
				for (int i = 0; i < children; i++) {
					if (pids[i] > 0) {
						kill(pids[i], SIGKILL);
					}
				}
				if (error[0] == '\0') {
					snprintf(error, error_size, "timed out; processes killed");
				}
				reap_deadline = INT64_MAX;
				failed = 1;
			}
			bench_sleep_ns(1000000);
			continue;
		}
		for (int i = 0; i < children; i++) {
			if (pids[i] == pid) {
				pids[i] = 0;
				remaining--;
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
					failed = 1;
				}
			}
		}
	}
	struct fanout_control *c = s.control;
	if (c->producer.failed && error[0] == '\0') {
		snprintf(error, error_size, "producer: %s", c->producer.what);
	}
	double sum_rate = 0, min_rate = INFINITY;
	if (pool && error[0] == '\0') {
		/* Every message exactly once across the readers. */
		uint64_t messages = 0, checksum = 0;
		int64_t last_end = c->start_ns;
		for (int i = 0; i < readers; i++) {
			const struct bench_party_result *r = &c->reader[i].result;
			if (r->failed) {
				snprintf(error, error_size, "%s", r->what);
				break;
			}
			messages += r->messages;
			checksum += r->checksum;
			last_end = r->end_ns > last_end ? r->end_ns : last_end;
			double seconds = (double)(r->end_ns - c->start_ns) / 1e9;
			double rate = seconds > 0 ? (double)r->messages / seconds : 0;
			min_rate = rate < min_rate ? rate : min_rate;
		}
		if (error[0] == '\0' &&
		    (messages != c->producer.messages || checksum != c->producer.checksum)) {
			snprintf(error, error_size,
			         "the readers verified %llu messages (checksum %016llx), the "
			         "producer wrote %llu (%016llx)",
			         (unsigned long long)messages, (unsigned long long)checksum,
			         (unsigned long long)c->producer.messages,
			         (unsigned long long)c->producer.checksum);
		}
		double seconds = (double)(last_end - c->start_ns) / 1e9;
		/* The pool's rate is the sum of its readers'. */
		sum_rate = seconds > 0 ? (double)messages / seconds * readers : 0;
	}
	for (int i = 0; i < readers && !pool; i++) {
		const struct bench_party_result *r = &c->reader[i].result;
		if (error[0] != '\0') {
			break;
		}
		if (r->failed) {
			snprintf(error, error_size, "%s", r->what);
		} else if (r->messages != c->producer.messages ||
		           r->checksum != c->producer.checksum) {
			snprintf(error, error_size,
			         "reader %d verified %llu messages (checksum %016llx), the "
			         "producer wrote %llu (%016llx)",
			         i, (unsigned long long)r->messages,
			         (unsigned long long)r->checksum,
			         (unsigned long long)c->producer.messages,
			         (unsigned long long)c->producer.checksum);
		} else {
			double seconds = (double)(r->end_ns - c->start_ns) / 1e9;
			double rate = seconds > 0 ? (double)r->messages / seconds : 0;
			sum_rate += rate;
			min_rate = rate < min_rate ? rate : min_rate;
		}
	}
	if (error[0] == '\0' && failed) {
		snprintf(error, error_size, "a benchmark process failed");
	}
	if (error[0] == '\0' && c->producer.messages == 0) {
		snprintf(error, error_size, "no message was sent");
	}
	if (error[0] == '\0') {
		*per_reader = sum_rate / readers;
		*slowest = min_rate;
		out->messages = c->producer.messages;
		out->producer_seconds = (double)(c->producer.end_ns - c->start_ns) / 1e9;
		rc = 0;
	}
out:
	for (int i = 0; i < created; i++) {
		unlink(s.paths[i]);
	}
	munmap(s.control, sizeof(struct fanout_control));
	bench_body_free(&s.body);
	return rc;
}

void bench_measure_fanout(struct bench_fanout *f, const char *dir, uint64_t ring_bytes,
                          int64_t duration_ns, int reader_cpu, int producer_cpu)
{
	f->ok = 1;
	for (int k = 0; k < 2; k++) {
		for (int n = 0; n < f->count_n; n++) {
			struct bench_fanout_cell *cell = &f->cells[k][n];
			memset(cell, 0, sizeof(*cell));
			cell->kind = k;
			cell->readers = k == BENCH_SEPARATE_RINGS && f->pool ? 1 : f->counts[n];
			cell->ok = 1;
		}
	}
	/* N-major, the two kinds alternating within each repeat: what a ratio
	 * compares runs close together in time. */
	for (int n = 0; n < f->count_n; n++) {
		for (int repeat = 0; repeat < f->repeats; repeat++) {
			for (int k = 0; k < 2; k++) {
				struct bench_fanout_cell *cell = &f->cells[k][n];
				struct bench_fanout_cell trial = *cell;
				double per_reader = 0, slowest = 0;
				trial.error[0] = '\0';
				cell->ran = 1;
				if (run_once(f->pool, k,
				             k == BENCH_SEPARATE_RINGS && f->pool ? 1
				                                                  : cell->readers,
				             dir, ring_bytes, duration_ns, reader_cpu, producer_cpu,
				             f->message_size, &trial, &per_reader, &slowest) != 0) {
					cell->trial_rate[repeat] = 0;
					if (cell->ok) {
						memcpy(cell->error, trial.error,
						       sizeof(cell->error));
					}
					cell->ok = 0;
					f->ok = 0;
					continue;
				}
				cell->trial_rate[repeat] = per_reader;
				if (cell->ok && per_reader > cell->per_reader_rate) {
					cell->per_reader_rate = per_reader;
					cell->slowest_reader_rate = slowest;
					cell->messages = trial.messages;
					cell->producer_seconds = trial.producer_seconds;
				}
			}
		}
	}
}

double bench_fanout_ratio(const struct bench_fanout *f, int count_index)
{
	const struct bench_fanout_cell *a = &f->cells[BENCH_FANOUT_RING][count_index];
	const struct bench_fanout_cell *b = &f->cells[BENCH_SEPARATE_RINGS][count_index];
	if (!a->ran || !b->ran || !a->ok || !b->ok || b->per_reader_rate <= 0) {
		return NAN;
	}
	return a->per_reader_rate / b->per_reader_rate;
}

void bench_fanout_ratio_spread(const struct bench_fanout *f, int count_index, double *min,
                               double *max)
{
	const struct bench_fanout_cell *a = &f->cells[BENCH_FANOUT_RING][count_index];
	const struct bench_fanout_cell *b = &f->cells[BENCH_SEPARATE_RINGS][count_index];
	*min = INFINITY;
	*max = -INFINITY;
	for (int i = 0; i < f->repeats; i++) {
		if (a->trial_rate[i] > 0 && b->trial_rate[i] > 0) {
			double r = a->trial_rate[i] / b->trial_rate[i];
			*min = r < *min ? r : *min;
			*max = r > *max ? r : *max;
		}
	}
	if (*min > *max) {
		*min = *max = NAN;
	}
}
