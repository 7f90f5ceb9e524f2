"""Progress on the console: series done / total and the time taken, for long loops (the forecast).

On a terminal it is one line that updates in place; written to a file or a pipe (cron, CI, a log) it is a
few plain lines: at the start, at each quarter and at the end. Inside a notebook the kernel's
`sys.stderr` is the notebook's output, so the console is the stream the kernel was
started with (its terminal, when a stage runs in one); the notebook itself
gets a bar without times, so the executed notebook stays the same on every run.

`line` and `milestones` are pure; `Progress` writes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

QUARTERS = (0.25, 0.5, 0.75)
MIN_REDRAW_S = 0.1


def elapsed(seconds: float) -> str:
    """12s, 3m02s, 1h04m."""
    s = int(round(max(seconds, 0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def line(label: str, done: int, total: int, seconds: float, unit: str = "series") -> str:
    """'forecast: 150/300 series, 1m32s'."""
    return f"{label}: {done}/{total} {unit}, {elapsed(seconds)}"


def milestones(before: int, after: int, total: int) -> bool:
    """Whether going from `before` to `after` done crosses a quarter (or reaches the end)."""
    if total <= 0:
        return False
    if after >= total > before:
        return True
    return any(before < q * total <= after for q in QUARTERS)


_CONSOLE: dict[int, IO[str]] = {}


def console() -> IO[str] | None:
    """The stream the user sees: stderr, or inside a notebook the stderr the kernel was started with.

    ipykernel points file descriptor 2 at the notebook too and keeps a copy of the original
    (`_original_stdstream_copy`), the terminal the stage runs in; that copy is the console."""
    fd = getattr(sys.stderr, "_original_stdstream_copy", None)
    if isinstance(fd, int):
        if fd not in _CONSOLE:
            _CONSOLE[fd] = open(fd, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        return _CONSOLE[fd]
    return sys.__stderr__ if sys.__stderr__ is not None else sys.stderr


def in_kernel() -> bool:
    return sys.stderr is not sys.__stderr__ and "ipykernel" in sys.modules


class Progress:
    """`with Progress(total, "forecast") as p: ... p.update()` -> the console line(s), plus a notebook bar."""

    def __init__(self, total: int, label: str, *, enabled: bool = True, unit: str = "series",
                 stream: IO[str] | None = None, clock: Callable[[], float] = time.monotonic,
                 notebook_bar: bool | None = None) -> None:
        self.total, self.label, self.unit, self.enabled = int(total), label, unit, enabled
        self.stream = stream if stream is not None else console()
        self.clock = clock
        self.done = 0
        self.start = clock()
        self._drawn = -1.0
        self.tty = bool(self.stream is not None and getattr(self.stream, "isatty", lambda: False)())
        self._bar: Any = None
        if enabled and (in_kernel() if notebook_bar is None else notebook_bar):
            from tqdm import tqdm

            # no elapsed time or rate, one refresh per item: the executed notebook keeps the same text every run
            self._bar = tqdm(total=self.total, desc=label, file=sys.stderr, mininterval=0, miniters=1,
                             bar_format="{desc}: {n_fmt}/{total_fmt} " + unit + " |{bar:20}|")

    def __enter__(self) -> Progress:
        if self.enabled and not self.tty:
            self._write(line(self.label, 0, self.total, 0, self.unit) + "\n")
        elif self.enabled:
            self._redraw(force=True)
        return self

    def update(self, n: int = 1) -> None:
        before, self.done = self.done, self.done + n
        if self._bar is not None:
            self._bar.update(n)
        if not self.enabled:
            return
        if self.tty:
            self._redraw(force=self.done >= self.total)
        elif milestones(before, self.done, self.total):
            self._write(line(self.label, self.done, self.total, self.clock() - self.start, self.unit) + "\n")

    def note(self, text: str) -> None:
        """One line of its own (a series that failed), above the updating line on a terminal."""
        if self.stream is None:
            return
        self._write(("\r\x1b[K" if self.tty and self.enabled else "") + text + "\n")
        if self.tty and self.enabled:
            self._redraw(force=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
        if self.enabled and self.tty:
            self._redraw(force=True)
            self._write("\n")

    def _redraw(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._drawn < MIN_REDRAW_S:
            return
        self._drawn = now
        self._write("\r" + line(self.label, self.done, self.total, now - self.start, self.unit) + "\x1b[K")

    def _write(self, text: str) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):   # a closed console must not stop the work
            self.stream = None
