#!/bin/sh
# Builds and runs tests/external_workspace, a separate Bazel workspace that
# depends on @mmap_ringbuffer//core:mrb through local_repository, with a
# nested Bazel of its own (own output base, batch mode, no server left).
# The consumer workspace, core/, the root WORKSPACE and the offline stand-ins
# are copied from the source tree (found through a runfile's symlink, since
# Bazel cannot name a WORKSPACE file as a data dependency) to a temporary
# directory, so the nested build writes nothing into the repository.
# Usage: external_workspace_test.sh [SOURCE_ROOT]
#   (outside Bazel: tests/install/external_workspace_test.sh .)
set -eu

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

if [ $# -gt 0 ]; then
	src_root=$1
else
	app=$(readlink -f tests/external_workspace/app.c)
	src_root=$(dirname "$(dirname "$(dirname "$app")")")
fi
[ -f "$src_root/tests/external_workspace/WORKSPACE" ] ||
	fail "no tests/external_workspace under '$src_root'"
if [ -n "${TEST_TMPDIR:-}" ]; then
	tmp=$TEST_TMPDIR
else
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrb-external.XXXXXX")
	# Bazel leaves read-only directories in its output base.
	trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
fi
copy=$tmp/src
rm -rf "$copy"
mkdir -p "$copy/third_party"
cp -RL "$src_root/WORKSPACE" "$src_root/core" "$copy/"
mkdir -p "$copy/tests"
cp -RL "$src_root/tests/external_workspace" "$copy/tests/"
for dep in rules_cc rules_java remote_coverage_tools; do
	cp -RL "$src_root/third_party/$dep" "$copy/third_party/"
done

# Bazel wants a writable HOME; the output base is this test's own.
export HOME="$tmp/home"
mkdir -p "$HOME"
cd "$copy/tests/external_workspace"
bazel --batch --output_base="$tmp/ob" run \
	--symlink_prefix=/ --spawn_strategy=local --jobs=2 \
	--noshow_progress //:app -- "$tmp/ring" >"$tmp/app.out" 2>"$tmp/bazel.log" || {
	cat "$tmp/bazel.log" >&2
	fail "nested bazel run failed"
}
grep -qx 'ok: 1000 messages through @mmap_ringbuffer//core:mrb' "$tmp/app.out" ||
	fail "app output: $(cat "$tmp/app.out")"
[ -f "$tmp/ring" ] || fail "app made no ring"
echo PASS
