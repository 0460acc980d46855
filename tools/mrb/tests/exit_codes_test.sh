#!/bin/sh
# The exit statuses of docs/CLI.md that other tests do not cover, each with
# its exact stderr: timeouts of read (5), signals during read and write,
# oversized lines (8).
set -eu
. "$(dirname "$0")/testlib.sh"

ring=$WORK/ring
"$MRB" create "$ring" --size 256 >/dev/null

# read without --timeout on an empty ring: nothing there, exit 0.
"$MRB" read "$ring" >"$WORK/out"
[ ! -s "$WORK/out" ] || fail "read of an empty ring printed something"

# read --timeout on an empty ring: the timeout expired, exit 5.
expect_exit 5 "$MRB" read "$ring" --timeout 0.2 >"$WORK/out" 2>"$WORK/err"
assert_eq "mrb read: no message within 0.2 seconds" "$(cat "$WORK/err")" "--timeout stderr"
expect_exit 5 "$MRB" read "$ring" --timeout 0 2>/dev/null
expect_exit 5 "$MRB" read "$ring" --follow --timeout 0.1 2>/dev/null
# ... but once messages came, running out of them ends the read (exit 0).
printf 'a\nb\n' | "$MRB" write "$ring"
"$MRB" read "$ring" --timeout 0.1 >"$WORK/out"
printf 'a\nb\n' >"$WORK/out.expected"
assert_same_file "$WORK/out.expected" "$WORK/out" "read --timeout with messages"

consumer_is() {
	[ "$(json_field /dev/stdin consumer_pid <<JSON
$("$MRB" stat "$ring" --json)
JSON
)" = "$1" ]
}

# SIGINT during read --count 3 --follow with nothing read: fewer than
# --count, exit 5.
"$MRB" read "$ring" --count 3 --follow >"$WORK/out" 2>"$WORK/err" &
reader=$!
wait_until "the reader attaches" consumer_is "$reader"
kill -INT "$reader"
set +e
wait "$reader"
rc=$?
set -e
assert_eq 5 "$rc" "read --count 3 --follow interrupted"
assert_eq "mrb read: 0 of 3 messages read (interrupted)" "$(cat "$WORK/err")" "interrupted stderr"

# SIGINT during read --follow without --count: the normal way to stop, 0.
"$MRB" read "$ring" --follow >"$WORK/out" 2>"$WORK/err" &
reader=$!
wait_until "the follower attaches" consumer_is "$reader"
echo c | "$MRB" write "$ring"
wait_until "the message arrives" grep -q '^c$' "$WORK/out"
kill -INT "$reader"
wait "$reader" || fail "read --follow exited $? on SIGINT"
[ ! -s "$WORK/err" ] || fail "read --follow on SIGINT: $(cat "$WORK/err")"

# write --block into a full ring, SIGINT while it waits for space: the ring
# was full, exit 5, and stderr says what was and was not written.
seq -f 'message-%07g' 1 20 >"$WORK/input"
"$MRB" write "$ring" --block <"$WORK/input" 2>"$WORK/err" &
writer=$!
full() { [ "$(json_field /dev/stdin used_bytes <<JSON
$("$MRB" stat "$ring" --json)
JSON
)" = 256 ]; }
wait_until "the ring fills" full
sleep 0.2
kill -INT "$writer"
set +e
wait "$writer"
rc=$?
set -e
assert_eq 5 "$rc" "write --block interrupted while waiting for space"
printf '%s\n' "mrb write: interrupted while waiting for space" \
	"mrb write: 8 messages were written; stdin from line 9 on was not" >"$WORK/err.expected"
assert_same_file "$WORK/err.expected" "$WORK/err" "write --block interrupted"
"$MRB" read "$ring" >/dev/null

# SIGINT while write waits for input: all input so far was written, exit 0.
mkfifo "$WORK/fifo"
"$MRB" write "$ring" --block <"$WORK/fifo" 2>"$WORK/err" &
writer=$!
exec 3>"$WORK/fifo"
echo early >&3
has_one() { [ "$(json_field /dev/stdin unread_messages <<JSON
$("$MRB" stat "$ring" --json)
JSON
)" = 1 ]; }
wait_until "the first line is written" has_one
kill -INT "$writer"
wait "$writer" || fail "write waiting for input exited $? on SIGINT"
exec 3>&-
assert_eq "mrb write: interrupted: 1 messages were written; the rest of stdin was not read" \
	"$(cat "$WORK/err")" "write interrupted while reading stdin"
assert_eq early "$("$MRB" read "$ring")" "the line before the signal"

# A line longer than the maximum message size: exit 8, the limit named, and
# stdin from that line on reported as not written.
{
	echo first
	head -c 200 /dev/zero | tr '\0' x
	echo
	echo third
} >"$WORK/long"
expect_exit 8 "$MRB" write "$ring" <"$WORK/long" 2>"$WORK/err"
printf '%s\n' "mrb write: line 2 has 200 bytes; the ring's maximum message size is 128 bytes" \
	"mrb write: 1 messages were written; stdin from line 2 on was not" >"$WORK/err.expected"
assert_same_file "$WORK/err.expected" "$WORK/err" "too long a line"
assert_eq first "$("$MRB" read "$ring")" "the line before the long one"

echo PASS
