#!/bin/sh
# SPDX-License-Identifier: MIT
# The pipeline demo in quick mode, with the Bazel-built programs: it must
# deliver every message and match the producer's checksum end to end. The
# rates it prints are informational only.
set -eu
out=$TEST_TMPDIR/pipeline.out
PIPELINE_PRODUCER=$(pwd)/tools/demo/producer PIPELINE_STAGE=$(pwd)/tests/interop/demo_stage \
	tools/demo/pipeline.sh --quick | tee "$out"
grep -q "^end to end: 20000 messages, body crc32 [0-9a-f]* matches the producer's$" "$out"
