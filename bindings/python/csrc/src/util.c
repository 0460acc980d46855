/* SPDX-License-Identifier: MIT */
/* Small OS helpers: clocks, process liveness, randomness. */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

#include "handle.h"

int64_t mrbi_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A pid read from shared memory is untrusted: 0, negative values (process
 * groups for kill) and pids above the kernel's limit are never "alive". */
bool mrbi_process_alive(uint32_t pid)
{
	if (pid == 0 || pid > MRB_CONTROL_PID_MASK)
		return false;
	if (kill((pid_t)pid, 0) == 0)
		return true;
	return errno == EPERM;
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
