#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds a Go main package of this repository offline, against the Go binding
# in bindings/go (through its go.mod's replace directive), with a private,
# throw-away Go environment so nothing leaks in from (or out to) the caller.
#
#   build_go.sh ROOT PACKAGE_DIR OUT
#
# ROOT is the repository (or Bazel execroot/runfiles) root, PACKAGE_DIR the
# main package relative to it (e.g. tests/interop/go), OUT the binary to
# write. The package and bindings/go are copied first (symlinks resolved), so
# Bazel's symlinked input trees build like a checkout.
set -eu

[ $# -eq 3 ] || {
	echo "usage: $0 ROOT PACKAGE_DIR OUT" >&2
	exit 2
}
root=$1
package=$2
out=$3
case "$out" in
/*) ;;
*) out=$(pwd)/$out ;;
esac

go=
for candidate in "${GO:-}" "$(command -v go 2>/dev/null || true)" \
	"${GOROOT_HINT:-/usr/local/go}/bin/go" /usr/local/go/bin/go; do
	if [ -n "$candidate" ] && [ -x "$candidate" ]; then
		go=$candidate
		break
	fi
done
[ -n "$go" ] || {
	echo "build_go.sh: no Go toolchain (set GO, or install one in /usr/local/go)" >&2
	exit 2
}

work=$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/build_go.XXXXXX")
cleanup() {
	chmod -R u+w "$work" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/src/$package" "$work/src/bindings/go"
cp -RL "$root/$package/." "$work/src/$package/"
cp -RL "$root/bindings/go/." "$work/src/bindings/go/"
chmod -R u+w "$work/src"

export HOME="$work/home" GOCACHE="$work/cache" GOPATH="$work/gopath" TMPDIR="$work"
export GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=1 GOTELEMETRY=off
export PATH="$(dirname "$go"):$PATH"
mkdir -p "$HOME"
cd "$work/src/$package"
"$go" build -trimpath -o "$out" .
