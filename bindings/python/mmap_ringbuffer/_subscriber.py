"""Subscribers of a fan-out ring (mrb_subscribe): their options, their
table entries as typed records, and the one call that needs no handle.

The Subscriber handle itself is in _ring.py, next to RingBuffer: both are
handles on a ring and share every read and write call.
"""

from __future__ import annotations

import enum
import errno
import math
import os
from dataclasses import dataclass, fields
from typing import Any, Optional, Tuple

from ._args import encode_path, timeout_seconds
from ._errors import (
    HandleErrors,
    InvalidArgument,
    Lapped,
    PathArg,
    error_for,
    strerror,
)
from ._mrb_cffi import ffi, lib

#: The longest subscriber name, in bytes (UTF-8).
NAME_MAX: int = lib.MRB_SUBSCRIBER_NAME_MAX


class SubscriberState(enum.IntEnum):
    """``enum mrb_subscriber_state``: where a table entry stands."""

    JOINING = lib.MRB_SUBSCRIBER_JOINING
    """Being set up by mrb_subscribe."""
    ACTIVE = lib.MRB_SUBSCRIBER_ACTIVE
    """Its handle is open (or not yet seen gone)."""
    DETACHED = lib.MRB_SUBSCRIBER_DETACHED
    """Named, with no handle: its messages wait for it."""
    EVICTED = lib.MRB_SUBSCRIBER_EVICTED
    """No longer holds producers back; its next read raises Lapped if
    messages were lost."""


@dataclass(frozen=True)
class SubscriberInfo:
    """A snapshot of one subscriber's entry (``struct mrb_subscriber_info``)."""

    name: Optional[str]
    """None for an unnamed subscriber."""
    flags: int
    """``MRB_SUBSCRIBE_*`` flags given at join (see :attr:`lossy`,
    :attr:`evictable`)."""
    state: SubscriberState
    pid: int
    """The process owning its handle; 0 when none does."""
    alive: bool
    """True if that process lives."""
    index: int
    """Its entry in the ring's reader table."""
    evict_after_ns: int
    """The eviction timeout given at join (0: never evicted for lagging)."""
    position: int
    """Ring position of the next message it reads."""
    lag_bytes: int
    """Producer position minus :attr:`position`."""
    lag_messages: int
    """Committed messages between the two."""
    messages_read: int
    bytes_read: int
    """Payload bytes of the messages it read."""
    lost_bytes: int
    """Ring bytes (records, headers and padding included) overwritten
    before it read them."""
    lost_events: int
    """Times it was lapped, or evicted with a loss."""
    evictions: int

    @property
    def lossy(self) -> bool:
        """True for a lossy tap (never holds producers back)."""
        return bool(self.flags & lib.MRB_SUBSCRIBE_LOSSY)

    @property
    def evictable(self) -> bool:
        """True for a durable subscriber joined with ``evict_after``."""
        return bool(self.flags & lib.MRB_SUBSCRIBE_EVICT)

    @classmethod
    def from_c(cls, raw: Any) -> "SubscriberInfo":
        """Copies a ``struct mrb_subscriber_info`` cdata into a SubscriberInfo."""
        values = {f.name: getattr(raw, f.name) for f in fields(cls)}
        # Bytes from shared memory: C terminates them, they may still be
        # any bytes.
        name = ffi.string(raw.name).decode("utf-8", "replace")
        values["name"] = name or None
        values["state"] = _state(values["state"])
        values["alive"] = bool(values["alive"])
        return cls(**values)


def _state(value: int) -> SubscriberState:
    try:
        return SubscriberState(value)
    except ValueError:  # a state this library does not know: show it as is
        return value  # type: ignore[return-value]


def encode_name(name: Optional[str]) -> Optional[bytes]:
    """A subscriber name as bytes for C: None stays None (unnamed);
    TypeError for a non-str, ValueError for an empty, too long or
    NUL-containing one."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"name must be a str or None, not {type(name).__name__}")
    encoded = name.encode("utf-8")
    if not 1 <= len(encoded) <= NAME_MAX or b"\0" in encoded:
        raise ValueError(
            f"invalid subscriber name {name!r} (want 1..{NAME_MAX} bytes of "
            "UTF-8 without NUL; None for an unnamed subscriber)"
        )
    return encoded


def subscribe_options(
    name: Optional[str],
    lossy: bool,
    evict_after: Optional[float],
    from_oldest: bool,
) -> Tuple[Any, Any]:
    """(``struct mrb_subscribe_options *``, the name buffer it points to,
    to keep alive during the call)."""
    encoded = encode_name(name)
    options = ffi.new("struct mrb_subscribe_options *")
    flags = (lib.MRB_SUBSCRIBE_LOSSY if lossy else 0) | (
        lib.MRB_SUBSCRIBE_FROM_OLDEST if from_oldest else 0
    )
    if evict_after is not None:
        seconds = timeout_seconds(evict_after, "evict_after")
        nanoseconds = seconds * 1e9
        if not (0 < nanoseconds < 2**63 and math.isfinite(seconds)):
            raise ValueError(
                "evict_after must be None (never evict) or a finite number of "
                f"seconds > 0, got {evict_after!r}"
            )
        flags |= lib.MRB_SUBSCRIBE_EVICT
        options.evict_after_ns = max(1, int(nanoseconds))
    if lossy and evict_after is not None:
        exc = InvalidArgument(
            "lossy=True and evict_after cannot be combined (a lossy "
            "subscriber never holds producers back, so there is nothing to "
            "evict it from)"
        )
        exc.code = lib.MRB_EINVAL
        raise exc
    options.flags = flags
    keep = ffi.NULL
    if encoded is not None:
        keep = ffi.new("char[]", encoded)
        options.name = keep
    return options, keep


def unsubscribe(path: PathArg, name: str) -> None:
    """Removes the named subscriber from the ring at ``path`` for good, so
    that its unread messages stop holding producers back.

    Raises NameBusy while a live handle uses the name, FileNotFoundError if
    the ring has no subscriber of that name (or there is no ring), and the
    errors of opening the ring.
    """
    encoded = encode_name(name)
    if encoded is None:
        raise TypeError("name must be a str, not None")
    encoded_path = encode_path(path)
    rc = lib.mrb_unsubscribe(encoded_path, encoded)
    if rc == -errno.ENOENT and os.path.lexists(encoded_path):
        raise FileNotFoundError(errno.ENOENT, f"no subscriber named {name!r}", path)
    if rc < 0:
        raise error_for(rc, path)


def subscribe_refused(
    name: Optional[str], lossy: bool, evict_after: Optional[float]
) -> InvalidArgument:
    """InvalidArgument for options the core refused (MRB_EINVAL)."""
    exc = InvalidArgument(
        f"{strerror(lib.MRB_EINVAL)}: subscribe options refused (name={name!r}, "
        f"lossy={lossy}, evict_after={evict_after!r})"
    )
    exc.code = lib.MRB_EINVAL
    return exc


class SubscriberErrors(HandleErrors):
    """A subscriber's HandleErrors: Lapped carries the subscriber's loss."""

    __slots__ = ("ring",)

    def __init__(self, ring: Any) -> None:
        super().__init__(False)
        self.ring = ring

    def __call__(self, code: int) -> Exception:
        exc = super().__call__(code)
        if isinstance(exc, Lapped):
            raw = ffi.new("struct mrb_subscriber_info *")
            if lib.mrb_subscriber_info(self.ring, raw) == 0:
                exc.lost_bytes = int(raw.lost_bytes)
                exc.lost_events = int(raw.lost_events)
                exc.args = (
                    f"{exc.args[0]}: {exc.lost_bytes} bytes lost in total "
                    f"({exc.lost_events} times)",
                )
        return exc
