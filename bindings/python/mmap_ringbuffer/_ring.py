"""The handles on a ring file: RingBuffer (mrb_create/mrb_open) and
Subscriber (mrb_subscribe), which share every read and write call."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import threading
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Iterable,
    Iterator,
    List,
    Literal,
    NoReturn,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
)

from ._async import READ, WRITE, Waiter, deadline_of
from ._args import (
    bytes_like_error,
    create_refused,
    encode_path,
    message_lengths,
    message_size,
    message_size_error,
    positive_int,
    stale_after_ns,
    timeout_seconds,
)
from ._errors import BufferTooSmall, Closed, HandleErrors, PathArg, error_for
from ._mrb_cffi import ffi, lib
from ._reader import SCRATCH_LIMIT, BatchReader, ThreadReaders, read_large
from ._stats import RingStats
from ._subscriber import (
    SubscriberErrors,
    SubscriberInfo,
    subscribe_options,
    subscribe_refused,
)
from ._types import ReadableBuffer, WritableBuffer
from ._workers import GroupInfo, WorkerInfo, list_groups, list_workers, worker_options
from ._wait import deadline, wait_in_slices
from ._zero_copy import PeekedMessage, Reservation, Views

# Hot paths bind the C functions once: a module global is cheaper to reach
# than an attribute of lib.
_mrb_write = lib.mrb_py_write
_mrb_read = lib.mrb_py_read
_mrb_read_wait = lib.mrb_py_read_wait
_from_buffer = ffi.from_buffer
_get_ident = threading.get_ident

_INF = math.inf

_EFULL = lib.MRB_EFULL
_EEMPTY = lib.MRB_EEMPTY
_ECLOSED = lib.MRB_ECLOSED
_EINVAL = lib.MRB_EINVAL
_EMSGSIZE = lib.MRB_EMSGSIZE
_EBUFFER_TOO_SMALL = lib.MRB_EBUFFER_TOO_SMALL

# The handle is aligned to this, so that its producer and consumer parts sit
# on cache lines of their own (two lines: adjacent-line prefetch pairs them).
_HANDLE_ALIGNMENT = 128
_HANDLE_SIZE = ffi.sizeof("struct mrb_ring")


_H = TypeVar("_H", bound="_Handle")

# doorbell_fd(), disarm(): which doorbell.
DoorbellSide = Literal["read", "write"]


def _doorbell_side(which: str) -> int:
    if which == "read":
        return int(READ)
    if which == "write":
        return int(WRITE)
    raise ValueError(f"which must be 'read' or 'write', not {which!r}")


def _new_handle() -> Any:
    """A zeroed ``struct mrb_ring *`` aligned to _HANDLE_ALIGNMENT. The
    pointer does not own its memory: keep the returned storage with it."""
    storage = ffi.new("char[]", _HANDLE_SIZE + _HANDLE_ALIGNMENT)
    address = int(ffi.cast("uintptr_t", storage))
    offset = -address % _HANDLE_ALIGNMENT
    return ffi.cast("struct mrb_ring *", storage + offset), storage


class _Handle:
    """What every handle on a ring has: lifetime, properties, the producer
    calls and the reader calls (the ring's consumer for a RingBuffer, the
    subscriber's own position for a Subscriber)."""

    __slots__ = (
        "_ring",
        "_storage",
        "_path",
        "_capacity",
        "_max_message_size",
        "_errors",
        "_readers",
        "_batch",
        "_views",
        "_consumer_lock",
        "_async",
        "__weakref__",
    )

    def _setup(
        self, ring: Any, storage: Any, path: PathArg, errors: HandleErrors
    ) -> None:
        self._ring: Any = ring  # struct mrb_ring *, into _storage
        self._storage: Any = storage  # char[], owns the handle's memory
        self._path = os.fsdecode(path)
        self._capacity = int(lib.mrb_capacity(ring))
        self._max_message_size = int(lib.mrb_max_message_size(ring))
        self._errors = errors
        # read(), try_read(), read_into(); read_many(); reserve(), peek().
        size = min(self._max_message_size, SCRATCH_LIMIT)
        self._readers = ThreadReaders(ring, size)
        self._batch = BatchReader(ring)
        self._views = Views(ring, errors)
        # Serializes read_many() and peek() (the batch buffers, the peeked
        # message): a concurrent call gets ConsumerBusy, as from C.
        self._consumer_lock = threading.Lock()
        # read_async(), write_async(): the doorbells watched in a loop.
        self._async = Waiter(ring, errors)

    # ---- lifetime -------------------------------------------------------------

    def close(self) -> None:
        """Closes the handle; calling it again does nothing.

        Aborts this handle's open reservations and invalidates its views. If
        a view of ring memory is still exported (for example a numpy array
        made from it), raises BufferError and leaves the handle open, since
        unmapping would leave that object pointing at freed memory.
        """
        if not self._views.release_all():
            raise BufferError(
                "cannot close: a view of ring memory is still exported "
                "(release objects made from reservation/peek views first)"
            )
        # Coroutines awaiting this handle get Closed; the loop stops
        # watching the doorbells before the core closes them.
        self._async.close(self._errors(_ECLOSED))
        rc = lib.mrb_close(self._ring)
        if rc < 0 and rc != _ECLOSED:
            raise error_for(rc, self._path)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` succeeded (and in a forked child)."""
        return lib.mrb_capacity(self._ring) == 0

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # An unreachable handle gives up its mapping (and consumer role) like a
        # file object would. At interpreter shutdown the module may be gone.
        try:
            if getattr(self, "_ring", None) is not None and self._views.release_all():
                lib.mrb_close(self._ring)
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"capacity={self._capacity}"
        if self.readonly:
            state += " readonly"
        return f"<{type(self).__name__} path={self._path!r} {state}>"

    def __reduce__(self) -> NoReturn:
        """Refuses: a handle (its mapping, its consumer role) belongs to the
        process that opened it and cannot be pickled. Pass the path and call
        RingBuffer.open(path) (or subscribe(path, ...)) in the other process."""
        raise TypeError(
            f"a {type(self).__name__} handle cannot be pickled; pass its path "
            "and call RingBuffer.open(path) (or subscribe(path, ...)) in the "
            "other process"
        )

    # ---- properties -----------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Data bytes in the ring (a power of two), fixed at creation."""
        return self._capacity

    @property
    def max_message_size(self) -> int:
        """The largest message accepted, fixed at creation."""
        return self._max_message_size

    @property
    def path(self) -> str:
        """The path the ring was created or opened at."""
        return self._path

    @property
    def readonly(self) -> bool:
        """True for a handle opened with ``readonly=True``."""
        return self._errors.readonly

    def stats(self) -> RingStats:
        """A snapshot of the ring's counters and positions."""
        raw = ffi.new("struct mrb_stats *")
        rc = lib.mrb_stats(self._ring, raw)
        if rc < 0:
            raise self._errors(rc)
        return RingStats.from_c(raw)

    # ---- producer side --------------------------------------------------------

    def write(self, data: ReadableBuffer, timeout: Optional[float] = None) -> None:
        """Writes one message: any contiguous bytes-like object (bytes,
        bytearray, memoryview, array.array, numpy arrays, mmap, ...), passed
        to C without an intermediate copy.

        With ``timeout=None`` never blocks and raises :class:`BufferFull`
        when there is no room; with a timeout in seconds (``math.inf`` for
        none) waits for room and raises :class:`Timeout` when it expires.
        Also raises InvalidSize (empty or above max_message_size), Closed,
        TypeError (not bytes-like), ValueError (a negative or NaN timeout).
        """
        if (  # inline: math.inf and other valid floats skip the call
            timeout is not None
            and timeout is not _INF
            and (type(timeout) is not float or not timeout >= 0)
        ):
            timeout = timeout_seconds(timeout)
        buf: Any = data
        if type(buf) is not bytes:
            try:
                buf = _from_buffer(buf)
            except (TypeError, BufferError):
                raise bytes_like_error("data", data) from None
        rc = _mrb_write(self._ring, buf, len(buf))
        if not rc:
            return
        if timeout is not None and rc == _EFULL:
            rc = wait_in_slices(
                lib.mrb_write_wait, (self._ring, buf, len(buf)), deadline(timeout)
            )
            if rc >= 0:
                return
        if rc == _EMSGSIZE:
            raise self._invalid_size("data", len(buf))
        raise self._errors(rc)

    def write_many(
        self, messages: Iterable[ReadableBuffer], timeout: Optional[float] = None
    ) -> int:
        """Writes messages in order with one call into C; returns how many
        were written, stopping at the first that does not fit (a prefix of
        ``messages``, so the caller can retry the rest).

        When not even the first message fits: with ``timeout=None`` raises
        :class:`BufferFull`; with a timeout in seconds (``math.inf`` for
        none) waits for room for it, then raises :class:`Timeout`. Also
        raises InvalidSize (the first message is empty or too large), Closed.
        An empty iterable writes nothing and returns 0. The messages are
        joined into one buffer first (one copy per batch, cheaper than a C
        object per message).
        """
        if timeout is not None:
            timeout = timeout_seconds(timeout)
        items: Sequence[Any] = (
            messages if isinstance(messages, (list, tuple)) else list(messages)
        )
        if not items:
            return 0
        lengths = message_lengths(items)
        joined = b"".join(items)
        total = len(items)
        rc = lib.mrb_py_write_joined(self._ring, joined, lengths, total)
        if rc == _EFULL and timeout is not None:
            until = deadline(timeout)
            while rc == _EFULL:
                rc = wait_in_slices(
                    lib.mrb_wait_writable, (self._ring, lengths[0]), until
                )
                if rc >= 0:
                    rc = lib.mrb_py_write_joined(self._ring, joined, lengths, total)
        if rc >= 0:
            return int(rc)
        if rc == _EMSGSIZE:
            raise self._invalid_size("the first message", lengths[0])
        raise self._errors(rc)

    def reserve(self, size: int) -> Reservation:
        """Reserves room for a ``size``-byte message to fill in place.

        Returns a :class:`Reservation` whose ``view`` is a writable
        memoryview over the ring; commit() or abort() it (or use it as a
        context manager). Raises BufferFull, InvalidSize (``size`` not 1 to
        max_message_size), Closed, TypeError (not an int).
        """
        size = message_size(size, "size", self._max_message_size)
        res = ffi.new("struct mrb_reservation *")
        rc = lib.mrb_reserve(self._ring, size, res)
        if rc == _EMSGSIZE:
            raise self._invalid_size("size", size)
        if rc < 0:
            raise self._errors(rc)
        return Reservation(self._views, res, self)

    def _invalid_size(self, what: str, size: int) -> Exception:
        """InvalidSize for a message size the core refused, with the range
        (or Closed / ForkedError: a closed handle has no maximum)."""
        if self._max_message_size == 0 or self.closed:
            return self._errors(_ECLOSED)
        exc = message_size_error(what, size, self._max_message_size)
        exc.code = _EMSGSIZE
        return exc

    # ---- consumer side --------------------------------------------------------

    def read(self, timeout: Optional[float] = None) -> bytes:
        """Returns the next message as bytes.

        With ``timeout=None`` never blocks and raises :class:`BufferEmpty`
        when nothing is available; with a timeout in seconds (``math.inf``
        for none) waits, with the GIL released, and raises :class:`Timeout`
        when it expires. Ctrl-C interrupts the wait. Also raises Closed,
        ConsumerBusy, CorruptError, TypeError/ValueError (a bad timeout).
        """
        if (  # inline: math.inf and other valid floats skip the call
            timeout is not None
            and timeout is not _INF
            and (type(timeout) is not float or not timeout >= 0)
        ):
            timeout = timeout_seconds(timeout)
        readers = self._readers
        if readers.owner == _get_ident() and self._views.peeked is None:
            reader, view = readers.own_c, readers.own_view
        else:
            reader, view = self._reader_for_this_thread()
        n = _mrb_read(reader)
        if n >= 0:
            return view[:n].tobytes()
        if n == _EEMPTY and timeout is not None:
            n = wait_in_slices(_mrb_read_wait, (reader,), deadline(timeout))
            if n >= 0:
                return view[:n].tobytes()
        return self._read_large(reader, n)

    def try_read(self) -> Optional[bytes]:
        """Returns the next message, or None when the ring is empty."""
        readers = self._readers
        if readers.owner == _get_ident() and self._views.peeked is None:
            reader, view = readers.own_c, readers.own_view
        else:
            reader, view = self._reader_for_this_thread()
        n = _mrb_read(reader)
        if n >= 0:
            return view[:n].tobytes()
        if n == _EEMPTY:
            return None
        return self._read_large(reader, n)

    def _reader_for_this_thread(self) -> Any:
        """(C reader, view of its buffer) of the calling thread, after
        invalidating a peeked message (reading consumes it)."""
        self._views.forget_peeked()
        reader = self._readers.for_this_thread()
        return reader.c, reader.view

    def _read_large(self, reader: Any, rc: int) -> bytes:
        """Finishes a read the reader's buffer was too small for, or raises
        for any other code."""
        if rc == _EBUFFER_TOO_SMALL:
            result = read_large(reader)
            if not isinstance(result, int):
                return result
            rc = result
        raise self._errors(rc)

    def read_into(self, buffer: WritableBuffer) -> int:
        """Copies the next message into a writable bytes-like object and
        returns its length; the bytes past it are left untouched.

        Raises :class:`BufferTooSmall` (with ``.needed``; nothing consumed)
        when the message does not fit, BufferEmpty, Closed, ConsumerBusy,
        TypeError (not a writable bytes-like object).
        """
        try:
            target = _from_buffer(buffer, require_writable=True)
        except (TypeError, BufferError):
            raise TypeError(
                "buffer must be a writable contiguous bytes-like object "
                f"(bytearray, memoryview, array, mmap, ...), not {type(buffer).__name__}"
            ) from None
        reader = self._reader_for_this_thread()[0]
        n = lib.mrb_py_read_to(reader, target, len(target))
        if n >= 0:
            return int(n)
        exc = self._errors(n)
        if isinstance(exc, BufferTooSmall):
            exc.needed = int(reader.len)
            exc.args = (
                f"the next message needs {exc.needed} bytes, the buffer "
                f"holds {len(target)}; nothing was consumed",
            )
        raise exc

    def read_many(self, max_count: int, timeout: Optional[float] = None) -> List[bytes]:
        """Returns up to ``max_count`` available messages (at most 65536 per
        call) with one call into C; an empty list when there are none.

        With a timeout in seconds (``math.inf`` for none), waits up to that
        long for at least one message, then raises :class:`Timeout`. Also
        raises Closed, ConsumerBusy, CorruptError, TypeError/ValueError
        (``max_count`` not an int >= 1, a bad timeout).
        """
        max_count = positive_int(max_count, "max_count")
        if timeout is not None:
            timeout = timeout_seconds(timeout)
        if not self._consumer_lock.acquire(False):
            raise error_for(lib.MRB_ECONSUMER_BUSY)
        try:
            self._views.forget_peeked()
            messages = self._batch.read(max_count)
            if messages == [] and timeout is not None:
                until = deadline(timeout)
                while messages == []:
                    rc = wait_in_slices(lib.mrb_wait_readable, (self._ring,), until)
                    messages = self._batch.read(max_count) if rc >= 0 else rc
        finally:
            self._consumer_lock.release()
        if isinstance(messages, int):
            raise self._errors(messages)
        return messages

    def peek(self) -> PeekedMessage:
        """Returns the next message in place, read-only, without consuming it;
        call its ``release()`` to consume it. Peeking again before that
        returns the same message. Raises BufferEmpty, Closed, ConsumerBusy.
        """
        peeked = self._views.peeked
        if peeked is not None:
            return peeked
        if not self._consumer_lock.acquire(False):
            raise error_for(lib.MRB_ECONSUMER_BUSY)
        try:
            view = ffi.new("struct mrb_view *")
            rc = lib.mrb_peek(self._ring, view)
            if rc < 0:
                raise self._errors(rc)
            return PeekedMessage(self._views, view, self)
        finally:
            self._consumer_lock.release()

    def hold(self, on: bool = True) -> None:
        """With ``on``, reading no longer frees messages: the ring keeps them
        (and a consumer replacing this one reads them again) until
        :meth:`release_through`. ``hold(False)`` frees everything read.
        Raises InvalidArgument with the hung-writer timeout, Closed,
        ConsumerBusy.
        """
        with self._consumer_call():
            rc = lib.mrb_hold(self._ring, 1 if on else 0)
        if rc < 0:
            raise self._errors(rc)

    def read_many_at(self, max_count: int) -> List[Tuple[int, bytes]]:
        """Up to ``max_count`` available messages as (position, message)
        pairs, the position being the message's ring position (what
        :meth:`release_through` takes); an empty list when there are none.
        """
        max_count = positive_int(max_count, "max_count")
        lengths = ffi.new("size_t[]", max_count)
        positions = ffi.new("uint64_t[]", max_count)
        size = 65536
        with self._consumer_call():
            while True:
                buf = ffi.new("char[]", size)
                n = lib.mrb_read_many_at(
                    self._ring, buf, size, lengths, positions, max_count
                )
                if n != lib.MRB_EBUFFER_TOO_SMALL:
                    break
                size = int(lengths[0])  # the first message alone needs this much
        if n == lib.MRB_EEMPTY:
            return []
        if n < 0:
            raise self._errors(n)
        out, offset = [], 0
        for i in range(n):
            out.append((int(positions[i]), ffi.unpack(buf + offset, lengths[i])))
            offset += lengths[i]
        return out

    def release_through(self, position: int) -> None:
        """Frees the held messages up to and including the one at
        ``position``. Raises StaleError if no held message starts there,
        InvalidArgument when not holding.
        """
        with self._consumer_call():
            rc = lib.mrb_release_through(self._ring, position)
        if rc < 0:
            raise self._errors(rc)

    @contextlib.contextmanager
    def _consumer_call(self) -> Iterator[None]:
        if not self._consumer_lock.acquire(False):
            raise error_for(lib.MRB_ECONSUMER_BUSY)
        try:
            self._views.forget_peeked()
            yield
        finally:
            self._consumer_lock.release()

    def __iter__(self) -> Iterator[bytes]:
        """Yields the messages available now, stopping when the ring is empty."""
        while True:
            message = self.try_read()
            if message is None:
                return
            yield message

    # ---- asyncio ----------------------------------------------------------------

    async def read_async(self, timeout: Optional[float] = None) -> bytes:
        """Returns the next message, waiting for one in the running event
        loop (asyncio, uvloop) without blocking it or using a thread.

        ``timeout`` in seconds (None or ``math.inf``: no limit) raises
        :class:`Timeout` when it expires. Cancellation is clean: a cancelled
        call consumed nothing and leaves nothing behind, and the ring can be
        read again at once. Also raises Closed (the handle was closed
        meanwhile), ConsumerBusy, CorruptError.
        """
        if timeout is not None:
            timeout = timeout_seconds(timeout)
        message = self.try_read()
        if message is not None:
            return message
        until = deadline_of(timeout)
        ring = self._ring
        waiter = self._async
        out = waiter.timeout_ms

        def arm() -> int:
            return int(lib.mrb_arm_read(ring, out))

        while True:
            await waiter.wait(READ, arm, until)
            # No await between here and the return: a message taken is
            # delivered.
            message = self.try_read()
            if message is not None:
                return message

    async def write_async(
        self, data: ReadableBuffer, timeout: Optional[float] = None
    ) -> None:
        """Writes one message, waiting for room in the running event loop
        (asyncio, uvloop) without blocking it or using a thread.

        ``timeout`` in seconds (None or ``math.inf``: no limit) raises
        :class:`Timeout` when it expires. A cancelled call wrote nothing.
        Also raises InvalidSize (empty, or above max_message_size: never
        fits), Closed, TypeError (not bytes-like).
        """
        if timeout is not None:
            timeout = timeout_seconds(timeout)
        buf: Any = data
        if type(buf) is not bytes:
            try:
                buf = _from_buffer(buf)
            except (TypeError, BufferError):
                raise bytes_like_error("data", data) from None
        ring = self._ring
        size = len(buf)
        rc = _mrb_write(ring, buf, size)
        if rc == _EFULL:
            until = deadline_of(timeout)
            waiter = self._async
            out = waiter.timeout_ms

            def arm() -> int:
                return int(lib.mrb_arm_write(ring, size, out))

            while rc == _EFULL:
                await waiter.wait(WRITE, arm, until)
                rc = _mrb_write(ring, buf, size)
        if not rc:
            return
        if rc == _EMSGSIZE:
            raise self._invalid_size("data", size)
        raise self._errors(rc)

    async def aiter(self) -> AsyncIterator[bytes]:
        """Yields messages as they arrive, waiting in the event loop between
        them (read_async() without a timeout), until the handle is closed."""
        try_read = self.try_read
        while True:
            try:
                # What is there already, without a coroutine per message.
                message = try_read()
                if message is None:
                    message = await self.read_async()
            except Closed:
                return
            yield message

    def __aiter__(self) -> AsyncIterator[bytes]:
        """``async for message in ring``: :meth:`aiter`."""
        return self.aiter()

    # ---- doorbells: waiting in a loop of your own -------------------------------

    def doorbell_fd(self, which: DoorbellSide = "read") -> int:
        """The handle's doorbell descriptor (mrb_doorbell_fd), for an event
        loop of your own (selectors, select/poll/epoll, libuv): ``"read"``
        becomes readable when a message may be there, ``"write"`` when room
        may be there. Wait for it only after arming (:meth:`arm_read`,
        :meth:`arm_write`); never read or close it yourself, and unregister
        it from your loop before :meth:`close` (which closes it). The same
        descriptor on every call. Raises ValueError for another ``which``,
        Closed, and OSError subclasses of socket(2)/bind(2).
        """
        fd = lib.mrb_doorbell_fd(self._ring, _doorbell_side(which))
        if fd < 0:
            raise self._errors(fd)
        return int(fd)

    def arm_read(self) -> float:
        """Drains the read doorbell, then returns 0.0 if a message is there
        already (read it; nothing is armed), or arms the doorbell and returns
        how long to wait for its descriptor at most, in seconds (1.0
        normally; less while recovery may be needed): then read, and arm
        again when the ring is empty. A message written after the check rings
        the doorbell, one written before it makes it return 0.0, so this loop
        never misses one::

            selector.register(ring.doorbell_fd(), selectors.EVENT_READ)
            while True:
                while (message := ring.try_read()) is not None:
                    handle(message)              # drain
                timeout = ring.arm_read()        # check
                if timeout:
                    selector.select(timeout)     # wait

        A consumer call (attaches as the consumer, as try_read); raises what
        try_read raises. Does not block. Call :meth:`disarm` when you stop
        waiting."""
        out = ffi.new("int *")
        rc = lib.mrb_arm_read(self._ring, out)
        if rc < 0:
            raise self._errors(rc)
        return 0.0 if rc == 1 else out[0] / 1000.0

    def arm_write(self, size: int) -> float:
        """The writer's side of :meth:`arm_read`: drains the write doorbell,
        then returns 0.0 if a message of ``size`` bytes fits now, or arms the
        doorbell and returns how long to wait for the ``"write"`` descriptor
        at most, in seconds. Raises InvalidSize if ``size`` can never fit.
        Does not block."""
        size = message_size(size, "size", self._max_message_size)
        out = ffi.new("int *")
        rc = lib.mrb_arm_write(self._ring, size, out)
        if rc == _EMSGSIZE:
            raise self._invalid_size("size", size)
        if rc < 0:
            raise self._errors(rc)
        return 0.0 if rc == 1 else out[0] / 1000.0

    def disarm(self, which: DoorbellSide = "read") -> None:
        """Withdraws the armed ``which`` doorbell (a wait given up), so that
        writers (or the reader) no longer ring it. Does nothing if none is
        armed."""
        rc = lib.mrb_disarm(self._ring, _doorbell_side(which))
        if rc < 0:
            raise self._errors(rc)

    # ---- subscribers ----------------------------------------------------------

    @property
    def is_fanout(self) -> bool:
        """True for a fan-out ring (created with ``fanout=True``): read by
        subscribers, not by one consumer."""
        rc = lib.mrb_is_fanout(self._ring)
        if rc < 0:
            raise self._errors(rc)
        return bool(rc)

    def subscribers(self) -> List[SubscriberInfo]:
        """A snapshot of every subscriber of the ring, in table order: durable
        and lossy, live, detached (named, no handle) and evicted. Works on
        any handle, read-only ones too; a queue ring with no lossy tap has
        none."""
        size = lib.MRB_MAX_SUBSCRIBERS
        while True:
            raw = ffi.new("struct mrb_subscriber_info[]", size)
            n = lib.mrb_subscribers(self._ring, raw, size)
            if n < 0:
                raise self._errors(n)
            if n <= size:
                return [SubscriberInfo.from_c(raw[i]) for i in range(n)]
            size = n


class RingBuffer(_Handle):
    """A many-producer, single-consumer message ring in a memory-mapped file.

    Any number of handles, in any threads and processes, may write; one handle
    at a time reads (the first read attaches it as the consumer). Messages are
    byte strings of 1 to :attr:`max_message_size` bytes, delivered in order,
    exactly once.

    ``RingBuffer(path)`` opens an existing ring, like :meth:`open`;
    :meth:`create` makes one. Use it as a context manager or call
    :meth:`close`. Writes are safe from many threads at once; the consumer
    methods (read*, peek, iteration) of one handle raise
    :class:`ConsumerBusy` when called concurrently, as in C. A handle
    belongs to the process that opened it: in a child made by fork() every
    call raises :class:`ForkedError`.

    A fan-out ring (``create(..., fanout=True)``) has no single consumer:
    several :class:`Subscriber` handles (:meth:`subscribe`) each read the
    whole stream, and the consumer calls of a RingBuffer handle raise
    :class:`ModeError` on it.
    """

    __slots__ = ()

    def __init__(self, path: PathArg, *, readonly: bool = False) -> None:
        """Opens the existing ring at ``path``: see :meth:`open`."""
        if getattr(self, "_ring", None) is not None:
            raise TypeError("RingBuffer.__init__() called on an initialized handle")
        ring, storage = _new_handle()
        flags = lib.MRB_OPEN_READONLY if readonly else 0
        rc = lib.mrb_open(ring, encode_path(path), flags)
        if rc < 0:
            raise error_for(rc, path)
        self._setup(ring, storage, path, HandleErrors(readonly))

    @classmethod
    def create(
        cls,
        path: PathArg,
        size: int,
        *,
        remove: bool = False,
        mode: int = 0o600,
        exclusive: bool = False,
        fanout: bool = False,
    ) -> RingBuffer:
        """Creates a ring of at least ``size`` data bytes at ``path`` and opens it.

        The capacity is ``size`` rounded up to a power of two (at least 256,
        at most 1 TiB). Without flags an existing ring of the same capacity
        is opened as it is, unread messages kept (and its mode unchanged);
        ``remove=True`` replaces whatever is at ``path`` atomically;
        ``exclusive=True`` raises :class:`RingExists` if ``path`` exists
        (the two cannot be combined). ``mode`` is the new file's permission
        bits, 0o000 to 0o777, applied exactly (the umask is ignored); 0
        means the default, 0o600. ``fanout=True`` makes a fan-out ring,
        read by subscribers (:meth:`subscribe`) instead of one consumer;
        the mode is fixed at creation (an existing ring of the other mode
        raises RingExists).

        Raises TypeError, InvalidArgument (a size, mode or flag combination
        the core refuses; the message names it and the allowed range),
        RingExists, FormatError, VersionError, or OSError.
        """
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"size must be an int, not {type(size).__name__}")
        if isinstance(mode, bool) or not isinstance(mode, int):
            raise TypeError(
                f"mode must be an int (permission bits such as 0o600), "
                f"not {type(mode).__name__}"
            )
        encoded = encode_path(path)
        options = ffi.new("struct mrb_create_options *")
        options.flags = (
            (lib.MRB_CREATE_REMOVE if remove else 0)
            | (lib.MRB_CREATE_EXCLUSIVE if exclusive else 0)
            | (lib.MRB_CREATE_FANOUT if fanout else 0)
        )
        try:
            options.mode = mode
        except OverflowError:  # not representable as a mode_t
            raise create_refused(size, mode, remove, exclusive) from None
        if size < 0:  # not representable as a uint64_t
            raise create_refused(size, mode, remove, exclusive)
        ring, storage = _new_handle()
        rc = lib.mrb_create(ring, encoded, min(size, 2**64 - 1), options)
        if rc == _EINVAL:
            raise create_refused(size, mode, remove, exclusive)
        if rc < 0:
            raise error_for(rc, path)
        self = cls.__new__(cls)
        self._setup(ring, storage, path, HandleErrors(False))
        return self

    @classmethod
    def open(cls, path: PathArg, *, readonly: bool = False) -> RingBuffer:
        """Opens an existing ring file, validating it first.

        ``readonly=True`` maps it read-only, for monitoring: it needs only
        read permission, and stats(), capacity and max_message_size work
        while writes, reads and recover() raise OSError (EROFS).

        Raises FormatError (not a ring, truncated, corrupt), VersionError, or
        OSError (FileNotFoundError, PermissionError, ...; a symlink at
        ``path`` is refused with ELOOP).
        """
        return cls(path, readonly=readonly)

    @staticmethod
    def remove(path: PathArg, *, missing_ok: bool = False) -> None:
        """Deletes the ring file at ``path``, after checking that it is one:
        a file that is not a ring (FormatError) is left in place. A ring of
        another format version, or a corrupt one, is removed.

        Handles already open on the ring keep working on it, nameless;
        processes that open ``path`` afterwards get FileNotFoundError, or
        the new ring a later create() makes there (a separate ring).
        FileNotFoundError if nothing is at ``path``, unless ``missing_ok``.
        Not atomic against another process replacing the file meanwhile.
        """
        encoded = encode_path(path)
        ring, _storage = _new_handle()
        rc = lib.mrb_open(ring, encoded, lib.MRB_OPEN_READONLY)
        try:
            if rc == -errno.ENOENT and missing_ok:
                return
            if rc < 0 and rc not in (lib.MRB_EVERSION, lib.MRB_ECORRUPT):
                raise error_for(rc, path)
            try:
                os.unlink(encoded)
            except FileNotFoundError:
                if not missing_ok:
                    raise
        finally:
            lib.mrb_close(ring)

    # ---- recovery ---------------------------------------------------------------

    def recover(self, stale_after: Optional[float] = None) -> int:
        """Skips an abandoned record blocking the consumer: one whose writer
        process is gone, or (given ``stale_after`` seconds, a finite number
        >= 0) one that has blocked it that long, observed for up to that
        long. Returns the number of records skipped (0 or 1).
        """
        stale_ns = -1 if stale_after is None else stale_after_ns(stale_after)
        rc = lib.mrb_recover(self._ring, stale_ns)
        if rc < 0:
            raise self._errors(rc)
        return int(rc)

    def worker(
        self,
        group: str,
        *,
        at_most_once: Optional[bool] = None,
        hold_timeout: Optional[float] = None,
    ) -> Worker:
        """Opens a new :class:`Worker` handle on this ring's path, in
        ``group``: see :class:`Worker`."""
        return Worker(
            self._path, group, at_most_once=at_most_once, hold_timeout=hold_timeout
        )

    def worker_groups(self) -> List[GroupInfo]:
        """A snapshot of the ring's worker groups: claim position, workers,
        messages done, redelivered, dropped, stale releases."""
        groups = list_groups(self._ring)
        if isinstance(groups, int):
            raise self._errors(groups)
        return groups

    def workers(self) -> List[WorkerInfo]:
        """A snapshot of the ring's worker slots: who holds what."""
        workers = list_workers(self._ring)
        if isinstance(workers, int):
            raise self._errors(workers)
        return workers

    def subscribe(
        self,
        name: Optional[str] = None,
        *,
        lossy: bool = False,
        evict_after: Optional[float] = None,
        from_oldest: bool = False,
    ) -> Subscriber:
        """Opens a new :class:`Subscriber` handle on this ring's path: see
        :func:`subscribe`."""
        return Subscriber(
            self._path,
            name,
            lossy=lossy,
            evict_after=evict_after,
            from_oldest=from_oldest,
        )


class Subscriber(_Handle):
    """One reader of a ring's stream among several (mrb_subscribe): a handle
    of its own, reading at its own position with the same calls as a
    RingBuffer's consumer side (read, try_read, read_into, read_many,
    read_many_at, iteration; peek for a durable, non-evictable one; hold and
    release_through for a durable one). It can also write.

    - Durable (the default; fan-out rings only, else :class:`ModeError`):
      sees every message from where it joined, in order; producers never
      overwrite what it has not read.
    - Named (``name``): rejoining with the name of a subscriber whose handle
      is gone (closed, or its process died) resumes right after the last
      message it released; :class:`NameBusy` while a live handle has the
      name. Unnamed and new named ones join at the live end
      (``from_oldest=True``: at the oldest message still in the ring).
    - ``evict_after`` (seconds, durable only): once it has held producers
      back that long (or at once if its process is found dead) it is
      evicted; its next read raises :class:`Lapped` once if messages were
      overwritten, then reads on, intact. Without it, a dead named
      subscriber's messages wait for it (:func:`unsubscribe` removes it).
    - ``lossy=True``: a tap on any ring that never holds producers back;
      when lapped it skips ahead silently and counts the loss
      (:meth:`info`: ``lost_bytes``, ``lost_events``). Never torn.

    Use it as a context manager or call :meth:`close` (which leaves the
    table, or detaches a named subscriber).
    """

    __slots__ = ()

    def __init__(
        self,
        path: PathArg,
        name: Optional[str] = None,
        *,
        lossy: bool = False,
        evict_after: Optional[float] = None,
        from_oldest: bool = False,
    ) -> None:
        """Joins the ring at ``path`` as a subscriber: see :func:`subscribe`."""
        if getattr(self, "_ring", None) is not None:
            raise TypeError("Subscriber.__init__() called on an initialized handle")
        options, _name = subscribe_options(name, lossy, evict_after, from_oldest)
        encoded = encode_path(path)
        ring, storage = _new_handle()
        rc = lib.mrb_subscribe(ring, encoded, options)
        if rc == _EINVAL:
            raise subscribe_refused(name, lossy, evict_after)
        if rc < 0:
            raise error_for(rc, path)
        self._setup(ring, storage, path, SubscriberErrors(ring))

    def info(self) -> SubscriberInfo:
        """A snapshot of this subscriber's entry: position, lag, counts,
        losses."""
        raw = ffi.new("struct mrb_subscriber_info *")
        rc = lib.mrb_subscriber_info(self._ring, raw)
        if rc < 0:
            raise self._errors(rc)
        return SubscriberInfo.from_c(raw)


class Worker(_Handle):
    """One worker of a group (mrb_worker_join): competing consumers of a
    fan-out ring. Each message goes to one worker of the group; workers take
    messages in the order producers committed them, and finish them in any
    order. A worker reads with the same calls as a consumer (read, try_read,
    read_into, read_many, iteration); each read call first releases what the
    previous one returned (done), :meth:`ack` releases without taking more,
    and :meth:`close` releases too. ``read_many(n)`` takes up to n messages
    at once. In asyncio (and uvloop), ``await worker.read_async()`` and
    ``async for message in worker`` wait in the loop on the worker's own
    doorbell, as a ring's do: a cancelled call took nothing (a message it
    would have taken stays for the group), leaves no thread, and the worker
    reads on at once; an idle worker wakes every 100 ms (a dead or hung
    worker's messages are rescued by a worker that looks). The doorbell
    calls (:meth:`doorbell_fd`, :meth:`arm_read`, :meth:`disarm`) serve
    loops of your own.

    The group is created by its first worker, with its policy:

    - at-least-once (default): what a worker held when its process died (or,
      with ``hold_timeout``, held longer than that) is redelivered to another
      worker, so such a message may be processed twice;
    - ``at_most_once=True``: it is dropped and counted instead
      (:attr:`GroupInfo.dropped`); no message goes to two workers.

    A hung worker's late release raises :class:`StaleError` once (counted in
    :attr:`GroupInfo.stale_releases`), then it reads on. With neither
    ``at_most_once`` nor ``hold_timeout`` given, a worker joins an existing
    group with the group's own options (or creates an at-least-once group
    without a timeout); joining with other options than the group's raises
    InvalidArgument; :class:`NoWorkerSlot`
    when the ring's 48 worker slots (or 4 groups) are taken; ModeError on a
    queue ring.
    """

    __slots__ = ()

    def __init__(
        self,
        path: PathArg,
        group: str,
        *,
        at_most_once: Optional[bool] = None,
        hold_timeout: Optional[float] = None,
    ) -> None:
        """Joins ``group`` of the fan-out ring at ``path``: see :class:`Worker`."""
        if getattr(self, "_ring", None) is not None:
            raise TypeError("Worker.__init__() called on an initialized handle")
        options, name = worker_options(group, at_most_once, hold_timeout)
        encoded = encode_path(path)
        ring, storage = _new_handle()
        rc = lib.mrb_worker_join(ring, encoded, name, options)
        if rc < 0:
            raise error_for(rc, path)
        self._setup(ring, storage, path, HandleErrors(False))

    def ack(self) -> None:
        """Releases the messages the last read call returned (they are done)
        without taking more. Raises StaleError if they had been taken from
        this worker after its hold timeout."""
        rc = lib.mrb_worker_ack(self._ring)
        if rc < 0:
            raise self._errors(rc)

    def __iter__(self) -> Iterator[bytes]:
        """Yields messages forever, waiting for each (the previous one is
        released when the next is taken); stops when the handle is closed."""
        while True:
            try:
                yield self.read(timeout=_INF)
            except Closed:
                return


def subscribe(
    path: PathArg,
    name: Optional[str] = None,
    *,
    lossy: bool = False,
    evict_after: Optional[float] = None,
    from_oldest: bool = False,
) -> Subscriber:
    """Opens the ring at ``path`` as a :class:`Subscriber`.

    ``name`` (1 to 31 bytes of UTF-8) makes it named and restartable;
    ``lossy=True`` makes it a tap that never holds producers back;
    ``evict_after`` (seconds > 0; not with ``lossy``) lets producers evict
    it once it has held them back that long; ``from_oldest=True`` starts a
    new subscriber at the oldest message still in the ring instead of the
    live end.

    Raises ModeError (a durable subscriber on a queue ring), NameBusy,
    NoSubscriberSlot (the table's 64 entries are taken), InvalidArgument,
    TypeError/ValueError (a bad name or timeout), and the errors of
    :meth:`RingBuffer.open`.
    """
    return Subscriber(
        path, name, lossy=lossy, evict_after=evict_after, from_oldest=from_oldest
    )
