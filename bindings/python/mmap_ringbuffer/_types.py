"""Type aliases for the buffer-protocol objects the API accepts."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from typing import Protocol

    from _typeshed import ReadableBuffer as _TypeshedReadable
    from _typeshed import WriteableBuffer as _TypeshedWriteable

    class _SupportsBuffer(Protocol):
        """A PEP 688 buffer (numpy arrays and any class with __buffer__),
        also for type checkers whose typeshed predates
        collections.abc.Buffer."""

        def __buffer__(self, __flags: int) -> memoryview:
            ...

    #: Anything exposing a contiguous buffer: the type checker's own
    #: definition (bytes, bytearray, memoryview, array, mmap, ctypes
    #: objects, ...; collections.abc.Buffer where typeshed knows PEP 688),
    #: plus PEP 688 buffers.
    ReadableBuffer = Union[_TypeshedReadable, _SupportsBuffer]
    #: A buffer C may write into (what C cannot write is refused at run time).
    WritableBuffer = Union[_TypeshedWriteable, _SupportsBuffer]
elif sys.version_info >= (3, 12):
    from collections.abc import Buffer

    ReadableBuffer = Buffer
    WritableBuffer = Buffer
else:  # for run-time introspection (typing.get_type_hints) only
    import ctypes
    import mmap
    from array import array

    ReadableBuffer = Union[bytes, bytearray, memoryview, array, mmap.mmap, ctypes.Array]
    WritableBuffer = Union[bytearray, memoryview, array, mmap.mmap, ctypes.Array]
