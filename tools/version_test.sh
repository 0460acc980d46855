#!/bin/sh
# SPDX-License-Identifier: MIT
# One version number everywhere: the one defined in core/include/mrb/mrb.h
# must be what `mrb --version` prints, the Python package's version
# (pyproject.toml and __version__) and a heading of CHANGELOG.md.
# (pkg-config: //tests/install:install_test; Go: TestVersion.)
# Usage: version_test.sh MRB_H MRB PYPROJECT_TOML PY_INIT CHANGELOG
set -eu

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

number() { sed -n "s/^#define MRB_VERSION_$1 *\([0-9][0-9]*\)\$/\1/p" "$2"; }
major=$(number MAJOR "$1")
minor=$(number MINOR "$1")
patch=$(number PATCH "$1")
[ -n "$major" ] && [ -n "$minor" ] && [ -n "$patch" ] || fail "no MRB_VERSION_* in $1"
version=$major.$minor.$patch

mrb_says=$("$2" --version)
case "$mrb_says" in
"mrb $version (mmap_ringbuffer, ring format version "[0-9]*")") ;;
*) fail "mrb --version: '$mrb_says', want version $version" ;;
esac

py_project=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$3")
[ "$py_project" = "$version" ] || fail "$3: version '$py_project', want $version"
py_init=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$4")
[ "$py_init" = "$version" ] || fail "$4: __version__ '$py_init', want $version"

grep -q "^## $version\( \|\$\)" "$5" || fail "$5 has no '## $version' section"

echo "PASS: $version"
