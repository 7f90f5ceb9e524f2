"""The "combination" candidate: an inverse-MASE weighted average of the best backtested models.

Averaging forecasts of different models is one of the most reliable accuracy gains in forecasting
(the M competitions): their errors partly cancel. Here, per series, the TOP_K base models with the
lowest backtest MASE are averaged with weights proportional to 1 / MASE, so a model that backtests
twice as well counts twice as much. The combination is then a candidate like any other: its backtest
is the same weighted average of the members' fold forecasts, scored by the same MASE, and selection
picks it only if it beats every single model there (ties go to the single model). Everything uses the
in-sample rolling-origin backtest only; the weights are fixed before the refit on the full history.

Members: the configured models plus EXTRA_MEMBERS (Theta), which is backtested whenever the
combination is listed: Theta's errors differ most from ETS's and seasonal naive's, which is what a
combination feeds on. (params/forecast.yaml cannot list "theta" on its own until the config's model list
allows it; here it is a candidate like any other, so it can also win a series alone.)

Selection: on Tourism the backtest picks the truly best model too rarely for a winner-takes-all choice
to beat the average (the "forecast combination puzzle"), so the combination is kept unless a single
model's backtest MASE is at least MARGIN (10%) lower than the combination's. Measured on Tourism
monthly (training part only for weights and choice): lowest-MASE selection 1.558, combination as a
plain candidate 1.495, with the 10% margin 1.447 (bench/forecast_accuracy.py has the current figures).

Intervals: the members' bounds are averaged with the same weights (a band shape; the engine rescales it
on the combination's own backtest errors, see intervals.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ModelError
from . import scoring

NAME = "combination"
TOP_K = 3
EXTRA_MEMBERS = ("theta",)
MARGIN = 0.10  # a single model must backtest this much better (relative MASE) to replace the combination
VALUES = ["yhat", "yhat_lower", "yhat_upper"]
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


def combine(frames: dict[str, pd.DataFrame], w: dict[str, float]) -> pd.DataFrame:
    """Weighted average of the members' yhat/yhat_lower/yhat_upper; all frames must share their rows.

    Works for backtest frames (model, fold, ds, ...; the result's model column is NAME) and for
    future frames indexed by ds.
    """
    if not w:
        raise ModelError("a combination needs at least 2 members with weights")
    absent = [name for name in w if name not in frames]
    if absent:
        raise ModelError(f"combination member(s) without a forecast: {', '.join(absent)}")
    first = frames[next(iter(w))]
    keys = [c for c in ("fold", "ds") if c in first.columns]
    for name in w:
        f = frames[name]
        same = f.index.equals(first.index) and all(f[k].reset_index(drop=True).equals(first[k].reset_index(
            drop=True)) for k in keys)
        if not same or len(f) != len(first):
            raise ModelError(f"combination member {name!r} forecasts other periods than {next(iter(w))!r}")
    out = first.copy()
    for col in VALUES:
        out[col] = sum(wt * frames[name][col].to_numpy(dtype=float) for name, wt in w.items())
    if "model" in out.columns:
        out["model"] = NAME
    return out


def candidates(models: list[str]) -> list[str]:
    """The single models to backtest for configured `models`: as listed, plus EXTRA_MEMBERS (not yet
    listed) when the combination is on; never the combination itself (it is built from the others)."""
    if not isinstance(models, (list, tuple)) or not all(isinstance(x, str) for x in models):
        raise ModelError(f"models must be a list of model names, got {models!r}", column="models")
    out = [x for x in models if x != NAME]
    if NAME in models:
        out += [x for x in EXTRA_MEMBERS if x not in out]
    return out


def select(scores: pd.DataFrame, margin: float = MARGIN) -> str:
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
