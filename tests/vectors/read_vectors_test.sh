#!/bin/sh
# SPDX-License-Identifier: MIT
# One language reads every golden vector: read_vectors_test.sh c|go|py [DIR]
set -eu
dir=${2:-tests/vectors}
case "${1:-}" in
c) exec tests/vectors/check_vectors "$dir" ;;
go) exec tests/interop/go_interop vectors "$dir" ;;
py)
	export PYTHONPATH="$(pwd)/bindings/python" PYTHONDONTWRITEBYTECODE=1
	exec /usr/bin/python3 tests/vectors/check_vectors.py "$dir"
	;;
*)
	echo "usage: $0 c|go|py" >&2
	exit 2
	;;
esac
