"""mmap_ringbuffer: a many-producer, single-consumer message ring in a
memory-mapped file, shared by threads, processes and languages.

A thin cffi binding over the C library (core/ in the source tree)::

    from mmap_ringbuffer import RingBuffer

    with RingBuffer.create("/dev/shm/jobs.ring", 1 << 20) as rb:
        rb.write(b"hello")
        assert rb.read() == b"hello"
"""

from ._errors import (
    BufferEmpty,
    BufferFull,
    BufferTooSmall,
    Closed,
    ConsumerBusy,
    CorruptError,
    ForeignFile,
    ForkedError,
    InCallbackError,
    FormatError,
    Interrupted,
    InvalidArgument,
    InvalidSize,
    NoProducerSlot,
    RingBufferError,
    RingExists,
    StaleError,
    Timeout,
    VersionError,
    strerror,
)
from ._ring import RingBuffer
from ._stats import RingStats
from ._zero_copy import PeekedMessage, Reservation

__version__ = "0.1.0"

__all__ = [
    "BufferEmpty",
    "BufferFull",
    "BufferTooSmall",
    "Closed",
    "ConsumerBusy",
    "CorruptError",
    "ForeignFile",
    "ForkedError",
    "InCallbackError",
    "FormatError",
    "Interrupted",
    "InvalidArgument",
    "InvalidSize",
    "NoProducerSlot",
    "PeekedMessage",
    "Reservation",
    "RingBuffer",
    "RingBufferError",
    "RingExists",
    "RingStats",
    "StaleError",
    "Timeout",
    "VersionError",
    "strerror",
]
