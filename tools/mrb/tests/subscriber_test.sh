#!/bin/sh
# Subscribers from the shell: create --fanout, stat (text and --json) of
# every subscriber, read --subscriber (named resume, unnamed, --from-oldest,
# --lossy, --evict-after), unsubscribe, and the exit statuses 6 and 11, each
# with exact output. Real processes; a stopped (SIGSTOP) subscriber stands
# for a slow one.
set -eu
. "$(dirname "$0")/testlib.sh"

ring=$WORK/fan

# sub_field FILE NAME KEY: one field of the subscriber NAME ('' = unnamed)
# in a `mrb stat --json` output; "missing" if there is no such subscriber.
sub_field() {
	"$PYTHON" - "$@" <<'PY'
import json, sys
subs = [s for s in json.load(open(sys.argv[1]))["subscribers"] if s["name"] == sys.argv[2]]
if not subs:
    print("missing")
else:
    v = subs[0][sys.argv[3]]
    print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)
PY
}
stat_json() { "$MRB" stat "$1" --json >"$WORK/stat.json"; }

# ---- create --fanout, and the kind of an existing ring ----------------------
"$MRB" create "$ring" --size 4K --fanout >"$WORK/out"
assert_eq "$ring: capacity 4096 bytes, max message 2048 bytes, fan-out" "$(cat "$WORK/out")" "create --fanout"
"$MRB" create "$ring" --size 4K --fanout >/dev/null
expect_exit 7 "$MRB" create "$ring" --size 4K >"$WORK/out" 2>"$WORK/err"
assert_eq "mrb create: $ring: an existing ring is a fan-out ring, not a queue ring; it was kept as it is (--force replaces it)" \
	"$(cat "$WORK/err")" "create of a queue ring over a fan-out one"
"$MRB" create "$WORK/queue" --size 4K >/dev/null
expect_exit 7 "$MRB" create "$WORK/queue" --size 4K --fanout 2>"$WORK/err"
assert_eq "mrb create: $WORK/queue: an existing ring is a queue ring, not a fan-out ring; it was kept as it is (--force replaces it)" \
	"$(cat "$WORK/err")" "create of a fan-out ring over a queue one"

stat_json "$ring"
assert_eq fanout "$(json_field "$WORK/stat.json" mode)" "mode of a fan-out ring"
assert_eq "[]" "$(json_field "$WORK/stat.json" subscribers)" "no subscribers yet"
"$MRB" stat "$WORK/queue" --json >"$WORK/q.json"
assert_eq queue "$(json_field "$WORK/q.json" mode)" "mode of a queue ring"
"$MRB" stat "$ring" >"$WORK/stat.txt"
grep -q '^mode               fan-out$' "$WORK/stat.txt" || fail "text mode: $(cat "$WORK/stat.txt")"
grep -q '^consumer           none (fan-out ring: subscribers)$' "$WORK/stat.txt" || fail "text consumer"
grep -q '^subscribers        0$' "$WORK/stat.txt" || fail "text subscribers 0"

# ---- wrong mode (11) and usage (2) ------------------------------------------
expect_exit 11 "$MRB" read "$ring" >"$WORK/out" 2>"$WORK/err"
assert_eq "mrb read: $ring: a fan-out ring has no consumer; read it with --subscriber NAME or --group NAME" \
	"$(cat "$WORK/err")" "read of a fan-out ring without --subscriber"
expect_exit 11 "$MRB" read "$WORK/queue" --subscriber x 2>"$WORK/err"
assert_eq "mrb read: $WORK/queue: a queue ring has no durable subscribers (mrb create --fanout makes a fan-out ring); --lossy taps any ring" \
	"$(cat "$WORK/err")" "durable subscriber of a queue ring"
expect_exit 11 "$MRB" recover "$ring" 2>"$WORK/err"
assert_eq "mrb recover: $ring: not available in this ring's read mode (queue or fan-out)" \
	"$(cat "$WORK/err")" "recover of a fan-out ring"
expect_exit 2 "$MRB" read "$ring" --lossy 2>"$WORK/err"
assert_eq "mrb read: --lossy, --evict-after and --from-oldest need --subscriber NAME" \
	"$(head -n 1 "$WORK/err")" "--lossy alone"
expect_exit 2 "$MRB" read "$ring" --subscriber x --lossy --evict-after 1 2>"$WORK/err"
assert_eq "mrb read: --lossy and --evict-after exclude each other" "$(head -n 1 "$WORK/err")" "--lossy --evict-after"
for bad in 0 -1 abc inf ""; do
	expect_exit 2 "$MRB" read "$ring" --subscriber x --evict-after "$bad" 2>"$WORK/err"
	assert_eq "mrb read: invalid --evict-after '$bad': want seconds above 0 (e.g. 5 or 0.5)" \
		"$(head -n 1 "$WORK/err")" "--evict-after $bad"
done
expect_exit 2 "$MRB" read "$ring" --subscriber 0123456789abcdef0123456789abcdef 2>"$WORK/err"
assert_eq "mrb read: invalid --subscriber: a name has at most 31 bytes" "$(head -n 1 "$WORK/err")" "long name"
stat_json "$ring"
assert_eq "[]" "$(json_field "$WORK/stat.json" subscribers)" "refused reads joined nothing"

# ---- named durable subscribers: every message, resume after restart ---------
# Three messages before anyone subscribed: --from-oldest starts at them.
printf 'a\nbb\nccc\n' | "$MRB" write "$ring"
"$MRB" read "$ring" --subscriber rec --from-oldest --count 2 >"$WORK/out"
printf 'a\nbb\n' >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/out" "rec --from-oldest --count 2"
# A new one without --from-oldest joins at the live end: nothing to read.
"$MRB" read "$ring" --subscriber late >"$WORK/out"
[ ! -s "$WORK/out" ] || fail "a new subscriber read old messages: $(cat "$WORK/out")"
# Records of 1-3 byte messages take 32 bytes each.
stat_json "$ring"
assert_eq detached "$(sub_field "$WORK/stat.json" rec state)" "rec state"
assert_eq 0 "$(sub_field "$WORK/stat.json" rec pid)" "rec pid"
assert_eq false "$(sub_field "$WORK/stat.json" rec alive)" "rec alive"
assert_eq keep "$(sub_field "$WORK/stat.json" rec policy)" "rec policy"
assert_eq null "$(sub_field "$WORK/stat.json" rec evict_after_ns)" "rec evict_after_ns"
assert_eq 64 "$(sub_field "$WORK/stat.json" rec position)" "rec position"
assert_eq 32 "$(sub_field "$WORK/stat.json" rec lag_bytes)" "rec lag_bytes"
assert_eq 1 "$(sub_field "$WORK/stat.json" rec lag_messages)" "rec lag_messages"
assert_eq 2 "$(sub_field "$WORK/stat.json" rec messages_read)" "rec messages_read"
assert_eq 3 "$(sub_field "$WORK/stat.json" rec bytes_read)" "rec bytes_read"
assert_eq 0 "$(sub_field "$WORK/stat.json" rec lost_bytes)" "rec lost_bytes"
assert_eq 0 "$(sub_field "$WORK/stat.json" rec lost_events)" "rec lost_events"
assert_eq 0 "$(sub_field "$WORK/stat.json" rec evictions)" "rec evictions"
assert_eq 96 "$(sub_field "$WORK/stat.json" late position)" "late position"
assert_eq 0 "$(sub_field "$WORK/stat.json" late lag_messages)" "late lag_messages"
# Every subscriber object has exactly these keys.
"$PYTHON" - "$WORK/stat.json" <<'PY' || fail "subscriber keys: $(cat "$WORK/stat.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
keys = {"index", "name", "pid", "alive", "state", "policy", "evict_after_ns", "position",
        "lag_bytes", "lag_messages", "messages_read", "bytes_read", "lost_bytes",
        "lost_events", "evictions"}
assert len(doc["subscribers"]) == 2, doc["subscribers"]
for s in doc["subscribers"]:
    assert set(s) == keys, sorted(s)
    assert isinstance(s["index"], int) and 0 <= s["index"] < 64, s
PY
# The text form carries the same numbers (the index depends on the table).
"$MRB" stat "$ring" >"$WORK/stat.txt"
grep -q '^subscribers        2$' "$WORK/stat.txt" || fail "text subscriber count: $(cat "$WORK/stat.txt")"
sed -n '/^subscriber [0-9]* *rec: /,+3p' "$WORK/stat.txt" | sed 's/^subscriber [0-9]* */subscriber N  /' >"$WORK/rec.txt"
cat >"$WORK/rec.expected" <<'EOF'
subscriber N  rec: no process, detached, keep
  position         64, lag 32 bytes, 1 messages
  read             2 messages, 3 bytes
  lost             0 bytes in 0 events, 0 evictions
EOF
assert_same_file "$WORK/rec.expected" "$WORK/rec.txt" "text stat of rec"

# Restarted, rec resumes right after what it released: no gap, no repeat.
printf 'dddd\n' | "$MRB" write "$ring"
"$MRB" read "$ring" --subscriber rec >"$WORK/out"
printf 'ccc\ndddd\n' >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/out" "rec resumed"
"$MRB" read "$ring" --subscriber late >"$WORK/out"
assert_eq dddd "$(cat "$WORK/out")" "late got what came after it joined"

# ---- unnamed (--subscriber ''): live end, gone when the command ends -------
"$MRB" read "$ring" --subscriber '' >"$WORK/out"
[ ! -s "$WORK/out" ] || fail "an unnamed subscriber read old messages"
"$MRB" read "$ring" --subscriber '' --follow >"$WORK/unnamed.out" &
follower=$!
unnamed_alive() {
	stat_json "$ring"
	[ "$(sub_field "$WORK/stat.json" '' pid)" = "$follower" ] &&
		[ "$(sub_field "$WORK/stat.json" '' alive)" = true ] &&
		[ "$(sub_field "$WORK/stat.json" '' state)" = active ]
}
wait_until "the unnamed follower joins" unnamed_alive
printf 'live1\nlive2\n' | "$MRB" write "$ring"
has_lines() { [ "$(wc -l <"$1")" -eq "$2" ]; }
wait_until "the unnamed follower reads 2 messages" has_lines "$WORK/unnamed.out" 2
kill -TERM "$follower"
wait "$follower" || fail "unnamed follower exited $? on SIGTERM"
printf 'live1\nlive2\n' >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/unnamed.out" "unnamed follower"
stat_json "$ring"
assert_eq missing "$(sub_field "$WORK/stat.json" '' state)" "the unnamed entry left"

# ---- a name in use (6), kill -9, takeover ------------------------------------
"$MRB" read "$ring" --subscriber rec --follow >"$WORK/rec.out" &
follower=$!
rec_is() {
	stat_json "$ring"
	[ "$(sub_field "$WORK/stat.json" rec pid) $(sub_field "$WORK/stat.json" rec alive)" = "$1" ]
}
wait_until "rec's follower joins" rec_is "$follower true"
wait_until "rec reads live1 and live2" has_lines "$WORK/rec.out" 2
expect_exit 6 "$MRB" read "$ring" --subscriber rec 2>"$WORK/err"
assert_eq "mrb read: $ring: subscriber 'rec' is read by another live process" "$(cat "$WORK/err")" "name busy"
expect_exit 6 "$MRB" unsubscribe "$ring" rec 2>"$WORK/err"
assert_eq "mrb unsubscribe: $ring: subscriber 'rec' is read by a live process; stop it first" \
	"$(cat "$WORK/err")" "unsubscribe of a live subscriber"
kill -KILL "$follower"
wait "$follower" 2>/dev/null || true
rec_is "$follower false" || fail "rec after kill -9: $(cat "$WORK/stat.json")"
# The next process with the name takes over where the killed one released.
printf 'after-kill\n' | "$MRB" write "$ring"
"$MRB" read "$ring" --subscriber rec >"$WORK/out"
assert_eq after-kill "$(cat "$WORK/out")" "rec after its reader was killed"

# ---- keep holds producers back; unsubscribe frees them ------------------------
small=$WORK/small
"$MRB" create "$small" --size 1K --fanout >/dev/null
"$MRB" read "$small" --subscriber kept >/dev/null
"$MRB" read "$small" --subscriber reader >/dev/null
# 32 records of 32 bytes fill 1 KiB; "kept" never reads them.
seq -f "m%03g" 1 32 | "$MRB" write "$small"
"$MRB" read "$small" --subscriber reader >"$WORK/out"
seq -f "m%03g" 1 32 >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/out" "reader of the small ring"
expect_exit 5 sh -c "echo m033 | '$MRB' write '$small'" 2>"$WORK/err"
grep -q "ring buffer full" "$WORK/err" || fail "write past a kept subscriber: $(cat "$WORK/err")"
stat_json "$small"
assert_eq 1024 "$(sub_field "$WORK/stat.json" kept lag_bytes)" "kept lag_bytes"
assert_eq 32 "$(sub_field "$WORK/stat.json" kept lag_messages)" "kept lag_messages"
"$MRB" unsubscribe "$small" kept >"$WORK/out"
assert_eq "$small: subscriber 'kept' removed" "$(cat "$WORK/out")" "unsubscribe output"
echo m033 | "$MRB" write "$small"
"$MRB" read "$small" --subscriber reader >"$WORK/out"
assert_eq m033 "$(cat "$WORK/out")" "write after unsubscribe"
stat_json "$small"
assert_eq missing "$(sub_field "$WORK/stat.json" kept state)" "kept is gone"
expect_exit 3 "$MRB" unsubscribe "$small" kept 2>"$WORK/err"
assert_eq "mrb unsubscribe: $small: no subscriber named 'kept'" "$(cat "$WORK/err")" "unsubscribe twice"
expect_exit 3 "$MRB" unsubscribe "$WORK/nothing" kept 2>/dev/null
expect_exit 2 "$MRB" unsubscribe "$small" 2>/dev/null
expect_exit 2 "$MRB" unsubscribe "$small" '' 2>/dev/null

# ---- --evict-after: a stopped subscriber stops holding producers back --------
ev=$WORK/evict
"$MRB" create "$ev" --size 1K --fanout >/dev/null
"$MRB" read "$ev" --subscriber slow --evict-after 0.2 --follow >"$WORK/slow.out" 2>"$WORK/slow.err" &
slow=$!
"$MRB" read "$ev" --subscriber fast --follow >"$WORK/fast.out" &
fast=$!
joined() {
	stat_json "$ev"
	[ "$(sub_field "$WORK/stat.json" slow alive) $(sub_field "$WORK/stat.json" fast alive)" = "true true" ]
}
wait_until "slow and fast join" joined
assert_eq evict "$(sub_field "$WORK/stat.json" slow policy)" "slow policy"
assert_eq 200000000 "$(sub_field "$WORK/stat.json" slow evict_after_ns)" "slow evict_after_ns"
kill -STOP "$slow"
# 40 records: the 33rd waits for the stopped subscriber until it is evicted.
seq -f "m%03g" 1 40 | "$MRB" write "$ev" --block --timeout 60
wait_until "fast reads all 40" has_lines "$WORK/fast.out" 40
stat_json "$ev"
assert_eq evicted "$(sub_field "$WORK/stat.json" slow state)" "slow state while stopped"
assert_eq 1 "$(sub_field "$WORK/stat.json" slow evictions)" "slow evictions"
"$MRB" stat "$ev" >"$WORK/stat.txt"
grep -q '^subscriber [0-9]* *slow: pid '"$slow"' (alive), evicted, evict after 0.2s$' "$WORK/stat.txt" ||
	fail "text stat of an evicted subscriber: $(cat "$WORK/stat.txt")"
kill -CONT "$slow"
# Resumed, it is told once and goes on from the oldest lap boundary (1024).
wait_until "slow reads again" has_lines "$WORK/slow.out" 8
kill -TERM "$slow" "$fast"
wait "$slow" || fail "slow exited $?"
wait "$fast" || fail "fast exited $?"
seq -f "m%03g" 33 40 >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/slow.out" "slow after its eviction"
printf '%s\n' "mrb read: the subscriber was evicted; 1024 bytes were overwritten before it read them" \
	"mrb read: 1024 bytes lost in 1 events (evicted)" >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/slow.err" "slow's stderr"
stat_json "$ev"
assert_eq 1024 "$(sub_field "$WORK/stat.json" slow lost_bytes)" "slow lost_bytes"
assert_eq 1 "$(sub_field "$WORK/stat.json" slow lost_events)" "slow lost_events"
assert_eq 8 "$(sub_field "$WORK/stat.json" slow messages_read)" "slow messages_read"

# ---- --lossy taps a queue ring and counts what it lost ------------------------
q=$WORK/tapped
"$MRB" create "$q" --size 1K >/dev/null
"$MRB" read "$q" --subscriber tap --lossy --follow >"$WORK/tap.out" 2>"$WORK/tap.err" &
tap=$!
tap_alive() {
	stat_json "$q"
	[ "$(sub_field "$WORK/stat.json" tap alive)" = true ]
}
wait_until "the tap joins" tap_alive
assert_eq lossy "$(sub_field "$WORK/stat.json" tap policy)" "tap policy"
kill -STOP "$tap"
# 100 messages of 6 bytes (32-byte records) through the consumer, 10 at a
# time: producers lap the stopped tap three times over.
for i in 0 1 2 3 4 5 6 7 8 9; do
	seq -f "msg%03g" $((i * 10 + 1)) $((i * 10 + 10)) | "$MRB" write "$q"
	"$MRB" read "$q" >/dev/null
done
kill -CONT "$tap"
# It skips to the oldest lap boundary (3072 of 3200): the last 4 messages.
wait_until "the tap reads the last 4" has_lines "$WORK/tap.out" 4
kill -TERM "$tap"
wait "$tap" || fail "tap exited $?"
seq -f "msg%03g" 97 100 >"$WORK/expected"
assert_same_file "$WORK/expected" "$WORK/tap.out" "tap output"
assert_eq "mrb read: 3072 bytes lost in 1 events (lapped by producers)" "$(cat "$WORK/tap.err")" "tap stderr"
stat_json "$q"
assert_eq 3072 "$(sub_field "$WORK/stat.json" tap lost_bytes)" "tap lost_bytes"
assert_eq 1 "$(sub_field "$WORK/stat.json" tap lost_events)" "tap lost_events"
assert_eq 4 "$(sub_field "$WORK/stat.json" tap messages_read)" "tap messages_read"
# delivered + lost = produced, in ring bytes.
assert_eq 3200 "$(($(sub_field "$WORK/stat.json" tap messages_read) * 32 + 3072))" "tap bytes add up"

echo PASS
