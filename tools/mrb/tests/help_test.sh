#!/bin/sh
# --help for the tool and every subcommand: exit 0, usage on stdout.
set -eu
. "$(dirname "$0")/testlib.sh"

"$MRB" --help >"$WORK/help"
for cmd in create stat dump write read recover bench; do
	grep -q "^  $cmd " "$WORK/help" || fail "mrb --help does not list $cmd"
done
grep -q "Exit codes" "$WORK/help" || fail "mrb --help has no exit codes"
"$MRB" -h >/dev/null
"$MRB" help >/dev/null

for cmd in create stat dump write read recover; do
	"$MRB" $cmd --help >"$WORK/$cmd.help" 2>"$WORK/$cmd.err"
	head -n 1 "$WORK/$cmd.help" | grep -q "^Usage: mrb $cmd " ||
		fail "mrb $cmd --help: $(head -n 1 "$WORK/$cmd.help")"
	grep -q "Exit codes" "$WORK/$cmd.help" || fail "mrb $cmd --help has no exit codes"
	[ ! -s "$WORK/$cmd.err" ] || fail "mrb $cmd --help wrote to stderr"
	# Help wins over otherwise invalid arguments.
	"$MRB" $cmd --bogus --help >/dev/null
done

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
