#!/bin/sh
# Bazel test: `go vet` and `go test -race -short` of the Go binding, with no
# rules_go. The package and the core are copied (symlinks dereferenced) out
# of the runfiles tree into a scratch repository layout, so the module-zip
# test sees regular files and TestCoreGenerated finds ../../core.
# With --generated-check: only `go run gen_core.go -check`.
set -eu

go=""
for candidate in "${GOROOT_HINT:-/usr/local/go}/bin/go" /usr/local/go/bin/go $(command -v go || true); do
	if [ -x "$candidate" ]; then
		go=$candidate
		break
	fi
done
if [ -z "$go" ]; then
	echo "go_test.sh: no go command (looked in \$GOROOT_HINT/bin, /usr/local/go/bin, PATH)" >&2
	exit 1
fi

runfiles=$(cd "$(dirname "$0")/../.." && pwd)
scratch=${TEST_TMPDIR:?}/go-test
mkdir -p "$scratch/repo/bindings" "$scratch/home" "$scratch/tmp"
cp -RL "$runfiles/core" "$scratch/repo/core"
cp -RL "$runfiles/bindings/go" "$scratch/repo/bindings/go"

export HOME="$scratch/home" GOCACHE="$scratch/cache" GOPATH="$scratch/gopath" TMPDIR="$scratch/tmp"
export GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=1 GOWORK=off
export PATH="$(dirname "$go"):$PATH"

cd "$scratch/repo/bindings/go"
if [ "${1:-}" = --generated-check ]; then
	exec "$go" run gen_core.go -check
fi
"$go" version
echo "== go vet"
"$go" vet ./...
echo "== go test -race -short"
if ! "$go" test -race -short -count=1 -v ./... >"$scratch/test.log" 2>&1; then
	cat "$scratch/test.log"
	exit 1
fi
# Passing: show the result lines and any skipped test, not every log line.
grep -E '^(--- (PASS|SKIP)|ok|PASS)' "$scratch/test.log"
