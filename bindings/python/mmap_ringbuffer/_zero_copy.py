"""Zero-copy access to ring memory: reservations (write in place) and peeked
messages (read in place).

Both hand out a memoryview directly over the shared mapping. The view is
released when the reservation is committed or aborted, the message released,
or the ring closed, so that using it afterwards raises ValueError instead of
touching memory that may be reused or unmapped. Slices taken from the view
are not tracked: do not keep them past that point.

A handle keeps its zero-copy objects in a :class:`Views` registry; the
objects talk to that registry (the C ring, the error mapping, the set of
live views), never to the handle itself.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Callable, List, Optional, Set, Type

from ._errors import StaleError
from ._mrb_cffi import ffi, lib

_mrb_abort = lib.mrb_abort


class Views:
    """One handle's zero-copy state: its live reservations and peeked
    message, and the views that could not be released yet."""

    __slots__ = ("ring", "error", "peeked", "_live", "_lingering")

    def __init__(self, ring: Any, error: Callable[[int], Exception]) -> None:
        #: The handle's ``struct mrb_ring *``.
        self.ring = ring
        #: The handle's mapping of negative codes to exceptions.
        self.error = error
        #: The message peek() returned and nobody released yet.
        self.peeked: Optional[PeekedMessage] = None
        self._live: Set[_RingView] = set()
        self._lingering: List[memoryview] = []

    def forget_peeked(self) -> None:
        """Invalidates the peeked message (a read is about to consume it)."""
        if self.peeked is not None:
            self.peeked._detach()

    def release_all(self) -> bool:
        """Aborts open reservations and releases every view handed out;
        False if some view is still exported (unmapping would be unsafe)."""
        for ring_view in list(self._live):
            ring_view._invalidate()
        still_exported = []
        for view in self._lingering:
            try:
                view.release()
            except BufferError:
                still_exported.append(view)
        self._lingering = still_exported
        return not still_exported

    def _add(self, ring_view: _RingView) -> None:
        self._live.add(ring_view)

    def _retire(self, ring_view: _RingView, view: memoryview) -> None:
        """Releases a finished object's view, or remembers it for
        release_all() while something still holds a buffer export of it."""
        self._live.discard(ring_view)
        try:
            view.release()
        except BufferError:
            self._lingering.append(view)


class _RingView:
    """Common part: a memoryview over ring memory registered with its ring."""

    __slots__ = ("_views", "_cdata", "_view", "_handle")

    def __init__(
        self, views: Views, cdata: Any, view: memoryview, handle: object
    ) -> None:
        self._views = views
        self._cdata = cdata
        self._view: Optional[memoryview] = view
        # The RingBuffer: kept alive while this object is, so that its
        # mapping and consumer role outlive the view.
        self._handle = handle
        views._add(self)

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
        if view is not None:
            self._views._retire(self, view)

    def _finish(self, call: Callable[[Any, Any], int]) -> None:
        if self._view is None:
            raise StaleError("already finished")
        self._detach()
        rc = call(self._views.ring, self._cdata)
        if rc < 0:
            raise self._views.error(rc)

    def _invalidate(self) -> None:
        """Called when the handle closes: give the space back, drop the view."""
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

    def __init__(self, views: Views, res: Any, handle: object) -> None:
        """Wraps a filled-in ``struct mrb_reservation *`` (internal: use
        RingBuffer.reserve())."""
        super().__init__(views, res, memoryview(ffi.buffer(res.data, res.len)), handle)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.view[key] = value

    def commit(self) -> None:
        """Publishes the message to the consumer."""
        self._finish(lib.mrb_commit)

    def abort(self) -> None:
        """Discards the reservation; the consumer skips it."""
        self._finish(_mrb_abort)

    def _invalidate(self) -> None:
        if self._view is not None:
            self._detach()
            _mrb_abort(self._views.ring, self._cdata)

    def __enter__(self) -> Reservation:
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

    def __init__(self, views: Views, view: Any, handle: object) -> None:
        """Wraps a filled-in ``struct mrb_view *`` and becomes the handle's
        peeked message (internal: use RingBuffer.peek())."""
        memory = memoryview(ffi.buffer(view.data, view.len)).toreadonly()
        super().__init__(views, view, memory, handle)
        views.peeked = self

    def release(self) -> None:
        """Consumes the message; the view becomes invalid."""
        self._finish(lib.mrb_release)

    def _detach(self) -> None:
        if self._views.peeked is self:
            self._views.peeked = None
        super()._detach()

    def __enter__(self) -> PeekedMessage:
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
