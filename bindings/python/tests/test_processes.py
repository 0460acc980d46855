"""Real processes (multiprocessing, spawn): producers and a consumer with
per-producer sequence numbers and checksums; persistence; dead peers."""

from __future__ import annotations

import multiprocessing
import pathlib
import queue
import time
from multiprocessing.process import BaseProcess
from typing import Any, Callable

import pytest

import ipc_workers
from mmap_ringbuffer import RingBuffer

CTX = multiprocessing.get_context("spawn")
JOIN_TIMEOUT = 120


def run(target: Callable[..., None], *args: Any) -> BaseProcess:
    process = CTX.Process(target=target, args=args)
    process.start()
    return process


def finish(*processes: BaseProcess) -> None:
    for process in processes:
        process.join(JOIN_TIMEOUT)
        if process.is_alive():
            process.kill()
            pytest.fail(f"{process.name} did not finish")
        assert process.exitcode == 0, f"{process.name} exited with {process.exitcode}"


def await_result(results: Any, *processes: BaseProcess) -> Any:
    """The consumer's report; fails at once if any process died first."""
    deadline = time.monotonic() + JOIN_TIMEOUT
    while time.monotonic() < deadline:
        try:
            return results.get(timeout=0.2)
        except queue.Empty:
            for process in processes:
                if process.exitcode not in (None, 0):
                    for other in processes:
                        other.kill()
                    pytest.fail(f"{process.name} exited with {process.exitcode}")
    pytest.fail("no result from the consumer")


@pytest.mark.parametrize("batch", [1, 32], ids=["per-message", "batched"])
def test_producers_and_consumer_in_separate_processes(
    ring_path: pathlib.Path, batch: int
) -> None:
    producers, count = 3, 3000
    # Small ring: every producer fills it and waits many times; positions wrap.
    RingBuffer.create(ring_path, 8192).close()
    results = CTX.Queue()
    consumer = run(
        ipc_workers.consume, str(ring_path), producers, count, batch, results
    )
    workers = [
        run(ipc_workers.produce, str(ring_path), p, count, batch)
        for p in range(producers)
    ]
    summary = await_result(results, consumer, *workers)
    finish(consumer, *workers)
    assert "error" not in summary, summary["error"]
    assert summary["received"] == producers * count
    assert summary["next_seq"] == {p: count for p in range(producers)}
    expected_bytes = sum(
        len(ipc_workers.payload(p, s)) for p in range(producers) for s in range(count)
    )
    assert summary["bytes"] == expected_bytes
    assert summary["leftover"] is None
    with RingBuffer.open(ring_path) as rb:
        stats = rb.stats()
        assert stats.messages_written == producers * count
        assert stats.messages_read == producers * count
        assert stats.used_bytes == 0


def test_sole_producer_lease_handed_between_processes(
    ring_path: pathlib.Path,
) -> None:
    """A producer process writing alone holds the sole-producer lease (stats
    name it); three more producer processes start, which takes the lease
    back; every message of all four arrives once, in order, intact; with all
    of them gone, nobody holds it."""
    producers, count = 4, 20000
    RingBuffer.create(ring_path, 65536).close()
    results = CTX.Queue()
    consumer = run(ipc_workers.consume, str(ring_path), producers, count, 1, results)
    holder = run(ipc_workers.produce, str(ring_path), 0, count, 1)
    with RingBuffer.open(ring_path) as rb:
        held_alone = False
        deadline = time.monotonic() + JOIN_TIMEOUT
        while holder.exitcode is None and time.monotonic() < deadline:
            if rb.stats().sole_producer_pid == holder.pid:
                held_alone = True
                break
        others = [
            run(ipc_workers.produce, str(ring_path), p, count, 1)
            for p in range(1, producers)
        ]
        summary = await_result(results, consumer, holder, *others)
        finish(consumer, holder, *others)
        assert "error" not in summary, summary["error"]
        assert summary["next_seq"] == {p: count for p in range(producers)}
        assert held_alone, "the producer writing alone never held the lease"
        stats = rb.stats()
        assert stats.sole_producer_pid == 0
        assert stats.sole_producer_slot is None
        assert stats.messages_read == producers * count


def test_messages_outlive_the_writing_process(ring_path: pathlib.Path) -> None:
    RingBuffer.create(ring_path, 4096).close()
    finish(run(ipc_workers.write_and_exit, str(ring_path), 20))
    with RingBuffer.open(ring_path) as rb:
        assert list(rb) == [b"from child %d" % i for i in range(20)]


def test_dead_consumer_is_replaced(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 4096) as rb:
        rb.write_many([b"msg %d" % i for i in range(10)])
        finish(run(ipc_workers.read_some_then_die, str(ring_path), 4))
        # The dead process held the consumer role; this handle takes over and
        # resumes after the messages it consumed.
        assert list(rb) == [b"msg %d" % i for i in range(4, 10)]


def test_record_of_a_dead_producer_is_skipped(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 4096) as rb:
        rb.write(b"before")
        finish(run(ipc_workers.reserve_then_die, str(ring_path)))
        rb.write(b"after")
        assert rb.read() == b"before"
        # The dead writer's record blocks the consumer until a read notices
        # (the core rate-limits its liveness checks); a blocking read does.
        assert rb.read(timeout=60) == b"after"
        stats = rb.stats()
        assert stats.recovered_records == 1
