#!/bin/sh
# read into a pipe whose reader stops early (mrb read RING | head -1): only
# what the reader took is consumed; the rest stays in the ring, and mrb says
# so (exit 3, stdout failed). A slow reader still gets every message.
set -eu
. "$(dirname "$0")/testlib.sh"

ring=$WORK/ring
"$MRB" create "$ring" --size 64K >/dev/null
seq -f 'message-%g' 1 1000 >"$WORK/input"
"$MRB" write "$ring" <"$WORK/input"

{
	set +e
	"$MRB" read "$ring" 2>"$WORK/err"
	echo $? >"$WORK/rc"
} | head -n 1 >"$WORK/first"
assert_eq message-1 "$(cat "$WORK/first")" "head -1"
assert_eq 3 "$(cat "$WORK/rc")" "exit status when the reader went away"
printf '%s\n' "mrb read: stdout: Broken pipe" \
	"mrb read: 1 messages were read; the one being written and those after it stay in the ring" \
	>"$WORK/err.expected"
assert_same_file "$WORK/err.expected" "$WORK/err" "stderr"
"$MRB" stat "$ring" --json >"$WORK/stat.json"
assert_eq 1 "$(json_field "$WORK/stat.json" messages_read)" "messages consumed by read | head -1"
assert_eq 999 "$(json_field "$WORK/stat.json" unread_messages)" "messages left"

# head -3: three taken, three consumed.
{ "$MRB" read "$ring" 2>/dev/null || true; } | head -n 3 >"$WORK/three"
printf 'message-2\nmessage-3\nmessage-4\n' >"$WORK/three.expected"
assert_same_file "$WORK/three.expected" "$WORK/three" "head -3"
"$MRB" stat "$ring" --json >"$WORK/stat.json"
assert_eq 4 "$(json_field "$WORK/stat.json" messages_read)" "consumed after head -3"

# The same on a socket: the reader takes one line byte by byte, then closes.
# (A socket drops what its reader did not take, so mrb cannot tell a line
# taken just before the close from one dropped by it, and keeps it: the
# reader waits a moment before closing, for mrb to see the line taken.)
"$PYTHON" - "$MRB" "$ring" >"$WORK/socket.out" <<'PY'
import socket, subprocess, sys, time
ours, theirs = socket.socketpair()
mrb = subprocess.Popen([sys.argv[1], "read", sys.argv[2]], stdout=theirs, stderr=subprocess.DEVNULL)
theirs.close()
line = b""
while not line.endswith(b"\n"):
    line += ours.recv(1)
time.sleep(1)
ours.close()
print(line.decode().strip(), mrb.wait())
PY
assert_eq "message-5 3" "$(cat "$WORK/socket.out")" "one line taken from a socket"
"$MRB" stat "$ring" --json >"$WORK/stat.json"
assert_eq 5 "$(json_field "$WORK/stat.json" messages_read)" "consumed after the socket reader"

# A reader that starts late and reads slowly gets all the rest, in order.
"$MRB" read "$ring" | { sleep 0.3; cat; } >"$WORK/rest"
tail -n +6 "$WORK/input" >"$WORK/rest.expected"
assert_same_file "$WORK/rest.expected" "$WORK/rest" "the other 995 messages"

# Framed output into a pipe, cut after the first frame (4 + 9 bytes).
printf 'frame-one\nframe-two\n' | "$MRB" write "$ring"
{ "$MRB" read "$ring" --framed 2>/dev/null || true; } | head -c 13 >"$WORK/frame"
printf '\011\000\000\000frame-one' >"$WORK/frame.expected"
assert_same_file "$WORK/frame.expected" "$WORK/frame" "one frame"
assert_eq frame-two "$("$MRB" read "$ring")" "the second frame stayed"

echo PASS
