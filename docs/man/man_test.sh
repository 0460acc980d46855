#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: man_test.sh MRB MRB_1 MRB_3 MRB_H
set -eu
mrb=$1
page1=$2
page3=$3
header=$4
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/man-test.XXXXXX")
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

for page in "$page1" "$page3"; do
	groff -man -ww -z "$page" 2>"$work/warnings" || fail "groff failed on $page"
	[ ! -s "$work/warnings" ] || fail "$page: $(cat "$work/warnings")"
done

# mrb.1: every long option of every command's --help (roff writes - as \-).
for cmd in create stat dump write read recover upgrade unsubscribe; do
	"$mrb" $cmd --help >"$work/$cmd.help"
	grep -q -- "--help" "$work/$cmd.help" || fail "no options parsed from mrb $cmd --help"
	sed -n 's/^ *\(-[A-Za-z], \)\{0,1\}--\([a-z-]*\).*/\2/p' "$work/$cmd.help" |
		{ grep -v '^help$' || true; } >"$work/$cmd.options"
	while read -r option; do
		roff=$(printf '%s' "$option" | sed 's/-/\\\\-/g')
		grep -q -- "\\\\-\\\\-$roff" "$page1" || fail "mrb.1 does not describe $cmd --$option"
	done <"$work/$cmd.options"
	grep -q "^\\.SS $cmd\$" "$page1" || fail "mrb.1 has no section for $cmd"
done
# ... and every exit status 0..10, in order.
sed -n '/^\.SH EXIT STATUS/,/^\.SH /p' "$page1" | sed -n 's/^\.B \([0-9][0-9]*\)$/\1/p' |
	tr '\n' ' ' >"$work/codes"
[ "$(cat "$work/codes")" = "0 1 2 3 4 5 6 7 8 9 10 11 " ] || fail "mrb.1 exit statuses: $(cat "$work/codes")"

# mrb.3: every function declared in mrb.h, in the SYNOPSIS, and every
# error code, under ERRORS.
sed -n 's/^[a-z].*[ *]\(mrb_[a-z_]*\)(.*/\1/p' "$header" | sort -u >"$work/functions"
[ "$(wc -l <"$work/functions")" -ge 20 ] || fail "too few functions parsed from mrb.h"
sed -n '/^\.SH SYNOPSIS/,/^\.SH /p' "$page3" >"$work/synopsis"
while read -r fn; do
	grep -q "[ *]$fn(" "$work/synopsis" || fail "mrb.3 SYNOPSIS lacks $fn"
done <"$work/functions"
sed -n 's/^	\(MRB_E[A-Z_]*\) = .*/\1/p' "$header" >"$work/codes"
[ "$(wc -l <"$work/codes")" -ge 14 ] || fail "too few error codes parsed from mrb.h"
sed -n '/^\.SH ERRORS/,/^\.SH /p' "$page3" >"$work/errors"
while read -r code; do
	grep -q "^\\.B $code\$" "$work/errors" || fail "mrb.3 ERRORS lacks $code"
done <"$work/codes"

echo PASS
