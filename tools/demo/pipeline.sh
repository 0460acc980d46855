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
		core_srcs=$(sed -n '/^MRB_SRCS = \[/,/^\]/s|^ *"\([^"]*\)",.*|'"$root"'/core/\1|p' \
			"$root/core/sources.bzl")
		# shellcheck disable=SC2086 # a list of paths without spaces
		${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -I"$root/core/include" \
			-o "$producer" "$here/producer.c" $core_srcs -lpthread
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
# The Python package of this checkout, with its extension built in place
# (again whenever the binding's C side is newer than it).
if [ -z "${PIPELINE_PRODUCER:-}" ]; then
	extension=$(ls "$root"/bindings/python/mmap_ringbuffer/_mrb_cffi*.so 2>/dev/null | head -n 1)
	if [ -z "$extension" ] || [ -n "$(find "$root/bindings/python/ffi_build.py" \
		"$root/bindings/python/mrb_py.c" "$root/core" -newer "$extension" -type f)" ]; then
		echo "building the Python binding in place (bindings/python) ..."
		(cd "$root/bindings/python" && "$PYTHON" ffi_build.py --inplace >/dev/null)
	fi
fi
"$PYTHON" -c "import mmap_ringbuffer" || {
	echo "$0: cannot import mmap_ringbuffer with $PYTHON (needs cffi; see tools/setup.sh)" >&2
	exit 1
}

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
eval "name_$consumer='Python consumer' name_$stage_pid='Go stage'"

"$producer" "$rings/a.ring" "$size" "$mode" "$amount" >"$rings/producer.out" &
producer_pid=$!
pids="$pids $producer_pid"
eval "name_$producer_pid='C producer'"

# Wait for all three; if one fails, stop the others at once instead of
# letting them wait for traffic that will never come.
status=0
running=$pids
while [ -n "$running" ]; do
	still=
	for pid in $running; do
		if kill -0 "$pid" 2>/dev/null; then
			still="$still $pid"
		elif ! wait "$pid"; then
			eval "echo \"pipeline: the \$name_$pid failed\"" >&2
			status=1
		fi
	done
	running=$still
	if [ "$status" -ne 0 ]; then
		for pid in $running; do kill "$pid" 2>/dev/null || true; done
		running=
	fi
	[ -z "$running" ] || sleep 0.1
done
pids=
cat "$rings/producer.out" "$rings/stage.out" "$rings/consumer.out"
if [ "$status" -ne 0 ]; then
	echo "pipeline: FAILED" >&2
	exit 1
fi
