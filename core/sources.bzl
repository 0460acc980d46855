"""The core's source list: the one place that says which C files make up the library.

Every build reads it: //core:mrb (core/BUILD.bazel), tools/install.sh, the Go
package's amalgamation (bindings/go/gen_core.go, run by `go generate`) and the
Python package (bindings/python/ffi_build.py, and the sdist it copies the core
into). A new core/src/*.c file goes into exactly one of the two lists below;
a file in neither fails every Bazel build (check_sources).

Keep the format: one quoted path per line. tools/install.sh, gen_core.go and
ffi_build.py read this file with a line pattern, not a Starlark parser.
Private headers (src/*.h) need no entry: each build finds them through the
#include lines.
"""

# Compiled into every shipped build of the library.
MRB_SRCS = [
    "src/barrier.c",
    "src/consumer.c",
    "src/doorbell.c",
    "src/doorbell_uring.c",
    "src/error.c",
    "src/ffi.c",
    "src/file.c",
    "src/fork.c",
    "src/lease.c",
    "src/producer.c",
    "src/recover.c",
    "src/slots.c",
    "src/stats.c",
    "src/subscriber.c",
    "src/upgrade.c",
    "src/util.c",
    "src/version.c",
    "src/wait.c",
    "src/workers.c",
]

# Test-only hooks (mrb__test_*, src/mrb_testing.h): //core:testing only,
# never in a shipped build.
MRB_TEST_SRCS = [
    "src/testing.c",
]

def check_sources(c_files):
    """Fails the build if a core C file is in neither list, or in both."""
    for f in c_files:
        n = len([s for s in MRB_SRCS + MRB_TEST_SRCS if s == f])
        if n != 1:
            fail("core/%s must be listed exactly once in core/sources.bzl (found %d)" % (f, n))
    for f in MRB_SRCS + MRB_TEST_SRCS:
        if f not in c_files:
            fail("core/sources.bzl lists %s, which does not exist" % f)
