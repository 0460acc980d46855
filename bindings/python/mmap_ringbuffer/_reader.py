"""Read destinations: where the consumer calls copy messages to.

read()'s destination (a buffer and the length C stored) must not be shared by
two threads: the GIL is released inside C, so one thread could be filling it
while another copies out of it. The first thread to read owns the handle's
reader (the read() hot path checks its identity and nothing else); any other
thread gets a reader of its own. Overlapping consumer calls are then refused
by C itself (MRB_ECONSUMER_BUSY), exactly as for C callers.
"""

from __future__ import annotations

import threading
from typing import Any, List, NamedTuple, Optional, Union

from ._mrb_cffi import ffi, lib

# read()'s reusable destination; larger messages get a buffer of their size.
SCRATCH_LIMIT = 64 * 1024
# read_many() slices messages of at most this average size out of one bytes
# copy of the batch (cheaper per message); larger ones straight from C memory.
_SMALL_MESSAGES_BYTES = 512
# read_many()'s default destination size.
_BATCH_BUFFER_BYTES = 256 * 1024
# The most messages one read_many() call returns, whatever max_count asks
# (the array of their offsets is allocated for that many).
MAX_BATCH = 65536

_EEMPTY = lib.MRB_EEMPTY
_EBUFFER_TOO_SMALL = lib.MRB_EBUFFER_TOO_SMALL
_mrb_read_to = lib.mrb_py_read_to
_mrb_read_many = lib.mrb_py_read_many

# Buffers the C side overwrites need no zero-filling.
new_uninitialized = ffi.new_allocator(should_clear_after_alloc=False)


class Reader(NamedTuple):
    """One thread's read destination."""

    #: ``struct mrb_py_reader *``: ring, buffer, size, and the last length
    #: (or the size a too-large message needs), passed to C as one pointer.
    c: Any
    #: A memoryview of the buffer: slicing it to bytes is the cheapest copy.
    view: memoryview
    #: The buffer, owned here (the C reader only points to it).
    buffer: Any


def new_reader(ring: Any, size: int) -> Reader:
    buf = new_uninitialized("char[]", size)
    reader = ffi.new("struct mrb_py_reader *", {"ring": ring, "buf": buf, "size": size})
    return Reader(reader, memoryview(ffi.buffer(buf)), buf)


class ThreadReaders:
    """The handle's reader for its first reading thread, and one per other
    thread (created on first use)."""

    __slots__ = (
        "owner",
        "own_c",
        "own_view",
        "_own",
        "_ring",
        "_size",
        "_lock",
        "_others",
    )

    def __init__(self, ring: Any, size: int) -> None:
        #: The thread owning the handle's own reader (0 until some thread
        #: reads), and that reader's parts as read()'s hot path uses them.
        self.owner = 0
        self._own = new_reader(ring, size)
        self.own_c = self._own.c
        self.own_view = self._own.view
        self._ring = ring
        self._size = size
        self._lock = threading.Lock()
        self._others = threading.local()

    def for_this_thread(self) -> Reader:
        """The calling thread's reader (the first caller becomes the owner)."""
        ident = threading.get_ident()
        with self._lock:
            if self.owner == 0:
                self.owner = ident
            if self.owner == ident:
                return self._own
        reader: Optional[Reader] = getattr(self._others, "reader", None)
        if reader is None:
            reader = new_reader(self._ring, self._size)
            self._others.reader = reader
        return reader


def read_large(reader: Any) -> Union[bytes, int]:
    """Reads a message larger than the reader's buffer (``reader.len`` is its
    size) into a buffer of its own: the message, or a negative core code."""
    rc = _EBUFFER_TOO_SMALL
    while rc == _EBUFFER_TOO_SMALL:
        size = reader.len
        buf = new_uninitialized("char[]", size)
        rc = _mrb_read_to(reader, buf, size)
        if rc >= 0:
            message: bytes = ffi.buffer(buf, rc)[:]
            return message
    return rc


class BatchReader:
    """read_many()'s destination: one buffer for the messages and one array
    of their end offsets, reused from call to call (callers serialize)."""

    __slots__ = ("_ring", "_buffer", "_ends")

    def __init__(self, ring: Any) -> None:
        self._ring = ring
        self._buffer: Any = None  # char[], allocated on first use
        self._ends: Any = None  # size_t[]

    def read(self, max_count: int) -> Union[List[bytes], int]:
        """Up to ``max_count`` messages ([] when empty), or a negative code."""
        max_count = min(max_count, MAX_BATCH)
        ends = self._ends
        if ends is None or len(ends) < max_count:
            ends = self._ends = new_uninitialized("size_t[]", max_count)
        buf = self._buffer
        if buf is None:
            buf = self._buffer = new_uninitialized("char[]", _BATCH_BUFFER_BYTES)
        size = len(buf)
        while True:
            rc: int = _mrb_read_many(self._ring, buf, size, ends, max_count)
            if rc > 0:
                break
            if rc == _EEMPTY:
                return []
            if rc != _EBUFFER_TOO_SMALL:
                return rc
            size = ends[0]
            buf = new_uninitialized("char[]", size)
        offsets: List[int] = ffi.unpack(ends, rc)
        batch = ffi.buffer(buf, offsets[-1])
        if offsets[-1] <= _SMALL_MESSAGES_BYTES * rc:
            # Small messages: one copy out of C, then cheap bytes slices.
            batch = batch[:]
        return [batch[start:end] for start, end in zip([0, *offsets], offsets)]
