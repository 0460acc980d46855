"""Type aliases for the buffer-protocol objects the API accepts."""

from __future__ import annotations

import mmap
import sys
from array import array
from typing import TYPE_CHECKING, Any, Union

if sys.version_info >= (3, 12):
    from collections.abc import Buffer

    #: Anything exposing a contiguous buffer (bytes, bytearray, memoryview,
    #: array.array, mmap, numpy arrays, ...).
    ReadableBuffer = Buffer
    #: A buffer C may write into (bytearray, memoryview of one, array, mmap).
    WritableBuffer = Buffer
elif TYPE_CHECKING:
    ReadableBuffer = Union[bytes, bytearray, memoryview, array[Any], mmap.mmap]
    WritableBuffer = Union[bytearray, memoryview, array[Any], mmap.mmap]
else:  # array is not subscriptable at run time before 3.12
    ReadableBuffer = Union[bytes, bytearray, memoryview, array, mmap.mmap]
    WritableBuffer = Union[bytearray, memoryview, array, mmap.mmap]
