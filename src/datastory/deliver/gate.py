"""The quality gate: is this run's pack fit to email? (pure)

Deliberately few checks, each with the reason it failed:
- rows were read and some kept;
- the rows REJECTED by ingest (bad values: `data_quality["rejected"]`) are at most MAX_REJECTED_SHARE of
  the rows read;
- the rows EXCLUDED by the rules (no customer id, a non-product code, a cancelled order:
  `data_quality["excluded"]`) are at most `max_excluded_share` of the rows read (params/deliver.yaml).
  A mapping or rule that sets most rows aside gives a report about the few that are left;
- the churn model's ROC AUC and the forecast's overall MASE are present and finite.
The dry-run .eml is still written when the gate fails: only the send is held back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import config

MAX_REJECTED_SHARE = 0.05       # at most 5% of the rows read may have been rejected by ingest
DEFAULT_MAX_EXCLUDED_SHARE = 0.5


def _number(d: Mapping[str, Any], *path: str) -> float | None:
    cur: Any = d
    for p in path:
        if not isinstance(cur, Mapping) or p not in cur:
            return None
        cur = cur[p]
    if isinstance(cur, bool) or not isinstance(cur, int | float) or not math.isfinite(cur):
        return None
    return float(cur)


def _pct(x: float) -> str:
    return f"{100 * x:g}%"


def _counts(data_quality: Mapping[str, Any], what: str) -> tuple[dict[str, float] | None, str]:
    """({reason: rows}, "") or (None, why the mapping is unusable)."""
    found = data_quality.get(what, {})
    if found is None:
        found = {}
    if not isinstance(found, Mapping):
        return None, f"data_quality.{what} must be a mapping of reason -> row count"
    counts = {str(k): _number(found, k) for k in found}
    if any(c is None or c < 0 for c in counts.values()):
        return None, f"data_quality.{what} holds a value that is not a row count"
    return {k: c for k, c in counts.items() if c is not None}, ""


def _reasons(counts: Mapping[str, float], rows_read: float) -> str:
    """'no customer id: 8,900 rows (89.0%), cancelled order: 100 rows (1.0%)', biggest first."""
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k}: {v:,.0f} rows ({v / rows_read:.1%})" for k, v in top if v > 0)


def gate_ok(data_quality: Mapping[str, Any], churn_metrics: Mapping[str, Any],
            forecast_metrics: Mapping[str, Any],
            max_excluded_share: float = DEFAULT_MAX_EXCLUDED_SHARE) -> tuple[bool, str]:
    """(True, "all checks passed") when the pack is fit to send, else (False, the first reason)."""
    rows_read = _number(data_quality, "rows_read")
    if not rows_read or rows_read <= 0:
        return False, "data_quality.rows_read is missing or zero"
    if not _number(data_quality, "rows_kept"):
        return False, "data_quality.rows_kept is missing or zero: no usable rows"
    rejected, why = _counts(data_quality, "rejected")
    if rejected is None:
        return False, why
    share = sum(rejected.values()) / rows_read
    if share > MAX_REJECTED_SHARE:
        return False, (f"{share:.1%} of the rows read were rejected by ingest (more than "
                       f"{_pct(MAX_REJECTED_SHARE)}): {_reasons(rejected, rows_read)}; "
                       f"check {config.where('data_quality')} and {config.where('rejected')}")
    excluded, why = _counts(data_quality, "excluded")
    if excluded is None:
        return False, why
    share = sum(excluded.values()) / rows_read
    if share > max_excluded_share:
        return False, (f"{share:.1%} of the rows read were excluded by the rules (more than max_excluded_share "
                       f"{_pct(max_excluded_share)}): {_reasons(excluded, rows_read)}; check the column mapping "
                       "and rules in params/data.yaml (`datastory check-data` shows where every row went), "
                       "or raise max_excluded_share in params/deliver.yaml")
    auc = _number(churn_metrics, "model", "roc_auc")
    if auc is None or not 0 <= auc <= 1:
        return False, "churn metrics: model.roc_auc is missing or not in [0, 1]"
    if _number(forecast_metrics, "overall", "mase") is None:
        return False, "forecast metrics: overall.mase is missing"
    return True, "all checks passed"
