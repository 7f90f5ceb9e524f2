"""The I/O edge: atomic, deterministic writes and the matching reads.

Every artifact is written to a temp file in its own folder and moved into place
with os.replace, so a crash never leaves a truncated file behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # pandas is imported where a frame is read: a notebook stage's command never needs it
    import pandas as pd


def stale_temps(path: str | os.PathLike) -> list[Path]:
    """Temp files that `atomic_path` left beside `path` when a write was killed (SIGKILL, power loss).

    Only a caller that knows it is the sole writer of `path` may delete them: a concurrent writer's
    in-flight temp file looks the same.
    """
    path = Path(path)
    return sorted(path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path` (same suffix); on success move it into place, else remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _fsync(path: Path) -> None:
    """Flush `path` (a file, or a folder's entries where the platform allows) to the disk."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - a folder cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(data: bytes, path: str | os.PathLike, *, durable: bool = False) -> Path:
    """Atomic write. `durable=True` also flushes the file and its folder to the disk before returning,
    so the new content survives a power cut, not only a crash of the process."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        if durable:
            _fsync(tmp)
    if durable:
        _fsync(Path(path).parent)
    return Path(path)


def write_text(text: str, path: str | os.PathLike, *, durable: bool = False) -> Path:
    return write_bytes(text.encode("utf-8"), path, durable=durable)


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            return None
        return round(obj, 6)
    pandas = sys.modules.get("pandas")   # not imported: nothing here can be a pandas Timestamp
    if pandas is not None and isinstance(obj, pandas.Timestamp):
        return obj.isoformat()
    return obj


def write_json(obj: Any, path: str | os.PathLike, *, durable: bool = False) -> Path:
    """Stable JSON: sorted keys, fixed float rounding, trailing newline. `durable`: see write_bytes."""
    text = json.dumps(_clean(obj), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return write_text(text, path, durable=durable)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


ROW_GROUP = 1_000_000   # rows per Parquet row group: write_parquet's, and RowGroupWriter's (the same bytes)
CODEC = "zstd"


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Deterministic Parquet: no index, fixed compression, fixed row group size."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow", compression=CODEC, row_group_size=ROW_GROUP)
    return Path(path)


class RowGroupWriter:
    """The Parquet bytes write_parquet gives one frame, from pieces of any size that arrive one after another
    (for outputs too large to hold whole): pandas' schema (the first piece's; later ones are cast to it),
    CODEC, row groups of ROW_GROUP rows, each written as one chunk per column as from_pandas makes it (pieces
    would move page and dictionary-fallback boundaries, so other bytes). Write to a temp path (atomic_path)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path, self.held, self.count, self.writer, self.flushed = Path(path), [], 0, None, False

    def add(self, piece: Any) -> None:
        """Append a pyarrow Table, or a DataFrame (converted without its index)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = piece if isinstance(piece, pa.Table) else pa.Table.from_pandas(piece, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression=CODEC)
        self.held.append(table.cast(self.writer.schema))
        self.count += len(table)
        while self.count >= ROW_GROUP:
            self._flush(ROW_GROUP)

    def _flush(self, n: int) -> None:
        import pyarrow as pa

        table = pa.concat_tables(self.held)
        self.writer.write_table(table.slice(0, n).combine_chunks(), row_group_size=ROW_GROUP)
        self.flushed = True
        self.held, self.count = ([table.slice(n)] if len(table) > n else []), len(table) - n

    def close(self) -> None:
        if self.count or (self.held and self.writer is not None and not self.flushed):
            self._flush(self.count)   # no row at all: one empty row group, as pyarrow writes an empty frame
        if self.writer is not None:
            self.writer.close()


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(path, engine="pyarrow")
