"""heap.kept: glibc's malloc keeps freed memory inside the block and is back to its defaults after it."""

import ctypes
import sys

import numpy as np
import pytest

from datastory import heap

BIG = 64 * 2**20   # over glibc's largest mmap threshold (32 MB): by default, a mapping of its own


class _Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mallinfo():
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _Info
    return libc.mallinfo2()


needs_glibc = pytest.mark.skipif(heap._glibc() is None or not hasattr(ctypes.CDLL(None), "mallinfo2"),
                                 reason="not glibc 2.33 or later")


def _mapped_by(make) -> tuple[int, int]:
    """Bytes of malloc's own mappings and of its heap's free space taken by make()'s array, then after it is freed."""
    before = _mallinfo().hblkhd
    a = make()
    mapped = _mallinfo().hblkhd - before
    del a
    return mapped, _mallinfo().fordblks


@needs_glibc
def test_inside_the_block_a_large_array_comes_from_the_heap_and_its_memory_is_kept():
    with heap.kept() as on:
        assert on is True
        mapped, free = _mapped_by(lambda: np.ones(BIG // 8))
        assert mapped == 0            # served by the heap, not a mapping of its own
        assert free >= BIG            # freed, and kept in the heap for the next one
    assert _mapped_by(lambda: np.ones(BIG // 8))[0] >= BIG   # glibc's default again


@needs_glibc
def test_a_block_inside_another_leaves_the_settings_to_the_outer_one():
    with heap.kept():
        with heap.kept() as inner:
            assert inner is True
        assert _mapped_by(lambda: np.ones(BIG // 8))[0] == 0     # still kept after the inner block
    assert _mapped_by(lambda: np.ones(BIG // 8))[0] >= BIG


@needs_glibc
def test_the_defaults_come_back_when_the_block_raises():
    with pytest.raises(RuntimeError, match="boom"), heap.kept():
        raise RuntimeError("boom")
    assert _mapped_by(lambda: np.ones(BIG // 8))[0] >= BIG


@needs_glibc
def test_a_function_kept_runs_inside_the_block_and_keeps_its_name():
    @heap.keeping
    def stage(n: int) -> tuple[int, int]:
        """A stage."""
        return _mapped_by(lambda: np.ones(n))

    assert stage(BIG // 8)[0] == 0 and stage.__name__ == "stage" and stage.__doc__ == "A stage."
    assert _mapped_by(lambda: np.ones(BIG // 8))[0] >= BIG


def test_nothing_changes_without_glibc(monkeypatch):
    monkeypatch.setattr(heap, "_glibc", lambda: None)
    with heap.kept() as on:
        assert on is False
    monkeypatch.undo()
    monkeypatch.setattr(sys, "platform", "darwin")
    assert heap._glibc() is None
