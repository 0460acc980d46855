#!/bin/sh
# SPDX-License-Identifier: MIT
# Format 1 rings keep working through `mrb upgrade` (docs/FORMAT.md,
# appendix A): one language, v1_upgrade_test.sh c|go|py,
#   1. opens every committed format 1 vector as it is and must get its
#      version error (the library never writes a format 1 ring);
#   2. reads every one after `mrb upgrade` and must get exactly the messages
#      the vector lists, in order.
set -eu
lang=$1
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/v1.XXXXXX")
mkdir "$work/direct" "$work/upgraded"
cp tests/vectors/v1/*.ring "$work/upgraded/"
cp tests/vectors/v1/*.json "$work/upgraded/"
cp tests/vectors/v1/*.ring "$work/direct/"
for json in tests/vectors/v1/*.json; do
	/usr/bin/python3 - "$json" "$work/direct/$(basename "$json")" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["open_error"] = "version"
d["messages"] = []
json.dump(d, open(sys.argv[2], "w"))
PY
done
for ring in "$work"/upgraded/*.ring; do
	tools/mrb/mrb upgrade "$ring" >/dev/null
	if tools/mrb/mrb upgrade "$ring" >/dev/null 2>&1; then
		echo "FAIL: a second upgrade of $(basename "$ring") did not refuse" >&2
		exit 1
	fi
done
tests/vectors/read_vectors_test.sh "$lang" "$work/direct"
tests/vectors/read_vectors_test.sh "$lang" "$work/upgraded"
echo "PASS: $lang refuses $(ls tests/vectors/v1/*.ring | wc -l) format 1 vectors and reads them after mrb upgrade"
