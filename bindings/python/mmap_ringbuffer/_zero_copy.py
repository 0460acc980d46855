"""Zero-copy access to ring memory: reservations (write in place) and peeked
messages (read in place).

Both hand out a memoryview directly over the shared mapping. The view is
released when the reservation is committed or aborted, the message released,
or the ring closed, so that using it afterwards raises ValueError instead of
touching memory that may be reused or unmapped. Slices taken from the view
are not tracked: do not keep them past that point.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, Type

from ._errors import StaleError, error_for
from ._mrb_cffi import ffi, lib

if TYPE_CHECKING:
    from ._ring import RingBuffer


class _RingView:
    """Common part: a memoryview over ring memory registered with its ring."""

    __slots__ = ("_owner", "_cdata", "_view")

    def __init__(self, owner: "RingBuffer", cdata: Any, view: memoryview) -> None:
        self._owner = owner
        self._cdata = cdata
        self._view: Optional[memoryview] = view
        owner._live_views.add(self)

    @property
    def view(self) -> memoryview:
        """The message bytes in place in the ring."""
        if self._view is None:
            raise StaleError("the message is no longer in place (already finished)")
        return self._view

    @property
    def finished(self) -> bool:
        """True once committed, aborted, released or invalidated by close()."""
        return self._view is None

    def __len__(self) -> int:
        return int(self._cdata.len)

    def __getitem__(self, key: Any) -> Any:
        """An int for an index; a copy (bytes) for a slice, so that no
        untracked view of ring memory escapes."""
        item = self.view[key]
        return item.tobytes() if isinstance(item, memoryview) else item

    def tobytes(self) -> bytes:
        """A copy of the message bytes."""
        return self.view.tobytes()

    def __bytes__(self) -> bytes:
        return self.tobytes()

    def _detach(self) -> None:
        """Invalidates the view; called before the C side lets go of it."""
        view, self._view = self._view, None
        self._owner._live_views.discard(self)
        if view is not None:
            self._owner._retire_view(view)

    def _finish(self, call: Callable[[Any, Any], int]) -> None:
        if self._view is None:
            raise StaleError("already finished")
        self._detach()
        rc = call(self._owner._ring, self._cdata)
        if rc < 0:
            raise error_for(rc)

    def _invalidate(self) -> None:
        """Called by RingBuffer.close(): give the space back, drop the view."""
        self._detach()


class Reservation(_RingView):
    """Space reserved for one message, filled in place, then published.

    Use as a context manager: the message is committed when the block ends
    normally and aborted (turned into padding the consumer skips) when it
    raises. Until then it holds back every message written after it, so keep
    the window short::

        with rb.reserve(12) as slot:
            slot[0:12] = b"hello, world"
    """

    __slots__ = ()

    def __setitem__(self, key: Any, value: Any) -> None:
        self.view[key] = value

    def commit(self) -> None:
        """Publishes the message to the consumer."""
        self._finish(lib.mrb_commit)

    def abort(self) -> None:
        """Discards the reservation; the consumer skips it."""
        self._finish(lib.mrb_abort)

    def _invalidate(self) -> None:
        if self._view is not None:
            self._detach()
            lib.mrb_abort(self._owner._ring, self._cdata)

    def __enter__(self) -> "Reservation":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._view is None:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class PeekedMessage(_RingView):
    """The next message, seen in place (read-only) without consuming it.

    :meth:`release` consumes it. As a context manager it is released when the
    block ends normally and left for the next read when the block raises.
    """

    __slots__ = ()

    def release(self) -> None:
        """Consumes the message; the view becomes invalid."""
        self._owner._peeked = None
        self._finish(lib.mrb_release)

    def _detach(self) -> None:
        if self._owner._peeked is self:
            self._owner._peeked = None
        super()._detach()

    def __enter__(self) -> "PeekedMessage":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._view is None:
            return
        if exc_type is None:
            self.release()
        else:
            self._detach()


def writable_view(pointer: Any, length: int) -> memoryview:
    """A writable memoryview over ``length`` bytes at a C pointer."""
    return memoryview(ffi.buffer(pointer, length))


def readonly_view(pointer: Any, length: int) -> memoryview:
    """A read-only memoryview over ``length`` bytes at a C pointer."""
    return memoryview(ffi.buffer(pointer, length)).toreadonly()
