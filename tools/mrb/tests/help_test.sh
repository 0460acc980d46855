#!/bin/sh
# --help for the tool and every subcommand: exit 0, usage on stdout.
set -eu
. "$(dirname "$0")/testlib.sh"

"$MRB" --help >"$WORK/help"
for cmd in create stat dump write read recover upgrade unsubscribe rmgroup bench; do
	grep -q "^  $cmd " "$WORK/help" || fail "mrb --help does not list $cmd"
done
grep -q "Exit codes" "$WORK/help" || fail "mrb --help has no exit codes"
"$MRB" -h >/dev/null
"$MRB" help >/dev/null

for cmd in create stat dump write read recover upgrade unsubscribe rmgroup; do
	"$MRB" $cmd --help >"$WORK/$cmd.help" 2>"$WORK/$cmd.err"
	head -n 1 "$WORK/$cmd.help" | grep -q "^Usage: mrb $cmd " ||
		fail "mrb $cmd --help: $(head -n 1 "$WORK/$cmd.help")"
	grep -q "Exit codes" "$WORK/$cmd.help" || fail "mrb $cmd --help has no exit codes"
	[ ! -s "$WORK/$cmd.err" ] || fail "mrb $cmd --help wrote to stderr"
	# Help wins over otherwise invalid arguments.
	"$MRB" $cmd --bogus --help >/dev/null
done

# One meaning per short option letter across all commands: each letter
# stands for one long option everywhere (-n is "stop after N": --count in
# read, --limit in dump).
for cmd in create stat dump write read recover upgrade unsubscribe rmgroup; do
	sed -n "s/^  -\([A-Za-z]\), --\([a-z-]*\).*/\1 \2 $cmd/p" "$WORK/$cmd.help"
done | sort -u >"$WORK/letters"
[ "$(wc -l <"$WORK/letters")" -gt 10 ] || fail "too few short options found: $(cat "$WORK/letters")"
awk '{ name = ($2 == "limit") ? "count" : $2
       if (($1 in seen) && seen[$1] != name) { print "-" $1 ": --" seen[$1] " and --" $2 " (" $3 ")"; bad = 1 }
       seen[$1] = name }
     END { exit bad }' "$WORK/letters" || fail "a short option letter has two meanings"
# The destructive and rare create options have no letter.
! grep -q '^  -., --force' "$WORK/create.help" || fail "--force has a short letter"
! grep -q '^  -., --exclusive' "$WORK/create.help" || fail "--exclusive has a short letter"
expect_exit 2 "$MRB" create "$WORK/r" --size 1K -f 2>/dev/null
expect_exit 2 "$MRB" create "$WORK/r" --size 1K -x 2>/dev/null

# --version: the one version number (see //tools:version_test).
"$MRB" --version >"$WORK/version"
grep -q '^mrb [0-9]*\.[0-9]*\.[0-9]* (mmap_ringbuffer, ring format version [0-9]*)$' "$WORK/version" ||
	fail "mrb --version: $(cat "$WORK/version")"

# bench forwards --help to the benchmark engine when it is built in, and
# says it is not otherwise.
set +e
"$MRB" bench --help >"$WORK/bench.help" 2>"$WORK/bench.err"
rc=$?
set -e
case $rc in
0) [ -s "$WORK/bench.help" ] || fail "mrb bench --help printed nothing" ;;
10) grep -q "without the benchmark engine" "$WORK/bench.err" || fail "bench stderr" ;;
*) fail "mrb bench --help exited $rc" ;;
esac

echo PASS
