#!/bin/sh
# SPDX-License-Identifier: MIT
# `go_interop subscribe`, the Go subscriber of the cross-language subscriber
# tests (tests/interop/go/subscribe.go), on its own: `mrb write` produces
# into a fan-out ring the subscriber created; the exact lines (index or
# producer and sequence, length, CRC-32), --count then a named resume with
# --stop, --ready, --tagged (and exit 1 on a bad CRC), a lossy join, the
# usage error and --timeout.
. tests/interop/testlib.sh
MRB=${MRB:-$INTEROP_ROOT/tools/mrb/mrb}

ring=$WORK/fanout.ring
"$GO_INTEROP" subscribe "$ring" --create 4096 --name rec --count 0 --ready "$WORK/ready" 2>/dev/null ||
	fail "subscribe --create"
[ -f "$WORK/ready" ] || fail "no ready file"
"$GO_INTEROP" subscribe "$ring" --lossy --count 0 2>/dev/null || fail "lossy join"

printf 'a\nbb\nccc\nSTOP\n' | "$MRB" write "$ring" || fail "mrb write"
got=$("$GO_INTEROP" subscribe "$ring" --name rec --count 2 2>"$WORK/err") || fail "first turn: $(cat "$WORK/err")"
[ "$got" = "0 1 e8b7be43
1 2 b5ae1bae" ] || fail "first turn printed: $got"
[ "$(cat "$WORK/err")" = "go subscribe: 2 messages, 0 stop messages, lost_bytes 0, lost_events 0" ] ||
	fail "first turn summary: $(cat "$WORK/err")"
# Named: the next process resumes after the last message printed.
got=$("$GO_INTEROP" subscribe "$ring" --name rec --stop STOP 2>"$WORK/err") || fail "second turn: $(cat "$WORK/err")"
[ "$got" = "0 3 2fbba4ed" ] || fail "second turn printed: $got"
[ "$(cat "$WORK/err")" = "go subscribe: 1 messages, 1 stop messages, lost_bytes 0, lost_events 0" ] ||
	fail "second turn summary: $(cat "$WORK/err")"

# Tagged messages (producer u8, sequence u32, body, CRC-32 of the rest):
# producer 2, sequences 7 and 8, then one whose CRC is wrong.
/usr/bin/python3 - "$WORK/frames" <<'EOF'
import struct, sys, zlib
out = b""
for seq, body, ok in ((7, b"xyz", True), (8, b"hello", True), (9, b"bad", False)):
    m = struct.pack("<BI", 2, seq) + body
    crc = zlib.crc32(m) ^ (0 if ok else 1)
    m += struct.pack("<I", crc)
    out += struct.pack("<I", len(m)) + m
open(sys.argv[1], "wb").write(out)
EOF
"$MRB" write --framed "$ring" <"$WORK/frames" || fail "mrb write --framed"
got=$("$GO_INTEROP" subscribe "$ring" --name rec --tagged --count 2 2>/dev/null) || fail "tagged"
want=$(/usr/bin/python3 -c '
import struct, zlib
for seq, body in ((7, b"xyz"), (8, b"hello")):
    m = struct.pack("<BI", 2, seq) + body
    print("2 %d %d %08x" % (seq, len(m) + 4, zlib.crc32(m)))')
[ "$got" = "$want" ] || fail "tagged printed: $got (want $want)"
rc=0
"$GO_INTEROP" subscribe "$ring" --name rec --tagged --count 1 >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "a bad CRC gave exit $rc, want 1"

rc=0
"$GO_INTEROP" subscribe "$ring" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "usage error gave exit $rc, want 2"
rc=0
"$GO_INTEROP" subscribe "$ring" --name other --count 1 --timeout 50ms >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "no message before --timeout gave exit $rc, want 2"
echo "PASS: go_interop subscribe"
