"""Known closures: the days a business is shut, declared in params/forecast.yaml `closures`.

A shop that closes at Christmas sells nothing on those days, whatever its history says. One year of
history cannot teach a model that (yearly seasonality needs two), so the engine applies the calendar
itself, the way trading-day adjustment does:

- each period's *open share* is its open days over its days (a week with Christmas Day closed: 6/7);
- models train on revenue per open share (revenue / share), so a closure does not drag the level down,
  and a fully closed period is a missing value, never a 0 to learn from;
- forecasts (and their bounds) are multiplied back by the future periods' open share, so a closed day
  forecasts 0 and a week with two closed days 5/7 of a normal week.

A closure is written `MM-DD` (every year), `YYYY-MM-DD` (that day) or `YYYY-MM-DD..YYYY-MM-DD` (a range,
both ends included). Public holidays the shop stays open on are not closures: Prophet learns their effect
from `prophet.country_holidays`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# parsing the closures is part of validating params/forecast.yaml, so it lives beside config
from ..closures import FIX, check  # noqa: F401  (re-exported)
from ..closures import parse as _parse
from .series import OFFSET, PERIOD, check_freq


def closed_days(closures: list[str], start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Every closed day between `start` and `end` (both included), sorted and unique."""
    first, last = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    days: set[pd.Timestamp] = set()
    for item in closures:
        kind, value = _parse(item)
        if kind == "yearly":
            month, day = value  # type: ignore[misc]
            for year in range(first.year, last.year + 1):
                try:
                    days.add(pd.Timestamp(year=year, month=month, day=day))
                except ValueError:  # 29 February in a common year
                    continue
        else:
            a, b = value  # type: ignore[misc]
            days.update(pd.date_range(a, b, freq="D"))
    return pd.DatetimeIndex(sorted(d for d in days if first <= d <= last), dtype="datetime64[ns]")


def open_share(periods: pd.DatetimeIndex, freq: str, closures: list[str]) -> np.ndarray:
    """Per period start in `periods`: the share of its days that are open (1.0 without closures)."""
    check_freq(freq)
    idx = pd.DatetimeIndex(periods)
    if not closures or len(idx) == 0:
        return np.ones(len(idx))
    starts = idx.to_period(PERIOD[freq]).start_time.normalize()
    ends = idx.to_period(PERIOD[freq]).end_time.normalize()
    closed = closed_days(closures, starts.min(), ends.max())
    if len(closed) == 0:
        return np.ones(len(idx))
    length = ((ends - starts).days + 1).to_numpy(dtype=float)
    label = closed.to_period(PERIOD[freq]).start_time.normalize()
    shut = pd.Series(1.0, index=label).groupby(level=0).sum()
    n_closed = shut.reindex(starts).fillna(0.0).to_numpy()
    return (length - n_closed) / length


def future_share(last: pd.Timestamp, horizon: int, freq: str, closures: list[str]) -> np.ndarray:
    """The open share of the `horizon` periods after period start `last`."""
    idx = pd.date_range(pd.Timestamp(last), periods=horizon + 1, freq=OFFSET[freq])[1:]
    return open_share(idx, freq, closures)
