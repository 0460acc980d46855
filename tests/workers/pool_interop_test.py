"""Cross-language worker pool (issue 15): on ONE fan-out ring at once,

  - a C producer (id 0, pool_c produce) and a Go producer (id 1,
    tests/interop/go writer --fanout) write the tagged scenario "pool"
    (per-producer sequence numbers, CRC-32, exact bytes: docs/INTEROP.md);
  - a Python worker (pool_py.py, read_many batches), a Go worker
    (tests/interop/go work, ReadBatchContext batches) and a C worker
    (pool_c work, mrb_read_wait) are the workers of ONE group ("pool",
    at-least-once, no hold timeout); nobody is killed.

Each worker checks every message it takes against the scenario (exact
bytes), simulates some work, and prints one line per message after
processing it: "PRODUCER SEQ LENGTH CRC32". The checker merges the three
outputs (exact):

  - every (producer, seq) of both producers appears exactly once across all
    workers: no message lost, none processed twice;
  - each line's length and CRC-32 are those of the scenario's message;
  - within each worker, each producer's sequence numbers increase (workers
    take messages in claim order, which keeps each producer's order);
  - every worker processed at least one message (the pool shares the work);
  - the group's counters: messages_done is every message, redelivered,
    dropped and stale_releases are 0, and its claim position is the
    producers' final position (nothing left to take).

With --asyncio (//tests/workers:pool_evloop_interop_test) the Python worker
awaits ``worker.read_async()`` in an asyncio event loop (uvloop's when
installed) on its doorbell, beside the Go worker parked in the netpoller on
its own and the C worker asleep on the group's futex: the same checks.

Under Bazel the programs are in the runfiles tree (the working directory);
elsewhere set POOL_ROOT to a directory laid out the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import zlib
from typing import Dict, List, Tuple

ROOT = os.environ.get("POOL_ROOT", os.getcwd())
sys.path.insert(0, os.path.join(ROOT, "tests", "interop", "py"))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

import scenario  # noqa: E402
from mmap_ringbuffer import RingBuffer  # noqa: E402

C_PROGRAM = os.path.join(ROOT, "tests", "workers", "pool_c")
PY_PROGRAM = os.path.join(ROOT, "tests", "workers", "pool_py.py")
GO_PROGRAM = os.path.join(ROOT, "tests", "interop", "go_interop")
SPEC = os.path.join(ROOT, "tests", "workers", "scenarios.txt")
SCENARIO = "pool"
GROUP = "pool"
PRODUCERS = 2  # 0: C, 1: Go
PAUSE_US = 100  # each worker's simulated work per message
WAIT = 60.0  # seconds: any wait longer than this is a failure

PYTHON = sys.executable
ENV = dict(
    os.environ,
    PYTHONPATH=os.pathsep.join(
        [
            os.path.join(ROOT, "bindings", "python"),
            os.path.join(ROOT, "tests", "interop", "py"),
        ]
    ),
    PYTHONDONTWRITEBYTECODE="1",
)


class Failure(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


class Run:
    def __init__(self, work: str, use_asyncio: bool) -> None:
        self.work = work
        self.use_asyncio = use_asyncio
        self.spec = scenario.load(SPEC, SCENARIO)
        self.ring = os.path.join(work, "pool.ring")
        self.done = os.path.join(work, "done")
        self.barrier = os.path.join(work, "barrier")
        self.processes: List[Tuple[subprocess.Popen[bytes], str]] = []

    def start(self, name: str, argv: List[str]) -> subprocess.Popen[bytes]:
        out = open(os.path.join(self.work, name + ".out"), "wb")
        err = open(os.path.join(self.work, name + ".err"), "wb")
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=ENV)
        out.close()
        err.close()
        self.processes.append((process, name))
        return process

    def read(self, name: str, suffix: str) -> str:
        with open(os.path.join(self.work, name + suffix), encoding="utf-8") as f:
            return f.read()

    def finish(self, process: subprocess.Popen[bytes], name: str) -> None:
        try:
            rc = process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            raise Failure(f"{name} did not finish within {WAIT} s")
        check(rc == 0, f"{name} exited {rc}: {self.read(name, '.err')}")

    def wait_for(self, what: str, condition) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + WAIT
        while not condition():
            for process, name in self.processes:
                check(
                    process.poll() is None,
                    f"{name} exited {process.returncode} while waiting for {what}: "
                    f"{self.read(name, '.err')}",
                )
            check(time.monotonic() < deadline, f"timed out waiting for {what}")
            time.sleep(0.005)

    def common(self) -> List[str]:
        return ["--spec", SPEC, "--scenario", SCENARIO]

    def worker_argv(self, name: str) -> List[str]:
        ready = os.path.join(self.work, name + ".ready")
        tail = ["--producers", str(PRODUCERS), "--group", GROUP]
        tail += ["--ready", ready, "--done", self.done]
        if name == "c":
            return (
                [C_PROGRAM, "work", self.ring]
                + self.common()
                + tail
                + [
                    "--pause-us",
                    str(PAUSE_US),
                ]
            )
        if name == "go":
            return (
                [GO_PROGRAM, "work", self.ring]
                + self.common()
                + tail
                + [
                    "--batch",
                    "8",
                    "--pause",
                    f"{PAUSE_US}us",
                ]
            )
        return (
            [PYTHON, PY_PROGRAM, self.ring]
            + self.common()
            + tail
            + [
                "--batch",
                "8",
                "--pause",
                str(PAUSE_US / 1e6),
            ]
            + (["--asyncio"] if self.use_asyncio else [])
        )

    def run(self) -> Dict[str, int]:
        RingBuffer.create(self.ring, self.spec.capacity, fanout=True).close()
        os.mkdir(self.barrier)
        workers = ["py", "go", "c"]
        started = {name: self.start(name, self.worker_argv(name)) for name in workers}
        # Every worker has joined before any message is written.
        self.wait_for(
            "the workers to join",
            lambda: all(
                os.path.exists(os.path.join(self.work, n + ".ready")) for n in workers
            ),
        )
        producers = {
            "producer_c": self.start(
                "producer_c",
                [C_PROGRAM, "produce", self.ring]
                + self.common()
                + ["--producer", "0", "--barrier", self.barrier],
            ),
            "producer_go": self.start(
                "producer_go",
                [GO_PROGRAM, "writer", self.ring]
                + self.common()
                + ["--producer", "1", "--barrier", self.barrier, "--fanout"],
            ),
        }
        self.wait_for(
            "the producers to be ready",
            lambda: all(
                os.path.exists(os.path.join(self.barrier, f"ready.{p}"))
                for p in range(PRODUCERS)
            ),
        )
        open(os.path.join(self.barrier, "go"), "w").close()
        for name, process in producers.items():
            self.finish(process, name)
        open(self.done, "w").close()
        for name, process in started.items():
            self.finish(process, name)
        counts = self.check_outputs(workers)
        self.check_group()
        return counts

    def check_outputs(self, workers: List[str]) -> Dict[str, int]:
        seen: Dict[Tuple[int, int], str] = {}
        counts: Dict[str, int] = {}
        for name in workers:
            last = [-1] * PRODUCERS
            lines = self.read(name, ".out").splitlines()
            counts[name] = len(lines)
            for number, line in enumerate(lines, 1):
                where = f"{name} worker, line {number} {line!r}"
                fields = line.split(" ")
                check(len(fields) == 4, f"{where}: not 'PRODUCER SEQ LENGTH CRC32'")
                producer, seq, length = (int(f) for f in fields[:3])
                crc = int(fields[3], 16)
                check(0 <= producer < PRODUCERS, f"{where}: no such producer")
                check(0 <= seq < self.spec.count, f"{where}: no such sequence number")
                want = self.spec.tagged_message(producer, seq)
                check(length == len(want), f"{where}: length, want {len(want)}")
                want_crc = zlib.crc32(want[:-4])
                check(crc == want_crc, f"{where}: crc, want {want_crc:08x}")
                check(
                    (producer, seq) not in seen,
                    f"{where}: processed twice (also by the {seen.get((producer, seq))} worker)",
                )
                seen[(producer, seq)] = name
                check(
                    seq > last[producer],
                    f"{where}: after seq {last[producer]} of producer {producer} (claim order)",
                )
                last[producer] = seq
            check(counts[name] > 0, f"the {name} worker processed no message")
        missing = [
            (p, s)
            for p in range(PRODUCERS)
            for s in range(self.spec.count)
            if (p, s) not in seen
        ]
        check(
            not missing, f"{len(missing)} messages never processed, first {missing[:5]}"
        )
        check(len(seen) == PRODUCERS * self.spec.count, "message count")
        return counts

    def check_group(self) -> None:
        with RingBuffer.open(self.ring) as ring:
            groups = ring.worker_groups()
            stats = ring.stats()
        check(len(groups) == 1 and groups[0].name == GROUP, f"groups: {groups}")
        group = groups[0]
        total = PRODUCERS * self.spec.count
        check(not group.at_most_once, "the group is at-least-once")
        check(
            group.messages_done == total,
            f"messages_done {group.messages_done}, want {total}",
        )
        check(
            (group.redelivered, group.dropped, group.stale_releases) == (0, 0, 0),
            f"redelivered/dropped/stale_releases: {group}",
        )
        check(
            group.claim_position == stats.producer_position,
            f"claim position {group.claim_position}, producers at {stats.producer_position}",
        )
        check(group.workers_alive == 0, f"workers alive after all exited: {group}")


def main() -> int:
    with tempfile.TemporaryDirectory(
        prefix="pool.", dir=os.environ.get("TEST_TMPDIR")
    ) as work:
        run = Run(work, "--asyncio" in sys.argv[1:])
        try:
            counts = run.run()
        except Failure as failure:
            print(f"FAIL: {failure}", file=sys.stderr)
            return 1
        finally:
            for process, _ in run.processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    total = PRODUCERS * run.spec.count
    print(
        f"pool: {total} messages from C and Go producers, each processed exactly once: "
        + ", ".join(f"{name} worker {n}" for name, n in counts.items())
        + (" (the py worker in asyncio)" if run.use_asyncio else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
