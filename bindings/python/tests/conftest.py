"""Shared fixtures: every test gets its own ring file in a temp directory."""

from __future__ import annotations

import pathlib
from typing import Iterator

import pytest

from mmap_ringbuffer import RingBuffer


@pytest.fixture
def ring_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "test.ring"


@pytest.fixture
def rb(ring_path: pathlib.Path) -> Iterator[RingBuffer]:
    ring = RingBuffer.create(ring_path, 4096)
    try:
        yield ring
    finally:
        ring.close()
