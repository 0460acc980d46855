"""Subscribers of fan-out rings: modes, durable fan-out, named resume (after
close and after a killed process), NameBusy, lossy laps, eviction, the
listing, the read calls, iteration and context managers. The exact figures
follow core/test/subscriber_test.cc: a 40-byte message is a 64-byte record."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import threading
import time
from typing import Any, List, Optional

import pytest

import mmap_ringbuffer
from mmap_ringbuffer import (
    BufferFull,
    Closed,
    ForkedError,
    InvalidArgument,
    Lapped,
    ModeError,
    NameBusy,
    NoSubscriberSlot,
    RingBuffer,
    RingExists,
    Subscriber,
    SubscriberInfo,
    SubscriberState,
    subscribe,
    unsubscribe,
)
from mmap_ringbuffer._mrb_cffi import lib
from subscriber_workers import message, read_then_hang, seq_of

CTX = multiprocessing.get_context("spawn")
RECORD = 64  # bytes of ring a 40-byte message takes


@pytest.fixture
def fan(ring_path: pathlib.Path) -> Any:
    ring = RingBuffer.create(ring_path, 4096, fanout=True)
    try:
        yield ring
    finally:
        ring.close()


def fill(rb: RingBuffer, first: int) -> int:
    """Writes messages first, first+1, ... until the ring is full; returns
    the next sequence number."""
    seq = first
    while True:
        try:
            rb.write(message(seq))
        except BufferFull:
            return seq
        seq += 1


def seqs(sub: Subscriber, count: Optional[int] = None) -> List[int]:
    """The sequence numbers of the next ``count`` messages (all available
    ones when None)."""
    if count is None:
        return [seq_of(m) for m in sub]
    return [seq_of(sub.read()) for _ in range(count)]


def test_modes(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 4096) as queue:
        assert not queue.is_fanout
        # A durable subscriber needs a fan-out ring; a lossy tap does not.
        with pytest.raises(ModeError) as info:
            queue.subscribe()
        assert info.value.code == lib.MRB_EMODE
        with queue.subscribe(lossy=True) as tap:
            queue.write(message(1))
            assert seqs(tap) == [1]
            assert seq_of(queue.read()) == 1  # the consumer is unaffected
        # Reopening with the other mode is another ring.
        with pytest.raises(RingExists):
            RingBuffer.create(ring_path, 4096, fanout=True)
    with RingBuffer.create(ring_path, 4096, fanout=True, remove=True) as fan:
        assert fan.is_fanout
        assert fan.subscribers() == []
        fan.write(message(2))
        for call in (fan.read, fan.try_read, lambda: fan.read_many(4), fan.peek):
            with pytest.raises(ModeError):
                call()
        with pytest.raises(ModeError):
            fan.recover()
    with RingBuffer.open(ring_path) as reopened:  # keeps its mode
        assert reopened.is_fanout
    with pytest.raises(RingExists):
        RingBuffer.create(ring_path, 4096)


def test_durable_fan_out_bounded_by_the_slowest(fan: RingBuffer) -> None:
    fast, slow = fan.subscribe(), fan.subscribe()
    written = fill(fan, 0)
    assert written == 4096 // RECORD
    # Each sees every message, in order; the ring stays full for the slow one.
    assert seqs(fast) == list(range(written))
    with pytest.raises(BufferFull):
        fan.write(message(written))
    assert seqs(slow, 10) == list(range(10))
    # Exactly the 10 records the slow one read fit again.
    assert fill(fan, written) == written + 10
    assert seqs(fast) == list(range(written, written + 10))
    assert seqs(slow) == list(range(10, written + 10))
    slow.close()
    fast.close()
    stats = fan.stats()
    assert stats.producer_position == stats.consumer_position


def test_unnamed_joins_at_the_live_end_from_oldest_sees_the_backlog(
    fan: RingBuffer,
) -> None:
    with fan.subscribe() as holder:  # holds the backlog in the ring
        for seq in range(5):
            fan.write(message(seq))
        with fan.subscribe() as live, fan.subscribe("old", from_oldest=True) as old:
            fan.write(message(5))
            assert seqs(live) == [5]
            assert seqs(old) == [0, 1, 2, 3, 4, 5]
        assert seqs(holder) == [0, 1, 2, 3, 4, 5]


def test_named_resume_after_close(fan: RingBuffer, ring_path: pathlib.Path) -> None:
    recorder = subscribe(ring_path, "recorder")
    with pytest.raises(NameBusy) as busy:
        fan.subscribe("recorder")
    assert busy.value.code == lib.MRB_ENAMEBUSY
    for seq in range(20):
        fan.write(message(seq))
    assert seqs(recorder, 7) == list(range(7))
    recorder.close()
    for seq in range(20, 30):
        fan.write(message(seq))
    [entry] = fan.subscribers()
    assert entry.name == "recorder"
    assert entry.state == SubscriberState.DETACHED
    assert entry.pid == 0 and not entry.alive
    assert entry.lag_messages == 23
    assert entry.lag_bytes == 23 * RECORD
    assert entry.messages_read == 7
    assert entry.bytes_read == 7 * 40
    with fan.subscribe("recorder") as again:
        assert seqs(again) == list(range(7, 30))
        info = again.info()
        assert info.state == SubscriberState.ACTIVE
        assert info.lag_bytes == 0
        assert info.messages_read == 30


def kill_after_reading(
    path: pathlib.Path, name: str, count: int, held: int = 0
) -> List[int]:
    """Runs read_then_hang in a child process, kills it (SIGKILL) once it
    has read, and returns what it read."""
    report = CTX.Queue()
    child = CTX.Process(
        target=read_then_hang, args=(str(path), name, count, held, report)
    )
    child.start()
    try:
        got: List[int] = report.get(timeout=120)
        # The name is held by the live child.
        with pytest.raises(NameBusy):
            subscribe(path, name)
    finally:
        child.kill()
        child.join(120)
    assert child.exitcode == -9
    return got


def test_named_resume_after_the_process_was_killed(
    fan: RingBuffer, ring_path: pathlib.Path
) -> None:
    fan.subscribe("survivor").close()  # joins now: sees everything after
    for seq in range(30):
        fan.write(message(seq))
    assert kill_after_reading(ring_path, "survivor", 12) == list(range(12))
    [entry] = fan.subscribers()
    assert entry.messages_read == 12
    assert entry.lag_messages == 18
    # The dead child's messages wait for its name (the default policy).
    fan.write(message(30))
    with subscribe(ring_path, "survivor") as again:
        assert again.info().pid == multiprocessing.current_process().pid
        assert seqs(again) == list(range(12, 31))


def test_held_messages_are_delivered_again_after_a_kill(
    fan: RingBuffer, ring_path: pathlib.Path
) -> None:
    fan.subscribe("forwarder").close()
    for seq in range(20):
        fan.write(message(seq))
    # Reads 10, releases through the 6th: 4 were read but not released.
    got = kill_after_reading(ring_path, "forwarder", 10, held=4)
    assert got == list(range(10))
    with subscribe(ring_path, "forwarder") as again:
        assert seqs(again) == list(range(6, 20))


def test_hold_and_release_through(fan: RingBuffer, ring_path: pathlib.Path) -> None:
    sub = fan.subscribe("bridge")
    for seq in range(8):
        fan.write(message(seq))
    sub.hold()
    got = sub.read_many_at(100)
    assert [seq_of(m) for _, m in got] == list(range(8))
    assert [p for p, _ in got] == [i * RECORD for i in range(8)]
    sub.release_through(got[2][0])
    assert sub.info().position == 3 * RECORD
    sub.close()
    with subscribe(ring_path, "bridge") as again:
        assert seqs(again) == list(range(3, 8))
    with fan.subscribe(lossy=True) as tap:
        with pytest.raises(InvalidArgument):
            tap.hold()


def test_lossy_tap_lapped_counts_bytes(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 1024, fanout=True) as fan:
        tap = fan.subscribe("tap", lossy=True)
        durable = fan.subscribe()
        # 4.5 laps of 64-byte records (16 per lap), read by the durable one.
        for seq in range(72):
            fan.write(message(seq))
            assert seq_of(durable.read()) == seq
        # Producer position 72 * 64 = 4608; the oldest lap boundary is 4096,
        # where message 64 starts: 4096 bytes were lost, silently.
        assert seq_of(tap.read()) == 64
        info = tap.info()
        assert info.lossy and not info.evictable
        assert info.lost_bytes == 4096
        assert info.lost_events == 1
        assert seqs(tap) == list(range(65, 72))
        assert tap.try_read() is None
        # A lossy tap cannot read in place.
        with pytest.raises(InvalidArgument):
            tap.peek()
        info = tap.info()
        assert info.messages_read == 8
        assert info.bytes_read == 8 * 40
        # delivered + lost = produced since it joined, in ring bytes.
        assert info.messages_read * RECORD + info.lost_bytes == 72 * RECORD
        tap.close()
        durable.close()


def test_eviction_raises_lapped_once(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 1024, fanout=True) as fan:
        slow = fan.subscribe("slow", evict_after=0.05)
        fast = fan.subscribe()
        assert slow.info().evict_after_ns == 50_000_000
        assert slow.info().evictable
        written = fill(fan, 0)
        assert written == 16
        assert seqs(fast) == list(range(16))
        # Held back by "slow", then (after its timeout, judged by producers
        # short of space) free again.
        refused = 0
        while True:
            try:
                fan.write(message(written))
                break
            except BufferFull:
                refused += 1
                assert refused < 20000, "never evicted"
                time.sleep(0.001)
        assert refused > 0
        assert seqs(fast) == [written]
        written += 1
        for _ in range(40):
            fan.write(message(written))
            assert seqs(fast) == [written]
            written += 1
        info = slow.info()
        assert info.state == SubscriberState.EVICTED
        assert info.evictions == 1
        # Its next read says so, once; then messages again, intact, in order.
        with pytest.raises(Lapped) as lapped:
            slow.read()
        assert lapped.value.code == lib.MRB_ELAPPED
        rest = seqs(slow)
        first = rest[0]
        assert first > 0
        assert rest == list(range(first, written))
        info = slow.info()
        assert info.state == SubscriberState.ACTIVE
        assert info.lost_bytes == first * RECORD
        assert lapped.value.lost_bytes == info.lost_bytes
        assert lapped.value.lost_events == info.lost_events == 1
        # An evictable subscriber validates every copy: no reading in place.
        fan.write(message(written))
        with pytest.raises(InvalidArgument):
            slow.peek()
        slow.close()
        fast.close()


def test_iteration_and_context_manager(fan: RingBuffer) -> None:
    with fan.subscribe("it") as sub:
        assert isinstance(sub, Subscriber)
        assert sub.max_message_size == fan.max_message_size
        assert sub.capacity == fan.capacity
        for seq in range(10):
            fan.write(message(seq))
        assert [seq_of(m) for m in sub] == list(range(10))
        assert list(sub) == []
        with pytest.raises(mmap_ringbuffer.BufferEmpty):
            sub.read()
        with pytest.raises(mmap_ringbuffer.Timeout):
            sub.read(timeout=0)
        fan.write(message(10))
        assert seq_of(sub.read(timeout=5)) == 10
        assert [e.name for e in fan.subscribers()] == ["it"]
    assert sub.closed
    assert "closed" in repr(sub)
    with pytest.raises(Closed):
        sub.read()
    with pytest.raises(Closed):
        sub.info()
    # A closed named subscriber stays in the table, detached.
    assert [e.state for e in fan.subscribers()] == [SubscriberState.DETACHED]
    with fan.subscribe() as unnamed:
        assert len(fan.subscribers()) == 2
    assert len(fan.subscribers()) == 1
    unsubscribe(fan.path, "it")
    assert fan.subscribers() == []
    del unnamed


def test_every_read_call_on_a_durable_subscriber(fan: RingBuffer) -> None:
    sub = fan.subscribe()
    for seq in range(6):
        fan.write(message(seq, 40 + seq))
    assert seq_of(sub.read()) == 0
    assert seq_of(sub.try_read() or b"") == 1
    target = bytearray(100)
    n = sub.read_into(target)
    assert seq_of(bytes(target[:n])) == 2
    with sub.peek() as peeked:
        assert seq_of(peeked.tobytes()) == 3
    assert [seq_of(m) for m in sub.read_many(10, timeout=1)] == [4, 5]
    # A message larger than read()'s scratch buffer.
    big = message(6, 100_000)
    with RingBuffer.create(fan.path + ".big", 1 << 20, fanout=True) as large:
        with large.subscribe() as reader:
            large.write(big)
            assert reader.read() == big
    RingBuffer.remove(fan.path + ".big")
    # A subscriber handle can also write; it reads its own messages too.
    sub.write(message(7))
    assert seqs(sub) == [7]
    sub.close()


def test_unsubscribe(fan: RingBuffer, ring_path: pathlib.Path) -> None:
    fan.subscribe("gone").close()
    written = fill(fan, 0)
    assert written == 4096 // RECORD
    with pytest.raises(FileNotFoundError):
        unsubscribe(ring_path, "nobody")
    with pytest.raises(FileNotFoundError):
        unsubscribe(ring_path.with_name("missing.ring"), "gone")
    with fan.subscribe("live") as live:
        with pytest.raises(NameBusy):
            unsubscribe(ring_path, "live")
        unsubscribe(ring_path, "gone")
        # Only "live" gates now, and it joined at the live end.
        fan.write(message(written))
        assert seqs(live) == [written]


def test_bad_options(fan: RingBuffer) -> None:
    with pytest.raises(InvalidArgument):
        fan.subscribe(lossy=True, evict_after=1)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            fan.subscribe(evict_after=bad)
    with pytest.raises(TypeError):
        fan.subscribe(evict_after="1")  # type: ignore[arg-type]
    for name in ("", "x" * 32, "a\0b", "é" * 16):
        with pytest.raises(ValueError):
            fan.subscribe(name)
    with pytest.raises(TypeError):
        fan.subscribe(b"bytes")  # type: ignore[arg-type]
    with fan.subscribe("y" * 31) as longest:
        assert longest.info().name == "y" * 31
    with fan.subscribe("é" * 15) as utf8:
        assert utf8.info().name == "é" * 15


def test_no_subscriber_slot(fan: RingBuffer) -> None:
    subs = [fan.subscribe() for _ in range(lib.MRB_MAX_SUBSCRIBERS)]
    with pytest.raises(NoSubscriberSlot) as info:
        fan.subscribe()
    assert info.value.code == lib.MRB_ENOSUB
    listed = fan.subscribers()
    assert len(listed) == lib.MRB_MAX_SUBSCRIBERS
    assert all(isinstance(e, SubscriberInfo) for e in listed)
    assert sorted(e.index for e in listed) == list(range(lib.MRB_MAX_SUBSCRIBERS))
    subs.pop().close()
    fan.subscribe().close()
    for sub in subs:
        sub.close()


def test_readonly_handle_lists_subscribers(
    fan: RingBuffer, ring_path: pathlib.Path
) -> None:
    with fan.subscribe("watched"):
        with RingBuffer.open(ring_path, readonly=True) as watcher:
            assert watcher.is_fanout
            assert [e.name for e in watcher.subscribers()] == ["watched"]


def test_blocking_reads_wake_on_a_write_from_another_thread(fan: RingBuffer) -> None:
    sub = fan.subscribe()
    tap = fan.subscribe(lossy=True)

    def write_later() -> None:
        time.sleep(0.05)
        fan.write(message(1))
        time.sleep(0.05)
        fan.write(message(2))

    writer = threading.Thread(target=write_later)
    writer.start()
    try:
        assert seq_of(sub.read(timeout=30)) == 1
        assert seq_of(tap.read(timeout=30)) == 1
        assert [seq_of(m) for m in sub.read_many(8, timeout=30)] == [2]
        assert [seq_of(m) for m in tap.read_many(8, timeout=30)] == [2]
    finally:
        writer.join()
    sub.close()
    tap.close()


def forked_child_reads(sub: Subscriber, results: Any) -> None:
    try:
        sub.read()
        results.put("read")
    except ForkedError:
        results.put("ForkedError")


def test_an_inherited_subscriber_is_refused_in_a_forked_child(fan: RingBuffer) -> None:
    sub = fan.subscribe("parent")
    fan.write(message(0))
    results = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(
        target=forked_child_reads, args=(sub, results)
    )
    child.start()
    assert results.get(timeout=60) == "ForkedError"
    child.join(60)
    assert child.exitcode == 0
    # The parent keeps its subscription and its message.
    assert seqs(sub) == [0]
    assert fan.subscribers()[0].pid == os.getpid()
    sub.close()


def test_eviction_reported_once_by_batch_reads(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 1024, fanout=True) as fan:
        slow = fan.subscribe(evict_after=0.01)
        fast = fan.subscribe()
        written = fill(fan, 0)
        assert seqs(fast) == list(range(written))
        refused = 0
        while True:
            try:
                fan.write(message(written))
                break
            except BufferFull:
                refused += 1
                assert refused < 20000, "never evicted"
                time.sleep(0.001)
        written += 1
        for _ in range(40):
            fan.write(message(written))
            written += 1
            assert len(seqs(fast)) >= 1
        # Batch reads: Lapped once, in whichever call finds the eviction;
        # then the oldest messages left, intact and in order.
        got: List[int] = []
        lapped = 0
        while True:
            try:
                batch = slow.read_many(7)
            except Lapped:
                lapped += 1
                continue
            if not batch:
                break
            got += [seq_of(m) for m in batch]
        assert lapped == 1
        assert got == list(range(got[0], written))
        assert got[0] > 0
        assert slow.info().lost_bytes == got[0] * RECORD
        slow.close()
        fast.close()
