#!/bin/sh
# tools/install.sh into a temporary prefix, then a program built exactly as
# a user outside Bazel would: cc app.c $(pkg-config --cflags --libs
# mmap_ringbuffer), linked against the shared library and, with --static,
# the static one. Also checks the soname, the exported symbols and bin/mrb.
# Usage: install_test.sh INSTALL_SH APP_C
set -eu

install_sh=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
app_c=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
mrb_h=$(cd "$(dirname "$install_sh")/.." && pwd)/core/include/mrb/mrb.h
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/mrb-install-test.XXXXXX")
prefix=$work/prefix
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# --help: usage first, exit 0, nothing on stderr.
sh "$install_sh" --help >"$work/help" 2>"$work/help.err" || fail "--help exited $?"
[ "$(head -n 1 "$work/help")" = "Usage: tools/install.sh [--no-bench] PREFIX" ] ||
	fail "--help starts with: $(head -n 1 "$work/help")"
! grep -q SPDX "$work/help" || fail "--help prints the license header"
grep -q 'share/man/man1/mrb.1' "$work/help" || fail "--help does not list the man pages"
[ ! -s "$work/help.err" ] || fail "--help wrote to stderr"

sh "$install_sh" "$prefix" >"$work/install.log" 2>&1 || {
	cat "$work/install.log" >&2
	fail "install.sh failed"
}
for f in include/mrb/mrb.h lib/libmmap_ringbuffer.a lib/libmmap_ringbuffer.so \
	lib/pkgconfig/mmap_ringbuffer.pc bin/mrb share/man/man1/mrb.1 share/man/man3/mrb.3; do
	[ -e "$prefix/$f" ] || fail "missing $f"
done

# The shared library: soname, and only the public API exported.
soname=$(readelf -d "$prefix/lib/libmmap_ringbuffer.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libmmap_ringbuffer.so.1 ] || fail "soname '$soname'"
[ -e "$prefix/lib/$soname" ] || fail "no file named after the soname"
nm -D --defined-only "$prefix/lib/libmmap_ringbuffer.so" | awk '{print $3}' |
	sed 's/@.*//' | sort -u >"$work/exported"
grep -v -e '^mrb_' -e '^MRB_1$' "$work/exported" >"$work/foreign" || true
[ ! -s "$work/foreign" ] || fail "non-API symbols exported: $(tr '\n' ' ' <"$work/foreign")"
grep -q '^mrb_write$' "$work/exported" || fail "mrb_write not exported"
grep -q '^mrb_inspect$' "$work/exported" || fail "mrb_inspect not exported"
! grep -q -e '^mrbi_' -e '^mrb__' "$work/exported" || fail "internal or test-only symbols exported"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cd "$work"
cp "$app_c" app.c

# Shared: exactly the documented command.
cc app.c $(pkg-config --cflags --libs mmap_ringbuffer)
readelf -d a.out | grep -q 'NEEDED.*\[libmmap_ringbuffer.so.1\]' ||
	fail "a.out does not use the shared library"
LD_LIBRARY_PATH="$prefix/lib" ./a.out "$work/ring-shared" >out.shared
grep -q '^ok: 1000 messages, capacity 4096, ' out.shared || fail "shared run: $(cat out.shared)"
# As README.md says: outside the loader's directories, the shared build
# needs LD_LIBRARY_PATH (above) or an rpath.
if ./a.out "$work/ring-none" >out.none 2>err.none; then
	fail "a.out ran without LD_LIBRARY_PATH or rpath"
fi
grep -q 'libmmap_ringbuffer.so.1: cannot open shared object file' err.none || fail "no-path run: $(cat err.none)"
cc -o app-rpath app.c $(pkg-config --cflags --libs mmap_ringbuffer) -Wl,-rpath,"$prefix/lib"
./app-rpath "$work/ring-rpath" >out.rpath
grep -q '^ok: 1000 messages, capacity 4096, ' out.rpath || fail "rpath run: $(cat out.rpath)"

# Static: the same with --static (and the compiler's -static).
cc -static -o app-static app.c $(pkg-config --static --cflags --libs mmap_ringbuffer)
! readelf -d app-static 2>/dev/null | grep -q NEEDED || fail "app-static has dynamic dependencies"
./app-static "$work/ring-static" >out.static
grep -q '^ok: 1000 messages, capacity 4096, ' out.static || fail "static run: $(cat out.static)"

# The installed tool works on a ring made by the program.
"$prefix/bin/mrb" stat "$work/ring-static" --json >stat.json
/usr/bin/python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["messages_read"] == 1000, s' stat.json ||
	fail "bin/mrb stat"
echo hello | "$prefix/bin/mrb" write "$work/ring-static"
[ "$("$prefix/bin/mrb" read "$work/ring-static")" = hello ] || fail "bin/mrb read"

# pkg-config metadata.
# The version is mrb.h's, as the installed library and tool report it.
want_version=$(for part in MAJOR MINOR PATCH; do
	sed -n "s/^#define MRB_VERSION_$part *\([0-9][0-9]*\)\$/\1/p" "$mrb_h"
done | paste -sd.)
[ "$(pkg-config --modversion mmap_ringbuffer)" = "$want_version" ] ||
	fail "pkg-config version $(pkg-config --modversion mmap_ringbuffer), mrb.h $want_version"
"$prefix/bin/mrb" --version | grep -q "^mrb $want_version " || fail "bin/mrb --version"

# --no-bench: mrb without the benchmark engine says so, exit 10.
sh "$install_sh" --no-bench "$work/prefix-nobench" >"$work/install-nobench.log" 2>&1 || {
	cat "$work/install-nobench.log" >&2
	fail "install.sh --no-bench failed"
}
set +e
"$work/prefix-nobench/bin/mrb" bench >bench.out 2>bench.err
rc=$?
set -e
[ "$rc" -eq 10 ] || fail "mrb bench without the engine exited $rc"
grep -q "without the benchmark engine" bench.err || fail "mrb bench stderr: $(cat bench.err)"

# The man pages are found through the prefix.
[ "$(MANPATH="$prefix/share/man" man -w 1 mrb)" = "$prefix/share/man/man1/mrb.1" ] || fail "man -w 1 mrb"
[ "$(MANPATH="$prefix/share/man" man -w 3 mrb)" = "$prefix/share/man/man3/mrb.3" ] || fail "man -w 3 mrb"
MANWIDTH=80 MANPATH="$prefix/share/man" man 3 mrb 2>/dev/null | grep -q 'mrb_version' || fail "man 3 mrb"
[ "$(pkg-config --variable=prefix mmap_ringbuffer)" = "$prefix" ] || fail "prefix"

echo PASS
