"""Churn stage: point-in-time features, labels, a calibrated model judged against baselines, a red list.

`run(tx, cfg)` is the pure core (transactions + ChurnParams in, scores + metrics out); `run_file(path, cfg)`
gives the same from the transactions file in bounded memory (history.py: both read through one history
interface, so they share the modelling code); `open_history` + `run_history` are what the stage runs, from the
file when ingest streams (streaming.streams, the one rule). `save(result, paths)` is the I/O edge writing
paths.churn_scores and paths.churn_metrics atomically.
Newly red / cleared compare the red list at the data end with the one `compare_days` earlier.
See model.py for the cutoffs and the calibration choice. With DASK_SCHEDULER_ADDRESS set, the customers are
scored on that cluster's workers (remote.py); training stays here, and the scores are the same numbers.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import cluster, config, io, streaming
from .. import metrics as metrics_io
from ..config import ChurnParams, DataParams, Paths
from ..errors import DataError, ModelError
from . import sampling
from .features import features_at
from .history import FromFile, History, InMemory, open_file
from .labels import labels_at
from .model import evaluate, join_labels, plan_cutoffs_in, predict, validate
from .redlist import CALL, SECOND, WATCH, WIN_BACK, changes, floors_from, reasons, reasons_for, red_list
from .remote import Predictor, predictor
from .scorer import SCORERS, Scorer, fit_scorer, probabilities, risk_score

__all__ = ["ChurnResult", "run", "run_file", "run_history", "open_history", "run_stage", "save", "metrics_table", "calibration_plot", "features_at", "labels_at",
           "red_list", "changes", "reasons", "reasons_for", "risk_score", "list_quality", "list_table"]

METRIC_NAMES = ("roc_auc", "pr_auc", "brier", "top_decile_lift")


@dataclass(frozen=True)
class ChurnResult:
    scores: pd.DataFrame        # schema.CHURN_SCORES at the data end
    metrics: dict[str, Any]     # the full validation record (paths.churn_metrics; its headline is paths.churn_headline)
    compared: pd.DataFrame      # the same model's red list compare_days earlier (for newly red / cleared)


def _iso(ts: pd.Timestamp) -> str:
    return ts.date().isoformat()


def run(tx: pd.DataFrame, cfg: ChurnParams) -> ChurnResult:
    """Train on the stacked training cutoffs, choose the scorer on them, validate every scorer and the call
    lists at c_valid, then score everyone active at the data end (on the cluster at DASK_SCHEDULER_ADDRESS
    when it is set: connected first, so an unreachable one stops the stage before any training)."""
    return run_history(InMemory(tx), cfg)


def run_file(path: str | os.PathLike, cfg: ChurnParams, per_shard: int | None = None) -> ChurnResult:
    """run(io.read_parquet(path), cfg), the same result, without loading the file: features shard of customers
    by shard (`per_shard` lines each, default shards.rows_per_shard()), the rest from DuckDB."""
    return run_history(open_file(path, per_shard), cfg)


def run_history(history: History, cfg: ChurnParams) -> ChurnResult:
    """`run` on a history (history.py): checked first, then the cluster connected when one is set."""
    history.check()
    address = cluster.address()
    with (cluster.connect(address) if address else contextlib.nullcontext()) as client:
        return _run(history, cfg, predictor(client))


def open_history(paths: Paths, data: DataParams, root: str | os.PathLike | None = None) -> History:
    """The stage's history of paths.transactions: read from the file when ingest streams (params/data.yaml
    engine, streaming.streams), else loaded whole."""
    if not paths.transactions.is_file():
        raise DataError("transactions not found", file=str(paths.transactions),
                        fix="run the ingest stage first (`dvc repro ingest`)")
    if streaming.streams(data, root):
        return FromFile(paths.transactions)
    return InMemory(io.read_parquet(paths.transactions))


def run_stage(paths: Paths, cfg: ChurnParams, data: DataParams, root: str | os.PathLike | None = None) -> ChurnResult:
    """The stage's result: run_history of open_history."""
    return run_history(open_history(paths, data, root), cfg)


def _labelled(history: History, feats: pd.DataFrame, cutoff: pd.Timestamp, cfg: ChurnParams) -> pd.DataFrame:
    """model.labelled_at from a history, given its features at `cutoff`."""
    return join_labels(feats, history.labels(cutoff, cfg.window_days, cfg.lookback_days), cutoff)


def _run(history: History, cfg: ChurnParams, predict_fn: Predictor) -> ChurnResult:
    cut = plan_cutoffs_in(*history.span, cfg)
    product_lines, regions = history.product_lines, history.regions
    compare_date = cut.score - pd.Timedelta(days=cfg.compare_days)
    # past max_train_customers, the model learns from a seeded sample of the customers active at the training
    # cutoffs; the validation, scoring and comparison cutoffs keep every customer
    learners = history.active(cut.train[-1] - pd.Timedelta(days=cfg.lookback_days), cut.train[0])
    train_share = sampling.share(learners, cfg.max_train_customers)
    pick = sampling.picker(train_share, cfg.seed)
    # every cutoff's features at once: a history read from the file splits it into shards once, not per cutoff
    *at_train, at_valid, at_score, at_compare = history.features_many(
        [*cut.train, cut.valid, cut.score, compare_date], cfg.lookback_days, product_lines, regions,
        picks=[pick] * len(cut.train) + [None] * 3)
    train = pd.concat([_labelled(history, f, c, cfg) for f, c in zip(at_train, cut.train, strict=True)],
                      ignore_index=True)
    valid = _labelled(history, at_valid, cut.valid, cfg)
    if valid.empty:
        raise ModelError(f"no customer bought in the {cfg.lookback_days} days before the validation cutoff "
                         f"{_iso(cut.valid)}, so the model cannot be judged", file="params/churn.yaml",
                         fix="use a longer lookback_days, or data that reaches closer to today")
    scorer = fit_scorer(train, cfg.seed)   # the classifier on every training row, and the scorer chosen out of fold
    fitted = scorer.fitted
    floors = floors_from(train)
    p_valid = predict(fitted, valid)    # the classifier's probabilities at the validation cutoff, once

    def at_valid(_fitted: Any, _frame: pd.DataFrame) -> Any:
        return p_valid

    judged = validate(fitted, train, valid, prob=p_valid)
    y_valid = valid["churned"].to_numpy(dtype=bool)
    blend = probabilities(scorer, valid, "blend", predict_fn=at_valid)
    judged["baselines"]["blend"] = evaluate(y_valid, blend, blend)
    lists = {name: list_quality(valid, probabilities(scorer, valid, name, predict_fn=at_valid), cfg, floors)
             for name in SCORERS}
    scores, delay = _score_at(at_score, scorer, cfg, floors, predict_fn)
    compared, _ = _score_at(at_compare, scorer, cfg, floors, predict_fn)
    diff = changes(compared, scores)
    scores = scores.assign(newly_red=scores["customer_id"].isin(diff["newly_red"]))
    metrics: dict[str, Any] = {
        "window_days": cfg.window_days, "lookback_days": cfg.lookback_days,
        "capacity": cfg.capacity, "second_purchase_capacity": cfg.second_purchase_capacity,
        "cutoffs_train": [_iso(c) for c in cut.train], "cutoff_valid": _iso(cut.valid),
        "score_date": _iso(cut.score),
        "n_train": len(train), "n_valid": len(valid),
        "train_customers": int(train["customer_id"].nunique()), "train_share": train_share,
        "base_rate": float(valid["churned"].mean()) if len(valid) else float("nan"),
        "n_scored": len(scores), "n_red": int(scores["red"].sum()),
        "n_watch": int((scores["status"] == WATCH).sum()),
        "n_red_win_back": int((scores["red"] & (scores["list"] == WIN_BACK)).sum()),
        "n_red_second_purchase": int((scores["red"] & (scores["list"] == SECOND)).sum()),
        "floors": floors, "repeat_delay_days": delay,
        # revenue at risk: the red list's (the customers to call), as every report and email says it;
        # the expected loss over every scored customer has its own name
        "revenue_at_risk": float(scores.loc[scores["red"], "revenue_at_risk"].sum()),
        "expected_loss_scored": float(scores["revenue_at_risk"].sum()),
        "churn_rate": float(scores["probability"].mean()) if len(scores) else float("nan"),
        "model_kind": fitted.kind,
        "scorer": scorer.name, "scorer_oof_auc": scorer.oof_auc,
        "call_list_validation": lists,
        "compare_date": _iso(compare_date),
        "newly_red": len(diff["newly_red"]), "cleared": len(diff["cleared"]),
        **judged,
    }
    return ChurnResult(scores=scores, metrics=metrics, compared=compared)


def list_quality(valid: pd.DataFrame, prob: Any, cfg: ChurnParams, floors: dict[str, float]) -> dict[str, Any]:
    """How the call lists built from `prob` at the validation cutoff turned out: how many were called, and
    the share of them who really did not buy within the window (precision), next to the base rate."""
    listed = red_list(valid, prob, cfg, floors)
    churned = valid.set_index("customer_id")["churned"]
    called = listed.loc[listed["status"] == CALL, "customer_id"]
    n = len(called)
    precision = float(churned.reindex(called).mean()) if n else float("nan")
    base = float(churned.mean()) if len(churned) else float("nan")
    return {"n_call": n, "precision": precision, "base_rate": base,
            "lift": precision / base if n and base else float("nan")}


def _score_at(current: pd.DataFrame, scorer: Scorer, cfg: ChurnParams, floors: dict[str, float],
              predict_fn: Predictor) -> tuple[pd.DataFrame, float]:
    """(the call lists the chosen scorer gives from the features `current` at a date, the data known before it;
    the repeat buyers' median first-to-second purchase delay then, the second-purchase list's clock)."""
    delay = float(current["repeat_delay_days"].iloc[0]) if len(current) else float("nan")
    return red_list(current, probabilities(scorer, current, predict_fn=predict_fn), cfg, floors), delay


def save(result: ChurnResult, paths: Paths) -> dict[str, Any]:
    """Write scores and metrics atomically; returns the metrics written.

    "Changes since the last run" (newly_red, cleared) are computed in `run` against the red list the
    same model gives `compare_days` before the data end, not against a previous file: `dvc repro`
    deletes outputs before a stage runs, and a pack must not depend on what happened to be on disk.
    """
    io.write_parquet(result.scores, paths.churn_scores)
    metrics_io.save_churn(result.metrics, paths)
    return result.metrics


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Model and baselines side by side: one row per metric, one column per scorer."""
    try:
        scorers = {"model": metrics["model"], **metrics["baselines"]}
    except KeyError as exc:
        raise DataError(f"churn metrics lack the key {exc.args[0]!r}", file=config.where("churn_metrics"),
                        fix="pass the metrics of churn.run()") from None
    return pd.DataFrame({name: [m.get(k) for k in METRIC_NAMES] for name, m in scorers.items()},
                        index=pd.Index(METRIC_NAMES, name="metric"), dtype="float64")


def list_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """The call lists each scorer would have made at the validation cutoff: how many were called, the share
    who really did not buy (precision), the base rate and the lift; the chosen scorer marked."""
    lists = metrics.get("call_list_validation")
    if not lists:
        raise DataError("churn metrics hold no call_list_validation", file=config.where("churn_metrics"),
                        fix="pass the metrics of churn.run()")
    table = pd.DataFrame.from_dict(lists, orient="index")
    table.index.name = "scorer"
    return table.assign(chosen=table.index == metrics.get("scorer"))


def calibration_plot(metrics: dict[str, Any]) -> Any:
    """Reliability diagram of every scorer's calibration table (a matplotlib Figure)."""
    import matplotlib.pyplot as plt

    tables = metrics.get("calibration")
    if not tables:
        raise DataError("churn metrics hold no calibration tables", file=config.where("churn_metrics"),
                        fix="pass the metrics of churn.run()")
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, rows in tables.items():
        pts = [(r["mean_predicted"], r["observed"]) for r in rows
               if r["count"] and r["mean_predicted"] is not None and r["observed"] is not None]
        ax.plot([p for p, _ in pts], [o for _, o in pts], marker="o", label=name)
    ax.set(xlabel="mean predicted probability", ylabel="observed churn rate", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig
