#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what building and testing mmap_ringbuffer needs on a Debian 12
# machine, and nothing it already has: safe to run any number of times.
#
#   tools/setup.sh            install missing packages (needs root or sudo)
#   tools/setup.sh --check    only report what is missing (exit 1 if any)
#
# Everything comes from Debian's archive (Bazel is Debian's bazel-bootstrap
# 4.2). Go: bindings/go needs Go >= 1.21 (go.mod). A Go that new already on
# the machine (/usr/local/go, or go on PATH) is used; otherwise golang-go
# comes from bookworm-backports (Debian 12's own golang-go is 1.19), whose
# source this script adds.
set -euo pipefail

packages=(
	bazel-bootstrap     # Bazel 4.2, offline thanks to third_party/ stand-ins
	build-essential     # gcc, g++, make
	clang               # libFuzzer target (tests/robustness)
	clang-format        # C formatting (.clang-format)
	googletest          # /usr/src/googletest, built by //third_party/googletest
	pkg-config          # the install test builds with pkg-config
	python3             # /usr/bin/python3: the interpreter every py_test uses
	python3-dev         # headers for the cffi extension
	python3-cffi
	python3-pytest
	python3-uvloop      # asyncio tests and benchmarks also run under uvloop
	python3-mypy        # bindings/python/tests/test_typing.py: mypy --strict on a user program
	python3-venv        # the pip-install test builds into a venv
	python3-pip
	python3-setuptools
	python3-wheel
	python3-build       # python -m build: the Python sdist and wheel (pip install test)
	python3-matplotlib  # tools/bench/plot.py (benchmark report figures)
	spin                # the protocol model checker (//tools/model:spin_test)
	git
	ca-certificates
)

missing=()
for pkg in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$pkg")
done

# libFuzzer ships in clang's runtime package, versioned like clang itself.
if command -v clang >/dev/null 2>&1; then
	clang_major=$(clang -dumpversion | cut -d. -f1)
	rt="libclang-rt-${clang_major}-dev"
	if apt-cache show "$rt" >/dev/null 2>&1; then
		dpkg-query -W -f='${Status}' "$rt" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$rt")
	fi
else
	missing+=(libclang-rt-14-dev)
fi

# The first Go >= 1.21 among /usr/local/go and PATH, or nothing.
# (MRB_SETUP_GO_CANDIDATES replaces the list, for tools/setup_go_test.sh.)
find_go() {
	local candidate version minor
	for candidate in ${MRB_SETUP_GO_CANDIDATES:-/usr/local/go/bin/go $(command -v go || true)}; do
		[ -n "$candidate" ] && [ -x "$candidate" ] || continue
		version=$("$candidate" env GOVERSION 2>/dev/null || true)
		case "$version" in
		go1.*)
			minor=${version#go1.}
			minor=${minor%%[!0-9]*}
			if [ "${minor:-0}" -ge 21 ]; then
				echo "$candidate"
				return
			fi
			;;
		esac
	done
}
go_bin=$(find_go)
go_from_backports=no
if [ -z "$go_bin" ]; then
	. /etc/os-release
	if [ "${VERSION_CODENAME:-}" = bookworm ]; then
		go_from_backports=yes
	else
		missing+=(golang-go)
	fi
fi
backports_list=/etc/apt/sources.list.d/mmap-ringbuffer-bookworm-backports.list

# The Debian mirror apt already uses (deb822 or one-line sources).
debian_mirror() {
	sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -v -e security -e backports | head -n 1
	awk '$1 == "deb" && $3 == "bookworm" { print $2 }' /etc/apt/sources.list 2>/dev/null | head -n 1
}

if [ "${1:-}" = "--check" ]; then
	[ "$go_from_backports" = no ] || missing+=("golang-go(bookworm-backports)")
	if [ ${#missing[@]} -eq 0 ]; then
		echo "setup: nothing missing"
		exit 0
	fi
	echo "setup: missing: ${missing[*]}"
	exit 1
fi

if [ ${#missing[@]} -gt 0 ] || [ "$go_from_backports" = yes ]; then
	echo "setup: installing ${missing[*]}${missing[*]:+ }$([ "$go_from_backports" = no ] || echo "golang-go from bookworm-backports")"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	if [ "$go_from_backports" = yes ] && [ ! -e "$backports_list" ] &&
		! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		mirror=$(debian_mirror | head -n 1)
		if [ -z "$mirror" ]; then
			echo "setup: error: Go >= 1.21 is needed; add bookworm-backports to apt's" \
				"sources or install Go at /usr/local/go, then run this again" >&2
			exit 1
		fi
		echo "setup: adding bookworm-backports ($mirror) to apt's sources, for golang-go >= 1.21"
		echo "deb $mirror bookworm-backports main" | $sudo tee "$backports_list" >/dev/null
	fi
	# Refresh the package lists only when an install needs them (stale
	# lists give 404s); keeps a second run offline and instant.
	$sudo apt-get update -q
	if [ "$go_from_backports" = yes ]; then
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
			-t bookworm-backports golang-go
	fi
	[ ${#missing[@]} -eq 0 ] ||
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
			"${missing[@]}"
	# A clang installed just now brings its runtime's name only now.
	clang_major=$(clang -dumpversion | cut -d. -f1)
	if ! dpkg-query -W -f='${Status}' "libclang-rt-${clang_major}-dev" 2>/dev/null |
		grep -q "install ok installed" &&
		apt-cache show "libclang-rt-${clang_major}-dev" >/dev/null 2>&1; then
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
			"libclang-rt-${clang_major}-dev"
	fi
else
	echo "setup: nothing to install"
fi

go_bin=$(find_go)
if [ -z "$go_bin" ]; then
	echo "setup: error: bindings/go needs Go >= 1.21 and none was found or installed;" \
		"install one at /usr/local/go or on PATH" >&2
	exit 1
fi
echo "setup: go $("$go_bin" env GOVERSION) at $go_bin; $(bazel --version 2>/dev/null || echo "bazel missing")"

# The NATS bridge (tools/bridge, docs/BRIDGE.md): its test runs a real
# nats-server and builds offline (GOPROXY=off). Both come from the Go module
# proxy once, into a cache outside the repository that later runs, and the
# Bazel test (tools/bridge/bridge_test.sh, same path rule), only read:
#   $MRB_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/mmap_ringbuffer)
#     nats-server-$NATS_SERVER_VERSION/nats-server   go install, pinned
#     gomod/                                          GOMODCACHE: the bridge's modules
# A second run finds both and touches no network. Needs Go >= 1.26 (the
# NATS modules' go.mod); with an older Go the bridge is skipped with a note.
NATS_SERVER_VERSION=v2.15.2
cache_dir=${MRB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mmap_ringbuffer}
go_minor=$("$go_bin" env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ "${go_minor:-0}" -lt 26 ]; then
	echo "setup: note: go $("$go_bin" env GOVERSION) is older than 1.26; tools/bridge's test will fail" >&2
elif [ "${1:-}" != "--check" ]; then
	nats_server=$cache_dir/nats-server-$NATS_SERVER_VERSION/nats-server
	go_env=(env GOMODCACHE="$cache_dir/gomod" GOTOOLCHAIN=local GOFLAGS=-mod=mod GOWORK=off)
	if [ ! -x "$nats_server" ]; then
		echo "setup: installing nats-server $NATS_SERVER_VERSION into $(dirname "$nats_server")"
		mkdir -p "$(dirname "$nats_server")"
		(cd "$cache_dir" && "${go_env[@]}" GOBIN="$(dirname "$nats_server")" CGO_ENABLED=0 \
			"$go_bin" install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION")
	fi
	# `go mod download` of modules already in the cache is offline and quick.
	(cd "$repo/tools/bridge" && GOPROXY=off "${go_env[@]}" "$go_bin" mod download >/dev/null 2>&1) ||
		(cd "$repo/tools/bridge" && "${go_env[@]}" "$go_bin" mod download)
	echo "setup: nats-server $NATS_SERVER_VERSION and the bridge's Go modules in $cache_dir"
fi
