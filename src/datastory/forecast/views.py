"""Small diagnostic views of a forecast run for the stage notebook: tables and one plot."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import schema
from ..errors import DataError

PLOT_COLUMNS = ["ds", "value", "line"]
ACTUAL = "actual"
ACCURACY_COLUMNS = ["region", "product_line", "model", "status", "history", "folds", "mase", "naive_mase",
                    "baseline", "smape", "naive_smape", "coverage", "notes", "error"]


def _series(metrics: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(metrics, dict) or not isinstance(metrics.get("series"), dict):
        raise DataError("forecast metrics have no 'series' mapping", fix="pass ForecastResult.metrics")
    return metrics["series"]


def accuracy_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per series: what its history allowed (status, periods, folds), the selected model, its backtest
    MASE/sMAPE next to the baseline's, the out-of-fold coverage of its range, and its notes."""
    rows = _series(metrics)
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=ACCURACY_COLUMNS)
    table["beats_naive"] = table["mase"] < table["naive_mase"]
    table.index.name = "series_id"
    return table.sort_index()


def wins_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """How many series each model won, most wins first (ties by name)."""
    _series(metrics)
    wins = pd.Series(metrics.get("wins", {}), name="series_won", dtype="int64")
    wins.index.name = "model"
    return wins.reset_index().sort_values(["series_won", "model"], ascending=[False, True],
                                          kind="stable").reset_index(drop=True)


def plot_series(frame: pd.DataFrame, series_id: str = schema.ALL, ax: Any = None) -> Any:
    """History line plus forecast line and interval band of one series; returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    part = frame[frame["series_id"] == series_id]
    if part.empty:
        known = ", ".join(sorted(frame["series_id"].astype(str).unique())[:5])
        raise DataError(f"no series {series_id!r} in the forecast frame (known: {known}...)",
                        column="series_id", fix="pick a series_id from the frame")
    hist, fut = part[~part["is_forecast"]], part[part["is_forecast"]]
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 3.5))
    else:
        fig = ax.figure
    ax.plot(hist["ds"], hist["y"], color="#333333", lw=1.2, label="actual")
    if len(fut):
        ax.plot(fut["ds"], fut["yhat"], color="#1f77b4", lw=1.6, label=f"forecast ({fut['model'].iloc[0]})")
        ax.fill_between(fut["ds"], fut["yhat_lower"], fut["yhat_upper"], color="#1f77b4", alpha=0.25,
                        label="range")
    ax.set_title(f"{series_id}: net revenue")
    ax.legend(loc="upper left", frameon=False)
    fig.tight_layout()
    return fig


def backtest_plot(frame: pd.DataFrame, backtest: pd.DataFrame, series_id: str = schema.ALL) -> pd.DataFrame:
    """One series' backtest as a long table a line chart reads directly: ds, value, line.

    line "actual" holds the series' actuals over the backtest span and as many periods before it (for
    context); every other line is one model's backtest forecast (its folds tile the span without overlap,
    so each model is one line). This is the file `dvc plots show` draws for the forecast stage: x = ds,
    y = value, one colour per line. `frame` is ForecastResult.frame, `backtest` ForecastResult.backtest.
    """
    missing = [c for c in ("series_id", "ds", "y", "is_forecast") if c not in frame.columns] + [
        c for c in ("series_id", "model", "ds", "yhat") if c not in backtest.columns]
    if missing:
        raise DataError(f"forecast frame or backtest: missing column(s) {', '.join(missing)}",
                        column=missing[0], fix="pass ForecastResult.frame and ForecastResult.backtest")
    hist = frame[(frame["series_id"] == series_id) & ~frame["is_forecast"]].sort_values("ds")
    bt = backtest[backtest["series_id"] == series_id]
    if hist.empty or bt.empty:
        known = ", ".join(sorted(backtest["series_id"].astype(str).unique())[:5])
        raise DataError(f"no backtest of series {series_id!r} (known: {known})", column="series_id",
                        fix="pick a series_id that was forecast")
    start = pd.Timestamp(bt["ds"].min())
    span = int((hist["ds"] >= start).sum())
    first = max(0, int((hist["ds"] < start).sum()) - span)
    actual = hist.iloc[first:]
    parts = [pd.DataFrame({"ds": actual["ds"].to_numpy(), "value": actual["y"].to_numpy(float), "line": ACTUAL})]
    for name in sorted(bt["model"].astype(str).unique()):
        one = bt[bt["model"] == name].sort_values("ds", kind="stable")
        parts.append(pd.DataFrame({"ds": one["ds"].to_numpy(), "value": one["yhat"].to_numpy(float),
                                   "line": name}))
    out = pd.concat(parts, ignore_index=True)
    out["ds"] = pd.to_datetime(out["ds"])
    return out.loc[:, PLOT_COLUMNS]
