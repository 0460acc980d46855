#!/bin/sh
# mrb recover: a record left busy by a producer that died is shown by dump
# and turned into padding by recover, so later messages become readable; a
# live stuck producer is skipped only with --stale-ms.
set -eu
. "$(dirname "$0")/testlib.sh"
ABANDON=${2:?usage: $0 MRB ABANDON_RECORD}
case "$ABANDON" in /*) ;; *) ABANDON="$PWD/$ABANDON" ;; esac

ring=$WORK/ring
"$MRB" create "$ring" --size 4K >/dev/null
"$MRB" recover "$ring" >"$WORK/nothing"
grep -q '^recovered 0 records (0 bytes)$' "$WORK/nothing" || fail "$(cat "$WORK/nothing")"
grep -q '^ring is empty$' "$WORK/nothing" || fail "$(cat "$WORK/nothing")"

echo before | "$MRB" write "$ring"
"$ABANDON" "$ring" 20
echo after | "$MRB" write "$ring"

"$MRB" dump "$ring" >"$WORK/dump"
assert_eq "committed busy committed" "$(awk 'NR>1 && !/^#/ {printf "%s%s", sep, $2; sep=" "}' "$WORK/dump")" "record states"
assert_eq 20 "$(awk '$2 == "busy" {print $3}' "$WORK/dump")" "busy record length"

"$MRB" read "$ring" --count 1 >"$WORK/first"
assert_eq before "$(cat "$WORK/first")" "message before the abandoned one"
"$MRB" recover "$ring" >"$WORK/recovered"
grep -q '^recovered 1 records (20 bytes)$' "$WORK/recovered" || fail "$(cat "$WORK/recovered")"
"$MRB" stat "$ring" --json >"$WORK/stat.json"
assert_eq 1 "$(json_field "$WORK/stat.json" recovered_records)" "recovered_records"
assert_eq 20 "$(json_field "$WORK/stat.json" recovered_bytes)" "recovered_bytes"
"$MRB" read "$ring" >"$WORK/rest"
assert_eq after "$(cat "$WORK/rest")" "message after the abandoned one"

# A producer that is alive but stuck: recover leaves it (its space cannot
# be released while it may still write); once it is gone, recover skips it.
"$ABANDON" "$ring" 30 --hold >"$WORK/holder.out" &
holder=$!
wait_until "the holder reserves" grep -q reserved "$WORK/holder.out"
echo behind | "$MRB" write "$ring"
"$MRB" recover "$ring" >"$WORK/alive"
grep -q '^recovered 0 records' "$WORK/alive" || fail "recovered a live producer's record"
grep -q "busy, 30 bytes, writer pid $holder" "$WORK/alive" || fail "$(cat "$WORK/alive")"
set +e
"$MRB" recover "$ring" --stale-ms 1 2>"$WORK/stale.err"
rc=$?
set -e
assert_eq 2 "$rc" "--stale-ms is a usage error"
grep -q "recovery timeout" "$WORK/stale.err" || fail "$(cat "$WORK/stale.err")"
kill "$holder"
wait "$holder" 2>/dev/null || true
"$MRB" recover "$ring" >"$WORK/dead"
grep -q '^recovered 1 records (30 bytes)$' "$WORK/dead" || fail "$(cat "$WORK/dead")"
assert_eq behind "$("$MRB" read "$ring")" "message behind the stuck record"

echo PASS
