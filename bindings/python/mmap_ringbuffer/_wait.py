"""Blocking calls: the C waits, run in slices that come back to Python.

Every blocking method (write, write_many, read, read_many) waits through
:func:`wait_in_slices`: the C call waits at most one slice (GIL released),
then Python runs its signal handlers (Ctrl-C -> KeyboardInterrupt) and calls
again, until the call succeeds, fails, or the deadline passes.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Tuple

from ._errors import error_for
from ._mrb_cffi import lib

# Blocking calls wait in slices of at most this long and return to Python in
# between, so signal handlers (Ctrl-C -> KeyboardInterrupt) run promptly.
WAIT_SLICE_NS = 100_000_000

_EINTR = lib.MRB_EINTR
_ETIMEDOUT = lib.MRB_ETIMEDOUT
# "Not yet": what a wait returns when its slice ended without success.
_NOT_YET = frozenset((lib.MRB_ETIMEDOUT, lib.MRB_EFULL, lib.MRB_EEMPTY))

_monotonic = time.monotonic


def deadline(seconds: float) -> float:
    """The absolute monotonic deadline ``seconds`` from now (math.inf: none);
    ``seconds`` was checked by _args.timeout_seconds()."""
    return _monotonic() + seconds


def wait_in_slices(
    wait: Callable[..., int], args: Tuple[Any, ...], until: float
) -> int:
    """Calls ``wait(*args, timeout_ns)`` in slices until it returns anything
    but "not yet" (MRB_ETIMEDOUT, MRB_EFULL, MRB_EEMPTY; MRB_EINTR retries)
    and returns that; raises Timeout once ``until`` (a deadline()) passed.
    The last slice is a poll (timeout 0), so a deadline already passed still
    gets one try."""
    while True:
        if until == math.inf:
            wait_ns = WAIT_SLICE_NS
        else:
            remaining = until - _monotonic()
            wait_ns = (
                0
                if remaining <= 0
                else min(WAIT_SLICE_NS, max(1, int(remaining * 1e9)))
            )
        rc: int = wait(*args, wait_ns)
        if rc == _EINTR:
            continue
        if rc not in _NOT_YET:
            return rc
        if wait_ns == 0:
            raise error_for(_ETIMEDOUT)
