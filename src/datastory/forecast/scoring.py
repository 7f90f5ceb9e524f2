"""Rolling-origin backtest, accuracy metrics and model selection.

Fold k (0 = oldest) trains on everything before origin n - (folds - k) * horizon and forecasts the
next `horizon` periods, so the folds tile the last folds x horizon periods without overlap.

Metrics per fold, then averaged over folds:
- MASE: mean absolute error / in-sample MAE of the seasonal naive forecast on that fold's training
  window (lag = one season, or 1 when the window is not longer than a season). < 1 beats naive.
- sMAPE: mean of 2|y - yhat| / (|y| + |yhat|), as a fraction (0..2); 0/0 counts as 0.
- coverage: share of actuals inside [yhat_lower, yhat_upper].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import ForecastParams
from ..errors import ModelError
from . import models as m

BACKTEST_COLUMNS = ["model", "fold", "ds", "y", "yhat", "yhat_lower", "yhat_upper"]
SCORE_COLUMNS = ["model", "mase", "smape", "coverage"]


def min_length(cfg: ForecastParams) -> int:
    """Periods a series needs for cfg.folds folds of cfg.horizon plus a minimal training window."""
    return cfg.folds * cfg.horizon + m.MIN_HISTORY


def check_length(n: int, cfg: ForecastParams, what: str = "the series") -> None:
    """A ModelError if `n` periods are too few to backtest with cfg."""
    need = min_length(cfg)
    if n < need:
        raise ModelError(f"{what} has {n} {cfg.freq} periods; a backtest of {cfg.folds} fold(s) x horizon "
                         f"{cfg.horizon} needs at least {need}", column="horizon",
                         fix="lower folds or horizon in params/forecast.yaml, use a finer freq, "
                             "or load more history")


def naive_scale(train: np.ndarray, freq: str) -> float:
    """In-sample MAE of the seasonal naive forecast on `train` (the MASE denominator)."""
    lag = m.season_length(len(train), freq)
    if len(train) <= lag:
        raise ModelError(f"training window of {len(train)} period(s) is too short to scale MASE")
    return float(np.mean(np.abs(train[lag:] - train[:-lag])))


def mase(y: np.ndarray, yhat: np.ndarray, scale: float) -> float:
    """Mean absolute scaled error; NaN when the scale is 0 (a constant training window)."""
    mae = float(np.mean(np.abs(np.asarray(y) - np.asarray(yhat))))
    if scale == 0:
        return 0.0 if mae == 0 else float("nan")
    return mae / scale


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE as a fraction in [0, 2]; a period where both are 0 counts as a perfect 0."""
    y, yhat = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    den = np.abs(y) + np.abs(yhat)
    num = 2 * np.abs(y - yhat)
    ratio = np.divide(num, den, out=np.zeros_like(num), where=den != 0)
    return float(np.mean(ratio))


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside their closed prediction interval."""
    y = np.asarray(y, dtype=float)
    return float(np.mean((y >= np.asarray(lower)) & (y <= np.asarray(upper))))


def backtest(series_y: pd.Series, cfg: ForecastParams, models: list[str] | None = None,
             fitters: dict[str, m.Fitter] | None = None) -> pd.DataFrame:
    """Forecasts of every fold by each model (default cfg.models), long: model, fold, ds, y, yhat, lower, upper.

    A model that raises propagates its error: the engine isolates failures per model.
    """
    y = m.check_train(series_y, cfg.horizon, cfg.freq)
    check_length(len(y), cfg, f"series {series_y.name!r}" if series_y.name else "the series")
    n = len(y)
    parts = []
    for name in models or cfg.models:
        fit = m.get(name, fitters)
        for k in range(cfg.folds):
            origin = n - (cfg.folds - k) * cfg.horizon
            train, test = y.iloc[:origin], y.iloc[origin:origin + cfg.horizon]
            fc = fit(train, cfg.horizon, cfg.freq, cfg)
            if len(fc) != len(test) or not fc.index.equals(test.index):
                raise ModelError(f"model {name!r} returned dates that do not match the fold's "
                                 f"{cfg.horizon} future periods")
            parts.append(pd.DataFrame({"model": name, "fold": k, "ds": test.index, "y": test.to_numpy(),
                                       "yhat": fc["yhat"].to_numpy(), "yhat_lower": fc["yhat_lower"].to_numpy(),
                                       "yhat_upper": fc["yhat_upper"].to_numpy()}))
    return pd.concat(parts, ignore_index=True).loc[:, BACKTEST_COLUMNS]


def score(bt: pd.DataFrame, series_y: pd.Series, cfg: ForecastParams) -> pd.DataFrame:
    """Per model: MASE, sMAPE and coverage, each the mean over folds of `bt` (from backtest)."""
    missing = [c for c in BACKTEST_COLUMNS if c not in bt.columns]
    if missing:
        raise ModelError(f"backtest frame: missing column(s) {', '.join(missing)}", column=missing[0],
                         fix="pass the frame returned by forecast.backtest")
    y = m.check_train(series_y, cfg.horizon, cfg.freq)
    pos = {ds: i for i, ds in enumerate(y.index)}
    rows = []
    for name, grp in bt.groupby("model", sort=False):
        per_fold = []
        for _, f in grp.groupby("fold", sort=True):
            origin = pos.get(f["ds"].iloc[0])
            if origin is None:
                raise ModelError(f"backtest date {f['ds'].iloc[0]} is not in the series", column="ds")
            scale = naive_scale(y.to_numpy()[:origin], cfg.freq)
            per_fold.append((mase(f["y"], f["yhat"], scale), smape(f["y"], f["yhat"]),
                             coverage(f["y"], f["yhat_lower"], f["yhat_upper"])))
        arr = np.array(per_fold, dtype=float)
        mean = [float(np.nanmean(arr[:, j])) if not np.isnan(arr[:, j]).all() else float("nan") for j in range(3)]
        rows.append({"model": name, "mase": mean[0], "smape": mean[1], "coverage": mean[2]})
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
