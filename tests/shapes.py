"""Generators of the shapes real transaction logs and revenue series have, for the tests of every stage.

Real logs are short, gappy and partial; their revenue swings strongly with the season, breaks when a big
customer leaves, and a shop closes on known days. Each generator is seeded, so a test sees the same data
on every run, and returns the pipeline's own formats (transactions as ingest writes them; series as
forecast.build_series gives them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REGIONS_LINES = [("North", "Hardware"), ("North", "Software"), ("South", "Hardware"), ("South", "Software")]


def daily_log(start: str, days: int, seed: int = 3, level: float = 100.0, swing: float = 0.3,
              trend: float = 0.3, closed: tuple[str, ...] = (), break_at: float | None = None,
              break_factor: float = 0.4, end_hour: int = 9) -> pd.DataFrame:
    """Daily order lines for 2 regions x 2 lines: level x (1 + swing x yearly sine) x (1 + trend over the
    span) x lognormal noise. `closed`: MM-DD days with no line at all (the shop is shut). `break_at`: the
    share of the span after which revenue falls to `break_factor` of its level (a big customer left)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=days, freq="D")
    season = 1 + swing * np.sin(2 * np.pi * ts.dayofyear.to_numpy() / 365.25)
    growth = 1 + trend * np.arange(days) / days
    shift = np.where(np.arange(days) >= (break_at or 2.0) * days, break_factor, 1.0)
    open_day = ~ts.strftime("%m-%d").isin(list(closed))
    parts = []
    for i, (reg, line) in enumerate(REGIONS_LINES):
        amount = (level + 20 * i) * season * growth * shift * rng.lognormal(0, 0.2, days)
        parts.append(pd.DataFrame({"timestamp": ts[open_day] + pd.Timedelta(hours=end_hour), "region": reg,
                                   "product_line": line, "amount": amount[open_day].round(2)}))
    return pd.concat(parts, ignore_index=True)


def with_outage(tx: pd.DataFrame, first: str, last: str) -> pd.DataFrame:
    """The log without any line from day `first` to day `last`: an export with a hole."""
    ts = tx["timestamp"].dt.normalize()
    return tx[(ts < pd.Timestamp(first)) | (ts > pd.Timestamp(last))].reset_index(drop=True)


def seasonal_series(n: int, freq: str = "MS", start: str = "2020-01-01", level: float = 1000.0,
                    swing: float = 0.9, period: int = 12, noise: float = 0.1, seed: int = 0,
                    name: str = "s") -> pd.Series:
    """A strictly positive series whose season swings between (1 - swing) and (1 + swing) of its level."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = level * (1 + swing * np.sin(2 * np.pi * t / period)) * rng.lognormal(0, noise, n)
    return pd.Series(y, index=pd.date_range(start, periods=n, freq=freq), name=name)


def long_frame(series: dict[str, pd.Series]) -> pd.DataFrame:
    """The engine's series frame (series_id, region, product_line, ds, y) of named series."""
    out = pd.concat([pd.DataFrame({"series_id": sid, "region": sid, "product_line": "", "ds": y.index,
                                   "y": y.to_numpy(float)}) for sid, y in series.items()], ignore_index=True)
    return out.astype({"series_id": "string", "region": "string", "product_line": "string",
                       "ds": "datetime64[ns]", "y": "float64"})
