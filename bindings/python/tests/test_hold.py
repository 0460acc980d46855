"""hold(), read_many_at(), release_through(): at-least-once forwarding."""

from __future__ import annotations

import pathlib

import pytest

from mmap_ringbuffer import InvalidArgument, RingBuffer, StaleError


def test_held_messages_come_back_until_released(ring_path: pathlib.Path) -> None:
    rb = RingBuffer.create(ring_path, 4096)
    rb.write_many([b"m1", b"m2", b"m3"])
    with pytest.raises(InvalidArgument):
        rb.release_through(0)
    rb.hold()
    assert rb.read_many_at(10) == [(0, b"m1"), (32, b"m2"), (64, b"m3")]
    assert rb.read_many_at(10) == []
    assert rb.stats().consumer_position == 0
    rb.release_through(32)
    with pytest.raises(StaleError):
        rb.release_through(32)
    stats = rb.stats()
    assert (stats.consumer_position, stats.messages_read) == (64, 2)
    assert stats.salt & 1 == 1
    rb.close()
    # Closed while holding m3: the next consumer reads it again.
    with RingBuffer.open(ring_path) as again:
        assert again.stats().salt == stats.salt
        again.hold()
        assert again.read_many_at(10) == [(64, b"m3")]
        again.hold(False)
        assert again.stats().consumer_position == 96


def test_read_many_at_grows_its_buffer(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 1 << 20) as rb:
        big = bytes(range(256)) * 400  # 100 KiB: above the first buffer
        rb.write_many([b"a", big])
        assert rb.read_many_at(8) == [(0, b"a")]
        assert rb.read_many_at(8) == [(32, big)]
