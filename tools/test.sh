#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite, as CI runs it: installs what is missing
# (tools/setup.sh), then
#   1. bazel test //...                         every test, every language
#   2. bazel test --config=asan  (C targets)    AddressSanitizer + UBSan
#   3. bazel test --config=tsan  (core, recovery) ThreadSanitizer
# and ends with one summary line "tests: N passed, M failed".
#
# Environment: BAZEL_OUTPUT_BASE to build elsewhere than Bazel's default;
# MRB_TEST_SKIP_SANITIZERS=1 to run step 1 only.
set -uo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh || exit 1

bazel_cmd=(bazel)
[ -n "${BAZEL_OUTPUT_BASE:-}" ] && bazel_cmd+=("--output_base=$BAZEL_OUTPUT_BASE")

# C targets the sanitizers check: the core, the robustness suite, the CLI.
sanitized_targets=(//core/... //tests/robustness/... //tools/mrb/...
	//tests/vectors:vectors_c_test //tests/vectors:vectors_regenerate_test
	//tests/interop:matrix_c_to_c_test)
# The core, and the recovery and lifecycle programs whose races matter most
# (the others fork mostly, which TSan cannot see across).
tsan_targets=(//core/...
	//tests/robustness:{fork_inherited_handle,close_in_callback,recover_close_interrupts}
	//tests/robustness:{producer_slots,recover_batch_suffix,recover_unwritten_header}
	//tests/robustness:{recover_unwritten_live,recover_explicit,wait_huge_timeout}
	//tests/robustness:{adv_skip_misattributed,adv_batch_lane_shadow,liveness_unknown_is_alive})

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

run() {
	echo "==> bazel test $*"
	"${bazel_cmd[@]}" test "$@" 2>&1 | tee -a "$log" |
		grep -E "^(//|Executed|INFO: Build completed|FAILED:|ERROR:)" || true
	local rc=${PIPESTATUS[0]}
	[ "$rc" -eq 0 ] || status=$rc
}

start=$(date +%s)
run //...
if [ "${MRB_TEST_SKIP_SANITIZERS:-0}" != 1 ]; then
	run --config=asan -- "${sanitized_targets[@]}" -//tests/robustness:fuzz_ring_test \
		-//tests/robustness:fuzz_subscribers_test -//tests/robustness:fuzz_workers_test
	run --config=tsan -- "${tsan_targets[@]}"
fi
"${bazel_cmd[@]}" shutdown >/dev/null 2>&1 || true

passed=$(grep -cE "^//[^ ]+ +(\(cached\) )?PASSED" "$log")
failed=$(grep -cE "^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|INCOMPLETE)" "$log")
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	failed=1 # a build error: no test line says so
fi
echo "elapsed: $(($(date +%s) - start)) s"
echo "tests: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
