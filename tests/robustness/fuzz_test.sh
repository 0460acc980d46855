#!/bin/bash
# Builds a libFuzzer target (fuzz_ring.c, or the one named as $1:
# fuzz_subscribers.c, fuzz_workers.c) with clang directly from the core sources, since Bazel
# here cannot switch compilers per target, and runs it for FUZZ_SECONDS
# (default 20 for fuzz_ring; 10 each for fuzz_subscribers and fuzz_workers,
# which share the 20 s the reader table had) from its committed seed corpus
# (corpus/, corpus_sub/, corpus_workers/). Any
# finding (crash, sanitizer report, out-of-mapping access, hang) fails the
# test. A longer run: bazel test //tests/robustness:fuzz_ring_test
#   --test_env=FUZZ_SECONDS=600 --test_timeout=900 (see docs/ROBUSTNESS.md).
set -euo pipefail

target="${1:-fuzz_ring}"
case "$target" in
fuzz_ring)
	# Whole ring files: a capacity-1024 ring is 65536 + 1024 bytes.
	seeds=corpus max_len=66560 default_seconds=20 ;;
fuzz_subscribers)
	# Two bytes and at most 64 patches of 8 bytes (see the target).
	seeds=corpus_sub max_len=514 default_seconds=10 ;;
fuzz_workers)
	# The same input shape over the worker-group header (see the target).
	seeds=corpus_workers max_len=514 default_seconds=10 ;;
*)
	echo "FAIL: unknown fuzz target $target" >&2
	exit 1 ;;
esac

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
	"$root"/core/src/*.c "$here/$target.c" "$here/guarded_mmap.c" \
	-Wl,--wrap=mmap -Wl,--wrap=munmap -lpthread \
	-o "$work/$target"

cp "$here/$seeds"/* "$work/corpus/"
seconds="${FUZZ_SECONDS:-$default_seconds}"
export FUZZ_RING_DIR="$work/ring"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# -timeout turns a hang of a single input into a finding.
if ! "$work/$target" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
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
