"""Ingest: validate the raw order lines and clean them into schema.TRANSACTIONS.

`clean` is the pure core (raw frame in; transactions and a data-quality dict out). Problems that
make a row unusable stop the run with a DataError naming the file, the 1-based data row, the column
and the fix; known, harmless mess (exact duplicate rows, missing regions) is repaired and counted
in the quality dict, never dropped silently. `read_source`, `save` and `run` are the I/O edge.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import config, io, schema
from .config import DataParams, Paths
from .errors import DataError

UNKNOWN = "Unknown"
SORT_KEYS = ["timestamp", "order_id", "customer_id", "product_line", "amount"]

# Column -> what it must hold; every one is required (customer_name is optional).
REQUIRED = {
    "order_id": "the order (or invoice) number of the line",
    "customer_id": "a stable customer key",
    "timestamp": "date and time of the line, e.g. 2025-03-31 14:05",
    "region": "the sales region (may be empty on a few rows)",
    "product_line": "the product line or category",
    "quantity": "units; negative for returns",
    "amount": "net revenue of the line; negative for returns",
    "discount": "fraction 0..1 of list price given away (0 if none)",
}
OPTIONAL = {"customer_name": "shown in the red list; defaults to customer_id"}
QUALITY_KEYS = ("rows_read", "rows_kept", "duplicates_removed", "missing_region_filled", "return_lines",
                "period_start", "period_end", "n_customers", "n_orders", "rejected", "currency")


def _fail(source: str, column: str, bad: np.ndarray, what: str, fix: str) -> None:
    """Raise for the first bad row (1-based data row) with the count of bad rows, if any."""
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(f"{what} ({int(bad.sum())} bad value(s) in this column; first shown)",
                        file=source, row=first + 1, column=column, fix=fix)


def _check_columns(raw: pd.DataFrame, source: str) -> None:
    if raw.empty:
        raise DataError("holds no rows", file=source, fix="export the transactions again, with data rows")
    for col, meaning in REQUIRED.items():
        if col not in raw.columns:
            raise DataError(f"required column '{col}' is missing (found: {', '.join(map(str, raw.columns))})",
                            file=source, column=col, fix=f"add a column '{col}': {meaning}")


def _text(raw: pd.DataFrame, col: str, source: str, required: bool) -> pd.Series:
    """A column as stripped text; empty cells are NA. Required columns must be complete."""
    values = raw[col].astype("string[pyarrow]").str.strip()
    values = values.mask(values == "")
    if required:
        _fail(source, col, values.isna().to_numpy(), "empty value",
              f"every row needs '{col}': {REQUIRED.get(col, '')}")
    return values


def _timestamps(raw: pd.DataFrame, source: str) -> pd.Series:
    col = raw["timestamp"]
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        parsed = col.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    else:
        # ISO 8601 first (fast, and "2025-03-31" may sit beside "2025-03-31 14:05"): letting pandas infer one
        # format from the first row rejected every row written the other way. Other spellings go through
        # dateutil, row by row. utc=True: offsets become UTC and mixed naive/aware columns still parse.
        text = col.astype("string")
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
        retry = (parsed.isna() & text.notna()).to_numpy()
        if retry.any():
            parsed[retry] = pd.to_datetime(text[retry], errors="coerce", format="mixed", utc=True)
        parsed = parsed.dt.tz_localize(None)
    _fail(source, "timestamp", parsed.isna().to_numpy(), "timestamp missing or not a date",
          "write timestamps as ISO dates, e.g. 2025-03-31 or 2025-03-31 14:05:00")
    return parsed.astype("datetime64[ns]")


def _numbers(raw: pd.DataFrame, col: str, source: str) -> pd.Series:
    values = pd.to_numeric(raw[col], errors="coerce").astype("float64")
    _fail(source, col, ~np.isfinite(values.to_numpy()), "not a finite number (empty, text, NaN or inf)",
          f"'{col}' must be a plain number on every row: {REQUIRED[col]}")
    return values


def _fill_regions(tx: pd.DataFrame) -> tuple[pd.Series, int]:
    """Missing region -> the customer's most frequent known region (ties: alphabetical), else Unknown."""
    region = tx["region"]
    missing = region.isna()
    if not missing.any():
        return region, 0
    known = tx.loc[~missing & tx["customer_id"].isin(tx.loc[missing, "customer_id"]), ["customer_id", "region"]]
    counts = known.value_counts().reset_index(name="n")
    counts = counts.sort_values(["customer_id", "n", "region"], ascending=[True, False, True], kind="stable")
    best = counts.drop_duplicates("customer_id").set_index("customer_id")["region"]
    filled = tx.loc[missing, "customer_id"].map(best).fillna(UNKNOWN)
    return region.mask(missing, filled), int(missing.sum())


def clean(raw: pd.DataFrame, source_name: str, *, currency: str = "EUR") -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validated, de-duplicated, sorted transactions (schema.TRANSACTIONS) and the data-quality dict."""
    _check_columns(raw, source_name)
    rows_read = len(raw)
    raw = raw.reset_index(drop=True)
    # validate every row first, so row numbers refer to the file as read
    tx = pd.DataFrame({
        "order_id": _text(raw, "order_id", source_name, True),
        "customer_id": _text(raw, "customer_id", source_name, True),
        "timestamp": _timestamps(raw, source_name),
        "region": _text(raw, "region", source_name, False),
        "product_line": _text(raw, "product_line", source_name, True),
        "quantity": _numbers(raw, "quantity", source_name),
        "amount": _numbers(raw, "amount", source_name),
        "discount": _numbers(raw, "discount", source_name),
    })
    _fail(source_name, "discount", ~tx["discount"].between(0, 1).to_numpy(), "discount outside 0..1",
          "give discount as a fraction (0.15 for 15%)")
    name = _text(raw, "customer_name", source_name, False) if "customer_name" in raw.columns else None
    tx["customer_name"] = tx["customer_id"] if name is None else name.fillna(tx["customer_id"])

    dup = raw.duplicated(keep="first").to_numpy()
    tx = tx.loc[~dup].reset_index(drop=True)
    tx["region"], filled = _fill_regions(tx)
    tx["is_return"] = tx["amount"] < 0
    tx = tx.sort_values(SORT_KEYS, kind="stable").reset_index(drop=True)
    # text was processed as Arrow strings (fast); hand on the same dtype that a Parquet read-back gives
    text = [c for c, t in schema.TRANSACTIONS.items() if t == "string"]
    tx = schema.conform(tx.astype({c: "string[python]" for c in text}), schema.TRANSACTIONS, "transactions")
    quality = {
        "rows_read": rows_read,
        "rows_kept": len(tx),
        "duplicates_removed": int(dup.sum()),
        "missing_region_filled": filled,
        "return_lines": int(tx["is_return"].sum()),
        "period_start": tx["timestamp"].min().date().isoformat(),
        "period_end": tx["timestamp"].max().date().isoformat(),
        "n_customers": int(tx["customer_id"].nunique()),
        "n_orders": int(tx["order_id"].nunique()),
        "rejected": {},
        "currency": currency,
    }
    return tx, quality


def _display(path: Path) -> str:
    """A path for messages: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read_sample(cfg: DataParams, paths: Paths) -> tuple[pd.DataFrame, str]:
    name = _display(paths.sample)
    if not paths.sample.is_file():
        raise DataError("the sample company has not been generated yet", file=name,
                        fix="run `datastory sample` or `dvc repro`")
    return io.read_parquet(paths.sample), name


# source -> reader; CSV / Excel / Parquet / SQL readers are added here later.
READERS: dict[str, Callable[[DataParams, Paths], tuple[pd.DataFrame, str]]] = {"sample": _read_sample}


def read_source(cfg: DataParams, paths: Paths) -> tuple[pd.DataFrame, str]:
    """The raw frame of the configured source, and its display name for messages."""
    reader = READERS.get(cfg.source)
    if reader is None:
        raise DataError(f"unknown source {cfg.source!r}; allowed: {', '.join(READERS)}",
                        file="params/data.yaml", column="source", fix="set source: sample")
    return reader(cfg, paths)


def save(tx: pd.DataFrame, quality: dict[str, Any], paths: Paths) -> None:
    """Write transactions and the data-quality metrics atomically."""
    missing = [k for k in QUALITY_KEYS if k not in quality]
    if missing:
        raise DataError(f"data-quality dict lacks {', '.join(missing)}", fix="build it with ingest.clean")
    io.write_parquet(schema.conform(tx, schema.TRANSACTIONS, "transactions"), paths.transactions)
    io.write_json(quality, paths.data_quality)


def run(root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The whole ingest stage without a notebook: read the source, clean, save; returns the quality dict."""
    cfg = config.load("data", root)
    paths = config.paths(root)
    raw, name = read_source(cfg, paths)
    tx, quality = clean(raw, name, currency=cfg.currency)
    save(tx, quality, paths)
    return quality
