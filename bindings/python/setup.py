"""Builds the _mrb_cffi extension from the core C sources copied in csrc/.

Everything else is declared in pyproject.toml; setup.py exists because cffi's
setuptools hook is configured through setup(cffi_modules=...).
"""

from setuptools import setup

setup(cffi_modules=["ffi_build.py:ffibuilder"])
