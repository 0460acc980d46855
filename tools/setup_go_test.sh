#!/bin/sh
# SPDX-License-Identifier: MIT
# tools/setup.sh --check picks a Go >= 1.21 and, on Debian 12 without one
# (its own golang-go is 1.19), asks for golang-go from bookworm-backports.
# Fake go commands stand in for the machine's. Usage: setup_go_test.sh SETUP_SH
set -eu
setup=$1
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/setup-go.XXXXXX")
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
fake_go() { # fake_go DIR VERSION
	mkdir -p "$1"
	printf '#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo %s\n' "$2" >"$1/go"
	chmod +x "$1/go"
}
fake_go "$work/old" go1.19.8
fake_go "$work/new" go1.22.12
fake_go "$work/rc" go1.21rc2

# Everything but Go is installed here (the suite runs after setup), so the
# Go line is the whole answer.
check() { MRB_SETUP_GO_CANDIDATES="$*" bash "$setup" --check 2>&1 || true; }

out=$(check "$work/old/go")
. /etc/os-release
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
	[ "$out" = "setup: missing: golang-go(bookworm-backports)" ] || fail "Go 1.19 only: $out"
else
	[ "$out" = "setup: missing: golang-go" ] || fail "Go 1.19 only: $out"
fi
[ "$(check "$work/old/go" "$work/new/go")" = "setup: nothing missing" ] || fail "Go 1.22 after 1.19"
[ "$(check "$work/rc/go")" = "setup: nothing missing" ] || fail "Go 1.21rc2"
echo PASS
