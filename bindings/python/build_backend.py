"""The package's PEP 517 build backend (pyproject.toml names it, in-tree).

Why not setuptools: the wheel holds one stable-ABI extension built from the
C core by ``ffi_build.build_extension``, so it is tagged ``cpXY-abi3``, and its
metadata carries the SPDX license expression and LICENSE (core metadata 2.4),
which Debian 12's setuptools (66) cannot write. Standard library only (and
tomli before Python 3.11), so ``pip install`` and ``python -m build`` work
offline (``--no-build-isolation`` / ``--no-isolation``: cffi comes from the
system).

* ``build_sdist`` writes ``NAME-VERSION.tar.gz``: the package directory, the
  repository's LICENSE, and the core sources of core/sources.bzl copied into
  ``csrc/`` (``ffi_build.core_dir`` finds them there), so the sdist builds
  anywhere.
* ``build_wheel`` compiles the extension and writes
  ``NAME-VERSION-cpXY-abi3-PLATFORM.whl``.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import io
import os
import re
import sys
import sysconfig
import tarfile
import tempfile
import zipfile

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ffi_build  # noqa: E402

PACKAGE = "mmap_ringbuffer"
# Fixed timestamp for archive members (1980-01-01, the zip format's first),
# unless SOURCE_DATE_EPOCH says otherwise: the same tree gives the same bytes.
EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))

# Files of the package directory in the sdist (relative to HERE).
SDIST_FILES = [
    "README.md",
    "build_backend.py",
    "ffi_build.py",
    "mrb_cffi.map",
    "mrb_py.c",
    "mrb_py.h",
    "pyproject.toml",
]


def _project() -> dict:
    with open(os.path.join(HERE, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _license_file() -> str:
    """LICENSE next to pyproject.toml (in an sdist) or at the repository
    root."""
    for candidate in (
        os.path.join(HERE, "LICENSE"),
        os.path.join(HERE, "..", "..", "LICENSE"),
    ):
        if os.path.isfile(candidate):
            return os.path.normpath(candidate)
    raise FileNotFoundError(
        "no LICENSE next to pyproject.toml or at the repository root"
    )


def _dist_name(project: dict) -> str:
    return re.sub(r"[-_.]+", "_", project["name"]).lower()


def _package_files() -> list[str]:
    """The installed files of the Python package, relative to HERE."""
    names = sorted(glob.glob(os.path.join(HERE, PACKAGE, "*.py")))
    names += [os.path.join(HERE, PACKAGE, n) for n in ("py.typed", "_mrb_cffi.pyi")]
    return [os.path.relpath(n, HERE) for n in names]


def metadata() -> str:
    """Core metadata 2.4 (PKG-INFO, METADATA) from pyproject.toml."""
    project = _project()
    lines = [
        "Metadata-Version: 2.4",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project['description']}",
        f"License-Expression: {project['license']}",
        "License-File: LICENSE",
        f"Requires-Python: {project['requires-python']}",
    ]
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    lines += [f"Classifier: {c}" for c in project.get("classifiers", [])]
    lines.append("Description-Content-Type: text/markdown")
    with open(os.path.join(HERE, project["readme"]), encoding="utf-8") as f:
        readme = f.read()
    return "\n".join(lines) + "\n\n" + readme


def wheel_tag() -> str:
    """cpXY-abi3-PLATFORM, XY the lowest Python of requires-python."""
    match = re.fullmatch(r">=\s*3\.(\d+)", _project()["requires-python"].strip())
    if match is None:
        raise ValueError("requires-python must read '>=3.N'")
    platform = re.sub(r"[-.]", "_", sysconfig.get_platform())
    return f"cp3{match.group(1)}-abi3-{platform}"


# ---- PEP 517 hooks -----------------------------------------------------------


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_sdist(sdist_directory, config_settings=None):
    project = _project()
    base = f"{_dist_name(project)}-{project['version']}"
    core = ffi_build.core_dir()
    members = [(os.path.join(HERE, rel), rel) for rel in SDIST_FILES + _package_files()]
    members.append((_license_file(), "LICENSE"))
    # The core as ffi_build.core_dir() expects it in csrc/: the source list,
    # the public header, the listed sources, the private headers.
    core_files = ["sources.bzl", "include/mrb/mrb.h"]
    core_files += ffi_build.source_list(core)
    core_files += sorted(
        os.path.relpath(h, core)
        for h in glob.glob(os.path.join(core, "src", "*.h"))
        if os.path.basename(h) != "mrb_testing.h"
    )
    members += [(os.path.join(core, rel), "csrc/" + rel) for rel in core_files]
    path = os.path.join(sdist_directory, base + ".tar.gz")
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        pkg_info = metadata().encode()
        _add_tar(tar, f"{base}/PKG-INFO", pkg_info)
        for source, rel in sorted(members, key=lambda m: m[1]):
            with open(source, "rb") as f:
                _add_tar(tar, f"{base}/{rel}", f.read())
    return os.path.basename(path)


def _add_tar(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = EPOCH
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    project = _project()
    dist_info = f"{_dist_name(project)}-{project['version']}.dist-info"
    for rel, data in _dist_info_files(dist_info):
        target = os.path.join(metadata_directory, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
    return dist_info


def _dist_info_files(dist_info: str) -> list[tuple[str, bytes]]:
    with open(_license_file(), "rb") as f:
        license_text = f.read()
    wheel = (
        "Wheel-Version: 1.0\n"
        "Generator: mmap_ringbuffer build_backend.py\n"
        "Root-Is-Purelib: false\n"
        f"Tag: {wheel_tag()}\n"
    )
    return [
        (f"{dist_info}/METADATA", metadata().encode()),
        (f"{dist_info}/WHEEL", wheel.encode()),
        (f"{dist_info}/top_level.txt", f"{PACKAGE}\n".encode()),
        (f"{dist_info}/licenses/LICENSE", license_text),
    ]


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    base = f"{_dist_name(project)}-{project['version']}"
    dist_info = f"{base}.dist-info"
    path = os.path.join(wheel_directory, f"{base}-{wheel_tag()}.whl")
    with tempfile.TemporaryDirectory() as tmp:
        extension = os.path.join(tmp, ffi_build.MODULE_FILE)
        ffi_build.build_extension(extension)
        files = []
        for rel in _package_files():
            with open(os.path.join(HERE, rel), "rb") as f:
                files.append((rel, f.read()))
        with open(extension, "rb") as f:
            files.append((f"{PACKAGE}/{ffi_build.MODULE_FILE}", f.read()))
        files += _dist_info_files(dist_info)
        record = [f"{rel},{_hash(data)},{len(data)}" for rel, data in files]
        record.append(f"{dist_info}/RECORD,,")
        files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
            for rel, data in files:
                info = zipfile.ZipInfo(rel, date_time=_zip_time())
                executable = rel.endswith(".so")
                info.external_attr = (0o755 if executable else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                whl.writestr(info, data)
    return os.path.basename(path)


def _hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _zip_time() -> tuple:
    import time

    return time.gmtime(max(EPOCH, 315532800))[:6]
