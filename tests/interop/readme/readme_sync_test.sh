#!/bin/sh
# SPDX-License-Identifier: MIT
# README.md's "Using it from several languages" shows the programs
# readme_test runs, not a drifting copy of them.
exec /usr/bin/python3 tests/interop/readme/readme_sync_check.py README.md .
