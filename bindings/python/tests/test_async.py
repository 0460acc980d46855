"""asyncio: read_async, write_async, async for, on rings, subscribers and
workers; cancellation leaves nothing behind (no message lost or repeated, no
thread, no armed doorbell, no waiter count), other processes' writes wake
the loop, an idle wait costs no CPU. Every test runs under asyncio's own
loop and under uvloop when installed."""

from __future__ import annotations

import asyncio
import mmap
import multiprocessing
import os
import pathlib
import random
import resource
import struct
import threading
import time
from typing import Any, Callable, Coroutine, Iterator, List

import pytest

from mmap_ringbuffer import BufferFull, Closed, RingBuffer, Timeout, Worker

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is optional
    uvloop = None

LOOPS = ["asyncio", "uvloop"]


@pytest.fixture(params=LOOPS)
def run(request: Any) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    if request.param == "uvloop":
        if uvloop is None:
            pytest.skip("uvloop is not installed")
        return _uv_run
    return asyncio.run


def _uv_run(coro: Coroutine[Any, Any, Any]) -> Any:
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


class Header:
    """The shared waiter counts and doorbell words, read from the file."""

    def __init__(self, path: pathlib.Path) -> None:
        self.file = open(path, "rb")
        self.map = mmap.mmap(self.file.fileno(), 0x10000, prot=mmap.PROT_READ)

    def u32(self, offset: int) -> int:
        return int(struct.unpack_from("<I", self.map, offset)[0])

    def u64(self, offset: int) -> int:
        return int(struct.unpack_from("<Q", self.map, offset)[0])

    def idle(self) -> bool:
        """Nobody counted as waiting, no doorbell armed."""
        return (
            self.u32(0x284) == 0
            and self.u32(0x304) == 0
            and self.u64(0x400) == 0
            and all(self.u64(0x480 + 16 * i) == 0 for i in range(32))
            # Worker groups: work_waiters, work_armed; worker doorbells.
            and all(self.u32(0xE080 + 384 * g + 0x104) == 0 for g in range(4))
            and all(self.u32(0xE080 + 384 * g + 0x108) == 0 for g in range(4))
            and all(self.u64(0xE800 + 128 * w + 0x60) == 0 for w in range(48))
        )

    def close(self) -> None:
        self.map.close()
        self.file.close()


@pytest.fixture
def header(ring_path: pathlib.Path, rb: RingBuffer) -> Iterator[Header]:
    h = Header(ring_path)
    yield h
    h.close()


def _writer(path: str, count: int, pause_every: int) -> None:
    ring = RingBuffer(path)
    for i in range(count):
        ring.write(struct.pack("<Q", i), timeout=30.0)
        if i % pause_every == 0:
            time.sleep(0.002)  # let the reader run dry and arm
    ring.close()


def test_async_for_gets_every_message_of_another_process_once(
    run: Any, ring_path: pathlib.Path, rb: RingBuffer, header: Header
) -> None:
    count = 5000
    proc = multiprocessing.get_context("fork").Process(
        target=_writer, args=(str(ring_path), count, 250)
    )

    async def main() -> List[int]:
        got: List[int] = []
        proc.start()
        async for message in rb:
            got.append(struct.unpack("<Q", message)[0])
            if len(got) == count:
                break
        return got

    assert run(main()) == list(range(count))
    proc.join(30)
    assert proc.exitcode == 0
    assert rb.try_read() is None
    assert header.idle()


def _reader(path: str, count: int, out: Any) -> None:
    ring = RingBuffer(path)
    total = 0
    for i in range(count):
        message = ring.read(timeout=30.0)
        if message != struct.pack("<Q", i):
            out.put(f"message {i}: {message!r}")
            return
        total += 1
        if i % 100 == 0:
            time.sleep(0.002)
    out.put(total)
    ring.close()


def test_write_async_waits_for_a_reader_in_another_process(
    run: Any, ring_path: pathlib.Path, rb: RingBuffer, header: Header
) -> None:
    count = 3000  # 32-byte records: a 4 KiB ring fills many times over
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    proc = ctx.Process(target=_reader, args=(str(ring_path), count, out))
    proc.start()

    async def main() -> None:
        for i in range(count):
            await rb.write_async(struct.pack("<Q", i))

    run(main())
    assert out.get(timeout=30) == count
    proc.join(30)
    assert header.idle()


def test_cancel_while_waiting_consumes_nothing(
    run: Any, rb: RingBuffer, header: Header
) -> None:
    threads = threading.active_count()

    async def main() -> None:
        for i in range(100):
            task = asyncio.ensure_future(rb.read_async())
            for _ in range(i % 3):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert header.idle()
            rb.write(b"m%d" % i)
            assert rb.try_read() == b"m%d" % i  # usable at once

    run(main())
    assert threading.active_count() == threads


def test_cancel_during_delivery_loses_and_repeats_nothing(
    run: Any, rb: RingBuffer, header: Header
) -> None:
    """A message written while the reader waits, and the reader cancelled
    0-3 loop steps later (before, while or after the doorbell's callback
    runs): it either returned the message or raised CancelledError with the
    message still in the ring."""
    rng = random.Random(17)
    outcomes = {"delivered": 0, "cancelled": 0}

    async def main() -> None:
        for i in range(300):
            task = asyncio.ensure_future(rb.read_async())
            await asyncio.sleep(0)
            await asyncio.sleep(0)  # armed and waiting now
            message = b"d%d" % i
            rb.write(message)
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            task.cancel()
            try:
                got = await task
            except asyncio.CancelledError:
                outcomes["cancelled"] += 1
                assert rb.try_read() == message
            else:
                outcomes["delivered"] += 1
                assert got == message
            assert rb.try_read() is None
            assert header.idle()

    run(main())
    assert outcomes["delivered"] + outcomes["cancelled"] == 300


def test_cancel_write_async_writes_nothing(
    run: Any, rb: RingBuffer, header: Header
) -> None:
    async def main() -> None:
        while _fill(rb):
            pass
        task = asyncio.ensure_future(rb.write_async(b"late" * 25))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert header.idle()
        got = []
        while (m := rb.try_read()) is not None:
            got.append(m)
        assert b"late" * 25 not in got

    run(main())


def _fill(rb: RingBuffer) -> bool:
    try:
        rb.write(b"x" * 100)
        return True
    except BufferFull:
        return False


def test_timeout_raises_and_disarms(run: Any, rb: RingBuffer, header: Header) -> None:
    async def main() -> None:
        start = time.monotonic()
        with pytest.raises(Timeout):
            await rb.read_async(timeout=0.05)
        assert time.monotonic() - start >= 0.05
        assert header.idle()

    run(main())


def test_timeout_then_another_loop(run: Any, rb: RingBuffer, header: Header) -> None:
    """A wait that ended by its timer leaves nothing in the handle: the next
    loop (asyncio.run each time) awaits it as if it were new."""

    async def times_out() -> None:
        with pytest.raises(Timeout):
            await rb.read_async(timeout=0.02)

    async def gets() -> bytes:
        task = asyncio.ensure_future(rb.read_async(timeout=10))
        await asyncio.sleep(0.01)
        rb.write(b"next loop")
        return await task

    for _ in range(3):
        run(times_out())
        assert header.idle()
    assert run(gets()) == b"next loop"
    assert header.idle()


def test_close_wakes_awaiting_reader_and_ends_async_for(
    run: Any, ring_path: pathlib.Path
) -> None:
    ring = RingBuffer.create(ring_path, 4096)

    async def main() -> None:
        reader = asyncio.ensure_future(ring.read_async())
        loop_reader = asyncio.ensure_future(_collect(ring))
        await asyncio.sleep(0.01)
        ring.close()
        with pytest.raises(Closed):
            await reader
        assert await loop_reader == []

    run(main())


async def _collect(ring: RingBuffer) -> List[bytes]:
    return [m async for m in ring.aiter()]


def test_idle_awaiting_reader_uses_no_cpu(run: Any, rb: RingBuffer) -> None:
    async def main() -> None:
        with pytest.raises(Timeout):
            await rb.read_async(timeout=2.0)

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    run(main())
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 0.02 * wall, f"{cpu:.4f} s CPU over {wall:.2f} s"


def test_many_rings_in_one_loop(run: Any, tmp_path: pathlib.Path) -> None:
    rings = [RingBuffer.create(tmp_path / f"r{i}", 4096) for i in range(50)]
    try:

        async def main() -> List[bytes]:
            tasks = [asyncio.ensure_future(r.read_async()) for r in rings]
            await asyncio.sleep(0.01)
            for i, r in enumerate(reversed(rings)):
                r.write(b"r%d" % (len(rings) - 1 - i))
            return list(await asyncio.gather(*tasks))

        assert run(main()) == [b"r%d" % i for i in range(50)]
    finally:
        for r in rings:
            r.close()


def test_awaiting_uses_no_thread(run: Any, rb: RingBuffer) -> None:
    threads = threading.active_count()

    async def main() -> None:
        task = asyncio.ensure_future(rb.read_async())
        await asyncio.sleep(0.01)
        assert threading.active_count() == threads
        rb.write(b"x")
        assert await task == b"x"

    run(main())


def test_subscribers_await_their_own_doorbells(
    run: Any, tmp_path: pathlib.Path
) -> None:
    """Every subscriber of a fan-out ring awaits in the loop on a doorbell of
    its own: one write wakes all of them, each gets the message once."""
    path = tmp_path / "feed.ring"
    with RingBuffer.create(path, 4096, fanout=True) as feed:
        subs = [feed.subscribe(), feed.subscribe(), feed.subscribe(lossy=True)]
        header = Header(path)
        try:

            async def main() -> List[List[bytes]]:
                async def take(sub: Any) -> List[bytes]:
                    return [await sub.read_async(), await sub.read_async()]

                tasks = [asyncio.ensure_future(take(s)) for s in subs]
                await asyncio.sleep(0.01)
                feed.write(b"one")
                await asyncio.sleep(0.01)
                feed.write(b"two")
                return list(await asyncio.gather(*tasks))

            assert run(main()) == [[b"one", b"two"]] * 3
            assert header.idle()
        finally:
            header.close()
            for s in subs:
                s.close()


# ---- workers ---------------------------------------------------------------


@pytest.fixture
def feed(tmp_path: pathlib.Path) -> Iterator[RingBuffer]:
    """A fan-out ring with the group "jobs" (its first worker gone)."""
    ring = RingBuffer.create(tmp_path / "jobs.ring", 4096, fanout=True)
    ring.worker("jobs").close()
    try:
        yield ring
    finally:
        ring.close()


def test_workers_async_for_share_another_process_messages_once(
    run: Any, feed: RingBuffer
) -> None:
    """Two workers of one group, each in ``async for`` in one loop, fed by
    another process: every message goes to exactly one of them."""
    count = 3000
    proc = multiprocessing.get_context("fork").Process(
        target=_writer, args=(feed.path, count, 250)
    )
    header = Header(pathlib.Path(feed.path))
    workers = [feed.worker("jobs"), feed.worker("jobs")]
    try:

        async def main() -> List[List[int]]:
            got: List[List[int]] = [[], []]
            done = asyncio.Event()

            async def work(k: int) -> None:
                async for message in workers[k]:
                    got[k].append(struct.unpack("<Q", message)[0])
                    if len(got[0]) + len(got[1]) == count:
                        done.set()

            tasks = [asyncio.ensure_future(work(k)) for k in range(2)]
            proc.start()
            await done.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return got

        got = run(main())
        proc.join(30)
        assert proc.exitcode == 0
        assert sorted(got[0] + got[1]) == list(range(count))
        for worker in workers:
            assert worker.try_read() is None
        assert header.idle()
    finally:
        header.close()
        for worker in workers:
            worker.close()


def test_cancel_worker_while_waiting_consumes_nothing(
    run: Any, feed: RingBuffer
) -> None:
    threads = threading.active_count()
    header = Header(pathlib.Path(feed.path))
    worker = feed.worker("jobs")
    try:

        async def main() -> None:
            for i in range(100):
                task = asyncio.ensure_future(worker.read_async())
                for _ in range(i % 3):
                    await asyncio.sleep(0)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert header.idle()
                feed.write(b"m%d" % i)
                assert worker.try_read() == b"m%d" % i  # usable at once

        run(main())
        assert threading.active_count() == threads
        assert worker.try_read() is None
    finally:
        header.close()
        worker.close()


def test_cancel_worker_during_delivery_loses_and_repeats_nothing(
    run: Any, feed: RingBuffer
) -> None:
    """As for a ring: a worker cancelled 0-3 loop steps after the write it
    waited for either returned the message or left it to the group (the
    next read, its own here, takes it)."""
    rng = random.Random(17)
    outcomes = {"delivered": 0, "cancelled": 0}
    header = Header(pathlib.Path(feed.path))
    worker = feed.worker("jobs")
    try:

        async def main() -> None:
            for i in range(300):
                task = asyncio.ensure_future(worker.read_async())
                await asyncio.sleep(0)
                await asyncio.sleep(0)  # armed and waiting now
                message = b"d%d" % i
                feed.write(message)
                for _ in range(rng.randrange(4)):
                    await asyncio.sleep(0)
                task.cancel()
                try:
                    got = await task
                except asyncio.CancelledError:
                    outcomes["cancelled"] += 1
                    assert worker.try_read() == message
                else:
                    outcomes["delivered"] += 1
                    assert got == message
                assert worker.try_read() is None
                assert header.idle()

        run(main())
        assert outcomes["delivered"] + outcomes["cancelled"] == 300
    finally:
        header.close()
        worker.close()


def test_worker_timeout_close_and_idle_cpu(run: Any, feed: RingBuffer) -> None:
    header = Header(pathlib.Path(feed.path))
    worker = Worker(feed.path, "jobs")
    try:

        async def idle() -> None:
            with pytest.raises(Timeout):
                await worker.read_async(timeout=2.0)

        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.monotonic()
        run(idle())
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        # A worker wakes every 100 ms (rescues need a look): still idle.
        assert cpu < 0.02 * wall, f"{cpu:.4f} s CPU over {wall:.2f} s"
        assert header.idle()

        async def closed() -> None:
            reader = asyncio.ensure_future(worker.read_async())
            loop_reader = asyncio.ensure_future(_collect(worker))
            await asyncio.sleep(0.01)
            worker.close()
            with pytest.raises(Closed):
                await reader
            assert await loop_reader == []

        run(closed())
        assert header.idle()
    finally:
        header.close()
        worker.close()
