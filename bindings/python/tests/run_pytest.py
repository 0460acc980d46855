"""Bazel entry point: runs this directory's pytest suite against the package
on sys.path (the py_library with the Bazel-built extension)."""

import os
import sys

import pytest

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    args = [here, "-q", "-p", "no:cacheprovider"]
    sys.exit(pytest.main(args + sys.argv[1:]))
