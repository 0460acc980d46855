/* SPDX-License-Identifier: MIT */
/*
 * Description: file security. New rings are 0600 by default whatever the
 * umask, and an explicit mode is applied exactly. Create with
 * MRB_CREATE_REMOVE over a planted symlink replaces the link with a new
 * regular file and never writes through it (the target is untouched); a
 * plain or exclusive create over a symlink neither follows nor replaces it.
 * No descriptor outlives open/create, and none leaks into a program exec'd
 * concurrently from another thread (O_CLOEXEC): the exec'd checker scans
 * its own descriptors for the ring.
 * Usage (internal): security_files --check-fds PATH
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>

#include "rtest.h"

/* Counts this process's descriptors that refer to a file whose path
 * contains `needle`. */
static int fds_referring_to(const char *needle)
{
	DIR *d = opendir("/proc/self/fd");
	CHECK(d != NULL);
	int count = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char link[300], target[1024];
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strstr(target, needle) != NULL)
			count++;
	}
	closedir(d);
	return count;
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	CHECK(lstat(path, &st) == 0);
	CHECK(S_ISREG(st.st_mode));
	return st.st_mode & 07777;
}

static void read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	ssize_t n = read(fd, buf, size - 1);
	CHECK(n >= 0);
	buf[n] = '\0';
	close(fd);
}

static _Atomic int stop_churn;
static const char *churn_path;

static void *open_close_churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_churn)) {
		struct mrb_ring ring;
		CHECK_RC(mrb_open(&ring, churn_path, 0), 0);
		CHECK_RC(mrb_close(&ring), 0);
		struct mrb_create_options opts = {.flags = MRB_CREATE_REMOVE};
		CHECK_RC(mrb_create(&ring, churn_path, 4096, &opts), 0);
		CHECK_RC(mrb_close(&ring), 0);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--check-fds") == 0)
		return fds_referring_to(argv[2]) == 0 ? 0 : 1;
	rtest_watchdog(45);
	struct mrb_ring ring;

	/* Default mode 0600 regardless of umask; explicit modes exactly. */
	umask(0);
	CHECK_RC(mrb_create(&ring, rtest_path("default-umask0"), 4096, NULL), 0);
	CHECK_RC(mrb_close(&ring), 0);
	CHECK_EQ_U64(mode_of(rtest_path("default-umask0")), 0600);
	umask(077);
	struct mrb_create_options opts = {.mode = 0664};
	CHECK_RC(mrb_create(&ring, rtest_path("mode0664"), 4096, &opts), 0);
	CHECK_RC(mrb_close(&ring), 0);
	CHECK_EQ_U64(mode_of(rtest_path("mode0664")), 0664);
	umask(022);

	/* A symlink planted where the ring will be, aimed at a victim file. */
	const char *victim = rtest_path("victim");
	const char *victim_text = "precious data, must not change\n";
	int fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, victim_text, strlen(victim_text)) > 0);
	close(fd);
	const char *planted = rtest_path("planted");
	CHECK(symlink(victim, planted) == 0);
	char text[256];

	CHECK_RC(mrb_create(&ring, planted, 4096, NULL), -ELOOP);
	opts = (struct mrb_create_options){.flags = MRB_CREATE_EXCLUSIVE};
	CHECK_RC(mrb_create(&ring, planted, 4096, &opts), MRB_EEXIST);
	struct stat st;
	CHECK(lstat(planted, &st) == 0 && S_ISLNK(st.st_mode));
	read_file(victim, text, sizeof(text));
	CHECK(strcmp(text, victim_text) == 0);

	opts = (struct mrb_create_options){.flags = MRB_CREATE_REMOVE};
	CHECK_RC(mrb_create(&ring, planted, 4096, &opts), 0);
	CHECK_RC(mrb_write(&ring, "ring data", 9), 0);
	CHECK_RC(mrb_close(&ring), 0);
	CHECK(lstat(planted, &st) == 0 && S_ISREG(st.st_mode));
	CHECK_EQ_U64(st.st_mode & 07777, 0600);
	read_file(victim, text, sizeof(text));
	CHECK(strcmp(text, victim_text) == 0);
	CHECK(lstat(victim, &st) == 0 && (st.st_mode & 07777) == 0644);

	/* No temporary files left behind by any of the above. */
	DIR *d = opendir(rtest_dir());
	CHECK(d != NULL);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".tmp-") != NULL)
			FAIL("temporary file left behind: %s", e->d_name);
	closedir(d);

	/* No descriptor kept after open/create. */
	churn_path = rtest_path("churn");
	opts = (struct mrb_create_options){.flags = MRB_CREATE_REMOVE};
	CHECK_RC(mrb_create(&ring, churn_path, 4096, &opts), 0);
	CHECK_EQ_U64(fds_referring_to("churn"), 0);
	CHECK_RC(mrb_close(&ring), 0);

	/* Exec while another thread is inside open/create: with O_CLOEXEC the
	 * new program never sees the ring's descriptor. */
	pthread_t churner;
	CHECK(pthread_create(&churner, NULL, open_close_churn, NULL) == 0);
	for (int i = 0; i < 200; i++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			execl("/proc/self/exe", "security_files", "--check-fds", "churn",
			      (char *)NULL);
			_exit(127);
		}
		int status = rtest_wait(pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			FAIL("exec'd program %s (status %d): a ring descriptor leaked across exec",
			     WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "failed to start"
			                                                     : "inherited it",
			     status);
	}
	atomic_store(&stop_churn, 1);
	CHECK(pthread_join(churner, NULL) == 0);
	return 0;
}
