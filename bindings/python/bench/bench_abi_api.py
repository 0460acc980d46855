#!/usr/bin/python3
"""cffi ABI mode (dlopen of a shared library, calls through libffi) against
API out-of-line mode (the compiled _mrb_cffi extension this package ships):
the per-call overhead that decided the binding's design.

    /usr/bin/python3 bench/bench_abi_api.py [--lib libmmap_ringbuffer.so]

Without --lib the shared library is compiled from the core sources the
extension uses (ffi_build.py: core/sources.bzl) with cc -O2 -shared -fPIC. Both modes call the same C code on
rings of the same size; the runs are interleaved and the best of --repeat is
reported, with the ratio ABI/API (above 1: ABI mode is slower).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import timeit
from typing import Any, Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(HERE)
sys.path.insert(0, PACKAGE_ROOT)  # run from a source checkout

import cffi  # noqa: E402

from mmap_ringbuffer import RingBuffer  # noqa: E402
from mmap_ringbuffer._mrb_cffi import ffi as api_ffi  # noqa: E402
from mmap_ringbuffer._mrb_cffi import lib as api_lib  # noqa: E402

# ABI mode cannot ask the compiler, so everything is spelled out.
ABI_CDEF = """
struct mrb_ring { uint64_t opaque[64]; };
int mrb_create(struct mrb_ring *ring, const char *path, uint64_t size,
               const void *opts);
int mrb_close(struct mrb_ring *ring);
uint64_t mrb_capacity(struct mrb_ring *ring);
int mrb_write(struct mrb_ring *ring, const void *data, size_t len);
int mrb_read(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *len);
"""


def build_shared_library(out_dir: str) -> str:
    sys.path.insert(0, PACKAGE_ROOT)
    import ffi_build

    core = ffi_build.core_dir()
    sources = [os.path.join(core, src) for src in ffi_build.source_list(core)]
    target = os.path.join(out_dir, "libmmap_ringbuffer.so")
    cc = os.environ.get("CC", "cc")
    subprocess.run(
        [
            cc,
            "-O2",
            "-shared",
            "-fPIC",
            "-D_GNU_SOURCE",
            "-pthread",
            "-I" + os.path.join(core, "include"),
            "-o",
            target,
            *sources,
        ],
        check=True,
    )
    return target


def best_ns(call: Callable[[], Any], number: int, repeat: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", help="an existing libmmap_ringbuffer.so")
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        lib_path = args.lib or build_shared_library(tmp)
        abi_ffi = cffi.FFI()
        abi_ffi.cdef(ABI_CDEF)
        abi_lib = abi_ffi.dlopen(os.path.abspath(lib_path))

        abi_ring = abi_ffi.new("struct mrb_ring *")
        rc = abi_lib.mrb_create(
            abi_ring, os.path.join(tmp, "abi.ring").encode(), 1 << 20, abi_ffi.NULL
        )
        assert rc == 0, rc
        api = RingBuffer.create(os.path.join(tmp, "api.ring"), 1 << 20)
        api_ring = api._ring

        message = b"m" * 64
        abi_buf, abi_len = abi_ffi.new("char[]", 4096), abi_ffi.new("size_t *")
        api_buf, api_len = api_ffi.new("char[]", 4096), api_ffi.new("size_t *")
        bytearray_message = bytearray(message)

        def abi_capacity() -> None:
            abi_lib.mrb_capacity(abi_ring)

        def api_capacity() -> None:
            api_lib.mrb_capacity(api_ring)

        def abi_write_read() -> None:
            abi_lib.mrb_write(abi_ring, message, 64)
            abi_lib.mrb_read(abi_ring, abi_buf, 4096, abi_len)

        def api_write_read() -> None:
            api_lib.mrb_write(api_ring, message, 64)
            api_lib.mrb_read(api_ring, api_buf, 4096, api_len)

        def abi_write_read_bytes() -> None:
            abi_lib.mrb_write(abi_ring, abi_ffi.from_buffer(bytearray_message), 64)
            abi_lib.mrb_read(abi_ring, abi_buf, 4096, abi_len)
            abi_ffi.unpack(abi_buf, abi_len[0])

        def api_write_read_bytes() -> None:
            api_lib.mrb_write(api_ring, api_ffi.from_buffer(bytearray_message), 64)
            api_lib.mrb_read(api_ring, api_buf, 4096, api_len)
            api_ffi.unpack(api_buf, api_len[0])

        def package_write_read() -> None:
            api.write(message)
            api.read()

        cases: List[Tuple[str, Callable[[], None], Callable[[], None]]] = [
            ("mrb_capacity (bare call)", abi_capacity, api_capacity),
            ("mrb_write + mrb_read, 64 B", abi_write_read, api_write_read),
            ("+ from_buffer + unpack", abi_write_read_bytes, api_write_read_bytes),
        ]
        results: Dict[str, List[float]] = {name: [1e18, 1e18] for name, _, _ in cases}
        package = 1e18
        for _ in range(args.repeat):
            for name, abi_call, api_call in cases:
                results[name][0] = min(
                    results[name][0], best_ns(abi_call, args.number, 1)
                )
                results[name][1] = min(
                    results[name][1], best_ns(api_call, args.number, 1)
                )
            package = min(package, best_ns(package_write_read, args.number, 1))

        print(
            f"best of {args.repeat} x {args.number} calls; library: "
            f"{'given' if args.lib else 'built from the core'}"
        )
        print()
        print(f"| {'operation':<30} | {'ABI ns':>7} | {'API ns':>7} | {'ABI/API':>7} |")
        print(f"|{'-' * 32}|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|")
        for name, _, _ in cases:
            abi_ns, api_ns = results[name]
            print(
                f"| {name:<30} | {abi_ns:>7.0f} | {api_ns:>7.0f} | {abi_ns / api_ns:>6.2f}x |"
            )
        print(
            f"| {'RingBuffer.write + read (API)':<30} | {'':>7} | {package:>7.0f} | {'':>7} |"
        )
        api.close()
        abi_lib.mrb_close(abi_ring)
    return 0


if __name__ == "__main__":
    sys.exit(main())
