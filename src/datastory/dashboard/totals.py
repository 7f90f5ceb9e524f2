"""The forecast chart at the period the reader chose: a series' points summed to months, quarters or years.

Pure: points in, totals out. Each point stands for the days of its own period at the model's frequency (a week
runs Monday to Sunday, as `forecast.series` builds it). A point whose period straddles two target periods is
split between them by its days, as if its revenue were spread evenly over them (a week from Monday 28 April
to Sunday 4 May: 3/7 to April, 4/7 to May); months, quarters and years nest, so they are summed exactly.

A target period is shown only when every one of its days is covered: by history for the actual, by the
forecast for the forecast. A period partly in the history and partly ahead, or running past the horizon, is
left out rather than guessed. Ranges are never summed: the model's range is for one of its own periods, and
the range of a sum is not the sum of the ranges (the errors are not perfectly correlated), so a total carries
the point forecast only and the note sends the reader to the model's own grain for the range.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

# the pandas period of a point at each forecast frequency (as forecast.series.PERIOD), and of each chosen grain
SPAN = {"D": "D", "W": "W-SUN", "M": "M", "Q": "Q-DEC"}
TARGET = {"M": "M", "Q": "Q-DEC", "Y": "Y-DEC"}
RANK = {"D": 0, "W": 1, "M": 2, "Q": 3, "Y": 4}
UNIT = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year"}
ADJ = {"D": "daily", "W": "weekly", "M": "monthly", "Q": "quarterly", "Y": "yearly"}
PLURAL = {"D": "days", "W": "weeks", "M": "months", "Q": "quarters", "Y": "years"}
TOTAL = {"M": "Monthly", "Q": "Quarterly", "Y": "Yearly"}


def can_sum(freq: str, grain: str) -> bool:
    """True when points at `freq` can be totalled to `grain` (a strictly coarser period)."""
    return freq in SPAN and grain in TARGET and RANK[grain] > RANK[freq]


def to_grain(g: pd.DataFrame, freq: str, grain: str) -> list[list[Any]]:
    """[[period start (ISO), actual total or None, forecast total or None]] of one series' rows `g`
    (schema.FORECAST: ds, y, yhat, is_forecast) at `grain`, for the periods fully covered (see the module)."""
    if not can_sum(freq, grain):
        raise ValueError(f"cannot total {freq!r} points to {grain!r}")
    if g.empty:
        return []
    span = pd.PeriodIndex(g["ds"], freq=SPAN[freq])
    first, last = span.start_time.normalize(), span.end_time.normalize()
    n = ((last - first).days + 1).to_numpy()
    fc = g["is_forecast"].astype(bool).to_numpy()
    value = g["yhat"].where(fc, g["y"]).to_numpy(float)
    days = pd.DataFrame({
        "day": [d for a, k in zip(first, n, strict=True) for d in pd.date_range(a, periods=int(k), freq="D")],
        "share": (value / n).repeat(n), "fc": fc.repeat(n)})
    days["period"] = days["day"].dt.to_period(TARGET[grain])
    out = []
    for period, d in days.groupby("period", sort=True):
        full = (period.end_time.normalize() - period.start_time).days + 1
        hist, ahead = d[~d["fc"]], d[d["fc"]]
        actual = _total(hist, full)
        forecast = _total(ahead, full)
        if actual is not None or forecast is not None:
            out.append([period.start_time.date().isoformat(), actual, forecast])
    return out


def _total(d: pd.DataFrame, full: int) -> float | None:
    if len(d) != full or d["share"].isna().any():
        return None
    return round(float(d["share"].sum()), 2)


def note(freq: str, grain: str | None) -> str:
    """What the chart shows at `grain` (None: the model's own periods), in the reader's words."""
    unit = UNIT.get(freq, "period")
    if grain is None or not can_sum(freq, grain):
        own = f"Per {unit}, as the model forecasts, with its range shaded."
        return own if grain is None or grain == freq else (
            f"The forecast is made per {unit}, so it is shown per {unit}, with its range shaded.")
    split = f"; a {unit} that spans two {PLURAL[grain]} is split between them by its days" if freq == "W" else ""
    return (f"{TOTAL[grain]} totals of the {ADJ.get(freq, '')} forecast, for the {PLURAL[grain]} it covers "
            f"completely{split}; a {UNIT[grain]} partly actual and partly forecast is left out. No range is drawn: the range of a total is not the sum of the "
            f"{ADJ.get(freq, '')} ranges, so it is shown at the model's own grain: choose "
            f"\u201c{PLURAL.get(freq, 'periods').capitalize()}, with range\u201d.")
