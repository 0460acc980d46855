"""cffi build script for the ``mmap_ringbuffer._mrb_cffi`` extension module.

API (out-of-line) mode: the C compiler sees both these declarations and the
real ``mrb/mrb.h``, so any drift between them fails the build instead of
corrupting memory at run time, and calls skip libffi (see bench/bench_abi_api.py
for the figures behind this choice).

The extension is the cffi module, the C glue in ``mrb_py.c`` and the core
sources that ``core/sources.bzl`` lists (MRB_SRCS), compiled from the core
itself: ``../../core`` in the repository, or ``csrc/``, where
``build_backend.py`` copies the core when it makes an sdist. It exports one
symbol, ``PyInit__mrb_cffi`` (``mrb_cffi.map``). Used three ways:
  * ``build_backend.py`` (the PEP 517 backend pip and ``python -m build`` use)
    calls ``build_extension``;
  * Bazel runs ``ffi_build.py --emit-c OUT.c`` (the interpreter's Python.h by
    absolute path) and compiles OUT.c with ``mrb_py.c`` and //core:mrb;
  * ``ffi_build.py --inplace`` builds next to the sources for development.

``ffi_build.py --stub`` writes class _Lib of ``mmap_ringbuffer/_mrb_cffi.pyi``
from CDEF (``--inplace`` does too); ``--check-stub`` is a Bazel test.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import sysconfig
import tempfile

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))

# The subset of mrb/mrb.h (and mrb_py.h) the binding uses, in cffi's cdef
# dialect. Enum values and macros are "..." so the compiler supplies them from
# the real header.
CDEF = """
#define MRB_FORMAT_VERSION ...
#define MRB_HEADER_SIZE ...
#define MRB_MIN_CAPACITY ...
#define MRB_MAX_CAPACITY ...
#define MRB_MAX_SUBSCRIBERS ...
#define MRB_SUBSCRIBER_NAME_MAX ...

enum mrb_error {
    MRB_OK, MRB_EFULL, MRB_EEMPTY, MRB_EMSGSIZE, MRB_ECLOSED, MRB_EFORMAT,
    MRB_EVERSION, MRB_ECONSUMER_BUSY, MRB_ECORRUPT, MRB_EINVAL, MRB_ETIMEDOUT,
    MRB_EBUFFER_TOO_SMALL, MRB_EINTR, MRB_EEXIST, MRB_ESTALE,
    MRB_EFORKED, MRB_ENOSLOT, MRB_EFOREIGN, MRB_EINCALLBACK, MRB_ENOSUB,
    MRB_ELAPPED, MRB_EMODE, MRB_ENAMEBUSY, MRB_ENOWORKER, ...
};

typedef int... mode_t;

enum mrb_create_flags {
    MRB_CREATE_REMOVE, MRB_CREATE_EXCLUSIVE, MRB_CREATE_FANOUT, ...
};

const char *mrb_strerror(int code);

struct mrb_ring { uint64_t opaque[64]; };

struct mrb_create_options {
    unsigned flags;
    mode_t mode;
};

int mrb_create(struct mrb_ring *ring, const char *path, uint64_t size,
               const struct mrb_create_options *opts);
int mrb_open(struct mrb_ring *ring, const char *path, unsigned flags);
enum mrb_open_flags { MRB_OPEN_READONLY, ... };
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

int mrb_hold(struct mrb_ring *ring, int on);
int mrb_release_through(struct mrb_ring *ring, uint64_t position);
int64_t mrb_read_many_at(struct mrb_ring *ring, void *buf, size_t buf_size,
                         size_t *lengths, uint64_t *positions, size_t max_count);

int mrb_wait_readable(struct mrb_ring *ring, int64_t timeout_ns);
int mrb_wait_writable(struct mrb_ring *ring, size_t len, int64_t timeout_ns);
int mrb_read_wait(struct mrb_ring *ring, void *buf, size_t buf_size, size_t *len,
                  int64_t timeout_ns);
int mrb_write_wait(struct mrb_ring *ring, const void *data, size_t len,
                   int64_t timeout_ns);

#define MRB_DOORBELL_READ ...
#define MRB_DOORBELL_WRITE ...
int mrb_doorbell_fd(struct mrb_ring *ring, int which);
int mrb_arm_read(struct mrb_ring *ring, int *timeout_ms);
int mrb_arm_write(struct mrb_ring *ring, size_t len, int *timeout_ms);
int mrb_disarm(struct mrb_ring *ring, int which);

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
    uint64_t skipped_live;
    uint64_t delivered_late;
    uint64_t salt;
    int32_t sole_producer_pid;
    uint32_t sole_producer_slot;
};
int mrb_stats(struct mrb_ring *ring, struct mrb_stats *stats);
uint64_t mrb_capacity(struct mrb_ring *ring);
uint64_t mrb_max_message_size(struct mrb_ring *ring);

enum mrb_subscribe_flags {
    MRB_SUBSCRIBE_LOSSY, MRB_SUBSCRIBE_EVICT, MRB_SUBSCRIBE_FROM_OLDEST, ...
};
struct mrb_subscribe_options {
    unsigned flags;
    const char *name;
    int64_t evict_after_ns;
};
int mrb_subscribe(struct mrb_ring *ring, const char *path,
                  const struct mrb_subscribe_options *opts);
int mrb_unsubscribe(const char *path, const char *name);
enum mrb_subscriber_state {
    MRB_SUBSCRIBER_JOINING, MRB_SUBSCRIBER_ACTIVE, MRB_SUBSCRIBER_DETACHED,
    MRB_SUBSCRIBER_EVICTED, ...
};
struct mrb_subscriber_info {
    char name[...];
    unsigned flags;
    int32_t state;
    int32_t pid;
    int32_t alive;
    uint32_t index;
    int64_t evict_after_ns;
    uint64_t position;
    uint64_t lag_bytes;
    uint64_t lag_messages;
    uint64_t messages_read;
    uint64_t bytes_read;
    uint64_t lost_bytes;
    uint64_t lost_events;
    uint64_t evictions;
};
int64_t mrb_subscribers(struct mrb_ring *ring, struct mrb_subscriber_info *out,
                        size_t max);
int mrb_subscriber_info(struct mrb_ring *ring, struct mrb_subscriber_info *info);
int mrb_is_fanout(struct mrb_ring *ring);

#define MRB_MAX_WORKERS ...
#define MRB_MAX_GROUPS ...
#define MRB_GROUP_NAME_MAX ...
enum mrb_worker_policy { MRB_AT_LEAST_ONCE, MRB_AT_MOST_ONCE, ... };
struct mrb_worker_options {
    unsigned policy;
    int64_t hold_timeout_ns;
};
int mrb_worker_join(struct mrb_ring *ring, const char *path, const char *group,
                    const struct mrb_worker_options *opts);
int mrb_worker_ack(struct mrb_ring *ring);
int mrb_worker_group_remove(const char *path, const char *group);
struct mrb_group_info {
    char name[...];
    unsigned policy;
    uint32_t index;
    int64_t hold_timeout_ns;
    uint64_t claim_position;
    uint64_t lag_bytes;
    uint32_t workers;
    uint32_t workers_alive;
    uint64_t messages_done;
    uint64_t bytes_done;
    uint64_t redelivered;
    uint64_t dropped;
    uint64_t stale_releases;
};
int64_t mrb_worker_groups(struct mrb_ring *ring, struct mrb_group_info *out,
                          size_t max);
struct mrb_worker_info {
    uint32_t index;
    uint32_t group;
    int32_t pid;
    int32_t alive;
    int32_t holding;
    int32_t rescued;
    uint64_t held_from;
    uint64_t held_to;
    uint64_t messages_done;
    uint64_t bytes_done;
};
int64_t mrb_workers(struct mrb_ring *ring, struct mrb_worker_info *out, size_t max);

int mrb_recover(struct mrb_ring *ring, int64_t stale_after_ns);
int mrb_set_recovery_timeout(struct mrb_ring *ring, int64_t stale_after_ns);

/* mrb_py.h: the binding's C glue. */
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

MODULE_NAME = "mmap_ringbuffer._mrb_cffi"
# The file name of the built module: the stable ABI (cffi's generated code
# defines Py_LIMITED_API), so one build serves every Python 3 version.
MODULE_FILE = "_mrb_cffi.abi3.so"


def core_dir() -> str:
    """The core sources: ``csrc/`` in an unpacked sdist, else the
    repository's ``core/``."""
    copied = os.path.join(HERE, "csrc")
    if os.path.isfile(os.path.join(copied, "sources.bzl")):
        return copied
    core = os.path.normpath(os.path.join(HERE, "..", "..", "core"))
    if not os.path.isfile(os.path.join(core, "sources.bzl")):
        raise FileNotFoundError(
            f"no core sources: neither {copied} (an sdist's copy) nor {core}"
        )
    return core


def source_list(core: str, name: str = "MRB_SRCS") -> list[str]:
    """The paths (relative to ``core``) in one list of ``core/sources.bzl``."""
    with open(os.path.join(core, "sources.bzl")) as f:
        text = f.read()
    match = re.search(rf"^{name} = \[\n(.*?)^\]", text, re.M | re.S)
    if match is None:
        raise ValueError(f"{core}/sources.bzl has no list {name}")
    return re.findall(r'^\s*"([^"]+)",', match.group(1), re.M)


def make_ffibuilder() -> cffi.FFI:
    """The FFI builder: the cdef above and a module source that includes the
    glue's header (the glue and the core are compiled as their own files)."""
    builder = cffi.FFI()
    builder.cdef(CDEF)
    builder.set_source(MODULE_NAME, '#include "mrb_py.h"')
    return builder


def emit_c(path: str) -> None:
    """Writes the C source of the cffi module, with this interpreter's
    headers named by absolute path (a build system compiling it then needs
    no include flag naming a Python version)."""
    make_ffibuilder().emit_c_code(path)
    with open(path) as f:
        code = f.read()
    include = sysconfig.get_paths()["include"]
    for header in ("pyconfig.h", "Python.h"):
        absolute = '"' + os.path.join(include, header) + '"'
        code = re.sub(rf"(#\s*include\s*)<{re.escape(header)}>", rf"\1{absolute}", code)
    with open(path, "w") as f:
        f.write(code)


def build_extension(out_path: str) -> None:
    """Compiles the extension module to ``out_path`` with this interpreter's
    C compiler (``CC``, ``CFLAGS`` from the environment are honoured)."""
    core = core_dir()
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    cflags = shlex.split(os.environ.get("CFLAGS", "-O2 -g"))
    common = ["-std=c11", "-D_GNU_SOURCE", "-fPIC", "-Wall", "-Wextra", *cflags]
    includes = ["-I" + os.path.join(core, "include"), "-I" + HERE]
    with tempfile.TemporaryDirectory() as tmp:
        module_c = os.path.join(tmp, "_mrb_cffi.c")
        emit_c(module_c)
        units = [
            (module_c, ["-Wno-unused-parameter", "-Wno-missing-field-initializers"]),
            (os.path.join(HERE, "mrb_py.c"), []),
        ] + [(os.path.join(core, src), []) for src in source_list(core)]
        objects = []
        for i, (source, extra) in enumerate(units):
            obj = os.path.join(tmp, f"{i}.o")
            _run([*cc, *common, *extra, *includes, "-c", source, "-o", obj])
            objects.append(obj)
        version_script = os.path.join(HERE, "mrb_cffi.map")
        _run(
            [*cc, "-shared", *cflags, "-o", out_path, *objects, "-pthread"]
            + ["-Wl,--version-script=" + version_script]
        )


def _run(cmd: list[str]) -> None:
    print(" ".join(shlex.quote(c) for c in cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)


# The type stub of the extension: its class _Lib is generated from CDEF.
STUB = os.path.join(HERE, "mmap_ringbuffer", "_mrb_cffi.pyi")
_STUB_BEGIN = "class _Lib:\n"
_STUB_END = "\nffi: _FFI\n"


def lib_stub() -> str:
    """The body of ``class _Lib`` in _mrb_cffi.pyi: every constant (macro,
    enum member) and function of CDEF, C data typed as Any, integers as int,
    laid out as black lays out a stub."""
    text = re.sub(r"/\*.*?\*/", "", CDEF, flags=re.S)
    lines = [f"    {name}: int" for name in re.findall(r"#define (\w+) \.\.\.", text)]
    for body in re.findall(r"\benum \w+ \{(.*?)\};", text, re.S):
        members = [m.strip() for m in body.split(",")]
        lines += [f"    {m}: int" for m in members if m and m != "..."]
    # What remains at top level besides functions: structs, enums, typedefs.
    text = re.sub(r"\b(struct|enum) \w+ \{.*?\};", "", text, flags=re.S)
    text = re.sub(r"#define .*|typedef .*?;", "", text)
    for result, name, params in re.findall(r"([\w\s*]+?)\s*\b(\w+)\(([^()]*)\);", text):
        args = ["self"]
        for param in params.split(","):
            param = " ".join(param.split())
            arg = re.search(r"(\w+)$", param).group(1)
            args.append(f"{arg}: {'Any' if '*' in param else 'int'}")
        returns = "Any" if "*" in result else "int"
        lines.append(_stub_def(name, args, returns))
    return "\n".join(lines) + "\n"


def _stub_def(name: str, args: list[str], returns: str) -> str:
    one_line = f"    def {name}({', '.join(args)}) -> {returns}: ..."
    if len(one_line) <= 88:
        return one_line
    inner = "        " + ", ".join(args)
    if len(inner) <= 88:
        return f"    def {name}(\n{inner}\n    ) -> {returns}: ..."
    each = "".join(f"        {a},\n" for a in args)
    return f"    def {name}(\n{each}    ) -> {returns}: ..."


def update_stub(check: bool) -> int:
    """Rewrites class _Lib in the stub, or (check) reports a difference."""
    with open(STUB) as f:
        stub = f.read()
    start = stub.index(_STUB_BEGIN) + len(_STUB_BEGIN)
    end = stub.index(_STUB_END, start)
    new = stub[:start] + lib_stub() + stub[end:]
    if new == stub:
        return 0
    if check:
        print(
            f"{STUB}: class _Lib differs from ffi_build.py's CDEF; run"
            " ffi_build.py --stub",
            file=sys.stderr,
        )
        return 1
    with open(STUB, "w") as f:
        f.write(new)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--emit-c":
        emit_c(argv[2])
        return 0
    if len(argv) == 2 and argv[1] == "--inplace":
        build_extension(os.path.join(HERE, "mmap_ringbuffer", MODULE_FILE))
        return update_stub(check=False)
    if len(argv) == 2 and argv[1] in ("--stub", "--check-stub"):
        return update_stub(check=argv[1] == "--check-stub")
    print(
        f"usage: {argv[0]} --emit-c OUT.c | --inplace | --stub | --check-stub",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
