/* SPDX-License-Identifier: MIT */
/* sched_setaffinity, F_GETPIPE_SZ, and POSIX under -std=c11. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_os.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void bench_sleep_ns(int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

int bench_allowed_cpus(int *cpus, int max)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) != 0) {
		return 0;
	}
	int count = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE && count < max; cpu++) {
		if (CPU_ISSET(cpu, &set)) {
			cpus[count++] = cpu;
		}
	}
	return count;
}

int bench_pin_to_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0 ? 0 : -errno;
}

static void *map_fd(int fd, size_t len, int *err)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		*err = -errno;
		return NULL;
	}
	return p;
}

void *bench_map_new_file(const char *path, size_t len, int *err)
{
	unlink(path);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	void *p = NULL;
	if (ftruncate(fd, (off_t)len) != 0) {
		*err = -errno;
	} else {
		p = map_fd(fd, len, err);
	}
	close(fd);
	return p;
}

void *bench_map_file(const char *path, size_t len, int *err)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	void *p = map_fd(fd, len, err);
	close(fd);
	return p;
}

void *bench_map_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void bench_cpu_model(char *buf, size_t size)
{
	snprintf(buf, size, "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f == NULL) {
		return;
	}
	char line[512];
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "model name", 10) == 0) {
			const char *colon = strchr(line, ':');
			if (colon != NULL) {
				colon++;
				while (*colon == ' ' || *colon == '\t') {
					colon++;
				}
				snprintf(buf, size, "%s", colon);
				buf[strcspn(buf, "\n")] = '\0';
			}
			break;
		}
	}
	fclose(f);
}
