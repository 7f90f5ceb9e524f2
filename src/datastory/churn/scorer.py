"""The scorer the call lists use: the model, a baseline, or a blend, whichever ranks best on training data.

A boosted model does not always beat RFM on a real log (on one retailer's full log RFM's ROC AUC was 0.740
against the model's 0.730), and a list built on the weaker scorer calls the wrong people. So four
scorers compete, simplest first (a tie goes to the simpler):
- recency: days since the last purchase;
- rfm: minus the RFM quintile sum (recency, frequency, monetary);
- model: the calibrated classifier of model.py;
- blend: the mean of the model's probability and RFM's.
The choice is made on the training cutoffs only, never on the validation cutoff the metrics report:
out-of-fold ROC AUC with GroupKFold over customers (a customer's rows at several cutoffs stay on one side),
the classifier refit on each fold's other rows and the baselines' probability maps (isotonic) too. The
validation cutoff then reports every scorer, the chosen one included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold

from ..errors import ModelError
from .model import CV_FOLDS, Fitted, baseline_scores, fit, fit_pool, fit_score_calibrator, predict

SCORERS = ("recency", "rfm", "model", "blend")


@dataclass(frozen=True)
class Scorer:
    name: str                          # one of SCORERS
    fitted: Fitted                     # the classifier (fitted on all training rows; used by model and blend)
    calibrators: dict[str, Any]        # baseline name -> isotonic map from its score to a probability
    oof_auc: dict[str, float]          # scorer -> out-of-fold ROC AUC on the training rows


def _baseline_scores(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each baseline's risk score for a frame of one or several cutoffs (quintiles within each cutoff)."""
    if "cutoff" not in frame.columns:
        return baseline_scores(frame)
    out = {"recency": np.empty(len(frame)), "rfm": np.empty(len(frame))}
    for _, idx in frame.groupby("cutoff", sort=True).indices.items():
        part = baseline_scores(frame.iloc[idx])
        for name in out:
            out[name][idx] = part[name]
    return out


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def _fold_model(train: pd.DataFrame, tr: np.ndarray, va: np.ndarray, seed: int) -> np.ndarray | None:
    """The classifier fitted on rows `tr`, its probabilities for rows `va`; None where the fold is too small for
    it (it cannot compete there)."""
    try:
        return predict(fit(train.iloc[tr], seed), train.iloc[va])
    except ModelError:
        return None


def out_of_fold_auc(train: pd.DataFrame, seed: int, pool: Executor | None = None) -> dict[str, float]:
    """Out-of-fold ROC AUC of every scorer on the training rows (GroupKFold over customer_id); the folds'
    classifiers fit at once in `pool` (default: model.fit_pool)."""
    y = train["churned"].to_numpy(dtype=bool)
    groups = train["customer_id"].astype(str).to_numpy()
    n_groups = len(np.unique(groups))
    if n_groups < CV_FOLDS:
        return {name: float("nan") for name in SCORERS}
    base = _baseline_scores(train)
    prob = {name: np.full(len(train), np.nan) for name in ("model", "rfm", "recency")}
    with contextlib.ExitStack() as stack:
        pool = pool or stack.enter_context(fit_pool())
        models = []
        for tr, va in GroupKFold(n_splits=CV_FOLDS).split(train, y, groups):
            if y[tr].all() or not y[tr].any():
                continue
            models.append((va, pool.submit(_fold_model, train, tr, va, seed)))
            for name in ("recency", "rfm"):
                prob[name][va] = fit_score_calibrator(base[name][tr], y[tr]).predict(base[name][va])
        for va, model in models:
            if (got := model.result()) is not None:
                prob["model"][va] = got
    prob["blend"] = (prob["model"] + prob["rfm"]) / 2
    out = {}
    for name in SCORERS:
        ok = ~np.isnan(prob[name])
        # the baselines' raw scores rank exactly as they do; the maps only give them probabilities
        score = base[name] if name in base else prob[name]
        out[name] = _auc(y[ok], score[ok]) if ok.all() else float("nan")
    return out


def choose(oof_auc: dict[str, float]) -> str:
    """The scorer with the highest out-of-fold AUC (ties, and NaN, towards the simpler one)."""
    order = sorted(SCORERS, key=lambda s: (-round(oof_auc.get(s, np.nan), 9)
                                           if np.isfinite(oof_auc.get(s, np.nan)) else np.inf,
                                           SCORERS.index(s)))
    return order[0]


def fit_scorer(train: pd.DataFrame, seed: int, fitted: Fitted | None = None) -> Scorer:
    """Choose the scorer on the training rows and fit it (and the baselines' maps) on all of them. Without
    `fitted`, the classifier fits on all rows at the same time as its out-of-fold copies (model.fit_pool)."""
    y = train["churned"].to_numpy(dtype=bool)
    base = _baseline_scores(train)
    calibrators = {name: fit_score_calibrator(base[name], y) for name in ("recency", "rfm")}
    with fit_pool() as pool:
        whole = None if fitted is not None else pool.submit(fit, train, seed)
        oof = out_of_fold_auc(train, seed, pool)
        fitted = fitted if whole is None else whole.result()
    return Scorer(choose(oof), fitted, calibrators, oof)


def probabilities(scorer: Scorer, frame: pd.DataFrame, name: str | None = None,
                  predict_fn: Callable[[Fitted, pd.DataFrame], np.ndarray] = predict) -> np.ndarray:
    """P(churn) per row of one cutoff's features frame from scorer `name` (default: the chosen one).

    `predict_fn` computes the classifier's probabilities (model.predict, or remote.predictor's on a cluster)."""
    name = name or scorer.name
    if name not in SCORERS:
        raise ModelError(f"unknown scorer {name!r}; allowed: {', '.join(SCORERS)}")
    if len(frame) == 0:
        return np.zeros(0)
    if name == "model":
        return predict_fn(scorer.fitted, frame)
    base = baseline_scores(frame)
    rfm = np.round(scorer.calibrators["rfm"].predict(base["rfm"]), 9)
    if name == "blend":
        return np.round((predict_fn(scorer.fitted, frame) + rfm) / 2, 9)
    return rfm if name == "rfm" else np.round(scorer.calibrators["recency"].predict(base["recency"]), 9)


def risk_score(scorer: Scorer, frame: pd.DataFrame, name: str) -> np.ndarray:
    """The ranking score of scorer `name` (the baselines' raw risk, the others' probability)."""
    base = baseline_scores(frame) if name in ("recency", "rfm") else None
    return base[name] if base is not None else probabilities(scorer, frame, name)
