#!/bin/sh
# SPDX-License-Identifier: MIT
# Consumer handoff across languages: a writer stores the "stored" scenario,
# then readers in three languages take turns, each its own process reading
# the next third and exiting; each picks up exactly where the previous one
# stopped (the consumer position and role live in the file). The writer and
# the order of the readers rotate through all three languages.
. tests/interop/testlib.sh

count=$(awk '$1 == "stored" { print $4 }' "$MRB_INTEROP_SPEC")
first_cut=$((count / 3))
second_cut=$((2 * count / 3))
for order in "c go py" "go py c" "py c go"; do
	set -- $order
	ring=$WORK/handoff.ring
	run_program "$1" writer "$ring" --scenario stored || fail "$1 writer"
	run_program "$1" reader "$ring" --scenario stored --to "$first_cut" ||
		fail "$1 reader, first turn (order: $order)"
	run_program "$2" reader "$ring" --scenario stored --from "$first_cut" --to "$second_cut" ||
		fail "$2 reader, second turn (order: $order)"
	run_program "$3" reader "$ring" --scenario stored --from "$second_cut" ||
		fail "$3 reader, last turn (order: $order)"
	rm -f "$ring"
done
echo "PASS: consumer handoff in every rotation of c, go, py"
