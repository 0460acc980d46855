"""The Python side of the golden-vector test: for every NAME.json in a
directory, opens a copy of NAME.ring (reading moves the consumer position, so
the committed file is never opened) and reads exactly the listed messages, or
checks that opening raises the listed error.

    check_vectors.py VECTORS_DIR
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import tempfile

from mmap_ringbuffer import RingBuffer, VersionError


def check_vector(description_path: str, scratch: str) -> None:
    with open(description_path, encoding="utf-8") as f:
        description = json.load(f)
    source = os.path.join(os.path.dirname(description_path), description["file"])
    copy = os.path.join(scratch, description["file"])
    shutil.copyfile(source, copy)
    error = description["open_error"]
    if error is not None:
        if error != "version":
            raise AssertionError(f"unsupported open_error {error!r}")
        try:
            RingBuffer.open(copy).close()
        except VersionError:
            return
        raise AssertionError("opened without VersionError")
    with RingBuffer.open(copy) as ring:
        if ring.capacity != description["capacity"]:
            raise AssertionError(f"capacity {ring.capacity}")
        fanout = description.get("mode") == "fanout"
        if ring.is_fanout != fanout:
            raise AssertionError(f"is_fanout {ring.is_fanout}")
        if not fanout:
            check_messages(ring, description)
            return
        check_subscribers(ring, description)
        if ring.stats().consumer_position != description["release_position"]:
            raise AssertionError(f"release position {ring.stats().consumer_position}")
    # What a reader resuming the named subscriber gets.
    with RingBuffer.open(copy) as ring, ring.subscribe(description["resume"]) as sub:
        check_messages(sub, description)


def check_subscribers(ring: RingBuffer, description: dict) -> None:
    got = ring.subscribers()
    want = description["subscribers"]
    if len(got) != len(want):
        raise AssertionError(f"{len(got)} subscribers, want {len(want)}")
    for info, entry in zip(got, want):
        seen = {
            "index": info.index,
            "name": info.name or "",
            "lossy": info.lossy,
            "state": int(info.state),
            "position": info.position,
            "lag_messages": info.lag_messages,
        }
        if seen != entry:
            raise AssertionError(f"subscriber {seen}, want {entry}")


def check_messages(reader, description: dict) -> None:
    for index, encoded in enumerate(description["messages"]):
        got = reader.try_read()
        want = bytes.fromhex(encoded)
        if got != want:
            raise AssertionError(f"message {index}: got {got!r}, want {want!r}")
    extra = reader.try_read()
    if extra is not None:
        raise AssertionError(
            f"{len(description['messages'])} messages expected, then {extra!r}"
        )


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: check_vectors.py VECTORS_DIR", file=sys.stderr)
        return 2
    names = sorted(glob.glob(os.path.join(sys.argv[1], "*.json")))
    if not names:
        print(f"no vectors in {sys.argv[1]}", file=sys.stderr)
        return 1
    failed = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            vector = os.path.basename(name)[: -len(".json")]
            try:
                check_vector(name, scratch)
            except Exception as failure:  # report every vector, then fail
                print(f"py vectors: {vector}: {failure!r}", file=sys.stderr)
                failed.append(vector)
                continue
            print(f"py vectors: {vector} OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
