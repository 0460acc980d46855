"""Interop writer (Python): sends a scenario's messages; see docs/INTEROP.md."""

from __future__ import annotations

import sys

import scenario
from mmap_ringbuffer import RingBuffer


def main() -> int:
    args = scenario.parse_args("py writer")
    spec = scenario.load(args.spec, args.scenario)
    total = 0
    with RingBuffer.create(args.path, spec.capacity) as ring:
        if spec.kind == "tagged" and args.barrier:
            scenario.barrier_wait(args.barrier, args.producer)
        for i in range(spec.count):
            if spec.kind == "stream":
                message = spec.stream_message(i)
            else:
                message = spec.tagged_message(args.producer, i)
            ring.write(message, timeout=scenario.TIMEOUT_SECONDS)
            total += len(message)
    print(f"py writer: {spec.name}: {spec.count} messages, {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
