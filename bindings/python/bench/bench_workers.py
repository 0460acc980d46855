#!/usr/bin/python3
"""A pool of worker processes fed by one producer: a worker group of a
fan-out ring against multiprocessing.Queue, with the same workers, in the
same run.

    /usr/bin/python3 bench/bench_workers.py [--count-64 N] [--count-4k N]
        [--workers 1,2,4] [--repeat R]

For each message size (64 B, 4 KiB) and pool size, the parent process sends
N jobs, one call per job (RingBuffer.write / Queue.put), then one "stop" per
worker; each worker (spawn start method, started before the clock starts)
takes jobs until its "stop" (Worker.read_many(64): a run of up to 64 jobs
per take; Queue.get: one) and reports how many it saw. The clock runs from
the first job sent until every worker has reported; every job must be seen
exactly once. The best of R runs is reported as jobs per second, with the
ratio against multiprocessing.Queue (higher is better).
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
from typing import Any, Callable, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a source checkout

from mmap_ringbuffer import RingBuffer, Worker  # noqa: E402

CTX = multiprocessing.get_context("spawn")
RING_BYTES = 8 << 20
STOP = b"stop"


def ring_worker(path: str, ready: Any, done: Any) -> None:
    seen = 0
    with Worker(path, "bench") as w:
        ready.put(os.getpid())
        read_many = w.read_many
        forever = math.inf
        while True:
            batch = read_many(64, timeout=forever)
            if batch[-1] != STOP:
                seen += len(batch)
                continue
            stops = batch.count(STOP)
            seen += len(batch) - stops
            for _ in range(stops - 1):  # other workers' stops: pass them on
                w.write(STOP, timeout=forever)
            break
    done.put(seen)


def queue_worker(q: Any, ready: Any, done: Any) -> None:
    ready.put(os.getpid())
    get = q.get
    seen = 0
    while get() != STOP:
        seen += 1
    done.put(seen)


def run_ring(size: int, count: int, workers: int) -> float:
    with tempfile.TemporaryDirectory(
        dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    ) as d:
        path = os.path.join(d, "jobs.ring")
        with RingBuffer.create(path, RING_BYTES, fanout=True) as ring:
            ring.worker("bench").close()
            ready, done = CTX.Queue(), CTX.Queue()
            pool = [
                CTX.Process(target=ring_worker, args=(path, ready, done))
                for _ in range(workers)
            ]
            for p in pool:
                p.start()
            for _ in pool:
                ready.get()
            job = b"j" * size
            write = ring.write
            forever = math.inf
            start = time.perf_counter()
            for _ in range(count):
                write(job, timeout=forever)
            for _ in pool:
                write(STOP, timeout=forever)
            seen = sum(done.get() for _ in pool)
            elapsed = time.perf_counter() - start
            for p in pool:
                p.join()
            assert seen == count, (seen, count)
            return count / elapsed


def run_queue(size: int, count: int, workers: int) -> float:
    q = CTX.Queue()
    ready, done = CTX.Queue(), CTX.Queue()
    pool = [
        CTX.Process(target=queue_worker, args=(q, ready, done)) for _ in range(workers)
    ]
    for p in pool:
        p.start()
    for _ in pool:
        ready.get()
    job = b"j" * size
    put = q.put
    start = time.perf_counter()
    for _ in range(count):
        put(job)
    for _ in pool:
        put(STOP)
    seen = sum(done.get() for _ in pool)
    elapsed = time.perf_counter() - start
    for p in pool:
        p.join()
    assert seen == count, (seen, count)
    return count / elapsed


def best(fn: Callable[[], float], repeat: int) -> float:
    return max(fn() for _ in range(repeat))


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count-64", type=int, default=200_000)
    parser.add_argument("--count-4k", type=int, default=50_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    pools = [int(w) for w in args.workers.split(",")]
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, best of {args.repeat}"
    )
    print(
        "| size | workers | ring worker group (jobs/s) | multiprocessing.Queue (jobs/s) | ratio |"
    )
    print("|---|---|---|---|---|")
    for size, count in ((64, args.count_64), (4096, args.count_4k)):
        for workers in pools:
            ring = best(lambda: run_ring(size, count, workers), args.repeat)
            queue = best(lambda: run_queue(size, count, workers), args.repeat)
            label = "64 B" if size == 64 else "4 KiB"
            print(
                f"| {label} | {workers} | {ring:,.0f} | {queue:,.0f} | {ring / queue:.1f}x |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
