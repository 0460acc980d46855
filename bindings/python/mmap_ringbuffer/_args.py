"""Argument conversion: Python values checked and turned into what the C
calls take, with errors that name the argument and the range it accepts.

Only conversion lives here. Whether a value is acceptable to the ring (a
message size, a ring size, a mode) is the C core's decision; these helpers
only refuse what cannot be passed to C at all (wrong type, negative where C
takes an unsigned integer, NaN...).
"""

from __future__ import annotations

import numbers
import operator
import os
from typing import Optional

from ._errors import InvalidSize, PathArg

_TIMEOUT_RULE = "None or a number of seconds >= 0 (math.inf: no limit)"


def timeout_seconds(timeout: object, name: str = "timeout") -> float:
    """``timeout`` (not None) as float seconds >= 0, math.inf allowed.

    TypeError for anything but a real number (bool and str included),
    ValueError for a negative number or NaN.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"{name} must be {_TIMEOUT_RULE}, not {type(timeout).__name__}")
    seconds = float(timeout)
    if not seconds >= 0:  # negative or NaN
        raise ValueError(f"{name} must be {_TIMEOUT_RULE}, got {timeout!r}")
    return seconds


def optional_timeout(timeout: object) -> Optional[float]:
    """timeout_seconds(), with None passed through (never wait)."""
    return None if timeout is None else timeout_seconds(timeout)


def stale_after_ns(stale_after: object) -> int:
    """recover()'s ``stale_after`` (not None) as int64 nanoseconds: TypeError
    or ValueError as timeout_seconds(), and ValueError past int64."""
    seconds = timeout_seconds(stale_after, "stale_after")
    nanoseconds = seconds * 1e9
    if not nanoseconds < 2**63:
        raise ValueError(
            "stale_after must be None or a finite number of seconds "
            f"from 0 to {(2**63 - 1) / 1e9:.0f}, got {stale_after!r}"
        )
    return int(nanoseconds)


def count(value: object, name: str) -> int:
    """A positive int (``max_count``): TypeError / ValueError otherwise."""
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{name} must be an int >= 1, not {type(value).__name__}"
        ) from None
    if number < 1:
        raise ValueError(f"{name} must be an int >= 1, got {number}")
    return number


def message_size(value: object, name: str, largest: int) -> int:
    """A message size for a size_t parameter. TypeError for a non-int;
    InvalidSize for a negative one (C could not even receive it); sizes
    C can receive are left for C to judge."""
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None
    if not 0 <= number < 2**64:
        raise message_size_error(name, number, largest)
    return number


def message_size_error(name: str, size: int, largest: int) -> InvalidSize:
    """InvalidSize naming the argument, its value and the range."""
    return InvalidSize(
        f"invalid message size {size} for {name} (want 1..{largest} bytes, "
        "max_message_size)"
    )


def bytes_like_error(name: str, value: object) -> TypeError:
    """TypeError for something that is not a contiguous bytes-like object."""
    hint = " (encode text first, e.g. s.encode())" if isinstance(value, str) else ""
    return TypeError(
        f"{name} must be a contiguous bytes-like object (bytes, bytearray, "
        f"memoryview, array, mmap, ...), not {type(value).__name__}{hint}"
    )


def encode_path(path: PathArg) -> bytes:
    """A path argument as bytes for C (TypeError / ValueError otherwise)."""
    encoded = os.fsencode(path)
    if b"\0" in encoded:
        raise ValueError("embedded null byte in path")
    return encoded
