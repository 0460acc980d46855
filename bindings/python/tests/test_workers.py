"""Worker groups: each message to one worker, runs, release on the next
read, dead workers under both policies, the listing, and the recipe that
replaces a multiprocessing.Queue worker pool (README, "Worker pools")."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import signal
import struct
import time
from typing import List

import pytest

from mmap_ringbuffer import (
    BufferFull,
    InvalidArgument,
    ModeError,
    NameBusy,
    RingBuffer,
    StaleError,
    Worker,
    remove_worker_group,
)


@pytest.fixture
def fan(ring_path: pathlib.Path):  # type: ignore[no-untyped-def]
    ring = RingBuffer.create(ring_path, 4096, fanout=True)
    try:
        yield ring
    finally:
        ring.close()


def msg(i: int) -> bytes:
    return struct.pack("<Q", i) + bytes(range(24))


def seq(m: bytes) -> int:
    return int(struct.unpack_from("<Q", m)[0])


def test_each_message_goes_to_one_worker_in_claim_order(fan: RingBuffer) -> None:
    with fan.worker("jobs") as a, fan.worker("jobs") as b:
        for i in range(6):
            fan.write(msg(i))
        assert [seq(m) for m in a.read_many(3)] == [0, 1, 2]
        assert seq(b.read()) == 3
        assert [seq(m) for m in b.read_many(8)] == [4, 5]
        assert a.try_read() is None
        assert b.try_read() is None
        (group,) = fan.worker_groups()
        assert group.name == "jobs"
        assert group.messages_done == 6
        assert group.workers == 2
        assert not group.at_most_once
        assert group.hold_timeout is None


def test_messages_are_held_until_the_next_read(fan: RingBuffer) -> None:
    with fan.worker("jobs") as w:
        fan.write(msg(0))
        fan.write(msg(1))
        assert seq(w.read()) == 0
        (info,) = fan.workers()
        assert info.holding and info.pid == os.getpid()
        assert info.held_from == 0 and info.held_to == 48
        assert fan.stats().consumer_position == 0
        assert seq(w.read()) == 1
        assert fan.stats().consumer_position == 48
        w.ack()
        assert fan.stats().consumer_position == 96
        assert not fan.workers()[0].holding


def test_options_and_modes(fan: RingBuffer, tmp_path: pathlib.Path) -> None:
    with RingBuffer.create(tmp_path / "queue.ring", 4096) as queue:
        with pytest.raises(ModeError):
            queue.worker("jobs")
    with fan.worker("jobs", at_most_once=True, hold_timeout=0.5):
        with pytest.raises(InvalidArgument):
            fan.worker("jobs", at_most_once=False)
        fan.worker("jobs").close()  # the group's own options
        with pytest.raises(ValueError):
            fan.worker("")
        with pytest.raises(ValueError):
            fan.worker("x" * 32)
        (group,) = fan.worker_groups()
        assert group.at_most_once and group.hold_timeout == 0.5


def _die_holding(path: str, at_most_once: bool) -> None:
    w = Worker(path, "jobs", at_most_once=at_most_once)
    w.read_many(2)
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("at_most_once", [False, True])
def test_a_dead_workers_messages(fan: RingBuffer, at_most_once: bool) -> None:
    with fan.worker("jobs", at_most_once=at_most_once) as w:
        for i in range(4):
            fan.write(msg(i))
        child = multiprocessing.get_context("fork").Process(
            target=_die_holding, args=(fan.path, at_most_once)
        )
        child.start()
        child.join()
        assert child.exitcode == -signal.SIGKILL
        got = [seq(w.read()), seq(w.read())]
        time.sleep(0.02)  # a hold is judged once 10 ms old
        while True:
            try:
                got.append(seq(w.read(timeout=0.3)))
            except Exception:
                break
        group = fan.worker_groups()[0]
        if at_most_once:
            assert got == [2, 3]
            assert (group.dropped, group.redelivered) == (2, 0)
        else:
            assert got == [2, 3, 0, 1]
            assert (group.dropped, group.redelivered) == (0, 2)


def test_a_hung_workers_late_release_is_refused(fan: RingBuffer) -> None:
    with fan.worker("jobs", hold_timeout=0.03) as a, fan.worker("jobs") as b:  # its own
        fan.write(msg(0))
        assert seq(a.read()) == 0
        time.sleep(0.05)
        assert seq(b.read(timeout=1.0)) == 0  # redelivered
        with pytest.raises(StaleError):
            a.ack()
        assert fan.worker_groups()[0].stale_releases == 1


# ---- The recipe (README.md of the binding, "Worker pools") -------------------


def handle(job: bytes) -> bytes:
    return job.upper()


def worker_main(jobs_path: str, results_path: str) -> None:
    with Worker(jobs_path, "jobs") as jobs, RingBuffer(results_path) as results:
        for job in jobs:  # waits; taking the next job releases the last one
            if job == b"stop":
                break
            results.write(handle(job), timeout=10)


def run_pool(directory: pathlib.Path, n_jobs: int, n_workers: int) -> List[bytes]:
    jobs_path = str(directory / "jobs.ring")
    results_path = str(directory / "results.ring")
    with RingBuffer.create(
        jobs_path, 1 << 16, remove=True, fanout=True
    ) as jobs, RingBuffer.create(results_path, 1 << 16, remove=True) as results:
        jobs.worker("jobs").close()  # the group exists before the first job
        ctx = multiprocessing.get_context("spawn")
        pool = [
            ctx.Process(target=worker_main, args=(jobs_path, results_path))
            for _ in range(n_workers)
        ]
        for p in pool:
            p.start()
        out = []
        for i in range(n_jobs):
            jobs.write(b"job %d" % i, timeout=10)
            while (r := results.try_read()) is not None:
                out.append(r)
        for _ in pool:
            jobs.write(b"stop", timeout=10)
        while len(out) < n_jobs:
            out.append(results.read(timeout=10))
        for p in pool:
            p.join(10)
        return out


def test_recipe_replaces_a_multiprocessing_pool(tmp_path: pathlib.Path) -> None:
    out = run_pool(tmp_path, 2000, 3)
    assert sorted(out) == sorted(b"JOB %d" % i for i in range(2000))


def test_remove_worker_group(fan: RingBuffer, ring_path: pathlib.Path) -> None:
    # 32-byte messages take 48-byte records: 85 fill the 4 KiB ring.
    with fan.worker("jobs") as w:
        for i in range(85):
            fan.write(msg(i))
        assert seq(w.read()) == 0
        with pytest.raises(NameBusy):
            remove_worker_group(ring_path, "jobs")
    fan.write(msg(85))  # message 0 was released by the close
    with pytest.raises(BufferFull):
        fan.write(msg(86))  # the group holds the rest
    remove_worker_group(ring_path, "jobs")
    assert fan.worker_groups() == []
    fan.write(msg(86))
    with pytest.raises(FileNotFoundError):
        remove_worker_group(ring_path, "jobs")
    with pytest.raises(ValueError):
        remove_worker_group(ring_path, "")
    with fan.worker("jobs") as w:  # a new group: from the oldest message
        assert seq(w.read()) == 86
