#!/usr/bin/env bash
# Copies the core C sources into bindings/python/csrc/ so that the package
# builds from its own directory alone: pip builds from an isolated copy (sdist),
# where ../../core does not exist.
#
#   sync_core.sh           refresh the copies (idempotent)
#   sync_core.sh --check   exit 1 if any copy differs from core/, a core file has
#                          no copy, or a copy has no core file (run by Bazel)
#
# Layout of the copies mirrors core/ (src/*.c, src/*.h, include/mrb/mrb.h) so
# every #include resolves exactly as it does in core/.
set -euo pipefail

usage() {
	echo "usage: $0 [--check] [--core DIR] [--csrc DIR]" >&2
	exit 2
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
core="$here/../../core"
csrc="$here/csrc"
check=0
while [[ $# -gt 0 ]]; do
	case "$1" in
	--check) check=1 ;;
	--core) core="$2"; shift ;;
	--csrc) csrc="$2"; shift ;;
	*) usage ;;
	esac
	shift
done

[[ -f "$core/include/mrb/mrb.h" ]] || { echo "no core at $core" >&2; exit 2; }

# Relative paths (under core/ and csrc/) of the files that make up the core.
list_sources() {
	(
		cd "$1"
		if [[ -e include/mrb/mrb.h ]]; then echo include/mrb/mrb.h; fi
		if [[ -d src ]]; then
			find -L src -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' \) |
				LC_ALL=C sort
		fi
	)
}

wanted="$(list_sources "$core")"
present=""
[[ -d "$csrc" ]] && present="$(list_sources "$csrc")"

if [[ $check -eq 1 ]]; then
	status=0
	for f in $wanted; do
		if [[ ! -f "$csrc/$f" ]]; then
			echo "missing copy: csrc/$f" >&2
			status=1
		elif ! cmp -s "$core/$f" "$csrc/$f"; then
			echo "stale copy: csrc/$f differs from core/$f" >&2
			status=1
		fi
	done
	for f in $present; do
		if [[ ! -f "$core/$f" ]]; then
			echo "orphan copy: csrc/$f has no core/$f" >&2
			status=1
		fi
	done
	if [[ $status -ne 0 ]]; then
		echo "run bindings/python/sync_core.sh to refresh the copies" >&2
	fi
	[[ $status -eq 0 ]] && echo "csrc/ matches core/ ($(echo "$wanted" | wc -w) files)"
	exit $status
fi

for f in $present; do
	[[ -f "$core/$f" ]] || rm -f "$csrc/$f"
done
for f in $wanted; do
	mkdir -p "$csrc/$(dirname "$f")"
	cmp -s "$core/$f" "$csrc/$f" 2>/dev/null || cp "$core/$f" "$csrc/$f"
done
echo "csrc/ matches core/ ($(echo "$wanted" | wc -w) files)"
