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


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Deterministic Parquet: no index, fixed compression, fixed row group size."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd",
                      row_group_size=1_000_000)
    return Path(path)


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(path, engine="pyarrow")
