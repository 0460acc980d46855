"""Process bodies for test_subscribers.py (a module of its own so that
multiprocessing's spawn start method can import them in the child)."""

from __future__ import annotations

import struct
import time
from typing import Any, List

from mmap_ringbuffer import subscribe


def message(seq: int, size: int = 40) -> bytes:
    """Message ``seq`` of a stream: its sequence number, then a pattern."""
    return struct.pack("<Q", seq) + bytes((7 + seq + j) & 0xFF for j in range(size - 8))


def seq_of(data: bytes) -> int:
    """The sequence number of an intact message (asserts it is one)."""
    (seq,) = struct.unpack_from("<Q", data)
    assert data == message(seq, len(data)), f"torn or foreign message {seq}"
    return int(seq)


def read_then_hang(path: str, name: str, count: int, held: int, report: Any) -> None:
    """Joins as subscriber ``name``, reads ``count`` messages and reports
    their sequence numbers, then waits to be killed. With ``held`` > 0 it
    holds, and releases only through message ``count - held - 1``: the last
    ``held`` messages were read but not released when it dies."""
    sub = subscribe(path, name)
    if held:
        sub.hold()
        got = sub.read_many_at(count)
        assert len(got) == count, len(got)
        seqs: List[int] = [seq_of(m) for _, m in got]
        sub.release_through(got[count - held - 1][0])
    else:
        seqs = [seq_of(sub.read(timeout=30)) for _ in range(count)]
    report.put(seqs)
    while True:  # killed here, with the handle open
        time.sleep(1)
