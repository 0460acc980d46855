/* A C producer: writes ten events into a ring file, creating it if needed. */
#include <stdio.h>

#include <mrb/mrb.h>

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/dev/shm/events.ring";
	struct mrb_ring ring;
	int rc = mrb_create(&ring, path, 1 << 20, NULL); /* opens it if it exists */
	if (rc != 0) {
		fprintf(stderr, "%s: %s\n", path, mrb_strerror(rc));
		return 1;
	}
	for (int i = 0; i < 10 && rc == 0; i++) {
		char event[32];
		int len = snprintf(event, sizeof(event), "event %d", i);
		rc = mrb_write_wait(&ring, event, (size_t)len, -1); /* waits while full */
	}
	if (rc != 0)
		fprintf(stderr, "write: %s\n", mrb_strerror(rc));
	mrb_close(&ring);
	return rc != 0;
}
