#!/bin/sh
# SPDX-License-Identifier: MIT
# Bazel test of tools/bridge: go vet and go test against a real nats-server,
# with no rules_go and no network (GOPROXY=off). tools/setup.sh put the
# pinned nats-server and the bridge's Go modules in the cache below. The Go
# build cache lives there too (the test is not sandboxed for that reason):
# a cold one costs a minute or more of compiling (the standard library,
# the NATS client, the cgo core), a warm one seconds; -trimpath makes its
# entries independent of this run's scratch directory. The bridge and the
# binding are copied out of the runfiles tree (symlinks dereferenced) into a
# scratch repository layout, so the go.mod replace directive
# (../../bindings/go) resolves.
set -eu

go=""
for candidate in "${GOROOT_HINT:-/usr/local/go}/bin/go" /usr/local/go/bin/go $(command -v go || true); do
	if [ -x "$candidate" ]; then
		go=$candidate
		break
	fi
done
[ -n "$go" ] || {
	echo "bridge_test.sh: no go command" >&2
	exit 1
}

# The same path rule as tools/setup.sh; Bazel passes no HOME to tests.
home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache_dir=${MRB_CACHE_DIR:-${XDG_CACHE_HOME:-$home/.cache}/mmap_ringbuffer}
nats_server=$cache_dir/nats-server-v2.15.2/nats-server
if [ ! -x "$nats_server" ] || [ ! -d "$cache_dir/gomod/cache/download" ]; then
	echo "bridge_test.sh: $nats_server or $cache_dir/gomod is missing: run tools/setup.sh" >&2
	exit 1
fi

runfiles=$(pwd)
scratch=${TEST_TMPDIR:?}/bridge-test
mkdir -p "$scratch/repo/bindings" "$scratch/repo/tools" "$scratch/home" "$scratch/tmp"
cp -RL "$runfiles/bindings/go" "$scratch/repo/bindings/go"
cp -RL "$runfiles/tools/bridge" "$scratch/repo/tools/bridge"

mkdir -p "$cache_dir/gocache"
export HOME="$scratch/home" GOCACHE="$cache_dir/gocache" GOPATH="$scratch/gopath" TMPDIR="$scratch/tmp"
export GOMODCACHE="$cache_dir/gomod" GOPROXY=off GOSUMDB=off
export GOFLAGS="-mod=mod -trimpath" GOTOOLCHAIN=local CGO_ENABLED=1 GOWORK=off GOTELEMETRY=off
export PATH="$(dirname "$go"):$PATH"
export MRB_NATS_SERVER="$nats_server" MRB_CLI="$runfiles/tools/mrb/mrb"
export MRB_PYTHONPATH="$runfiles/bindings/python"

cd "$scratch/repo/tools/bridge"
"$go" version
"$nats_server" --version
echo "== go vet"
"$go" vet ./...
echo "== go test"
if ! "$go" test -count=1 -v ./... >"$scratch/test.log" 2>&1; then
	cat "$scratch/test.log"
	exit 1
fi
grep -E '^(--- (PASS|SKIP)|ok|PASS)|bridge_test.go' "$scratch/test.log"
