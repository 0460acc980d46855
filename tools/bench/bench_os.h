/* SPDX-License-Identifier: MIT */
/* The operating-system pieces every benchmark needs: clock, CPU pinning, a
 * shared-memory file, machine description. */
#ifndef MRB_TOOLS_BENCH_BENCH_OS_H
#define MRB_TOOLS_BENCH_BENCH_OS_H

#include <stddef.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

static inline int64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Tells the sibling hyperthread / hypervisor that we are spinning. */
static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

void bench_sleep_ns(int64_t ns);

/* A producer that found the ring full for the `spins`-th time in a row:
 * spins briefly, then gives its CPU away now and then. Two producers share
 * one CPU in the two-producer rows; one preempted between its claim and its
 * commit holds the consumer at that record, and the other, spinning on a
 * full ring, would otherwise burn its whole time slice waiting for a commit
 * that only the preempted one can make (mrb_write_wait yields the same way
 * before it sleeps). */
static inline void bench_full_pause(unsigned spins)
{
	if (spins % 64 == 0)
		sched_yield();
	else
		bench_cpu_relax();
}

/* The CPUs this process may run on, in ascending order. Returns the count. */
int bench_allowed_cpus(int *cpus, int max);

/* Pins the calling process to one CPU. Returns 0 or -errno. */
int bench_pin_to_cpu(int cpu);

/* Creates (replacing) a file of `len` bytes at `path` and maps it shared.
 * Returns the mapping or NULL with *err = -errno. */
void *bench_map_new_file(const char *path, size_t len, int *err);

/* Maps an existing file created by bench_map_new_file. */
void *bench_map_file(const char *path, size_t len, int *err);

/* An anonymous shared mapping, inherited across fork(). */
void *bench_map_shared(size_t len);

/* "model name" from /proc/cpuinfo (or "unknown"). */
void bench_cpu_model(char *buf, size_t size);

#endif /* MRB_TOOLS_BENCH_BENCH_OS_H */
