"""read(timeout=...) / write(timeout=...): waits with the GIL released, in
slices short enough for signals (Ctrl-C) and close() from another thread."""

from __future__ import annotations

import math
import pathlib
import signal
import threading
import time
from typing import Callable

import pytest

from mmap_ringbuffer import Closed, ConsumerBusy, RingBuffer, Timeout


def soon(action: Callable[[], object], delay: float = 0.05) -> threading.Thread:
    """Runs action on another thread after a short pause (ordering only: no
    assertion depends on how long anything takes)."""

    def run() -> None:
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_read_waits_for_a_writer(rb: RingBuffer) -> None:
    writer = soon(lambda: rb.write(b"late"))
    assert rb.read(timeout=math.inf) == b"late"
    writer.join()


def test_read_with_finite_timeout_gets_a_message(rb: RingBuffer) -> None:
    writer = soon(lambda: rb.write(b"in time"))
    assert rb.read(timeout=60) == b"in time"
    writer.join()


def test_read_returns_at_once_when_a_message_is_there(rb: RingBuffer) -> None:
    rb.write(b"ready")
    assert rb.read(timeout=0) == b"ready"


def test_read_timeout_expires(rb: RingBuffer) -> None:
    with pytest.raises(Timeout) as info:
        rb.read(timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(Timeout):
        rb.read(timeout=0)


def test_read_timeout_longer_than_one_slice_expires(rb: RingBuffer) -> None:
    with pytest.raises(Timeout):
        rb.read(timeout=0.25)


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_invalid_timeouts(rb: RingBuffer, bad: float) -> None:
    with pytest.raises(ValueError):
        rb.read(timeout=bad)
    with pytest.raises(ValueError):
        rb.write(b"x", timeout=bad)


def test_write_waits_for_room(rb: RingBuffer) -> None:
    message = b"w" * 500
    count = 0
    while True:
        try:
            rb.write(message, timeout=0)
            count += 1
        except Timeout:
            break
    reader = soon(lambda: rb.read())
    rb.write(message, timeout=math.inf)
    reader.join()
    assert list(rb) == [message] * count


def test_write_timeout_expires(rb: RingBuffer) -> None:
    while True:
        try:
            rb.write(b"f" * 300)
        except Exception:
            break
    with pytest.raises(Timeout):
        rb.write(b"f" * 300, timeout=0.05)


def test_read_many_waits(rb: RingBuffer) -> None:
    writer = soon(lambda: rb.write_many([b"a", b"b"]))
    received = rb.read_many(10, timeout=math.inf)
    writer.join()
    received += rb.read_many(10)
    assert received == [b"a", b"b"]
    with pytest.raises(Timeout):
        rb.read_many(10, timeout=0.01)


def test_ctrl_c_interrupts_a_blocked_read(rb: RingBuffer) -> None:
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread().ident == main
    interrupter = soon(lambda: signal.pthread_kill(main, signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        rb.read(timeout=math.inf)
    interrupter.join()
    rb.write(b"still usable")
    assert rb.read() == b"still usable"


def test_ctrl_c_interrupts_a_blocked_write(rb: RingBuffer) -> None:
    while True:
        try:
            rb.write(b"x" * 1000)
        except Exception:
            break
    main = threading.main_thread().ident
    assert main is not None
    interrupter = soon(lambda: signal.pthread_kill(main, signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        rb.write(b"x" * 1000, timeout=math.inf)
    interrupter.join()


def test_close_wakes_a_blocked_reader(rb: RingBuffer) -> None:
    outcome: list[BaseException] = []

    def reader() -> None:
        try:
            rb.read(timeout=math.inf)
        except BaseException as exc:  # noqa: B902 - recorded for the assert
            outcome.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.05)
    rb.close()
    thread.join()
    assert len(outcome) == 1 and isinstance(outcome[0], Closed)


def test_concurrent_consumer_calls_on_one_handle_are_busy(rb: RingBuffer) -> None:
    received: list[bytes] = []

    def reader() -> None:
        while True:
            try:
                received.append(rb.read(timeout=math.inf))
                return
            except ConsumerBusy:  # the main thread's probe got in first
                time.sleep(0.001)

    thread = threading.Thread(target=reader)
    thread.start()
    # Probe until the reader is blocked inside C as this handle's consumer.
    while True:
        try:
            assert rb.try_read() is None
        except ConsumerBusy:
            break
        time.sleep(0.001)
    with pytest.raises(ConsumerBusy):
        rb.read()
    with pytest.raises(ConsumerBusy):
        rb.read(timeout=0.01)
    with pytest.raises(ConsumerBusy):
        rb.read_into(bytearray(64))
    with pytest.raises(ConsumerBusy):
        rb.peek()
    rb.write(b"for the thread")
    thread.join()
    assert received == [b"for the thread"]


def test_threads_taking_turns_as_consumer(tmp_path: pathlib.Path) -> None:
    """Sequential consumer calls from several threads share the handle; each
    thread reads into its own buffer, so large and small messages interleave
    without one thread seeing another's bytes."""
    rb = RingBuffer.create(tmp_path / "turns.ring", 8 << 20)
    # Sizes up to 90 KB: some above the 64 KiB read scratch buffer.
    messages = [bytes([i]) * (1 + i * 7919 % 90000) for i in range(60)]
    assert rb.write_many(messages[:10]) == 10
    got: list[bytes] = []
    lock = threading.Lock()

    def take(count: int) -> None:
        for _ in range(count):
            with lock:
                got.append(rb.read())

    for turn in range(5):
        thread = threading.Thread(target=take, args=(2,))
        thread.start()
        thread.join()
    assert rb.write_many(messages[10:]) == 50
    threads = [threading.Thread(target=take, args=(10,)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rb.close()
    assert got == messages


def test_writers_on_many_threads(rb: RingBuffer) -> None:
    threads_count, per_thread = 4, 500
    received: list[bytes] = []

    def writer(tid: int) -> None:
        for seq in range(per_thread):
            rb.write(b"%d:%d" % (tid, seq), timeout=math.inf)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(threads_count)]
    for thread in threads:
        thread.start()
    while len(received) < threads_count * per_thread:
        received.append(rb.read(timeout=math.inf))
    for thread in threads:
        thread.join()
    last = {t: -1 for t in range(threads_count)}
    for message in received:
        tid, seq = map(int, message.split(b":"))
        assert seq == last[tid] + 1
        last[tid] = seq
    assert all(seq == per_thread - 1 for seq in last.values())


def test_write_many_waits_for_room(rb: RingBuffer) -> None:
    message = b"b" * 400
    written = rb.write_many([message] * 100)
    assert 0 < written < 100
    reader = soon(lambda: rb.read_many(3))
    assert rb.write_many([message] * 3, timeout=math.inf) >= 1
    reader.join()
    with pytest.raises(Timeout):
        while True:
            rb.write_many([message] * 3, timeout=0.05)


def test_write_many_timeout_validation(rb: RingBuffer) -> None:
    with pytest.raises(ValueError):
        rb.write_many([b"x"], timeout=-1)
    with pytest.raises(ValueError):
        rb.read_many(1, timeout=float("nan"))
