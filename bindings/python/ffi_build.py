"""cffi build script for the ``mmap_ringbuffer._mrb_cffi`` extension module.

API (out-of-line) mode: the C compiler sees both these declarations and the
real ``mrb/mrb.h``, so any drift between them fails the build instead of
corrupting memory at run time, and calls skip libffi (see bench/bench_abi_api.py
for the figures behind this choice).

Used three ways:
  * ``setup.py`` (``cffi_modules``) compiles the extension from the copies of
    the core sources in ``csrc/`` (kept identical to core/ by sync_core.sh);
  * Bazel runs ``ffi_build.py --emit-c OUT.c`` (the interpreter's Python.h by
    absolute path) and compiles OUT.c together with //core:mrb into
    ``mmap_ringbuffer/_mrb_cffi.so`` with its own toolchain;
  * ``ffi_build.py --inplace`` compiles next to the sources for development.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sys
import sysconfig
import tempfile

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(HERE, "csrc")

# The subset of mrb/mrb.h the binding uses, in cffi's cdef dialect. Enum values
# and macros are "..." so the compiler supplies them from the real header.
CDEF = """
#define MRB_FORMAT_VERSION ...
#define MRB_HEADER_SIZE ...
#define MRB_MIN_CAPACITY ...
#define MRB_MAX_CAPACITY ...

enum mrb_error {
    MRB_OK, MRB_EFULL, MRB_EEMPTY, MRB_EMSGSIZE, MRB_ECLOSED, MRB_EFORMAT,
    MRB_EVERSION, MRB_ECONSUMER_BUSY, MRB_ECORRUPT, MRB_EINVAL, MRB_ETIMEDOUT,
    MRB_EBUFFER_TOO_SMALL, MRB_EINTR, MRB_EEXIST, MRB_ESTALE, ...
};

typedef int... mode_t;

enum mrb_create_flags { MRB_CREATE_REMOVE, MRB_CREATE_EXCLUSIVE, ... };

const char *mrb_strerror(int code);

struct mrb_ring { uint64_t opaque[64]; };

struct mrb_create_options {
    unsigned flags;
    mode_t mode;
};

int mrb_create(struct mrb_ring *ring, const char *path, uint64_t size,
               const struct mrb_create_options *opts);
int mrb_open(struct mrb_ring *ring, const char *path, unsigned flags);
int mrb_close(struct mrb_ring *ring);

int mrb_write(struct mrb_ring *ring, const void *data, size_t len);

struct mrb_iovec {
    const void *data;
    size_t len;
};
int64_t mrb_write_batch(struct mrb_ring *ring, const struct mrb_iovec *msgs,
                        size_t count);

struct mrb_reservation {
    void *data;
    size_t len;
    uint64_t position;
};
int mrb_reserve(struct mrb_ring *ring, size_t len, struct mrb_reservation *res);
int mrb_commit(struct mrb_ring *ring, struct mrb_reservation *res);
int mrb_abort(struct mrb_ring *ring, struct mrb_reservation *res);

int mrb_read(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *len);
int64_t mrb_read_many(struct mrb_ring *ring, void *buf, size_t buf_size,
                      size_t *lengths, size_t max_count);

struct mrb_view {
    const void *data;
    size_t len;
    uint64_t position;
    uint64_t next;
};
int mrb_peek(struct mrb_ring *ring, struct mrb_view *view);
int mrb_release(struct mrb_ring *ring, const struct mrb_view *view);

int mrb_wait_readable(struct mrb_ring *ring, int64_t timeout_ns);
int mrb_wait_writable(struct mrb_ring *ring, size_t len, int64_t timeout_ns);
int mrb_read_wait(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *len,
                  int64_t timeout_ns);
int mrb_write_wait(struct mrb_ring *ring, const void *data, size_t len,
                   int64_t timeout_ns);

struct mrb_stats {
    uint32_t format_version;
    uint64_t capacity;
    uint64_t max_message_size;
    uint64_t producer_position;
    uint64_t consumer_position;
    uint64_t used_bytes;
    uint64_t messages_written;
    uint64_t bytes_written;
    uint64_t messages_read;
    uint64_t bytes_read;
    uint64_t full_count;
    uint64_t recovered_records;
    uint64_t recovered_bytes;
    int32_t consumer_pid;
    int32_t consumer_alive;
    uint32_t producers;
    uint32_t producers_alive;
    uint32_t creator_pid;
    uint64_t created_unix_ns;
};
int mrb_stats(struct mrb_ring *ring, struct mrb_stats *stats);
uint64_t mrb_capacity(struct mrb_ring *ring);
uint64_t mrb_max_message_size(struct mrb_ring *ring);

int mrb_recover(struct mrb_ring *ring, int64_t stale_after_ns);
int mrb_set_recovery_timeout(struct mrb_ring *ring, int64_t stale_after_ns);

/* Binding glue (below): batches cross as one joined buffer plus offsets,
 * so Python handles no per-message C objects. */
int64_t mrb_py_write_joined(struct mrb_ring *ring, const char *joined,
                            const size_t *lengths, size_t count);
int64_t mrb_py_read_many(struct mrb_ring *ring, void *buf, size_t buf_size,
                         size_t *ends, size_t max_count);
struct mrb_py_reader {
    struct mrb_ring *ring;
    char *buf;
    size_t size;
    size_t len;
};
int64_t mrb_py_read(struct mrb_py_reader *reader);
int64_t mrb_py_read_wait(struct mrb_py_reader *reader, int64_t timeout_ns);
int64_t mrb_py_read_to(struct mrb_py_reader *reader, char *buf, size_t size);
int mrb_py_write(struct mrb_ring *ring, const char *data, size_t len);
"""

# Glue kept in C because a Python loop per message would dominate a batch.
GLUE = r"""
#include "mrb/mrb.h"

enum { MRB_PY_IOV_CHUNK = 256 };

/* Writes `count` messages laid end to end in `joined`, stopping at the first
 * that does not fit: same result convention as mrb_write_batch. */
static int64_t mrb_py_write_joined(struct mrb_ring *ring, const char *joined,
                                   const size_t *lengths, size_t count)
{
    struct mrb_iovec iov[MRB_PY_IOV_CHUNK];
    size_t done = 0;
    while (done < count) {
        size_t n = count - done < MRB_PY_IOV_CHUNK ? count - done
                                                   : MRB_PY_IOV_CHUNK;
        for (size_t i = 0; i < n; i++) {
            iov[i].data = joined;
            iov[i].len = lengths[done + i];
            joined += lengths[done + i];
        }
        int64_t rc = mrb_write_batch(ring, iov, n);
        if (rc < 0)
            return done > 0 ? (int64_t)done : rc;
        done += (size_t)rc;
        if ((size_t)rc < n)
            break;
    }
    return (int64_t)done;
}

/* mrb_read_many, with the lengths turned into end offsets in `buf` (the
 * Python side slices there). Errors, and ends[0] on MRB_EBUFFER_TOO_SMALL,
 * as mrb_read_many. */
static int64_t mrb_py_read_many(struct mrb_ring *ring, void *buf, size_t buf_size,
                                size_t *ends, size_t max_count)
{
    int64_t rc = mrb_read_many(ring, buf, buf_size, ends, max_count);
    for (int64_t i = 1; i < rc; i++)
        ends[i] += ends[i - 1];
    return rc;
}

/* A thread's read destination (ring, buffer, its size, the last length),
 * passed as one pointer: each argument cffi converts costs tens of
 * nanoseconds, as much as the core's read of a small message. */
struct mrb_py_reader {
    struct mrb_ring *ring;
    char *buf;
    size_t size;
    size_t len;
};

/* The reads of read(), read_into() and their waits: the message goes to
 * `buf` (the reader's own buffer, or the caller's); the result is its
 * length or a negative core code, and reader->len is the length (the size
 * needed with MRB_EBUFFER_TOO_SMALL), so that Python need not read a
 * length back out of a separate C cell. */
static int64_t mrb_py_read_into_buffer(struct mrb_py_reader *reader, char *buf, size_t size,
                                       int wait, int64_t timeout_ns)
{
    size_t len = 0;
    int rc = wait ? mrb_read_wait(reader->ring, buf, size, &len, timeout_ns)
                  : mrb_read(reader->ring, buf, size, &len);
    reader->len = len;
    return rc == 0 ? (int64_t)len : rc;
}

static int64_t mrb_py_read(struct mrb_py_reader *reader)
{
    return mrb_py_read_into_buffer(reader, reader->buf, reader->size, 0, 0);
}

static int64_t mrb_py_read_wait(struct mrb_py_reader *reader, int64_t timeout_ns)
{
    return mrb_py_read_into_buffer(reader, reader->buf, reader->size, 1, timeout_ns);
}

static int64_t mrb_py_read_to(struct mrb_py_reader *reader, char *buf, size_t size)
{
    return mrb_py_read_into_buffer(reader, buf, size, 0, 0);
}

/* mrb_write taking `const char *`: cffi passes a bytes object to it as the
 * object's own storage, with no type dispatch. */
static int mrb_py_write(struct mrb_ring *ring, const char *data, size_t len)
{
    return mrb_write(ring, data, len);
}
"""

MODULE_NAME = "mmap_ringbuffer._mrb_cffi"


def core_sources(absolute: bool = False) -> list[str]:
    """The copied core C files; relative to this directory by default, as
    setuptools wants."""
    found = sorted(glob.glob(os.path.join(CSRC, "src", "*.c")))
    return found if absolute else [os.path.relpath(p, HERE) for p in found]


def make_ffibuilder(
    sources: list[str] | None = None, absolute: bool = False
) -> cffi.FFI:
    """Returns the FFI builder; ``sources`` defaults to the csrc/ copies."""
    include_dirs = [os.path.join(CSRC, "include"), os.path.join(CSRC, "src")]
    if not absolute:
        include_dirs = [os.path.relpath(d, HERE) for d in include_dirs]
    builder = cffi.FFI()
    builder.cdef(CDEF)
    builder.set_source(
        MODULE_NAME,
        GLUE,
        sources=core_sources(absolute) if sources is None else sources,
        include_dirs=include_dirs,
        define_macros=[("_GNU_SOURCE", None)],
        extra_compile_args=["-O2"],
    )
    return builder


ffibuilder = make_ffibuilder()


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--emit-c":
        make_ffibuilder(sources=[]).emit_c_code(argv[2])
        # Name this interpreter's headers by their absolute paths, so a build
        # system compiling the file needs no include flag naming a version.
        with open(argv[2]) as f:
            code = f.read()
        include = sysconfig.get_paths()["include"]
        for header in ("pyconfig.h", "Python.h"):
            absolute = '"' + os.path.join(include, header) + '"'
            code = re.sub(
                rf"(#\s*include\s*)<{re.escape(header)}>", rf"\1{absolute}", code
            )
        with open(argv[2], "w") as f:
            f.write(code)
        return 0
    if len(argv) == 2 and argv[1] == "--inplace":
        with tempfile.TemporaryDirectory() as build_dir:
            builder = make_ffibuilder(absolute=True)
            built = builder.compile(tmpdir=build_dir)
            shutil.copy(built, os.path.join(HERE, "mmap_ringbuffer"))
        return 0
    print(f"usage: {argv[0]} --emit-c OUT.c | --inplace", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
