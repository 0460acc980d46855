#!/bin/sh
# SPDX-License-Identifier: MIT
# Keeps the wake-up benchmark running: a few wake-ups, a table row out.
set -eu
out=$(tools/bench/wakeup_fd --count 20 --path "${TEST_TMPDIR:-/tmp}/wakeup.ring")
echo "$out"
echo "$out" | grep -q '^| C epoll | '
