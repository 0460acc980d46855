"""Worker groups of a fan-out ring (mrb_worker_join): their options and
their table entries as typed records.

The Worker handle itself is in _ring.py, next to RingBuffer and Subscriber:
all are handles on a ring and share every read and write call.
"""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass
from typing import Any, List, Optional

from ._args import encode_path, timeout_seconds
from ._errors import PathArg, error_for
from ._mrb_cffi import ffi, lib

#: The longest group name, in bytes (UTF-8).
GROUP_NAME_MAX: int = lib.MRB_GROUP_NAME_MAX
#: Worker slots per ring, and groups per ring.
MAX_WORKERS: int = lib.MRB_MAX_WORKERS
MAX_GROUPS: int = lib.MRB_MAX_GROUPS


def worker_options(
    group: str, at_most_once: Optional[bool], hold_timeout: Optional[float]
) -> Any:
    """(``struct mrb_worker_options *`` or NULL when neither option is
    given, encoded group name)."""
    if not isinstance(group, str):
        raise TypeError(f"group must be a str, not {type(group).__name__}")
    name = group.encode("utf-8")
    if not 1 <= len(name) <= GROUP_NAME_MAX or b"\0" in name:
        raise ValueError(
            f"group must be 1 to {GROUP_NAME_MAX} bytes of UTF-8 without NUL, "
            f"not {group!r}"
        )
    if at_most_once is None and hold_timeout is None:
        return ffi.NULL, name
    options = ffi.new("struct mrb_worker_options *")
    options.policy = lib.MRB_AT_MOST_ONCE if at_most_once else lib.MRB_AT_LEAST_ONCE
    if hold_timeout is not None:
        seconds = timeout_seconds(hold_timeout)
        if seconds == 0 or math.isinf(seconds):
            raise ValueError(
                "hold_timeout must be a finite number of seconds > 0, or None"
            )
        options.hold_timeout_ns = max(1, int(seconds * 1e9))
    return options, name


def remove_worker_group(path: PathArg, group: str) -> None:
    """Removes worker group ``group`` of the fan-out ring at ``path`` for
    good, so that the messages it has not finished stop holding producers
    back and its place is free for a new group.

    Only a group without live workers: what its dead workers held is let go.
    Raises NameBusy while a live worker is in the group (or joining or
    leaving it: try again), FileNotFoundError if the ring has no such group
    (or there is no ring), ModeError on a queue ring, and the errors of
    opening the ring.
    """
    _, name = worker_options(group, None, None)
    encoded_path = encode_path(path)
    rc = lib.mrb_worker_group_remove(encoded_path, name)
    if rc == -errno.ENOENT and os.path.lexists(encoded_path):
        raise FileNotFoundError(errno.ENOENT, f"no worker group named {group!r}", path)
    if rc < 0:
        raise error_for(rc, path)


@dataclass(frozen=True)
class GroupInfo:
    """A snapshot of one worker group (``struct mrb_group_info``)."""

    name: str
    at_most_once: bool
    """The policy: True drops what a dead or hung worker held (counted in
    :attr:`dropped`), False redelivers it (:attr:`redelivered`)."""
    index: int
    hold_timeout: Optional[float]
    """Seconds a live worker may hold messages before they are taken from
    it; None: never."""
    claim_position: int
    """The next message no worker has taken (a ring position)."""
    lag_bytes: int
    workers: int
    workers_alive: int
    messages_done: int
    bytes_done: int
    redelivered: int
    dropped: int
    stale_releases: int
    """Late releases refused (a hung worker's messages had been taken)."""

    @classmethod
    def from_c(cls, raw: Any) -> GroupInfo:
        timeout = int(raw.hold_timeout_ns)
        return cls(
            name=ffi.string(raw.name).decode("utf-8", "replace"),
            at_most_once=int(raw.policy) == lib.MRB_AT_MOST_ONCE,
            index=int(raw.index),
            hold_timeout=timeout / 1e9 if timeout > 0 else None,
            claim_position=int(raw.claim_position),
            lag_bytes=int(raw.lag_bytes),
            workers=int(raw.workers),
            workers_alive=int(raw.workers_alive),
            messages_done=int(raw.messages_done),
            bytes_done=int(raw.bytes_done),
            redelivered=int(raw.redelivered),
            dropped=int(raw.dropped),
            stale_releases=int(raw.stale_releases),
        )


@dataclass(frozen=True)
class WorkerInfo:
    """A snapshot of one worker slot (``struct mrb_worker_info``)."""

    index: int
    group: int
    """Its group's :attr:`GroupInfo.index`."""
    pid: int
    alive: bool
    holding: bool
    rescued: bool
    """Another worker is handling what it held."""
    held_from: int
    held_to: int
    messages_done: int
    bytes_done: int

    @classmethod
    def from_c(cls, raw: Any) -> WorkerInfo:
        return cls(
            index=int(raw.index),
            group=int(raw.group),
            pid=int(raw.pid),
            alive=bool(raw.alive),
            holding=bool(raw.holding),
            rescued=bool(raw.rescued),
            held_from=int(raw.held_from),
            held_to=int(raw.held_to),
            messages_done=int(raw.messages_done),
            bytes_done=int(raw.bytes_done),
        )


def list_groups(ring: Any) -> List[GroupInfo]:
    raw = ffi.new("struct mrb_group_info[]", MAX_GROUPS)
    n = lib.mrb_worker_groups(ring, raw, MAX_GROUPS)
    if n < 0:
        return n  # type: ignore[return-value]
    return [GroupInfo.from_c(raw[i]) for i in range(min(int(n), MAX_GROUPS))]


def list_workers(ring: Any) -> List[WorkerInfo]:
    raw = ffi.new("struct mrb_worker_info[]", MAX_WORKERS)
    n = lib.mrb_workers(ring, raw, MAX_WORKERS)
    if n < 0:
        return n  # type: ignore[return-value]
    return [WorkerInfo.from_c(raw[i]) for i in range(min(int(n), MAX_WORKERS))]
