"""write_many(), read_many() and iteration."""

from __future__ import annotations

import pathlib

import pytest

from mmap_ringbuffer import BufferFull, InvalidSize, RingBuffer


def test_round_trip_in_order(rb: RingBuffer) -> None:
    messages = [b"m%03d" % i for i in range(50)]
    assert rb.write_many(messages) == 50
    assert rb.read_many(1000) == messages
    assert rb.read_many(10) == []


def test_read_many_respects_max_count(rb: RingBuffer) -> None:
    rb.write_many([bytes([i]) * (i + 1) for i in range(10)])
    assert rb.read_many(3) == [b"\x00", b"\x01" * 2, b"\x02" * 3]
    assert rb.read_many(1) == [b"\x03" * 4]
    assert len(rb.read_many(100)) == 6


def test_read_many_needs_a_positive_count(rb: RingBuffer) -> None:
    with pytest.raises(ValueError):
        rb.read_many(0)


def test_write_many_accepts_any_iterable(rb: RingBuffer) -> None:
    assert rb.write_many(b"g%d" % i for i in range(5)) == 5
    assert rb.write_many(()) == 0
    assert rb.write_many(iter([])) == 0
    assert rb.read_many(10) == [b"g%d" % i for i in range(5)]


def test_write_many_writes_a_prefix_when_the_ring_fills(rb: RingBuffer) -> None:
    messages = [i.to_bytes(4, "little") * 25 for i in range(100)]  # 100 B each
    written = rb.write_many(messages)
    assert 0 < written < 100
    assert rb.stats().full_count >= 1
    with pytest.raises(BufferFull):
        rb.write_many(messages[written:])
    assert rb.read_many(1000) == messages[:written]
    assert rb.write_many(messages[written:]) > 0


def test_write_many_stops_at_an_invalid_message(rb: RingBuffer) -> None:
    assert rb.write_many([b"a", b"", b"c"]) == 1
    with pytest.raises(InvalidSize):
        rb.write_many([b"", b"c"])
    with pytest.raises(InvalidSize):
        rb.write_many([b"x" * (rb.max_message_size + 1)])
    assert rb.read_many(10) == [b"a"]


def test_batches_longer_than_one_c_chunk(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 1 << 20) as rb:
        messages = [b"%06d" % i for i in range(3000)]
        assert rb.write_many(messages) == 3000
        received: list[bytes] = []
        while len(received) < 3000:
            received += rb.read_many(700)
        assert received == messages


def test_read_many_with_messages_above_the_batch_buffer(
    ring_path: pathlib.Path,
) -> None:
    with RingBuffer.create(ring_path, 1 << 21) as rb:
        big = [bytes([i]) * (300 * 1024) for i in range(3)]
        small = [b"s1", b"s2"]
        assert rb.write_many(big + small) == 5
        received: list[bytes] = []
        while len(received) < 5:
            batch = rb.read_many(10)
            assert batch
            received += batch
        assert received == big + small


def test_iteration_yields_available_messages_then_stops(rb: RingBuffer) -> None:
    rb.write_many([b"a", b"b", b"c"])
    assert [m for m in rb] == [b"a", b"b", b"c"]
    assert list(rb) == []
    rb.write(b"d")
    assert list(rb) == [b"d"]


def test_iteration_can_stop_early(rb: RingBuffer) -> None:
    rb.write_many([b"1", b"2", b"3"])
    for message in rb:
        assert message == b"1"
        break
    assert list(rb) == [b"2", b"3"]
