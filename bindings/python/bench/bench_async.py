#!/usr/bin/python3
"""asyncio: the wake-up latency of an awaiting reader, and the throughput of
an asyncio consumer, against the same loop's baselines, in the same run.

    /usr/bin/python3 bench/bench_async.py [--wakeups N] [--count N] [--repeat R]

Wake-up latency: a producer process alternately sleeps 1-3 ms (so that the
reader is parked in the loop again) and writes its CLOCK_MONOTONIC time,
once into the ring and once into a pipe; in one event loop, one task awaits
``ring.read_async()`` and one awaits the pipe's descriptor (add_reader, then
os.read: the same mechanism). Each records now minus the time written; p50
and p99 of N of each, interleaved.

Throughput: a producer process sends N 64-byte messages as fast as it can,
into the ring (``write(msg, timeout=math.inf)``) or, framed with a 4-byte
length, over a Unix socket; the consumer, in an event loop, receives them
with ``async for message in ring`` or with an asyncio stream
(``readexactly`` of the length, then of the payload). Best of R interleaved
runs.

Both run under asyncio's loop and, when installed, uvloop's.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import random
import socket
import struct
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a source checkout

from mmap_ringbuffer import RingBuffer  # noqa: E402

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

CTX = multiprocessing.get_context("fork")
MESSAGE = bytes(range(64))


def run_in(loop_name: str, coro: Any) -> Any:
    if loop_name == "uvloop":
        loop = uvloop.new_event_loop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()
    return asyncio.run(coro)


# ---- wake-up latency ---------------------------------------------------------


def wakeup_producer(path: str, pipe_w: int, count: int, go: Any) -> None:
    rng = random.Random(5)
    with RingBuffer.open(path) as ring:
        go.wait()
        for _ in range(count):
            for target in ("ring", "pipe"):
                time.sleep(rng.uniform(0.001, 0.003))
                stamp = struct.pack("<q", time.monotonic_ns())
                if target == "ring":
                    ring.write(stamp, timeout=math.inf)
                else:
                    os.write(pipe_w, stamp)


async def pipe_read(loop: asyncio.AbstractEventLoop, fd: int) -> bytes:
    fut = loop.create_future()
    loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        loop.remove_reader(fd)
    return os.read(fd, 8)


async def wakeups(path: str, count: int) -> Tuple[List[int], List[int]]:
    loop = asyncio.get_running_loop()
    pipe_r, pipe_w = os.pipe()
    os.set_blocking(pipe_r, False)
    go = CTX.Event()
    proc = CTX.Process(target=wakeup_producer, args=(path, pipe_w, count, go))
    proc.start()
    ring_lat: List[int] = []
    pipe_lat: List[int] = []
    with RingBuffer.open(path) as ring:

        async def ring_task() -> None:
            for _ in range(count):
                stamp = await ring.read_async()
                ring_lat.append(time.monotonic_ns() - struct.unpack("<q", stamp)[0])

        async def pipe_task() -> None:
            for _ in range(count):
                stamp = await pipe_read(loop, pipe_r)
                pipe_lat.append(time.monotonic_ns() - struct.unpack("<q", stamp)[0])

        tasks = asyncio.gather(ring_task(), pipe_task())
        await asyncio.sleep(0.05)
        go.set()
        await tasks
    proc.join()
    os.close(pipe_r)
    os.close(pipe_w)
    return ring_lat, pipe_lat


def percentile(values: List[int], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] / 1000.0


# ---- throughput --------------------------------------------------------------


def ring_producer(path: str, count: int, go: Any) -> None:
    with RingBuffer.open(path) as ring:
        go.wait()
        write = ring.write
        for _ in range(count):
            write(MESSAGE, timeout=math.inf)


def socket_producer(sock_path: str, count: int, go: Any) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    frame = struct.pack("<I", len(MESSAGE)) + MESSAGE
    go.wait()
    batch = frame * 64
    for _ in range(count // 64):
        s.sendall(batch)
    s.sendall(frame * (count % 64))
    s.close()


async def ring_throughput(path: str, count: int) -> float:
    go = CTX.Event()
    proc = CTX.Process(target=ring_producer, args=(path, count, go))
    proc.start()
    with RingBuffer.open(path) as ring:
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        go.set()
        n = 0
        async for message in ring:
            n += 1
            if n == count:
                break
        elapsed = time.perf_counter() - start
        assert message == MESSAGE
    proc.join()
    return count / elapsed


async def socket_throughput(sock_dir: str, count: int) -> float:
    sock_path = os.path.join(sock_dir, "bench.sock")
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    connected = asyncio.get_running_loop().create_future()

    async def on_client(reader: asyncio.StreamReader, writer: Any) -> None:
        connected.set_result((reader, writer))

    server = await asyncio.start_unix_server(on_client, sock_path)
    go = CTX.Event()
    proc = CTX.Process(target=socket_producer, args=(sock_path, count, go))
    proc.start()
    reader, writer = await connected
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    go.set()
    for _ in range(count):
        (length,) = struct.unpack("<I", await reader.readexactly(4))
        message = await reader.readexactly(length)
    elapsed = time.perf_counter() - start
    assert message == MESSAGE
    writer.close()
    server.close()
    await server.wait_closed()
    proc.join()
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wakeups", type=int, default=500)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    loops = ["asyncio"] + (["uvloop"] if uvloop is not None else [])
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        path = os.path.join(tmp, "bench.ring")
        RingBuffer.create(path, 1 << 20).close()
        print(f"wake-up latency, {args.wakeups} of each, interleaved (us)")
        print("| loop | ring read_async p50 | p99 | pipe add_reader p50 | p99 |")
        print("|---|---|---|---|---|")
        for loop_name in loops:
            ring_lat, pipe_lat = run_in(loop_name, wakeups(path, args.wakeups))
            print(
                f"| {loop_name} | {percentile(ring_lat, 50):.1f} | "
                f"{percentile(ring_lat, 99):.1f} | {percentile(pipe_lat, 50):.1f} | "
                f"{percentile(pipe_lat, 99):.1f} |"
            )
        print()
        print(f"throughput, {args.count} x 64 B, best of {args.repeat} (messages/s)")
        print("| loop | ring async for | asyncio stream, Unix socket | ratio |")
        print("|---|---|---|---|")
        for loop_name in loops:
            best: Dict[str, float] = {"ring": 0.0, "socket": 0.0}
            for _ in range(args.repeat):
                RingBuffer.create(path, 1 << 20, remove=True).close()
                best["ring"] = max(
                    best["ring"], run_in(loop_name, ring_throughput(path, args.count))
                )
                best["socket"] = max(
                    best["socket"],
                    run_in(loop_name, socket_throughput(tmp, args.count)),
                )
            print(
                f"| {loop_name} | {best['ring'] / 1e6:.2f} M | "
                f"{best['socket'] / 1e6:.2f} M | {best['ring'] / best['socket']:.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
