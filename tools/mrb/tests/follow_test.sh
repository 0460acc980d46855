#!/bin/sh
# read --follow with concurrent writer processes: every message arrives once,
# each writer's messages in order; a second reader gets exit 6 (consumer
# busy) meanwhile; SIGTERM and SIGINT end the follower cleanly (exit 0).
set -eu
. "$(dirname "$0")/testlib.sh"

ring=$WORK/ring
"$MRB" create "$ring" --size 4K >/dev/null

"$MRB" read "$ring" --follow >"$WORK/out" &
reader=$!

consumer_is() {
	[ "$("$MRB" stat "$ring" --json | "$PYTHON" -c 'import json,sys; s=json.load(sys.stdin); print(s["consumer_pid"], s["consumer_alive"])')" = "$1" ]
}
wait_until "the follower attaches" consumer_is "$reader True"
expect_exit 6 "$MRB" read "$ring" 2>/dev/null
expect_exit 6 "$MRB" recover "$ring" 2>/dev/null

# Three writers at once, 300 messages each, through a ring that holds far
# fewer: --block makes them wait for the follower.
for w in 1 2 3; do
	seq -f "writer$w-%g" 1 300 >"$WORK/in$w"
done
"$MRB" write "$ring" --block <"$WORK/in1" &
w1=$!
"$MRB" write "$ring" --block <"$WORK/in2" &
w2=$!
"$MRB" write "$ring" --block <"$WORK/in3" &
w3=$!
wait $w1 || fail "writer 1 exited $?"
wait $w2 || fail "writer 2 exited $?"
wait $w3 || fail "writer 3 exited $?"

lines_are() { [ "$(wc -l <"$WORK/out")" -eq "$1" ]; }
wait_until "900 messages arrive" lines_are 900
for w in 1 2 3; do
	grep "^writer$w-" "$WORK/out" >"$WORK/got$w" || true
	assert_same_file "$WORK/in$w" "$WORK/got$w" "writer $w's messages"
done

kill -TERM "$reader"
wait "$reader" || fail "follower exited $? on SIGTERM"
lines_are 900 || fail "extra output after SIGTERM"
wait_until "the consumer role is released" consumer_is "0 False"

# SIGINT too, while the follower is blocked in a wait.
"$MRB" read "$ring" --follow >"$WORK/out2" &
reader=$!
wait_until "the second follower attaches" consumer_is "$reader True"
echo tail | "$MRB" write "$ring"
wait_until "the message arrives" grep -q '^tail$' "$WORK/out2"
kill -INT "$reader"
wait "$reader" || fail "follower exited $? on SIGINT"

# --follow --count N stops by itself once N messages came.
"$MRB" read "$ring" --follow --count 2 >"$WORK/out3" &
reader=$!
printf 'x\n' | "$MRB" write "$ring"
printf 'y\nz\n' | "$MRB" write "$ring"
wait "$reader" || fail "--follow --count exited $?"
printf 'x\ny\n' >"$WORK/out3.expected"
assert_same_file "$WORK/out3.expected" "$WORK/out3" "--follow --count 2"

echo PASS
