"""Freed memory kept in the process while a stage streams a large file (glibc's malloc; elsewhere nothing changes).

glibc gives a block of more than 32 MB (a column of a few million lines) back to the system when it is freed, and
trims the top of its heap, so the next such block is new pages, which the kernel must clear and map as they are
first touched. A stage that sums one period of a 100-million-line file after another frees and asks again for
hundreds of such blocks. `kept()` has malloc serve every block from its heap and keep what is freed for the next
one, and restores glibc's defaults on exit (giving back the heap's free top at once). The peak of memory in use is
the same; the process holds on to the pages of its peak until the end of the block.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4               # glibc's mallopt parameters (malloc.h)
DEFAULTS = {M_TRIM_THRESHOLD: 128 * 1024, M_MMAP_MAX: 65536}
KEPT = {M_TRIM_THRESHOLD: 2**31 - 1, M_MMAP_MAX: 0}   # never trim (up to 2 GB free at the top), never mmap


def _glibc() -> Any:
    """This process's C library when it is glibc (its mallopt and malloc_trim), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if all(hasattr(libc, f) for f in ("gnu_get_libc_version", "mallopt", "malloc_trim")) else None


def _set(libc: Any, values: dict[int, int]) -> bool:
    return all(libc.mallopt(k, v) == 1 for k, v in values.items())


_depth = [0]   # blocks open in this process: the outermost one sets and restores


@contextlib.contextmanager
def kept() -> Iterator[bool]:
    """Within the block, malloc keeps freed memory for reuse (True), or nothing changes (False: not glibc). A block
    inside another leaves the settings to the outer one."""
    libc = _glibc()
    if libc is None:
        yield False
        return
    if _depth[0] == 0 and not _set(libc, KEPT):
        _set(libc, DEFAULTS)
        yield False
        return
    _depth[0] += 1
    try:
        yield True
    finally:
        _depth[0] -= 1
        if _depth[0] == 0:
            _set(libc, DEFAULTS)
            libc.malloc_trim(0)


def keeping(func: F) -> F:
    """`func` run inside `kept()`."""
    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        with kept():
            return func(*args, **kwargs)
    return inner  # type: ignore[return-value]
