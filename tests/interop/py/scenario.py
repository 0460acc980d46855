"""The interop scenarios (tests/interop/scenarios.txt, docs/INTEROP.md): the
messages a writer sends and a reader expects, computed from the scenario and
the message index alone so that every language agrees without sharing code."""

from __future__ import annotations

import argparse
import os
import struct
import time
import zlib
from dataclasses import dataclass

TAGGED_OVERHEAD = 9
# Blocking calls give up after this long: a dead partner fails the test
# instead of hanging it.
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str
    capacity: int
    count: int
    seed: int
    size_base: int
    size_mult: int
    size_mod: int

    def length(self, index: int) -> int:
        return self.size_base + (index * self.size_mult) % self.size_mod

    def max_message(self) -> int:
        body = self.size_base + self.size_mod - 1
        return body + TAGGED_OVERHEAD if self.kind == "tagged" else body

    def _pattern(self) -> bytes:
        # Any run of n <= max_message bytes counting up mod 256 from a start
        # below 256 is a slice of this.
        pattern = getattr(self, "_cached_pattern", None)
        if pattern is None:
            pattern = bytes(range(256)) * (self.max_message() // 256 + 2)
            object.__setattr__(self, "_cached_pattern", pattern)
        return pattern

    def stream_message(self, index: int) -> bytes:
        start = (self.seed + 7 * index) % 256
        return self._pattern()[start : start + self.length(index)]

    def tagged_message(self, producer: int, seq: int) -> bytes:
        start = (self.seed + 7 * seq + 31 * producer) % 256
        body = self._pattern()[start : start + self.length(seq)]
        head = struct.pack("<BI", producer, seq & 0xFFFFFFFF) + body
        return head + struct.pack("<I", zlib.crc32(head))


def load(spec_path: str, name: str) -> Scenario:
    with open(spec_path, encoding="utf-8") as spec:
        for line in spec:
            fields = line.split()
            if not fields or fields[0].startswith("#") or fields[0] != name:
                continue
            kind = fields[1]
            if kind not in ("stream", "stored", "tagged") or int(fields[7]) == 0:
                raise SystemExit(f"bad spec line for {name}")
            if kind == "stored":
                kind = "stream"  # only the driver runs it differently
            return Scenario(name, kind, *(int(f) for f in fields[2:8]))
    raise SystemExit(f"no scenario {name} in {spec_path}")


def parse_args(prog: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("path")
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--spec", default=os.environ.get("MRB_INTEROP_SPEC"))
    parser.add_argument("--producer", type=int, default=0)
    parser.add_argument("--producers", type=int, default=1)
    parser.add_argument("--barrier")
    # A reader's turn: messages FROM..TO-1 of a stream scenario.
    parser.add_argument("--from", dest="first", type=int, default=0)
    parser.add_argument("--to", dest="stop", type=int)
    # selector_reader.py: seconds to wait idle (measuring its CPU) before it
    # lets the producers of --barrier go.
    parser.add_argument("--idle", type=float, default=0.0)
    args = parser.parse_args()
    if args.spec is None:
        parser.error("--spec FILE (or MRB_INTEROP_SPEC) is required")
    return args


def barrier_wait(directory: str, producer: int) -> None:
    """Producer side of the start barrier: announce readiness, wait for "go"."""
    with open(os.path.join(directory, f"ready.{producer}"), "w"):
        pass
    go = os.path.join(directory, "go")
    while not os.path.exists(go):
        time.sleep(0.001)
