"""Honest prediction intervals: each series' band rescaled from its own backtest errors (split conformal).

A model's own interval is only as good as its assumptions: Prophet's 80% band held ~48% of the actuals
in the backtest, and ETS's analytic band assumes the model is right. So the engine keeps each model's
band *shape* (its width per horizon step and its asymmetry) and rescales it per series by one factor
fitted on the rolling-origin backtest:

- score of a backtest point = how far the actual lies outside/inside the band, in units of the band's
  half-width on that side: (y - yhat) / (upper - yhat) above the forecast, (yhat - y) / (yhat - lower)
  below it (a point on the band's edge scores 1);
- factor = the conformal quantile of the scores: the ceil((n + 1) q)-th smallest of n, q = interval_width
  (the usual finite-sample correction, so small backtests err on the wide side); capped at MAX_FACTOR;
- calibrated band = yhat - factor (yhat - lower) .. yhat + factor (upper - yhat).

A band of zero width on a side (e.g. a constant history) cannot be scaled; there the absolute errors set
the half-width instead (same conformal quantile of |y - yhat|).

Backtest coverage of calibrated bands is measured out of sample, leave-one-fold-out: each fold's band is
calibrated on the other folds' scores only, so the coverage in metrics/forecast.json is not flattered by
fitting the factor on the points it is checked on.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import ModelError

MAX_FACTOR = 20.0  # a factor above this means the model's band is meaningless; cap the blow-up
TINY = 1e-12
REQUIRED = ("fold", "y", "yhat", "yhat_lower", "yhat_upper")


def _check(bt: pd.DataFrame, level: float) -> None:
    missing = [c for c in REQUIRED if c not in bt.columns]
    if missing:
        raise ModelError(f"backtest frame: missing column(s) {', '.join(missing)}", column=missing[0],
                         fix="pass one model's rows of the frame returned by forecast.backtest")
    if not 0 < level < 1:
        raise ModelError(f"interval level must be between 0 and 1, got {level!r}", column="interval_width",
                         fix="set interval_width in params/forecast.yaml to e.g. 0.8")
    if bt.empty:
        raise ModelError("no backtest points to calibrate the interval on")
    if "model" in bt.columns and bt["model"].nunique() > 1:
        raise ModelError("calibrate one model at a time: the backtest frame holds several models",
                         column="model")


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ceil((n + 1) level)-th smallest score (the largest one when that exceeds n); inf if none."""
    s = np.sort(np.asarray(scores, dtype=float)[np.isfinite(scores)])
    if len(s) == 0:
        return math.inf
    k = min(math.ceil((len(s) + 1) * level), len(s))
    return float(s[k - 1])


def scores(bt: pd.DataFrame) -> np.ndarray:
    """Each backtest point's distance from yhat in units of the band's half-width on its side.

    NaN where that side of the band has zero width (then the absolute error is used instead).
    """
    y, yhat = bt["y"].to_numpy(float), bt["yhat"].to_numpy(float)
    up = bt["yhat_upper"].to_numpy(float) - yhat
    down = yhat - bt["yhat_lower"].to_numpy(float)
    err = y - yhat
    side = np.where(err >= 0, up, down)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(side > TINY, np.abs(err) / side, np.nan)


def fit(bt: pd.DataFrame, level: float) -> tuple[float, float]:
    """(factor, absolute half-width) calibrated on one model's backtest rows at `level` (see module doc).

    The factor scales the band where it has width; the absolute half-width (the conformal quantile of
    |y - yhat|) is used where it has none.
    """
    _check(bt, level)
    s = scores(bt)
    factor = conformal_quantile(s, level) if np.isfinite(s).any() else 1.0
    factor = float(min(max(factor, 0.0), MAX_FACTOR))
    absolute = conformal_quantile(np.abs(bt["y"].to_numpy(float) - bt["yhat"].to_numpy(float)), level)
    return factor, float(absolute)


def apply(frame: pd.DataFrame, factor: float, absolute: float) -> pd.DataFrame:
    """`frame` (yhat, yhat_lower, yhat_upper) with its band rescaled by `factor` around yhat.

    A side of zero width gets the absolute half-width instead. yhat is unchanged.
    """
    if not (np.isfinite(factor) and factor >= 0 and np.isfinite(absolute) and absolute >= 0):
        raise ModelError(f"calibration factor {factor!r} / half-width {absolute!r} must be finite and >= 0")
    out = frame.copy()
    yhat = out["yhat"].to_numpy(float)
    up = out["yhat_upper"].to_numpy(float) - yhat
    down = yhat - out["yhat_lower"].to_numpy(float)
    out["yhat_upper"] = yhat + np.where(up > TINY, factor * up, absolute)
    out["yhat_lower"] = yhat - np.where(down > TINY, factor * down, absolute)
    return out


def cv_coverage(bt: pd.DataFrame, level: float) -> float:
    """Backtest coverage of calibrated bands, leave-one-fold-out (NaN with a single fold)."""
    _check(bt, level)
    folds = sorted(bt["fold"].unique())
    if len(folds) < 2:
        return float("nan")
    inside = []
    for k in folds:
        held = bt[bt["fold"] == k]
        band = apply(held, *fit(bt[bt["fold"] != k], level))
        y = held["y"].to_numpy(float)
        inside.append((y >= band["yhat_lower"].to_numpy(float)) & (y <= band["yhat_upper"].to_numpy(float)))
    return float(np.mean(np.concatenate(inside)))
