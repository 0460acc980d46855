"""asyncio: waiting for a ring in the event loop, without a thread.

A handle's doorbell descriptor (mrb_doorbell_fd) is watched with the loop's
add_reader; arming (mrb_arm_read / mrb_arm_write) drains it, re-checks the
ring and registers the doorbell, so a message committed after the check rings
it and one committed before is seen by the check. Between a wake-up and the
read that follows there is no await: a cancelled coroutine has consumed
nothing, and nothing stays behind (the doorbell is disarmed, the reader
removed). Works with any loop that implements add_reader (asyncio's own on
Unix, uvloop).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, Callable, Dict, Optional, Set

from ._errors import error_for
from ._mrb_cffi import ffi, lib

_ETIMEDOUT = lib.MRB_ETIMEDOUT
READ = lib.MRB_DOORBELL_READ
WRITE = lib.MRB_DOORBELL_WRITE

_monotonic = time.monotonic


class Bell:
    """One doorbell descriptor watched in one loop: every future waiting on
    it is resolved when it becomes readable. The descriptor is watched only
    while someone waits (add_reader is level-triggered, and the arming that
    follows a wake-up drains it)."""

    __slots__ = ("loop", "fd", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self.loop = loop
        self.fd = fd
        self.waiters: Set["asyncio.Future[None]"] = set()

    def wait(self) -> "asyncio.Future[None]":
        fut: "asyncio.Future[None]" = self.loop.create_future()
        if not self.waiters:
            self.loop.add_reader(self.fd, self._ring)
        self.waiters.add(fut)
        return fut

    def _ring(self) -> None:
        waiters, self.waiters = self.waiters, set()
        self.loop.remove_reader(self.fd)
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def discard(self, fut: "asyncio.Future[None]") -> None:
        """Forgets ``fut`` (done or given up); the last waiter gone, stops
        watching. Nothing for a future no longer there (rung, closed)."""
        if fut in self.waiters:
            self.waiters.remove(fut)
            if not self.waiters:
                self.loop.remove_reader(self.fd)

    def close(self, exc: BaseException) -> None:
        """Stops watching (before the handle closes the descriptor) and
        fails the waiters with ``exc``."""
        waiters, self.waiters = self.waiters, set()
        if waiters:
            self.loop.remove_reader(self.fd)
        for fut in waiters:
            if not fut.done():
                fut.set_exception(exc)


def _wake(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


class Waiter:
    """The event-loop waits of one handle: a Bell per side (READ, WRITE)
    for the loop it was last used in."""

    __slots__ = ("ring", "errors", "bells", "timeout_ms")

    def __init__(self, ring: Any, errors: Callable[[int], Exception]) -> None:
        self.ring = ring
        self.errors = errors
        self.bells: Dict[int, Bell] = {}
        self.timeout_ms = ffi.new("int *")

    def bell(self, which: int) -> Bell:
        loop = asyncio.get_running_loop()
        bell = self.bells.get(which)
        if bell is not None and bell.loop is loop:
            return bell
        fd = lib.mrb_doorbell_fd(self.ring, which)
        if fd < 0:
            raise self.errors(fd)
        if bell is not None and bell.waiters:
            raise RuntimeError("the ring is already awaited in another event loop")
        bell = self.bells[which] = Bell(loop, fd)
        return bell

    async def wait(self, which: int, arm: Callable[[], int], until: float) -> None:
        """Returns when the ring may be ready for side ``which`` (ready
        already, rung, or the bound arming asked for passed): the caller
        tries again. Raises Timeout once ``until`` (monotonic) has passed,
        the ring's errors, and CancelledError (disarmed: producers do not
        ring for a waiter that is gone)."""
        bell = self.bell(which)
        rc = arm()
        if rc == 1:
            return
        if rc < 0:
            raise self.errors(rc)
        wait_s = self.timeout_ms[0] / 1000.0
        if until != math.inf:
            remaining = until - _monotonic()
            if remaining <= 0:
                lib.mrb_disarm(self.ring, which)
                raise error_for(_ETIMEDOUT)
            wait_s = min(wait_s, remaining)
        fut = bell.wait()
        timer = bell.loop.call_later(wait_s, _wake, fut)
        try:
            await fut
        except BaseException:
            lib.mrb_disarm(self.ring, which)
            raise
        finally:
            timer.cancel()
            # Woken by the timer (the bound, the deadline), cancelled: the
            # bell no longer holds it, so a later wait in another loop is not
            # taken for a concurrent one.
            bell.discard(fut)

    def close(self, exc: BaseException) -> None:
        for bell in self.bells.values():
            bell.close(exc)
        self.bells.clear()


def deadline_of(timeout: Optional[float]) -> float:
    """The monotonic deadline of an async call's timeout (None: none)."""
    if timeout is None or timeout == math.inf:
        return math.inf
    return _monotonic() + timeout
