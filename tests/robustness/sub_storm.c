/* SPDX-License-Identifier: MIT */
/*
 * Description: kill -9 storm on a fan-out ring with subscribers. Four
 * producer processes (two writing with mrb_write, two with mrb_write_batch
 * runs of 1..8) write per-producer sequence-numbered, checksummed messages;
 * two named durable subscribers (keep policy, reading with mrb_hold +
 * mrb_read_many_at and logging before mrb_release_through), one unnamed
 * durable subscriber, one named evictable subscriber and two lossy taps (one
 * of them slow, so that producers lap it) read at once. A controller
 * SIGKILLs random processes at random instants and restarts each at once
 * (producers as a new incarnation with its own sequence), then stops the
 * producers and lets every subscriber drain to the final producer position.
 * Every message length gives a 128-byte record, which divides the capacity:
 * the only padding is what recovery makes of killed producers' claims.
 *
 * Checks, exactly:
 *  - every message delivered to anyone is intact (length, checksum, bytes);
 *  - the named durable subscribers' released streams (what they read and
 *    released, across all their restarts: a message read but not released
 *    before a kill is read again, and only that) are identical, strictly
 *    increasing in position, and per producer incarnation the sequence
 *    0..k-1 with committed <= k <= attempted (a killed batch loses a
 *    suffix): nothing committed lost or duplicated. This is the reference;
 *  - each resume of a named durable subscriber starts after everything it
 *    released and at or before the first message it read and did not
 *    release;
 *  - the unnamed durable subscriber's stream, per incarnation, is exactly a
 *    contiguous slice of the reference, and the last one reaches its end;
 *  - the evictable and lossy subscribers deliver only reference messages
 *    at their reference positions, strictly in order (MRB_ELAPPED is how
 *    the evictable one learns of a loss);
 *  - for the last incarnation of each lossy tap, over [join, end):
 *    the record bytes of reference messages it did not deliver <= lost_bytes,
 *    and delivered record bytes + lost_bytes <= end - join, with equality
 *    when recovery left no padding in that range;
 *  - no hang: every wait has a deadline and the drain must finish.
 * `sub_storm --long [seconds]` storms longer (default 3 s).
 */
#include <stdbool.h>
#include <sys/mman.h>

#include "rtest.h"

#define RING_SIZE    (64 * 1024)
#define SPAN         128 /* every record's size: 16 + 97..112, rounded */
#define MIN_LEN      97
#define LEN_RANGE    16
#define PRODUCERS    4
#define MAX_INCS     4096
#define BATCH_MAX    8
#define MSG_LIMIT    400000 /* messages over all producers, a bound on logs */
#define LOG_CAP      (2 * MSG_LIMIT + 200000)
#define HEADER_BYTES 24

enum role { D0, D1, U0, E0, L0, L1, SUBS };
static const char *const role_name[SUBS] = {"D0", "D1", "U0", "E0", "L0", "L1"};

enum kind { K_JOIN = 1, K_MSG, K_RELEASED, K_ELAPPED, K_FINAL };

struct log_entry {
	uint8_t kind;
	uint8_t intact;
	uint16_t inc; /* the subscriber's incarnation */
	uint16_t stream;
	uint16_t pinc; /* the producer's incarnation */
	uint32_t seq;
	uint32_t len;
	uint64_t pos; /* message position; JOIN/RELEASED/FINAL: a position */
	uint64_t aux; /* FINAL: lost_bytes */
};

struct sublog {
	_Atomic uint64_t count;
	struct log_entry e[LOG_CAP];
};

struct producer_inc {
	_Atomic uint32_t committed; /* messages 0..committed-1 are committed */
	_Atomic uint32_t attempted; /* at most 0..attempted-1 can be */
};

struct shared {
	_Atomic uint32_t stop;
	_Atomic uint32_t drain;
	_Atomic uint64_t final_tail;
	_Atomic uint64_t produced;
	_Atomic uint32_t joined[SUBS];
	uint32_t pincs[PRODUCERS];
	struct producer_inc pinc[PRODUCERS][MAX_INCS];
	struct sublog log[SUBS];
};

static struct shared *shm;
static const char *ring_path;

struct message_header {
	uint16_t stream;
	uint16_t inc;
	uint32_t seq;
	uint32_t len;
	uint32_t zero;
	uint64_t checksum;
};
_Static_assert(sizeof(struct message_header) == HEADER_BYTES, "message header");

static uint64_t seed_of(uint32_t stream, uint32_t inc, uint32_t seq)
{
	return ((uint64_t)stream << 56) ^ ((uint64_t)inc << 32) ^ seq;
}

static size_t length_of(uint64_t seed)
{
	uint64_t h = seed * UINT64_C(0x9e3779b97f4a7c15);
	return MIN_LEN + (size_t)((h >> 40) % LEN_RANGE);
}

static uint64_t checksum_of(const uint8_t *msg, size_t len)
{
	return rtest_fnv1a(msg, 16) ^ rtest_fnv1a(msg + HEADER_BYTES, len - HEADER_BYTES);
}

static size_t build(uint8_t *msg, uint32_t stream, uint32_t inc, uint32_t seq)
{
	uint64_t seed = seed_of(stream, inc, seq);
	size_t len = length_of(seed);
	struct message_header h = {(uint16_t)stream, (uint16_t)inc, seq, (uint32_t)len, 0, 0};
	memcpy(msg, &h, sizeof(h));
	rtest_fill(msg + HEADER_BYTES, len - HEADER_BYTES, seed);
	h.checksum = checksum_of(msg, len);
	memcpy(msg, &h, sizeof(h));
	return len;
}

static int verify(const uint8_t *data, size_t len, struct log_entry *e)
{
	struct message_header h;
	if (len < HEADER_BYTES)
		return 0;
	memcpy(&h, data, sizeof(h));
	e->stream = h.stream;
	e->pinc = h.inc;
	e->seq = h.seq;
	e->len = (uint32_t)len;
	if (h.stream >= PRODUCERS || h.len != len || h.zero != 0)
		return 0;
	uint64_t seed = seed_of(h.stream, h.inc, h.seq);
	return len == length_of(seed) && h.checksum == checksum_of(data, len) &&
	       rtest_matches(data + HEADER_BYTES, len - HEADER_BYTES, seed);
}

/* ---- Producers ----------------------------------------------------------- */

static void producer_main(uint32_t stream, uint32_t inc)
{
	struct mrb_ring ring;
	CHECK_RC(mrb_open(&ring, ring_path, 0), 0);
	struct producer_inc *me = &shm->pinc[stream][inc];
	static uint8_t batch[BATCH_MAX][128];
	uint32_t seq = 0;
	while (!atomic_load(&shm->stop)) {
		size_t n = stream % 2 == 1 ? 1 + (size_t)(seq % BATCH_MAX) : 1;
		if (atomic_fetch_add(&shm->produced, n) >= MSG_LIMIT)
			break;
		struct mrb_iovec iov[BATCH_MAX];
		for (size_t i = 0; i < n; i++) {
			iov[i].data = batch[i];
			iov[i].len = build(batch[i], stream, inc, seq + (uint32_t)i);
		}
		atomic_store(&me->attempted, seq + (uint32_t)n);
		int64_t written;
		for (;;) {
			written = n == 1 ? mrb_write(&ring, iov[0].data, iov[0].len)
			                 : mrb_write_batch(&ring, iov, n);
			if (n == 1 && written == 0)
				written = 1;
			if (written != MRB_EFULL)
				break;
			if (atomic_load(&shm->stop))
				_exit(0);
			/* A finite wait: a waiting producer must not depend on being
			 * woken to judge dead subscribers. */
			int rc = mrb_wait_writable(&ring, iov[0].len, 50 * 1000000LL);
			if (rc != 0 && rc != MRB_ETIMEDOUT)
				FAIL("producer wait: %s", mrb_strerror(rc));
		}
		if (written <= 0)
			FAIL("producer %u write: %s", stream, mrb_strerror((int)written));
		seq += (uint32_t)written;
		atomic_store(&me->committed, seq);
		atomic_store(&me->attempted, seq);
	}
	CHECK_RC(mrb_close(&ring), 0);
	_exit(0);
}

/* ---- Subscribers --------------------------------------------------------- */

static void log_add(enum role r, const struct log_entry *e)
{
	struct sublog *l = &shm->log[r];
	uint64_t n = atomic_load_explicit(&l->count, memory_order_relaxed);
	if (n >= LOG_CAP)
		FAIL("%s: log full", role_name[r]);
	l->e[n] = *e;
	/* Published after the entry: a kill leaves no half entry. */
	atomic_store_explicit(&l->count, n + 1, memory_order_release);
}

static uint64_t my_position(struct mrb_ring *sub)
{
	struct mrb_subscriber_info info;
	CHECK_RC(mrb_subscriber_info(sub, &info), 0);
	return info.position;
}

static void subscriber_main(enum role r, uint16_t inc)
{
	struct mrb_ring sub;
	struct mrb_subscribe_options opts = {0, NULL, 0};
	switch (r) {
	case D0:
	case D1:
		opts.name = role_name[r];
		break;
	case E0:
		opts.name = role_name[r];
		opts.flags = MRB_SUBSCRIBE_EVICT;
		opts.evict_after_ns = 20 * 1000000LL;
		break;
	case L0:
	case L1:
		opts.flags = MRB_SUBSCRIBE_LOSSY;
		break;
	default:
		break;
	}
	int rc = mrb_subscribe(&sub, ring_path, &opts);
	if (rc != 0)
		FAIL("%s: subscribe: %s", role_name[r], mrb_strerror(rc));
	bool hold = r == D0 || r == D1;
	if (hold)
		CHECK_RC(mrb_hold(&sub, 1), 0);
	struct log_entry j = {.kind = K_JOIN, .inc = inc, .pos = my_position(&sub)};
	log_add(r, &j);
	atomic_store(&shm->joined[r], 1);
	uint64_t rnd = (uint64_t)getpid() * 2654435761u + inc;
	int64_t drain_deadline = 0;
	uint8_t buf[32 * 128];
	size_t lens[32];
	uint64_t positions[32];
	for (uint64_t round = 0;; round++) {
		int64_t n = mrb_read_many_at(&sub, buf, sizeof(buf), lens, positions, 32);
		if (n == MRB_ELAPPED) {
			if (r != E0)
				FAIL("%s: MRB_ELAPPED", role_name[r]);
			struct log_entry e = {.kind = K_ELAPPED, .inc = inc};
			log_add(r, &e);
			continue;
		}
		if (n > 0) {
			size_t off = 0;
			for (int64_t i = 0; i < n; i++) {
				struct log_entry e = {
				    .kind = K_MSG, .inc = inc, .pos = positions[i]};
				e.intact = (uint8_t)verify(buf + off, lens[i], &e);
				off += lens[i];
				log_add(r, &e);
			}
			if (hold) {
				CHECK_RC(mrb_release_through(&sub, positions[n - 1]), 0);
				struct log_entry e = {
				    .kind = K_RELEASED, .inc = inc, .pos = my_position(&sub)};
				log_add(r, &e);
			}
			/* The slow tap falls behind now and then. */
			rnd = rnd * 6364136223846793005u + 1442695040888963407u;
			if (r == L0 && (rnd >> 33) % 8 == 0)
				rtest_sleep_ms(1 + (long)((rnd >> 40) % 3));
			continue;
		}
		if (n != MRB_EEMPTY)
			FAIL("%s: read: %s", role_name[r], mrb_strerror((int)n));
		if (atomic_load(&shm->drain)) {
			uint64_t end = atomic_load(&shm->final_tail);
			if (drain_deadline == 0)
				drain_deadline = rtest_now_ns() + 30 * 1000000000LL;
			if (my_position(&sub) == end)
				break;
			if (rtest_now_ns() > drain_deadline)
				FAIL("%s: drain stuck at %" PRIu64 ", end %" PRIu64, role_name[r],
				     my_position(&sub), end);
		}
		rc = mrb_wait_readable(&sub, 20 * 1000000LL);
		if (rc == MRB_ELAPPED) {
			struct log_entry e = {.kind = K_ELAPPED, .inc = inc};
			log_add(r, &e);
		} else if (rc != 0 && rc != MRB_ETIMEDOUT) {
			FAIL("%s: wait: %s", role_name[r], mrb_strerror(rc));
		}
	}
	struct mrb_subscriber_info info;
	CHECK_RC(mrb_subscriber_info(&sub, &info), 0);
	struct log_entry f = {
	    .kind = K_FINAL, .inc = inc, .pos = info.position, .aux = info.lost_bytes};
	log_add(r, &f);
	CHECK_RC(mrb_close(&sub), 0);
	_exit(0);
}

/* ---- Controller ---------------------------------------------------------- */

static pid_t prod_pid[PRODUCERS], sub_pid[SUBS];
static uint16_t sub_incs[SUBS];

static void spawn_producer(uint32_t s)
{
	uint32_t k = shm->pincs[s]++;
	CHECK(k < MAX_INCS);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		producer_main(s, k);
	prod_pid[s] = pid;
}

static void spawn_subscriber(enum role r)
{
	uint16_t inc = sub_incs[r]++;
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		subscriber_main(r, inc);
	sub_pid[r] = pid;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static const char *who(pid_t pid)
{
	for (int s = 0; s < PRODUCERS; s++)
		if (prod_pid[s] == pid)
			return "producer";
	for (int r = 0; r < SUBS; r++)
		if (sub_pid[r] == pid)
			return role_name[r];
	return "?";
}

/* Children must not exit by themselves during the storm, except producers
 * that reached the message limit. */
static void reap_exited(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			FAIL("child %d (%s) %s %d", (int)pid, who(pid),
			     WIFSIGNALED(status) ? "killed by signal" : "exited with",
			     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		for (int s = 0; s < PRODUCERS; s++)
			if (prod_pid[s] == pid)
				prod_pid[s] = 0;
		for (int r = 0; r < SUBS; r++)
			if (sub_pid[r] == pid)
				FAIL("%s exited during the storm", role_name[r]);
	}
}

/* Waits for a child with a deadline: a hang fails the test. */
static void expect_exit0_by(pid_t pid, const char *what, int64_t deadline)
{
	for (;;) {
		int status;
		pid_t got = waitpid(pid, &status, WNOHANG);
		if (got == pid) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				FAIL("%s: %s %d", what,
				     WIFSIGNALED(status) ? "killed by signal" : "exit status",
				     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			return;
		}
		if (got < 0 && errno != EINTR)
			FAIL("waitpid: %s", strerror(errno));
		if (rtest_now_ns() > deadline) {
			kill(pid, SIGKILL);
			FAIL("%s did not finish (hang)", what);
		}
		rtest_sleep_ms(5);
	}
}

/* ---- Checker ------------------------------------------------------------- */

struct ref_msg {
	uint64_t pos;
	uint16_t stream, pinc;
	uint32_t seq;
};

static struct ref_msg *ref;
static size_t ref_count;

/* The reference message at `pos`, or NULL. */
static const struct ref_msg *ref_at(uint64_t pos)
{
	size_t lo = 0, hi = ref_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ref[mid].pos < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ref_count && ref[lo].pos == pos ? &ref[lo] : NULL;
}

static size_t ref_index(uint64_t pos)
{
	const struct ref_msg *m = ref_at(pos);
	CHECK(m != NULL);
	return (size_t)(m - ref);
}

static void check_intact(enum role r, const struct log_entry *e)
{
	if (!e->intact)
		FAIL("%s: torn or foreign message at %" PRIu64 " (stream %u inc %u seq %u len %u)",
		     role_name[r], e->pos, e->stream, e->pinc, e->seq, e->len);
}

static void check_is_ref(enum role r, const struct log_entry *e)
{
	check_intact(r, e);
	const struct ref_msg *m = ref_at(e->pos);
	if (m == NULL || m->stream != e->stream || m->pinc != e->pinc || m->seq != e->seq)
		FAIL("%s: message at %" PRIu64 " (stream %u inc %u seq %u) is not the "
		     "reference's",
		     role_name[r], e->pos, e->stream, e->pinc, e->seq);
}

/* The released stream of a named durable subscriber, across restarts. */
static struct ref_msg *released_stream(enum role r, size_t *count_out)
{
	struct sublog *l = &shm->log[r];
	uint64_t n = atomic_load(&l->count);
	struct ref_msg *out = calloc(n + 1, sizeof(*out));
	size_t count = 0, pending_from = 0;
	uint64_t released_end = 0; /* everything before is released */
	int incs = 0;
	for (uint64_t i = 0; i < n; i++) {
		const struct log_entry *e = &l->e[i];
		switch (e->kind) {
		case K_JOIN:
			if (incs++ > 0) {
				/* Read before the kill: released if before the resume
				 * point, read again otherwise. */
				if (e->pos < released_end)
					FAIL("%s inc %u: resumed at %" PRIu64
					     " before its release point %" PRIu64,
					     role_name[r], e->inc, e->pos, released_end);
				size_t keep = pending_from;
				while (keep < count && out[keep].pos < e->pos)
					keep++;
				count = keep;
			} else if (e->pos != 0) {
				FAIL("%s: first join at %" PRIu64 ", expected 0", role_name[r],
				     e->pos);
			}
			pending_from = count;
			released_end = e->pos;
			break;
		case K_MSG:
			check_intact(r, e);
			if (count > 0 && e->pos <= out[count - 1].pos)
				FAIL("%s inc %u: position %" PRIu64 " after %" PRIu64
				     " (repeat or reorder)",
				     role_name[r], e->inc, e->pos, out[count - 1].pos);
			out[count++] = (struct ref_msg){e->pos, e->stream, e->pinc, e->seq};
			break;
		case K_RELEASED:
			if (count > 0 && e->pos < out[count - 1].pos + SPAN)
				FAIL("%s: released to %" PRIu64 " short of its last read %" PRIu64,
				     role_name[r], e->pos, out[count - 1].pos);
			pending_from = count;
			released_end = e->pos;
			break;
		case K_FINAL:
			if (e->pos != atomic_load(&shm->final_tail))
				FAIL("%s: final position %" PRIu64, role_name[r], e->pos);
			break;
		default:
			FAIL("%s: log entry kind %u", role_name[r], e->kind);
		}
	}
	*count_out = count;
	return out;
}

static void check_reference(void)
{
	size_t n1;
	ref = released_stream(D0, &ref_count);
	struct ref_msg *other = released_stream(D1, &n1);
	if (n1 != ref_count)
		FAIL("D0 released %zu messages, D1 %zu", ref_count, n1);
	for (size_t i = 0; i < n1; i++)
		if (memcmp(&ref[i], &other[i], sizeof(ref[i])) != 0)
			FAIL("D0 and D1 differ at message %zu (positions %" PRIu64 ", %" PRIu64 ")",
			     i, ref[i].pos, other[i].pos);
	free(other);
	/* Per producer incarnation: 0..k-1 in order, committed <= k <= attempted. */
	uint32_t *next[PRODUCERS];
	for (int s = 0; s < PRODUCERS; s++)
		next[s] = calloc(shm->pincs[s] + 1, sizeof(uint32_t));
	for (size_t i = 0; i < ref_count; i++) {
		const struct ref_msg *m = &ref[i];
		if (m->pinc >= shm->pincs[m->stream])
			FAIL("unknown producer incarnation %u of %u", m->pinc, m->stream);
		if (m->seq != next[m->stream][m->pinc])
			FAIL("producer %u inc %u: seq %u where %u was due (gap, duplicate or "
			     "reorder)",
			     m->stream, m->pinc, m->seq, next[m->stream][m->pinc]);
		next[m->stream][m->pinc]++;
	}
	uint64_t lost_in_flight = 0, incs = 0;
	for (int s = 0; s < PRODUCERS; s++) {
		for (uint32_t k = 0; k < shm->pincs[s]; k++) {
			uint32_t committed = atomic_load(&shm->pinc[s][k].committed);
			uint32_t attempted = atomic_load(&shm->pinc[s][k].attempted);
			uint32_t got = next[s][k];
			if (got < committed || got > attempted)
				FAIL("producer %d inc %u: %u delivered, committed %u, attempted %u",
				     s, k, got, committed, attempted);
			lost_in_flight += attempted - got;
			incs++;
		}
		free(next[s]);
	}
	printf("reference: %zu messages from %" PRIu64 " producer incarnations "
	       "(%" PRIu64 " in flight at kills not committed)\n",
	       ref_count, incs, lost_in_flight);
}

static void check_unnamed(void)
{
	struct sublog *l = &shm->log[U0];
	uint64_t n = atomic_load(&l->count);
	size_t expect = SIZE_MAX;
	int final = 0;
	for (uint64_t i = 0; i < n; i++) {
		const struct log_entry *e = &l->e[i];
		if (e->kind == K_JOIN) {
			expect = SIZE_MAX;
		} else if (e->kind == K_MSG) {
			check_is_ref(U0, e);
			size_t at = ref_index(e->pos);
			if (expect != SIZE_MAX && at != expect)
				FAIL("U0 inc %u: reference message %zu after %zu (gap or repeat)",
				     e->inc, at, expect - 1);
			expect = at + 1;
		} else if (e->kind == K_FINAL) {
			final = 1;
			if (expect != SIZE_MAX && expect != ref_count)
				FAIL("U0: drained at reference message %zu of %zu", expect,
				     ref_count);
		}
	}
	CHECK(final);
}

static void check_validating(enum role r)
{
	struct sublog *l = &shm->log[r];
	uint64_t n = atomic_load(&l->count);
	uint64_t last = 0, delivered_spans = 0, join = 0, elapsed = 0, msgs = 0;
	bool any = false, elapsed_since = false;
	uint16_t last_inc = 0;
	for (uint64_t i = 0; i < n; i++) {
		const struct log_entry *e = &l->e[i];
		switch (e->kind) {
		case K_JOIN:
			join = e->pos;
			delivered_spans = 0;
			if (r != E0)
				any = false; /* each tap incarnation is a new subscriber */
			break;
		case K_MSG:
			check_is_ref(r, e);
			if (r == E0 && any && e->inc == last_inc && !elapsed_since &&
			    ref_index(e->pos) != ref_index(last) + 1)
				FAIL("E0 inc %u: reference message %zu after %zu without "
				     "MRB_ELAPPED",
				     e->inc, ref_index(e->pos), ref_index(last));
			elapsed_since = false;
			last_inc = e->inc;
			if (any && e->pos <= last)
				FAIL("%s inc %u: position %" PRIu64 " after %" PRIu64, role_name[r],
				     e->inc, e->pos, last);
			if (e->pos < join)
				FAIL("%s inc %u: message at %" PRIu64
				     " before its join at %" PRIu64,
				     role_name[r], e->inc, e->pos, join);
			any = true;
			last = e->pos;
			delivered_spans += SPAN;
			msgs++;
			break;
		case K_ELAPPED:
			elapsed++;
			elapsed_since = true;
			break;
		case K_FINAL: {
			uint64_t end = e->pos, lost = e->aux;
			if (end != atomic_load(&shm->final_tail))
				FAIL("%s: final position %" PRIu64, role_name[r], end);
			if (r == E0)
				break;
			/* Reference messages in [join, end) not delivered. */
			uint64_t in_range = 0;
			for (size_t k = 0; k < ref_count; k++)
				if (ref[k].pos >= join && ref[k].pos < end)
					in_range++;
			uint64_t undelivered = in_range * SPAN - delivered_spans;
			uint64_t padding = (end - join) - in_range * SPAN;
			if (undelivered > lost)
				FAIL("%s: %" PRIu64 " bytes of messages not delivered, lost_bytes "
				     "%" PRIu64,
				     role_name[r], undelivered, lost);
			if (delivered_spans + lost > end - join)
				FAIL("%s: delivered %" PRIu64 " + lost %" PRIu64
				     " > produced %" PRIu64,
				     role_name[r], delivered_spans, lost, end - join);
			if (padding == 0 && delivered_spans + lost != end - join)
				FAIL("%s: delivered %" PRIu64 " + lost %" PRIu64
				     " != produced %" PRIu64,
				     role_name[r], delivered_spans, lost, end - join);
			printf("%s: last incarnation delivered %" PRIu64 " B + lost %" PRIu64
			       " B = %" PRIu64 " B of %" PRIu64 " B produced since it joined "
			       "(%" PRIu64 " B recovery padding)\n",
			       role_name[r], delivered_spans, lost, delivered_spans + lost,
			       end - join, padding);
			break;
		}
		default:
			break;
		}
	}
	printf("%s: %" PRIu64 " messages over %u incarnations, %" PRIu64 " MRB_ELAPPED\n",
	       role_name[r], msgs, (unsigned)sub_incs[r], elapsed);
}

int main(int argc, char **argv)
{
	int64_t storm_ms = 3000;
	if (argc > 1 && strcmp(argv[1], "--long") == 0)
		storm_ms = argc > 2 ? atol(argv[2]) * 1000 : 60000;
	rtest_watchdog((unsigned)(storm_ms / 1000) + 240);
	ring_path = rtest_path("storm.ring");
	shm = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
	           MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(shm != MAP_FAILED);

	struct mrb_ring ring;
	struct mrb_create_options copts = {.flags = MRB_CREATE_REMOVE | MRB_CREATE_FANOUT,
	                                   .mode = 0600};
	CHECK_RC(mrb_create(&ring, ring_path, RING_SIZE, &copts), 0);
	CHECK_EQ_U64(mrb_capacity(&ring) % SPAN, 0);

	/* Every subscriber is in before the first message. */
	for (int r = 0; r < SUBS; r++)
		spawn_subscriber((enum role)r);
	for (int r = 0; r < SUBS; r++)
		while (!atomic_load(&shm->joined[r]))
			rtest_sleep_ms(1);
	for (uint32_t s = 0; s < PRODUCERS; s++)
		spawn_producer(s);

	uint64_t kills = 0;
	int64_t end = rtest_now_ns() + storm_ms * 1000000LL;
	while (rtest_now_ns() < end) {
		rtest_sleep_ms(2 + (long)(rnd() % 20));
		reap_exited();
		int victim = (int)(rnd() % (PRODUCERS + SUBS));
		if (victim < PRODUCERS) {
			if (prod_pid[victim] == 0)
				continue; /* done: the message limit */
			rtest_kill(prod_pid[victim]);
			spawn_producer((uint32_t)victim);
		} else {
			enum role r = (enum role)(victim - PRODUCERS);
			rtest_kill(sub_pid[r]);
			spawn_subscriber(r);
		}
		kills++;
	}
	atomic_store(&shm->stop, 1);
	int64_t deadline = rtest_now_ns() + 60 * 1000000000LL;
	for (int s = 0; s < PRODUCERS; s++)
		if (prod_pid[s] != 0)
			expect_exit0_by(prod_pid[s], "producer", deadline);

	struct mrb_stats st;
	CHECK_RC(mrb_stats(&ring, &st), 0);
	atomic_store(&shm->final_tail, st.producer_position);
	atomic_store(&shm->drain, 1);
	for (int r = 0; r < SUBS; r++)
		expect_exit0_by(sub_pid[r], role_name[r], deadline);
	printf("storm: %" PRIu64 " kills in %" PRId64 " ms, %" PRIu64 " messages attempted, "
	       "final position %" PRIu64 ", recovered %" PRIu64 " records\n",
	       kills, storm_ms, atomic_load(&shm->produced), st.producer_position,
	       st.recovered_records);

	check_reference();
	check_unnamed();
	check_validating(E0);
	check_validating(L0);
	check_validating(L1);
	/* Everything drained: the release position is at the end. */
	CHECK_RC(mrb_stats(&ring, &st), 0);
	if (st.consumer_position != st.producer_position) {
		/* Which entry holds it. */
		struct mrb_subscriber_info si[16];
		int64_t ns = mrb_subscribers(&ring, si, 16);
		for (int64_t i = 0; i < ns && i < 16; i++)
			fprintf(stderr,
			        "entry %u name '%s' flags %u state %d pid %d alive %d "
			        "position %" PRIu64 "\n",
			        si[i].index, si[i].name, si[i].flags, (int)si[i].state,
			        (int)si[i].pid, (int)si[i].alive, si[i].position);
	}
	CHECK_EQ_U64(st.consumer_position, st.producer_position);
	CHECK_RC(mrb_close(&ring), 0);
	printf("sub_storm: ok\n");
	return 0;
}
