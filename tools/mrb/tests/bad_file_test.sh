#!/bin/sh
# Errors on files: missing (3), not a ring (4), a symlink (3), a directory,
# and usage errors (2). Every error goes to stderr, nothing to stdout.
set -eu
. "$(dirname "$0")/testlib.sh"

for cmd in stat dump read recover; do
	expect_exit 3 "$MRB" $cmd "$WORK/missing" >"$WORK/out" 2>"$WORK/err"
	[ ! -s "$WORK/out" ] || fail "$cmd printed to stdout on error"
	grep -q "^mrb $cmd: $WORK/missing: " "$WORK/err" || fail "$cmd stderr: $(cat "$WORK/err")"
done
expect_exit 3 "$MRB" write "$WORK/missing" </dev/null 2>/dev/null

# A file that is not a ring, of various sizes.
head -c 8192 /dev/zero >"$WORK/zeros"
printf 'hello, this is not a ring\n' >"$WORK/text"
: >"$WORK/empty"
"$PYTHON" -c 'import sys,random; r=random.Random(1); sys.stdout.buffer.write(bytes(r.randrange(256) for _ in range(8192)))' >"$WORK/noise"
for f in zeros text empty noise; do
	for cmd in stat dump read; do
		expect_exit 4 "$MRB" $cmd "$WORK/$f" >/dev/null 2>"$WORK/err"
		[ -s "$WORK/err" ] || fail "$cmd $f: no message on stderr"
	done
	expect_exit 4 "$MRB" write "$WORK/$f" </dev/null 2>/dev/null
	# create leaves a foreign file alone unless --force.
	expect_exit 4 "$MRB" create "$WORK/$f" --size 4K 2>/dev/null
done
cmp -s "$WORK/text" - <<TEXT || fail "create modified a foreign file"
hello, this is not a ring
TEXT

# A ring whose format version is from the future: exit 4.
"$MRB" create "$WORK/future" --size 4K >/dev/null
printf '\377' | dd of="$WORK/future" bs=1 seek=8 conv=notrunc 2>/dev/null
expect_exit 4 "$MRB" stat "$WORK/future" 2>"$WORK/err"
grep -qi version "$WORK/err" || fail "future version stderr: $(cat "$WORK/err")"

# A ring whose first record is corrupt (its length runs past the producer
# position): stat prints what it can, says the unread and written counts are
# unknown instead of 0, and exits 4 like dump and read.
"$MRB" create "$WORK/corrupt" --size 4K >/dev/null
printf 'one\ntwo\n' | "$MRB" write "$WORK/corrupt"
printf '\377\377' | dd of="$WORK/corrupt" bs=1 seek=65536 conv=notrunc 2>/dev/null
expect_exit 4 "$MRB" stat "$WORK/corrupt" >"$WORK/out" 2>"$WORK/err"
assert_eq "mrb stat: $WORK/corrupt: ring buffer data is corrupt (invalid position or record)" "$(cat "$WORK/err")" "stat stderr"
grep -q '^unread  *unknown: ring buffer data is corrupt' "$WORK/out" || fail "stat unread: $(cat "$WORK/out")"
grep -q '^written  *unknown (read + unread)$' "$WORK/out" || fail "stat written: $(cat "$WORK/out")"
expect_exit 4 "$MRB" stat "$WORK/corrupt" --json >"$WORK/corrupt.json" 2>/dev/null
assert_eq true "$(json_field "$WORK/corrupt.json" corrupt)" "corrupt"
assert_eq None "$(json_field "$WORK/corrupt.json" messages_written)" "messages_written of a corrupt ring"
assert_eq 64 "$(json_field "$WORK/corrupt.json" producer_position)" "producer_position of a corrupt ring"
expect_exit 4 "$MRB" dump "$WORK/corrupt" >/dev/null 2>&1
expect_exit 4 "$MRB" read "$WORK/corrupt" >/dev/null 2>&1

# A symlink to a good ring is refused (O_NOFOLLOW): exit 3.
"$MRB" create "$WORK/good" --size 4K >/dev/null
ln -s "$WORK/good" "$WORK/link"
expect_exit 3 "$MRB" stat "$WORK/link" 2>/dev/null
expect_exit 3 "$MRB" stat "$WORK" 2>/dev/null

# Permission denied is an I/O error (skipped as root, who bypasses modes).
if [ "$(id -u)" -ne 0 ]; then
	chmod 000 "$WORK/good"
	expect_exit 3 "$MRB" stat "$WORK/good" 2>/dev/null
	chmod 600 "$WORK/good"
fi

# Usage errors.
expect_exit 2 "$MRB" 2>/dev/null
expect_exit 2 "$MRB" frobnicate 2>/dev/null
expect_exit 2 "$MRB" stat 2>/dev/null
expect_exit 2 "$MRB" stat "$WORK/good" extra 2>/dev/null
expect_exit 2 "$MRB" stat --bogus "$WORK/good" 2>"$WORK/err"
grep -q "mrb stat --help" "$WORK/err" || fail "usage hint: $(cat "$WORK/err")"
expect_exit 2 "$MRB" dump "$WORK/good" --limit 0 2>/dev/null
# Each bad value names its option and what is allowed.
expect_usage() { # expect_usage STDERR_FIRST_LINE COMMAND...
	first_line=$1
	shift
	expect_exit 2 "$@" 2>"$WORK/err"
	assert_eq "$first_line" "$(head -n 1 "$WORK/err")" "'$*' stderr"
}
expect_usage "mrb recover: --stale-ms is gone with format 2: a separate process never skips a live writer's claim; the reading program sets a recovery timeout instead" \
	"$MRB" recover "$WORK/good" --stale-ms 10
expect_usage "mrb dump: invalid --limit '0': want a whole number of records, at least 1" \
	"$MRB" dump "$WORK/good" --limit 0
expect_usage "mrb dump: invalid --preview 'x': want a whole number of bytes (0 for none)" \
	"$MRB" dump "$WORK/good" --preview x
expect_usage "mrb read: invalid --count '-3': want a whole number of messages, at least 1" \
	"$MRB" read "$WORK/good" --count -3
expect_usage "mrb read: invalid --timeout 'soon': want seconds (e.g. 2 or 0.5) or inf" \
	"$MRB" read "$WORK/good" --timeout soon
expect_usage "mrb write: invalid --timeout '-1': want seconds (e.g. 2 or 0.5) or inf" \
	"$MRB" write "$WORK/good" --timeout -1
expect_usage "mrb create: invalid --size '12X': want a byte count such as 4096, 64K or 1G" \
	"$MRB" create "$WORK/new" --size 12X
# An unknown option or a missing value: getopt names it, then the hint.
expect_exit 2 "$MRB" dump "$WORK/good" --bogus 2>"$WORK/err"
printf '%s\n' "mrb dump: unrecognized option '--bogus'" "Try 'mrb dump --help'." >"$WORK/err.expected"
assert_same_file "$WORK/err.expected" "$WORK/err" "unknown option"
expect_exit 2 "$MRB" read "$WORK/good" --count 2>"$WORK/err"
printf '%s\n' "mrb read: option '--count' requires an argument" "Try 'mrb read --help'." >"$WORK/err.expected"
assert_same_file "$WORK/err.expected" "$WORK/err" "missing value"

echo PASS
