#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what building and testing mmap_ringbuffer needs on a Debian 12
# machine, and nothing it already has: safe to run any number of times.
#
#   tools/setup.sh            install missing packages (needs root or sudo)
#   tools/setup.sh --check    only report what is missing (exit 1 if any)
#
# Everything comes from Debian's archive (Bazel is Debian's bazel-bootstrap
# 4.2); Go comes from the machine (/usr/local/go) or Debian's golang-go.
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
	python3-venv        # the pip-install test builds into a venv
	python3-pip
	python3-setuptools
	python3-wheel
	python3-matplotlib  # tools/bench/plot.py (benchmark report figures)
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

go_bin=""
for candidate in /usr/local/go/bin/go "$(command -v go || true)"; do
	if [ -n "$candidate" ] && [ -x "$candidate" ]; then
		go_bin=$candidate
		break
	fi
done
[ -n "$go_bin" ] || missing+=(golang-go)

if [ "${1:-}" = "--check" ]; then
	if [ ${#missing[@]} -eq 0 ]; then
		echo "setup: nothing missing"
		exit 0
	fi
	echo "setup: missing: ${missing[*]}"
	exit 1
fi

if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	# Refresh the package lists only when an install needs them (stale
	# lists give 404s); keeps a second run offline and instant.
	$sudo apt-get update -q
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

go_bin=${go_bin:-$(command -v go)}
go_version=$("$go_bin" env GOVERSION 2>/dev/null || "$go_bin" version | awk '{print $3}')
echo "setup: go $go_version at $go_bin; $(bazel --version 2>/dev/null || echo "bazel missing")"
case "$go_version" in
go1.1[0-9]* | go1.20*)
	echo "setup: warning: bindings/go needs Go >= 1.21 (found $go_version);" \
		"install a newer Go at /usr/local/go" >&2
	;;
esac
