"""What each stage's results look like on disk: headline figures for DVC, the detail for the renderers.

A stage computes one results dict (ingest's data quality, the forecast's and churn's metrics). It is written
three ways so that `dvc metrics show` and `dvc exp show` stay readable while nothing is lost:
- the headline figures (`quality_headline`, `forecast_headline`, `churn_headline`): a flat mapping of a few
  numbers, the only files declared as DVC `metrics`;
- per-series detail as a CSV table (`series_frame`), one row per forecast series, drawn by `dvc plots`;
- everything else, as computed, in a JSON record that the later stages read (`paths.data_quality`,
  `paths.forecast_metrics`, `paths.churn_metrics`).
`forecast_from_files` puts the forecast's record and its series table back together, the same dict the
stage computed (`{..., "series": {series_id: {...}}}`).

The headline functions and the table conversions are pure; `save_*` and `read_forecast` are the I/O edge.
"""

from __future__ import annotations

import io as _io
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from . import io
from .config import Paths

DECIMALS = 6
SERIES_ID = "series_id"
# per-series fields that are words, never parsed as numbers (a region may be called "2024")
SERIES_TEXT = ("region", "product_line", "status", "model", "baseline", "notes", "error", "total_range")
_INT = re.compile(r"-?\d+")


def _num(value: Any) -> float | None:
    """A finite number rounded for a metrics file, else None (missing, NaN, or not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return round(float(value), DECIMALS) if isinstance(value, float) else value


def _get(mapping: Mapping[str, Any] | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def _numbers(pairs: dict[str, Any]) -> dict[str, float | int]:
    """Keep the entries that are finite numbers: a headline file holds numbers only."""
    return {k: n for k, v in pairs.items() if (n := _num(v)) is not None}


def _total(counts: Any) -> int | None:
    if not isinstance(counts, Mapping):
        return None
    vals = [v for v in counts.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    return int(sum(vals)) if len(vals) == len(counts) else None


# ---------------------------------------------------------------- headline figures (pure)
def quality_headline(dq: Mapping[str, Any]) -> dict[str, float | int]:
    """Data-quality counts: rows read, kept, rejected, excluded, duplicates, returns, customers, orders."""
    return _numbers({
        "rows_read": dq.get("rows_read"), "rows_kept": dq.get("rows_kept"),
        "rows_rejected": _total(dq.get("rejected")), "rows_excluded": _total(dq.get("excluded")),
        "duplicates_removed": dq.get("duplicates_removed"), "return_lines": dq.get("return_lines"),
        "n_customers": dq.get("n_customers"), "n_orders": dq.get("n_orders"),
    })


def forecast_headline(fm: Mapping[str, Any]) -> dict[str, float | int]:
    """Backtest accuracy over all series next to the naive baseline's, the gain over it, and the coverage of the
    per-period ranges and of the ranges of the totals over the horizon.

    gain = 1 - mase / naive_mase: the share of the baseline's error the forecasts remove (0 is no better).
    """
    overall = fm.get("overall") or {}
    series = fm.get("series") or {}
    mase, naive = _num(overall.get("mase")), _num(overall.get("naive_mase"))
    return _numbers({
        "mase": mase, "naive_mase": naive,
        "gain": (1 - mase / naive) if mase is not None and naive else None,
        "smape": overall.get("smape"), "naive_smape": overall.get("naive_smape"),
        "coverage": overall.get("coverage"), "total_coverage": overall.get("total_coverage"),
        "n_series": len(series),
        "n_backtested": sum(1 for s in series.values() if isinstance(s, Mapping) and _num(s.get("mase")) is not None),
    })


def churn_headline(cm: Mapping[str, Any]) -> dict[str, float | int]:
    """The chosen classifier's validation AUC, Brier and top-decile lift, the best baseline's (recency or RFM),
    and how the call list it would have made turned out."""
    base = cm.get("baselines") or {}
    simple = [b for name, b in base.items() if name in ("recency", "rfm") and isinstance(b, Mapping)]

    def best(key: str, low: bool = False) -> float | None:
        vals = [v for b in simple if (v := _num(b.get(key))) is not None]
        return (min(vals) if low else max(vals)) if vals else None

    calls = _get(cm, "call_list_validation", str(cm.get("scorer") or "model")) or {}
    return _numbers({
        "roc_auc": _get(cm, "model", "roc_auc"), "brier": _get(cm, "model", "brier"),
        "pr_auc": _get(cm, "model", "pr_auc"), "top_decile_lift": _get(cm, "model", "top_decile_lift"),
        "baseline_roc_auc": best("roc_auc"), "baseline_brier": best("brier", low=True),
        "baseline_top_decile_lift": best("top_decile_lift"),
        "call_precision": _get(calls, "precision"), "call_lift": _get(calls, "lift"),
        "base_rate": cm.get("base_rate"), "n_scored": cm.get("n_scored"), "n_red": cm.get("n_red"),
    })


# ---------------------------------------------------------------- per-series table (pure)
def series_frame(series: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per series (sorted by id), a column per field; whole-number columns stay integers."""
    rows = [{SERIES_ID: sid, **dict(fields)} for sid, fields in sorted(series.items())]
    columns = [SERIES_ID, *_field_order(series)]
    frame = pd.DataFrame(rows, columns=columns)
    for col in columns[1:]:
        vals = [f.get(col) for f in series.values() if f.get(col) is not None]
        if vals and all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            frame[col] = pd.array([f.get(col) for _, f in sorted(series.items())], dtype="Int64")
    return frame


def _field_order(series: Mapping[str, Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for fields in series.values():
        seen.update(dict.fromkeys(fields))
    text = [c for c in SERIES_TEXT if c in seen]
    return [*text, *sorted(c for c in seen if c not in text)]


def series_csv(series: Mapping[str, Mapping[str, Any]]) -> str:
    return series_frame(series).to_csv(index=False, float_format=f"%.{DECIMALS}f", lineterminator="\n")


def _cell(col: str, text: str) -> Any:
    if text == "":
        return None
    if col in SERIES_TEXT:
        return text
    if text in ("True", "False"):
        return text == "True"
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def series_from_csv(text: str) -> dict[str, dict[str, Any]]:
    """The per-series dict back from `series_csv`'s text: empty cells are None, numbers are numbers."""
    frame = pd.read_csv(_io.StringIO(text), dtype=str, keep_default_na=False)
    cols = [c for c in frame.columns if c != SERIES_ID]
    return {row[SERIES_ID]: {c: _cell(c, row[c]) for c in cols} for row in frame.to_dict("records")}


def forecast_from_files(record: Mapping[str, Any], series_text: str) -> dict[str, Any]:
    """The forecast metrics dict from its record (everything but the series) and its series table."""
    return {**record, "series": series_from_csv(series_text)}


# ---------------------------------------------------------------- I/O edge
def save_quality(dq: Mapping[str, Any], paths: Paths) -> list[Path]:
    return [io.write_json(dict(dq), paths.data_quality), io.write_json(quality_headline(dq), paths.quality_headline)]


def save_forecast(fm: Mapping[str, Any], paths: Paths) -> list[Path]:
    record = {k: v for k, v in fm.items() if k != "series"}
    return [io.write_json(record, paths.forecast_metrics),
            io.write_text(series_csv(fm.get("series") or {}), paths.forecast_series),
            io.write_json(forecast_headline(fm), paths.forecast_headline)]


def save_churn(cm: Mapping[str, Any], paths: Paths) -> list[Path]:
    return [io.write_json(dict(cm), paths.churn_metrics), io.write_json(churn_headline(cm), paths.churn_headline)]


def read_forecast(paths: Paths) -> dict[str, Any]:
    """The forecast stage's metrics dict, as it computed it, from its two files."""
    return forecast_from_files(io.read_json(paths.forecast_metrics),
                               Path(paths.forecast_series).read_text(encoding="utf-8"))
