"""Interop reader (Python): receives a scenario's messages and checks bytes,
order and count exactly; see docs/INTEROP.md. Exit 1 on any mismatch.

MRB_INTEROP_WAIT=evloop: waits with read_async in an asyncio event loop
(uvloop's when installed) instead of blocking in read()."""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys
import zlib
from typing import Any, Awaitable, Callable, Coroutine, Tuple

import scenario
from mmap_ringbuffer import RingBuffer


class Mismatch(Exception):
    pass


def describe(what: str, index: int, got: bytes, want: bytes) -> Mismatch:
    at = next(
        (k for k, (a, b) in enumerate(zip(got, want)) if a != b),
        min(len(got), len(want)),
    )
    return Mismatch(
        f"{what} {index}: got {len(got)} bytes, want {len(want)}; "
        f"first difference at byte {at}"
    )


Read = Callable[[], Awaitable[bytes]]


async def read_stream(
    read: Read, spec: scenario.Scenario, first: int, stop: int
) -> int:
    total = 0
    for i in range(first, stop):
        got = await read()
        want = spec.stream_message(i)
        if got != want:
            raise describe("message", i, got, want)
        total += len(got)
    return total


async def read_tagged(
    read: Read, spec: scenario.Scenario, producers: int
) -> Tuple[int, int]:
    """Each producer's messages must arrive complete (crc), in its order, none
    missing or repeated; producers interleave freely. Returns the bytes read
    and how often consecutive messages came from different producers."""
    next_seq = [0] * producers
    total = switches = 0
    last = -1
    for i in range(spec.count * producers):
        got = await read()
        total += len(got)
        if len(got) < scenario.TAGGED_OVERHEAD or struct.unpack_from(
            "<I", got, len(got) - 4
        )[0] != zlib.crc32(got[:-4]):
            raise Mismatch(f"message {i}: bad checksum (torn?)")
        producer, seq = struct.unpack_from("<BI", got)
        if producer >= producers or seq != next_seq[producer] or seq >= spec.count:
            expected = next_seq[producer] if producer < producers else "?"
            raise Mismatch(
                f"message {i}: producer {producer} seq {seq}, expected seq {expected}"
            )
        want = spec.tagged_message(producer, seq)
        if got != want:
            raise describe("tagged message", i, got, want)
        next_seq[producer] += 1
        if last >= 0 and producer != last:
            switches += 1
        last = producer
    return total, switches


def run(coro: Coroutine[Any, Any, int]) -> int:
    """Runs the reader's coroutine: in uvloop's loop if installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def main() -> int:
    args = scenario.parse_args("py reader")
    spec = scenario.load(args.spec, args.scenario)
    if os.environ.get("MRB_INTEROP_WAIT") == "evloop":
        return run(read_all(args, spec, True))
    return asyncio.run(read_all(args, spec, False))


async def read_all(
    args: argparse.Namespace, spec: scenario.Scenario, evloop: bool
) -> int:
    with RingBuffer.create(args.path, spec.capacity) as ring:
        if evloop:

            async def read() -> bytes:
                return await ring.read_async(timeout=scenario.TIMEOUT_SECONDS)

        else:

            async def read() -> bytes:
                return ring.read(timeout=scenario.TIMEOUT_SECONDS)

        try:
            note = ""
            stop = spec.count if args.stop is None else min(args.stop, spec.count)
            first = min(args.first, stop)
            if spec.kind == "stream":
                total = await read_stream(read, spec, first, stop)
                count = stop - first
                note = f" ({first}..{stop})"
            else:
                total, switches = await read_tagged(read, spec, args.producers)
                count = spec.count * args.producers
                note = f" ({args.producers} producers, {switches} producer switches)"
            # Only the last of several turns sees the end of the stream.
            at_end = spec.kind == "tagged" or stop == spec.count
            extra = ring.try_read() if at_end else None
            if extra is not None:
                raise Mismatch(
                    f"expected an empty ring at the end, got {len(extra)} bytes"
                )
        except Mismatch as failure:
            print(f"py reader: {spec.name}: {failure}", file=sys.stderr)
            return 1
    print(f"py reader: {spec.name}: {count} messages, {total} bytes OK{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
