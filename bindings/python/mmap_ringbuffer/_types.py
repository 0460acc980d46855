"""Type aliases for the buffer-protocol objects the API accepts."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    # The type checker's own definition (typeshed): collections.abc.Buffer
    # where it knows PEP 688 (then numpy arrays and any class with
    # __buffer__ match), else bytes, bytearray, memoryview, array, mmap,
    # ctypes objects and pickle.PickleBuffer.
    from _typeshed import ReadableBuffer as ReadableBuffer
    from _typeshed import WriteableBuffer

    #: A buffer C may write into.
    WritableBuffer = WriteableBuffer
elif sys.version_info >= (3, 12):
    from collections.abc import Buffer

    #: Anything exposing a contiguous buffer (bytes, bytearray, memoryview,
    #: array.array, mmap, ctypes objects, numpy arrays, ...).
    ReadableBuffer = Buffer
    #: A buffer C may write into (bytearray, memoryview of one, array, mmap).
    WritableBuffer = Buffer
else:  # for run-time introspection (typing.get_type_hints) only
    import ctypes
    import mmap
    from array import array

    ReadableBuffer = Union[bytes, bytearray, memoryview, array, mmap.mmap, ctypes.Array]
    WritableBuffer = Union[bytearray, memoryview, array, mmap.mmap, ctypes.Array]
