#!/bin/sh
# mrb create (sizes, suffixes, --force, --exclusive, --mode) and mrb stat
# (text and --json, checked field by field), including that stat consumes
# nothing and does not attach as consumer, and names the sole producer.
set -eu
. "$(dirname "$0")/testlib.sh"

ring=$WORK/ring

# A size that is not a power of two is refused, naming the nearest ones;
# nothing is created.
expect_exit 2 "$MRB" create "$ring" --size 3K 2>"$WORK/err"
printf '%s\n' "mrb create: --size 3K is not a power of two; the nearest sizes are 2K (2048 bytes) and 4K (4096 bytes)" \
	"Try 'mrb create --help'." >"$WORK/err.expected"
assert_same_file "$WORK/err.expected" "$WORK/err" "--size 3K"
expect_exit 2 "$MRB" create "$ring" --size 3G 2>"$WORK/err"
grep -q '^mrb create: --size 3G is not a power of two; the nearest sizes are 2G (2147483648 bytes) and 4G (4294967296 bytes)$' "$WORK/err" ||
	fail "--size 3G: $(cat "$WORK/err")"
expect_exit 2 "$MRB" create "$ring" --size 100 2>"$WORK/err"
grep -q '^mrb create: --size 100 is below the minimum, 256$' "$WORK/err" || fail "--size 100: $(cat "$WORK/err")"
[ ! -e "$ring" ] || fail "a refused size created a file"

"$MRB" create "$ring" --size 4K >"$WORK/create.out"
grep -q "capacity 4096 bytes" "$WORK/create.out" || fail "create output: $(cat "$WORK/create.out")"
assert_eq 600 "$(stat -c %a "$ring")" "default mode"
assert_eq $((65536 + 4096)) "$(stat -c %s "$ring")" "file size = header + capacity"

"$MRB" stat "$ring" --json >"$WORK/empty.json"
assert_eq 2 "$(json_field "$WORK/empty.json" format_version)" "format_version"
assert_eq 4096 "$(json_field "$WORK/empty.json" capacity)" "capacity"
assert_eq 0 "$(json_field "$WORK/empty.json" producer_position)" "producer_position"
assert_eq 0 "$(json_field "$WORK/empty.json" consumer_position)" "consumer_position"
assert_eq 0 "$(json_field "$WORK/empty.json" used_bytes)" "used_bytes"
assert_eq 0.0 "$(json_field "$WORK/empty.json" fill_percent)" "fill_percent"
assert_eq 0 "$(json_field "$WORK/empty.json" consumer_pid)" "consumer_pid"
assert_eq false "$(json_field "$WORK/empty.json" consumer_alive)" "consumer_alive"
assert_eq "$ring" "$(json_field "$WORK/empty.json" path)" "path"
max=$(json_field "$WORK/empty.json" max_message_size)
[ "$max" -gt 0 ] && [ "$max" -le 4096 ] || fail "max_message_size $max"

# Three messages: 5, 13 and 20 bytes take 32 + 32 + 48 ring bytes (16-byte
# header, 16-byte alignment).
printf 'alpha\nbravo charlie\n01234567890123456789\n' | "$MRB" write "$ring"
"$MRB" stat "$ring" --json >"$WORK/three.json"
assert_eq 3 "$(json_field "$WORK/three.json" messages_written)" "messages_written"
assert_eq 38 "$(json_field "$WORK/three.json" bytes_written)" "bytes_written"
assert_eq 112 "$(json_field "$WORK/three.json" producer_position)" "producer_position"
assert_eq 0 "$(json_field "$WORK/three.json" consumer_position)" "consumer_position"
assert_eq 112 "$(json_field "$WORK/three.json" used_bytes)" "used_bytes"
assert_eq 2.73 "$(json_field "$WORK/three.json" fill_percent)" "fill_percent"
assert_eq 0 "$(json_field "$WORK/three.json" messages_read)" "messages_read"
assert_eq 0 "$(json_field "$WORK/three.json" full_count)" "full_count"
assert_eq 0 "$(json_field "$WORK/three.json" consumer_pid)" "stat attached as consumer"

# The text form carries the same numbers.
"$MRB" stat "$ring" >"$WORK/three.txt"
grep -q '^used  *112 bytes (2.73%)$' "$WORK/three.txt" || fail "text stat: $(cat "$WORK/three.txt")"
grep -q '^unread  *3 messages, 38 bytes$' "$WORK/three.txt" || fail "text stat unread"
grep -q '^written  *3 messages, 38 bytes (read + unread)$' "$WORK/three.txt" || fail "text stat written"
assert_eq 3 "$(json_field "$WORK/three.json" unread_messages)" "unread_messages"
assert_eq 38 "$(json_field "$WORK/three.json" unread_bytes)" "unread_bytes"
assert_eq false "$(json_field "$WORK/three.json" corrupt)" "corrupt"
grep -q '^consumer  *none$' "$WORK/three.txt" || fail "text stat consumer"

assert_eq None "$(json_field "$WORK/three.json" sole_producer_pid)" "sole_producer_pid, no producer"
assert_eq None "$(json_field "$WORK/three.json" sole_producer_slot)" "sole_producer_slot, no producer"
grep -q '^sole producer  *none (producers claim by CAS)$' "$WORK/three.txt" ||
	fail "text stat sole producer: $(grep sole "$WORK/three.txt")"

# Reading one message moves the consumer position past its 32-byte record.
"$MRB" read "$ring" --count 1 >"$WORK/first.out"
assert_eq alpha "$(cat "$WORK/first.out")" "first message"
"$MRB" stat "$ring" --json >"$WORK/after.json"
assert_eq 32 "$(json_field "$WORK/after.json" consumer_position)" "consumer_position after read"
assert_eq 80 "$(json_field "$WORK/after.json" used_bytes)" "used_bytes after read"
assert_eq 1 "$(json_field "$WORK/after.json" messages_read)" "messages_read"
assert_eq 5 "$(json_field "$WORK/after.json" bytes_read)" "bytes_read"

# Same size again: the existing ring is opened and its messages kept.
"$MRB" create "$ring" --size 4096 >/dev/null
"$MRB" stat "$ring" --json >"$WORK/kept.json"
assert_eq 80 "$(json_field "$WORK/kept.json" used_bytes)" "messages kept on re-create"

# Another size without --force, or --exclusive: exit 7, file untouched.
expect_exit 7 "$MRB" create "$ring" --size 8K
expect_exit 7 "$MRB" create "$ring" --size 4K --exclusive
assert_eq $((65536 + 4096)) "$(stat -c %s "$ring")" "file untouched"

# --force replaces it; --mode is applied exactly.
"$MRB" create "$ring" --size 1M --force --mode 0640 >/dev/null
assert_eq 640 "$(stat -c %a "$ring")" "--mode"
"$MRB" stat "$ring" --json >"$WORK/forced.json"
assert_eq 1048576 "$(json_field "$WORK/forced.json" capacity)" "capacity after --force"
assert_eq 0 "$(json_field "$WORK/forced.json" used_bytes)" "used after --force"

# Size suffixes and invalid sizes.
"$MRB" create "$WORK/g" --size 256 >/dev/null
assert_eq 256 "$(json_field /dev/stdin capacity <<JSON
$("$MRB" stat "$WORK/g" --json)
JSON
)" "minimum capacity"
for bad in 0 -1 12X 1.5M K "" 99999999999999999999 1000 3K; do
	expect_exit 2 "$MRB" create "$WORK/bad" --size "$bad"
done
expect_exit 2 "$MRB" create "$WORK/bad" --size 2T
expect_exit 2 "$MRB" create "$WORK/bad"
# --mode: permission bits only; 0 would be the default, so it is refused too.
for bad in 0999 01600 04600 07777 0 rw abc ""; do
	expect_exit 2 "$MRB" create "$WORK/bad" --size 1K --mode "$bad" 2>"$WORK/err"
	grep -q "^mrb create: invalid --mode '$bad': want octal permission bits 0001..0777 (default 0600)\$" "$WORK/err" ||
		fail "--mode $bad: $(cat "$WORK/err")"
done
[ ! -e "$WORK/bad" ] || fail "a failed create left a file"

# An existing ring keeps its mode; an explicit --mode that differs is
# reported (exit 7), the file untouched.
"$MRB" create "$WORK/m" --size 1K >/dev/null
expect_exit 7 "$MRB" create "$WORK/m" --size 1K --mode 0777 >"$WORK/out" 2>"$WORK/err"
assert_eq "mrb create: $WORK/m: an existing ring has mode 0600, not 0777; it was kept as it is (--force replaces it)" \
	"$(cat "$WORK/err")" "mode mismatch"
[ ! -s "$WORK/out" ] || fail "mode mismatch printed to stdout"
assert_eq 600 "$(stat -c %a "$WORK/m")" "mode after a mismatch"
"$MRB" create "$WORK/m" --size 1K --mode 0600 >/dev/null
"$MRB" create "$WORK/m" --size 1K --mode 0777 --force >/dev/null
assert_eq 777 "$(stat -c %a "$WORK/m")" "--force --mode"

# stat --json of a path that is not UTF-8 is still valid JSON (the bad byte
# becomes U+FFFD); quotes, backslashes and control characters are escaped.
odd=$(printf '%s/caf\351 "q" \\ \001.ring' "$WORK")
"$MRB" create "$odd" --size 1K >/dev/null
"$MRB" stat "$odd" --json >"$WORK/odd.json"
"$PYTHON" - "$WORK/odd.json" "$WORK" <<'PY' || fail "stat --json of a non-UTF-8 path: $(od -c "$WORK/odd.json" | head -3)"
import json, sys
with open(sys.argv[1], "rb") as f:
    data = json.loads(f.read().decode("utf-8"))
assert data["path"] == sys.argv[2] + '/caf\ufffd "q" \\ \x01.ring', repr(data["path"])
PY

# A writer that stays open after its first message, the ring's only
# producer, holds the sole-producer lease: stat names its pid and slot 0 of
# a new ring; once it exits, none.
ring=$WORK/lease.ring
"$MRB" create "$ring" --size 4K >/dev/null
mkfifo "$WORK/fifo"
"$MRB" write "$ring" <"$WORK/fifo" &
writer=$!
exec 3>"$WORK/fifo"
echo delta >&3
has_one() { [ "$(json_field /dev/stdin unread_messages <<JSON
$("$MRB" stat "$ring" --json)
JSON
)" = 1 ]; }
wait_until "the writer's line is written" has_one
"$MRB" stat "$ring" >"$WORK/lease.txt"
"$MRB" stat "$ring" --json >"$WORK/lease.json"
grep -q "^sole producer  *pid $writer (slot 0)\$" "$WORK/lease.txt" ||
	fail "text stat sole producer while writing: $(grep sole "$WORK/lease.txt")"
assert_eq "$writer" "$(json_field "$WORK/lease.json" sole_producer_pid)" "sole_producer_pid"
assert_eq 0 "$(json_field "$WORK/lease.json" sole_producer_slot)" "sole_producer_slot"
exec 3>&-
wait "$writer" || fail "the writer exited $?"
"$MRB" stat "$ring" >"$WORK/lease.txt"
grep -q '^sole producer  *none (producers claim by CAS)$' "$WORK/lease.txt" ||
	fail "text stat sole producer after the writer: $(grep sole "$WORK/lease.txt")"
assert_eq delta "$("$MRB" read "$ring")" "the writer's message"

echo PASS
