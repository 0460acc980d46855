/* SPDX-License-Identifier: MIT */
/*
 * Telling the opener of a handle from a child that inherited it across
 * fork(2). A child's copy of a handle must not touch the ring's shared state
 * (the parent may be the consumer, or asleep in a call), so every call checks
 * a word in a private page mapped with MADV_WIPEONFORK: the kernel hands the
 * child that page zero-filled. One load from a private, cached line per call;
 * no getpid() (a system call) and no global state.
 */
/* glibc: MADV_WIPEONFORK */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/mman.h>
#include <unistd.h>

#include "handle.h"

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18 /* Linux 4.14 */
#endif

#define MRB_FORK_GUARD_SIZE 4096

const _Atomic uint32_t *mrbi_fork_guard_create(void)
{
	void *page = mmap(NULL, MRB_FORK_GUARD_SIZE, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return NULL;
	if (madvise(page, MRB_FORK_GUARD_SIZE, MADV_WIPEONFORK) != 0) {
		/* An old kernel: handle_in_opener compares pids instead. */
		munmap(page, MRB_FORK_GUARD_SIZE);
		return NULL;
	}
	_Atomic uint32_t *word = page;
	atomic_store_explicit(word, 1, memory_order_relaxed);
	return word;
}

void mrbi_fork_guard_destroy(const _Atomic uint32_t *guard)
{
	if (guard != NULL)
		munmap((void *)(uintptr_t)guard, MRB_FORK_GUARD_SIZE);
}
