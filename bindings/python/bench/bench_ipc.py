#!/usr/bin/python3
"""Moves messages between two processes and compares mmap_ringbuffer with
multiprocessing.Queue and multiprocessing.Pipe, measured in the same run.

    /usr/bin/python3 bench/bench_ipc.py [--count-64 N] [--count-4k N] [--repeat R]

For each message size (64 B, 4 KiB) and transport, a producer process sends N
messages to a consumer process (spawn start method, both started before the
clock starts). The time is taken by the consumer, from a shared start signal
to the last message; the best of R runs is reported, with the ratio against
multiprocessing.Queue (higher is better).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a source checkout

from mmap_ringbuffer import RingBuffer  # noqa: E402

CTX = multiprocessing.get_context("spawn")
BATCH = 256
RING_BYTES = 8 << 20


# ---- transports: (producer, consumer) bodies ---------------------------------
# Each producer sends `count` messages; each consumer receives exactly `count`
# and checks the last one, returning the number of payload bytes seen.


def ring_producer(path: str, message: bytes, count: int, start: Any) -> None:
    with RingBuffer.open(path) as rb:
        start.wait()
        write = rb.write
        forever = math.inf
        for _ in range(count):
            write(message, timeout=forever)


def ring_consumer(path: str, count: int, start: Any) -> int:
    with RingBuffer.open(path) as rb:
        read = rb.read
        forever = math.inf
        seen = 0
        start.wait()
        for _ in range(count):
            seen += len(read(timeout=forever))
        return seen


def ring_batch_producer(path: str, message: bytes, count: int, start: Any) -> None:
    batch = [message] * BATCH
    with RingBuffer.open(path) as rb:
        write_many = rb.write_many
        forever = math.inf
        start.wait()
        remaining = count
        while remaining:
            pending = batch[: min(BATCH, remaining)]
            while pending:
                written = write_many(pending, timeout=forever)
                pending = pending[written:]
                remaining -= written


def ring_batch_consumer(path: str, count: int, start: Any) -> int:
    with RingBuffer.open(path) as rb:
        read_many = rb.read_many
        forever = math.inf
        seen = 0
        received = 0
        start.wait()
        while received < count:
            messages = read_many(BATCH, timeout=forever)
            received += len(messages)
            seen += sum(map(len, messages))
        return seen


def queue_producer(queue: Any, message: bytes, count: int, start: Any) -> None:
    start.wait()
    put = queue.put
    for _ in range(count):
        put(message)
    queue.close()
    queue.join_thread()


def queue_consumer(queue: Any, count: int, start: Any) -> int:
    get = queue.get
    seen = 0
    start.wait()
    for _ in range(count):
        seen += len(get())
    return seen


def pipe_producer(conn: Any, message: bytes, count: int, start: Any) -> None:
    start.wait()
    send = conn.send_bytes
    for _ in range(count):
        send(message)


def pipe_consumer(conn: Any, count: int, start: Any) -> int:
    recv = conn.recv_bytes
    seen = 0
    start.wait()
    for _ in range(count):
        seen += len(recv())
    return seen


# ---- harness --------------------------------------------------------------------


def _consume_and_time(
    consumer: Callable[..., int], channel: Any, count: int, start: Any, results: Any
) -> None:
    class TimedStart:
        """Starts the clock the moment the shared start signal fires."""

        t0 = 0.0

        def wait(self) -> None:
            start.wait()
            TimedStart.t0 = time.perf_counter()

    seen = consumer(channel, count, TimedStart())
    results.put((time.perf_counter() - TimedStart.t0, seen))


def run_once(transport: str, size: int, count: int, workdir: str) -> float:
    message = bytes((i * 7) & 0xFF for i in range(size))
    start = CTX.Barrier(3)
    results = CTX.Queue()
    producer: Callable[..., None]
    consumer: Callable[..., int]
    if transport.startswith("mmap_ringbuffer"):
        path = os.path.join(workdir, "bench.ring")
        RingBuffer.create(path, RING_BYTES, remove=True).close()
        batched = "batched" in transport
        producer = ring_batch_producer if batched else ring_producer
        consumer = ring_batch_consumer if batched else ring_consumer
        producer_channel: Any = path
        consumer_channel: Any = path
    elif transport == "multiprocessing.Queue":
        queue = CTX.Queue()
        producer, consumer = queue_producer, queue_consumer
        producer_channel = consumer_channel = queue
    elif transport == "multiprocessing.Pipe":
        receiver, sender = CTX.Pipe(duplex=False)
        producer, consumer = pipe_producer, pipe_consumer
        producer_channel, consumer_channel = sender, receiver
    else:
        raise ValueError(transport)
    consumer_process = CTX.Process(
        target=_consume_and_time,
        args=(consumer, consumer_channel, count, start, results),
    )
    producer_process = CTX.Process(
        target=producer, args=(producer_channel, message, count, start)
    )
    consumer_process.start()
    producer_process.start()
    start.wait()
    elapsed, seen = results.get()
    producer_process.join()
    consumer_process.join()
    if seen != size * count:
        raise RuntimeError(f"{transport}: received {seen} bytes, sent {size * count}")
    return float(elapsed)


TRANSPORTS = [
    "multiprocessing.Queue",
    "multiprocessing.Pipe",
    "mmap_ringbuffer",
    "mmap_ringbuffer batched",
]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count-64", type=int, default=200_000)
    parser.add_argument("--count-4k", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(
        f"runs: best of {args.repeat}; batch size {BATCH}; ring {RING_BYTES >> 20} MiB"
    )
    rows: List[Tuple[str, int, int, float]] = []
    with tempfile.TemporaryDirectory(
        dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    ) as workdir:
        for size, count in ((64, args.count_64), (4096, args.count_4k)):
            best: Dict[str, float] = {}
            for _ in range(args.repeat):
                for transport in TRANSPORTS:  # interleaved: noise hits all alike
                    elapsed = run_once(transport, size, count, workdir)
                    best[transport] = min(best.get(transport, math.inf), elapsed)
            for transport in TRANSPORTS:
                rows.append((transport, size, count, best[transport]))

    print()
    print(
        f"| {'transport':<24} | {'size':>6} | {'messages':>9} | {'msg/s':>11} "
        f"| {'us/msg':>7} | {'MB/s':>8} | {'vs Queue':>8} | {'vs Pipe':>7} |"
    )
    print(
        f"|{'-' * 26}|{'-' * 8}:|{'-' * 10}:|{'-' * 12}:|{'-' * 8}:|{'-' * 9}:"
        f"|{'-' * 9}:|{'-' * 8}:|"
    )
    for transport, size, count, elapsed in rows:
        queue = next(
            r[3] / r[2] for r in rows if r[1] == size and r[0] == TRANSPORTS[0]
        )
        pipe = next(r[3] / r[2] for r in rows if r[1] == size and r[0] == TRANSPORTS[1])
        per_message = elapsed / count
        label = "64 B" if size == 64 else "4 KiB"
        print(
            f"| {transport:<24} | {label:>6} | {count:>9} | {count / elapsed:>11,.0f} "
            f"| {per_message * 1e6:>7.2f} | {size * count / elapsed / 1e6:>8.1f} "
            f"| {queue / per_message:>7.1f}x | {pipe / per_message:>6.1f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
