#!/bin/sh
# SPDX-License-Identifier: MIT
# Format drift check: gen_vectors, run today, must write exactly the committed
# vector files, byte for byte, and no others. If a change to the C library is
# meant to change the format, see README.md ("Compatibility rule").
set -eu
committed=tests/vectors
fresh=$(mktemp -d "${TEST_TMPDIR:-/tmp}/vectors.XXXXXX")
tests/vectors/gen_vectors "$fresh"

status=0
listing() { (cd "$1" && ls -1 -- *.ring *.json); }
if [ "$(listing "$committed")" != "$(listing "$fresh")" ]; then
	echo "FAIL: the generator writes other files than the committed ones:" >&2
	diff "$(listing "$committed" >"$fresh.committed" && echo "$fresh.committed")" \
		"$(listing "$fresh" >"$fresh.new" && echo "$fresh.new")" >&2 || true
	status=1
fi
for file in $(listing "$fresh"); do
	if ! cmp "$committed/$file" "$fresh/$file"; then
		echo "FAIL: $file differs from what the C library writes today" >&2
		status=1
	fi
done
[ "$status" -eq 0 ] && echo "PASS: $(listing "$fresh" | wc -l) vector files reproduced byte for byte"
exit "$status"
