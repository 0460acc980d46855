#!/bin/sh
# write -> dump -> read: dump shows the unread records without consuming
# them; read returns exactly the bytes written, in order, once.
set -eu
. "$(dirname "$0")/testlib.sh"

ring=$WORK/ring
"$MRB" create "$ring" --size 64K >/dev/null

# Lines with spaces, tabs, a backslash, UTF-8, a CR and an empty line (which
# is skipped); the last line has no newline and still counts.
printf 'first message\n\tsecond\\x\n\nthird \303\251\r\nlast-no-newline' >"$WORK/input"
"$MRB" write "$ring" <"$WORK/input"
printf 'first message\n\tsecond\\x\nthird \303\251\r\nlast-no-newline\n' >"$WORK/expected"

"$MRB" dump "$ring" >"$WORK/dump1"
"$MRB" dump "$ring" >"$WORK/dump2"
assert_same_file "$WORK/dump1" "$WORK/dump2" "dump consumed something"
writer_pid=$(awk 'NR>1 && !/^#/ {print $4}' "$WORK/dump1" | sort -u)
# The writer (mrb write) has closed its handle: its producer slot is free,
# so no process owns these records any more (format 2, FORMAT.md section 7).
[ "$writer_pid" -eq 0 ] || fail "writer pid '$writer_pid'"
pid_column=$(printf '%8s' "$writer_pid")
sed "s/     PID/$pid_column/" >"$WORK/dump.expected" <<'DUMP'
POSITION       STATE          LENGTH      PID  PREVIEW
0              committed          13      PID  "first message"
32             committed           9      PID  "\tsecond\\x"
64             committed           9      PID  "third \xc3\xa9\r"
96             committed          15      PID  "last-no-newline"
# 4 records, 4 committed messages (46 payload bytes)
DUMP
sed -i '1s/.*/POSITION       STATE          LENGTH      PID  PREVIEW/' "$WORK/dump.expected"
assert_same_file "$WORK/dump.expected" "$WORK/dump1" "dump output"

# --limit and --preview.
"$MRB" dump "$ring" --limit 2 --preview 5 >"$WORK/dump.limited"
assert_eq 2 "$(grep -c "^[0-9].* committed " "$WORK/dump.limited")" "--limit 2 records"
grep -q '"first"\.\.\.$' "$WORK/dump.limited" || fail "--preview 5: $(cat "$WORK/dump.limited")"

# --hex prints every payload byte.
"$MRB" dump "$ring" --hex --limit 1 >"$WORK/dump.hex"
grep -q '^    00000000  66 69 72 73 74 20 6d 65 73 73 61 67 65           |first message|$' \
	"$WORK/dump.hex" || fail "--hex: $(cat "$WORK/dump.hex")"

# A failing stdout (full device, closed descriptor) consumes nothing.
if [ -w /dev/full ]; then
	expect_exit 3 "$MRB" read "$ring" >/dev/full 2>"$WORK/err"
	grep -q '^mrb read: stdout: No space left on device$' "$WORK/err" || fail "$(cat "$WORK/err")"
fi
expect_exit 3 "$MRB" read "$ring" >&- 2>/dev/null
"$MRB" dump "$ring" >"$WORK/dump3"
assert_same_file "$WORK/dump1" "$WORK/dump3" "a failed read consumed something"

# Reading returns the exact bytes, then the ring is empty.
"$MRB" read "$ring" >"$WORK/output"
assert_same_file "$WORK/expected" "$WORK/output" "read output"
"$MRB" read "$ring" >"$WORK/again"
[ ! -s "$WORK/again" ] || fail "messages delivered twice"
"$MRB" dump "$ring" >"$WORK/dump.after"
grep -q '^# 0 records' "$WORK/dump.after" || fail "dump after read: $(cat "$WORK/dump.after")"

# Many messages across several wraps of a small ring arrive in order.
"$MRB" create "$WORK/small" --size 512 >/dev/null
seq 1 400 >"$WORK/seq"
i=0
: >"$WORK/seq.out"
while [ $i -lt 400 ]; do
	sed -n "$((i + 1)),$((i + 10))p" "$WORK/seq" | "$MRB" write "$WORK/small"
	"$MRB" read "$WORK/small" >>"$WORK/seq.out"
	i=$((i + 10))
done
assert_same_file "$WORK/seq" "$WORK/seq.out" "messages across wraps"

echo PASS
