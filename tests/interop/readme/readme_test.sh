#!/bin/sh
# SPDX-License-Identifier: MIT
# The README's "Using it from several languages" programs, run together: the
# C producer feeds the Go consumer, then the Python consumer (one ring each;
# the consumer is started first, so it also shows waiting for data).
set -eu
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/readme.XXXXXX")
producer=tests/interop/readme_producer
go_consumer=tests/interop/readme_go_consumer
export PYTHONPATH="$(pwd)/bindings/python" PYTHONDONTWRITEBYTECODE=1

expected=$work/expected
for i in 0 1 2 3 4 5 6 7 8 9; do echo "event $i"; done >"$expected"

"$go_consumer" "$work/go.ring" >"$work/go.out" &
consumer=$!
"$producer" "$work/go.ring"
wait "$consumer"
diff "$expected" "$work/go.out"

/usr/bin/python3 tests/interop/readme/consumer.py "$work/py.ring" >"$work/py.out" &
consumer=$!
"$producer" "$work/py.ring"
wait "$consumer"
diff "$expected" "$work/py.out"
echo "PASS: C producer -> Go consumer, C producer -> Python consumer"
