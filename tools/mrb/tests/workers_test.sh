#!/bin/sh
# Worker groups from the shell: stat (text and --json) of every group and
# worker, read --group (at-least-once, --at-most-once, --hold-timeout), the
# usage and mode errors, each with exact output. Real processes: a worker
# whose stdout is a FIFO nobody reads holds its message (it releases a
# message only once the reader took it), so it can be killed (kill -9) or
# outlive its hold timeout while holding.
set -eu
. "$(dirname "$0")/testlib.sh"

ring=$WORK/jobs

# grp_field FILE NAME KEY / wrk_field FILE PID KEY: one field of the group
# NAME or of the worker with pid PID in a `mrb stat --json` output.
grp_field() {
	"$PYTHON" - "$1" groups name "$2" "$3" <<'PY'
import json, sys
f, table, key, want, field = sys.argv[1:]
rows = [r for r in json.load(open(f))[table] if str(r[key]) == want]
if not rows:
    print("missing")
else:
    v = rows[0][field]
    print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)
PY
}
wrk_field() {
	"$PYTHON" - "$1" workers pid "$2" "$3" <<'PY'
import json, sys
f, table, key, want, field = sys.argv[1:]
rows = [r for r in json.load(open(f))[table] if str(r[key]) == want]
if not rows:
    print("missing")
else:
    v = rows[0][field]
    print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)
PY
}
stat_json() { "$MRB" stat "$1" --json >"$WORK/stat.json"; }

# hold GROUP [OPTIONS...]: starts `mrb read --group GROUP --count 1` writing
# into a FIFO whose reader reads only once $WORK/go exists; sets $holder
# (the worker's pid) and $drain (the reader's), the reader's bytes go to
# $WORK/held.out.
hold() {
	rm -f "$WORK/fifo" "$WORK/go" "$WORK/held.out"
	mkfifo "$WORK/fifo"
	"$PYTHON" -c '
import os, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
open(sys.argv[2], "wb").write(sys.stdin.buffer.read())
' "$WORK/go" "$WORK/held.out" <"$WORK/fifo" &
	drain=$!
	group=$1
	shift
	"$MRB" read "$ring" --group "$group" --count 1 "$@" >"$WORK/fifo" 2>"$WORK/held.err" &
	holder=$!
}
holding() {
	stat_json "$ring"
	[ "$(wrk_field "$WORK/stat.json" "$holder" holding)" = true ]
}

# ---- usage (2) and mode (11) errors -------------------------------------------
"$MRB" create "$ring" --size 4K --fanout >/dev/null
"$MRB" create "$WORK/queue" --size 4K >/dev/null
expect_exit 2 "$MRB" read "$ring" --at-most-once 2>"$WORK/err"
assert_eq "mrb read: --at-most-once and --hold-timeout need --group NAME" "$(head -n 1 "$WORK/err")" "--at-most-once alone"
expect_exit 2 "$MRB" read "$ring" --hold-timeout 1 2>"$WORK/err"
assert_eq "mrb read: --at-most-once and --hold-timeout need --group NAME" "$(head -n 1 "$WORK/err")" "--hold-timeout alone"
expect_exit 2 "$MRB" read "$ring" --group g --subscriber s 2>"$WORK/err"
assert_eq "mrb read: --group and --subscriber exclude each other" "$(head -n 1 "$WORK/err")" "--group --subscriber"
for bad in "" 0123456789abcdef0123456789abcdef; do
	expect_exit 2 "$MRB" read "$ring" --group "$bad" 2>"$WORK/err"
	assert_eq "mrb read: invalid --group: a name has 1 to 31 bytes" "$(head -n 1 "$WORK/err")" "--group '$bad'"
done
for bad in 0 -1 abc inf ""; do
	expect_exit 2 "$MRB" read "$ring" --group g --hold-timeout "$bad" 2>"$WORK/err"
	assert_eq "mrb read: invalid --hold-timeout '$bad': want seconds above 0 (e.g. 5 or 0.5)" \
		"$(head -n 1 "$WORK/err")" "--hold-timeout $bad"
done
expect_exit 11 "$MRB" read "$WORK/queue" --group g 2>"$WORK/err"
assert_eq "mrb read: $WORK/queue: a queue ring has no worker groups (mrb create --fanout makes a fan-out ring)" \
	"$(cat "$WORK/err")" "a worker of a queue ring"
stat_json "$ring"
assert_eq "[] []" "$(json_field "$WORK/stat.json" groups) $(json_field "$WORK/stat.json" workers)" "refused reads joined nothing"
"$MRB" stat "$ring" >"$WORK/stat.txt"
printf 'subscribers        0\ngroups             0\nworkers            0\n' >"$WORK/expected"
tail -n 3 "$WORK/stat.txt" >"$WORK/tail"
assert_same_file "$WORK/expected" "$WORK/tail" "text stat without groups"
"$MRB" stat "$WORK/queue" --json >"$WORK/q.json"
assert_eq "[] []" "$(json_field "$WORK/q.json" groups) $(json_field "$WORK/q.json" workers)" "a queue ring's groups"

# ---- a group starts at the oldest message; workers share the messages --------
# Records of up to 16 bytes of payload take 32 bytes.
seq -f "m%g" 1 6 | "$MRB" write "$ring"
"$MRB" read "$ring" --group jobs --count 2 >"$WORK/out"
printf 'm1\nm2\n' >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/out" "first worker"
stat_json "$ring"
assert_eq "0 at-least-once null 64 128 0 0 2 4 0 0 0" \
	"$(for k in index policy hold_timeout_ns claim_position lag_bytes workers workers_alive messages_done bytes_done redelivered dropped stale_releases; do
		grp_field "$WORK/stat.json" jobs $k
	done | tr '\n' ' ' | sed 's/ $//')" "group jobs after two messages"
assert_eq "[]" "$(json_field "$WORK/stat.json" workers)" "a worker that left is not listed"

# ---- at-least-once: a killed worker's message goes to the next worker --------
hold jobs
wait_until "the worker holds m3" holding
assert_eq "jobs 0 true true false 64 96 0" \
	"$(for k in group group_index alive holding rescued held_from held_to messages_done; do
		wrk_field "$WORK/stat.json" "$holder" $k
	done | tr '\n' ' ' | sed 's/ $//')" "a holding worker (json)"
"$MRB" stat "$ring" >"$WORK/stat.txt"
sed -n '/^workers /,$p' "$WORK/stat.txt" >"$WORK/tail"
slot=$(wrk_field "$WORK/stat.json" "$holder" index)
printf 'workers            1\nworker %-10s  jobs: pid %s (alive), holding [64, 96)\n  done             0 messages, 0 bytes\n' \
	"$slot" "$holder" >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/tail" "a holding worker (text)"
grep -q '^  workers          1, 1 alive$' "$WORK/stat.txt" || fail "text workers of jobs: $(cat "$WORK/stat.txt")"
kill -9 "$holder"
wait "$holder" 2>/dev/null || true
kill "$drain"
wait "$drain" 2>/dev/null || true
stat_json "$ring"
assert_eq "false true" "$(wrk_field "$WORK/stat.json" "$holder" alive) $(wrk_field "$WORK/stat.json" "$holder" holding)" \
	"a killed worker still holds its message"
# The next worker takes the new messages first and m3 once it finds none.
"$MRB" read "$ring" --group jobs >"$WORK/out"
printf 'm4\nm5\nm6\nm3\n' >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/out" "the next worker gets m3 again"
stat_json "$ring"
assert_eq "1 0 6 0" "$(grp_field "$WORK/stat.json" jobs redelivered) $(grp_field "$WORK/stat.json" jobs dropped) $(grp_field "$WORK/stat.json" jobs messages_done) $(grp_field "$WORK/stat.json" jobs lag_bytes)" \
	"jobs: redelivered, dropped, done, lag"
assert_eq missing "$(wrk_field "$WORK/stat.json" "$holder" index)" "the dead worker's slot was taken over"

# ---- --at-most-once: a killed worker's message is dropped and counted --------
# A new group starts at the oldest message still in the ring for it: the
# end, since jobs released everything.
"$MRB" read "$ring" --group once --at-most-once >"$WORK/out"
assert_eq "" "$(cat "$WORK/out")" "a new group at the end"
seq -f "n%g" 1 3 | "$MRB" write "$ring"
hold once
wait_until "the once worker holds n1" holding
kill -9 "$holder"
wait "$holder" 2>/dev/null || true
kill "$drain"
wait "$drain" 2>/dev/null || true
# Joining without options takes the group's own policy.
"$MRB" read "$ring" --group once >"$WORK/out"
printf 'n2\nn3\n' >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/out" "n1 was dropped"
stat_json "$ring"
assert_eq "at-most-once 0 1 2" "$(grp_field "$WORK/stat.json" once policy) $(grp_field "$WORK/stat.json" once redelivered) $(grp_field "$WORK/stat.json" once dropped) $(grp_field "$WORK/stat.json" once messages_done)" \
	"once: policy, redelivered, dropped, done"
expect_exit 2 "$MRB" read "$ring" --group once --hold-timeout 5 2>"$WORK/err"
assert_eq "mrb read: $ring: group 'once' has another policy or hold timeout (mrb stat shows it)" \
	"$(cat "$WORK/err")" "joining with other options"
# jobs, a group of its own, sees n1..n3 as well.
"$MRB" read "$ring" --group jobs >"$WORK/out"
printf 'n1\nn2\nn3\n' >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/out" "groups side by side"

# ---- --hold-timeout: a hung worker's message is taken back; its late release
# is refused and told -------------------------------------------------------
"$MRB" read "$ring" --group slow --hold-timeout 0.2 >/dev/null
echo p1 | "$MRB" write "$ring"
"$MRB" read "$ring" --group once >/dev/null
"$MRB" read "$ring" --group jobs >/dev/null
hold slow
wait_until "the slow worker holds p1" holding
"$MRB" stat "$ring" >"$WORK/stat.txt"
grep -q '^group [0-9]* *slow: at-least-once, hold timeout 0.2s$' "$WORK/stat.txt" || fail "text group line: $(cat "$WORK/stat.txt")"
# Another worker takes p1 over once the timeout has passed.
"$MRB" read "$ring" --group slow --follow --count 1 >"$WORK/out"
assert_eq p1 "$(cat "$WORK/out")" "p1 redelivered after the hold timeout"
touch "$WORK/go"
wait "$holder" || fail "the late worker exited $?"
wait "$drain"
assert_eq p1 "$(cat "$WORK/held.out")" "the late worker wrote p1 out"
assert_eq "mrb read: a message was taken back from this worker after the group's hold timeout (redelivered or dropped)" \
	"$(cat "$WORK/held.err")" "the late worker's stderr"
stat_json "$ring"
assert_eq "200000000 1 1 1 0" "$(for k in hold_timeout_ns redelivered stale_releases messages_done lag_bytes; do
	grp_field "$WORK/stat.json" slow $k
done | tr '\n' ' ' | sed 's/ $//')" "slow: timeout, redelivered, stale releases, done, lag"

# ---- rmgroup: refused while a live worker is in the group, then gone ---------
echo q1 | "$MRB" write "$ring"
hold once
wait_until "the once worker holds q1" holding
expect_exit 6 "$MRB" rmgroup "$ring" once 2>"$WORK/err"
assert_eq "mrb rmgroup: $ring: group 'once' has a live worker; stop it first" \
	"$(cat "$WORK/err")" "rmgroup of a group with a live worker"
kill -9 "$holder"
wait "$holder" 2>/dev/null || true
kill "$drain"
wait "$drain" 2>/dev/null || true
"$MRB" rmgroup "$ring" once >"$WORK/out"
assert_eq "$ring: group 'once' removed" "$(cat "$WORK/out")" "rmgroup output"
stat_json "$ring"
assert_eq "missing 0 2" "$(grp_field "$WORK/stat.json" once index) $(grp_field "$WORK/stat.json" jobs index) $(grp_field "$WORK/stat.json" slow index)" \
	"once is gone, jobs and slow stay"
assert_eq "[]" "$(json_field "$WORK/stat.json" workers)" "the dead worker of once went with it"
expect_exit 3 "$MRB" rmgroup "$ring" once 2>"$WORK/err"
assert_eq "mrb rmgroup: $ring: no worker group named 'once'" "$(cat "$WORK/err")" "rmgroup of a missing group"
expect_exit 11 "$MRB" rmgroup "$WORK/queue" once 2>"$WORK/err"
assert_eq "mrb rmgroup: $WORK/queue: a queue ring has no worker groups" "$(cat "$WORK/err")" "rmgroup of a queue ring"
expect_exit 2 "$MRB" rmgroup "$ring" 2>"$WORK/err"
assert_eq "mrb rmgroup: expected a PATH and a GROUP" "$(head -n 1 "$WORK/err")" "rmgroup without a GROUP"
expect_exit 3 "$MRB" rmgroup "$WORK/none" once 2>/dev/null

echo PASS
