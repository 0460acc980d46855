#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds Go main packages of this repository offline, against the Go binding
# in bindings/go (each package's go.mod points there with a replace
# directive), in a private, throw-away Go environment so nothing leaks in from
# (or out to) the caller. One call builds several programs sharing one build
# cache, so the binding's C core is compiled once.
#
#   build_go.sh ROOT PACKAGE_DIR=OUT [PACKAGE_DIR=OUT ...]
#
# ROOT is the repository (or Bazel execroot/runfiles) root, PACKAGE_DIR a main
# package relative to it (e.g. tests/interop/go), OUT the binary to write.
# The packages and bindings/go are copied first (symlinks resolved), so
# Bazel's symlinked input trees build like a checkout.
# BUILD_GO_CACHE, if set, is a Go build cache kept between calls.
set -eu

[ $# -ge 2 ] || {
	echo "usage: $0 ROOT PACKAGE_DIR=OUT [PACKAGE_DIR=OUT ...]" >&2
	exit 2
}
root=$1
shift
caller_dir=$(pwd)

go=
# Like tools/setup.sh: /usr/local/go first (Debian's golang-go may be older).
for candidate in "${GO:-}" "${GOROOT_HINT:-/usr/local/go}/bin/go" /usr/local/go/bin/go \
	"$(command -v go 2>/dev/null || true)"; do
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

mkdir -p "$work/src/bindings/go"
cp -RL "$root/bindings/go/." "$work/src/bindings/go/"

export HOME="$work/home" GOCACHE="${BUILD_GO_CACHE:-$work/cache}" GOPATH="$work/gopath" TMPDIR="$work"
export GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=1 GOTELEMETRY=off
export PATH="$(dirname "$go"):$PATH"
mkdir -p "$HOME"
for target in "$@"; do
	package=${target%%=*}
	out=${target#*=}
	case "$out" in
	/*) ;;
	*) out=$caller_dir/$out ;;
	esac
	mkdir -p "$work/src/$package"
	cp -RL "$root/$package/." "$work/src/$package/"
	chmod -R u+w "$work/src"
	(cd "$work/src/$package" && "$go" build -trimpath -o "$out" .)
done
