"""The ring's counters as a typed, immutable record."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional


@dataclass(frozen=True)
class RingStats:
    """A snapshot of ``struct mrb_stats`` (see ``mrb/mrb.h``)."""

    format_version: int
    capacity: int
    """Data bytes in the ring."""
    max_message_size: int
    """Largest payload accepted."""
    producer_position: int
    consumer_position: int
    used_bytes: int
    """Producer position minus consumer position."""
    messages_written: int
    bytes_written: int
    """Payload bytes."""
    messages_read: int
    bytes_read: int
    full_count: int
    """Writes refused because the ring was full."""
    recovered_records: int
    """Abandoned records skipped by crash recovery."""
    recovered_bytes: int
    consumer_pid: int
    """0 when no consumer is attached."""
    consumer_alive: bool
    producers: int
    """Producer slots in use."""
    producers_alive: int
    creator_pid: int
    created_unix_ns: int
    skipped_live: int = 0
    """Claims of live writers skipped by the opt-in hung-writer timeout."""
    delivered_late: int = 0
    """Messages of such claims delivered after all, once committed."""
    salt: int = 0
    """The ring's random stamp salt: with created_unix_ns, the ring's identity."""
    sole_producer_pid: int = 0
    """Pid of the process whose producer holds the sole-producer lease: writing
    alone, it claims space with a plain store instead of a compare-and-swap
    (the fast path, docs/FORMAT.md section 7). 0 when no producer holds it
    (producers claim by CAS) or it is being taken back."""
    sole_producer_slot: Optional[int] = None
    """The lease holder's producer slot index, None if none."""

    @classmethod
    def from_c(cls, raw: Any) -> "RingStats":
        """Copies a ``struct mrb_stats *`` cdata into a RingStats."""
        values = {f.name: getattr(raw, f.name) for f in fields(cls)}
        values["consumer_alive"] = bool(values["consumer_alive"])
        if values["sole_producer_slot"] == 0xFFFFFFFF:  # UINT32_MAX: none
            values["sole_producer_slot"] = None
        return cls(**values)
