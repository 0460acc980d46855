"""Argument conversion: Python values checked and turned into what the C
calls take, with errors that name the argument and the range it accepts.

Whether a value is acceptable to the ring (a message size, a ring size, a
mode) is the C core's decision. These helpers refuse only what cannot be
passed to C at all (wrong type, a negative number where C takes an unsigned
one, NaN...), and word the errors for what C refused.
"""

from __future__ import annotations

import numbers
import operator
import os
from array import array
from typing import Any, FrozenSet

from ._errors import InvalidArgument, InvalidSize, PathArg, strerror
from ._mrb_cffi import ffi, lib

_TIMEOUT_RULE = "None or a number of seconds >= 0 (math.inf: no limit)"


def timeout_seconds(timeout: object, name: str = "timeout") -> float:
    """``timeout`` (not None) as float seconds >= 0, math.inf allowed.

    TypeError for anything but a real number (bool and str included),
    ValueError for a negative number or NaN.
    """
    # float and int first in the tuple: they match without the ABC check.
    if isinstance(timeout, bool) or not isinstance(timeout, (float, int, numbers.Real)):
        raise TypeError(f"{name} must be {_TIMEOUT_RULE}, not {type(timeout).__name__}")
    seconds = float(timeout)
    if not seconds >= 0:  # negative or NaN
        raise ValueError(f"{name} must be {_TIMEOUT_RULE}, got {timeout!r}")
    return seconds


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


def positive_int(value: object, name: str) -> int:
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


_BYTE_STRINGS: FrozenSet[type] = frozenset((bytes, bytearray))
# array.array typecode of C's size_t.
_SIZE_T_CODE = next(c for c in "QLI" if array(c).itemsize == ffi.sizeof("size_t"))


def message_lengths(messages: Any) -> Any:
    """Each message's size in bytes as a ``size_t[]`` (len() counts items,
    not bytes, for arrays and cast memoryviews)."""
    if {*map(type, messages)} <= _BYTE_STRINGS:
        sizes = array(_SIZE_T_CODE, map(len, messages))
    else:
        nbytes = []
        for message in messages:
            try:
                nbytes.append(memoryview(message).nbytes)
            except TypeError:
                raise bytes_like_error("each message", message) from None
        sizes = array(_SIZE_T_CODE, nbytes)
    return ffi.from_buffer("size_t[]", sizes)


def create_refused(size: int, mode: int, remove: bool, exclusive: bool) -> Exception:
    """InvalidArgument for arguments create() cannot use: what the C core
    refused (MRB_EINVAL) or what cannot even be passed to it, naming the
    argument and the range it accepts."""
    problems = []
    if remove and exclusive:
        problems.append(
            "remove=True and exclusive=True cannot be combined (remove "
            "replaces an existing file, exclusive refuses one)"
        )
    if not 1 <= size <= lib.MRB_MAX_CAPACITY:
        problems.append(f"invalid ring size {size} (want 1..{lib.MRB_MAX_CAPACITY})")
    if not 0 <= mode <= 0o777:
        shown = oct(mode) if mode >= 0 else str(mode)
        problems.append(
            f"invalid mode {shown} (want permission bits 0o000..0o777; "
            "0 means the default, 0o600)"
        )
    message = "; ".join(problems) or (
        f"{strerror(lib.MRB_EINVAL)} (size={size}, mode={oct(mode)}, remove={remove}, "
        f"exclusive={exclusive})"
    )
    exc = InvalidArgument(message)
    exc.code = lib.MRB_EINVAL
    return exc
