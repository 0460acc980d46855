"""mmap_ringbuffer: a many-producer message ring in a memory-mapped file,
shared by threads, processes and languages: read by one consumer, or (a
fan-out ring) by several subscribers.

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
    Lapped,
    ModeError,
    NameBusy,
    NoProducerSlot,
    NoSubscriberSlot,
    NoWorkerSlot,
    RingBufferError,
    RingExists,
    StaleError,
    Timeout,
    VersionError,
    strerror,
)
from ._ring import RingBuffer, Subscriber, Worker, subscribe
from ._stats import RingStats
from ._subscriber import SubscriberInfo, SubscriberState, unsubscribe
from ._workers import GroupInfo, WorkerInfo, remove_worker_group
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
    "FormatError",
    "GroupInfo",
    "InCallbackError",
    "Interrupted",
    "InvalidArgument",
    "InvalidSize",
    "Lapped",
    "ModeError",
    "NameBusy",
    "NoProducerSlot",
    "NoSubscriberSlot",
    "NoWorkerSlot",
    "PeekedMessage",
    "Reservation",
    "RingBuffer",
    "RingBufferError",
    "RingExists",
    "RingStats",
    "StaleError",
    "Subscriber",
    "SubscriberInfo",
    "SubscriberState",
    "Timeout",
    "VersionError",
    "Worker",
    "WorkerInfo",
    "remove_worker_group",
    "strerror",
    "subscribe",
    "unsubscribe",
]
