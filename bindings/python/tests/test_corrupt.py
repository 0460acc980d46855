"""Damaged ring files raise FormatError (VersionError, CorruptError are
subclasses) and never crash the interpreter."""

from __future__ import annotations

import os
import pathlib
import struct
import subprocess
import sys
import textwrap

import pytest

from mmap_ringbuffer import (
    BufferEmpty,
    CorruptError,
    FormatError,
    RingBuffer,
    RingBufferError,
    VersionError,
)

# Offsets in the file header (docs/FORMAT.md, core/src/layout.h).
VERSION = 0x008
HEADER_SIZE_FIELD = 0x00C
CAPACITY = 0x010
FEATURE_FLAGS = 0x03C
PRODUCER_POSITION = 0x080
CONSUMER_POSITION = 0x180
DATA = 65536  # the data region starts after the 64 KiB header


def make_ring(path: pathlib.Path, messages: int = 3) -> None:
    with RingBuffer.create(path, 4096) as rb:
        for i in range(messages):
            rb.write(b"message %d" % i)


def patch(path: pathlib.Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_empty_file(ring_path: pathlib.Path) -> None:
    ring_path.write_bytes(b"")
    with pytest.raises(FormatError):
        RingBuffer.open(ring_path)


def test_text_file(ring_path: pathlib.Path) -> None:
    ring_path.write_text("hello, I am not a ring buffer\n" * 200)
    with pytest.raises(FormatError):
        RingBuffer.open(ring_path)


@pytest.mark.parametrize("size", [1, 8, 100, 4095, 4096, 4096 + 100, 4096 + 2048])
def test_truncated(ring_path: pathlib.Path, size: int) -> None:
    make_ring(ring_path)
    os.truncate(ring_path, size)
    with pytest.raises(FormatError):
        RingBuffer.open(ring_path)


def test_extended(ring_path: pathlib.Path) -> None:
    make_ring(ring_path)
    os.truncate(ring_path, DATA + 8192)
    with pytest.raises(FormatError):
        RingBuffer.open(ring_path)


def test_bad_magic(ring_path: pathlib.Path) -> None:
    make_ring(ring_path)
    patch(ring_path, 0, b"NOTARING")
    with pytest.raises(FormatError) as info:
        RingBuffer.open(ring_path)
    assert type(info.value) is FormatError


def test_future_version(ring_path: pathlib.Path) -> None:
    make_ring(ring_path)
    for version in (1, 3):
        patch(ring_path, VERSION, struct.pack("<I", version))
        with pytest.raises(VersionError):
            RingBuffer.open(ring_path)


def test_uninitialised_version(ring_path: pathlib.Path) -> None:
    make_ring(ring_path)
    patch(ring_path, VERSION, struct.pack("<I", 0))
    with pytest.raises(FormatError):
        RingBuffer.open(ring_path)


def test_version_error_on_create_over_it(ring_path: pathlib.Path) -> None:
    make_ring(ring_path)
    patch(ring_path, VERSION, struct.pack("<I", 7))
    with pytest.raises(VersionError):
        RingBuffer.create(ring_path, 4096)


@pytest.mark.parametrize(
    "offset,value",
    [
        (HEADER_SIZE_FIELD, struct.pack("<I", 512)),
        (CAPACITY, struct.pack("<Q", 8192)),
        (CAPACITY, struct.pack("<Q", 4000)),
        (CAPACITY, struct.pack("<Q", 0)),
        (FEATURE_FLAGS, struct.pack("<I", 1)),
    ],
    ids=[
        "header size",
        "capacity vs file size",
        "capacity not 2^n",
        "capacity 0",
        "unknown feature",
    ],
)
def test_inconsistent_header(
    ring_path: pathlib.Path, offset: int, value: bytes
) -> None:
    make_ring(ring_path)
    patch(ring_path, offset, value)
    with pytest.raises(FormatError):
        RingBuffer.open(ring_path)


def test_consumer_ahead_of_producer(ring_path: pathlib.Path) -> None:
    make_ring(ring_path)
    patch(ring_path, CONSUMER_POSITION, struct.pack("<Q", 1 << 20))
    with pytest.raises(FormatError):
        with RingBuffer.open(ring_path) as rb:
            rb.read()


def test_producer_too_far_ahead(ring_path: pathlib.Path) -> None:
    make_ring(ring_path)
    patch(ring_path, PRODUCER_POSITION, struct.pack("<Q", 1 << 40))
    with pytest.raises(FormatError):
        with RingBuffer.open(ring_path) as rb:
            rb.read()


def test_record_with_impossible_length(ring_path: pathlib.Path) -> None:
    make_ring(ring_path, messages=1)
    # control word of the first record: length bits set far past the ring
    with open(ring_path, "r+b") as f:
        f.seek(DATA)
        control = struct.unpack("<Q", f.read(8))[0]
        f.seek(DATA)
        f.write(struct.pack("<Q", (control & ~((1 << 40) - 1)) | (1 << 39)))
    with RingBuffer.open(ring_path) as rb:
        with pytest.raises(CorruptError):
            rb.read()
        with pytest.raises(CorruptError):
            rb.peek()
        with pytest.raises(CorruptError):
            rb.read_many(4)


def test_garbage_record_area_is_not_a_message(ring_path: pathlib.Path) -> None:
    make_ring(ring_path, messages=0)
    patch(ring_path, DATA, os.urandom(4096))
    with RingBuffer.open(ring_path) as rb:
        with pytest.raises(BufferEmpty):
            rb.read()


def test_random_damage_never_crashes(tmp_path: pathlib.Path) -> None:
    """Flips random bytes of valid rings in a child interpreter: every
    outcome must be a message or a RingBufferError, never a crash."""
    script = textwrap.dedent(
        """
        import os, random, sys
        from mmap_ringbuffer import RingBuffer, RingBufferError

        base = sys.argv[1]
        rng = random.Random(20261126)
        outcomes = {}
        for trial in range(300):
            path = os.path.join(base, "fuzz%d.ring" % trial)
            with RingBuffer.create(path, 4096) as rb:
                for i in range(rng.randrange(0, 11)):
                    rb.write(os.urandom(rng.randrange(1, 300)))
            size = os.path.getsize(path)
            with open(path, "r+b") as f:
                for _ in range(rng.randrange(1, 8)):
                    where = rng.choice([rng.randrange(0, 0x400), rng.randrange(65536, size)])
                    f.seek(where)
                    f.write(bytes([rng.randrange(256)]))
            try:
                with RingBuffer.open(path) as rb:
                    for _ in range(20):
                        if rb.try_read() is None:
                            break
                    rb.write(b"after damage")
                    rb.read_many(16)
                    rb.stats()
                outcome = "ok"
            except RingBufferError as exc:
                outcome = type(exc).__name__
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            os.unlink(path)
        print(sorted(outcomes.items()))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


def test_format_errors_are_ring_errors() -> None:
    assert issubclass(VersionError, FormatError)
    assert issubclass(CorruptError, FormatError)
    assert issubclass(FormatError, RingBufferError)
