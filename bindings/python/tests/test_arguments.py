"""Wrong argument types and values: a TypeError, ValueError or the documented
InvalidSize / InvalidArgument naming the argument and the range it accepts,
and nothing written, read or created."""

from __future__ import annotations

import math
import pathlib
import re
import stat
from fractions import Fraction
from typing import Any, Callable

import pytest

from mmap_ringbuffer import InvalidArgument, InvalidSize, RingBuffer
from mmap_ringbuffer._mrb_cffi import lib

TIMEOUT_RULE = "None or a number of seconds >= 0 (math.inf: no limit)"


def test_write_text_is_a_type_error(rb: RingBuffer) -> None:
    with pytest.raises(TypeError) as info:
        rb.write("hello")  # type: ignore[arg-type]
    assert str(info.value) == (
        "data must be a contiguous bytes-like object (bytes, bytearray, "
        "memoryview, array, mmap, ...), not str (encode text first, e.g. "
        "s.encode())"
    )
    with pytest.raises(TypeError, match=r"^data must be .*, not int$"):
        rb.write(42)  # type: ignore[arg-type]
    assert rb.try_read() is None


def test_write_many_text_is_a_type_error(rb: RingBuffer) -> None:
    with pytest.raises(TypeError, match=r"^each message must be .*, not str"):
        rb.write_many([bytearray(b"ok"), "text"])  # type: ignore[list-item]
    assert rb.try_read() is None


def test_empty_or_oversized_message_names_the_range(rb: RingBuffer) -> None:
    largest = rb.max_message_size
    with pytest.raises(InvalidSize) as info:
        rb.write(b"")
    assert str(info.value) == (
        f"invalid message size 0 for data (want 1..{largest} bytes, "
        "max_message_size)"
    )
    assert info.value.code == lib.MRB_EMSGSIZE
    with pytest.raises(InvalidSize, match=rf"size {largest + 1} for data "):
        rb.write(bytes(largest + 1), timeout=1)
    with pytest.raises(InvalidSize, match=rf"size 0 for the first message "):
        rb.write_many([b"", b"x"])
    assert rb.try_read() is None


@pytest.mark.parametrize("size", [-1, 0, 2**64, 10**30])
def test_reserve_out_of_range_is_invalid_size(rb: RingBuffer, size: int) -> None:
    with pytest.raises(InvalidSize) as info:
        rb.reserve(size)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == (
        f"invalid message size {size} for size (want 1..{rb.max_message_size} "
        "bytes, max_message_size)"
    )
    assert rb.stats().used_bytes == 0


@pytest.mark.parametrize("size", [1.5, "8", None])
def test_reserve_needs_an_int(rb: RingBuffer, size: Any) -> None:
    with pytest.raises(
        TypeError, match=rf"^size must be an int, not {type(size).__name__}$"
    ):
        rb.reserve(size)


def test_read_many_with_a_huge_count_returns_what_is_there(rb: RingBuffer) -> None:
    rb.write_many([b"a", b"bb", b"ccc"])
    assert rb.read_many(10**12) == [b"a", b"bb", b"ccc"]
    assert rb.read_many(2**64) == []


@pytest.mark.parametrize(
    "count,error,message",
    [
        (1.5, TypeError, "max_count must be an int >= 1, not float"),
        ("3", TypeError, "max_count must be an int >= 1, not str"),
        (0, ValueError, "max_count must be an int >= 1, got 0"),
        (-5, ValueError, "max_count must be an int >= 1, got -5"),
    ],
)
def test_read_many_count(rb: RingBuffer, count: Any, error: type, message: str) -> None:
    rb.write(b"kept")
    with pytest.raises(error) as info:
        rb.read_many(count)
    assert str(info.value) == message
    assert rb.read() == b"kept"


TIMED_CALLS: dict[str, Callable[[RingBuffer, Any], Any]] = {
    "read": lambda rb, t: rb.read(timeout=t),
    "write": lambda rb, t: rb.write(b"x", timeout=t),
    "write_many": lambda rb, t: rb.write_many([b"x"], timeout=t),
    "read_many": lambda rb, t: rb.read_many(1, timeout=t),
}


@pytest.mark.parametrize("call", TIMED_CALLS.values(), ids=TIMED_CALLS.keys())
@pytest.mark.parametrize(
    "timeout,error,shown",
    [
        ("a", TypeError, "not str"),
        (True, TypeError, "not bool"),
        (1j, TypeError, "not complex"),
        (-1, ValueError, "got -1"),
        (-0.5, ValueError, "got -0.5"),
        (math.nan, ValueError, "got nan"),
        (-math.inf, ValueError, "got -inf"),
    ],
)
def test_bad_timeouts(
    rb: RingBuffer,
    call: Callable[[RingBuffer, Any], Any],
    timeout: Any,
    error: type,
    shown: str,
) -> None:
    rb.write(b"waiting")  # a read would succeed: the check comes first
    with pytest.raises(error) as info:
        call(rb, timeout)
    assert str(info.value) == f"timeout must be {TIMEOUT_RULE}, {shown}"
    assert rb.read_many(10) == [b"waiting"]


@pytest.mark.parametrize("timeout", [0, 1, 0.5, Fraction(1, 2), math.inf])
def test_good_timeouts(rb: RingBuffer, timeout: Any) -> None:
    rb.write(b"m", timeout=timeout)
    assert rb.read(timeout=timeout) == b"m"


def test_recover_stale_after(rb: RingBuffer) -> None:
    assert rb.recover() == 0
    assert rb.recover(0) == 0
    with pytest.raises(ValueError) as info:
        rb.recover(math.inf)
    assert str(info.value) == (
        "stale_after must be None or a finite number of seconds from 0 to "
        "9223372037, got inf"
    )
    with pytest.raises(ValueError) as negative:
        rb.recover(-1)
    assert str(negative.value) == f"stale_after must be {TIMEOUT_RULE}, got -1"
    with pytest.raises(TypeError, match="^stale_after must be .*, not str$"):
        rb.recover("1")  # type: ignore[arg-type]


RING_SIZE_RULE = f"(want 1..{1 << 40})"


@pytest.mark.parametrize("size", [0, -1, 2**41, (1 << 40) + 1, 2**70])
def test_create_size_out_of_range(ring_path: pathlib.Path, size: int) -> None:
    with pytest.raises(InvalidArgument) as info:
        RingBuffer.create(ring_path, size)
    assert str(info.value) == f"invalid ring size {size} {RING_SIZE_RULE}"
    assert info.value.code == lib.MRB_EINVAL
    assert not ring_path.exists()


def test_create_largest_and_smallest_sizes_are_accepted_by_the_core() -> None:
    assert lib.MRB_MAX_CAPACITY == 1 << 40  # the range the messages state


def test_create_remove_and_exclusive_together(ring_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        RingBuffer.create(ring_path, 4096, remove=True, exclusive=True)
    assert str(info.value) == (
        "remove=True and exclusive=True cannot be combined (remove replaces "
        "an existing file, exclusive refuses one)"
    )
    assert not ring_path.exists()


def test_create_reports_every_refused_argument(ring_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        RingBuffer.create(ring_path, 0, remove=True, exclusive=True)
    assert str(info.value).split("; ") == [
        "remove=True and exclusive=True cannot be combined (remove replaces "
        "an existing file, exclusive refuses one)",
        f"invalid ring size 0 {RING_SIZE_RULE}",
    ]


MODE_RULE = "(want permission bits 0o000..0o777; 0 means the default, 0o600)"


@pytest.mark.parametrize("mode", [0o1000, 0o4600, 0o2600, 0o1777, 0o7777, 0o100600])
def test_create_mode_beyond_permission_bits(ring_path: pathlib.Path, mode: int) -> None:
    """setuid, setgid, sticky and file-type bits: refused by the core
    (MRB_EINVAL), reported with the argument and its range."""
    with pytest.raises(InvalidArgument) as info:
        RingBuffer.create(ring_path, 4096, mode=mode)
    assert str(info.value) == f"invalid mode {oct(mode)} {MODE_RULE}"
    assert info.value.code == lib.MRB_EINVAL
    assert not ring_path.exists()


@pytest.mark.parametrize("mode", [0o777, 0o644, 0o400, 0o001])
def test_create_mode_permission_bits_are_applied_exactly(
    tmp_path: pathlib.Path, mode: int
) -> None:
    path = tmp_path / f"mode-{mode:o}.ring"
    with RingBuffer.create(path, 4096, mode=mode):
        assert stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.parametrize("mode", [-1, 2**32, 2**70])
def test_create_mode_not_a_mode_t(ring_path: pathlib.Path, mode: int) -> None:
    with pytest.raises(InvalidArgument) as info:
        RingBuffer.create(ring_path, 4096, mode=mode)
    shown = oct(mode) if mode >= 0 else str(mode)
    assert str(info.value) == f"invalid mode {shown} {MODE_RULE}"
    assert not ring_path.exists()


@pytest.mark.parametrize("mode", ["0600", 0o600 * 1.0, None])
def test_create_mode_must_be_an_int(ring_path: pathlib.Path, mode: Any) -> None:
    with pytest.raises(TypeError, match=r"^mode must be an int \(permission bits"):
        RingBuffer.create(ring_path, 4096, mode=mode)
    assert not ring_path.exists()


def test_create_mode_zero_means_0600(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 4096, mode=0):
        assert stat.S_IMODE(ring_path.stat().st_mode) == 0o600


def test_messages_name_no_internal_detail(rb: RingBuffer) -> None:
    """cffi's wording ("from_buffer", "ctype", "cdata") never reaches users."""
    calls: list[Callable[[], Any]] = [
        lambda: rb.write("text"),  # type: ignore[arg-type]
        lambda: rb.reserve(-1),
        lambda: rb.reserve(1.5),  # type: ignore[arg-type]
        lambda: rb.read_many(1.5),  # type: ignore[arg-type]
        lambda: rb.read_into(b"read-only"),  # type: ignore[arg-type]
        lambda: rb.read(timeout="a"),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(Exception) as info:
            call()
        assert isinstance(info.value, (TypeError, ValueError))
        assert not re.search(r"from_buffer|ctype|cdata|initializer", str(info.value))
