"""The Python worker of the cross-language pool test (pool_interop_test.py).

  pool_py.py PATH --spec FILE --scenario NAME --producers N --group NAME
             --ready FILE --done FILE [--batch K] [--pause SECONDS] [--asyncio]

It joins group NAME of the fan-out ring at PATH (``Worker``, at-least-once,
no hold timeout), creates the ready file, and takes up to K messages per
read call (``read_many``) until the done file exists and a read then finds
nothing to take. Each message is processed: checked to be exactly the
scenario's tagged message of its producer and sequence number (so its CRC-32
too), then --pause seconds are slept (simulated work). After processing, one
line per message goes to stdout,

  PRODUCER SEQ LENGTH CRC32

(CRC32 the message's own CRC field, %08x), written before the next read call
releases the batch. With --asyncio it takes one message per ``await
worker.read_async()`` in an asyncio event loop (uvloop's when installed),
waiting on the worker's doorbell instead of in C. Exit status: 0 done, 1 a
wrong message, 2 any other error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Awaitable, Callable, List

import scenario
from mmap_ringbuffer import Timeout, Worker


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pool_py.py")
    parser.add_argument("path")
    parser.add_argument("--spec", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--producers", type=int, required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--done", required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--asyncio", action="store_true")
    return parser.parse_args()


class BadMessage(Exception):
    pass


def process(
    args: argparse.Namespace, spec: scenario.Scenario, batch: List[bytes]
) -> None:
    """Checks and "processes" a batch, then prints its lines (before the
    next read call releases it)."""
    lines = []
    for message in batch:
        producer, seq = message[0], int.from_bytes(message[1:5], "little")
        if (
            producer >= args.producers
            or seq >= spec.count
            or message != spec.tagged_message(producer, seq)
        ):
            raise BadMessage(
                f"pool_py: message of producer {producer} seq {seq} "
                f"({len(message)} bytes) is not the scenario's"
            )
        if args.pause > 0:
            time.sleep(args.pause)
        crc = int.from_bytes(message[-4:], "little")
        lines.append(f"{producer} {seq} {len(message)} {crc:08x}\n")
    sys.stdout.write("".join(lines))
    sys.stdout.flush()


async def work(
    args: argparse.Namespace,
    spec: scenario.Scenario,
    take: Callable[[], Awaitable[List[bytes]]],
) -> int:
    """Takes and processes batches until the done file exists and a take
    then finds nothing; returns how many messages."""
    processed = 0
    idle_since = time.monotonic()
    while True:
        # Seen before the take: if nothing is then left to take, all is taken.
        done = os.path.exists(args.done)
        batch = await take()
        if not batch:
            if done:
                return processed
            if time.monotonic() - idle_since > scenario.TIMEOUT_SECONDS:
                raise TimeoutError("pool_py: no message for too long")
            continue
        idle_since = time.monotonic()
        process(args, spec, batch)
        processed += len(batch)


def run(coro: Awaitable[int]) -> int:
    """Runs the worker's coroutine: in uvloop's loop if installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def main() -> int:
    args = parse()
    spec = scenario.load(args.spec, args.scenario)
    with Worker(args.path, args.group) as worker:
        open(args.ready, "w").close()

        async def take_many() -> List[bytes]:
            # Blocks in C (no other task runs in this loop).
            try:
                return worker.read_many(args.batch, timeout=0.05)
            except Timeout:
                return []

        async def take_async() -> List[bytes]:
            # Waits in the event loop on the worker's doorbell.
            try:
                return [await worker.read_async(timeout=0.05)]
            except Timeout:
                return []

        try:
            if args.asyncio:
                processed = run(work(args, spec, take_async))
            else:
                processed = asyncio.run(work(args, spec, take_many))
        except BadMessage as bad:
            print(bad, file=sys.stderr)
            return 1
        except TimeoutError as slow:
            print(slow, file=sys.stderr)
            return 2
        worker.ack()
    how = "read_async" if args.asyncio else "read_many"
    print(f"pool_py: {processed} messages ({how})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
