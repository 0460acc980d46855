#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks on the tracked files of the repository.
#   repo_test.sh --binaries [ROOT]  fail if a tracked file is a binary (a NUL
#                                   byte in its first 8 KiB, git's rule) over
#                                   1 MiB
#   repo_test.sh --format [ROOT]    fail if clang-format, gofmt or black would
#                                   change a tracked file
# Each check first runs on a scratch repository seeded with a violation and
# must fail there, so a check that cannot fail fails the test.
# ROOT defaults to the source tree behind this test's runfiles.
set -euo pipefail

mode=${1:?usage: repo_test.sh --binaries|--format [ROOT]}
if [ $# -ge 2 ]; then
	root=$2
else
	root=$(dirname "$(readlink -f LICENSE)")
fi
git -C "$root" rev-parse --git-dir >/dev/null 2>&1 || {
	echo "repo_test: $root is not a git work tree" >&2
	exit 1
}
export PATH="/usr/local/go/bin:$PATH"

check_binaries() { # check_binaries ROOT: lists offenders, exit 1 if any
	(cd "$1" && git ls-files -z) | (cd "$1" && /usr/bin/python3 -c '
import os, sys
bad = []
for name in sys.stdin.buffer.read().split(b"\0"):
    if not name or not os.path.isfile(name):
        continue
    size = os.path.getsize(name)
    with open(name, "rb") as f:
        if size > 1 << 20 and b"\0" in f.read(8192):
            bad.append(f"{name.decode()} ({size} bytes)")
for b in bad:
    print("tracked binary over 1 MiB:", b)
sys.exit(1 if bad else 0)
')
}

check_format() { # check_format ROOT: lists offenders, exit 1 if any
	local status=0 files
	cd "$1"
	mapfile -t files < <(git ls-files '*.c' '*.h' '*.cc' |
		grep -v -x -e bindings/go/core_amalgamation.c -e bindings/go/mrb.h || true)
	if [ ${#files[@]} -gt 0 ] && ! clang-format --dry-run -Werror "${files[@]}" >/dev/null 2>&1; then
		clang-format --dry-run -Werror "${files[@]}" 2>&1 |
			sed -n 's/^\([^:]*\):\([0-9]*\):[0-9]*: error: code should be clang-formatted.*/not clang-formatted: \1:\2/p' |
			head -n 20
		status=1
	fi
	mapfile -t files < <(git ls-files '*.go')
	if [ ${#files[@]} -gt 0 ]; then
		local unformatted
		unformatted=$(gofmt -l "${files[@]}")
		if [ -n "$unformatted" ]; then
			echo "not gofmt-ed: $unformatted"
			status=1
		fi
	fi
	mapfile -t files < <(git ls-files '*.py')
	if [ ${#files[@]} -gt 0 ] && ! black --check -q "${files[@]}"; then
		status=1
	fi
	return $status
}

scratch=$(mktemp -d "${TEST_TMPDIR:-/tmp}/repo-test.XXXXXX")
git init -q "$scratch"
case "$mode" in
--binaries)
	head -c $((1024 * 1024 + 1)) /dev/zero >"$scratch/big.bin"
	head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$scratch/big.txt"
	git -C "$scratch" add big.bin big.txt
	out=$(check_binaries "$scratch") && {
		echo "repo_test: the check missed a 1 MiB binary" >&2
		exit 1
	}
	[ "$out" = "tracked binary over 1 MiB: big.bin (1048577 bytes)" ] || {
		echo "repo_test: unexpected self-check result: $out" >&2
		exit 1
	}
	check_binaries "$root"
	echo "no tracked binary over 1 MiB in $(cd "$root" && git ls-files | wc -l) files"
	;;
--format)
	printf 'int  main( void ){return 0;}\n' >"$scratch/bad.c"
	git -C "$scratch" add bad.c
	if (check_format "$scratch" >/dev/null 2>&1); then
		echo "repo_test: the check missed a badly formatted C file" >&2
		exit 1
	fi
	(check_format "$root")
	echo "all tracked C, Go and Python files are formatted"
	;;
*)
	echo "usage: repo_test.sh --binaries|--format [ROOT]" >&2
	exit 2
	;;
esac
