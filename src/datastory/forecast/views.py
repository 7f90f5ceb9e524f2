"""Small diagnostic views of a forecast run for the stage notebook: tables and one plot."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import schema
from ..errors import DataError

ACCURACY_COLUMNS = ["region", "product_line", "model", "mase", "naive_mase", "smape", "naive_smape",
                    "coverage", "error"]


def _series(metrics: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(metrics, dict) or not isinstance(metrics.get("series"), dict):
        raise DataError("forecast metrics have no 'series' mapping", fix="pass ForecastResult.metrics")
    return metrics["series"]


def accuracy_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per series: selected model, its backtest MASE/sMAPE/coverage next to seasonal naive's."""
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
                        label="interval")
    ax.set_title(f"{series_id}: net revenue")
    ax.legend(loc="upper left", frameon=False)
    fig.tight_layout()
    return fig
