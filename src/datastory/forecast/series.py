"""Revenue series per segment, built from the cleaned transaction log.

Period labels (the `ds` column) are the FIRST day of each period, like the KPI stage:
- D: the calendar day;
- W: weeks run Monday..Sunday (pandas "W-SUN") and are labelled by their Monday;
- M: the first day of the calendar month;
- Q: the first day of the calendar quarter (quarters end in March, June, September, December).

A period the data does not fully cover is dropped at either end: a week or month holding only a
few days of data would look like a collapse (at the end) or a ramp-up (at the start) and would
poison every model. Periods inside the range with no sales are kept as 0 revenue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import DataError

FREQS = ("D", "W", "M", "Q")
# pandas period alias per freq (W-SUN: weeks ending Sunday) and the offset of the period labels.
PERIOD = {"D": "D", "W": "W-SUN", "M": "M", "Q": "Q-DEC"}
OFFSET = {"D": "D", "W": "W-MON", "M": "MS", "Q": "QS-JAN"}
SERIES_COLUMNS = {"series_id": "string", "region": "string", "product_line": "string",
                  "ds": "datetime64[ns]", "y": "float64"}
SEP = " / "


def check_freq(freq: str) -> str:
    """`freq` itself if it is one of D, W, M, Q; otherwise a DataError naming the allowed choices."""
    if freq not in FREQS:
        raise DataError(f"unknown forecast frequency {freq!r}; allowed: {', '.join(FREQS)}",
                        column="freq", fix="set freq in params/forecast.yaml to D, W, M or Q")
    return freq


def series_id(region: str, product_line: str) -> str:
    """"All" for the company total, the region for a region total, "Region / Line" otherwise."""
    if region == schema.ALL:
        return schema.ALL
    if product_line == schema.ALL:
        return region
    return f"{region}{SEP}{product_line}"


COLUMNS = ("timestamp", "region", "product_line", "amount")   # what build_series reads of the transactions


def _frame_problem(columns: Any, empty: bool) -> DataError | None:
    """The transactions' first problem as a whole: a column build_series needs is missing, or no rows."""
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        return DataError(f"transactions: missing column(s) {', '.join(missing)}",
                         column=missing[0], fix="run the ingest stage first; it writes schema.TRANSACTIONS")
    if empty:
        return DataError("transactions: no rows, nothing to forecast", fix="check the ingest stage's output")
    return None


def _numeric(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _value_problem(dtypes: Any, first_missing: Callable[[str], int | None]) -> DataError | None:
    """The transactions' first problem in their values, in _validate's order: `dtypes` maps column -> dtype,
    `first_missing(column)` gives the first row where the column's value is missing, or None (asked only when
    that column's dtype is right; rows count from 0)."""
    if not _numeric(dtypes["amount"]):
        return DataError(f"transactions: amount must be numeric, got dtype {dtypes['amount']}", column="amount",
                         fix="convert amount to numbers in the ingest stage")
    row = first_missing("amount")
    if row is not None:
        return DataError("transactions: amount is missing", row=row, column="amount",
                         fix="the ingest stage should quarantine rows without an amount")
    if not pd.api.types.is_datetime64_any_dtype(dtypes["timestamp"]):
        return DataError(f"transactions: timestamp must be a datetime, got dtype {dtypes['timestamp']}",
                         column="timestamp", fix="parse timestamps in the ingest stage")
    row = first_missing("timestamp")
    if row is not None:
        return DataError("transactions: timestamp is missing", row=row, column="timestamp",
                         fix="the ingest stage should quarantine rows without a timestamp")
    for col in ("region", "product_line"):
        row = first_missing(col)
        if row is not None:
            return DataError(f"transactions: {col} is missing", row=row, column=col,
                             fix="the ingest stage should fill or quarantine it")
    return None


def _first(mask: np.ndarray) -> int | None:
    return int(mask.argmax()) if mask.any() else None


def _validate(tx: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(tx, pd.DataFrame):
        raise DataError(f"transactions must be a DataFrame, got {type(tx).__name__}")
    problem = (_frame_problem(tx.columns, tx.empty)
               or _value_problem(tx.dtypes, lambda col: _first(tx[col].isna().to_numpy())))
    if problem is not None:
        raise problem
    ts = tx["timestamp"]
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_localize(None)
    return pd.DataFrame({"ts": ts.astype("datetime64[ns]"), "region": tx["region"].astype(str),
                         "product_line": tx["product_line"].astype(str),
                         "amount": tx["amount"].astype("float64")})


def no_full_period(first: pd.Timestamp, last: pd.Timestamp, freq: str) -> DataError:
    """The error of transactions from `first` to `last` that hold no full period of `freq`."""
    return DataError(f"transactions cover {first:%Y-%m-%d}..{last:%Y-%m-%d}, not one full period of freq {freq!r}",
                     column="timestamp", fix="use a finer freq (D or W) or load more history")


def full_periods(first: pd.Timestamp, last: pd.Timestamp, freq: str) -> pd.DatetimeIndex:
    """Start dates of the periods lying entirely inside the days [first, last]."""
    check_freq(freq)
    first, last = pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize()
    p0 = first.to_period(PERIOD[freq])
    p1 = last.to_period(PERIOD[freq])
    if p0.start_time.normalize() < first:
        p0 += 1
    if p1.end_time.normalize() > last:
        p1 -= 1
    if p1 < p0:
        return pd.DatetimeIndex([], dtype="datetime64[ns]")
    return pd.period_range(p0, p1, freq=PERIOD[freq]).start_time.astype("datetime64[ns]")


def build_series(tx: pd.DataFrame, freq: str, fill: str = "zero") -> pd.DataFrame:
    """Net revenue per period of every region x product line, every region and the company.

    Returns a long frame (series_id, region, product_line, ds, y) sorted by series_id then ds.
    Every series covers the same full periods. A segment without a sale in a period is 0. A period without
    a single transaction anywhere is 0 with `fill: zero` (the default: no line, no sale) and missing (NaN,
    left to the engine's fill policy) otherwise: an export with a hole, not a quiet week.
    """
    check_freq(freq)
    t = _validate(tx)
    periods = full_periods(t["ts"].min(), t["ts"].max(), freq)
    if len(periods) == 0:
        raise no_full_period(t["ts"].min(), t["ts"].max(), freq)
    t["ds"] = t["ts"].dt.to_period(PERIOD[freq]).dt.start_time.astype("datetime64[ns]")
    return _assemble(_cells(t[t["ds"].isin(periods)]), periods, fill)


def _cells(t: pd.DataFrame) -> pd.Series:
    """Net revenue per (region, product_line, ds) cell that has a line in `t`: pandas' groupby sum, each cell's
    lines added in row order (build_series_file sums a period's lines at a time the same way: the same bits)."""
    return t.groupby(["region", "product_line", "ds"], sort=True)["amount"].sum()


def _assemble(cells: pd.Series, periods: pd.DatetimeIndex, fill: str) -> pd.DataFrame:
    """build_series' frame from the per-cell sums (`_cells`) of the lines in the full `periods`: the regions and
    product lines are those with a line there; a period without any cell had no line at all."""
    regions = sorted(cells.index.get_level_values("region").unique())
    lines = sorted(cells.index.get_level_values("product_line").unique())
    for label in (*regions, *lines):
        if label == schema.ALL:
            raise DataError(f"transactions: a region or product line is named {schema.ALL!r}, "
                            "the label reserved for totals", fix="rename it in the source data")
    seen = cells.index.get_level_values("ds").unique()
    full = pd.MultiIndex.from_product([regions, lines, periods], names=["region", "product_line", "ds"])
    cells = cells.reindex(full, fill_value=0.0)
    by_region = cells.groupby(level=["region", "ds"]).sum()
    total = by_region.groupby(level="ds").sum().reindex(periods, fill_value=0.0)

    parts = [pd.DataFrame({"region": schema.ALL, "product_line": schema.ALL, "ds": periods,
                           "y": total.to_numpy()})]
    if fill != "zero":
        silent = ~periods.isin(seen)
        if silent.any():
            cells[cells.index.get_level_values("ds").isin(periods[silent])] = np.nan
            by_region[by_region.index.get_level_values("ds").isin(periods[silent])] = np.nan
            parts[0].loc[silent, "y"] = np.nan
    for reg in regions:
        parts.append(pd.DataFrame({"region": reg, "product_line": schema.ALL, "ds": periods,
                                   "y": by_region.loc[reg].reindex(periods).to_numpy()}))
        for line in lines:
            parts.append(pd.DataFrame({"region": reg, "product_line": line, "ds": periods,
                                       "y": cells.loc[(reg, line)].reindex(periods).to_numpy()}))
    out = pd.concat(parts, ignore_index=True)
    out["series_id"] = [series_id(r, p) for r, p in zip(out["region"], out["product_line"], strict=True)]
    out = out.sort_values(["series_id", "ds"], kind="stable")
    out = out.loc[:, list(SERIES_COLUMNS)].astype(SERIES_COLUMNS)
    return out.reset_index(drop=True)


def split(series_long: pd.DataFrame) -> dict[str, pd.Series]:
    """series_id -> y indexed by ds, from build_series' long frame (checked)."""
    missing = [c for c in SERIES_COLUMNS if c not in series_long.columns]
    if missing:
        raise DataError(f"series frame: missing column(s) {', '.join(missing)}", column=missing[0],
                        fix="build it with forecast.build_series")
    dup = series_long.duplicated(["series_id", "ds"]).to_numpy()
    if dup.any():
        row = int(dup.argmax())
        raise DataError(f"series frame: duplicate date {series_long['ds'].iloc[row]} in series "
                        f"{series_long['series_id'].iloc[row]!r}", row=row, column="ds",
                        fix="build the series with forecast.build_series (one row per period)")
    y = series_long["y"]
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        raise DataError(f"series frame: y must be numeric, got dtype {y.dtype}", column="y",
                        fix="y is revenue per period: convert it to numbers")
    out = {}
    for sid, grp in series_long.groupby("series_id", sort=True):
        out[str(sid)] = pd.Series(grp["y"].to_numpy(), index=pd.DatetimeIndex(grp["ds"]), name=str(sid))
    return out
