#!/bin/sh
# SPDX-License-Identifier: MIT
# Many producers in C, Go and Python (two processes each) write the tagged
# scenario "live" into one ring at the same time, released together by a
# start barrier; one CONSUMER_LANG process reads them all and checks
# per-producer sequence numbers and checksums: nothing lost, duplicated,
# reordered within a producer, or torn.
#
#   live_test.sh CONSUMER_LANG     (c go py)
. tests/interop/testlib.sh

[ $# -eq 1 ] || fail "usage: $0 CONSUMER_LANG"
consumer=$1
producer_langs="c go py c go py"
producers=$(echo $producer_langs | wc -w)
ring=$WORK/live.ring
barrier=$WORK/barrier
mkdir "$barrier"

run_program "$consumer" reader "$ring" --scenario live --producers "$producers" &
consumer_pid=$!
producer_pids=
id=0
for lang in $producer_langs; do
	run_program "$lang" writer "$ring" --scenario live --producer "$id" --barrier "$barrier" &
	producer_pids="$producer_pids $!"
	id=$((id + 1))
done
wait_ready "$barrier" "$producers"
touch "$barrier/go"

status=0
for pid in $producer_pids; do
	wait "$pid" || status=1
done
if [ "$status" -ne 0 ]; then
	# The consumer would only time out waiting for the missing messages.
	kill "$consumer_pid" 2>/dev/null
	fail "a producer failed"
fi
wait "$consumer_pid" || fail "$consumer consumer"
echo "PASS: producers ($producer_langs) -> $consumer consumer"
