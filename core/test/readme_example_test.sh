#!/bin/sh
# SPDX-License-Identifier: MIT
# Compiles and runs the C example in README.md exactly as printed there.
set -eu
readme=$1
shift
work=${TEST_TMPDIR:-$(mktemp -d)}
awk '/<!-- readme-example: hello.c/ { found = 1; next }
     found && /^```c/ { inside = 1; next }
     inside && /^```/ { exit }
     inside { print }' "$readme" >"$work/hello.c"
[ -s "$work/hello.c" ] || { echo "no example found in $readme" >&2; exit 1; }
srcs=""
for f in "$@"; do
	case "$f" in *.c) srcs="$srcs $f" ;; esac
done
include=$(dirname "$(dirname "$(echo "$@" | tr ' ' '\n' | grep 'include/mrb/mrb.h')")")
cc -std=c11 -Wall -Wextra -Werror -I"$include" -o "$work/hello" "$work/hello.c" $srcs
out=$("$work/hello")
echo "$out"
[ "$out" = "read 5 bytes: hello" ]
# It cleans up after itself.
if [ -e /dev/shm/hello.ring ]; then
	echo "the example left /dev/shm/hello.ring behind" >&2
	exit 1
fi
