"""Outlier handling of a training history, before any model sees it (params/forecast.yaml `outliers`).

A one-off spike (a bulk order, a booking error) pulls every model: Prophet's trend, ETS's level, a
seasonal naive copy of last year. With `outliers: clip`, each point is compared with the centred rolling
median of its neighbours; a point further from it than `outlier_threshold` robust standard deviations
(1.4826 x the median absolute deviation of those residuals) is pulled back to that bound. Only training
data is changed: the backtest still scores against the actual values, so clipping must earn its place
like any model setting. `none` (the default) leaves the history as it is, because a real seasonal peak
(a December week) looks like a spike to a local median.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ModelError

METHODS = ("none", "clip")
HALF_WINDOW = {"D": 3, "W": 2, "M": 2, "Q": 2}   # neighbours on each side: a week of days, else 2 periods
MAD_TO_SD = 1.4826                              # MAD of normal data x this = its standard deviation


def clip(y: pd.Series, freq: str, threshold: float) -> tuple[pd.Series, int]:
    """The history with outlying points pulled back to median +- threshold robust SDs; and how many were."""
    if threshold <= 0:
        raise ModelError(f"outlier_threshold must be positive, got {threshold!r}", column="outlier_threshold",
                         fix="set outlier_threshold in params/forecast.yaml, e.g. 5")
    half = HALF_WINDOW.get(freq, 2)
    values = y.to_numpy(dtype=float)
    if len(values) < 2 * half + 1:
        return y, 0
    med = pd.Series(values).rolling(2 * half + 1, center=True, min_periods=half + 1).median().to_numpy()
    resid = values - med
    mad = float(np.nanmedian(np.abs(resid - np.nanmedian(resid))))
    if not np.isfinite(mad) or mad == 0:
        return y, 0
    bound = threshold * MAD_TO_SD * mad
    out = np.clip(values, med - bound, med + bound)
    changed = int(np.sum(out != values))
    return pd.Series(out, index=y.index, name=y.name), changed


def clean(y: pd.Series, freq: str, method: str, threshold: float) -> pd.Series:
    """The training history as the configured method leaves it."""
    if method == "none":
        return y
    if method == "clip":
        return clip(y, freq, threshold)[0]
    raise ModelError(f"unknown outlier method {method!r}; allowed: {', '.join(METHODS)}", column="outliers",
                     fix="set outliers: none or clip in params/forecast.yaml")
