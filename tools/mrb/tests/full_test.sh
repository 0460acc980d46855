#!/bin/sh
# A full ring: write stops with exit 5 and keeps what it wrote, stat counts
# the refusal; --block --timeout gives up with exit 5; --block succeeds once
# a reader makes space.
set -eu
. "$(dirname "$0")/testlib.sh"

ring=$WORK/ring
"$MRB" create "$ring" --size 256 >/dev/null

# Each 15-byte message takes 32 ring bytes, so 8 fit in 256.
seq -f 'message-%07g' 1 20 >"$WORK/input"
expect_exit 5 "$MRB" write "$ring" <"$WORK/input" 2>"$WORK/err"
printf '%s\n' 'mrb write: line 9 (15 bytes): ring buffer full' \
	'mrb write: 8 messages were written; stdin from line 9 on was not' >"$WORK/err.expected"
assert_same_file "$WORK/err.expected" "$WORK/err" "stderr of a write into a full ring"
"$MRB" stat "$ring" --json >"$WORK/full.json"
assert_eq 8 "$(json_field "$WORK/full.json" messages_written)" "messages_written"
assert_eq 256 "$(json_field "$WORK/full.json" used_bytes)" "used_bytes"
assert_eq 100.0 "$(json_field "$WORK/full.json" fill_percent)" "fill_percent"
assert_eq 1 "$(json_field "$WORK/full.json" full_count)" "full_count"

expect_exit 5 "$MRB" write "$ring" --block --timeout 0.05 <"$WORK/input" 2>/dev/null
expect_exit 5 "$MRB" write "$ring" --timeout 0 <"$WORK/input" 2>/dev/null

"$MRB" read "$ring" >"$WORK/out"
head -n 8 "$WORK/input" >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/out" "the 8 messages that fit"

# With a reader draining concurrently, --block writes all 20.
"$MRB" read "$ring" --follow --count 20 >"$WORK/out20" &
reader=$!
"$MRB" write "$ring" --block <"$WORK/input"
wait $reader || fail "reader exited $?"
assert_same_file "$WORK/input" "$WORK/out20" "blocking write with a reader"

echo PASS
