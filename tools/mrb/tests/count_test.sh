#!/bin/sh
# read --count N: exactly N messages, the rest stay; fewer than N available
# gives exit 5 after delivering what there was; --timeout bounds the wait.
set -eu
. "$(dirname "$0")/testlib.sh"

ring=$WORK/ring
"$MRB" create "$ring" --size 4K >/dev/null
printf 'm1\nm2\nm3\nm4\nm5\n' | "$MRB" write "$ring"

"$MRB" read "$ring" --count 2 >"$WORK/two"
printf 'm1\nm2\n' >"$WORK/two.expected"
assert_same_file "$WORK/two.expected" "$WORK/two" "--count 2"
assert_eq 3 "$("$MRB" stat "$ring" --json | "$PYTHON" -c 'import json,sys; s=json.load(sys.stdin); print(s["messages_written"]-s["messages_read"])')" "unread after --count 2"

# Asking for 10 with 3 left: the 3 are delivered, exit 5.
expect_exit 5 "$MRB" read "$ring" --count 10 >"$WORK/rest" 2>"$WORK/rest.err"
printf 'm3\nm4\nm5\n' >"$WORK/rest.expected"
assert_same_file "$WORK/rest.expected" "$WORK/rest" "--count 10 with 3 left"
grep -q '3 of 10 messages read' "$WORK/rest.err" || fail "stderr: $(cat "$WORK/rest.err")"

# Empty ring: plain read prints nothing and succeeds; --count with a short
# --timeout gives up with exit 5.
"$MRB" read "$ring" >"$WORK/none"
[ ! -s "$WORK/none" ] || fail "read from an empty ring printed something"
expect_exit 5 "$MRB" read "$ring" --count 1 --timeout 0.05 2>/dev/null
expect_exit 2 "$MRB" read "$ring" --count 0
expect_exit 2 "$MRB" read "$ring" --count -3
expect_exit 2 "$MRB" read "$ring" --timeout soon

echo PASS
