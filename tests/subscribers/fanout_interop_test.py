"""Cross-language fan-out (issue 14): on ONE fan-out ring at once,

  - a C producer (id 0) and a Python producer (id 1) write the tagged
    scenario (per-producer sequence numbers, CRC-32, exact bytes);
  - a Go durable subscriber ("gosub", tests/interop/go subscribe --tagged)
    reads every message;
  - a Python named durable subscriber ("pysub", fanout_py.py subscribe)
    is killed with SIGKILL at random points and restarted, several times;
  - a C lossy tap ("ctap", fanout_c tap) falls behind on purpose so that
    producers lap it;
  - a second lossy tap, the CLI: ``mrb read --subscriber clitap --lossy
    --framed --follow``, stopped with SIGTERM once it has caught up.

Checks (exact):
  - Go: every message of each producer exactly once, in per-producer order,
    with the scenario's length and CRC-32.
  - Python: the released stream (see fanout_py.py for the log) is every
    message of each producer exactly once, in order: each restart resumed
    exactly after the last released message (its first ring position is
    the end of what was released before: no gap, no repeat), and the
    positions of the released batches are contiguous from where it joined
    to the producers' final position. A batch read but not released when
    the process was killed is read again by the next process.
  - Tap: its messages are intact and in per-producer order (checked by the
    tap), it was lapped at least once, and the ring bytes add up: the
    record spans of the messages it delivered plus its lost_bytes equal
    the ring bytes produced since it joined, which equal the record spans
    of every message produced (all are written after it joined; every
    record of the scenario is 64 bytes and the capacity a multiple of
    that, so no padding record is ever written).
  - CLI tap: every message it printed is intact, each producer's in
    increasing order, and (from its entry, read before it is stopped) the
    messages it read times 64 plus its lost_bytes are the ring bytes
    produced.

Under Bazel the programs are in the runfiles tree (the working directory);
elsewhere set FANOUT_ROOT to a directory laid out the same way.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from typing import Callable, Dict, List, Optional, Tuple

ROOT = os.environ.get("FANOUT_ROOT", os.getcwd())
sys.path.insert(0, os.path.join(ROOT, "tests", "interop", "py"))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

import scenario  # noqa: E402
from mmap_ringbuffer import RingBuffer, SubscriberInfo, SubscriberState  # noqa: E402

C_PROGRAM = os.path.join(ROOT, "tests", "subscribers", "fanout_c")
PY_PROGRAM = os.path.join(ROOT, "tests", "subscribers", "fanout_py.py")
GO_PROGRAM = os.path.join(ROOT, "tests", "interop", "go_interop")
MRB_CLI = os.path.join(ROOT, "tools", "mrb", "mrb")
SPEC = os.path.join(ROOT, "tests", "subscribers", "scenarios.txt")
SCENARIO = "fanout"
PRODUCERS = 2  # 0: C, 1: Python
KILLS = 5
LAP_AT = (100, 4000)  # the tap falls two laps behind after these messages
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


def span(length: int) -> int:
    """Ring bytes of the record of a ``length``-byte message."""
    return (16 + length + 15) & ~15


class Run:
    def __init__(self, work: str, seed: int) -> None:
        self.work = work
        self.rng = random.Random(seed)
        self.spec = scenario.load(SPEC, SCENARIO)
        self.ring = os.path.join(work, "fanout.ring")
        self.done = os.path.join(work, "done")
        self.barrier = os.path.join(work, "barrier")
        self.py_log = os.path.join(work, "pysub.log")
        self.processes: List[subprocess.Popen[bytes]] = []
        # Kills that found pysub between a batch's B and R lines: the batch
        # was read again by the next process / had been released.
        self.killed_holding = 0
        self.killed_released = 0
        self.released_before_last = 0
        self.total = self.spec.count * PRODUCERS
        self.expected = {
            (p, s): self.spec.tagged_message(p, s)
            for p in range(PRODUCERS)
            for s in range(self.spec.count)
        }
        check(
            {span(len(m)) for m in self.expected.values()} == {64},
            "the scenario's records must all be 64 bytes",
        )
        check(self.spec.capacity % 64 == 0, "capacity must be a multiple of 64")

    def start(
        self, name: str, argv: List[str], out: Optional[str] = None
    ) -> Tuple[subprocess.Popen[bytes], str]:
        stdout = open(out or os.path.join(self.work, name + ".out"), "ab")
        stderr = open(os.path.join(self.work, name + ".err"), "ab")
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=ENV)
        stdout.close()
        stderr.close()
        self.processes.append(process)
        return process, name

    def stderr_of(self, name: str) -> str:
        with open(os.path.join(self.work, name + ".err"), errors="replace") as f:
            return f.read()[-2000:]

    def finish(self, process: subprocess.Popen[bytes], name: str) -> None:
        try:
            rc = process.wait(WAIT)
        except subprocess.TimeoutExpired:
            raise Failure(f"{name} did not finish; stderr: {self.stderr_of(name)}")
        check(rc == 0, f"{name} exited with {rc}; stderr: {self.stderr_of(name)}")

    def wait_for(
        self,
        what: str,
        ready: Callable[[], bool],
        *watched: Tuple[subprocess.Popen[bytes], str],
    ) -> None:
        deadline = time.monotonic() + WAIT
        while not ready():
            for process, name in watched:
                if process.poll() is not None:
                    raise Failure(
                        f"{name} exited with {process.returncode} while waiting for "
                        f"{what}; stderr: {self.stderr_of(name)}"
                    )
            check(time.monotonic() < deadline, f"timed out waiting for {what}")
            time.sleep(0.002)

    def common(self) -> List[str]:
        return ["--spec", SPEC, "--scenario", SCENARIO]

    def start_py_subscriber(
        self, incarnation: int
    ) -> Tuple[subprocess.Popen[bytes], str]:
        return self.start(
            f"pysub{incarnation}",
            [PYTHON, PY_PROGRAM, "subscribe", self.ring, *self.common()]
            + ["--producers", str(PRODUCERS), "--name", "pysub"]
            + ["--log", self.py_log, "--done", self.done]
            # The processes to be killed are paced (about 25k messages/s),
            # so that a driver descheduled for a while still kills them
            # long before the producers are done; the last one is not.
            + (["--linger", "0.001"] if incarnation < KILLS else []),
        )

    def log_lines(self) -> List[str]:
        try:
            with open(self.py_log) as f:
                return f.read().split("\n")
        except FileNotFoundError:
            return []

    def released_by(self, incarnation: int) -> int:
        """R lines of Python subscriber process ``incarnation`` (0-based):
        after the log's S line number ``incarnation``, if it has one."""
        lines = self.log_lines()
        starts = [i for i, line in enumerate(lines) if line.startswith("S ")]
        if len(starts) != incarnation + 1:
            return 0
        return sum(1 for line in lines[starts[-1] :] if line == "R")

    def run(self) -> None:
        RingBuffer.create(self.ring, self.spec.capacity, fanout=True).close()
        os.mkdir(self.barrier)
        go_ready = os.path.join(self.work, "go.ready")
        tap_ready = os.path.join(self.work, "tap.ready")
        go = self.start(
            "gosub",
            [GO_PROGRAM, "subscribe", self.ring, "--name", "gosub", "--tagged"]
            + ["--count", str(self.total), "--ready", go_ready],
        )
        py = self.start_py_subscriber(0)
        cli = self.start(
            "clitap",
            [MRB_CLI, "read", self.ring, "--subscriber", "clitap", "--lossy"]
            + ["--framed", "--follow"],
        )
        tap = self.start(
            "ctap",
            [C_PROGRAM, "tap", self.ring, *self.common(), "--producers", str(PRODUCERS)]
            + ["--ready", tap_ready, "--done", self.done]
            + [arg for k in LAP_AT for arg in ("--lap-at", str(k))],
        )
        self.wait_for(
            "the subscribers to join",
            lambda: os.path.exists(go_ready)
            and os.path.exists(tap_ready)
            and any(line.startswith("S ") for line in self.log_lines())
            and "clitap" in self.subscriber_names(),
            go,
            py,
            tap,
            cli,
        )
        with RingBuffer.open(self.ring, readonly=True) as ring:
            listed = {e.name: e for e in ring.subscribers()}
            check(
                set(listed) == {"gosub", "pysub", "ctap", "clitap"},
                f"subscribers {listed}",
            )
            check(listed["ctap"].lossy and listed["clitap"].lossy, "taps are lossy")
            check(
                all(e.state == SubscriberState.ACTIVE for e in listed.values()),
                f"all active: {listed}",
            )
            start_position = ring.stats().producer_position
        check(start_position == 0, "nothing written before the subscribers joined")

        producers = [
            self.start(
                "cproducer",
                [C_PROGRAM, "produce", self.ring, *self.common()]
                + ["--producer", "0", "--barrier", self.barrier],
            ),
            self.start(
                "pyproducer",
                [PYTHON, PY_PROGRAM, "produce", self.ring, *self.common()]
                + ["--producer", "1", "--barrier", self.barrier],
            ),
        ]
        self.wait_for(
            "the producers",
            lambda: all(
                os.path.exists(os.path.join(self.barrier, f"ready.{p}"))
                for p in range(PRODUCERS)
            ),
            *producers,
        )
        open(os.path.join(self.barrier, "go"), "w").close()

        # Kill the Python subscriber at random points once it has made
        # progress, and start it again: KILLS times, all while producing.
        kills = 0
        for incarnation in range(1, KILLS + 1):
            self.wait_for(
                f"pysub{incarnation - 1} to release a batch",
                lambda: self.released_by(incarnation - 1) >= 1,
                py,
                *producers,
            )
            time.sleep(self.rng.uniform(0, 0.01))
            check(
                all(p.poll() is None for p, _ in producers),
                f"the producers finished after only {kills} kills: make the "
                "scenario longer",
            )
            py[0].send_signal(signal.SIGKILL)
            check(py[0].wait(WAIT) == -signal.SIGKILL, "pysub killed")
            kills += 1
            py = self.start_py_subscriber(incarnation)

        for process in producers:
            self.finish(*process)
        open(self.done, "w").close()
        for process in (go, py, tap):
            self.finish(*process)

        with RingBuffer.open(self.ring, readonly=True) as ring:
            end_position = ring.stats().producer_position
            self.wait_for(
                "the CLI tap to catch up",
                lambda: self.entry(ring, "clitap").position == end_position,
                cli,
            )
            clitap = self.entry(ring, "clitap")
            cli[0].send_signal(signal.SIGTERM)
            self.finish(*cli)
            listed = {e.name: e for e in ring.subscribers()}
        produced = sum(span(len(m)) for m in self.expected.values())
        check(end_position - start_position == produced, "no padding record")
        check(listed["pysub"].position == end_position, "pysub read everything")

        self.check_go()
        self.check_py(start_position, end_position)
        self.check_tap(start_position, end_position)
        self.check_cli(clitap, start_position, end_position)
        print(
            f"PASS: C + Python producers ({self.total} messages, {produced} ring "
            f"bytes), Go durable subscriber, Python named subscriber killed "
            f"{kills} times ({self.killed_holding} holding an unreleased batch, "
            f"{self.killed_released} between a release and its log line; "
            f"{self.released_before_last} messages released before the last "
            "restart), C lossy "
            f"tap: {self.tap_summary}; CLI tap: {clitap.messages_read} messages, "
            f"lost_bytes {clitap.lost_bytes}, lost_events {clitap.lost_events}"
        )

    def subscriber_names(self) -> List[Optional[str]]:
        with RingBuffer.open(self.ring, readonly=True) as ring:
            return [e.name for e in ring.subscribers()]

    @staticmethod
    def entry(ring: RingBuffer, name: str) -> SubscriberInfo:
        [found] = [e for e in ring.subscribers() if e.name == name]
        return found

    def check_cli(
        self, entry: SubscriberInfo, start_position: int, end_position: int
    ) -> None:
        with open(os.path.join(self.work, "clitap.out"), "rb") as f:
            out = f.read()
        last = [-1] * PRODUCERS
        offset = count = 0
        while offset < len(out):
            check(offset + 4 <= len(out), "CLI tap: a partial frame")
            length = int.from_bytes(out[offset : offset + 4], "little")
            message = out[offset + 4 : offset + 4 + length]
            offset += 4 + length
            p, s = message[0], int.from_bytes(message[1:5], "little")
            check(
                self.expected.get((p, s)) == message,
                f"CLI tap: message {count} is not intact",
            )
            check(s > last[p], f"CLI tap: producer {p}: seq {s} after {last[p]}")
            last[p] = s
            count += 1
        check(count == entry.messages_read, "CLI tap: printed what it read")
        check(
            count * 64 + entry.lost_bytes == end_position - start_position,
            f"CLI tap: delivered {count * 64} + lost {entry.lost_bytes} ring bytes "
            f"!= produced {end_position - start_position}",
        )

    def check_go(self) -> None:
        next_seq = [0] * PRODUCERS
        with open(os.path.join(self.work, "gosub.out")) as f:
            for number, line in enumerate(f, 1):
                producer, seq, length, crc = line.split()
                p, s = int(producer), int(seq)
                check(
                    0 <= p < PRODUCERS and s == next_seq[p],
                    f"gosub line {number}: producer {p} seq {s}, want {next_seq[p]}",
                )
                want = self.expected[(p, s)]
                # The CRC column is the message's own CRC field (of all
                # but its last 4 bytes), which the Go program checked.
                check(
                    int(length) == len(want)
                    and int(crc, 16) == int.from_bytes(want[-4:], "little")
                    and int(crc, 16) == zlib.crc32(want[:-4]),
                    f"gosub line {number}: wrong length or checksum",
                )
                next_seq[p] += 1
        check(
            next_seq == [self.spec.count] * PRODUCERS,
            f"gosub received {next_seq} messages per producer",
        )

    def check_py(self, start_position: int, end_position: int) -> None:
        # Incarnations: each an S line, then B/R lines. A killed one may end
        # with a B line without its R (or a partial line).
        incarnations: List[Tuple[int, List[List[str]]]] = []
        for line in self.log_lines():
            if not line:
                continue
            fields = line.split()
            if fields[0] == "S" and len(fields) == 2:
                incarnations.append((int(fields[1]), []))
            else:
                check(bool(incarnations), f"pysub log: {line!r} before any S line")
                incarnations[-1][1].append(fields)
        check(
            len(incarnations) == KILLS + 1,
            f"pysub ran {len(incarnations)} times, want {KILLS + 1}",
        )
        self.released_before_last = (incarnations[-1][0] - start_position) // 64
        released: List[Tuple[int, int]] = []
        position = start_position  # the end of the released stream
        for number, (resume, entries) in enumerate(incarnations):
            check(
                resume == position,
                f"pysub{number} resumed at {resume}, the released stream ends at "
                f"{position}",
            )
            pending: Optional[Tuple[int, int, List[Tuple[int, int]]]] = None
            for index, fields in enumerate(entries):
                last_entry = index == len(entries) - 1
                if fields == ["R"]:
                    check(pending is not None, f"pysub{number}: R without B")
                    assert pending is not None
                    first, last, tags = pending
                    released.extend(tags)
                    position = last + 64
                    pending = None
                    continue
                check(pending is None, f"pysub{number}: B after B without R")
                batch = self.parse_batch(fields)
                if batch is None:  # a partial line: killed while writing it
                    check(
                        last_entry and number < KILLS,
                        f"pysub{number}: malformed line {fields}",
                    )
                    continue
                first, last, tags = batch
                check(
                    first == position,
                    f"pysub{number}: batch at {first}, want {position} (gap or repeat)",
                )
                pending = batch
            if pending is not None:
                check(number < KILLS, "the last pysub ended with an unreleased batch")
                first, last, tags = pending
                if number + 1 < len(incarnations):
                    resume = incarnations[number + 1][0]
                    check(
                        resume in (first, last + 64),
                        f"pysub{number + 1} resumed at {resume}, neither before "
                        f"({first}) nor after ({last + 64}) the batch pysub{number} "
                        "was killed holding",
                    )
                    if resume == last + 64:  # released just before the kill
                        released.extend(tags)
                        position = last + 64
                        self.killed_released += 1
                    else:  # read, not released: read again by the next one
                        self.killed_holding += 1
        check(position == end_position, f"released up to {position} of {end_position}")
        per_producer: Dict[int, List[int]] = {p: [] for p in range(PRODUCERS)}
        for p, s in released:
            per_producer[p].append(s)
        for p, seqs in per_producer.items():
            check(
                seqs == list(range(self.spec.count)),
                f"pysub released for producer {p}: {len(seqs)} messages, not "
                "each exactly once in order",
            )

    @staticmethod
    def parse_batch(
        fields: List[str],
    ) -> Optional[Tuple[int, int, List[Tuple[int, int]]]]:
        try:
            check(fields[0] == "B", "")
            first, last = int(fields[1]), int(fields[2])
            tags = [tuple(int(x) for x in tag.split(":")) for tag in fields[3:]]
            check(all(len(t) == 2 for t in tags), "")
            check(
                len(tags) == (last - first) // 64 + 1 and (last - first) % 64 == 0, ""
            )
        except (Failure, ValueError, IndexError):
            return None
        return first, last, [(t[0], t[1]) for t in tags]

    def check_tap(self, start_position: int, end_position: int) -> None:
        with open(os.path.join(self.work, "ctap.out")) as f:
            words = f.read().split()
        check(words[:2] == ["tap", "delivered"], f"tap output {words}")
        values = dict(zip(words[1::2], (int(w) for w in words[2::2])))
        self.tap_summary = " ".join(words[1:])
        check(values["start"] == start_position, "the tap joined before production")
        check(values["end"] == end_position, "the tap drained the ring")
        check(values["lost_events"] >= 1, "the tap was lapped")
        check(
            values["spans"] + values["lost_bytes"] == end_position - start_position,
            f"tap: delivered {values['spans']} + lost {values['lost_bytes']} ring "
            f"bytes != produced {end_position - start_position}",
        )
        check(values["spans"] == 64 * values["delivered"], "tap spans")
        check(values["delivered"] < self.total, "the tap lost messages")


def main() -> int:
    seed = int(os.environ.get("FANOUT_SEED", str(time.time_ns() % 1_000_000)))
    print(f"seed {seed} (FANOUT_SEED={seed} repeats the kill points)")
    work = tempfile.mkdtemp(prefix="fanout.", dir=os.environ.get("TEST_TMPDIR"))
    run = Run(work, seed)
    try:
        run.run()
    except Failure as failure:
        print(f"FAIL: {failure} (files in {work})", file=sys.stderr)
        return 1
    finally:
        for process in run.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
