/* SPDX-License-Identifier: MIT */
/*
 * Guard regions around the library's file mappings. Linked with
 * -Wl,--wrap=mmap,--wrap=munmap, every shared file mapping is placed in the
 * middle of a larger PROT_NONE reservation, so a read or write even slightly
 * outside the mapping faults at once instead of landing in a neighbouring
 * mapping. ASan cannot see such accesses (mmap'd memory is not poisoned);
 * this makes "never touches memory outside the mapping" observable.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>

void *__real_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
int __real_munmap(void *addr, size_t length);
void *__wrap_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
int __wrap_munmap(void *addr, size_t length);

#define GUARD_BYTES ((size_t)16 << 20)
#define MAX_GUARDED 256

struct guarded {
	uint8_t *user;
	uint8_t *reservation;
	size_t reservation_size;
};

static struct guarded table[MAX_GUARDED];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t page_round(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

void *__wrap_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	if (fd < 0 || addr != NULL || (flags & MAP_SHARED) == 0 || length == 0)
		return __real_mmap(addr, length, prot, flags, fd, offset);
	size_t size = page_round(length) + 2 * GUARD_BYTES;
	uint8_t *reservation =
	    __real_mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (reservation == MAP_FAILED)
		return MAP_FAILED;
	uint8_t *user =
	    __real_mmap(reservation + GUARD_BYTES, length, prot, flags | MAP_FIXED, fd, offset);
	if (user == MAP_FAILED) {
		__real_munmap(reservation, size);
		return MAP_FAILED;
	}
	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < MAX_GUARDED; i++) {
		if (table[i].user == NULL) {
			table[i] = (struct guarded){user, reservation, size};
			break;
		}
	}
	pthread_mutex_unlock(&table_lock);
	return user;
}

int __wrap_munmap(void *addr, size_t length)
{
	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < MAX_GUARDED; i++) {
		if (table[i].user == addr) {
			struct guarded g = table[i];
			table[i].user = NULL;
			pthread_mutex_unlock(&table_lock);
			return __real_munmap(g.reservation, g.reservation_size);
		}
	}
	pthread_mutex_unlock(&table_lock);
	return __real_munmap(addr, length);
}
