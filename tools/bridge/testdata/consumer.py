"""The Python consumer of the bridge tests: reads ring B until it has taken
`count` distinct messages, applying the bridge's dedup rule, and prints one
JSON line describing what it saw.

Each ring message is an 8-byte big-endian JetStream stream sequence
(mrb-bridge in --seq-prefix) followed by the producer's message: an 8-byte
little-endian message number, a 4-byte little-endian CRC-32 of the body,
and the body. The rule: a message whose stream sequence is not above the
last one taken is a duplicate and dropped.

usage: consumer.py RING COUNT TIMEOUT_SECONDS
"""

from __future__ import annotations

import json
import struct
import sys
import time
import zlib

from mmap_ringbuffer import RingBuffer, Timeout


def main() -> int:
    path, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    deadline = time.monotonic() + timeout
    report = {
        "taken": 0,
        "duplicates": 0,
        "out_of_order": 0,
        "bad_checksum": 0,
        "next": 0,
    }
    last_seq = 0
    with RingBuffer.open(path) as ring:
        while report["taken"] < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch = ring.read_many(256, timeout=min(left, 0.5))
            except Timeout:
                continue
            for message in batch:
                (seq,) = struct.unpack_from(">Q", message, 0)
                if seq <= last_seq:
                    report["duplicates"] += 1
                    continue
                last_seq = seq
                number, crc = struct.unpack_from("<QI", message, 8)
                body = message[20:]
                if zlib.crc32(body) != crc:
                    report["bad_checksum"] += 1
                if number != report["next"]:
                    report["out_of_order"] += 1
                report["next"] = number + 1
                report["taken"] += 1
    print(json.dumps(report))
    return 0 if report["taken"] == count else 1


if __name__ == "__main__":
    sys.exit(main())
