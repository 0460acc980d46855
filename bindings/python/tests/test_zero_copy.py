"""reserve()/commit()/abort() and peek()/release(): ring memory in place."""

from __future__ import annotations

import pathlib

import cffi
import pytest

from mmap_ringbuffer import (
    BufferEmpty,
    BufferFull,
    InvalidSize,
    PeekedMessage,
    Reservation,
    RingBuffer,
    StaleError,
)


def test_reserve_fill_commit(rb: RingBuffer) -> None:
    reservation = rb.reserve(5)
    assert isinstance(reservation, Reservation)
    assert len(reservation) == 5
    view = reservation.view
    assert not view.readonly and view.nbytes == 5
    view[:] = b"hello"
    reservation.commit()
    assert reservation.finished
    assert rb.read() == b"hello"


def test_reservation_context_manager_commits(rb: RingBuffer) -> None:
    with rb.reserve(3) as slot:
        slot[0:3] = b"abc"
        assert slot[1] == ord("b")
    assert rb.read() == b"abc"


def test_reservation_context_manager_aborts_on_exception(rb: RingBuffer) -> None:
    with pytest.raises(RuntimeError):
        with rb.reserve(3) as slot:
            slot[:] = b"bad"
            raise RuntimeError("producer failed")
    assert slot.finished
    rb.write(b"after")
    assert list(rb) == [b"after"]


def test_explicit_commit_inside_the_block(rb: RingBuffer) -> None:
    with rb.reserve(2) as slot:
        slot[:] = b"ok"
        slot.commit()
    assert rb.read() == b"ok"


def test_abort_skips_the_message(rb: RingBuffer) -> None:
    rb.write(b"before")
    reservation = rb.reserve(10)
    rb.write(b"after")
    reservation.abort()
    assert list(rb) == [b"before", b"after"]


def test_open_reservation_holds_back_later_messages(rb: RingBuffer) -> None:
    reservation = rb.reserve(4)
    rb.write(b"second")
    with pytest.raises(BufferEmpty):
        rb.read()
    reservation[:] = b"1st!"
    reservation.commit()
    assert list(rb) == [b"1st!", b"second"]


def test_view_is_invalid_after_commit(rb: RingBuffer) -> None:
    reservation = rb.reserve(4)
    held = reservation.view
    held[:] = b"data"
    reservation.commit()
    with pytest.raises(ValueError):
        held[0] = 1
    with pytest.raises(StaleError):
        reservation.view
    assert rb.read() == b"data"


def test_reserve_errors(rb: RingBuffer) -> None:
    with pytest.raises(InvalidSize):
        rb.reserve(0)
    with pytest.raises(InvalidSize):
        rb.reserve(rb.max_message_size + 1)
    held = []
    with pytest.raises(BufferFull):
        while True:
            held.append(rb.reserve(1000))
    for reservation in held:
        reservation.abort()
    assert rb.try_read() is None


def test_peek_then_release(rb: RingBuffer) -> None:
    rb.write(b"first")
    rb.write(b"second")
    peeked = rb.peek()
    assert isinstance(peeked, PeekedMessage)
    assert len(peeked) == 5
    assert peeked.view.readonly
    assert bytes(peeked) == b"first"
    assert peeked.tobytes() == b"first"
    assert peeked[0:2] == b"fi"
    with pytest.raises(TypeError):
        peeked.view[0] = 0  # type: ignore[index]
    assert rb.peek() is peeked  # not consumed yet
    peeked.release()
    assert rb.read() == b"second"


def test_peek_context_manager(rb: RingBuffer) -> None:
    rb.write(b"one")
    rb.write(b"two")
    with rb.peek() as message:
        assert message.view == b"one"
    with pytest.raises(KeyError):
        with rb.peek() as message:
            assert message.view == b"two"
            raise KeyError("handler failed: keep the message")
    assert rb.read() == b"two"


def test_read_after_peek_consumes_and_invalidates_it(rb: RingBuffer) -> None:
    rb.write(b"one")
    rb.write(b"two")
    peeked = rb.peek()
    held = peeked.view
    assert rb.read() == b"one"
    with pytest.raises(ValueError):
        bytes(held)
    assert rb.peek() is not peeked
    assert bytes(rb.peek()) == b"two"


def test_close_aborts_open_reservations(
    rb: RingBuffer, ring_path: pathlib.Path
) -> None:
    reservation = rb.reserve(8)
    held = reservation.view
    rb.close()
    assert reservation.finished
    with pytest.raises(ValueError):
        held[0] = 1
    with RingBuffer.open(ring_path) as again:
        again.write(b"next")
        assert list(again) == [b"next"]


def test_close_refuses_while_ring_memory_is_exported(rb: RingBuffer) -> None:
    reservation = rb.reserve(8)
    # A cffi buffer cdata holds a buffer export, as a numpy array would.
    exported = cffi.FFI().from_buffer(reservation.view)
    reservation.commit()
    with pytest.raises(BufferError):
        rb.close()
    assert not rb.closed
    del exported
    rb.close()
    assert rb.closed


def test_close_invalidates_peeked_views(rb: RingBuffer) -> None:
    rb.write(b"peeked")
    held = rb.peek().view
    rb.close()
    with pytest.raises(ValueError):
        bytes(held)


def test_slices_of_a_peeked_message_are_copies(rb: RingBuffer) -> None:
    rb.write(b"abcdef")
    peeked = rb.peek()
    part = peeked[1:4]
    assert part == b"bcd" and type(part) is bytes
    assert peeked[0] == ord("a")
    peeked.release()
    assert part == b"bcd"
