# SPDX-License-Identifier: MIT
# Helpers for the mrb CLI tests. Source it after setting -eu; the test's
# first argument is the path of the mrb binary.

MRB=${1:?usage: $0 PATH_TO_MRB}
case "$MRB" in /*) ;; *) MRB="$PWD/$MRB" ;; esac
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/mrb-cli.XXXXXX")
PYTHON=/usr/bin/python3

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# expect_exit CODE COMMAND...: runs COMMAND, asserts its exit status.
expect_exit() {
	want=$1
	shift
	set +e
	"$@"
	got=$?
	set -e
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want"
}

# assert_eq WANT GOT WHAT
assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# assert_same_file EXPECTED ACTUAL WHAT: byte-for-byte equality.
assert_same_file() {
	cmp "$1" "$2" || fail "$3: bytes differ ($(od -c "$2" | head -5))"
}

# json_field FILE KEY: one field of a `mrb stat --json` output.
json_field() {
	"$PYTHON" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(str(v).lower() if isinstance(v,bool) else v)' "$1" "$2"
}

# wait_until DESCRIPTION COMMAND...: polls COMMAND until it succeeds. The
# bound only keeps a broken build from hanging; nothing asserts timing.
wait_until() {
	what=$1
	shift
	tries=0
	until "$@"; do
		tries=$((tries + 1))
		[ "$tries" -lt 3000 ] || fail "gave up waiting for: $what"
		sleep 0.02
	done
}
