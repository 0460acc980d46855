#!/bin/sh
# --framed: binary messages (every byte value, NUL and newline included)
# round-trip exactly; malformed frames give exit 8 or 9.
set -eu
. "$(dirname "$0")/testlib.sh"

ring=$WORK/ring
"$MRB" create "$ring" --size 64K >/dev/null
max=$("$MRB" stat "$ring" --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["max_message_size"])')

# 50 frames: lengths 1..(several KiB) and the maximum message size, payloads
# from a fixed-seed generator covering all 256 byte values.
"$PYTHON" - "$WORK/frames" "$max" <<'PY'
import random, struct, sys
rng = random.Random(7)
lengths = [1, 2, 255, 256, 4096] + [rng.randrange(1, 3000) for _ in range(44)]
lengths.append(int(sys.argv[2]))
with open(sys.argv[1], "wb") as out:
    for n in lengths:
        payload = bytes(rng.randrange(256) for _ in range(n))
        if n >= 256:
            payload = bytes(range(256)) + payload[256:]
        out.write(struct.pack("<I", n) + payload)
PY
# The frames are larger than the ring together, so write and read in turns:
# --block waits for the concurrent reader to make space.
"$MRB" read "$ring" --framed --count 50 --follow >"$WORK/frames.out" &
reader=$!
"$MRB" write "$ring" --framed --block <"$WORK/frames"
wait $reader || fail "reader exited $?"
assert_same_file "$WORK/frames" "$WORK/frames.out" "framed round trip"

# Line output of a binary message is the bytes plus a newline.
printf '\003\000\000\000a\000b' | "$MRB" write "$ring" --framed
"$MRB" read "$ring" >"$WORK/line.out"
printf 'a\000b\n' >"$WORK/line.expected"
assert_same_file "$WORK/line.expected" "$WORK/line.out" "binary message in line mode"

# Malformed input. Frames before the bad one are written.
printf '\001\000\000\000z\002\000' >"$WORK/short-prefix"
expect_exit 9 "$MRB" write "$ring" --framed <"$WORK/short-prefix"
printf '\005\000\000\000abc' >"$WORK/short-payload"
expect_exit 9 "$MRB" write "$ring" --framed <"$WORK/short-payload"
printf '\000\000\000\000' >"$WORK/zero"
expect_exit 8 "$MRB" write "$ring" --framed <"$WORK/zero"
"$PYTHON" -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<I", int(sys.argv[1]) + 1) + b"x" * (int(sys.argv[1]) + 1))' "$max" >"$WORK/too-big"
expect_exit 8 "$MRB" write "$ring" --framed <"$WORK/too-big"
"$MRB" read "$ring" --framed >"$WORK/after-bad"
printf '\001\000\000\000z' >"$WORK/after-bad.expected"
assert_same_file "$WORK/after-bad.expected" "$WORK/after-bad" "frames before a bad one"

# A line longer than the maximum message size: exit 8.
"$PYTHON" -c 'import sys; sys.stdout.write("y" * (int(sys.argv[1]) + 1) + "\n")' "$max" >"$WORK/long-line"
expect_exit 8 "$MRB" write "$ring" <"$WORK/long-line"

echo PASS
