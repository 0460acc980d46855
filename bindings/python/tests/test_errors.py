"""Every error path of the producer and consumer calls, and the error table."""

from __future__ import annotations

import errno
import pathlib
from typing import Any, Callable

import pytest

import mmap_ringbuffer
from mmap_ringbuffer import (
    BufferEmpty,
    BufferFull,
    BufferTooSmall,
    Closed,
    ConsumerBusy,
    InvalidSize,
    RingBuffer,
    RingBufferError,
    StaleError,
)
from mmap_ringbuffer._errors import _ERRORS, error_for
from mmap_ringbuffer._mrb_cffi import lib


def fill(rb: RingBuffer, message: bytes) -> int:
    written = 0
    while True:
        try:
            rb.write(message)
        except BufferFull:
            return written
        written += 1


def test_full_ring_refuses_and_writes_nothing(rb: RingBuffer) -> None:
    written = fill(rb, b"m" * 100)
    assert written > 0
    before = rb.stats()
    with pytest.raises(BufferFull) as info:
        rb.write(b"m" * 100)
    assert info.value.code == lib.MRB_EFULL
    after = rb.stats()
    assert after.messages_written == before.messages_written
    assert after.full_count == before.full_count + 1
    assert [len(m) for m in rb] == [100] * written


def test_space_is_reusable_after_reading(rb: RingBuffer) -> None:
    for round_ in range(5):
        written = fill(rb, bytes([round_]) * 200)
        assert list(rb) == [bytes([round_]) * 200] * written


def test_empty_message_is_invalid(rb: RingBuffer) -> None:
    with pytest.raises(InvalidSize) as info:
        rb.write(b"")
    assert isinstance(info.value, ValueError)
    assert info.value.code == lib.MRB_EMSGSIZE


def test_largest_message_fits_and_one_more_byte_does_not(rb: RingBuffer) -> None:
    largest = bytes(range(256)) * (rb.max_message_size // 256) + b"x" * (
        rb.max_message_size % 256
    )
    rb.write(largest)
    assert rb.read() == largest
    with pytest.raises(InvalidSize):
        rb.write(largest + b"!")
    with pytest.raises(InvalidSize):
        rb.write(bytes(rb.capacity))


def test_empty_ring(rb: RingBuffer) -> None:
    with pytest.raises(BufferEmpty) as info:
        rb.read()
    assert info.value.code == lib.MRB_EEMPTY
    assert rb.try_read() is None
    assert rb.read_many(10) == []
    with pytest.raises(BufferEmpty):
        rb.read_into(bytearray(10))
    with pytest.raises(BufferEmpty):
        rb.peek()
    assert list(rb) == []


CLOSED_CALLS: dict[str, Callable[[RingBuffer], Any]] = {
    "write": lambda rb: rb.write(b"x"),
    "write bytearray": lambda rb: rb.write(bytearray(b"x")),
    "write timeout": lambda rb: rb.write(b"x", timeout=1),
    "write_many": lambda rb: rb.write_many([b"x"]),
    "reserve": lambda rb: rb.reserve(1),
    "read": lambda rb: rb.read(),
    "read timeout": lambda rb: rb.read(timeout=1),
    "try_read": lambda rb: rb.try_read(),
    "read_into": lambda rb: rb.read_into(bytearray(8)),
    "read_many": lambda rb: rb.read_many(4),
    "read_many timeout": lambda rb: rb.read_many(4, timeout=1),
    "peek": lambda rb: rb.peek(),
    "iterate": lambda rb: list(rb),
    "stats": lambda rb: rb.stats(),
    "recover": lambda rb: rb.recover(),
}


@pytest.mark.parametrize("call", CLOSED_CALLS.values(), ids=CLOSED_CALLS.keys())
def test_calls_on_a_closed_handle(
    rb: RingBuffer, call: Callable[[RingBuffer], Any]
) -> None:
    rb.write(b"pending")
    rb.close()
    with pytest.raises(Closed) as info:
        call(rb)
    assert isinstance(info.value, ValueError)
    assert info.value.code == lib.MRB_ECLOSED


def test_second_consumer_handle_is_busy(
    rb: RingBuffer, ring_path: pathlib.Path
) -> None:
    rb.write(b"one")
    rb.write(b"two")
    assert rb.read() == b"one"  # attaches rb as the consumer
    with RingBuffer.open(ring_path) as other:
        other.write(b"three")  # any handle may write
        with pytest.raises(ConsumerBusy) as info:
            other.read()
        assert info.value.code == lib.MRB_ECONSUMER_BUSY
        with pytest.raises(ConsumerBusy):
            other.try_read()
        with pytest.raises(ConsumerBusy):
            other.peek()
        rb.close()  # gives up the consumer role
        assert list(other) == [b"two", b"three"]


def test_read_into_too_small_consumes_nothing(rb: RingBuffer) -> None:
    rb.write(b"0123456789")
    with pytest.raises(BufferTooSmall) as info:
        rb.read_into(bytearray(4))
    assert info.value.needed == 10
    assert "10 bytes" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert rb.read() == b"0123456789"


def test_read_into_needs_a_writable_buffer(rb: RingBuffer) -> None:
    rb.write(b"x")
    with pytest.raises((TypeError, BufferError)):
        rb.read_into(b"readonly")  # type: ignore[arg-type]
    assert rb.read() == b"x"


def test_commit_twice_is_stale(rb: RingBuffer) -> None:
    reservation = rb.reserve(3)
    reservation[:] = b"abc"
    reservation.commit()
    with pytest.raises(StaleError):
        reservation.commit()
    with pytest.raises(StaleError):
        reservation.abort()
    assert rb.read() == b"abc"


def test_release_twice_is_stale(rb: RingBuffer) -> None:
    rb.write(b"a")
    rb.write(b"b")
    peeked = rb.peek()
    peeked.release()
    with pytest.raises(StaleError):
        peeked.release()
    assert rb.read() == b"b"


def test_every_core_error_has_its_own_exception() -> None:
    codes = {
        getattr(lib, name): name
        for name in dir(lib)
        if name.startswith("MRB_E") and not name.startswith("MRB_EXCL")
    }
    assert len(codes) == 23
    for code, name in codes.items():
        exc = error_for(code)
        assert type(exc) is _ERRORS[code], name
        assert type(exc) is not RingBufferError
        assert exc.code == code  # type: ignore[attr-defined]
        assert mmap_ringbuffer.strerror(code) in str(exc)
        assert str(exc) != ""


def test_errno_codes_become_os_errors() -> None:
    exc = error_for(-errno.ENOENT, "/some/path")
    assert isinstance(exc, FileNotFoundError)
    assert exc.errno == errno.ENOENT
    assert exc.filename == "/some/path"
    assert isinstance(error_for(-errno.EACCES), PermissionError)
    assert isinstance(error_for(-errno.ENOSPC), OSError)


def test_every_exported_exception_derives_from_the_base() -> None:
    for name in mmap_ringbuffer.__all__:
        obj = getattr(mmap_ringbuffer, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, RingBufferError), name
