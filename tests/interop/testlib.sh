# SPDX-License-Identifier: MIT
# Shared by the interop test drivers (sourced). Runs the writer and reader
# programs of each language by name: run_program LANG ROLE ARGS...
#
# Under Bazel the programs are found in the runfiles tree (the test's working
# directory); elsewhere point the variables below at them.
set -u

INTEROP_ROOT=${INTEROP_ROOT:-$(pwd)}
C_WRITER=${C_WRITER:-$INTEROP_ROOT/tests/interop/c_writer}
C_READER=${C_READER:-$INTEROP_ROOT/tests/interop/c_reader}
GO_INTEROP=${GO_INTEROP:-$INTEROP_ROOT/tests/interop/go_interop}
PY_DIR=${PY_DIR:-$INTEROP_ROOT/tests/interop/py}
PYTHON=${PYTHON:-/usr/bin/python3}
MRB_INTEROP_SPEC=${MRB_INTEROP_SPEC:-$INTEROP_ROOT/tests/interop/scenarios.txt}
PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$INTEROP_ROOT/bindings/python
export MRB_INTEROP_SPEC PYTHONPATH
# No stray .pyc files in the (read-only) runfiles tree.
export PYTHONDONTWRITEBYTECODE=1

WORK=$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/interop.XXXXXX")

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

run_program() {
	lang=$1
	role=$2
	shift 2
	case "$lang" in
	c) if [ "$role" = writer ]; then $run_exec "$C_WRITER" "$@"; else $run_exec "$C_READER" "$@"; fi ;;
	go) $run_exec "$GO_INTEROP" "$role" "$@" ;;
	py) $run_exec "$PYTHON" "$PY_DIR/$role.py" "$@" ;;
	*) fail "unknown language $lang" ;;
	esac
}
run_exec=

# Starts a program in the background (as run_program); $! is its pid, so
# wait_all can stop it.
spawn_program() {
	(
		run_exec=exec
		run_program "$@"
	) &
}

# Scenario names of one kind (stream or tagged), from the shared spec.
scenario_names() {
	awk -v kind="$1" '$1 !~ /^#/ && $2 == kind { print $1 }' "$MRB_INTEROP_SPEC"
}

# Waits (up to about 60 s) until `count` files matching DIR/ready.* exist.
wait_ready() {
	dir=$1
	count=$2
	tries=0
	while [ "$(find "$dir" -name 'ready.*' | wc -l)" -lt "$count" ]; do
		tries=$((tries + 1))
		[ "$tries" -lt 6000 ] || fail "only $(find "$dir" -name 'ready.*' | wc -l) of $count producers got ready"
		sleep 0.01
	done
}

# Waits for the background processes "PID:NAME ..."; as soon as one fails,
# stops the others (they would only wait for a partner that is gone) and
# fails naming it.
wait_all() {
	running=$*
	while [ -n "$running" ]; do
		still=
		for entry in $running; do
			pid=${entry%%:*}
			if kill -0 "$pid" 2>/dev/null; then
				still="$still $entry"
			elif ! wait "$pid"; then
				for other in $still $running; do
					[ "$other" = "$entry" ] || kill "${other%%:*}" 2>/dev/null
				done
				fail "${entry#*:}"
			fi
		done
		running=$still
		[ -z "$running" ] || sleep 0.05
	done
}
