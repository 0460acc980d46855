"""Exceptions, and the one table that maps the core's return codes onto them."""

from __future__ import annotations

import errno
import os
from typing import Dict, Optional, Type, Union

from ._mrb_cffi import ffi, lib

PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


class RingBufferError(Exception):
    """Base class of every error the core reports (OS failures excepted, which
    are raised as :class:`OSError` subclasses with ``errno`` set)."""

    #: The core's return code (a negative ``enum mrb_error`` value).
    code: int = 0


class BufferFull(RingBufferError):
    """Not enough free space for the message; nothing was written."""


class BufferEmpty(RingBufferError):
    """No committed message is available to read."""


class InvalidSize(RingBufferError, ValueError):
    """The message is empty or longer than ``max_message_size``."""


class Closed(RingBufferError, ValueError):
    """The handle is closed (like I/O on a closed file, also a ValueError)."""


class FormatError(RingBufferError):
    """The file is not a ring, or its header or records are invalid."""


class CorruptError(FormatError):
    """The ring's shared positions or a record are inconsistent."""


class VersionError(FormatError):
    """The ring file uses a format version this library does not support."""


class ConsumerBusy(RingBufferError):
    """Another live handle (or a concurrent call on this one) is the consumer."""


class Timeout(RingBufferError, TimeoutError):
    """A blocking call's timeout expired."""


class RingExists(RingBufferError, FileExistsError):
    """The path exists: exclusive create, or a ring of another size or read mode."""


class InvalidArgument(RingBufferError, ValueError):
    """An argument was rejected by the core (for example a size of 0)."""


class BufferTooSmall(RingBufferError, ValueError):
    """The destination buffer cannot hold the next message; nothing was
    consumed. :attr:`needed` is the size the message requires."""

    needed: int = 0


class StaleError(RingBufferError):
    """A reservation or peeked message no longer matches the ring."""


class ForkedError(RingBufferError):
    """The handle was opened in another process: a child made by fork()
    inherits the parent's handles but cannot use them (the parent keeps its
    consumer role and its messages). Open the ring again in the child."""


class NoProducerSlot(RingBufferError):
    """Every producer slot of the ring is owned by a live writing handle."""


class ForeignFile(RingBufferError, PermissionError):
    """create() found a ring file owned by another user, or granting more
    permissions than requested, and did not adopt it."""


class InCallbackError(RingBufferError):
    """close() was called from inside the ring's own read_batch handler."""


class Interrupted(RingBufferError, InterruptedError):
    """A blocking call was interrupted by a signal."""


class NoSubscriberSlot(RingBufferError):
    """Every entry of the ring's subscriber table (MRB_MAX_SUBSCRIBERS) is
    taken."""


class Lapped(RingBufferError):
    """An evictable subscriber was evicted and messages it had not read were
    overwritten meanwhile. Raised once, by the read that finds out; the next
    read continues, intact, with the oldest message left.
    :attr:`lost_bytes` and :attr:`lost_events` are the subscriber's totals
    (as :meth:`Subscriber.info` reports them) when it was raised."""

    lost_bytes: int = 0
    lost_events: int = 0


class ModeError(RingBufferError):
    """The call does not fit the ring's read mode: a consumer call on a
    fan-out ring (read it through subscribers), or a durable subscriber on a
    queue ring (only lossy subscribers may tap one)."""


class NameBusy(RingBufferError):
    """A live handle already is the subscriber of that name."""


class NoWorkerSlot(RingBufferError):
    """Every worker slot (48 per ring) or every group (4 per ring) is taken."""


_ERRORS: Dict[int, Type[RingBufferError]] = {
    lib.MRB_EFULL: BufferFull,
    lib.MRB_EEMPTY: BufferEmpty,
    lib.MRB_EMSGSIZE: InvalidSize,
    lib.MRB_ECLOSED: Closed,
    lib.MRB_EFORMAT: FormatError,
    lib.MRB_EVERSION: VersionError,
    lib.MRB_ECONSUMER_BUSY: ConsumerBusy,
    lib.MRB_ECORRUPT: CorruptError,
    lib.MRB_EINVAL: InvalidArgument,
    lib.MRB_ETIMEDOUT: Timeout,
    lib.MRB_EBUFFER_TOO_SMALL: BufferTooSmall,
    lib.MRB_EINTR: Interrupted,
    lib.MRB_EEXIST: RingExists,
    lib.MRB_ESTALE: StaleError,
    lib.MRB_ENOWORKER: NoWorkerSlot,
    lib.MRB_EFORKED: ForkedError,
    lib.MRB_ENOSLOT: NoProducerSlot,
    lib.MRB_EFOREIGN: ForeignFile,
    lib.MRB_EINCALLBACK: InCallbackError,
    lib.MRB_ENOSUB: NoSubscriberSlot,
    lib.MRB_ELAPPED: Lapped,
    lib.MRB_EMODE: ModeError,
    lib.MRB_ENAMEBUSY: NameBusy,
}

# Classes that are also OSErrors get OSError's (errno, strerror, filename).
_ERRNO_OF: Dict[Type[RingBufferError], int] = {
    Timeout: errno.ETIMEDOUT,
    RingExists: errno.EEXIST,
    ForeignFile: errno.EPERM,
    Interrupted: errno.EINTR,
}


def strerror(code: int) -> str:
    """The core's message for any code it returns."""
    return ffi.string(lib.mrb_strerror(code)).decode("utf-8", "replace")


def forked_error(code: int, opened_by: int) -> ForkedError:
    """ForkedError for a handle opened by process ``opened_by``."""
    exc = ForkedError(
        f"this handle was opened by process {opened_by}; process {os.getpid()} "
        "(a forked child) cannot use it: open the ring again in this process"
    )
    exc.code = code
    return exc


def error_for(code: int, path: Optional[PathArg] = None) -> Exception:
    """The exception for a negative core return code.

    ``-errno`` becomes ``OSError(errno, strerror, path)``, which Python turns
    into the matching subclass (FileNotFoundError, PermissionError, ...).
    """
    if -1000 <= code < 0:
        return OSError(-code, os.strerror(-code), path)
    cls = _ERRORS.get(code, RingBufferError)
    message = strerror(code)
    exc: RingBufferError
    if cls in _ERRNO_OF:
        if path is None:
            exc = cls(_ERRNO_OF[cls], message)
        else:
            exc = cls(_ERRNO_OF[cls], message, path)
    else:
        exc = cls(message)
    exc.code = code
    return exc


class HandleErrors:
    """Turns a handle's negative return codes into exceptions."""

    __slots__ = ("opened_by", "readonly")

    def __init__(self, readonly: bool) -> None:
        self.opened_by = os.getpid()
        self.readonly = readonly

    def __call__(self, code: int) -> Exception:
        if code == lib.MRB_EFORKED:
            return forked_error(code, self.opened_by)
        if code == -errno.EROFS and self.readonly:
            return OSError(
                errno.EROFS,
                "the handle is read-only (opened with readonly=True): only "
                "stats(), capacity and max_message_size work",
            )
        return error_for(code)
