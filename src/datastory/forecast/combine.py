"""The "combination" candidate, and the selection rule, both decided on the run's own backtests.

Combination: averaging forecasts of different models is one of the most reliable accuracy gains in
forecasting (the M competitions): their errors partly cancel. Per series, the TOP_K single models with
the lowest backtest MASE are averaged with weights proportional to 1 / MASE. TOP_K is 5, so with the
default candidates every model takes part: on the validation split of Tourism monthly, Tourism quarterly
and the daily sets (bench/forecast_accuracy.py --split validation) that beat averaging the best three
(MASE 1.704 vs 1.728, 1.760 vs 1.804, 1.283 vs 1.301). Its backtest is the same weighted average of the
members' fold forecasts, scored by the same MASE.

Selection: the combination is kept unless a single model's backtest MASE is at least a margin lower than
the combination's; otherwise the lowest MASE wins (ties to the simpler model). The margin is not a
constant tuned anywhere: each run chooses it from MARGINS on its own training backtests
(`choose_margin`). For every series with two or more folds, each margin selects a model on all folds but
the latest (weights included), and that choice is scored on the latest fold; the margin whose choices
score the lowest mean MASE over the run's series wins (ties to the smaller margin). With no series of
two folds there is nothing to choose on, and the margin is 0: plain lowest MASE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ModelError
from . import scoring

NAME = "combination"
TOP_K = 5
MARGINS = (0.0, 0.05, 0.10, 0.20, 0.40)
MIN_MASE = 1e-9  # a perfect backtest (MASE 0) must not give an infinite weight


def weights(scores: pd.DataFrame, top_k: int = TOP_K) -> dict[str, float]:
    """Member model -> weight (summing to 1) for the `top_k` finite-MASE models; {} if fewer than 2.

    Ties in MASE keep the order of `scores` (the engine lists models as configured).
    """
    missing = [c for c in ("model", "mase") if c not in scores.columns]
    if missing:
        raise ModelError(f"scores frame: missing column(s) {', '.join(missing)}", column=missing[0],
                         fix="pass the frame returned by forecast.score")
    if not isinstance(top_k, int) or top_k < 2:
        raise ModelError(f"a combination needs top_k >= 2 models, got {top_k!r}")
    ok = scores[np.isfinite(scores["mase"].to_numpy(dtype=float)) & (scores["model"] != NAME)]
    ok = ok.sort_values("mase", kind="stable").head(top_k)
    if len(ok) < 2:
        return {}
    inv = 1.0 / np.maximum(ok["mase"].to_numpy(dtype=float), MIN_MASE)
    return {str(name): float(w) for name, w in zip(ok["model"], inv / inv.sum(), strict=True)}


def combine_backtest(bt: pd.DataFrame, w: dict[str, float]) -> pd.DataFrame:
    """The weighted average of the members' rows of a backtest frame (model column NAME)."""
    if not w:
        raise ModelError("a combination needs at least 2 members with weights")
    parts = {name: bt[bt["model"] == name].reset_index(drop=True) for name in w}
    first = parts[next(iter(w))]
    for name, part in parts.items():
        if part.empty or not part[["fold", "ds"]].equals(first[["fold", "ds"]]):
            raise ModelError(f"combination member {name!r} forecasts other periods than {next(iter(w))!r}")
    out = first.copy()
    out["yhat"] = sum(wt * parts[name]["yhat"].to_numpy(float) for name, wt in w.items())
    out["model"] = NAME
    return out


def combine_future(futures: dict[str, pd.Series], w: dict[str, float]) -> pd.Series:
    """The weighted average of the members' future forecasts (all on the same dates)."""
    absent = [name for name in w if name not in futures]
    if not w or absent:
        raise ModelError(f"combination member(s) without a forecast: {', '.join(absent) or 'none given'}")
    first = futures[next(iter(w))]
    out = sum(wt * futures[name].reindex(first.index).to_numpy(float) for name, wt in w.items())
    return pd.Series(out, index=first.index, name="yhat")


def candidates(models: list[str]) -> list[str]:
    """The single models to backtest for configured `models`: as listed, never the combination itself."""
    if not isinstance(models, (list, tuple)) or not all(isinstance(x, str) for x in models):
        raise ModelError(f"models must be a list of model names, got {models!r}", column="models")
    return [x for x in models if x != NAME]


def select(scores: pd.DataFrame, margin: float) -> str:
    """The combination if it was scored and no single model's MASE is below (1 - margin) x its MASE;
    else the lowest-MASE model (scoring.select: ties and NaN towards the simpler model)."""
    if not 0 <= margin < 1:
        raise ModelError(f"margin must be in [0, 1), got {margin!r}")
    if scores.empty:
        raise ModelError("no model produced a backtest, nothing to select from")
    singles = scores[scores["model"] != NAME]
    combo = scores.loc[scores["model"] == NAME, "mase"].to_numpy(dtype=float)
    if len(combo) and np.isfinite(combo[0]):
        best = singles["mase"].to_numpy(dtype=float)
        best = best[np.isfinite(best)]
        if not len(best) or best.min() >= (1 - margin) * combo[0]:
            return NAME
    return scoring.select(singles if len(singles) else scores)


def scored(bt: pd.DataFrame, scales: dict[int, float], folds: list[int], with_combination: bool) -> tuple[
        pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """(per model and fold scores, mean scores, combination weights) over `folds` of a series' backtest.

    The combination (when asked for and two members have a finite MASE) is added as one more model.
    """
    part = bt[bt["fold"].isin(folds)]
    per_fold = scoring.fold_scores(part, scales)
    means = scoring.score(per_fold)
    w = weights(means) if with_combination and len(means) else {}
    if w:
        combo_folds = scoring.fold_scores(combine_backtest(part, w), scales)
        per_fold = pd.concat([per_fold, combo_folds], ignore_index=True)
        means = pd.concat([means, scoring.score(combo_folds)], ignore_index=True)
    return per_fold, means, w


def holdout_outcomes(bt: pd.DataFrame, scales: dict[int, float], with_combination: bool,
                     margins: tuple[float, ...] = MARGINS) -> dict[float, float] | None:
    """Margin -> MASE on a series' latest fold of the model each margin selects on its earlier folds.

    None when the series has fewer than two folds, or its latest fold cannot be scored.
    """
    folds = sorted(int(k) for k in bt["fold"].unique()) if len(bt) else []
    if len(folds) < 2:
        return None
    last, early = folds[-1], folds[:-1]
    _, early_means, w = scored(bt, scales, early, with_combination)
    if early_means.empty:
        return None
    latest = bt[bt["fold"] == last]
    latest_means = scoring.score(scoring.fold_scores(latest, scales))
    if w:
        latest_means = pd.concat([latest_means, scoring.score(scoring.fold_scores(
            combine_backtest(latest, w), scales))], ignore_index=True)
    outcome = dict(zip(latest_means["model"], latest_means["mase"], strict=True))
    out = {mg: float(outcome.get(select(early_means, mg), np.nan)) for mg in margins}
    return out if all(np.isfinite(v) for v in out.values()) else None


def choose_margin(outcomes: list[dict[float, float] | None], margins: tuple[float, ...] = MARGINS) -> tuple[
        float, dict[float, float]]:
    """(the margin with the lowest mean hold-out MASE over series, that mean per margin); 0 with none."""
    usable = [o for o in outcomes if o]
    if not usable:
        return 0.0, {}
    mean = {mg: float(np.mean([o[mg] for o in usable])) for mg in margins}
    best = min(margins, key=lambda mg: (round(mean[mg], 9), mg))
    return best, mean
