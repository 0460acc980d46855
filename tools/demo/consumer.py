"""Pipeline demo, last hop (see pipeline.sh): reads ring B, checks every
message's CRC, sequence number and body (undoing the Go stage's transform),
and at the end marker compares the count and the CRC-32 over all bodies with
what the C producer sent.

    consumer.py RING_B SIZE
"""

from __future__ import annotations

import struct
import sys
import time
import zlib

from mmap_ringbuffer import RingBuffer

TRANSFORM_KEY = 0x5A
UNDO_TRANSFORM = bytes(b ^ TRANSFORM_KEY for b in range(256))
# Every body is a slice of this: byte j of message seq is (seq*31 + j) mod 256.
PATTERN = bytes(range(256)) * 3
END_MARKER_SEQ = b"\xff" * 8


def main() -> int:
    path, size = sys.argv[1], int(sys.argv[2])
    count = total = 0
    digest = 0
    start = 0.0
    with RingBuffer.create(path, size) as ring:
        while True:
            for msg in ring.read_many(512, timeout=30):
                if count == 0 and not start:
                    start = time.perf_counter()
                n = len(msg)
                if n < 12 or struct.unpack_from("<I", msg, n - 4)[0] != zlib.crc32(
                    msg[:-4]
                ):
                    raise SystemExit(f"python consumer: message {count}: bad CRC")
                if msg[:8] == END_MARKER_SEQ:
                    sent, sent_digest = struct.unpack_from("<QI", msg, 8)
                    return finish(count, total, digest, sent, sent_digest, start)
                seq = struct.unpack_from("<Q", msg)[0]
                body = msg[8:-4].translate(UNDO_TRANSFORM)
                first = (seq * 31) % 256
                expected = PATTERN[first : first + 16 + seq % 241]
                if seq != count or body != expected:
                    raise SystemExit(
                        f"python consumer: message {count}: wrong sequence or body"
                    )
                digest = zlib.crc32(body, digest)
                count += 1
                total += n


def finish(
    count: int, total: int, digest: int, sent: int, sent_digest: int, start: float
) -> int:
    elapsed = time.perf_counter() - start if start else 0.0
    rate = count / elapsed if elapsed else 0.0
    mb_rate = total / 1e6 / elapsed if elapsed else 0.0
    print(
        f"Python consumer <- ring B: {count:9d} msgs {total / 1e6:8.1f} MB in "
        f"{elapsed:5.2f} s: {rate:10.0f} msg/s {mb_rate:7.1f} MB/s  "
        f"(body crc32 {digest:08x})"
    )
    if count != sent or digest != sent_digest:
        print(
            f"python consumer: END-TO-END MISMATCH: producer sent {sent} messages "
            f"with body crc32 {sent_digest:08x}",
            file=sys.stderr,
        )
        return 1
    print(
        f"end to end: {count} messages, body crc32 {digest:08x} matches the producer's"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
