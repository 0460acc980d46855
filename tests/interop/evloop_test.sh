#!/bin/sh
# SPDX-License-Identifier: MIT
# Readers waiting in event loops (issue 17), fed by producers in the other
# languages, tagged scenario "live" (per-producer sequence numbers and
# checksums: every message exactly once, in each producer's order, intact):
#
#   evloop_test.sh c    the C reader in an epoll loop on its doorbell; Go and
#                       Python producers (two each)
#   evloop_test.sh py   the Python reader awaiting read_async in asyncio
#                       (uvloop's loop when installed); C and Go producers
#   evloop_test.sh go   one Go process reading RINGS rings at once, a
#                       goroutine each, parked in the netpoller; each ring fed
#                       by a C and a Python producer
#   evloop_test.sh py-selectors
#                       the Python reader in a selectors loop of its own on
#                       ring.doorbell_fd() (arm_read, select): first idle for
#                       IDLE seconds (3) with the producers held at the
#                       barrier (under 2% of a core, by getrusage), then C and
#                       Go producers (two each)
. tests/interop/testlib.sh

[ $# -eq 1 ] || fail "usage: $0 c|py|go|py-selectors"
consumer=$1
MRB_INTEROP_WAIT=evloop
export MRB_INTEROP_WAIT

if [ "$consumer" = go ]; then
	rings=${RINGS:-6}
	base=$WORK/evloop.ring
	spawn_program go reader "$base" --scenario live --producers 2 --rings "$rings"
	running="$!:go-reader"
	i=0
	while [ "$i" -lt "$rings" ]; do
		spawn_program c writer "$base.$i" --scenario live --producer 0
		running="$running $!:c-producer-ring-$i"
		spawn_program py writer "$base.$i" --scenario live --producer 1
		running="$running $!:py-producer-ring-$i"
		i=$((i + 1))
	done
	wait_all $running
	echo "PASS: c and py producers -> $rings rings -> go goroutines in the netpoller"
	exit 0
fi

if [ "$consumer" = py-selectors ]; then
	ring=$WORK/evloop.ring
	barrier=$WORK/barrier
	mkdir "$barrier"
	# The reader lets the producers go itself, after its idle wait.
	spawn_program py selector_reader "$ring" --scenario live --producers 4 \
		--barrier "$barrier" --idle "${IDLE:-3}"
	running="$!:py-selector-reader"
	id=0
	for lang in c go c go; do
		spawn_program "$lang" writer "$ring" --scenario live --producer "$id" --barrier "$barrier"
		running="$running $!:$lang-producer-$id"
		id=$((id + 1))
	done
	wait_all $running
	echo "PASS: c and go producers -> py reader in a selectors loop on its doorbell"
	exit 0
fi

case "$consumer" in
c) producer_langs="go py go py" ;;
py) producer_langs="c go c go" ;;
*) fail "unknown consumer $consumer" ;;
esac
producers=$(echo $producer_langs | wc -w)
ring=$WORK/evloop.ring
barrier=$WORK/barrier
mkdir "$barrier"
spawn_program "$consumer" reader "$ring" --scenario live --producers "$producers"
running="$!:$consumer-reader"
id=0
for lang in $producer_langs; do
	spawn_program "$lang" writer "$ring" --scenario live --producer "$id" --barrier "$barrier"
	running="$running $!:$lang-producer-$id"
	id=$((id + 1))
done
wait_ready "$barrier" "$producers"
touch "$barrier/go"
wait_all $running
echo "PASS: producers ($producer_langs) -> $consumer reader in an event loop"
