"""write() takes any contiguous bytes-like object; read_into() any writable one."""

from __future__ import annotations

import array
import ctypes
import mmap
from typing import Any, Callable

import pytest

from mmap_ringbuffer import BufferEmpty, RingBuffer

PAYLOAD = bytes(range(1, 65))


def mmap_of(data: bytes) -> mmap.mmap:
    region = mmap.mmap(-1, len(data))
    region.write(data)
    return region


WRITABLE_SOURCES: dict[str, Callable[[], Any]] = {
    "bytes": lambda: PAYLOAD,
    "bytearray": lambda: bytearray(PAYLOAD),
    "memoryview": lambda: memoryview(PAYLOAD),
    "memoryview readonly": lambda: memoryview(bytearray(PAYLOAD)).toreadonly(),
    "memoryview slice": lambda: memoryview(b"xx" + PAYLOAD + b"yy")[2:-2],
    "memoryview 2-d": lambda: memoryview(PAYLOAD).cast("B", (8, 8)),
    "memoryview of ints": lambda: memoryview(PAYLOAD).cast("I"),
    "array B": lambda: array.array("B", PAYLOAD),
    "array d": lambda: array.array("d", memoryview(PAYLOAD).cast("d").tolist()),
    "mmap": lambda: mmap_of(PAYLOAD),
    "ctypes array": lambda: (ctypes.c_char * len(PAYLOAD)).from_buffer_copy(PAYLOAD),
    "bytes subclass": lambda: type("B", (bytes,), {})(PAYLOAD),
}


@pytest.mark.parametrize("make", WRITABLE_SOURCES.values(), ids=WRITABLE_SOURCES.keys())
def test_write_accepts(rb: RingBuffer, make: Callable[[], Any]) -> None:
    source = make()
    rb.write(source)
    assert rb.read() == PAYLOAD


@pytest.mark.parametrize("make", WRITABLE_SOURCES.values(), ids=WRITABLE_SOURCES.keys())
def test_write_many_accepts(rb: RingBuffer, make: Callable[[], Any]) -> None:
    assert rb.write_many([make(), b"tail"]) == 2
    assert rb.read_many(10) == [PAYLOAD, b"tail"]


@pytest.mark.parametrize(
    "bad",
    ["text", 42, None, [1, 2, 3], memoryview(PAYLOAD)[::2]],
    ids=["str", "int", "None", "list", "non-contiguous"],
)
def test_write_rejects(rb: RingBuffer, bad: Any) -> None:
    with pytest.raises((TypeError, BufferError, ValueError)):
        rb.write(bad)
    with pytest.raises(BufferEmpty):
        rb.read()


def test_write_many_rejects_non_bytes(rb: RingBuffer) -> None:
    with pytest.raises(TypeError):
        rb.write_many([b"ok", "text"])  # type: ignore[list-item]
    assert rb.try_read() is None


READ_TARGETS: dict[str, Callable[[int], Any]] = {
    "bytearray": lambda n: bytearray(n),
    "memoryview": lambda n: memoryview(bytearray(n)),
    "array B": lambda n: array.array("B", bytes(n)),
    "mmap": lambda n: mmap.mmap(-1, n),
    "ctypes array": lambda n: (ctypes.c_char * n)(),
}


@pytest.mark.parametrize("make", READ_TARGETS.values(), ids=READ_TARGETS.keys())
def test_read_into_fills_the_front_only(
    rb: RingBuffer, make: Callable[[int], Any]
) -> None:
    target = make(100)
    memoryview(target).cast("B")[:] = b"\xee" * 100
    rb.write(PAYLOAD)
    assert rb.read_into(target) == len(PAYLOAD)
    raw = bytes(memoryview(target).cast("B"))
    assert raw[: len(PAYLOAD)] == PAYLOAD
    assert raw[len(PAYLOAD) :] == b"\xee" * (100 - len(PAYLOAD))


def test_read_into_exact_size(rb: RingBuffer) -> None:
    rb.write(PAYLOAD)
    target = bytearray(len(PAYLOAD))
    assert rb.read_into(target) == len(PAYLOAD)
    assert target == PAYLOAD


def test_read_returns_bytes(rb: RingBuffer) -> None:
    rb.write(bytearray(b"abc"))
    message = rb.read()
    assert type(message) is bytes


def test_messages_larger_than_the_read_scratch_buffer(ring_path: Any) -> None:
    with RingBuffer.create(ring_path, 1 << 20) as rb:
        big = bytes(range(256)) * 1024 + b"end"  # 256 KiB + 3, above 64 KiB
        rb.write(big)
        rb.write(big[::-1])
        rb.write(b"small")
        assert rb.read() == big
        assert rb.try_read() == big[::-1]
        assert rb.read() == b"small"
