"""The public surface: names, docstrings and type hints everywhere."""

from __future__ import annotations

import inspect
import pathlib
import typing

import pytest

import mmap_ringbuffer
from mmap_ringbuffer import PeekedMessage, Reservation, RingBuffer, RingStats


def public_callables() -> list[tuple[str, object]]:
    found = []
    for cls in (RingBuffer, Reservation, PeekedMessage, RingStats):
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") and name not in ("__enter__", "__exit__"):
                continue
            if isinstance(member, property):
                member = member.fget
            if callable(member):
                found.append((f"{cls.__name__}.{name}", member))
    found.append(("strerror", mmap_ringbuffer.strerror))
    return found


@pytest.mark.parametrize("name,member", public_callables(), ids=lambda v: str(v))
def test_documented_and_typed(name: str, member: object) -> None:
    if not name.endswith(("__enter__", "__exit__")):
        assert inspect.getdoc(member), f"{name} has no docstring"
    hints = typing.get_type_hints(member)
    assert "return" in hints, f"{name} has no return annotation"
    parameters = inspect.signature(member).parameters  # type: ignore[arg-type]
    for parameter in parameters.values():
        if parameter.name in ("self", "cls"):
            continue
        assert parameter.name in hints, f"{name}: {parameter.name} is not annotated"


def test_exported_names() -> None:
    for name in mmap_ringbuffer.__all__:
        assert hasattr(mmap_ringbuffer, name), name
    assert mmap_ringbuffer.__version__


def test_typing_marker_ships_with_the_package() -> None:
    package = pathlib.Path(mmap_ringbuffer.__file__).parent
    assert (package / "py.typed").exists()
