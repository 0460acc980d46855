"""The Python side of the cross-language fan-out test (fanout_interop_test.py).

  fanout_py.py produce PATH --spec FILE --scenario NAME --producer ID --barrier DIR
  fanout_py.py subscribe PATH --spec FILE --scenario NAME --producers N
               --name NAME --log FILE --done FILE [--linger SECONDS]

produce opens the fan-out ring at PATH (it must exist) and writes the
scenario's tagged messages of producer ID after the start barrier.

subscribe joins as the named durable subscriber NAME, holding (it frees
messages only through release_through), and appends to the log:

  S POSITION                  once joined: where it resumes (info().position)
  B FIRST LAST P:SEQ ...      a batch read (ring positions of its first and
                              last message), written before it is released
  R                           after release_through(LAST) returned

so that a checker can tell, for a process killed at any point, exactly which
messages were released: a B line without its R was released if and only if
the next process resumed past it. Every message is checked against the
scenario (exact bytes). It exits 0 once the done file exists and the ring is
drained; 1 on a wrong message, 2 on any other error. Killing it (SIGKILL) at
any moment is part of the test: it pauses --linger seconds before and after
each release, where the kills are the most telling.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import scenario
from mmap_ringbuffer import RingBuffer, subscribe

BATCH = 64


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fanout_py.py")
    parser.add_argument("role", choices=("produce", "subscribe"))
    parser.add_argument("path")
    parser.add_argument("--spec", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--producer", type=int, default=0)
    parser.add_argument("--producers", type=int, default=1)
    parser.add_argument("--barrier")
    parser.add_argument("--name")
    parser.add_argument("--log")
    parser.add_argument("--done")
    # Pauses around each release, so that the driver's kills often land
    # between reading a batch and releasing it, or between releasing it and
    # logging that; longer ones also pace a process that is to be killed.
    parser.add_argument("--linger", type=float, default=0.0003)
    return parser.parse_args()


def produce(args: argparse.Namespace, spec: scenario.Scenario) -> int:
    with RingBuffer.open(args.path) as ring:
        scenario.barrier_wait(args.barrier, args.producer)
        for seq in range(spec.count):
            ring.write(
                spec.tagged_message(args.producer, seq),
                timeout=scenario.TIMEOUT_SECONDS,
            )
    return 0


def run_subscriber(args: argparse.Namespace, spec: scenario.Scenario) -> int:
    log = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sub = subscribe(args.path, args.name)
    os.write(log, f"S {sub.info().position}\n".encode())
    sub.hold()
    idle_since = time.monotonic()
    while True:
        # Seen before the read: if the ring is then empty, it is drained.
        done = os.path.exists(args.done)
        batch = sub.read_many_at(BATCH)
        if not batch:
            if done:
                return 0
            if time.monotonic() - idle_since > scenario.TIMEOUT_SECONDS:
                print("fanout_py subscribe: no message for too long", file=sys.stderr)
                return 2
            time.sleep(0.001)
            continue
        idle_since = time.monotonic()
        tags = []
        for _, message in batch:
            producer, seq = message[0], int.from_bytes(message[1:5], "little")
            if (
                producer >= args.producers
                or seq >= spec.count
                or message != spec.tagged_message(producer, seq)
            ):
                print(
                    f"fanout_py subscribe: wrong message (producer {producer}, "
                    f"seq {seq}, {len(message)} bytes)",
                    file=sys.stderr,
                )
                return 1
            tags.append(f"{producer}:{seq}")
        first, last = batch[0][0], batch[-1][0]
        os.write(log, f"B {first} {last} {' '.join(tags)}\n".encode())
        time.sleep(args.linger)  # a kill lands here at times: read, not released
        sub.release_through(last)
        time.sleep(args.linger)  # or here: released, not yet logged as such
        os.write(log, b"R\n")


def main() -> int:
    args = parse()
    spec = scenario.load(args.spec, args.scenario)
    if args.role == "produce":
        return produce(args, spec)
    return run_subscriber(args, spec)


if __name__ == "__main__":
    sys.exit(main())
