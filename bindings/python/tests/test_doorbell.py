"""Doorbells for loops of your own: doorbell_fd, arm_read, arm_write, disarm,
waited on with selectors (not asyncio). The cross-language variant (C and Go
writers) is //tests/interop:evloop_py_selectors_reader_test."""

from __future__ import annotations

import mmap
import multiprocessing
import pathlib
import resource
import selectors
import struct
import time
from typing import Iterator, List

import pytest

from mmap_ringbuffer import (
    Closed,
    InvalidSize,
    ModeError,
    RingBuffer,
)


def _idle(path: pathlib.Path) -> bool:
    """Nobody counted as waiting, no doorbell armed (as test_async.Header)."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0x1000, prot=mmap.PROT_READ) as m:
        return (
            struct.unpack_from("<I", m, 0x284)[0] == 0
            and struct.unpack_from("<I", m, 0x304)[0] == 0
            and struct.unpack_from("<Q", m, 0x400)[0] == 0
            and all(
                struct.unpack_from("<Q", m, 0x480 + 16 * i)[0] == 0 for i in range(32)
            )
        )


@pytest.fixture
def selector() -> Iterator[selectors.BaseSelector]:
    sel = selectors.DefaultSelector()
    yield sel
    sel.close()


def _writer(path: str, count: int, pause_every: int) -> None:
    ring = RingBuffer(path)
    for i in range(count):
        ring.write(struct.pack("<Q", i), timeout=30.0)
        if i % pause_every == 0:
            time.sleep(0.002)  # let the reader run dry and arm
    ring.close()


def test_selector_loop_gets_every_message_of_another_process_once(
    ring_path: pathlib.Path, rb: RingBuffer, selector: selectors.BaseSelector
) -> None:
    """The documented loop: drain, arm_read, select."""
    count = 5000
    selector.register(rb.doorbell_fd(), selectors.EVENT_READ)
    proc = multiprocessing.get_context("fork").Process(
        target=_writer, args=(str(ring_path), count, 250)
    )
    proc.start()
    got: List[int] = []
    waits = 0
    deadline = time.monotonic() + 60
    while len(got) < count:
        while (message := rb.try_read()) is not None:
            got.append(struct.unpack("<Q", message)[0])
        if len(got) == count:
            break
        timeout = rb.arm_read()
        if timeout:
            assert 0 < timeout <= 1.0
            assert time.monotonic() < deadline, f"{len(got)} of {count} messages"
            selector.select(timeout)
            waits += 1
    proc.join(30)
    assert proc.exitcode == 0
    assert got == list(range(count))
    assert rb.try_read() is None
    assert waits > 0
    selector.unregister(rb.doorbell_fd())
    assert _idle(ring_path)


def test_arm_read_rings_drains_and_disarms(
    ring_path: pathlib.Path, rb: RingBuffer, selector: selectors.BaseSelector
) -> None:
    fd = rb.doorbell_fd()
    assert fd >= 0 and rb.doorbell_fd("read") == fd
    selector.register(fd, selectors.EVENT_READ)
    assert rb.arm_read() == 1.0  # empty: armed, wait at most 1 s
    assert not _idle(ring_path)
    assert selector.select(0) == []
    rb.write(b"one")
    assert len(selector.select(10)) == 1  # rung
    assert rb.arm_read() == 0.0  # ready; drains the doorbell, arms nothing
    assert selector.select(0) == []
    assert _idle(ring_path)
    assert rb.try_read() == b"one"

    assert rb.arm_read() == 1.0
    rb.disarm()
    rb.disarm("read")  # nothing armed: nothing happens
    assert _idle(ring_path)
    rb.write(b"two")
    assert selector.select(0.05) == []  # disarmed: not rung
    assert rb.arm_read() == 0.0
    assert rb.try_read() == b"two"


def test_arm_write_waits_for_room(
    ring_path: pathlib.Path, rb: RingBuffer, selector: selectors.BaseSelector
) -> None:
    wfd = rb.doorbell_fd("write")
    assert wfd != rb.doorbell_fd("read")
    selector.register(wfd, selectors.EVENT_READ)
    message = b"x" * 100
    assert rb.arm_write(len(message)) == 0.0
    while rb.arm_write(len(message)) == 0.0:
        rb.write(message)
    assert selector.select(0) == []
    assert rb.try_read() == message
    assert len(selector.select(10)) == 1
    assert rb.arm_write(len(message)) == 0.0
    rb.write(message)
    with pytest.raises(InvalidSize):
        rb.arm_write(rb.max_message_size + 1)
    with pytest.raises(InvalidSize):
        rb.arm_write(0)
    with pytest.raises(TypeError):
        rb.arm_write("100")  # type: ignore[arg-type]
    rb.disarm("write")
    assert _idle(ring_path)


def test_idle_selector_loop_uses_no_cpu(
    rb: RingBuffer, selector: selectors.BaseSelector
) -> None:
    selector.register(rb.doorbell_fd(), selectors.EVENT_READ)
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    until = start + 2.0
    while (now := time.monotonic()) < until:
        assert rb.try_read() is None
        timeout = rb.arm_read()
        if timeout:
            selector.select(min(timeout, until - now))
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    rb.disarm()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 0.02 * wall, f"{cpu:.4f} s CPU over {wall:.2f} s"


def test_bad_side_and_closed_handle(ring_path: pathlib.Path) -> None:
    ring = RingBuffer.create(ring_path, 4096)
    with pytest.raises(ValueError):
        ring.doorbell_fd("both")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ring.disarm(0)  # type: ignore[arg-type]
    ring.close()
    with pytest.raises(Closed):
        ring.doorbell_fd()
    with pytest.raises(Closed):
        ring.arm_read()
    with pytest.raises(Closed):
        ring.arm_write(10)
    with pytest.raises(Closed):
        ring.disarm()


def test_subscriber_has_a_doorbell_of_its_own(
    tmp_path: pathlib.Path, selector: selectors.BaseSelector
) -> None:
    path = tmp_path / "feed.ring"
    with RingBuffer.create(path, 4096, fanout=True) as feed, feed.subscribe() as sub:
        fd = sub.doorbell_fd()
        assert fd != feed.doorbell_fd()
        selector.register(fd, selectors.EVENT_READ)
        assert sub.arm_read() > 0
        feed.write(b"all")
        assert len(selector.select(10)) == 1
        assert sub.arm_read() == 0.0
        assert sub.try_read() == b"all"
        with pytest.raises(ModeError):
            feed.arm_read()  # a fan-out ring's plain handle is no consumer
        selector.unregister(fd)
