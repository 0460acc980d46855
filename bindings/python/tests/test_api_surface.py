"""The public surface: names, docstrings and type hints everywhere."""

from __future__ import annotations

import inspect
import pathlib
import pydoc
import typing

import pytest

import mmap_ringbuffer
from mmap_ringbuffer import (
    PeekedMessage,
    Reservation,
    RingBuffer,
    RingStats,
    Subscriber,
    SubscriberInfo,
    Worker,
)


def public_callables() -> list[tuple[str, object]]:
    found = []
    for cls in (
        RingBuffer,
        Subscriber,
        Reservation,
        PeekedMessage,
        RingStats,
        SubscriberInfo,
        Worker,
    ):
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") and name not in ("__enter__", "__exit__"):
                continue
            if isinstance(member, property):
                member = member.fget
            if callable(member):
                found.append((f"{cls.__name__}.{name}", member))
    found.append(("strerror", mmap_ringbuffer.strerror))
    found.append(("subscribe", mmap_ringbuffer.subscribe))
    found.append(("unsubscribe", mmap_ringbuffer.unsubscribe))
    found.append(("remove_worker_group", mmap_ringbuffer.remove_worker_group))
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


def test_help_shows_the_real_interface() -> None:
    text = pydoc.render_doc(RingBuffer, renderer=pydoc.plaintext)
    assert "RingBuffer(path: 'PathArg', *, readonly: 'bool' = False)" in text
    assert "*args" not in text and "**kwargs" not in text
    assert "__annotations__" not in text  # no private field leaks
    assert "\"'" not in text  # no doubly quoted annotations
    assert "Helper for pickle" not in text
    assert "cannot be pickled" in inspect.getdoc(RingBuffer.__reduce__)  # type: ignore[operator]
    assert str(inspect.signature(RingBuffer.create)) == (
        "(path: 'PathArg', size: 'int', *, remove: 'bool' = False, "
        "mode: 'int' = 384, exclusive: 'bool' = False, fanout: 'bool' = False) "
        "-> 'RingBuffer'"
    )


def test_private_modules_import_no_cycle() -> None:
    """Each private module imports only modules listed before it here, so
    none of them is part of an import cycle."""
    import ast

    order = [
        "_errors",
        "_args",
        "_types",
        "_stats",
        "_wait",
        "_async",
        "_reader",
        "_zero_copy",
        "_subscriber",
        "_workers",
        "_ring",
    ]
    package = pathlib.Path(mmap_ringbuffer.__file__).parent
    assert sorted(
        p.stem for p in package.glob("_*.py") if p.stem != "__init__"
    ) == sorted(order)
    for index, name in enumerate(order):
        tree = ast.parse((package / f"{name}.py").read_text())
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module
            for alias in node.names
        }
        imported.discard("_mrb_cffi")
        assert imported <= set(order[:index]), (name, imported - set(order[:index]))
