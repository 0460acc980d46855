"""A Python consumer: prints ten events from a ring file."""

import sys

from mmap_ringbuffer import RingBuffer

path = sys.argv[1] if len(sys.argv) > 1 else "/dev/shm/events.ring"
with RingBuffer.create(path, 1 << 20) as ring:  # opens it if it exists
    for _ in range(10):
        print(ring.read(timeout=30).decode())  # waits for the next event
