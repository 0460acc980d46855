#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: installs what is missing, then runs the cross-language
# pipeline demo -- a C producer feeds a Go stage through one ring file, the Go
# stage transforms and forwards into a second ring, a Python consumer checks
# every message -- and prints counts and rates for each hop.
# Arguments go to tools/demo/pipeline.sh (e.g. --seconds 10, --count N).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >/dev/null
exec tools/demo/pipeline.sh "$@"
