"""Interop reader (Python) waiting in a selectors loop of its own (not
asyncio) on the ring's doorbell descriptor: ring.doorbell_fd(), the drain,
arm_read(), select() loop of bindings/python/README.md. Tagged scenarios
only (every producer's messages exactly once, in its order, intact: the
checks of reader.py).

With --barrier DIR and --idle S it first waits S seconds on the empty ring
in the same loop while the producers are held at the barrier, and fails if
that cost more than 2% of a core (getrusage); then it lets them go (creates
DIR/go) and reads everything. Exit 1 on any mismatch."""

from __future__ import annotations

import os
import resource
import selectors
import sys
import time
from typing import Any, Coroutine

import scenario
from mmap_ringbuffer import RingBuffer
from reader import Mismatch, read_tagged


class SelectorReader:
    """The documented loop, one message at a time."""

    def __init__(self, ring: RingBuffer) -> None:
        self.ring = ring
        self.selector = selectors.DefaultSelector()
        self.fd = ring.doorbell_fd()
        self.selector.register(self.fd, selectors.EVENT_READ)
        self.waits = 0
        self.rung = 0

    def wait(self, timeout: float) -> None:
        self.waits += 1
        self.rung += len(self.selector.select(timeout))

    def next_message(self) -> bytes:
        give_up = time.monotonic() + scenario.TIMEOUT_SECONDS
        while True:
            message = self.ring.try_read()  # drain
            if message is not None:
                return message
            timeout = self.ring.arm_read()  # check (0.0: arrived meanwhile)
            if timeout:
                if time.monotonic() > give_up:
                    raise Mismatch(f"no message for {scenario.TIMEOUT_SECONDS} s")
                self.wait(timeout)  # wait

    def idle(self, seconds: float) -> float:
        """Waits ``seconds`` on the empty ring; returns the CPU share used."""
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.monotonic()
        until = start + seconds
        while (now := time.monotonic()) < until:
            message = self.ring.try_read()
            if message is not None:
                raise Mismatch("a message before the producers were let go")
            timeout = self.ring.arm_read()
            if timeout:
                self.wait(min(timeout, until - now))
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return cpu / wall

    def close(self) -> None:
        self.ring.disarm()
        self.selector.unregister(self.fd)
        self.selector.close()


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Runs a coroutine that never suspends (reader.py's checks over a read
    that waits in select(), not in an event loop)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the check suspended")


def main() -> int:
    args = scenario.parse_args("py selector_reader")
    spec = scenario.load(args.spec, args.scenario)
    if spec.kind != "tagged":
        raise SystemExit("selector_reader.py reads tagged scenarios only")
    note = ""
    with RingBuffer.create(args.path, spec.capacity) as ring:
        reader = SelectorReader(ring)

        async def read() -> bytes:
            return reader.next_message()

        try:
            if args.idle > 0:
                share = reader.idle(args.idle)
                note = f"; idle {args.idle:.1f} s: {100 * share:.2f}% CPU"
                if share >= 0.02:
                    raise Mismatch(f"idle waiting used {100 * share:.2f}% of a core")
            if args.barrier is not None:
                with open(os.path.join(args.barrier, "go"), "w"):
                    pass
            total, switches = run_sync(read_tagged(read, spec, args.producers))
            extra = ring.try_read()
            if extra is not None:
                raise Mismatch(
                    f"expected an empty ring at the end, got {len(extra)} bytes"
                )
        except Mismatch as failure:
            print(f"py selector_reader: {spec.name}: {failure}", file=sys.stderr)
            return 1
        finally:
            reader.close()
    count = spec.count * args.producers
    print(
        f"py selector_reader: {spec.name}: {count} messages, {total} bytes OK "
        f"({args.producers} producers, {switches} producer switches, "
        f"{reader.waits} selector waits, {reader.rung} rung{note})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
