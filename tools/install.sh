#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds and installs mmap_ringbuffer without Bazel, with a plain C compiler:
#   PREFIX/include/mrb/mrb.h
#   PREFIX/lib/libmmap_ringbuffer.a
#   PREFIX/lib/libmmap_ringbuffer.so -> .so.1 -> .so.1.0.0 (soname .so.1,
#       only the public mrb_* symbols exported, via core/mrb.map)
#   PREFIX/lib/pkgconfig/mmap_ringbuffer.pc
#   PREFIX/bin/mrb
#   PREFIX/share/man/man1/mrb.1, PREFIX/share/man/man3/mrb.3
# See usage below and docs/INSTALL.md.
set -eu

help_text() {
	cat <<'HELP'
Usage: tools/install.sh [--no-bench] PREFIX

Builds mmap_ringbuffer with a plain C compiler (no Bazel) and installs:
  PREFIX/include/mrb/mrb.h                 the C API
  PREFIX/lib/libmmap_ringbuffer.a          static library
  PREFIX/lib/libmmap_ringbuffer.so         shared library (soname .so.1)
  PREFIX/lib/pkgconfig/mmap_ringbuffer.pc  for pkg-config
  PREFIX/bin/mrb                           the command-line tool
  PREFIX/share/man/man1/mrb.1              mrb(1)
  PREFIX/share/man/man3/mrb.3              mrb(3), the C library

Options:
  --no-bench   build mrb without the benchmark engine ('mrb bench')
  -h, --help   show this help

Environment: CC (default cc), AR (default ar), CFLAGS (default -O2 -g),
DESTDIR (staging root for packagers: files go to DESTDIR/PREFIX, while the
.pc file names PREFIX; PREFIX must then be absolute).

Then: cc app.c $(pkg-config --cflags --libs mmap_ringbuffer), with
PKG_CONFIG_PATH=PREFIX/lib/pkgconfig unless PREFIX is /usr or /usr/local.
Outside the loader's default directories, a program linked against the
shared library needs LD_LIBRARY_PATH=PREFIX/lib, or -Wl,-rpath,PREFIX/lib
at link time, or the static library (pkg-config --static, cc -static).
See docs/INSTALL.md.
HELP
}

usage() {
	echo "Usage: $0 [--no-bench] PREFIX" >&2
	echo "Try '$0 --help'." >&2
	exit 2
}

with_bench=auto
prefix=
while [ $# -gt 0 ]; do
	case "$1" in
	--no-bench) with_bench=no ;;
	-h | --help)
		help_text
		exit 0
		;;
	-*) usage ;;
	*)
		[ -z "$prefix" ] || usage
		prefix=$1
		;;
	esac
	shift
done
[ -n "$prefix" ] || usage

root=$(cd "$(dirname "$0")/.." && pwd)

# The release version (pkg-config's Version) is defined once, in mrb.h.
version_part() { sed -n "s/^#define MRB_VERSION_$1 *\([0-9][0-9]*\)\$/\1/p" "$root/core/include/mrb/mrb.h"; }
version=$(version_part MAJOR).$(version_part MINOR).$(version_part PATCH)
case "$version" in
*[0-9].*[0-9].*[0-9]) ;;
*)
	echo "install.sh: no MRB_VERSION_* in core/include/mrb/mrb.h" >&2
	exit 1
	;;
esac
# The shared library's file names follow its ABI, not the release (as
# libtool does): the major number is the soname and matches the symbol
# version node in core/mrb.map (MRB_1).
lib_major=1
lib_version=1.0.0

CC=${CC:-cc}
AR=${AR:-ar}
CFLAGS=${CFLAGS:--O2 -g}
warnings="-Wall -Wextra"

destdir=${DESTDIR:-}
if [ -n "$destdir" ]; then
	case "$prefix" in
	/*) ;;
	*)
		echo "install.sh: with DESTDIR, PREFIX must be absolute" >&2
		exit 2
		;;
	esac
	mkdir -p "$destdir$prefix"
else
	mkdir -p "$prefix"
	prefix=$(cd "$prefix" && pwd)
fi
dest=$destdir$prefix
build=$(mktemp -d "${TMPDIR:-/tmp}/mrb-install.XXXXXX")
trap 'rm -rf "$build"' EXIT INT TERM

say() { echo "install.sh: $*"; }

# --- the library: one set of position-independent objects for both forms ----
say "compiling the core with $CC"
mkdir -p "$build/core"
# The sources of core/sources.bzl's MRB_SRCS, as in every build (the test-only
# hooks of MRB_TEST_SRCS are never installed).
core_srcs=$(sed -n '/^MRB_SRCS = \[/,/^\]/s/^ *"\([^"]*\)",.*/\1/p' "$root/core/sources.bzl")
[ -n "$core_srcs" ] || {
	echo "install.sh: no MRB_SRCS in $root/core/sources.bzl" >&2
	exit 1
}
for rel in $core_srcs; do
	src=$root/core/$rel
	obj="$build/core/$(basename "$src" .c).o"
	# shellcheck disable=SC2086 # CFLAGS is a list of flags
	$CC -std=c11 -D_GNU_SOURCE $warnings $CFLAGS -fPIC \
		-I"$root/core/include" -I"$root/core/src" -c "$src" -o "$obj"
done

rm -f "$build/libmmap_ringbuffer.a"
$AR rcs "$build/libmmap_ringbuffer.a" "$build"/core/*.o

# shellcheck disable=SC2086
$CC -shared $CFLAGS -o "$build/libmmap_ringbuffer.so.$lib_version" \
	-Wl,-soname,"libmmap_ringbuffer.so.$lib_major" \
	-Wl,--version-script="$root/core/mrb.map" \
	"$build"/core/*.o -pthread

# --- the tool, linked statically against the library so it runs anywhere ----
build_mrb() { # build_mrb EXTRA_ARGS...: compiles bin/mrb with extra sources/flags
	# shellcheck disable=SC2086 # CFLAGS is a list of flags
	$CC -std=c11 -D_GNU_SOURCE $warnings $CFLAGS -I"$root/core/include" \
		-I"$root" -o "$build/mrb" "$root"/tools/mrb/*.c "$@" \
		"$build/libmmap_ringbuffer.a" -pthread -lm
}
bench_sources=
if [ "$with_bench" = auto ] && [ -f "$root/tools/bench/bench.h" ]; then
	# Every engine source except a stand-alone benchmark's main().
	for src in "$root"/tools/bench/*.c; do
		grep -q '^int main(' "$src" || bench_sources="$bench_sources $src"
	done
fi
if [ -n "$bench_sources" ]; then
	say "compiling mrb with the benchmark engine"
	# shellcheck disable=SC2086 # a list of paths without spaces
	if ! build_mrb -DMRB_CLI_HAVE_BENCH $bench_sources 2>"$build/bench.log"; then
		cat "$build/bench.log" >&2
		say "WARNING: the benchmark engine failed to build (above);" \
			"installing mrb without 'mrb bench'"
		bench_sources=
	fi
fi
if [ -z "$bench_sources" ]; then
	say "compiling mrb"
	build_mrb
fi

cat >"$build/mmap_ringbuffer.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: mmap_ringbuffer
Description: Many-producer, single-consumer message ring in a memory-mapped file
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lmmap_ringbuffer
Libs.private: -pthread
PC

# --- install ------------------------------------------------------------------
say "installing into $dest"
install -d "$dest/include/mrb" "$dest/lib/pkgconfig" "$dest/bin" \
	"$dest/share/man/man1" "$dest/share/man/man3"
install -m 0644 "$root/core/include/mrb/mrb.h" "$dest/include/mrb/mrb.h"
install -m 0644 "$build/libmmap_ringbuffer.a" "$dest/lib/"
install -m 0755 "$build/libmmap_ringbuffer.so.$lib_version" "$dest/lib/"
ln -sf "libmmap_ringbuffer.so.$lib_version" \
	"$dest/lib/libmmap_ringbuffer.so.$lib_major"
ln -sf "libmmap_ringbuffer.so.$lib_major" "$dest/lib/libmmap_ringbuffer.so"
install -m 0644 "$build/mmap_ringbuffer.pc" "$dest/lib/pkgconfig/"
install -m 0755 "$build/mrb" "$dest/bin/mrb"
install -m 0644 "$root/docs/man/mrb.1" "$dest/share/man/man1/mrb.1"
install -m 0644 "$root/docs/man/mrb.3" "$dest/share/man/man3/mrb.3"
say "done (version $version). Build against it with:"
say "  PKG_CONFIG_PATH=$prefix/lib/pkgconfig cc app.c \$(pkg-config --cflags --libs mmap_ringbuffer)"
case "$prefix" in
/usr | /usr/local) ;;
*)
	say "and run programs linked against the shared library with"
	say "  LD_LIBRARY_PATH=$prefix/lib (or link with -Wl,-rpath,$prefix/lib)"
	;;
esac
