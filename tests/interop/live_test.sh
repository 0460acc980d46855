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

spawn_program "$consumer" reader "$ring" --scenario live --producers "$producers"
consumer_pid=$!
producers_running=
id=0
for lang in $producer_langs; do
	spawn_program "$lang" writer "$ring" --scenario live --producer "$id" --barrier "$barrier"
	producers_running="$producers_running $!:$lang-producer-$id"
	id=$((id + 1))
done
wait_ready "$barrier" "$producers"
touch "$barrier/go"

wait_all $producers_running "$consumer_pid:$consumer-consumer"
echo "PASS: producers ($producer_langs) -> $consumer consumer"
