"""Churn labels: did a customer active before a cutoff buy again within the window after it?

churned at cutoff c = at least one purchase (non-return line) in [c - lookback_days, c) and NO purchase
in [c, c + window_days). A label is only defined when the whole window lies inside the data.
"""

from __future__ import annotations

import pandas as pd

from ..errors import ModelError
from .features import as_cutoff, check_cutoff_in, check_lookback, data_span


def check_window(tx: pd.DataFrame, cutoff: pd.Timestamp, window_days: int) -> None:
    """ModelError unless [cutoff, cutoff + window_days) is fully observed in the data."""
    check_window_in(*data_span(tx), cutoff, window_days)


def check_window_in(start: pd.Timestamp, end: pd.Timestamp, cutoff: pd.Timestamp, window_days: int) -> None:
    """check_window for data from day `start` to `end` (exclusive, as data_span gives them)."""
    if window_days < 1:
        raise ModelError(f"window_days must be >= 1, got {window_days}", fix="set window_days: 90")
    check_cutoff_in(start, end, cutoff)
    window_end = cutoff + pd.Timedelta(days=window_days)
    if window_end > end:
        raise ModelError(
            f"the label window {cutoff.date()} + {window_days} days ends {window_end.date()}, after the data "
            f"ends ({(end - pd.Timedelta(days=1)).date()}); churn there is not yet observed",
            fix=f"use a cutoff no later than {(end - pd.Timedelta(days=window_days)).date()} "
                "or lower window_days")


def labels_at(tx: pd.DataFrame, cutoff: object, window_days: int, lookback_days: int) -> pd.DataFrame:
    """Columns customer_id, churned (bool), one row per customer active before `cutoff`, sorted by id."""
    cutoff = as_cutoff(cutoff)
    check_window(tx, cutoff, window_days)
    check_lookback(lookback_days)
    buys = tx.loc[~tx["is_return"].astype(bool), ["customer_id", "timestamp"]]
    ts = buys["timestamp"]
    before = buys.loc[(ts >= cutoff - pd.Timedelta(days=lookback_days)) & (ts < cutoff), "customer_id"]
    after = buys.loc[(ts >= cutoff) & (ts < cutoff + pd.Timedelta(days=window_days)), "customer_id"]
    active = pd.Index(sorted(before.unique()), name="customer_id")
    churned = ~active.isin(after.unique())
    return pd.DataFrame({"customer_id": pd.array(active, dtype="string"), "churned": churned})
