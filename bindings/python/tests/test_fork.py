"""A handle belongs to the process that opened it: a child made by fork()
(here a real multiprocessing "fork" child) gets ForkedError (the core's
MRB_EFORKED) from every call on an inherited handle, while the parent keeps
its consumer role and no message is delivered to both."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
from typing import Any, Callable, Dict, List, Tuple

import pytest

from mmap_ringbuffer import ConsumerBusy, ForkedError, RingBuffer
from mmap_ringbuffer._mrb_cffi import lib

FORK = multiprocessing.get_context("fork")

INHERITED_CALLS: Dict[str, Callable[[RingBuffer], Any]] = {
    "read": lambda rb: rb.read(),
    "read timeout": lambda rb: rb.read(timeout=1),
    "try_read": lambda rb: rb.try_read(),
    "read_many": lambda rb: rb.read_many(10),
    "read_into": lambda rb: rb.read_into(bytearray(64)),
    "peek": lambda rb: rb.peek(),
    "write": lambda rb: rb.write(b"from the child's inherited handle"),
    "write timeout": lambda rb: rb.write(b"inherited", timeout=1),
    "write_many": lambda rb: rb.write_many([b"inherited"]),
    "reserve": lambda rb: rb.reserve(8),
    "recover": lambda rb: rb.recover(),
    "stats": lambda rb: rb.stats(),
}


def child(rb: RingBuffer, path: str, results: Any) -> None:
    outcomes: List[Tuple[str, str, str]] = []
    for name, call in INHERITED_CALLS.items():
        try:
            outcomes.append((name, "returned", repr(call(rb))))
        except Exception as exc:
            code = getattr(exc, "code", None)
            outcomes.append((name, f"{type(exc).__name__} {code}", str(exc)))
    rb.close()  # does nothing to the parent's handle
    # A handle the child opens itself works: it may write, and it is
    # refused the consumer role the parent holds.
    with RingBuffer.open(path) as own:
        own.write(b"from the child's own handle")
        try:
            own.read()
            outcomes.append(("own read", "returned", ""))
        except ConsumerBusy:
            outcomes.append(("own read", "ConsumerBusy", ""))
    results.put(outcomes)


def test_inherited_handle_is_refused_in_a_forked_child(
    ring_path: pathlib.Path,
) -> None:
    with RingBuffer.create(ring_path, 4096) as rb:
        rb.write_many([b"one", b"two", b"three"])
        assert rb.read() == b"one"  # the parent is the consumer
        results = FORK.SimpleQueue()
        process = FORK.Process(target=child, args=(rb, str(ring_path), results))
        process.start()
        outcomes = results.get()
        process.join(60)
        assert process.exitcode == 0

        expected = (
            f"this handle was opened by process {os.getpid()}; process "
            f"{process.pid} (a forked child) cannot use it: open the ring again "
            "in this process"
        )
        for name, kind, message in outcomes[:-1]:
            assert (name, kind, message) == (
                name,
                f"ForkedError {lib.MRB_EFORKED}",
                expected,
            )
        assert [name for name, _, _ in outcomes[:-1]] == list(INHERITED_CALLS)
        assert outcomes[-1] == ("own read", "ConsumerBusy", "")

        # The parent's handle still works, is still the consumer, and gets
        # every message the child did not (and could not) take.
        assert not rb.closed
        assert rb.stats().consumer_pid == os.getpid()
        assert rb.read_many(10) == [b"two", b"three", b"from the child's own handle"]
        rb.write(b"after the fork")
        assert rb.read() == b"after the fork"


def test_forked_error_is_a_ring_buffer_error() -> None:
    from mmap_ringbuffer import RingBufferError

    assert issubclass(ForkedError, RingBufferError)


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_handles_opened_in_a_child_are_its_own(
    ring_path: pathlib.Path, start_method: str
) -> None:
    """Not inherited, opened in the child: nothing is refused."""
    context = multiprocessing.get_context(start_method)
    with RingBuffer.create(ring_path, 4096) as rb:
        process = context.Process(target=_write_from_child, args=(str(ring_path),))
        process.start()
        process.join(60)
        assert process.exitcode == 0
        assert rb.read() == b"written by a child"


def _write_from_child(path: str) -> None:
    with RingBuffer.open(path) as rb:
        rb.write(b"written by a child")
