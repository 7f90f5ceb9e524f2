"""Parquet sources: the embedded sample company and a user's Parquet export (columnar; mapped columns only)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import DataParams, Paths
from ..errors import DataError
from . import Raw, check_header, display, no_rows, source_path


def _read(path: Path, cfg: DataParams, name: str) -> Raw:
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"not a readable Parquet file ({str(exc)[:120]})", file=name,
                        fix="export the data again as Parquet, or use a CSV export (source: csv)") from None
    mapped = cfg.columns.mapped()
    check_header(list(schema.names), mapped, name, header_row=None)
    try:
        table = pq.read_table(path, columns=list(dict.fromkeys(mapped.values())))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot be read as Parquet ({str(exc)[:120]})", file=name,
                        fix="export the data again") from None
    if table.num_rows == 0:
        raise no_rows(name)
    frame = table.to_pandas(types_mapper=lambda t: pd.StringDtype("pyarrow") if pa.types.is_string(t) else None)
    return Raw(frame=pd.DataFrame({f: frame[c] for f, c in mapped.items()}), name=name, first_row=1,
               source_columns=mapped)


def read_parquet(cfg: DataParams, root: Path) -> Raw:
    """The mapped columns of the configured Parquet file; row numbers count records from 1."""
    path = source_path(cfg, root)
    return _read(path, cfg, display(path, root))


def read_sample(cfg: DataParams, paths: Paths, root: Path) -> Raw:
    """The embedded sample company, written by `datastory sample`."""
    name = display(paths.sample, root)
    if not paths.sample.is_file():
        raise DataError("the sample company has not been generated yet", file=name,
                        fix="run `datastory sample` or `dvc repro`")
    try:
        empty = pq.read_metadata(paths.sample).num_rows == 0
    except (pa.ArrowInvalid, OSError):
        empty = False   # _read says what is wrong with the file
    if empty:   # the sample stage's placeholder, written while the source was another one
        raise DataError("the sample company has not been generated: the sample stage last ran with another source",
                        file=name, fix="run `datastory sample` (or `dvc repro`) now that source is sample")
    return _read(paths.sample, cfg, name)
