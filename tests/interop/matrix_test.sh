#!/bin/sh
# SPDX-License-Identifier: MIT
# Writer -> reader interop: WRITER_LANG writes every stream scenario of
# scenarios.txt while READER_LANG reads it concurrently, then every stored
# scenario before READER_LANG starts; each side is its own process, and the
# reader checks bytes, order and count exactly.
#
#   matrix_test.sh WRITER_LANG READER_LANG     (languages: c go py)
. tests/interop/testlib.sh

[ $# -eq 2 ] || fail "usage: $0 WRITER_LANG READER_LANG"
writer=$1
reader=$2
for scenario in $(scenario_names stream); do
	ring=$WORK/$scenario.ring
	# Both sides create the ring (create opens an existing ring of the same
	# size), so either may start first.
	spawn_program "$reader" reader "$ring" --scenario "$scenario"
	reader_pid=$!
	spawn_program "$writer" writer "$ring" --scenario "$scenario"
	writer_pid=$!
	wait_all "$writer_pid:$writer-writer,$scenario" "$reader_pid:$reader-reader,$scenario"
	rm -f "$ring"
done
# Stored scenarios: the writer finishes and exits before the reader starts;
# the messages wait in the file.
for scenario in $(scenario_names stored); do
	ring=$WORK/$scenario.ring
	run_program "$writer" writer "$ring" --scenario "$scenario" ||
		fail "$writer writer, scenario $scenario"
	run_program "$reader" reader "$ring" --scenario "$scenario" ||
		fail "$reader reader, scenario $scenario (writer: $writer)"
	rm -f "$ring"
done
echo "PASS: $writer -> $reader"
