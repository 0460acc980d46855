"""The type hints as a user's type checker sees them: ``mypy --strict`` on a
small user program that must pass, and on one whose every marked line must
be flagged. Also checks the package itself under --strict (it is on
MYPYPATH, so mypy reports its errors too). tools/setup.sh installs mypy."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap

import mmap_ringbuffer

GOOD = """
    import array
    import ctypes
    import math
    import mmap
    from typing import List, Optional

    from mmap_ringbuffer import PeekedMessage, Reservation, RingBuffer, RingStats
    from mmap_ringbuffer import Lapped, Subscriber, SubscriberInfo, SubscriberState
    from mmap_ringbuffer import subscribe, unsubscribe


    class Frame:  # shaped like a numpy array to a type checker (PEP 688)

        def __buffer__(self, flags: int) -> memoryview:
            return memoryview(bytearray(8))


    def produce(path: str) -> int:
        with RingBuffer.create(path, 1 << 16, mode=0o640, exclusive=False) as rb:
            rb.write(b"bytes")
            rb.write(bytearray(b"bytearray"), timeout=1.0)
            rb.write(memoryview(b"memoryview"), timeout=math.inf)
            rb.write(array.array("d", [1.0, 2.0]), timeout=2)
            rb.write(mmap.mmap(-1, 16))
            rb.write((ctypes.c_char * 4)())  # a ctypes array
            rb.write(ctypes.c_uint64(7))  # a ctypes scalar
            rb.write(Frame(), timeout=None)  # a PEP 688 buffer (numpy arrays)
            with rb.reserve(8) as slot:
                slot[:] = b"in place"
            reservation: Reservation = rb.reserve(1)
            reservation.abort()
            return rb.write_many([b"a", bytearray(b"b"), (ctypes.c_char * 2)()])


    def consume(path: str) -> List[bytes]:
        with RingBuffer.open(path) as rb:
            target = (ctypes.c_char * 64)()
            size: int = rb.read_into(target)
            size += rb.read_into(bytearray(64))
            size += rb.read_into(Frame())
            first: bytes = rb.read(timeout=1)
            maybe: Optional[bytes] = rb.try_read()
            peeked: PeekedMessage = rb.peek()
            peeked.release()
            many: List[bytes] = rb.read_many(10, timeout=0.5)
            stats: RingStats = rb.stats()
            skipped: int = rb.recover(stale_after=0.1)
            return [first, *many, *(m for m in rb)]


    def inspect(path: str) -> int:
        with RingBuffer(path, readonly=True) as rb:
            return rb.stats().messages_written + rb.capacity


    def fan_out(path: str) -> List[bytes]:
        with RingBuffer.create(path, 1 << 16, fanout=True) as rb:
            fanout: bool = rb.is_fanout
            sub: Subscriber = rb.subscribe("recorder", from_oldest=True)
            with subscribe(path, None, lossy=True) as tap:
                info: SubscriberInfo = tap.info()
                lost: int = info.lost_bytes + info.lost_events
                state: SubscriberState = info.state
                name: Optional[str] = info.name
            with rb.subscribe(evict_after=0.5) as evictable:
                try:
                    evictable.read(timeout=1.0)
                except Lapped as lapped:
                    lost += lapped.lost_bytes
            sub.hold()
            for position, message in sub.read_many_at(10):
                sub.release_through(position)
            listed: List[SubscriberInfo] = rb.subscribers()
            sub.close()
            unsubscribe(path, "recorder")
            return [*sub.read_many(1), *(m for m in sub)]


    RingBuffer.remove("/dev/shm/none.ring", missing_ok=True)
"""

# Every line marked "# flagged" must get an error, and no other line.
BAD = """
    from mmap_ringbuffer import RingBuffer

    rb = RingBuffer("p", 3)  # flagged: the constructor opens; create(path, size)
    rb.write("hello")  # flagged: text is not bytes-like
    rb.write(42)  # flagged
    rb.write(object())  # flagged: no buffer
    rb.write_many(["a", "b"])  # flagged
    rb.read(timeout="a")  # flagged
    rb.read_many(1.5)  # flagged
    rb.reserve(1.5)  # flagged
    rb.read_into(b"read-only")  # flagged: needs a writable buffer
    rb.recover(stale_after="1")  # flagged
    RingBuffer.create("p", 4096, mode="0600")  # flagged
    RingBuffer.create("p", "4096")  # flagged
    RingBuffer.open("p", True)  # flagged: readonly is keyword-only
    message: str = rb.read()  # flagged: bytes, not str
    rb.subscribe(name=1)  # flagged
    rb.subscribe("n", True)  # flagged: lossy is keyword-only
    RingBuffer.create("p", 4096, fanout="yes")  # flagged
"""


def run_mypy(tmp_path: pathlib.Path, source: str) -> subprocess.CompletedProcess[str]:
    program = tmp_path / "user_program.py"
    program.write_text(textwrap.dedent(source))
    package_parent = pathlib.Path(
        os.path.abspath(mmap_ringbuffer.__file__)
    ).parent.parent
    env = dict(os.environ, MYPYPATH=str(package_parent))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(program),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )


def test_a_correct_program_type_checks(tmp_path: pathlib.Path) -> None:
    result = run_mypy(tmp_path, GOOD)
    assert result.stderr == ""
    assert result.stdout == ""
    assert result.returncode == 0


def test_wrong_calls_are_flagged(tmp_path: pathlib.Path) -> None:
    result = run_mypy(tmp_path, BAD)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = textwrap.dedent(BAD).splitlines()
    expected = {n for n, line in enumerate(lines, 1) if "# flagged" in line}
    flagged = {
        int(m.group(1))
        for m in re.finditer(r"^\S*user_program\.py:(\d+): error:", result.stdout, re.M)
    }
    assert flagged == expected, result.stdout
    # The package itself has no error under --strict.
    assert "mmap_ringbuffer" not in result.stdout.replace("from mmap_ringbuffer", "")
