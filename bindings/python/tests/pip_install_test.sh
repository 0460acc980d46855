#!/usr/bin/env bash
# `pip install` for real: copy only the package directory (as an sdist would
# carry it, no ../../core), install it into a fresh venv, and use it from a
# directory that is not the source tree.
set -euo pipefail
trap 'echo "pip_install_test: failed at line $LINENO" >&2' ERR

python=/usr/bin/python3
work="${TEST_TMPDIR:-$(mktemp -d)}/pip"
rm -rf "$work"
mkdir -p "$work/src" "$work/elsewhere"
export HOME="$work/home" PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
export TMPDIR="$work"

if [[ -n "${TEST_SRCDIR:-}" ]]; then
	here="$TEST_SRCDIR/${TEST_WORKSPACE:-mmap_ringbuffer}/bindings/python"
else
	here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi
# Dereference Bazel's runfiles symlinks; leave behind anything built in place.
(cd "$here" && tar -ch --exclude='mmap_ringbuffer/_mrb_cffi*' --exclude=build --exclude='*.o' \
	--exclude='*.egg-info' --exclude=__pycache__ --exclude=tests --exclude=bench \
	--exclude=BUILD.bazel . ) | tar -x -C "$work/src"
test -f "$work/src/csrc/include/mrb/mrb.h"

# An sdist must carry everything the build needs (MANIFEST.in): the core
# copies, the build script, the typing marker.
(cd "$work/src" && "$python" setup.py -q sdist -d "$work/dist" >/dev/null 2>&1)
listing="$(tar -tzf "$work"/dist/mmap_ringbuffer-*.tar.gz)"
for needed in ffi_build.py setup.py pyproject.toml mmap_ringbuffer/py.typed \
	csrc/include/mrb/mrb.h $(cd "$work/src" && ls csrc/src/*.[ch]); do
	grep -q "/$needed\$" <<<"$listing" || { echo "sdist lacks $needed" >&2; exit 1; }
done

# cffi, setuptools and wheel come from the system (apt) through
# --system-site-packages; --no-index keeps pip off the network.
"$python" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install --no-build-isolation --no-index -q "$work/src"

cd "$work/elsewhere"
"$work/venv/bin/python" - <<'PY'
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
    try:
        rb.read()
    except BufferEmpty:
        pass
    else:
        raise AssertionError("expected BufferEmpty")
print("pip-installed mmap_ringbuffer works:", location)
PY
