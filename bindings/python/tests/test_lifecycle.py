"""Create, open, close, properties, stats, persistence."""

from __future__ import annotations

import errno
import os
import pathlib
import pickle
import stat

import pytest

from mmap_ringbuffer import (
    BufferEmpty,
    FormatError,
    InvalidArgument,
    RingBuffer,
    RingBufferError,
    RingExists,
    RingStats,
)


def test_capacity_is_rounded_up_to_a_power_of_two(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 1000) as rb:
        assert rb.capacity == 1024
        assert 0 < rb.max_message_size < rb.capacity
        assert rb.max_message_size == rb.stats().max_message_size


def test_small_sizes_get_the_minimum_capacity(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 1) as rb:
        assert rb.capacity == 256


@pytest.mark.parametrize("kind", [str, pathlib.Path, os.fsencode])
def test_path_types(tmp_path: pathlib.Path, kind: object) -> None:
    path = tmp_path / "typed.ring"
    with RingBuffer.create(kind(str(path)), 4096) as rb:  # type: ignore[operator]
        assert rb.path == str(path)
    with RingBuffer.open(kind(str(path))) as rb:  # type: ignore[operator]
        assert rb.path == str(path)
        assert rb.capacity == 4096


def test_file_size_is_header_plus_capacity(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 8192):
        assert ring_path.stat().st_size == 65536 + 8192


def test_mode_is_applied_exactly(ring_path: pathlib.Path) -> None:
    old_umask = os.umask(0o077)
    try:
        with RingBuffer.create(ring_path, 4096, mode=0o644):
            assert stat.S_IMODE(ring_path.stat().st_mode) == 0o644
    finally:
        os.umask(old_umask)


def test_default_mode_is_0600(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 4096):
        assert stat.S_IMODE(ring_path.stat().st_mode) == 0o600


def test_context_manager_closes(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 4096) as rb:
        assert not rb.closed
    assert rb.closed


def test_close_is_idempotent(rb: RingBuffer) -> None:
    rb.close()
    rb.close()
    assert rb.closed
    assert "closed" in repr(rb)


def test_properties_survive_close(rb: RingBuffer, ring_path: pathlib.Path) -> None:
    rb.close()
    assert rb.capacity == 4096
    assert rb.path == str(ring_path)


def test_constructor_opens_an_existing_ring(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 4096) as created:
        created.write(b"via the constructor")
    with RingBuffer(ring_path) as opened:
        assert opened.capacity == 4096
        assert opened.read() == b"via the constructor"
    with pytest.raises(TypeError, match="positional"):
        RingBuffer(ring_path, 4096)  # type: ignore[misc]
    with pytest.raises(TypeError, match="initialized handle"):
        opened.__init__(ring_path)  # type: ignore[misc]


def test_handle_cannot_be_pickled(rb: RingBuffer) -> None:
    with pytest.raises(TypeError, match="RingBuffer.open"):
        pickle.dumps(rb)


def test_messages_persist_across_reopen(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 4096) as rb:
        for i in range(10):
            rb.write(b"persist-%d" % i)
        assert rb.read() == b"persist-0"
    with RingBuffer.open(ring_path) as rb:
        assert [bytes(m) for m in rb] == [b"persist-%d" % i for i in range(1, 10)]


def test_create_on_an_existing_ring_keeps_its_messages(
    ring_path: pathlib.Path,
) -> None:
    with RingBuffer.create(ring_path, 4096) as rb:
        rb.write(b"kept")
    with RingBuffer.create(ring_path, 4096) as rb:
        assert rb.read() == b"kept"


def test_create_remove_replaces_the_ring(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 4096) as rb:
        rb.write(b"lost")
    with RingBuffer.create(ring_path, 8192, remove=True) as rb:
        assert rb.capacity == 8192
        with pytest.raises(BufferEmpty):
            rb.read()


def test_create_remove_replaces_a_foreign_file(ring_path: pathlib.Path) -> None:
    ring_path.write_bytes(b"not a ring")
    with RingBuffer.create(ring_path, 4096, remove=True) as rb:
        rb.write(b"x")
        assert rb.read() == b"x"


def test_exclusive_create_refuses_an_existing_path(ring_path: pathlib.Path) -> None:
    RingBuffer.create(ring_path, 4096).close()
    with pytest.raises(RingExists) as info:
        RingBuffer.create(ring_path, 4096, exclusive=True)
    assert isinstance(info.value, FileExistsError)
    assert isinstance(info.value, RingBufferError)
    assert info.value.errno == errno.EEXIST
    assert info.value.filename == ring_path


def test_create_refuses_a_ring_of_another_capacity(ring_path: pathlib.Path) -> None:
    RingBuffer.create(ring_path, 4096).close()
    with pytest.raises(RingExists):
        RingBuffer.create(ring_path, 8192)


def test_stats_count_traffic(rb: RingBuffer) -> None:
    rb.write(b"12345")
    rb.write(b"123")
    assert rb.read() == b"12345"
    stats = rb.stats()
    assert isinstance(stats, RingStats)
    assert stats.format_version == 2
    assert stats.capacity == 4096
    assert stats.messages_written == 2
    assert stats.bytes_written == 8
    assert stats.messages_read == 1
    assert stats.bytes_read == 5
    assert stats.full_count == 0
    assert stats.consumer_pid == os.getpid()
    assert stats.consumer_alive is True
    assert stats.creator_pid == os.getpid()
    assert stats.used_bytes == stats.producer_position - stats.consumer_position
    assert stats.used_bytes > 0
    with pytest.raises(AttributeError):
        stats.capacity = 1  # type: ignore[misc]


def test_stats_name_the_sole_producer(rb: RingBuffer, ring_path: pathlib.Path) -> None:
    stats = rb.stats()
    assert stats.sole_producer_pid == 0
    assert stats.sole_producer_slot is None
    # The ring's only producer holds the lease from its first write.
    with RingBuffer.open(ring_path) as writer:
        writer.write(b"one")
        stats = rb.stats()
        assert stats.sole_producer_pid == os.getpid()
        assert stats.sole_producer_slot == 0
    # Closing it gives the lease back.
    stats = rb.stats()
    assert stats.sole_producer_pid == 0
    assert stats.sole_producer_slot is None


def test_size_zero_is_invalid(ring_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        RingBuffer.create(ring_path, 0)
    assert isinstance(info.value, ValueError)
    assert not ring_path.exists()


def test_size_above_maximum_is_invalid(ring_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgument):
        RingBuffer.create(ring_path, (1 << 40) + 1)
    with pytest.raises(InvalidArgument):
        RingBuffer.create(ring_path, 1 << 70)


def test_negative_size_is_invalid(ring_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgument):
        RingBuffer.create(ring_path, -1)


@pytest.mark.parametrize("size", [4096.0, "4096", None, True])
def test_size_must_be_an_int(ring_path: pathlib.Path, size: object) -> None:
    with pytest.raises(TypeError):
        RingBuffer.create(ring_path, size)  # type: ignore[arg-type]


def test_open_missing_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "missing.ring"
    with pytest.raises(FileNotFoundError) as info:
        RingBuffer.open(path)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == path


def test_create_in_missing_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError):
        RingBuffer.create(tmp_path / "no" / "such.ring", 4096)


def test_open_refuses_a_symlink(
    ring_path: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    RingBuffer.create(ring_path, 4096).close()
    link = tmp_path / "link.ring"
    link.symlink_to(ring_path)
    with pytest.raises(OSError) as info:
        RingBuffer.open(link)
    assert info.value.errno == errno.ELOOP


def test_open_a_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(OSError):
        RingBuffer.open(tmp_path)


def test_path_with_nul_byte(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="null"):
        RingBuffer.create(str(tmp_path / "a\0b"), 4096)
    with pytest.raises(ValueError, match="null"):
        RingBuffer.open(str(tmp_path / "a\0b"))


def test_handles_are_cache_line_aligned(ring_path: pathlib.Path) -> None:
    """The C handle's producer and consumer parts must not share a cache
    line (a producer thread and a consumer thread on one handle would
    otherwise slow each other down on every call)."""
    from mmap_ringbuffer._mrb_cffi import ffi

    with RingBuffer.create(ring_path, 4096) as created, RingBuffer.open(
        ring_path
    ) as opened:
        for rb in (created, opened):
            assert int(ffi.cast("uintptr_t", rb._ring)) % 128 == 0
            rb.write(b"aligned")
        assert created.read() == b"aligned"
        assert created.read() == b"aligned"


def test_readonly_open_inspects_and_refuses_the_rest(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 4096) as rb:
        rb.write(b"unread")
        with RingBuffer.open(ring_path, readonly=True) as ro:
            assert ro.readonly and not rb.readonly
            assert ro.capacity == 4096
            assert ro.max_message_size == rb.max_message_size
            assert ro.stats().messages_written == 1
            assert (
                repr(ro)
                == f"<RingBuffer path={str(ring_path)!r} capacity=4096 readonly>"
            )
            calls = {
                "write": lambda: ro.write(b"x"),
                "write_many": lambda: ro.write_many([b"x"]),
                "reserve": lambda: ro.reserve(1),
                "read": lambda: ro.read(),
                "try_read": lambda: ro.try_read(),
                "read_many": lambda: ro.read_many(1),
                "peek": lambda: ro.peek(),
                "recover": lambda: ro.recover(),
            }
            for name, call in calls.items():
                with pytest.raises(OSError) as info:
                    call()
                assert info.value.errno == errno.EROFS, name
                assert "read-only (opened with readonly=True)" in str(info.value)
        with RingBuffer(ring_path, readonly=True) as ro:
            assert ro.readonly
        assert rb.read() == b"unread"  # nothing was consumed


def test_remove_deletes_a_ring(ring_path: pathlib.Path) -> None:
    with RingBuffer.create(ring_path, 4096) as rb:
        RingBuffer.remove(ring_path)
        assert not ring_path.exists()
        rb.write(b"still works")  # the open handle keeps the nameless ring
        assert rb.read() == b"still works"
        with pytest.raises(FileNotFoundError):
            RingBuffer.open(ring_path)
        with RingBuffer.create(ring_path, 4096) as new:  # a separate ring
            new.write(b"new")
            assert rb.try_read() is None
            assert new.read() == b"new"


def test_remove_missing(ring_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        RingBuffer.remove(ring_path)
    assert info.value.filename == ring_path
    assert RingBuffer.remove(ring_path, missing_ok=True) is None


def test_remove_keeps_what_is_not_a_ring(tmp_path: pathlib.Path) -> None:
    foreign = tmp_path / "notes.txt"
    foreign.write_bytes(b"not a ring" * 1000)
    with pytest.raises(FormatError):
        RingBuffer.remove(foreign)
    assert foreign.read_bytes() == b"not a ring" * 1000
    with pytest.raises(IsADirectoryError):
        RingBuffer.remove(tmp_path)
    assert tmp_path.is_dir()


def test_remove_refuses_a_symlink(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "real.ring"
    RingBuffer.create(target, 4096).close()
    link = tmp_path / "link.ring"
    link.symlink_to(target)
    with pytest.raises(OSError) as info:
        RingBuffer.remove(link)
    assert info.value.errno == errno.ELOOP
    assert link.is_symlink() and target.exists()
