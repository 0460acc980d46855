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
expect_exit 2 "$MRB" recover "$WORK/good" --stale-ms x 2>/dev/null

echo PASS
