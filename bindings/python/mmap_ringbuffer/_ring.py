"""RingBuffer: a handle on a ring file (mrb_create/mrb_open)."""

from __future__ import annotations

import math
import os
import threading
import time
from array import array
from types import TracebackType
from typing import (
    Any,
    Iterable,
    Iterator,
    List,
    Optional,
    Set,
    Tuple,
    Type,
    TypeVar,
)

from ._errors import BufferTooSmall, InvalidArgument, PathArg, error_for
from ._mrb_cffi import ffi, lib
from ._stats import RingStats
from ._types import ReadableBuffer, WritableBuffer
from ._zero_copy import (
    PeekedMessage,
    Reservation,
    _RingView,
    readonly_view,
    writable_view,
)

_T = TypeVar("_T")

# Hot paths bind the C functions once: a module global is cheaper to reach
# than an attribute of lib.
_mrb_write = lib.mrb_py_write
_mrb_read = lib.mrb_py_read
_mrb_read_to = lib.mrb_py_read_to
_from_buffer = ffi.from_buffer
_get_ident = threading.get_ident

_EFULL = lib.MRB_EFULL
_EEMPTY = lib.MRB_EEMPTY
_ETIMEDOUT = lib.MRB_ETIMEDOUT
_EINTR = lib.MRB_EINTR
_EBUFFER_TOO_SMALL = lib.MRB_EBUFFER_TOO_SMALL

# Blocking calls wait in slices of at most this long and return to Python in
# between, so signal handlers (Ctrl-C -> KeyboardInterrupt) run promptly.
_WAIT_SLICE_NS = 100_000_000

# read()'s reusable destination; larger messages get a buffer of their size.
_SCRATCH_LIMIT = 64 * 1024
# read_many() slices messages of at most this average size out of one bytes
# copy of the batch (cheaper per message); larger ones straight from C memory.
_SMALL_MESSAGES_BYTES = 512
# read_many()'s default destination size.
_BATCH_BUFFER_BYTES = 256 * 1024

# Buffers the C side overwrites need no zero-filling.
_new_uninitialized = ffi.new_allocator(should_clear_after_alloc=False)

_NOT_CONSTRUCTIBLE = "use RingBuffer.create(path, size) or RingBuffer.open(path)"


def _encode_path(path: PathArg) -> bytes:
    encoded = os.fsencode(path)
    if b"\0" in encoded:
        raise ValueError("embedded null byte in path")
    return encoded


def _deadline(timeout: float) -> float:
    """Absolute monotonic deadline; math.inf waits forever."""
    if timeout != timeout or timeout < 0:  # NaN or negative
        raise ValueError(f"timeout must be >= 0 seconds or math.inf, got {timeout}")
    return time.monotonic() + timeout


def _next_slice_ns(deadline: float) -> int:
    """Nanoseconds to wait in the next slice; 0 means "poll one last time"."""
    if deadline == math.inf:
        return _WAIT_SLICE_NS
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return 0
    return min(_WAIT_SLICE_NS, max(1, int(remaining * 1e9)))


# A thread's read destination: the C reader (ring, buffer, size, last
# length), a memoryview of its buffer (slicing that to bytes is the cheapest
# copy out), and the buffer itself, which the C reader only points to.
_Reader = Tuple[Any, memoryview, Any]


def _new_reader(ring: Any, size: int) -> _Reader:
    buf = _new_uninitialized("char[]", size)
    reader = ffi.new("struct mrb_py_reader *", {"ring": ring, "buf": buf, "size": size})
    return reader, memoryview(ffi.buffer(buf)), buf


# The handle is aligned to this, so that its producer and consumer parts sit
# on cache lines of their own (two lines: adjacent-line prefetch pairs them).
_HANDLE_ALIGNMENT = 128


def _new_handle() -> Tuple[Any, Any]:
    """A zeroed ``struct mrb_ring *`` aligned to _HANDLE_ALIGNMENT, and the
    storage that owns it (keep both: the pointer alone does not)."""
    storage = ffi.new("char[]", ffi.sizeof("struct mrb_ring") + _HANDLE_ALIGNMENT)
    address = int(ffi.cast("uintptr_t", storage))
    offset = -address % _HANDLE_ALIGNMENT
    return ffi.cast("struct mrb_ring *", storage + offset), storage


_BYTE_STRINGS = frozenset((bytes, bytearray))
# array.array typecode of C's size_t.
_SIZE_T_CODE = next(c for c in "QLI" if array(c).itemsize == ffi.sizeof("size_t"))


def _byte_lengths(messages: Any) -> Any:
    """Each message's size in bytes as a ``size_t[]`` (len() counts items,
    not bytes, for arrays and cast memoryviews)."""
    if {*map(type, messages)} <= _BYTE_STRINGS:
        sizes = array(_SIZE_T_CODE, map(len, messages))
    else:
        sizes = array(_SIZE_T_CODE, [memoryview(m).nbytes for m in messages])
    return _from_buffer("size_t[]", sizes)


class RingBuffer:
    """A many-producer, single-consumer message ring in a memory-mapped file.

    Any number of handles, in any threads and processes, may write; one handle
    at a time reads (the first read attaches it as the consumer). Messages are
    byte strings of 1 to :attr:`max_message_size` bytes, delivered in order,
    exactly once.

    Construct with :meth:`create` or :meth:`open`; use as a context manager or
    call :meth:`close`. Writes are safe from many threads at once; the
    consumer methods (read*, peek, iteration) of one handle raise
    :class:`ConsumerBusy` when called concurrently, as in C.
    """

    __slots__ = (
        "_ring",
        "_ring_storage",
        "_path",
        "_capacity",
        "_max_message_size",
        "_consumer_lock",
        "_setup_lock",
        "_reader_thread",
        "_thread_cells",
        "_scratch_size",
        "_own_reader",
        "_reader",
        "_scratch_view",
        "_batch_buffer",
        "_batch_ends",
        "_live_views",
        "_lingering_views",
        "_peeked",
        "__weakref__",
    )

    _ring: Any  # struct mrb_ring *, into _ring_storage
    _ring_storage: Any  # char[], owns the handle's memory
    _path: str
    _capacity: int
    _max_message_size: int
    _consumer_lock: threading.Lock  # read_many()'s buffers, _peeked
    _setup_lock: threading.Lock
    _reader_thread: int  # owner of _own_reader (0: nobody read yet)
    _thread_cells: threading.local  # other threads' read destinations
    _scratch_size: int  # the size of every reader's buffer
    _own_reader: _Reader  # the first reading thread's destination
    _reader: Any  # _own_reader's C reader, for read()'s hot path
    _scratch_view: memoryview  # _own_reader's view, for read()'s hot path
    _batch_buffer: Any  # char[], read_many()'s destination
    _batch_ends: Any  # size_t[], read_many()'s message end offsets
    _live_views: Set[_RingView]
    _lingering_views: List[memoryview]
    _peeked: Optional[PeekedMessage]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(_NOT_CONSTRUCTIBLE)

    @classmethod
    def _from_handle(cls, ring: Any, storage: Any, path: PathArg) -> "RingBuffer":
        self = cls.__new__(cls)
        self._ring = ring
        self._ring_storage = storage
        self._path = os.fsdecode(path)
        self._capacity = int(lib.mrb_capacity(ring))
        self._max_message_size = int(lib.mrb_max_message_size(ring))
        self._consumer_lock = threading.Lock()
        self._setup_lock = threading.Lock()
        self._reader_thread = 0
        self._thread_cells = threading.local()
        self._scratch_size = min(self._max_message_size, _SCRATCH_LIMIT)
        self._own_reader = _new_reader(ring, self._scratch_size)
        self._reader, self._scratch_view, _ = self._own_reader
        self._batch_buffer = None
        self._batch_ends = None
        self._live_views = set()
        self._lingering_views = []
        self._peeked = None
        return self

    @classmethod
    def create(
        cls,
        path: PathArg,
        size: int,
        *,
        remove: bool = False,
        mode: int = 0o600,
        exclusive: bool = False,
    ) -> "RingBuffer":
        """Creates a ring of at least ``size`` data bytes at ``path`` and opens it.

        The capacity is ``size`` rounded up to a power of two (at least 256).
        Without flags an existing ring of the same capacity is opened as it is,
        unread messages kept; ``remove=True`` replaces whatever is at ``path``
        atomically; ``exclusive=True`` raises :class:`RingExists` if ``path``
        exists. ``mode`` is applied exactly (the umask is ignored).

        Raises InvalidArgument (size 0 or too large), RingExists, FormatError,
        VersionError, or OSError.
        """
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"size must be an int, not {type(size).__name__}")
        if size < 0:
            raise InvalidArgument(f"size must be positive, got {size}")
        encoded = _encode_path(path)
        options = ffi.new("struct mrb_create_options *")
        options.flags = (lib.MRB_CREATE_REMOVE if remove else 0) | (
            lib.MRB_CREATE_EXCLUSIVE if exclusive else 0
        )
        options.mode = mode
        ring, storage = _new_handle()
        rc = lib.mrb_create(ring, encoded, min(size, 2**64 - 1), options)
        if rc < 0:
            raise error_for(rc, path)
        return cls._from_handle(ring, storage, path)

    @classmethod
    def open(cls, path: PathArg) -> "RingBuffer":
        """Opens an existing ring file, validating it first.

        Raises FormatError (not a ring, truncated, corrupt), VersionError, or
        OSError (FileNotFoundError, PermissionError, ...; a symlink at
        ``path`` is refused with ELOOP).
        """
        encoded = _encode_path(path)
        ring, storage = _new_handle()
        rc = lib.mrb_open(ring, encoded, 0)
        if rc < 0:
            raise error_for(rc, path)
        return cls._from_handle(ring, storage, path)

    # ---- lifetime -------------------------------------------------------------

    def close(self) -> None:
        """Closes the handle; calling it again does nothing.

        Aborts this handle's open reservations and invalidates its views. If
        a view of ring memory is still exported (for example a numpy array
        made from it), raises BufferError and leaves the handle open, since
        unmapping would leave that object pointing at freed memory.
        """
        if not self._release_views():
            raise BufferError(
                "cannot close: a view of ring memory is still exported "
                "(release objects made from reservation/peek views first)"
            )
        rc = lib.mrb_close(self._ring)
        if rc < 0 and rc != lib.MRB_ECLOSED:
            raise error_for(rc, self._path)

    def _release_views(self) -> bool:
        """Aborts open reservations and releases every view handed out;
        False if some view is still exported (unmapping would be unsafe)."""
        for ring_view in list(self._live_views):
            ring_view._invalidate()
        still_exported = []
        for view in self._lingering_views:
            try:
                view.release()
            except BufferError:
                still_exported.append(view)
        self._lingering_views = still_exported
        return not still_exported

    @property
    def closed(self) -> bool:
        """True once :meth:`close` succeeded."""
        return lib.mrb_capacity(self._ring) == 0

    def __enter__(self: _T) -> _T:
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
            if getattr(self, "_ring", None) is not None and self._release_views():
                lib.mrb_close(self._ring)
        except Exception:
            pass

    def _retire_view(self, view: memoryview) -> None:
        """Releases a view handed to the user, or remembers it for close()."""
        try:
            view.release()
        except BufferError:
            self._lingering_views.append(view)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"capacity={self._capacity}"
        return f"<RingBuffer path={self._path!r} {state}>"

    def __reduce__(self) -> Any:
        raise TypeError(
            "a RingBuffer handle cannot be pickled; pass its path and call "
            "RingBuffer.open(path) in the other process"
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

    def stats(self) -> RingStats:
        """A snapshot of the ring's counters and positions."""
        raw = ffi.new("struct mrb_stats *")
        rc = lib.mrb_stats(self._ring, raw)
        if rc < 0:
            raise error_for(rc, self._path)
        return RingStats.from_c(raw)

    # ---- producer side --------------------------------------------------------

    def write(self, data: ReadableBuffer, timeout: Optional[float] = None) -> None:
        """Writes one message: any contiguous bytes-like object (bytes,
        bytearray, memoryview, array.array, numpy arrays, mmap, ...), passed
        to C without an intermediate copy.

        With ``timeout=None`` never blocks and raises :class:`BufferFull`
        when there is no room; with a timeout in seconds (``math.inf`` for
        none) waits for room and raises :class:`Timeout` when it expires.
        Also raises InvalidSize (empty or above max_message_size), Closed.
        """
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout}")
        if type(data) is not bytes:
            data = _from_buffer(data)
        rc = _mrb_write(self._ring, data, len(data))
        if not rc:
            return
        if timeout is None or rc != _EFULL:
            raise error_for(rc)
        deadline = _deadline(timeout)
        while True:
            wait_ns = _next_slice_ns(deadline)
            rc = lib.mrb_write_wait(self._ring, data, len(data), wait_ns)
            if rc >= 0:
                return
            if rc == _EINTR:
                continue
            if rc != _ETIMEDOUT and rc != _EFULL:
                raise error_for(rc)
            if wait_ns == 0:
                raise error_for(_ETIMEDOUT)

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
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout}")
        if not isinstance(messages, (list, tuple)):
            messages = list(messages)
        if not messages:
            return 0
        lengths = _byte_lengths(messages)
        joined = b"".join(messages)
        count = len(messages)
        rc = lib.mrb_py_write_joined(self._ring, joined, lengths, count)
        if rc >= 0:
            return rc
        if rc != _EFULL or timeout is None:
            raise error_for(rc)
        deadline = _deadline(timeout)
        while True:
            self._wait_writable(lengths[0], deadline)
            rc = lib.mrb_py_write_joined(self._ring, joined, lengths, count)
            if rc >= 0:
                return rc
            if rc != _EFULL:
                raise error_for(rc)

    def _wait_writable(self, size: int, deadline: float) -> None:
        """Waits until a ``size``-byte message may fit; Timeout at the deadline."""
        while True:
            wait_ns = _next_slice_ns(deadline)
            rc = lib.mrb_wait_writable(self._ring, size, wait_ns)
            if rc >= 0:
                return
            if rc == _EINTR:
                continue
            if rc != _ETIMEDOUT and rc != _EFULL:
                raise error_for(rc)
            if wait_ns == 0:
                raise error_for(_ETIMEDOUT)

    def reserve(self, size: int) -> Reservation:
        """Reserves room for a ``size``-byte message to fill in place.

        Returns a :class:`Reservation` whose ``view`` is a writable
        memoryview over the ring; commit() or abort() it (or use it as a
        context manager). Raises BufferFull, InvalidSize, Closed.
        """
        res = ffi.new("struct mrb_reservation *")
        rc = lib.mrb_reserve(self._ring, size, res)
        if rc < 0:
            raise error_for(rc)
        return Reservation(self, res, writable_view(res.data, size))

    # ---- consumer side --------------------------------------------------------

    # read()'s destination (buffer and length) must not be shared by two
    # threads: the GIL is released inside C, so one thread could be filling
    # it while another copies out of it. The first thread to read owns the
    # handle's reader (a cheap identity check on the hot path); any other
    # thread gets a reader of its own. Overlapping consumer calls are then
    # refused by C itself (MRB_ECONSUMER_BUSY), exactly as for C callers.
    def _prepare_read(self) -> _Reader:
        """This thread's read destination (the handle's own for the first
        thread that reads, one of its own for any other thread), after
        consuming-and-forgetting a held peeked message."""
        if self._peeked is not None:
            # Reading consumes the peeked message: its view must not survive.
            self._peeked._detach()
        with self._setup_lock:
            if self._reader_thread == 0:
                self._reader_thread = _get_ident()
            if self._reader_thread == _get_ident():
                return self._own_reader
        reader: Optional[_Reader] = getattr(self._thread_cells, "reader", None)
        if reader is None:
            reader = _new_reader(self._ring, self._scratch_size)
            self._thread_cells.reader = reader
        return reader

    def _lock_consumer_state(self) -> None:
        """Guards read_many()'s buffers and the peeked message (ConsumerBusy
        if another thread holds them)."""
        if not self._consumer_lock.acquire(False):
            raise error_for(lib.MRB_ECONSUMER_BUSY)
        if self._peeked is not None:
            self._peeked._detach()

    def read(self, timeout: Optional[float] = None) -> bytes:
        """Returns the next message as bytes.

        With ``timeout=None`` never blocks and raises :class:`BufferEmpty`
        when nothing is available; with a timeout in seconds (``math.inf``
        for none) waits, with the GIL released, and raises :class:`Timeout`
        when it expires. Ctrl-C interrupts the wait. Also raises Closed,
        ConsumerBusy, CorruptError.
        """
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout}")
        if _get_ident() == self._reader_thread and self._peeked is None:
            reader, view = self._reader, self._scratch_view
        else:
            reader, view, _ = self._prepare_read()
        n = _mrb_read(reader)
        if n >= 0:
            return view[:n].tobytes()
        if n == _EEMPTY and timeout is not None:
            return self._read_wait(reader, view, timeout)
        return self._read_large(reader, n)

    def try_read(self) -> Optional[bytes]:
        """Returns the next message, or None when the ring is empty."""
        if _get_ident() == self._reader_thread and self._peeked is None:
            reader, view = self._reader, self._scratch_view
        else:
            reader, view, _ = self._prepare_read()
        n = _mrb_read(reader)
        if n >= 0:
            return view[:n].tobytes()
        if n == _EEMPTY:
            return None
        return self._read_large(reader, n)

    def _read_wait(self, reader: Any, view: memoryview, timeout: float) -> bytes:
        """read()'s blocking part."""
        deadline = _deadline(timeout)
        while True:
            wait_ns = _next_slice_ns(deadline)
            n = lib.mrb_py_read_wait(reader, wait_ns)
            if n >= 0:
                return view[:n].tobytes()
            if n == _EBUFFER_TOO_SMALL:
                return self._read_large(reader, n)
            if n == _EINTR:
                continue
            if n != _ETIMEDOUT and n != _EEMPTY:
                raise error_for(n)
            if wait_ns == 0:
                raise error_for(_ETIMEDOUT)

    def _read_large(self, reader: Any, rc: int) -> bytes:
        """Finishes a read the reader's buffer was too small for (its
        ``len`` is the size needed), or raises for another code."""
        while rc == _EBUFFER_TOO_SMALL:
            size = reader.len
            buf = _new_uninitialized("char[]", size)
            rc = _mrb_read_to(reader, buf, size)
            if rc >= 0:
                return ffi.buffer(buf, rc)[:]
        raise error_for(rc)

    def read_into(self, buffer: WritableBuffer) -> int:
        """Copies the next message into a writable bytes-like object and
        returns its length; the bytes past it are left untouched.

        Raises :class:`BufferTooSmall` (with ``.needed``; nothing consumed)
        when the message does not fit, BufferEmpty, Closed, ConsumerBusy.
        """
        target = _from_buffer(buffer, require_writable=True)
        reader = self._prepare_read()[0]
        n = _mrb_read_to(reader, target, len(target))
        if n >= 0:
            return n
        exc = error_for(n)
        if isinstance(exc, BufferTooSmall):
            exc.needed = int(reader.len)
            exc.args = (
                f"the next message needs {exc.needed} bytes, the buffer "
                f"holds {len(target)}; nothing was consumed",
            )
        raise exc

    def read_many(self, max_count: int, timeout: Optional[float] = None) -> List[bytes]:
        """Returns up to ``max_count`` available messages with one call into C
        (an empty list when there are none).

        With a timeout in seconds (``math.inf`` for none), waits up to that
        long for at least one message, then raises :class:`Timeout`. Also
        raises Closed, ConsumerBusy, CorruptError.
        """
        if max_count <= 0:
            raise ValueError(f"max_count must be positive, got {max_count}")
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout}")
        self._lock_consumer_state()
        try:
            messages = self._read_many_now(max_count)
            if messages or timeout is None:
                return messages
            deadline = _deadline(timeout)
            while not messages:
                self._wait_readable(deadline)
                messages = self._read_many_now(max_count)
            return messages
        finally:
            self._consumer_lock.release()

    def _read_many_now(self, max_count: int) -> List[bytes]:
        """read_many() without waiting; the caller holds the consumer lock."""
        ends = self._batch_ends
        if ends is None or len(ends) < max_count:
            ends = self._batch_ends = _new_uninitialized("size_t[]", max_count)
        buf = self._batch_buffer
        if buf is None:
            size = max(_BATCH_BUFFER_BYTES, self._scratch_size)
            buf = self._batch_buffer = _new_uninitialized("char[]", size)
        size = len(buf)
        while True:
            rc = lib.mrb_py_read_many(self._ring, buf, size, ends, max_count)
            if rc > 0:
                break
            if rc == _EEMPTY:
                return []
            if rc != _EBUFFER_TOO_SMALL:
                raise error_for(rc)
            size = ends[0]
            buf = _new_uninitialized("char[]", size)
        ends = ffi.unpack(ends, rc)
        batch = ffi.buffer(buf, ends[-1])
        if ends[-1] <= _SMALL_MESSAGES_BYTES * rc:
            # Small messages: one copy out of C, then cheap bytes slices.
            batch = batch[:]
        return [batch[start:end] for start, end in zip([0, *ends], ends)]

    def _wait_readable(self, deadline: float) -> None:
        """Waits until a message may be readable; Timeout at the deadline."""
        while True:
            wait_ns = _next_slice_ns(deadline)
            rc = lib.mrb_wait_readable(self._ring, wait_ns)
            if rc >= 0:
                return
            if rc == _EINTR:
                continue
            if rc != _ETIMEDOUT and rc != _EEMPTY:
                raise error_for(rc)
            if wait_ns == 0:
                raise error_for(_ETIMEDOUT)

    def peek(self) -> PeekedMessage:
        """Returns the next message in place, read-only, without consuming it;
        call its ``release()`` to consume it. Peeking again before that
        returns the same message. Raises BufferEmpty, Closed, ConsumerBusy.
        """
        peeked = self._peeked
        if peeked is not None:
            return peeked
        self._lock_consumer_state()
        try:
            view = ffi.new("struct mrb_view *")
            rc = lib.mrb_peek(self._ring, view)
            if rc < 0:
                raise error_for(rc)
            peeked = PeekedMessage(self, view, readonly_view(view.data, view.len))
            self._peeked = peeked
            return peeked
        finally:
            self._consumer_lock.release()

    def __iter__(self) -> Iterator[bytes]:
        """Yields the messages available now, stopping when the ring is empty."""
        while True:
            message = self.try_read()
            if message is None:
                return
            yield message

    # ---- recovery ---------------------------------------------------------------

    def recover(self, stale_after: Optional[float] = None) -> int:
        """Skips an abandoned record blocking the consumer: one whose writer
        process is gone, or (given ``stale_after`` seconds) one that has
        blocked it that long. Returns the number of records skipped (0 or 1).
        """
        stale_ns = -1 if stale_after is None else int(stale_after * 1e9)
        rc = lib.mrb_recover(self._ring, stale_ns)
        if rc < 0:
            raise error_for(rc)
        return int(rc)
