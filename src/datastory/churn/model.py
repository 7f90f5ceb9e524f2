"""Train and judge the churn model against simple baselines, on a time-based split.

Cutoffs (all midnight dates; `end` is the day after the last transaction):
- validation  c_valid = end - window_days: the latest cutoff whose label window is fully observed;
- training    c_valid - window_days - k * cutoff_step_days, k = 0..n_train_cutoffs-1, so no training
  label window overlaps the validation one (the model never learns from the period it is judged on);
- scoring     end, for every customer active in the lookback before it.

Model: HistGradientBoostingClassifier (random_state=seed, no early stopping, so no random split)
wrapped in CalibratedClassifierCV with isotonic calibration. Its CV split is GroupKFold over
customer_id (deterministic, and the same customer at two training cutoffs never lands on both
sides of a split). Below HGB_MIN_ROWS training rows (or HGB_MIN_MINORITY rows of the rarer class)
isotonic calibration would overfit, so a LogisticRegression (already well calibrated by its loss)
is used instead; `Fitted.kind` records which one ran.
Boosting runs single-threaded (threadpoolctl): on a shared 2-core machine OpenMP threads made
the fit ~8x slower (45 s vs 5.6 s on the 5000-customer sample), with identical results.

Baselines: recency alone (score = recency_days) and RFM (quintiles of recency, frequency, monetary
summed; risk = -RFM). For their Brier score both are mapped to probabilities by an isotonic fit on
the training cutoffs. Top-decile lift counts tied scores at the decile's edge by their expected share
(see top_decile_lift), so a coarse score such as RFM (13 distinct values) is neither helped nor hurt by
the row order.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..config import ChurnParams
from ..errors import ModelError
from .features import data_span, features_at, model_columns
from .labels import labels_at

MAX_FIT_THREADS = 4       # fit_pool: the stage has four fits to run at once
MIN_TRAIN_ROWS = 30       # fewer customer-cutoff rows than this: no model at all
HGB_MIN_ROWS = 1000       # below this, LogisticRegression instead of boosting + isotonic
HGB_MIN_MINORITY = 100    # ... and at least this many rows of the rarer class
CV_FOLDS = 3
N_BINS = 10


@dataclass(frozen=True)
class Cutoffs:
    train: tuple[pd.Timestamp, ...]   # newest first
    valid: pd.Timestamp
    score: pd.Timestamp


@dataclass(frozen=True)
class Fitted:
    kind: str                 # e.g. "hist_gradient_boosting+isotonic" or "logistic_regression"
    estimator: Any
    columns: tuple[str, ...]  # feature columns, in training order


def plan_cutoffs(tx: pd.DataFrame, cfg: ChurnParams) -> Cutoffs:
    """The validation, training and scoring cutoffs for this data; ModelError if history is too short."""
    return plan_cutoffs_in(*data_span(tx), cfg)


def plan_cutoffs_in(start: pd.Timestamp, end: pd.Timestamp, cfg: ChurnParams) -> Cutoffs:
    """plan_cutoffs for data from day `start` to `end` (exclusive, as data_span gives them)."""
    window = pd.Timedelta(days=cfg.window_days)
    valid = pd.Timestamp(cfg.cutoff) if cfg.cutoff else end - window
    if not start < valid <= end - window:
        last = (end - pd.Timedelta(days=1)).date()
        raise ModelError(
            f"cutoff {valid.date()} is outside the data: the data runs {start.date()} to {last}, and the "
            f"{cfg.window_days}-day window after the cutoff must end inside it",
            file="params/churn.yaml", column="cutoff",
            fix=f"pick a cutoff after {start.date()} and no later than {(end - window).date()}, or leave it empty")
    train = tuple(valid - window - pd.Timedelta(days=k * cfg.cutoff_step_days)
                  for k in range(cfg.n_train_cutoffs))
    have = (end - start).days
    need = 2 * cfg.window_days + (cfg.n_train_cutoffs - 1) * cfg.cutoff_step_days + 1
    if train[-1] <= start:
        raise ModelError(
            f"history too short: {have} days of data ({start.date()} to {(end - pd.Timedelta(days=1)).date()}), "
            f"but window_days={cfg.window_days} twice (validation + training labels) plus "
            f"{cfg.n_train_cutoffs - 1} x cutoff_step_days={cfg.cutoff_step_days} needs more than {need - 1}",
            file="params/churn.yaml", fix="lower window_days, n_train_cutoffs or cutoff_step_days")
    return Cutoffs(train=train, valid=valid, score=end)


def labelled_at(tx: pd.DataFrame, cutoff: pd.Timestamp, cfg: ChurnParams, product_lines: list[str],
                regions: list[str]) -> pd.DataFrame:
    """Features joined with labels at one cutoff, plus a `cutoff` column."""
    feats = features_at(tx, cutoff, cfg.lookback_days, product_lines=product_lines, regions=regions)
    return join_labels(feats, labels_at(tx, cutoff, cfg.window_days, cfg.lookback_days), cutoff)


def join_labels(feats: pd.DataFrame, labels: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """labelled_at's frame from one cutoff's features_at and labels_at frames."""
    out = feats.merge(labels, on="customer_id", how="left", validate="one_to_one")
    if out["churned"].isna().any():  # both use the same activity rule, so this is a bug, not bad data
        raise ModelError(f"features and labels disagree on who is active at {cutoff.date()}")
    return out.assign(cutoff=cutoff, churned=out["churned"].astype(bool))


def _matrix(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    return frame.loc[:, list(columns)].to_numpy(dtype="float64", na_value=np.nan)


def fit(train: pd.DataFrame, seed: int, columns: list[str] | None = None) -> Fitted:
    """A calibrated classifier for `train` (feature columns + bool `churned` + `customer_id`)."""
    cols = tuple(columns if columns is not None else model_columns(train))
    y = train["churned"].to_numpy(dtype=bool)
    n = len(y)
    if n < MIN_TRAIN_ROWS:
        raise ModelError(f"too few customers to train: found {n} customer-cutoff rows, need at least "
                         f"{MIN_TRAIN_ROWS}", file="params/churn.yaml",
                         fix="use more history (more n_train_cutoffs) or a longer lookback_days")
    n_pos = int(y.sum())
    if n_pos in (0, n):
        which = "churned" if n_pos == n else "stayed"
        fix = ("nobody bought again within the window: use a longer window_days, or check the data is complete"
               if n_pos == n else "everybody bought again within the window: use a shorter window_days")
        raise ModelError(f"only one class in the training labels: all {n} customer-cutoff rows {which}",
                         file="params/churn.yaml", fix=fix)
    X = _matrix(train, cols)
    if n >= HGB_MIN_ROWS and min(n_pos, n - n_pos) >= HGB_MIN_MINORITY:
        hgb = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                             min_samples_leaf=40, l2_regularization=1.0,
                                             early_stopping=False, random_state=seed)
        groups = train["customer_id"].astype(str).to_numpy()
        splits = list(GroupKFold(n_splits=CV_FOLDS).split(X, y, groups))
        with threadpool_limits(limits=1, user_api="openmp"):
            est = CalibratedClassifierCV(hgb, method="isotonic", cv=splits).fit(X, y)
        return Fitted("hist_gradient_boosting+isotonic", est, cols)
    est = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                        LogisticRegression(C=1.0, max_iter=2000))
    return Fitted("logistic_regression", est.fit(X, y), cols)


@contextlib.contextmanager
def fit_pool() -> Iterator[ThreadPoolExecutor]:
    """Threads for independent fits, one per CPU this process may use (at most MAX_FIT_THREADS). Boosting lets go
    of the GIL while it builds its histograms, so on 2 cores the stage's four fits (the model and its three
    out-of-fold copies) take about 0.8x the time they take one after the other; each fit gives the same model as
    alone. OpenMP stays at one thread for the whole block, so a fit's own limit, when it ends, restores one
    thread and not the process's default while another fit runs."""
    workers = max(1, min(MAX_FIT_THREADS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                         else os.cpu_count() or 1))
    with threadpool_limits(limits=1, user_api="openmp"), \
            ThreadPoolExecutor(workers, thread_name_prefix="churn-fit") as pool:
        yield pool


def predict(fitted: Fitted, frame: pd.DataFrame) -> np.ndarray:
    """Calibrated P(churn) for each row of a features frame (rounded to 1e-9 for stable bytes)."""
    missing = [c for c in fitted.columns if c not in frame.columns]
    if missing:
        raise ModelError(f"features frame lacks the model's column(s) {', '.join(missing)}",
                         fix="build features with the same product_lines/regions as in training")
    if len(frame) == 0:
        return np.zeros(0, dtype="float64")
    with threadpool_limits(limits=1, user_api="openmp"):
        prob = fitted.estimator.predict_proba(_matrix(frame, fitted.columns))[:, 1]
    return np.round(prob, 9)


# ---------------------------------------------------------------- baselines
def _quintile(values: pd.Series) -> pd.Series:
    """1..5 by rank (ties share their average rank): 5 = highest values."""
    if len(values) == 0:
        return values.astype("int64")
    rank = values.rank(method="average")
    return np.ceil(rank * 5 / len(values)).clip(1, 5).astype("int64")


def rfm_scores(features: pd.DataFrame) -> pd.DataFrame:
    """Quintile scores R (5 = most recent), F (5 = most orders), M (5 = most revenue) and rfm = R+F+M."""
    missing = [c for c in ("recency_days", "frequency", "monetary") if c not in features.columns]
    if missing:
        raise ModelError(f"RFM needs column(s) {', '.join(missing)}", fix="pass a features_at() frame")
    r = 6 - _quintile(features["recency_days"].astype("float64"))
    f = _quintile(features["frequency"].astype("float64"))
    m = _quintile(features["monetary"].astype("float64"))
    return pd.DataFrame({"r": r, "f": f, "m": m, "rfm": r + f + m}, index=features.index)


def baseline_scores(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Risk scores (higher = more likely to churn) of each baseline, per row of one cutoff's frame."""
    return {"recency": frame["recency_days"].to_numpy(dtype="float64"),
            "rfm": -rfm_scores(frame)["rfm"].to_numpy(dtype="float64")}


def fit_score_calibrator(score: np.ndarray, y: np.ndarray) -> IsotonicRegression:
    """Monotone map from a baseline's risk score to a probability, learnt on training rows."""
    return IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(
        np.asarray(score, dtype="float64"), np.asarray(y, dtype="float64"))


# ---------------------------------------------------------------- metrics
def top_decile_lift(y: np.ndarray, score: np.ndarray) -> float:
    """Churn rate among the 10% highest scores divided by the base rate; ties count fairly.

    The top decile is the ceil(10%) highest scores. When the scores tied at its edge straddle
    it, every order of the tied rows is equally likely, so the result is the EXPECTED lift under a
    random order of ties: rows strictly above the edge count fully, and the free places are filled
    with the tied rows' mean churn rate. So the value depends on neither row order nor an arbitrary
    tie-break (a coarse score such as recency in whole days has many ties; breaking them by row
    order, i.e. customer id, could flatter or penalise it by chance). NaN without churners.
    """
    y = np.asarray(y, dtype="float64")
    score = np.asarray(score, dtype="float64")
    if len(y) != len(score):
        raise ModelError(f"{len(score)} scores for {len(y)} labels", fix="score the validation frame's rows")
    if np.isnan(score).any():
        raise ModelError("scores contain NaN, so the top decile is undefined", fix="score every row")
    if len(y) == 0 or y.mean() == 0:
        return float("nan")
    n_top = max(1, math.ceil(0.1 * len(y)))
    edge = np.sort(score)[::-1][n_top - 1]
    above, tied = score > edge, score == edge
    churners = y[above].sum() + (n_top - int(above.sum())) * y[tied].mean()
    return float(churners / n_top / y.mean())


def calibration_table(y: np.ndarray, prob: np.ndarray, bins: int = N_BINS) -> list[dict[str, Any]]:
    """Equal-width probability bins: mean predicted vs observed churn rate and count (NaN when empty)."""
    y = np.asarray(y, dtype="float64")
    prob = np.asarray(prob, dtype="float64")
    which = np.minimum((prob * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        count = int(mask.sum())
        rows.append({"lower": b / bins, "upper": (b + 1) / bins, "count": count,
                     "mean_predicted": float(prob[mask].mean()) if count else float("nan"),
                     "observed": float(y[mask].mean()) if count else float("nan")})
    return rows


def evaluate(y: np.ndarray, score: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """ROC AUC and PR AUC and lift of a risk score, Brier of its probabilities; NaN if one class only."""
    y = np.asarray(y, dtype=bool)
    one_class = y.all() or not y.any()
    return {"roc_auc": float("nan") if one_class else float(roc_auc_score(y, score)),
            "pr_auc": float("nan") if one_class else float(average_precision_score(y, score)),
            "brier": float(brier_score_loss(y, prob)) if len(y) else float("nan"),
            "top_decile_lift": top_decile_lift(y, score)}


def validate(fitted: Fitted, train: pd.DataFrame, valid: pd.DataFrame,
             prob: np.ndarray | None = None) -> dict[str, Any]:
    """Model and baselines side by side on the validation frame: metrics and calibration tables. `prob`: the
    model's probabilities on `valid` when the caller has them (predict(fitted, valid))."""
    y_valid = valid["churned"].to_numpy(dtype=bool)
    prob = predict(fitted, valid) if prob is None else prob
    metrics: dict[str, Any] = {"model": evaluate(y_valid, prob, prob), "baselines": {}}
    calibration = {"model": calibration_table(y_valid, prob)}
    train_scores = [baseline_scores(part) for _, part in train.groupby("cutoff", sort=True)]
    y_train = np.concatenate([part["churned"].to_numpy(dtype=bool)
                              for _, part in train.groupby("cutoff", sort=True)])
    for name, score in baseline_scores(valid).items():
        cal = fit_score_calibrator(np.concatenate([s[name] for s in train_scores]), y_train)
        base_prob = cal.predict(score)
        metrics["baselines"][name] = evaluate(y_valid, score, base_prob)
        calibration[name] = calibration_table(y_valid, base_prob)
    metrics["calibration"] = calibration
    return metrics
