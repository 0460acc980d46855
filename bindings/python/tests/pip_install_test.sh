#!/usr/bin/env bash
# The Python package as users get it: `python -m build` makes an sdist (which
# must carry the core sources) and a wheel from that sdist; the sdist, moved
# far from any repository, and the wheel are each pip-installed into a fresh
# venv and used from yet another directory. Also checks the packaging
# metadata (SPDX license, LICENSE in both, the abi3 tag) and that the
# installed extension exports nothing but its module init function.
# Usage (outside Bazel): bindings/python/tests/pip_install_test.sh
set -euo pipefail
trap 'echo "pip_install_test: failed at line $LINENO" >&2' ERR

python=/usr/bin/python3
work="${TEST_TMPDIR:-$(mktemp -d)}/pip"
rm -rf "$work"
mkdir -p "$work/repo/bindings" "$work/far/away" "$work/elsewhere"
export HOME="$work/home" PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
export TMPDIR="$work"
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

if [[ -n "${TEST_SRCDIR:-}" ]]; then
	root="$TEST_SRCDIR/${TEST_WORKSPACE:-mmap_ringbuffer}"
else
	root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
fi
# A repository layout of regular files (Bazel's runfiles are symlinks), with
# nothing built in place.
cp -L "$root/LICENSE" "$work/repo/"
cp -RL "$root/core" "$work/repo/core"
(cd "$root/bindings/python" && tar -ch --exclude='mmap_ringbuffer/_mrb_cffi*.so' \
	--exclude=build --exclude=dist --exclude=csrc --exclude=__pycache__ \
	--exclude=tests --exclude=bench --exclude=BUILD.bazel .) |
	(mkdir -p "$work/repo/bindings/python" && tar -x -C "$work/repo/bindings/python")

# --no-isolation: cffi comes from the system (apt), no network.
"$python" -m build --no-isolation -o "$work/dist" "$work/repo/bindings/python" \
	>"$work/build.log" 2>&1 || {
	cat "$work/build.log" >&2
	fail "python -m build"
}
sdist=$(ls "$work"/dist/mmap_ringbuffer-*.tar.gz)
wheel=$(ls "$work"/dist/mmap_ringbuffer-*.whl)

# The sdist carries the core sources of core/sources.bzl, and only those.
listing="$(tar -tzf "$sdist" | sed 's|^[^/]*/||')"
needed="PKG-INFO LICENSE pyproject.toml build_backend.py ffi_build.py mrb_py.c mrb_py.h
	mrb_cffi.map mmap_ringbuffer/py.typed mmap_ringbuffer/_mrb_cffi.pyi
	csrc/sources.bzl csrc/include/mrb/mrb.h"
for src in $(sed -n '/^MRB_SRCS = \[/,/^\]/s/^ *"\([^"]*\)",.*/\1/p' "$root/core/sources.bzl"); do
	needed="$needed csrc/$src"
done
for f in $needed; do
	grep -qx "$f" <<<"$listing" || fail "sdist lacks $f"
done
! grep -q -e testing -e '^tests/' <<<"$listing" || fail "sdist carries test-only files"

# Metadata: SPDX expression, license file, no license classifier; abi3 tag.
check_metadata() { # check_metadata FILE
	grep -qx 'Metadata-Version: 2.4' "$1" || fail "$1: metadata version"
	grep -qx 'License-Expression: MIT' "$1" || fail "$1: no License-Expression: MIT"
	grep -qx 'License-File: LICENSE' "$1" || fail "$1: no License-File"
	! grep -q '^Classifier: License ::' "$1" || fail "$1: license classifier"
}
tar -xzf "$sdist" -C "$work" --wildcards '*/PKG-INFO'
check_metadata "$work"/mmap_ringbuffer-*/PKG-INFO
[[ "$wheel" == *-cp38-abi3-linux_x86_64.whl ]] || fail "wheel tag: $(basename "$wheel")"
"$python" - "$wheel" "$root/LICENSE" "$work/METADATA" <<'PY'
import sys, zipfile

wheel, license_path, metadata_out = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/WHEEL"))
z = zipfile.ZipFile(wheel)
assert z.read(f"{info}/licenses/LICENSE") == open(license_path, "rb").read(), "LICENSE"
assert "Tag: cp38-abi3-linux_x86_64" in z.read(f"{info}/WHEEL").decode(), "WHEEL tag"
assert "mmap_ringbuffer/_mrb_cffi.abi3.so" in names, names
assert not any("test" in n for n in names), names
open(metadata_out, "wb").write(z.read(f"{info}/METADATA"))
PY
check_metadata "$work/METADATA"

smoke() { # smoke VENV: import the installed package from elsewhere and use it
	(cd "$work/elsewhere" && "$1/bin/python" - <<'PY')
import os
import sys

import mmap_ringbuffer
from mmap_ringbuffer import BufferEmpty, RingBuffer

# Installed into the venv, not picked up from a source tree.
location = os.path.realpath(mmap_ringbuffer.__file__)
assert location.startswith(os.path.realpath(sys.prefix)), location
assert os.path.exists(os.path.join(os.path.dirname(location), "py.typed"))

with RingBuffer.create("smoke.ring", 4096) as rb:
    rb.write(b"installed")
    rb.write_many([b"a", bytearray(b"bc")])
    assert rb.read() == b"installed"
    assert rb.read_many(8) == [b"a", b"bc"]
    rb.write(b"x" * 1500)
    assert rb.read() == b"x" * 1500
    try:
        rb.read()
    except BufferEmpty:
        pass
    else:
        raise AssertionError("expected BufferEmpty")
print("installed mmap_ringbuffer works:", location)
PY
	# The extension exports its module init function and nothing else.
	local so exported
	so=$(ls "$1"/lib/python3*/site-packages/mmap_ringbuffer/_mrb_cffi.abi3.so)
	exported=$(nm -D --defined-only "$so" | awk '{print $3}' | tr '\n' ' ')
	[[ "$exported" == "PyInit__mrb_cffi " ]] || fail "$so exports: $exported"
}

# The sdist, moved far from any repository (no ../../core to fall back on).
cp "$sdist" "$work/far/away/"
"$python" -m venv --system-site-packages "$work/venv-sdist"
"$work/venv-sdist/bin/python" -m pip install --no-build-isolation --no-index -q \
	"$work/far/away/$(basename "$sdist")"
smoke "$work/venv-sdist"

# The wheel.
"$python" -m venv --system-site-packages "$work/venv-wheel"
"$work/venv-wheel/bin/python" -m pip install --no-index -q "$wheel"
smoke "$work/venv-wheel"
echo PASS
