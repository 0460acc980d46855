"""The Python worker of the cross-language pool test (pool_interop_test.py).

  pool_py.py PATH --spec FILE --scenario NAME --producers N --group NAME
             --ready FILE --done FILE [--batch K] [--pause SECONDS]

It joins group NAME of the fan-out ring at PATH (``Worker``, at-least-once,
no hold timeout), creates the ready file, and takes up to K messages per
read call (``read_many``) until the done file exists and a read then finds
nothing to take. Each message is processed: checked to be exactly the
scenario's tagged message of its producer and sequence number (so its CRC-32
too), then --pause seconds are slept (simulated work). After processing, one
line per message goes to stdout,

  PRODUCER SEQ LENGTH CRC32

(CRC32 the message's own CRC field, %08x), written before the next read call
releases the batch. Exit status: 0 done, 1 a wrong message, 2 any other
error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import scenario
from mmap_ringbuffer import Timeout, Worker


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pool_py.py")
    parser.add_argument("path")
    parser.add_argument("--spec", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--producers", type=int, required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--done", required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.0)
    return parser.parse_args()


def main() -> int:
    args = parse()
    spec = scenario.load(args.spec, args.scenario)
    processed = 0
    with Worker(args.path, args.group) as worker:
        open(args.ready, "w").close()
        idle_since = time.monotonic()
        while True:
            # Seen before the read: if nothing is then left to take, all is taken.
            done = os.path.exists(args.done)
            try:
                batch = worker.read_many(args.batch, timeout=0.05)
            except Timeout:
                batch = []
            if not batch:
                if done:
                    break
                if time.monotonic() - idle_since > scenario.TIMEOUT_SECONDS:
                    print("pool_py: no message for too long", file=sys.stderr)
                    return 2
                continue
            idle_since = time.monotonic()
            lines = []
            for message in batch:
                producer, seq = message[0], int.from_bytes(message[1:5], "little")
                if (
                    producer >= args.producers
                    or seq >= spec.count
                    or message != spec.tagged_message(producer, seq)
                ):
                    print(
                        f"pool_py: message of producer {producer} seq {seq} "
                        f"({len(message)} bytes) is not the scenario's",
                        file=sys.stderr,
                    )
                    return 1
                if args.pause > 0:
                    time.sleep(args.pause)
                crc = int.from_bytes(message[-4:], "little")
                lines.append(f"{producer} {seq} {len(message)} {crc:08x}\n")
            # Printed after processing, before the next read releases the batch.
            sys.stdout.write("".join(lines))
            sys.stdout.flush()
            processed += len(batch)
        worker.ack()
    print(f"pool_py: {processed} messages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
