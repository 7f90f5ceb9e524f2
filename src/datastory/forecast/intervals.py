"""Prediction ranges from the run's backtest errors: empirical quantiles per horizon step.

A model's own interval is only as good as its assumptions (Prophet's 80% band held about half the actuals
in backtests; on real daily series, 29-64%). So the range of every shipped forecast comes from how wrong the
chosen forecasts actually were in the rolling-origin backtest:

- each backtest point's error is scaled by its series' in-sample naive error (the MASE denominator of
  its fold), so errors of a large and a small series can be pooled: e = (y - yhat) / scale;
- every series of the run adds its chosen model's scaled errors to one pool, by horizon step (1 = the
  first period ahead);
- per fold and step h, the lower and upper bounds are conformal quantiles (the finite-sample rank) of that
  fold's errors at steps h - w .. h + w (w = horizon // 8, at least 1, widened until the window holds
  MIN_POINTS errors, so a single series is judged on its whole fold);
- robust to one bad fold: folds are counted from the latest, so they line up in time across series, and
  the bounds are the median of the per-fold bounds (the mean of two with two folds). A structural break, a
  lockdown or a one-off order inside one fold moves that fold's bounds, not the median;
- the band only widens with the step (the future does not get more certain further out), and always
  holds the point forecast;
- a series' range is yhat + scale x [lower(h), upper(h)], with its own scale from its whole history, and
  never below 0 for a series that never went negative.

A range for a series' total over the whole horizon (the report's "X to Y over the next 13 weeks") is not
the sum of the per-step ranges: that sum holds only when every step's error moves with every other's, and is
usually too wide. So the total's range is read the same way from the same backtest:

- per (series, fold) whose backtest has every step of the horizon, the scaled error of the total is the sum
  of its steps' errors (`totals`); every series of the run adds its totals to one pool;
- the totals of one fold are not independent: they share that period's shock (a good quarter for the whole
  company lifts every region's total, and a hierarchy's totals move together). So they count as Kish's
  effective number of totals, n / (1 + (m - 1) x icc), with m the totals per fold and icc the share of
  their variance that lies between folds (one-way ANOVA; `effective_totals`); a single fold is one period,
  one shock: one effective total;
- the bounds are conformal quantiles of all folds' totals pooled. Not the median of per-fold bounds, as for
  the steps: each fold's bounds sit around its own shock, and the variation between periods is exactly what
  a total over the next periods is exposed to;
- `min_totals` is the fewest totals whose conformal ranks are neither the smallest nor the largest one (20 at
  80%): with fewer, the range would be the most extreme total seen, not an 80% range. With fewer effective
  totals, the total's range is the sum of the per-step ranges (the widest the steps allow: every step wrong
  the same way) and is marked not backtested (`TotalBand.backtested`);
- a series' total range is sum(yhat) + scale x [lower, upper], holding the central estimate, never below 0 for
  a series that never went negative.

Coverage in metrics/forecast.json is measured out of sample: each backtest point is checked against the
band fitted without its fold, and each backtest total against the total's band fitted without its fold
(`total_coverage`). When no series could be backtested at all, the range is the one of a random
walk with the history's period-to-period changes (1.25 x mean absolute change ~ its standard deviation),
and the forecast's note says the range is not backtested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from ..errors import ModelError

POOL_COLUMNS = ["series_id", "fold", "step", "e"]
MAD_TO_SD = 1.25  # mean absolute deviation of a normal variable x this = its standard deviation
MIN_POINTS = 20   # errors a fold's bound at one step is read from, at least (or the whole fold)


@dataclass(frozen=True)
class Band:
    """Scaled error bounds per horizon step (index 0 = one period ahead)."""

    lower: np.ndarray
    upper: np.ndarray
    backtested: bool


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ModelError(f"interval level must be between 0 and 1, got {level!r}", column="interval_width",
                         fix="set interval_width in params/forecast.yaml to e.g. 0.8")


def window(horizon: int) -> int:
    """Steps pooled on each side of a step: horizon // 8, at least 1."""
    return max(1, horizon // 8)


def rank_quantiles(values: np.ndarray, level: float) -> tuple[float, float]:
    """(lower, upper) conformal bounds of `values` at central `level`: the ceil((n + 1)(1 + level) / 2)-th
    smallest for the upper, the mirror rank for the lower (the extreme ones when n is small)."""
    s = np.sort(np.asarray(values, dtype=float))
    n = len(s)
    if n == 0:
        return -math.inf, math.inf
    k_lo, k_hi = _ranks(n, level)
    return float(s[k_lo - 1]), float(s[k_hi - 1])


def _ranks(n: int, level: float) -> tuple[int, int]:
    """The 1-based ranks of the lower and upper conformal bounds among n sorted values."""
    return max(math.floor((n + 1) * (1 - level) / 2), 1), min(math.ceil((n + 1) * (1 + level) / 2), n)


def min_totals(level: float) -> int:
    """The fewest values whose conformal bounds at `level` are neither the smallest nor the largest (20 at 0.8)."""
    _check_level(level)
    n = 3
    while _ranks(n, level)[0] < 2 or _ranks(n, level)[1] > n - 1:
        n += 1
    return n


def _fold_bounds(pool: pd.DataFrame, horizon: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) per step from one fold's errors."""
    steps = pool["step"].to_numpy(int)
    e = pool["e"].to_numpy(float)
    lo, hi = np.empty(horizon), np.empty(horizon)
    for h in range(1, horizon + 1):
        w = window(horizon)
        near = np.abs(steps - h) <= w
        while near.sum() < MIN_POINTS and w < horizon:
            w += 1
            near = np.abs(steps - h) <= w
        lo[h - 1], hi[h - 1] = rank_quantiles(e[near], level)
    return lo, hi


def _combined(pool: pd.DataFrame, horizon: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The median over folds of each fold's bounds (the mean of two), widening with the step."""
    fits = [_fold_bounds(grp, horizon, level) for _, grp in pool.groupby("fold", sort=True)]
    pick = np.median if len(fits) != 2 else np.mean
    lo = pick(np.stack([f[0] for f in fits]), axis=0)
    hi = pick(np.stack([f[1] for f in fits]), axis=0)
    return np.minimum(np.minimum.accumulate(lo), 0.0), np.maximum(np.maximum.accumulate(hi), 0.0)


def fit(pool: pd.DataFrame, horizon: int, level: float) -> Band:
    """The band of scaled errors per step from the pooled backtest errors (the median of the folds' own
    bounds); a random walk's band when the pool is empty."""
    _check_level(level)
    missing = [c for c in POOL_COLUMNS if c not in pool.columns]
    if missing:
        raise ModelError(f"error pool: missing column(s) {', '.join(missing)}", column=missing[0])
    pool = pool[np.isfinite(pool["e"].to_numpy(float))]
    if pool.empty:
        z = NormalDist().inv_cdf(0.5 + level / 2)
        half = z * MAD_TO_SD * np.sqrt(np.arange(1, horizon + 1))
        return Band(-half, half, backtested=False)
    lo, hi = _combined(pool, horizon, level)
    return Band(lo, hi, backtested=True)


def apply(yhat: np.ndarray, scale: float, band: Band, nonneg: bool) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of a forecast: yhat + scale x the band per step; floored at 0 for a non-negative
    series. A series without a usable scale (a constant history) gets a band of zero width."""
    yhat = np.asarray(yhat, dtype=float)
    s = scale if np.isfinite(scale) and scale > 0 else 0.0
    h = len(yhat)
    lower, upper = yhat + s * band.lower[:h], yhat + s * band.upper[:h]
    if nonneg:
        lower, upper = np.maximum(lower, 0.0), np.maximum(upper, 0.0)
    return np.minimum(lower, yhat), np.maximum(upper, yhat)


def out_of_fold_inside(pool: pd.DataFrame, horizon: int, level: float) -> np.ndarray:
    """Per pool row: 1.0 if its error is inside the band fitted without its fold, else 0.0 (in pool order).
    With a single fold, the band is fitted on the other series instead; NaN where nothing else is known."""
    _check_level(level)
    e = pool["e"].to_numpy(float)
    steps = pool["step"].to_numpy(int)
    inside = np.full(len(pool), np.nan)
    key = "fold" if pool["fold"].nunique() >= 2 else "series_id"
    for value in pool[key].unique():
        held = (pool[key] == value).to_numpy()
        if not (~held).any():
            continue
        lo, hi = _combined(pool[~held], horizon, level)
        idx = np.clip(steps[held] - 1, 0, horizon - 1)
        inside[held] = ((e[held] >= lo[idx]) & (e[held] <= hi[idx])).astype(float)
    return inside


# ---------------------------------------------------------------- the total over the horizon
TOTAL_COLUMNS = ["series_id", "fold", "e"]
TOTAL_HOW = {"pooled": "backtested", "summed": "not backtested: per-period ranges summed"}


@dataclass(frozen=True)
class TotalBand:
    """Scaled error bounds of a series' total over the horizon; `how` is a TOTAL_HOW key, `n` the totals known,
    `effective` what they are worth as independent totals, `between` the share of their variance between folds."""

    lower: float
    upper: float
    how: str
    n: int
    effective: float = 0.0
    between: float = float("nan")

    @property
    def backtested(self) -> bool:
        return self.how != "summed"


def totals(pool: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Per (series_id, fold) whose errors cover every step 1..horizon: e = the sum of its steps' errors (the
    scaled error of the total), in (series_id, fold) order."""
    missing = [c for c in POOL_COLUMNS if c not in pool.columns]
    if missing:
        raise ModelError(f"error pool: missing column(s) {', '.join(missing)}", column=missing[0])
    e = pool["e"].to_numpy(float)
    steps = pool["step"].to_numpy(int)
    ok = np.isfinite(e) & (steps >= 1) & (steps <= horizon)
    p = pool.loc[ok, ["series_id", "fold", "step", "e"]].drop_duplicates(["series_id", "fold", "step"])
    g = p.groupby(["series_id", "fold"], sort=True)
    out = pd.DataFrame({"n": g["step"].size(), "e": g["e"].sum()}).reset_index()
    out = out[out["n"] == horizon]
    return out.loc[:, TOTAL_COLUMNS].reset_index(drop=True)


def effective_totals(tot: pd.DataFrame) -> tuple[float, float]:
    """(Kish's effective number of independent totals, the share of their variance between folds: icc).

    icc is the one-way ANOVA estimate (MSB - MSW) / (MSB + (n0 - 1) MSW), clipped to [0, 1]; the totals count
    n / (1 + (n0 - 1) icc), n0 the (balance-adjusted) totals per fold. One fold: one effective total."""
    e = tot["e"].to_numpy(float)
    n = len(e)
    if n == 0:
        return 0.0, float("nan")
    groups = [g.to_numpy(float) for _, g in tot.groupby("fold", sort=True)["e"]]
    k = len(groups)
    if k < 2:
        return 1.0, float("nan")
    sizes = np.array([len(g) for g in groups], dtype=float)
    means = np.array([g.mean() for g in groups])
    msb = float(np.sum(sizes * (means - e.mean()) ** 2) / (k - 1))
    msw = float(sum(np.sum((g - g.mean()) ** 2) for g in groups) / (n - k)) if n > k else 0.0
    n0 = (n - float(np.sum(sizes ** 2)) / n) / (k - 1)
    denom = msb + (n0 - 1) * msw
    icc = float(np.clip((msb - msw) / denom, 0.0, 1.0)) if denom > 0 else 0.0
    return n / (1 + (n0 - 1) * icc), icc


def fit_total(tot: pd.DataFrame, level: float, band: Band) -> TotalBand:
    """The band of the total's scaled error: conformal bounds of the run's totals (`totals`), all folds pooled;
    the sum of `band`'s per-step bounds, marked not backtested, when the totals are worth fewer than
    min_totals(level) independent ones (`effective_totals`)."""
    _check_level(level)
    e = tot["e"].to_numpy(float) if len(tot) else np.empty(0)
    n_eff, icc = effective_totals(tot) if len(tot) else (0.0, float("nan"))
    if n_eff < min_totals(level):
        return TotalBand(float(np.sum(band.lower)), float(np.sum(band.upper)), "summed", len(e), n_eff, icc)
    lo, hi = rank_quantiles(e, level)
    return TotalBand(min(lo, 0.0), max(hi, 0.0), "pooled", len(e), n_eff, icc)


def apply_total(yhat: np.ndarray, scale: float, tband: TotalBand, nonneg: bool) -> tuple[float, float, float]:
    """(lower, central, upper) of a forecast's total: sum(yhat) + scale x the total's band; floored at 0 for a
    non-negative series; a series without a usable scale gets a range of zero width."""
    central = float(np.sum(np.asarray(yhat, dtype=float)))
    s = scale if np.isfinite(scale) and scale > 0 else 0.0
    lo, hi = central + s * tband.lower, central + s * tband.upper
    if nonneg:
        lo, hi = max(lo, 0.0), max(hi, 0.0)
    return min(lo, central), central, max(hi, central)


def total_out_of_fold_inside(tot: pd.DataFrame, pool: pd.DataFrame, horizon: int, level: float) -> np.ndarray:
    """Per total (row of `tot`): 1.0 if it is inside the total's band fitted without its fold (without its series
    when there is a single fold), else 0.0; NaN where nothing else is known. Where the others hold too few
    effective totals, the band is their summed per-step bounds, as the run would ship it."""
    _check_level(level)
    inside = np.full(len(tot), np.nan)
    if tot.empty:
        return inside
    e = tot["e"].to_numpy(float)
    key = "fold" if tot["fold"].nunique() >= 2 else "series_id"
    for value in tot[key].unique():
        held = (tot[key] == value).to_numpy()
        others = pool[(pool[key] != value).to_numpy()]
        others = others[np.isfinite(others["e"].to_numpy(float))]
        if others.empty:
            continue
        tb = fit_total(tot[~held], level, fit(others, horizon, level))
        inside[held] = ((e[held] >= tb.lower) & (e[held] <= tb.upper)).astype(float)
    return inside
