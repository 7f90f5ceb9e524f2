"""Rolling-origin backtest and accuracy metrics.

With F folds (history.plan: as many as the history allows, at most the configured number), fold k
(0 = oldest) trains on everything before origin n - (F - k) * horizon and forecasts the next `horizon`
periods, so the folds tile the last F x horizon periods without overlap. A fold's forecast is scored the
way it would have shipped: multiplied back by the open share of its periods (calendar.py), and kept at or
above 0 for a series that never went negative. Periods without an actual (a gap that was interpolated or
left missing) are never scored.

Metrics per fold, then averaged over folds:
- MASE: mean absolute error / the mean absolute change between periods one season apart in that fold's
  training actuals (one period apart when fewer than two seasons are known: history.season_length).
  Below 1 beats that in-sample naive forecast.
- sMAPE: mean of 2|y - yhat| / (|y| + |yhat|), as a fraction (0..2); 0/0 counts as 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import ForecastParams
from ..errors import ModelError
from . import models as m
from .history import Prepared, season_length, ship

BACKTEST_COLUMNS = ["model", "fold", "step", "ds", "y", "yhat"]
FOLD_COLUMNS = ["model", "fold", "mase", "smape"]
SCORE_COLUMNS = ["model", "mase", "smape"]


def naive_scale(train: np.ndarray, freq: str) -> float:
    """Mean |y_t - y_{t-lag}| over the pairs of known values (lag: history.season_length); NaN if none."""
    train = np.asarray(train, dtype=float)
    lag = season_length(len(train), freq)
    if len(train) <= lag:
        return float("nan")
    diffs = np.abs(train[lag:] - train[:-lag])
    diffs = diffs[np.isfinite(diffs)]
    return float(np.mean(diffs)) if len(diffs) else float("nan")


def mase(y: np.ndarray, yhat: np.ndarray, scale: float) -> float:
    """Mean absolute scaled error; NaN when the scale is 0 or unknown (a constant training window)."""
    mae = float(np.mean(np.abs(np.asarray(y, dtype=float) - np.asarray(yhat, dtype=float))))
    if not np.isfinite(scale) or scale == 0:
        return 0.0 if mae == 0 else float("nan")
    return mae / scale


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE as a fraction in [0, 2]; a period where both are 0 counts as a perfect 0."""
    y, yhat = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    den = np.abs(y) + np.abs(yhat)
    num = 2 * np.abs(y - yhat)
    ratio = np.divide(num, den, out=np.zeros_like(num), where=den != 0)
    return float(np.mean(ratio))


def origins(n: int, folds: int, horizon: int) -> list[int]:
    """Position of each fold's first forecast period in a history of `n`, oldest fold first."""
    return [n - (folds - k) * horizon for k in range(folds)]


def fold_scales(prep: Prepared, cfg: ForecastParams) -> dict[int, float]:
    """Fold -> MASE denominator on that fold's training actuals."""
    actual = prep.actual.to_numpy(float)
    return {k: naive_scale(actual[:o], cfg.freq) for k, o in enumerate(origins(len(prep.actual), prep.plan.folds, cfg.horizon))}


def backtest(prep: Prepared, cfg: ForecastParams, name: str,
             fitters: dict[str, m.Fitter] | None = None) -> pd.DataFrame:
    """One model's forecast of every fold, long: model, fold, step, ds, y, yhat (periods with an actual).

    A model that raises propagates its error: the engine isolates failures per model.
    """
    fit = m.get(name, fitters)
    parts = []
    for k, origin in enumerate(origins(len(prep.actual), prep.plan.folds, cfg.horizon)):
        train = prep.model_y.iloc[:origin]
        test = prep.actual.iloc[origin:origin + cfg.horizon]
        fc = fit(train, cfg.horizon, cfg.freq, cfg)
        if len(fc) != len(test) or not fc.index.equals(test.index):
            raise ModelError(f"model {name!r} returned dates that do not match the fold's "
                             f"{cfg.horizon} future periods")
        share = prep.share.iloc[origin:origin + cfg.horizon].to_numpy(float)
        yhat = ship(fc.to_numpy(float), share, prep.nonneg)
        parts.append(pd.DataFrame({"model": name, "fold": k, "step": np.arange(1, cfg.horizon + 1),
                                   "ds": test.index, "y": test.to_numpy(float), "yhat": yhat}))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=BACKTEST_COLUMNS)
    return out[np.isfinite(out["y"].to_numpy(float))].reset_index(drop=True).loc[:, BACKTEST_COLUMNS]


def fold_scores(bt: pd.DataFrame, scales: dict[int, float]) -> pd.DataFrame:
    """Per model and fold: MASE (against that fold's scale) and sMAPE."""
    missing = [c for c in BACKTEST_COLUMNS if c not in bt.columns]
    if missing:
        raise ModelError(f"backtest frame: missing column(s) {', '.join(missing)}", column=missing[0],
                         fix="pass the frame returned by forecast.backtest")
    rows = []
    for (name, k), f in bt.groupby(["model", "fold"], sort=False):
        rows.append({"model": name, "fold": int(k), "mase": mase(f["y"], f["yhat"], scales.get(int(k), np.nan)),
                     "smape": smape(f["y"], f["yhat"])})
    return pd.DataFrame(rows, columns=FOLD_COLUMNS)


def score(folds: pd.DataFrame) -> pd.DataFrame:
    """Per model: the mean over folds of MASE and sMAPE (NaN folds skipped; NaN when every fold is)."""
    rows = []
    for name, grp in folds.groupby("model", sort=False):
        vals = grp[["mase", "smape"]].to_numpy(float)
        mean = [float(np.nanmean(vals[:, j])) if np.isfinite(vals[:, j]).any() else float("nan")
                for j in range(2)]
        rows.append({"model": name, "mase": mean[0], "smape": mean[1]})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def select(scores: pd.DataFrame) -> str:
    """The model with the lowest MASE; ties (and NaN MASE) resolved towards the simpler model."""
    if scores.empty:
        raise ModelError("no model produced a backtest, nothing to select from")
    order = scores.assign(
        _nan=scores["mase"].isna(),
        _mase=scores["mase"].round(9).fillna(np.inf),
        _rank=[m.COMPLEXITY.get(name, len(m.COMPLEXITY)) for name in scores["model"]],
    ).sort_values(["_nan", "_mase", "_rank"], kind="stable")
    return str(order["model"].iloc[0])
