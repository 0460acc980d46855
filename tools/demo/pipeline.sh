#!/bin/sh
# SPDX-License-Identifier: MIT
# The cross-language pipeline demo:
#
#   C producer -> ring A -> Go stage (check, transform) -> ring B -> Python consumer (check)
#
# Three processes in three languages move real traffic through two ring files
# and print, per hop, messages, megabytes and rates; the Python consumer
# checks every message and, at the end, the count and a CRC-32 over all
# bodies against what the C producer sent.
#
# Usage: tools/demo/pipeline.sh [--seconds S | --count N | --quick] [--size BYTES]
#   --seconds S   run the producer for S seconds (default 3)
#   --count N     send N messages
#   --quick       --count 20000 (what the Bazel test runs)
#   --size BYTES  capacity of each ring (default 1048576)
#
# Needs a C compiler, Go (/usr/local/go or on PATH), and Python 3 with cffi
# (tools/setup.sh installs them). Programs are built into build/demo/ on the
# first run. Environment: PYTHON (default /usr/bin/python3), and, to use
# prebuilt programs, PIPELINE_PRODUCER and PIPELINE_STAGE (the Bazel test does).
#
# Message format (ring A): seq (u64 LE) | body | CRC-32 of seq+body (u32 LE),
# body = 16 + seq mod 241 bytes, byte j = (31*seq + j) mod 256. The Go stage
# XORs every body byte with 0x5a and recomputes the CRC. The last message is
# an end marker: 8 bytes 0xff | count (u64) | CRC-32 over all bodies (u32) |
# CRC-32 of those 20 bytes.
set -eu

mode=--seconds
amount=3
size=1048576
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds | --count)
		[ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
		mode=$1
		amount=$2
		shift
		;;
	--quick)
		mode=--count
		amount=20000
		;;
	--size)
		[ $# -ge 2 ] || { echo "$0: --size needs a value" >&2; exit 2; }
		size=$2
		shift
		;;
	-h | --help)
		sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "$0: unknown argument $1 (try --help)" >&2
		exit 2
		;;
	esac
	shift
done

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$root/bindings/python"
export PYTHONDONTWRITEBYTECODE=1

# --- programs: prebuilt (Bazel) or built here -------------------------------
producer=${PIPELINE_PRODUCER:-}
stage=${PIPELINE_STAGE:-}
build=$root/build/demo
if [ -z "$producer" ]; then
	producer=$build/producer
	mkdir -p "$build"
	if [ ! -x "$producer" ] || [ -n "$(find "$here/producer.c" "$root/core" -newer "$producer" -type f)" ]; then
		echo "building the C producer (core from core/src) ..."
		${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -I"$root/core/include" -I"$root/core/src" \
			-o "$producer" "$here/producer.c" "$root"/core/src/*.c -lpthread
	fi
fi
if [ -z "$stage" ]; then
	stage=$build/stage
	mkdir -p "$build"
	if [ ! -x "$stage" ] || [ -n "$(find "$here/stage" "$root/bindings/go" -newer "$stage" -type f)" ]; then
		echo "building the Go stage (first time: compiles the core through cgo) ..."
		BUILD_GO_CACHE=$build/gocache "$root/tests/interop/build_go.sh" "$root" \
			tools/demo/stage="$stage"
	fi
fi
if ! "$PYTHON" -c "import mmap_ringbuffer" 2>/dev/null; then
	echo "building the Python binding in place (bindings/python) ..."
	(cd "$root/bindings/python" && "$PYTHON" ffi_build.py --inplace >/dev/null)
	"$PYTHON" -c "import mmap_ringbuffer"
fi

# --- run ----------------------------------------------------------------------
if [ -d /dev/shm ] && [ -w /dev/shm ]; then shm=/dev/shm; else shm=${TMPDIR:-/tmp}; fi
rings=$(mktemp -d "${TEST_TMPDIR:-$shm}/mrb-pipeline.XXXXXX")
pids=
cleanup() {
	for pid in $pids; do kill "$pid" 2>/dev/null || true; done
	rm -rf "$rings"
}
trap cleanup EXIT INT TERM

echo "pipeline: C producer -> ring A -> Go stage (check, transform) -> ring B -> Python consumer (check)"
echo "rings: $rings/a.ring, $rings/b.ring ($size bytes each); $mode $amount"
"$PYTHON" "$here/consumer.py" "$rings/b.ring" "$size" >"$rings/consumer.out" &
consumer=$!
"$stage" "$rings/a.ring" "$rings/b.ring" "$size" >"$rings/stage.out" &
stage_pid=$!
pids="$consumer $stage_pid"

status=0
"$producer" "$rings/a.ring" "$size" "$mode" "$amount" || status=1
wait "$stage_pid" || status=1
cat "$rings/stage.out"
wait "$consumer" || status=1
cat "$rings/consumer.out"
pids=
if [ "$status" -ne 0 ]; then
	echo "pipeline: FAILED" >&2
	exit 1
fi
