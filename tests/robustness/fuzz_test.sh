#!/bin/bash
# Builds the libFuzzer target (fuzz_ring.c) with clang directly from the core
# sources, since Bazel here cannot switch compilers per target, and runs it
# for FUZZ_SECONDS (default 20) from the committed seed corpus. Any finding
# (crash, sanitizer report, out-of-mapping access, hang) fails the test.
# A longer run: bazel test //tests/robustness:fuzz_ring_test
#   --test_env=FUZZ_SECONDS=600 --test_timeout=900 (see docs/ROBUSTNESS.md).
set -euo pipefail

clang=/usr/bin/clang
if [[ ! -x "$clang" ]]; then
	echo "FAIL: $clang not found (the fuzzer needs clang with libFuzzer)" >&2
	exit 1
fi
root="${TEST_SRCDIR:?}/${TEST_WORKSPACE:?}"
here="$root/tests/robustness"
work="${TEST_TMPDIR:?}/fuzz"
mkdir -p "$work/corpus" "$work/artifacts" "$work/ring"

"$clang" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Wall -Wextra -Werror \
	-I"$root/core/include" -I"$root/core/src" \
	"$root"/core/src/*.c "$here/fuzz_ring.c" "$here/guarded_mmap.c" \
	-Wl,--wrap=mmap -Wl,--wrap=munmap -lpthread \
	-o "$work/fuzz_ring"

cp "$here"/corpus/* "$work/corpus/"
seconds="${FUZZ_SECONDS:-20}"
export FUZZ_RING_DIR="$work/ring"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# -max_len fits a capacity-1024 ring (4096 + 1024 bytes); -timeout turns a
# hang of a single input into a finding.
if ! "$work/fuzz_ring" -max_total_time="$seconds" -max_len=5120 -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$work/corpus" 2>"$work/log"; then
	tail -n 60 "$work/log" >&2
	for f in "$work/artifacts"/*; do
		[[ -e "$f" ]] && { echo "finding: $f" >&2; base64 "$f" | head -c 8000 >&2; }
	done
	echo "FAIL: the fuzzer found a problem" >&2
	exit 1
fi
grep -E "^(stat::|Done|#[0-9]+.*DONE)" "$work/log" || true
tail -n 3 "$work/log"
echo "PASS: no findings in ${seconds}s"
