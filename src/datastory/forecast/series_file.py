"""The forecast stage's series from the transactions file, in bounded memory when ingest streams.

`build_series_file(path, freq, fill)` is `build_series(io.read_parquet(path), freq, fill)`, the same frame to the
bit, holding about `rows` lines (plus one period's) instead of the whole log (about 1 GB per million lines):
- it reads only the four columns build_series uses, `rows` lines at a time, from ingest's output (in time order;
  a file out of order is refused);
- a period's lines are contiguous, so they are held until the period is whole, then summed per (region, product
  line) cell by pandas' groupby as build_series does: each cell's lines added in file order, the same rounding
  (adding per-batch partial sums would not be);
- the first and last timestamps (which periods are full) are the file's first and last lines, checked in order
  on the way: no extra pass;
- a missing value or a wrong type gets build_series' message, with the row in the file, found by a second look
  at the file only then (so the order of the checks is _validate's whatever the batch).
`load_series` is the stage's loader (the I/O edge): the file in batches when ingest streams (streaming.streams,
the one rule), else the transactions in memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import heap, io, streaming
from ..config import DataParams, ForecastParams, Paths
from ..errors import DataError
from . import series as fs

CELL = ("region", "product_line", "ds")


@heap.keeping   # each batch's and each period's arrays are freed and asked for again
def build_series_file(path: str | os.PathLike, freq: str, fill: str = "zero",
                      rows: int = streaming.BATCH_ROWS) -> pd.DataFrame:
    """build_series(io.read_parquet(path), freq, fill), reading the transactions file at `path` (in time order)
    `rows` lines at a time and holding the lines of one period until it is whole. Freed memory stays in the
    process meanwhile (heap.kept)."""
    fs.check_freq(freq)
    path = Path(path)
    pf = _open(path)
    dtypes = _dtypes(pf)
    if (fs._frame_problem(pf.schema_arrow.names, pf.metadata.num_rows == 0) is not None
            or not fs._numeric(dtypes["amount"]) or not pd.api.types.is_datetime64_any_dtype(dtypes["timestamp"])):
        raise _file_problem(pf, path, rows)
    codes: dict[str, dict[str, int]] = {"region": {}, "product_line": {}}
    held: list[dict[str, np.ndarray]] = []   # lines of the periods not known to be whole yet
    cells: list[dict[str, np.ndarray]] = []  # the sums of the whole periods' cells
    first = last = None
    for batch in streaming.record_batches(pf, list(fs.COLUMNS), rows):
        if not batch.num_rows:
            continue
        chunk = _lines(batch, codes)
        if chunk is None:
            raise _file_problem(pf, path, rows)
        ts = chunk.pop("ts")
        if (last is not None and ts[0] < last) or (np.diff(ts) < 0).any():
            raise DataError("transactions are not in time order", file=str(path), column="timestamp",
                            fix="write them with the ingest stage (it sorts them), or use forecast.build_series")
        first = ts[0] if first is None else first
        last = ts[-1]
        chunk["ds"] = _starts(ts, freq)
        if held and held[0]["ds"][0] < chunk["ds"][-1]:     # the periods before the chunk's last one are whole
            lines = _concat([*held, chunk])
            cut = int(np.searchsorted(lines["ds"], lines["ds"][-1], side="left"))
            cells.append(_sums({k: v[:cut] for k, v in lines.items()}, codes))
            held = [{k: v[cut:].copy() for k, v in lines.items()}]    # a copy: the rest can go
            del lines
        else:
            held.append(chunk)
    if held:
        cells.append(_sums(_concat(held), codes))
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    periods = fs.full_periods(first, last, freq)
    if len(periods) == 0:
        raise _in_file(fs.no_full_period(first, last, freq), path)
    try:
        return fs._assemble(_cell_series(_concat(cells), codes, periods), periods, fill)
    except DataError as exc:    # a region or product line named as the totals
        raise _in_file(exc, path) from None


def load_series(paths: Paths, cfg: ForecastParams, data: DataParams, root: str | os.PathLike | None = None,
                rows: int | None = None) -> pd.DataFrame:
    """The forecast stage's series (build_series' frame) from `paths.transactions`: read in batches of `rows`
    lines (default streaming.batch_rows()) when ingest streams (params/data.yaml engine, streaming.streams),
    else loaded whole. The same frame either way."""
    if not paths.transactions.is_file():
        raise DataError("transactions not found", file=str(paths.transactions),
                        fix="run the ingest stage first (`dvc repro ingest`)")
    if streaming.streams(data, root):
        return build_series_file(paths.transactions, cfg.freq, cfg.fill, rows or streaming.batch_rows())
    return fs.build_series(io.read_parquet(paths.transactions), cfg.freq, cfg.fill)


# ---------------------------------------------------------------- the file, a batch at a time
def _open(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataError("transactions not found", file=str(path), fix="run the ingest stage first")
    try:
        return pq.ParquetFile(path, pre_buffer=False)   # pre-buffering keeps every row group read until the end
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot read as Parquet: {exc}", file=str(path),
                        fix="run the ingest stage again (it writes this file)") from None


def _dtypes(pf: Any) -> dict[str, Any]:
    """The pandas dtype io.read_parquet gives each column of the file (from its schema, no row read)."""
    return dict(pf.schema_arrow.empty_table().to_pandas().dtypes.items())


def _lines(batch: Any, codes: dict[str, dict[str, int]]) -> dict[str, np.ndarray] | None:
    """A batch's lines as arrays: ts (int64 ns, wall time), region and product_line (codes into `codes`, which
    grow), amount (float64); None when a value is missing (the caller then finds which, where)."""
    import pyarrow.compute as pc

    # a DatetimeIndex, not a Series: a Series' cached .dt accessor is a reference cycle, which would keep each
    # batch's timestamps until the garbage collector runs
    ts = pd.DatetimeIndex(batch.column("timestamp").to_pandas())
    if ts.tz is not None:
        ts = ts.tz_localize(None)
    amount = batch.column("amount").to_pandas().astype("float64").to_numpy()
    if ts.hasnans or np.isnan(amount).any():
        return None
    out = {"ts": ts.astype("datetime64[ns]").asi8, "amount": amount}
    for col in ("region", "product_line"):
        values = batch.column(col)
        if values.null_count:
            return None
        encoded = pc.dictionary_encode(values)
        labels = pd.Series(encoded.dictionary.to_pandas())
        if labels.isna().any():     # a NaN label (a float column) is missing to pandas
            return None
        labels = labels.astype(str)   # as _validate's
        known = codes[col]
        mapping = np.array([known.setdefault(label, len(known)) for label in labels], dtype=np.int32)
        out[col] = mapping[encoded.indices.to_numpy(zero_copy_only=False)]
    return out


def _starts(ts: np.ndarray, freq: str) -> np.ndarray:
    """The start (int64 ns) of each sorted timestamp's period: `ts.dt.to_period(...).dt.start_time` as
    build_series labels them, looked up among the few period starts the batch spans."""
    alias = fs.PERIOD[freq]
    periods = pd.period_range(pd.Timestamp(ts[0]).to_period(alias), pd.Timestamp(ts[-1]).to_period(alias), freq=alias)
    starts = periods.start_time.astype("datetime64[ns]").asi8
    return starts[np.searchsorted(starts, ts, side="right") - 1]


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _sums(lines: dict[str, np.ndarray], codes: dict[str, dict[str, int]]) -> dict[str, np.ndarray]:
    """Net revenue per (period, region, product line) cell of whole periods' lines (sorted by period): pandas'
    groupby sum, as series._cells, so each cell's lines are added in file order with the same rounding."""
    ds = lines["ds"]
    if not len(ds):
        return {"ds": ds, "region": lines["region"], "product_line": lines["product_line"], "amount": lines["amount"]}
    n_lines = max(1, len(codes["product_line"]))
    width = max(1, len(codes["region"])) * n_lines
    change = np.flatnonzero(ds[1:] != ds[:-1]) + 1
    period = np.zeros(len(ds), dtype=np.int64)
    period[change] = 1
    period = np.cumsum(period)
    key = period * width + lines["region"].astype(np.int64) * n_lines + lines["product_line"]
    total = pd.Series(lines["amount"]).groupby(key, sort=True).sum()
    k = total.index.to_numpy()
    cell = k % width
    return {"ds": ds[np.concatenate([[0], change])][k // width], "region": (cell // n_lines).astype(np.int32),
            "product_line": (cell % n_lines).astype(np.int32), "amount": total.to_numpy()}


def _cell_series(cells: dict[str, np.ndarray], codes: dict[str, dict[str, int]],
                 periods: pd.DatetimeIndex) -> pd.Series:
    """series._cells' Series (sum per region, product_line, ds) of the cells in the full `periods`."""
    keep = np.isin(cells["ds"], periods.asi8)
    labels = {col: np.array(list(codes[col]), dtype=object) for col in ("region", "product_line")}
    index = pd.MultiIndex.from_arrays([labels["region"][cells["region"][keep]],
                                       labels["product_line"][cells["product_line"][keep]],
                                       cells["ds"][keep].astype("datetime64[ns]")], names=list(CELL))
    return pd.Series(cells["amount"][keep], index=index, name="amount", dtype="float64")


# ---------------------------------------------------------------- bad input: build_series' message, the file's row
def _in_file(problem: DataError, path: Path) -> DataError:
    return DataError(problem.problem, file=str(path), row=problem.row, column=problem.column, fix=problem.fix)


def _file_problem(pf: Any, path: Path, rows: int) -> DataError:
    """What _validate says of the file's transactions (the first problem, in its order), with the file and the
    row in it; a look at one column of the file at a time, `rows` lines at a time."""
    problem = (fs._frame_problem(pf.schema_arrow.names, pf.metadata.num_rows == 0)
               or fs._value_problem(_dtypes(pf), lambda col: _first_missing(pf, col, rows)))
    if problem is None:   # not reached: the caller saw a problem
        problem = DataError("transactions: unreadable values", fix="run the ingest stage again")
    return _in_file(problem, path)


def _first_missing(pf: Any, col: str, rows: int) -> int | None:
    """The file's first row (from 0) whose `col` is missing (null, NaN, NaT), or None."""
    offset = 0
    for batch in streaming.record_batches(pf, [col], rows):
        row = fs._first(batch.column(col).to_pandas().isna().to_numpy())
        if row is not None:
            return offset + row
        offset += batch.num_rows
    return None
