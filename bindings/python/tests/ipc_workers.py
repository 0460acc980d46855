"""Process bodies for test_processes.py (a module of its own so that
multiprocessing's spawn start method can import them in the child)."""

from __future__ import annotations

import math
import os
import struct
import zlib
from typing import Any, Dict

from mmap_ringbuffer import RingBuffer

# producer id, sequence number, crc32 of the payload
HEADER = struct.Struct("<III")


def payload(producer: int, seq: int) -> bytes:
    """Deterministic payload of varying length (1..300 bytes)."""
    length = 1 + (seq * 7 + producer * 13) % 300
    return bytes((producer + seq + i) & 0xFF for i in range(length))


def message(producer: int, seq: int) -> bytes:
    body = payload(producer, seq)
    return HEADER.pack(producer, seq, zlib.crc32(body)) + body


def produce(path: str, producer: int, count: int, batch: int) -> None:
    with RingBuffer.open(path) as rb:
        if batch <= 1:
            for seq in range(count):
                rb.write(message(producer, seq), timeout=math.inf)
            return
        for first in range(0, count, batch):
            chunk = [
                message(producer, s) for s in range(first, min(first + batch, count))
            ]
            while chunk:
                chunk = chunk[rb.write_many(chunk, timeout=math.inf) :]


def consume(path: str, producers: int, count: int, batch: int, results: Any) -> None:
    """Reads producers*count messages; checks each producer's sequence and
    every payload checksum; reports a summary (or the first error)."""
    try:
        next_seq: Dict[int, int] = {p: 0 for p in range(producers)}
        total = producers * count
        received = 0
        payload_bytes = 0
        with RingBuffer.open(path) as rb:
            while received < total:
                if batch > 1:
                    messages = rb.read_many(batch, timeout=60)
                else:
                    messages = [rb.read(timeout=60)]
                for raw in messages:
                    producer, seq, crc = HEADER.unpack_from(raw)
                    body = raw[HEADER.size :]
                    if seq != next_seq[producer]:
                        raise AssertionError(
                            f"producer {producer}: got seq {seq}, "
                            f"expected {next_seq[producer]}"
                        )
                    if zlib.crc32(body) != crc or body != payload(producer, seq):
                        raise AssertionError(
                            f"producer {producer} seq {seq}: bad payload"
                        )
                    next_seq[producer] = seq + 1
                    payload_bytes += len(body)
                    received += 1
            leftover = rb.try_read()
        results.put(
            {
                "received": received,
                "next_seq": next_seq,
                "bytes": payload_bytes,
                "leftover": leftover,
            }
        )
    except BaseException as exc:
        results.put({"error": repr(exc)})
        raise


def write_and_exit(path: str, count: int) -> None:
    with RingBuffer.open(path) as rb:
        for i in range(count):
            rb.write(b"from child %d" % i)


def read_some_then_die(path: str, count: int) -> None:
    """Attaches as consumer, reads, and dies without closing the handle."""
    rb = RingBuffer.open(path)
    for _ in range(count):
        rb.read()
    os._exit(0)


def reserve_then_die(path: str) -> None:
    """Leaves an uncommitted record behind, as a crashed producer would."""
    rb = RingBuffer.open(path)
    reservation = rb.reserve(32)
    reservation[0:4] = b"lost"
    os._exit(0)
