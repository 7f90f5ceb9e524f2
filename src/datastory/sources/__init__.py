"""Readers of the transaction sources declared in params/data.yaml: sample, CSV, Excel, Parquet, SQL.

Every reader returns a `Raw`: the mapped columns only, renamed to their canonical field names
(config.ColumnsParams), in the source's row order, values as the source holds them (text for CSV,
native types for Excel, Parquet and SQL). Reading never repairs or drops a row: that is ingest's job.
A source that cannot be read at all (missing, empty, corrupt, a mapped column absent) raises a
DataError naming the file and the fix. `read` dispatches on `source`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DataParams, Paths, file_kind, inside_project
from ..errors import DataError


@dataclass(frozen=True)
class Raw:
    """The mapped columns of a source, and how to point at its rows in messages."""

    frame: pd.DataFrame            # canonical field -> values, one row per source row
    name: str                      # the source for messages: a project-relative path, or a URL without password
    first_row: int = 1             # the row number of the first data row as the user sees it (2 under a header)
    source_columns: dict[str, str] = field(default_factory=dict)  # canonical field -> source column name
    skipped_lines: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # blank lines
    # CSV records whose quoted values hold line breaks: their 0-based positions (ascending), and how many lines
    # each one runs on past its first
    multiline_at: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    multiline_extra: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The user's row numbers of 0-based data rows: a CSV's own line numbers, where each record starts
        (empty lines and the extra lines of multi-line values counted); a sheet's rows; else the records."""
        pos = np.asarray(positions, dtype=np.int64)
        base = pos + self.first_row
        at = np.asarray(self.multiline_at, dtype=np.int64)
        if len(at):   # every multi-line record before a row pushes it down by its extra lines
            before = np.concatenate(([0], np.cumsum(np.asarray(self.multiline_extra, dtype=np.int64))))
            base = base + before[np.searchsorted(at, pos, side="left")]
        skipped = np.sort(np.asarray(self.skipped_lines, dtype=np.int64))
        if not len(skipped):
            return base
        # a row lands after every skipped line whose number, less the skipped lines before it, is <= its base
        return base + np.searchsorted(skipped - np.arange(len(skipped)), base, side="right")

    def row(self, position: int) -> int:
        """The user's row number of the 0-based data row `position`."""
        return int(self.rows(np.array([position]))[0])

    def record(self, position: int) -> int:
        """The record number of the 0-based data row `position`, counting a header as record 1: what a CSV
        reader counts, whatever empty lines or multi-line values come before it."""
        return int(position) + self.first_row

    def column(self, fieldname: str) -> str:
        """The user's name of a canonical field's column."""
        return self.source_columns.get(fieldname, fieldname)


def display(path: str | os.PathLike, root: Path | None = None) -> str:
    """A path for messages: relative to the project (or the working folder) when inside it."""
    p = Path(path)
    for base in (root, Path.cwd()):
        if base is None:
            continue
        try:
            return str(p.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(p)


def check_header(names: list[str], columns: dict[str, str], name: str, hint: str = "",
                 header_row: int | None = 1) -> None:
    """Refuse a header with blank or repeated names, or without every mapped column.

    `columns` is canonical field -> source column (mapped fields only). `hint` is appended to the fix of
    a missing column (e.g. a delimiter suggestion). `header_row`: the header's row for messages (None for
    Parquet and SQL, whose column names are not a row).
    """
    clean = [str(n).strip() for n in names]
    dup = sorted(n for n, k in Counter(clean).items() if k > 1 and n)
    if dup:
        raise DataError(f"the header repeats the column name(s) {', '.join(repr(d) for d in dup)}, so it is not "
                        "clear which one to use", file=name, row=header_row, column=dup[0],
                        fix="rename the columns so that every header name is unique")
    for fieldname, col in columns.items():
        if col not in clean:
            shown = ", ".join(repr(n) for n in clean[:12]) + (" ..." if len(clean) > 12 else "")
            raise DataError(f"column '{col}' (mapped to {fieldname}) is not in the header; found: {shown}",
                            file=name, row=header_row, column=col,
                            fix=f"set columns.{fieldname} in params/data.yaml to one of the header names"
                                + (f"; {hint}" if hint else ""))


def source_path(cfg: DataParams, root: Path) -> Path:
    """The configured file, made absolute against the project; a clear error when it is not there, when its path
    leads out of the project, or when its name says it is not the kind of file the source reads (such a file is
    never opened, so none of its content can reach a message)."""
    try:
        inside_project(cfg.file.path)
    except ValueError as exc:
        raise DataError(f"file.path {cfg.file.path!r} {exc}", file="params/data.yaml",
                        fix=getattr(exc, "fix", None) or "set file.path to a path inside the project") from None
    kind = file_kind(cfg.source, cfg.file.path)
    if kind:
        raise DataError(kind[0], file=cfg.file.path, fix=kind[1])
    path = root / cfg.file.path
    if not path.is_file():
        raise DataError("file not found", file=cfg.file.path,
                        fix="put the export there (data/raw/ is watched by `dvc repro`), or set file.path in "
                            "params/data.yaml")
    if path.stat().st_size == 0:
        raise DataError("the file is empty (0 bytes)", file=cfg.file.path,
                        fix="export the transactions again; the file should hold a header and data rows")
    return path


def no_rows(name: str) -> DataError:
    return DataError("holds no data rows", file=name,
                     fix="export the transactions again, with data rows")


def _read_sample(cfg: DataParams, paths: Paths, root: Path) -> Raw:
    from . import tabular

    return tabular.read_sample(cfg, paths, root)


def _read_csv(cfg: DataParams, paths: Paths, root: Path) -> Raw:
    from . import csv

    return csv.read(cfg, root)


def _read_excel(cfg: DataParams, paths: Paths, root: Path) -> Raw:
    from . import excel

    return excel.read(cfg, root)


def _read_parquet(cfg: DataParams, paths: Paths, root: Path) -> Raw:
    from . import tabular

    return tabular.read_parquet(cfg, root)


def _read_sql(cfg: DataParams, paths: Paths, root: Path) -> Raw:
    from . import sql

    return sql.read(cfg, root)


READERS: dict[str, Callable[[DataParams, Paths, Path], Raw]] = {
    "sample": _read_sample, "csv": _read_csv, "excel": _read_excel, "parquet": _read_parquet, "sql": _read_sql,
}


def read(cfg: DataParams, paths: Paths, root: Path) -> Raw:
    """The configured source's mapped columns (see module doc)."""
    reader = READERS.get(cfg.source)
    if reader is None:
        raise DataError(f"unknown source {cfg.source!r}; allowed: {', '.join(READERS)}",
                        file="params/data.yaml", column="source", fix="set source to one of those")
    raw = reader(cfg, paths, root)
    if raw.frame.empty:
        raise no_rows(raw.name)
    return raw
