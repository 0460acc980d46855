/* SPDX-License-Identifier: MIT */
/*
 * Asymmetric memory barriers: the hot side of a Dekker-style handshake pays
 * only a compiler barrier, and the rare side pays for both with membarrier(2).
 *
 * Two handshakes use it. A writer that publishes data (a producer's commit,
 * the consumer's release of space) then checks for sleepers; a sleeper
 * announces itself and then re-checks for data. Each side's store must be
 * ordered before its load, or both can miss each other and the sleeper
 * sleeps through the wake-up. A full fence on every message would drain the
 * store buffer while the line being published is still in flight to the
 * other core, which is what a message costs between cores. Instead the
 * sleeper, about to make a system call anyway, calls
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED): every thread of every
 * registered process then executes a full barrier, which turns the
 * publishers' compiler barriers into fences exactly when it matters.
 * mrb_close uses the same idea within the process (PRIVATE_EXPEDITED) for its
 * handshake with the handle's producer thread and its adopted consumer
 * thread, and so does a consumer call from another thread that revokes the
 * adopted one (handle.h, consumer_role_enter).
 *
 * A process registers when it opens a writable handle. If the kernel refuses
 * (no membarrier, or a seccomp filter), that handle keeps full fences; a
 * sleeper whose membarrier fails bounds its sleep instead (wait.c).
 */
/* glibc: syscall */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "handle.h"

#if defined(__linux__) && defined(__NR_membarrier)
static long membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

unsigned mrbi_barrier_register(void)
{
	long supported = membarrier(MEMBARRIER_CMD_QUERY);
	if (supported < 0)
		return 0;
	unsigned barriers = 0;
	/* Both the command and its registration must be there: a kernel may
	 * offer one without the other, and an unregistered process is not
	 * interrupted by the expedited commands. */
	if ((supported & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0 &&
	    (supported & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0 &&
	    membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0)
		barriers |= MRB_BARRIER_GLOBAL;
	if ((supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
	    (supported & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0 &&
	    membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
		barriers |= MRB_BARRIER_PRIVATE;
	return barriers;
}

int mrbi_barrier_global(void)
{
	return membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0 ? 0 : -errno;
}

int mrbi_barrier_private(void)
{
	return membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0 ? 0 : -errno;
}
#else
unsigned mrbi_barrier_register(void)
{
	return 0;
}

int mrbi_barrier_global(void)
{
	return -ENOSYS;
}

int mrbi_barrier_private(void)
{
	return -ENOSYS;
}
#endif
