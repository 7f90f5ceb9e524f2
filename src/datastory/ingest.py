"""Ingest: map, validate and clean the source's rows into schema.TRANSACTIONS.

`prepare` is the pure core: a `sources.Raw` (the mapped columns, as the source holds them) and the data
params in; the transactions, every row set aside (and why) and the data-quality dict out. Each source row
ends in exactly one place, so rows_read = rows_kept + duplicates + excluded + rejected:
- kept: a transaction (cancellations may be kept as returns, missing regions filled from the customer's
  other lines, both counted);
- duplicate: an exact repeat of an earlier row;
- excluded: a row the rules set aside on purpose (no customer id, a non-product code, a cancellation
  when cancellations: exclude);
- rejected: a row that cannot be used (a bad date, a non-number, a future date, a control character in an
  id, ...). With on_bad_rows: fail the first such problem stops the run with a DataError naming the file,
  row, column and fix; with quarantine the rows are set aside and counted.
The rules come first: a row they set aside is never judged by a value check (a bad-debt line with a negative
price and no customer is excluded, not an error).
Without an order id column, each customer's lines at one timestamp are one order, with a synthesised id
"<customer id>@<timestamp>" (the same on every run). With segment_by: country and a country_regions
mapping, a country the mapping does not list goes to the region OTHER, and is counted.
Every set-aside row goes to data/interim/rejected.parquet with its row number and reason: none is
dropped silently. The data-quality record is built by `quality_record` and its empty months found by
`missing_months`, which the streaming engine (`ingest_stream`) calls too. `read_source`, `save` and `run` are
the I/O edge.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import warnings
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import config, io, metrics, schema, sources
from .config import DataParams, Paths
from .errors import DataError
from .sources import Raw

UNKNOWN = config.UNKNOWN_REGION   # region of a customer whose region is never given
OTHER = config.OTHER_REGION       # region of a country that rules.country_regions does not list
ONE_SEGMENT = config.ONE_SEGMENT  # region when rules.segment_by is none
ALL_PRODUCTS = "All products"  # product line when the source has none
SORT_KEYS = ["timestamp", "order_id", "customer_id", "product_line", "amount"]
TEXT_FIELDS = ("order_id", "customer_id", "customer_name", "region", "country", "product", "product_line")
IDS = ("order_id", "customer_id", "product", "product_line", "region", "country")
# C0 control characters and DEL: never part of an id. Around a value, the usual white space (tab, line ends)
# is trimmed like spaces; any other control character, anywhere, makes the value invalid.
CONTROL = r"[\x00-\x1f\x7f]"
CONTROL_RAW = r"[\x00-\x08\x0e-\x1f\x7f]"
ORDER_PER_CUSTOMER_TIME = "customer and timestamp"   # quality["order_ids"] without an order id column

# Column -> what it must hold, for messages (the canonical fields of params/data.yaml's columns:)
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
                "cancelled_lines", "period_start", "period_end", "n_customers", "n_orders", "rejected", "excluded",
                "empty_periods", "source", "on_bad_rows", "currency", "order_ids", "unmapped_countries")
REJECTED_COLUMNS = ["row", "disposition", "reason", "column"]
ISO_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


@dataclass(frozen=True)
class Ingested:
    tx: pd.DataFrame          # schema.TRANSACTIONS
    rejected: pd.DataFrame    # REJECTED_COLUMNS + the source's columns as text
    quality: dict[str, Any]


@dataclass(frozen=True)
class Check:
    """One reason a row is set aside: a boolean mask over the rows and how to explain it."""

    mask: np.ndarray
    reason: str
    field: str
    fix: str
    disposition: str = "rejected"   # rejected (bad data) or excluded (by the rules)


# ---------------------------------------------------------------- parsing (pure, vectorised)
def _as_text(values: pd.Series) -> pd.Series:
    """Stripped text with empty -> NA; integral numbers (17850.0 from Excel or SQL) written without '.0'."""
    if pd.api.types.is_float_dtype(values.dtype):
        v = values.to_numpy(dtype=float)
        ok = np.isfinite(v) & (v == np.round(v)) & (np.abs(v) < 2**53)
        text = values.astype("string[pyarrow]")
        text = text.mask(ok, pd.Series(v, index=values.index).where(ok, 0).astype("int64").astype("string[pyarrow]"))
    elif pd.api.types.is_object_dtype(values.dtype):
        def one(x: Any) -> Any:
            if x is None or x is pd.NA or x is pd.NaT or (isinstance(x, float) and not np.isfinite(x)):
                return None
            if isinstance(x, float) and x == int(x) and abs(x) < 2**53:
                return str(int(x))
            return str(x)
        text = values.map(one).astype("string[pyarrow]")
    else:
        text = values.astype("string[pyarrow]")
    stripped = text.str.strip()
    if not stripped.equals(text):      # only then a new column: else keep the source's (Arrow) buffers
        text = stripped
    del stripped
    empty = text == ""
    return text.mask(empty) if empty.any() else text


def _blank(values: pd.Series) -> np.ndarray:
    """Cells the source left empty: missing, or (for text) nothing but spaces."""
    dtype = values.dtype
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return values.isna().to_numpy()
    return _as_text(values).isna().to_numpy()


def parse_numbers(values: pd.Series, decimal: str = ".", thousands: str = "") -> pd.Series:
    """float64 with NaN where a value is empty or not a number (inf and nan stay, to be reported)."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64")
    text = values.astype("string[pyarrow]").str.strip()
    if thousands:
        # a thousands mark must separate groups of three digits: with decimal "," and thousands ".", a
        # value written 1.85 is not 185 but a value in another convention, so it is refused (NaN)
        grouped = text.str.fullmatch(rf"[+-]?\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+(?:{re.escape(decimal)}\d*)?")
        text = text.mask(text.str.contains(thousands, regex=False).fillna(False) & ~grouped.fillna(False))
        text = text.str.replace(thousands, "", regex=False)
    if decimal != ".":
        text = text.str.replace(decimal, ".", regex=False)
    arr = pa.array(text.mask(text == ""), type=pa.string(), from_pandas=True)
    try:
        return pd.Series(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), index=values.index)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_numeric(text, errors="coerce").astype("float64")


def _localise(parsed: pd.Series, zone: str) -> pd.Series:
    """Aware -> the local clock of `zone` (UTC when empty), naive; naive stays as it is."""
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert(zone or "UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _strptime(text: pd.Series, fmt: str) -> pd.Series:
    arr = pa.array(text, type=pa.string(), from_pandas=True)
    try:
        out = pc.strptime(arr, format=fmt, unit="ns", error_is_null=True)
        return pd.Series(out.to_pandas(), index=text.index).astype("datetime64[ns]")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_datetime(text, format=fmt, errors="coerce")


def parse_timestamps(values: pd.Series, date_format: str = "", dayfirst: bool = False,
                     timezone: str = "", known: str = "") -> tuple[pd.Series, str]:
    """Naive local timestamps (NaT where a value is not a date) and the format the column was read with.

    Native dates pass through (aware ones are converted to `timezone`). Text: `date_format` when given;
    otherwise ISO 8601, or one format guessed from the first non-ISO value (with `dayfirst`); a column
    mixing formats keeps the format that reads the most rows, and the others are NaT (reported as rows
    in another format). Text with a UTC offset is converted to `timezone`. `known`: the format an earlier
    call chose for the same column ("ISO 8601" or a strftime format), used instead of guessing again.
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return _localise(values, timezone), "native"
    if pd.api.types.is_object_dtype(values.dtype) and not values.map(lambda x: isinstance(x, str)).any():
        return _localise(pd.to_datetime(values, errors="coerce", utc=values.map(
            lambda x: getattr(x, "tzinfo", None) is not None).any()), timezone), "native"
    text = _as_text(values)
    if date_format:
        return _strptime(text, date_format), date_format
    if known and known not in ("ISO 8601", "native"):
        return _strptime(text, known), known
    aware = text.str.contains(ISO_OFFSET, regex=True).fillna(False).to_numpy(dtype=bool)
    iso = pd.to_datetime(text.mask(aware), errors="coerce", format="ISO8601")
    if aware.any():
        conv = _localise(pd.to_datetime(text[aware], errors="coerce", format="ISO8601", utc=True), timezone)
        iso = iso.astype("datetime64[ns]")
        iso[aware] = conv
    iso = iso.astype("datetime64[ns]")
    todo = (iso.isna() & text.notna()).to_numpy()
    if not todo.any() or known == "ISO 8601":
        return iso, "ISO 8601"
    from pandas.tseries.api import guess_datetime_format

    first = str(text[todo].iloc[0])
    with warnings.catch_warnings():  # pandas warns when the guess contradicts dayfirst: the rows say it
        warnings.simplefilter("ignore", UserWarning)
        fmt = guess_datetime_format(first, dayfirst=dayfirst)
    if not fmt:
        return iso, "ISO 8601"
    other = _strptime(text, fmt)
    if other.notna().sum() > iso.notna().sum():
        return other, fmt
    return iso, "ISO 8601"


COMMON_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d.%m.%Y", "%Y-%m-%d")


def date_format_fix(bad_value: str, current: str, dayfirst: bool) -> str:
    """The fix for a date the column's format cannot read: a format that reads it, never the one already set."""
    from pandas.tseries.api import guess_datetime_format

    guesses = []
    for first in (dayfirst, not dayfirst):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            g = guess_datetime_format(bad_value, dayfirst=first) if bad_value else None
        if g and g != current and g not in guesses:
            guesses.append(g)
    if guesses:
        return (f"set rules.date_format in params/data.yaml to {guesses[0]!r}, which reads {bad_value!r}"
                + ("" if current else ", or set rules.dayfirst") + "; or correct the dates that differ")
    example = next(f for f in COMMON_DATE_FORMATS if f != current)
    return (f"set rules.date_format in params/data.yaml to the column's format (e.g. {example!r}), or correct "
            "the dates that differ")


# ---------------------------------------------------------------- mapping and checks (pure)
def _controls(values: pd.Series, text: pd.Series) -> np.ndarray:
    """Values holding a control character: anywhere once trimmed, or (tab and line ends apart) around it.

    One scan of the source's text finds the rare candidates; only those are looked at twice."""
    source = text
    if isinstance(values.dtype, pd.StringDtype):
        source = values
    elif pd.api.types.is_object_dtype(values.dtype):
        source = values.map(lambda x: x if isinstance(x, str) else None).astype("string[pyarrow]")
    hit = source.str.contains(CONTROL, regex=True).fillna(False).to_numpy(dtype=bool)
    if hit.any():
        at = np.flatnonzero(hit)
        hit[at] = (text.iloc[at].str.contains(CONTROL, regex=True).fillna(False).to_numpy(dtype=bool)
                   | source.iloc[at].str.contains(CONTROL_RAW, regex=True).fillna(False).to_numpy(dtype=bool))
    return hit


def order_ids(customer: pd.Series, ts: pd.Series) -> pd.Series:
    """One order per customer and timestamp: '<customer id>@<timestamp, ISO 8601>', NA where either is missing.

    Only the values make the id, so it is the same on every run and whatever the row order."""
    stamp = pc.strftime(pa.array(ts.astype("datetime64[ns]"), type=pa.timestamp("ns")), format="%Y-%m-%dT%H:%M:%S")
    stamp = pc.replace_substring_regex(stamp, pattern=r"\.0{9}$", replacement="")   # whole seconds: no fraction
    stamp = pc.replace_substring_regex(stamp, pattern=r"(\.\d*?)0+$", replacement=r"\1")   # 01.500000000 -> 01.5
    joined = pc.binary_join_element_wise(pa.array(customer, type=pa.string(), from_pandas=True), stamp, "@")
    return pd.Series(pd.arrays.ArrowStringArray(joined), index=customer.index)


def _fields(raw: Raw, cfg: DataParams, now: pd.Timestamp,
            known_format: str = "") -> tuple[pd.DataFrame, list[Check], pd.Series]:
    """The canonical columns (not yet filtered), every check in the order it applies, and the country of each
    row that went to the region OTHER (NA elsewhere). `known_format`: see parse_timestamps. The checks are
    the same list, in the same order, whatever the rows (only the source's columns and the params decide it).

    The rules' exclusions come first: a row they set aside is never judged by a value check."""
    f, rules = raw.frame, cfg.rules
    n = len(f)
    col = raw.column
    text = {k: _as_text(f[k]) for k in TEXT_FIELDS if k in f.columns}
    ts, fmt = parse_timestamps(f["timestamp"], rules.date_format, rules.dayfirst, rules.timezone, known_format)
    num = {k: parse_numbers(f[k], cfg.file.decimal, cfg.file.thousands)
           for k in ("amount", "quantity", "unit_price", "discount") if k in f.columns}
    none = np.zeros(n, dtype=bool)
    checks: list[Check] = []

    def missing(key: str) -> np.ndarray:
        return text[key].isna().to_numpy() if key in text else none

    # excluded by the rules, on purpose (first: such a row is not judged by the value checks below)
    if rules.missing_customer == "exclude":
        checks.append(Check(missing("customer_id"), "no customer id", "customer_id",
                            "rules.missing_customer: exclude", "excluded"))
    if rules.non_product_codes:
        key = "product" if "product" in text else "product_line"
        codes = {c.strip().upper() for c in rules.non_product_codes}
        hit = text[key].str.upper().isin(codes).fillna(False).to_numpy(dtype=bool)
        checks.append(Check(hit, "non-product line", key, "rules.non_product_codes", "excluded"))
    cancelled = none
    if rules.cancelled_prefix:
        cancelled = text["order_id"].str.startswith(rules.cancelled_prefix).fillna(False).to_numpy(dtype=bool)
        if rules.cancellations == "exclude":
            checks.append(Check(cancelled, "cancelled order", "order_id", "rules.cancellations: exclude",
                                "excluded"))

    # rejected: values that cannot be used
    if "order_id" in text:
        checks.append(Check(missing("order_id"), "order id is empty", "order_id",
                            f"every row needs an order or invoice number in '{col('order_id')}', or set "
                            "columns.order_id: \"\" if the source has none (one order per customer and timestamp)"))
    if rules.missing_customer == "invalid":
        checks.append(Check(missing("customer_id"), "customer id is empty", "customer_id",
                            "fill the customer id, or set rules.missing_customer: exclude"))
    for key in IDS:
        if key in text:
            checks.append(Check(_controls(f[key], text[key]), f"{key.replace('_', ' ')} holds a control character",
                                key, f"remove the invisible control character (NUL, escape, ...) from "
                                f"'{col(key)}' at the source; many at once usually mean a wrong file.encoding "
                                "(e.g. utf-16 read as utf-8) or a binary export"))
    empty_ts = _blank(f["timestamp"])
    checks.append(Check(empty_ts, "timestamp is empty", "timestamp", "every row needs a date"))
    how = f"the column's format ({fmt})" if fmt not in ("native",) else "a date"
    bad_ts = ts.isna().to_numpy() & ~empty_ts
    fix = "store dates as dates in the source"
    if fmt != "native":
        first_bad = _as_text(f["timestamp"])[bad_ts]
        fix = date_format_fix(str(first_bad.iloc[0]) if len(first_bad) else "", rules.date_format, rules.dayfirst)
    checks.append(Check(bad_ts, f"timestamp is not {how}", "timestamp", fix))
    checks.append(Check((ts > now).fillna(False).to_numpy(dtype=bool), "timestamp is in the future", "timestamp",
                        f"correct the date (it is after {now:%Y-%m-%d %H:%M}), or set rules.max_timestamp if "
                        "the data really runs later"))
    for key, values in num.items():
        v = values.to_numpy()
        src_missing = _blank(f[key])
        if key == "discount":
            checks.append(Check(np.isnan(v) & ~src_missing, "discount is not a number", key,
                                "give discount as a fraction (0.15 for 15%), or leave it empty for none"))
            checks.append(Check(~np.isnan(v) & ~((v >= 0) & (v <= 1)), "discount is outside 0..1", key,
                                "give discount as a fraction (0.15 for 15%)"))
            continue
        checks.append(Check(src_missing, f"{key.replace('_', ' ')} is empty", key,
                            f"every row needs a number in '{col(key)}'"))
        checks.append(Check(~np.isfinite(v) & ~src_missing, f"{key.replace('_', ' ')} is not a finite number",
                            key, f"'{col(key)}' must be a plain number (no text, NaN or inf)"
                            + (f" written with '{cfg.file.decimal}' as decimal mark"
                               + (f" and '{cfg.file.thousands}' between thousands" if cfg.file.thousands else
                                  " and no thousands mark") + "; check file.decimal and file.thousands"
                               if cfg.source == "csv" else "")))
    if "unit_price" in num:
        checks.append(Check((num["unit_price"] < 0).to_numpy(), "unit price is negative", "unit_price",
                            "a price cannot be negative: book adjustments as their own lines with a non-product "
                            "code listed in rules.non_product_codes"))
    if "product_line" in text:
        checks.append(Check(missing("product_line"), "product line is empty", "product_line",
                            f"every row needs '{col('product_line')}', or unmap columns.product_line"))

    # the canonical frame
    if "amount" in num:
        amount = num["amount"]
        quantity = num["quantity"] if "quantity" in num else pd.Series(np.sign(amount).replace(0, 1), index=f.index)
    else:
        quantity = num["quantity"]
        amount = quantity * num["unit_price"]
    other = pd.Series(pd.NA, index=f.index, dtype="string[pyarrow]")
    if rules.segment_by == "region":
        region = text["region"]
    elif rules.segment_by == "country":
        codes, names = pd.factorize(text["country"])          # NA -> -1; a few distinct countries
        mapping = rules.country_regions
        regions = pd.array([mapping.get(c, OTHER if mapping else c) for c in names], dtype="string[pyarrow]")
        region = pd.Series(regions.take(codes, allow_fill=True), index=f.index)
        unmapped = np.array([bool(mapping) and c not in mapping for c in names], dtype=bool)
        if unmapped.any():
            other = text["country"].where(unmapped[np.maximum(codes, 0)] & (codes >= 0))
    else:
        region = pd.Series(ONE_SEGMENT, index=f.index, dtype="string[pyarrow]")
    sign = np.where(cancelled & (rules.cancellations == "return"), -1.0, 1.0)
    amount_v = np.where(sign < 0, -np.abs(amount.to_numpy()), amount.to_numpy())
    quantity_v = np.where(sign < 0, -np.abs(quantity.to_numpy()), quantity.to_numpy())
    canon = pd.DataFrame({
        "order_id": text["order_id"] if "order_id" in text else order_ids(text["customer_id"], ts),
        "customer_id": text["customer_id"],
        "customer_name": text.get("customer_name", pd.NA),
        "timestamp": ts,
        "region": region,
        "product_line": text.get("product_line", ALL_PRODUCTS),
        "quantity": quantity_v,
        "amount": amount_v,
        "discount": num["discount"].fillna(0.0) if "discount" in num else 0.0,
        "cancelled": cancelled & (rules.cancellations == "return"),
    }, index=f.index, copy=False)   # no copy (nor consolidation) of the columns just made
    return canon, checks, other


def _text_rank(values: pd.Series) -> np.ndarray:
    """Sort rank of text values (code point order, missing last), sorting only the distinct values."""
    codes, uniques = pd.factorize(values)
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[np.asarray(uniques.argsort())] = np.arange(len(uniques))
    return np.where(codes < 0, len(uniques), rank[np.maximum(codes, 0)])


def _sort_order(tx: pd.DataFrame) -> np.ndarray:
    """Row order of tx.sort_values(SORT_KEYS, kind="stable"), by Arrow's stable multi-key sort of integer
    keys (text as ranks): about ten times faster than a numpy lexsort at 10 million rows."""
    ts = tx["timestamp"]
    keys = pa.table({
        "timestamp": np.where(ts.isna().to_numpy(), np.iinfo(np.int64).max, ts.to_numpy().view("i8")),
        "order_id": _text_rank(tx["order_id"]),
        "customer_id": _text_rank(tx["customer_id"]),
        "product_line": _text_rank(tx["product_line"]),
        "amount": tx["amount"].to_numpy(),
    })
    return pc.sort_indices(keys, sort_keys=[(k, "ascending") for k in SORT_KEYS]).to_numpy()


def _repeated(frame: pd.DataFrame) -> np.ndarray:
    """frame.duplicated(keep="first"), checked in full only among the rows whose order id, product and
    quantity/amount repeat (every exact repeat does). Those three columns become one integer key; repeats of
    it are found by a stable sort, which is near-linear on a log in time order (a hash over 10 million keys
    is not: it thrashes the cache)."""
    key = np.zeros(len(frame), dtype=np.int64)
    for col in (c for c in ("order_id", "product", "quantity", "amount") if c in frame.columns):
        codes, uniques = pd.factorize(frame[col])        # missing -> -1; Arrow's hashing for Arrow text
        width = len(uniques) + 1
        if int(key.max(initial=0)) >= (2**62) // width:   # renumber first, so the key cannot overflow
            key = pd.factorize(key)[0].astype(np.int64)
        key = key * width + (codes.astype(np.int64) + 1)
    order = np.argsort(key, kind="stable")
    same = key[order[1:]] == key[order[:-1]]
    in_group = np.zeros(len(key), dtype=bool)
    in_group[order[1:][same]] = True
    in_group[order[:-1][same]] = True
    out = np.zeros(len(frame), dtype=bool)
    out[in_group] = frame.loc[in_group].duplicated(keep="first").to_numpy()
    return out


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


def _first_value(raw: Raw, fieldname: str, pos: int) -> str:
    value = raw.frame[fieldname].iloc[pos]
    shown = "" if value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and np.isnan(value)) else str(value)
    return (shown[:40] + "...") if len(shown) > 40 else shown


def bad_rows_error(raw: Raw, pos: int, check: Check, value: str, count: int) -> DataError:
    """The error of on_bad_rows: fail: `count` rows fail `check`, the first at 0-based data row `pos`, holding
    `value` (shown as read, cut at 40 characters). `raw` gives the file, the row numbers and the column names."""
    shown = f" (value {value!r})" if value else ""
    more = f"; {count:,} row(s) have this problem, first shown" if count > 1 else ""
    return DataError(f"{check.reason}{shown}{more}", file=raw.name, row=raw.row(pos), record=raw.record(pos),
                     column=raw.column(check.field), fix=f"{check.fix}; or set on_bad_rows: quarantine to set such "
                     "rows aside")


def first_value(raw: Raw, check: Check, pos: int) -> str:
    """The value a bad-rows message shows for row `pos` of `raw` (see bad_rows_error)."""
    return _first_value(raw, check.field, pos) if check.field in raw.frame.columns else ""


def _raise_first(raw: Raw, check: Check) -> None:
    bad = np.flatnonzero(check.mask)
    pos = int(bad[0])
    raise bad_rows_error(raw, pos, check, first_value(raw, check, pos), len(bad))


def missing_months(months: Iterable[Any]) -> list[str]:
    """The calendar months between the first and the last of `months` (the months that hold a kept row, as
    pandas Periods or 'YYYY-MM' text, in any order, repeats allowed) that are not among them, in order."""
    present = pd.PeriodIndex(list(months), freq="M")
    if present.empty:
        return []
    full = pd.period_range(present.min(), present.max(), freq="M")
    return [str(p) for p in full.difference(present.unique())]


def quality_record(cfg: DataParams, *, rows_read: int, rows_kept: int, duplicates: int,
                   excluded: Mapping[str, int], rejected: Mapping[str, int], filled: int, cancelled: int,
                   returns: int, empty: list[str], start: Any, end: Any, customers: int, orders: int,
                   unmapped: Mapping[str, int]) -> dict[str, Any]:
    """The data-quality record (data/interim/data_quality.json) from the counts of one ingest, whichever engine
    counted them: the set-aside counts per reason, sorted by reason; the period's first and last days (`start`,
    `end`: timestamps); the kept lines per country sent to the region OTHER, most first (ties by name)."""
    return {
        "source": cfg.source,
        "on_bad_rows": cfg.on_bad_rows,
        "rows_read": int(rows_read),
        "rows_kept": int(rows_kept),
        "duplicates_removed": int(duplicates),
        "excluded": {str(k): int(v) for k, v in sorted(excluded.items())},
        "rejected": {str(k): int(v) for k, v in sorted(rejected.items())},
        "missing_region_filled": int(filled),
        "cancelled_lines": int(cancelled),
        "return_lines": int(returns),
        "empty_periods": list(empty),
        "period_start": pd.Timestamp(start).date().isoformat(),
        "period_end": pd.Timestamp(end).date().isoformat(),
        "n_customers": int(customers),
        "n_orders": int(orders),
        "order_ids": "column" if cfg.columns.order_id else ORDER_PER_CUSTOMER_TIME,
        "unmapped_countries": {c: k for c, k in sorted(((str(c), int(k)) for c, k in unmapped.items()),
                                                       key=lambda ck: (-ck[1], ck[0]))},
        "currency": cfg.currency,
    }


def _set_aside(raw: Raw, reason: np.ndarray, disposition: np.ndarray, column: np.ndarray) -> pd.DataFrame:
    rows = np.flatnonzero(disposition != "")
    original = raw.frame.iloc[rows]
    out = pd.DataFrame({
        "row": raw.rows(rows),
        "disposition": pd.array(disposition[rows], dtype="string"),
        "reason": pd.array(reason[rows], dtype="string"),
        "column": pd.array(column[rows], dtype="string"),
    })
    for fieldname in original.columns:
        values = original[fieldname]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            text = values.dt.strftime("%Y-%m-%d %H:%M:%S").astype("string")
        elif pd.api.types.is_float_dtype(values.dtype):   # 17850.0 (an id column with gaps) -> "17850"
            text = _as_text(values).astype("string")
        else:
            text = values.astype("string")
        name = raw.column(fieldname)
        out[f"{name} (source)" if name in REJECTED_COLUMNS else name] = text.reset_index(drop=True)
    return out


def future_cutoff(cfg: DataParams, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The latest timestamp a row may have: rules.max_timestamp (a date: its last instant), else `now`
    (default: the current time, in rules.timezone)."""
    rules = cfg.rules
    if rules.max_timestamp:
        cutoff = pd.Timestamp(rules.max_timestamp)
        return cutoff + pd.Timedelta(days=1) - pd.Timedelta(1) if len(rules.max_timestamp) == 10 else cutoff
    zone = zoneinfo.ZoneInfo(rules.timezone or "UTC")
    return pd.Timestamp(now if now is not None else dt.datetime.now(zone).replace(tzinfo=None))


def no_usable_rows(name: str, n: int, counts: dict[str, int]) -> DataError:
    top = ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:3])
    return DataError(f"no usable rows: all {n:,} rows were set aside ({top})", file=name,
                     fix="check the column mapping and rules in params/data.yaml (`datastory check-data`)")


def empty_periods_error(name: str, ts_column: str, empty: list[str]) -> DataError:
    return DataError(f"no rows at all in {len(empty)} month(s) inside the data's period: {', '.join(empty[:6])}",
                     file=name, column=ts_column,
                     fix="check that the export covers the whole period, or set rules.empty_periods: warn")


def prepare(raw: Raw, cfg: DataParams, now: pd.Timestamp | None = None) -> Ingested:
    """Transactions, set-aside rows and the data-quality dict (see module doc). `now`: the future cut-off
    when rules.max_timestamp is empty (default: the current time, in rules.timezone)."""
    rules = cfg.rules
    cutoff = future_cutoff(cfg, now)
    frame = raw.frame.reset_index(drop=True)
    raw = dataclasses.replace(raw, frame=frame)
    n = len(frame)
    if n == 0:
        raise sources.no_rows(raw.name)
    repeated = _repeated(frame)
    canon, checks, other = _fields(raw, cfg, cutoff)

    reason = np.full(n, "", dtype=object)
    disposition = np.full(n, "", dtype=object)
    column = np.full(n, "", dtype=object)
    rejected: dict[str, int] = {}
    excluded: dict[str, int] = {}
    free = np.ones(n, dtype=bool)   # not yet set aside (cheaper than comparing the object arrays each time)
    for check in checks:
        hit = check.mask & free
        if not hit.any():
            continue
        free &= ~hit
        if check.disposition == "rejected" and cfg.on_bad_rows == "fail":
            _raise_first(raw, Check(hit, check.reason, check.field, check.fix))
        reason[hit], disposition[hit], column[hit] = check.reason, check.disposition, raw.column(check.field)
        counts = rejected if check.disposition == "rejected" else excluded
        counts[check.reason] = counts.get(check.reason, 0) + int(hit.sum())
    dup = repeated & free
    reason[dup], disposition[dup] = "exact duplicate of an earlier row", "duplicate"

    keep = free & ~dup
    if not keep.any():
        raise no_usable_rows(raw.name, n, {**rejected, **excluded})
    set_aside = _set_aside(raw, reason, disposition, column)
    unmapped = other[keep].value_counts().to_dict()   # kept lines per country that went to OTHER
    del other
    name, ts_column = raw.name, raw.column("timestamp")
    # the source's text is no longer needed: free it before the kept rows are copied
    del raw, frame, checks, reason, disposition, column
    tx = canon.loc[keep]
    del canon
    tx.index = pd.RangeIndex(len(tx))
    pa.default_memory_pool().release_unused()
    names = pa.array(tx["customer_name"].astype("string[pyarrow]"), type=pa.string())
    tx["customer_name"] = pd.Series(pd.arrays.ArrowStringArray(pc.coalesce(
        names, pa.array(tx["customer_id"], type=pa.string()))), index=tx.index)
    tx["region"], filled = _fill_regions(tx)
    empty = missing_months(tx["timestamp"].dt.to_period("M").unique())
    if empty and rules.empty_periods == "fail":
        raise empty_periods_error(name, ts_column, empty)
    cancelled_kept = int(tx["cancelled"].sum())
    tx["is_return"] = tx["amount"] < 0
    tx = tx.drop(columns="cancelled")
    order = _sort_order(tx)
    for col in tx.columns:   # column by column: one column is copied at a time
        tx[col] = tx[col].array.take(order)
    text_cols = [c for c, t in schema.TRANSACTIONS.items() if t == "string"]
    for col in text_cols:   # in place, column by column (DataFrame.astype copies every column)
        if tx[col].dtype != "string[pyarrow]":
            tx[col] = tx[col].astype("string[pyarrow]")
    pa.default_memory_pool().release_unused()
    tx = schema.conform(tx, schema.TRANSACTIONS, "transactions", copy=False)
    quality = quality_record(
        cfg, rows_read=n, rows_kept=len(tx), duplicates=int(dup.sum()), excluded=excluded, rejected=rejected,
        filled=filled, cancelled=cancelled_kept, returns=int(tx["is_return"].sum()), empty=empty,
        start=tx["timestamp"].min(), end=tx["timestamp"].max(), customers=tx["customer_id"].nunique(),
        orders=tx["order_id"].nunique(), unmapped=unmapped)
    return Ingested(tx=tx, rejected=set_aside, quality=quality)


def clean(raw: pd.DataFrame, source_name: str, *, currency: str = "EUR") -> tuple[pd.DataFrame, dict[str, Any]]:
    """`prepare` for a frame already in the canonical columns (the sample's layout), strict: any bad row
    (a missing customer id included) stops it."""
    if raw.empty:
        raise DataError("holds no rows", file=source_name, fix="export the transactions again, with data rows")
    for col, meaning in REQUIRED.items():
        if col not in raw.columns:
            raise DataError(f"required column '{col}' is missing (found: {', '.join(map(str, raw.columns))})",
                            file=source_name, column=col, fix=f"add a column '{col}': {meaning}")
    mapping = {k: k for k in (*REQUIRED, *OPTIONAL) if k in raw.columns}
    cfg = DataParams(currency=currency, columns=config.ColumnsParams(
        **{k: mapping.get(k, "") for k in config.ColumnsParams.model_fields}),
        rules=config.RulesParams(missing_customer="invalid"))
    frame = pd.DataFrame({k: raw[k] for k in mapping}).reset_index(drop=True)
    out = prepare(Raw(frame=frame, name=source_name, first_row=1, source_columns=mapping), cfg,
                  now=pd.Timestamp.max)
    return out.tx, out.quality


# ---------------------------------------------------------------- I/O edge
def read_source(cfg: DataParams, paths: Paths, root: str | os.PathLike | None = None) -> Raw:
    """The configured source's mapped columns."""
    return sources.read(cfg, paths, config.project_root(root))


def save(result: Ingested, paths: Paths) -> None:
    """Write transactions, the set-aside rows and the data-quality metrics (each atomically)."""
    missing = [k for k in QUALITY_KEYS if k not in result.quality]
    if missing:
        raise DataError(f"data-quality dict lacks {', '.join(missing)}", fix="build it with ingest.prepare")
    io.write_parquet(schema.conform(result.tx, schema.TRANSACTIONS, "transactions", copy=False), paths.transactions)
    io.write_parquet(result.rejected, paths.rejected)
    metrics.save_quality(result.quality, paths)


def run(root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The whole ingest stage without a notebook: read the source, prepare, save; returns the quality dict."""
    cfg = config.load("data", root)
    from . import ingest_stream, streaming

    if streaming.streams(cfg, root):
        return ingest_stream.ingest_csv(cfg, config.paths(root), root)
    result = prepare(read_source(cfg, config.paths(root), root), cfg)
    save(result, config.paths(root))
    return result.quality
