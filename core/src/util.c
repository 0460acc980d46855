/* SPDX-License-Identifier: MIT */
/* Small OS helpers: clocks, process liveness, randomness. */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "handle.h"

int64_t mrbi_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint32_t mrbi_getpid(void)
{
	return (uint32_t)getpid();
}

int64_t mrbi_deadline(int64_t now_ns, int64_t timeout_ns)
{
	if (timeout_ns < 0 || timeout_ns > INT64_MAX - now_ns)
		return INT64_MAX;
	return now_ns + timeout_ns;
}

/* Field 22 of /proc/PID/stat: the start time in clock ticks since boot.
 * The command name (field 2) may hold spaces and parentheses, so parsing
 * starts after its last ')'. 0 if unknown. */
static uint64_t process_start_time(uint32_t pid)
{
	char path[48], buf[1024];
	snprintf(path, sizeof(path), "/proc/%u/stat", (unsigned)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* errno tells why */
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	/* After ")": field 3 (state) is the first; skip to field 22. */
	for (int field = 2; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL)
		return 0;
	return strtoull(p + 1, NULL, 10);
}

static uint64_t pid_namespace(void)
{
	struct stat st;
	if (stat("/proc/self/ns/pid", &st) != 0)
		return 0;
	return (uint64_t)st.st_ino;
}

void mrbi_identity_self(struct mrb_identity *id)
{
	id->pid = (uint32_t)getpid();
	id->start_time = process_start_time(id->pid);
	id->pid_ns = pid_namespace();
}

/* A pid read from shared memory is untrusted: 0, negative values (process
 * groups for kill) and pids above the kernel's limit name nobody. */
enum mrbi_liveness mrbi_liveness(const struct mrb_identity *id)
{
	if (id->pid == 0 || id->pid > MRB_MAX_PID)
		return MRBI_DEAD;
	/* Another pid namespace: its pids mean other processes here. */
	uint64_t ns = pid_namespace();
	if (id->pid_ns != 0 && ns != 0 && id->pid_ns != ns)
		return MRBI_ALIVE;
	bool checked = kill((pid_t)id->pid, 0) == 0;
	if (!checked && errno == ESRCH)
		return MRBI_DEAD;
	/* The pid exists, or kill cannot tell (EPERM, a seccomp filter). With
	 * a known start time /proc can: another start time means the pid was
	 * reused, and no entry at all (while /proc shows this process) means
	 * no such process. */
	if (id->start_time != 0) {
		uint64_t now = process_start_time(id->pid);
		if (now != 0 && now != id->start_time)
			return MRBI_DEAD;
		if (now == 0 && !checked && errno == ENOENT &&
		    process_start_time(mrbi_getpid()) != 0)
			return MRBI_DEAD;
	}
	return MRBI_ALIVE;
}

uint64_t mrbi_random64(void)
{
	uint64_t value = 0;
#if defined(__linux__)
	if (getrandom(&value, sizeof(value), GRND_NONBLOCK) == (ssize_t)sizeof(value))
		return value;
#endif
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	value = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 16) ^
	        (uint64_t)(uintptr_t)&value;
	/* splitmix64 finaliser spreads the few bits of entropy above. */
	value ^= value >> 30;
	value *= UINT64_C(0xbf58476d1ce4e5b9);
	value ^= value >> 27;
	value *= UINT64_C(0x94d049bb133111eb);
	return value ^ (value >> 31);
}

bool mrbi_cpu_prefetchw(void)
{
#if defined(__x86_64__) || defined(__i386__)
	/* CPUID 0x80000001, ECX bit 8: PRFCHW (Linux: 3dnowprefetch). */
	unsigned eax, ebx, ecx, edx;
	return __get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 8)) != 0;
#else
	return true; /* __builtin_prefetch(p, 1) where there is no such bit */
#endif
}
