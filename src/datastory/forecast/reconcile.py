"""Coherent forecasts: product lines add up to their region, and regions to the company, in every period.

Each series is forecast on its own, so a region and the sum of its product lines disagree. Reconciliation
replaces the future forecasts of a hierarchy (company -> region -> region / product line) by the nearest
coherent set: ỹ = S G ŷ, where S sums the bottom series (the leaves) up the tree and G maps every base
forecast ŷ to bottom forecasts. The methods (G):

- `bottom_up`: the leaves' own forecasts, summed up. Nothing is estimated.
- `ols`, `wls_struct`, `wls_var`, `mint_shrink`: the trace-minimising projection (Wickramasuriya, Athanasopoulos
  and Hyndman 2019) ỹ = ŷ - W C' (C W C')⁻¹ C ŷ, with C = [I, -A] the constraints "each aggregate equals the
  sum of its leaves" and W the covariance of the base forecasts' errors, taken as the identity (`ols`), the
  number of leaves under each series (`wls_struct`), the errors' variances (`wls_var`) or their full covariance
  shrunk towards its diagonal (`mint_shrink`, the Schäfer-Strimmer intensity as in R's hts). The errors are the
  rolling-origin backtest errors of each series' chosen forecast, which the engine already has.

Choice (`reconcile: auto` in params/forecast.yaml): every method reconciles the run's own backtest forecasts,
fold by fold, with W estimated on the other folds (on the fold itself when there is only one), and the method
with the lowest mean MASE (the mean over levels of each level's mean) wins; ties go to the simpler method. It
is measured on the families whose members all have a backtest (a line too young for one is left out of the
measurement, not of the reconciliation). With no backtest to measure on, it is `bottom_up`: the leaves keep the
forecasts whose accuracy the run reports. A tree with a member without backtest errors is reconciled by
`wls_struct` where the method would need them (metrics name the tree's top under families.structural).

Ragged hierarchies: a family (a parent and all of its children) is reconciled only when the parent and every
child have a forecast on the same future dates. A parent whose family is incomplete (a child too short to
forecast, every model failed, other dates) is a leaf of the tree above it, and its children keep their own
forecasts; metrics name every family left out and why. A tree with a single node is left as it is.

Non-negative: in a tree whose series never went negative, the projection's negative leaf values are set to 0
and the tree is summed up again from its leaves (set-negative-to-zero then bottom-up), so the result is both
coherent and never below 0; every aggregate is the exact sum of its leaves (up to float rounding).

Intervals are per series: each range is shifted by its own forecast's adjustment (its width kept), floored at
0 for a non-negative series and always holding the forecast. Ranges do not add up (quantiles do not add), and
their coverage is the one the engine measured for the base forecasts. The range of a series' total over the
horizon is made afterwards, around the reconciled forecast's sum (engine.with_totals).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import schema
from ..errors import ModelError

METHODS = ("bottom_up", "ols", "wls_struct", "wls_var", "mint_shrink")   # simplest first: ties go left
CHOICES = ("auto", "none", *METHODS)
NEEDS_ERRORS = ("wls_var", "mint_shrink")
LEVELS = ("company", "region", "product_line")
BACKTEST_COLUMNS = ["ds", "step", "fold", "y", "yhat", "scale"]   # fold: counted from the latest (0)
RIDGE = 1e-9   # relative to the mean variance: keeps C W C' invertible when a series never erred


def level(region: str, product_line: str) -> str:
    """'company', 'region' or 'product_line' for a series' labels (schema.ALL marks a total)."""
    if region == schema.ALL and product_line == schema.ALL:
        return "company"
    return "region" if product_line == schema.ALL else "product_line"


def parents(labels: dict[str, tuple[str, str]]) -> dict[str, str | None]:
    """series_id -> its parent's series_id (None for the company, or where the parent is not a series).

    `labels`: series_id -> (region, product_line), as build_series names them. A table without the totals'
    labels (forecast-file) has no hierarchy: every series is its own root.
    """
    if not isinstance(labels, dict) or not all(isinstance(v, tuple) and len(v) == 2 for v in labels.values()):
        raise ModelError("hierarchy labels must map series_id -> (region, product_line)",
                         fix="pass the labels of forecast.build_series' frame")
    by_label = {(str(r), str(p)): sid for sid, (r, p) in labels.items()}
    out: dict[str, str | None] = {}
    for sid, (reg, line) in labels.items():
        lv = level(str(reg), str(line))
        above = None if lv == "company" else (schema.ALL, schema.ALL) if lv == "region" else (str(reg), schema.ALL)
        out[sid] = by_label.get(above) if above else None
    return out


@dataclass(frozen=True)
class Tree:
    """Nodes of one coherent tree: aggregates (top-down) then leaves, and the summing matrix S."""

    ids: tuple[str, ...]
    n_agg: int
    S: np.ndarray          # len(ids) x leaves: row i sums the leaves under ids[i]

    @property
    def leaves(self) -> tuple[str, ...]:
        return self.ids[self.n_agg:]


def trees(parent: dict[str, str | None], dates: dict[str, pd.DatetimeIndex]) -> tuple[list[Tree], dict[str, str]]:
    """The trees of complete families, and parent -> why its family is left out (or 'reconciled').

    `dates`: series_id -> future dates of its forecast, for the series that have one.
    """
    unknown = sorted(set(dates) - set(parent))
    if unknown:
        raise ModelError(f"forecast of series {unknown[0]!r} has no place in the hierarchy",
                         fix="pass the labels of every forecast series")
    children: dict[str, list[str]] = {}
    for sid, p in sorted(parent.items()):
        if p is not None:
            children.setdefault(p, []).append(sid)
    status: dict[str, str] = {}
    for p, kids in sorted(children.items()):
        if p not in dates:
            status[p] = "left out: no usable forecast for the total"
            continue
        absent = [k for k in kids if k not in dates]
        other = [k for k in kids if k in dates and not dates[k].equals(dates[p])]
        status[p] = (f"left out: no usable forecast for {', '.join(absent)}" if absent else
                     f"left out: {', '.join(other)} forecast other dates" if other else "reconciled")
    complete = {p for p, s in status.items() if s == "reconciled"}
    out = []
    for root in sorted(complete):
        if parent[root] in complete:
            continue
        aggs, leaves, todo = [], [], [root]
        while todo:
            node = todo.pop(0)
            if node in complete:
                aggs.append(node)
                todo.extend(children[node])
            else:
                leaves.append(node)
        leaves.sort()
        ids = tuple(aggs + leaves)
        under = {leaf: {leaf} for leaf in leaves}
        for node in reversed(aggs):
            under[node] = set().union(*(under[k] for k in children[node]))
        S = np.array([[1.0 if leaf in under[node] else 0.0 for leaf in leaves] for node in ids])
        out.append(Tree(ids, len(aggs), S))
    return out, status


def shrunk_covariance(errors: np.ndarray) -> tuple[np.ndarray, float]:
    """(covariance of `errors` (points x series, not centred) shrunk towards its diagonal, the intensity)."""
    e = np.asarray(errors, dtype=float)
    if e.ndim != 2 or e.shape[0] < 1 or not np.isfinite(e).all():
        raise ModelError("errors must be a finite points x series matrix with at least one point")
    n = e.shape[0]
    cov = e.T @ e / n
    sd = np.sqrt(np.diag(cov))
    if n < 2 or not (sd > 0).all():
        return np.diag(np.diag(cov)), 1.0
    xs = e / sd
    corr = cov / np.outer(sd, sd)
    v = (xs ** 2).T @ (xs ** 2) - (xs.T @ xs) ** 2 / n
    v /= n * (n - 1)
    np.fill_diagonal(v, 0.0)
    d = corr ** 2
    np.fill_diagonal(d, 0.0)
    lam = float(np.clip(v.sum() / d.sum(), 0.0, 1.0)) if d.sum() > 0 else 1.0
    target = np.diag(np.diag(cov))
    return lam * target + (1 - lam) * cov, lam


def error_weights(method: str, tree: Tree, errors: np.ndarray | None = None) -> np.ndarray | None:
    """W of a method (None for bottom_up); `errors` (points x series in tree order) for wls_var, mint_shrink."""
    check_method(method)
    if method == "bottom_up":
        return None
    n = len(tree.ids)
    if method == "ols":
        return np.eye(n)
    if method == "wls_struct":
        return np.diag(tree.S.sum(axis=1))
    if errors is None or np.asarray(errors).shape[1:] != (n,):
        raise ModelError(f"method {method!r} needs the backtest errors of every series of the tree",
                         fix="use bottom_up or wls_struct where no backtest is known")
    cov, _ = shrunk_covariance(errors)
    return np.diag(np.diag(cov)) if method == "wls_var" else cov


def check_method(method: str, allowed: tuple[str, ...] = METHODS) -> str:
    """`method` itself if allowed, else a ModelError naming the allowed ones."""
    if method not in allowed:
        raise ModelError(f"unknown reconciliation method {method!r}; allowed: {', '.join(allowed)}",
                         column="reconcile", fix=f"set reconcile in params/forecast.yaml to one of {', '.join(CHOICES)}")
    return method


def reconcile(yhat: np.ndarray, tree: Tree, W: np.ndarray | None, nonneg: bool) -> np.ndarray:
    """Coherent forecasts (series x periods, tree order) of base forecasts `yhat`; W None means bottom-up."""
    y = np.asarray(yhat, dtype=float)
    n = len(tree.ids)
    if y.ndim != 2 or y.shape[0] != n or not np.isfinite(y).all():
        raise ModelError(f"base forecasts must be a finite {n} x periods matrix (one row per series of the tree), "
                         f"got shape {y.shape}")
    if W is None:
        leaves = y[tree.n_agg:]
    else:
        W = np.asarray(W, dtype=float)
        if W.shape != (n, n) or not np.isfinite(W).all():
            raise ModelError(f"error covariance must be a finite {n} x {n} matrix, got shape {W.shape}")
        mean_var = float(np.mean(np.diag(W)))
        W = W + np.eye(n) * RIDGE * (mean_var if mean_var > 0 else 1.0)
        C = np.hstack([np.eye(tree.n_agg), -tree.S[:tree.n_agg]])
        leaves = (y - W @ C.T @ np.linalg.solve(C @ W @ C.T, C @ y))[tree.n_agg:]
    if nonneg:
        leaves = np.maximum(leaves, 0.0)
    return tree.S @ leaves


def shift_bounds(yhat: np.ndarray, new: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                 nonneg: bool) -> tuple[np.ndarray, np.ndarray]:
    """A range moved by its forecast's adjustment (new - yhat), width kept; >= 0 if nonneg; holding `new`."""
    arrays = [np.asarray(a, dtype=float) for a in (yhat, new, lower, upper)]
    if len({a.shape for a in arrays}) != 1:
        raise ModelError("forecast, reconciled forecast and range bounds must have the same shape")
    yhat, new, lower, upper = arrays
    lo, hi = lower + (new - yhat), upper + (new - yhat)
    if nonneg:
        lo, hi = np.maximum(lo, 0.0), np.maximum(hi, 0.0)
    return np.minimum(lo, new), np.maximum(hi, new)


def aligned(tree: Tree, bt: dict[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(y, yhat, scale: series x points; fold per point) on the backtest points every series of the tree has.

    `bt`: series_id -> frame with BACKTEST_COLUMNS. A point is a (ds, step) pair: the same fold of every series.
    """
    frames = []
    for sid in tree.ids:
        f = bt.get(sid)
        if f is None:
            return (np.empty((len(tree.ids), 0)),) * 3 + (np.empty(0, dtype=int),)
        missing = [c for c in BACKTEST_COLUMNS if c not in f.columns]
        if missing:
            raise ModelError(f"backtest of {sid!r}: missing column(s) {', '.join(missing)}", column=missing[0])
        frames.append(f.set_index(["ds", "step"]).loc[:, ["fold", "y", "yhat", "scale"]])
    keys = frames[0].index
    for f in frames[1:]:
        keys = keys.intersection(f.index)
    keys = keys.sort_values()
    parts = [f.loc[keys] for f in frames]
    stack = {c: np.vstack([p[c].to_numpy(float) for p in parts]) for c in ("y", "yhat", "scale")}
    fold = parts[0]["fold"].to_numpy(int) if len(keys) else np.empty(0, dtype=int)
    return stack["y"], stack["yhat"], stack["scale"], fold


def backtest_mase(tree: Tree, bt: dict[str, pd.DataFrame], method: str, nonneg: bool) -> pd.DataFrame | None:
    """Per series of the tree: base and reconciled backtest MASE (mean over folds), each fold reconciled with
    W estimated on the other folds (on itself with one fold). None when the tree has no common point."""
    y, yhat, scale, fold = aligned(tree, bt)
    if y.shape[1] == 0:
        return None
    rec = np.empty_like(yhat)
    folds = sorted(set(fold.tolist()))
    for k in folds:
        here = fold == k
        train = ~here if len(folds) > 1 else here
        W = error_weights(method, tree, (y[:, train] - yhat[:, train]).T if method in NEEDS_ERRORS else None)
        rec[:, here] = reconcile(yhat[:, here], tree, W, nonneg)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = np.isfinite(scale) & (scale > 0)
        base_e = np.where(ok, np.abs(y - yhat) / scale, np.nan)
        rec_e = np.where(ok, np.abs(y - rec) / scale, np.nan)
    rows = []
    for i, sid in enumerate(tree.ids):
        per_fold = [(np.nanmean(base_e[i, fold == k]), np.nanmean(rec_e[i, fold == k]))
                    for k in folds if ok[i, fold == k].any()]
        if per_fold:
            b, r = np.mean(per_fold, axis=0)
            rows.append({"series_id": sid, "base": float(b), "reconciled": float(r)})
    return pd.DataFrame(rows, columns=["series_id", "base", "reconciled"])


def choose(scores: dict[str, pd.DataFrame], levels: dict[str, str]) -> tuple[str | None, dict[str, float]]:
    """(the method whose reconciled backtest MASE, averaged per level then over levels, is lowest; that figure
    per method). `scores`: method -> backtest_mase rows of every tree. None when nothing was measured."""
    by_method = {}
    for method in METHODS:
        s = scores.get(method)
        if s is None or s.empty:
            continue
        per_level = s.assign(level=s["series_id"].map(levels)).groupby("level")["reconciled"].mean()
        by_method[method] = float(per_level.mean())
    if not by_method:
        return None, {}
    best = min(by_method, key=lambda m: (round(by_method[m], 9), METHODS.index(m)))
    return best, by_method


def _backtest(r: dict) -> pd.DataFrame | None:
    """A series' chosen backtest with its fold counted from the latest and that fold's MASE scale."""
    bt = r.get("chosen_bt")
    if bt is None or bt.empty:
        return None
    fold = bt["fold"].to_numpy(int)
    return pd.DataFrame({"ds": bt["ds"].to_numpy(), "step": bt["step"].to_numpy(int),
                         "fold": r["plan"].folds - 1 - fold, "y": bt["y"].to_numpy(float),
                         "yhat": bt["yhat"].to_numpy(float),
                         "scale": [r["scales"].get(int(k), np.nan) for k in fold]})


def _gap(frames: dict[str, pd.DataFrame], status: dict[str, str], parent: dict[str, str | None]) -> float:
    """The largest |sum of children - parent| / |parent| over the reconciled families and periods."""
    worst = 0.0
    for p, s in status.items():
        if s != "reconciled":
            continue
        kids = [k for k, q in parent.items() if q == p]
        total = frames[p]["yhat"].to_numpy(float)
        diff = np.abs(sum(frames[k]["yhat"].to_numpy(float) for k in kids) - total)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(np.abs(total) > 0, diff / np.abs(total), np.where(diff > 0, np.inf, 0.0))
        worst = max(worst, float(rel.max()) if len(rel) else 0.0)
    return worst


def apply(done: list[dict], labels: dict[str, tuple[str, str]], choice: str) -> tuple[list[dict], dict]:
    """The engine's per-series results (engine.finish) with coherent future forecasts and shifted ranges, and
    the figures metrics/forecast.json shows under "reconciliation"."""
    check_method(choice, CHOICES)
    parent = parents(labels)
    by_id = {r["series_id"]: r for r in done}
    frames = {sid: r["frame"] for sid, r in by_id.items()   # a forecast with a gap is not usable: left out
              if r["frame"] is not None and np.isfinite(r["frame"].to_numpy(float)).all()}
    tree_list, status = trees(parent, {sid: f.index for sid, f in frames.items()})
    info: dict = {"method": "none", "chosen_by": "params" if choice == "none" else "no hierarchy to reconcile",
                  "intervals": "per series: moved with the forecast, width kept; they do not add up",
                  "families": {"reconciled": sum(s == "reconciled" for s in status.values()),
                               "left_out": {p: s.removeprefix("left out: ") for p, s in status.items()
                                            if s != "reconciled"}, "structural": []},
                  "gap_before": round(_gap(frames, status, parent), 6)}
    if choice == "none" or not tree_list:
        info["families"]["reconciled"] = 0
        return done, info
    levels = {sid: level(*labels[sid]) for sid in labels}
    bt = {sid: b for sid, r in by_id.items() if (b := _backtest(r)) is not None}
    nonneg = [all(by_id[s]["nonneg"] for s in t.ids) for t in tree_list]
    # measured on the trees of the series that have a backtest: one short line must not hide the others'
    measured, _ = trees(parent, {sid: f.index for sid, f in frames.items() if sid in bt})
    scores = {}
    for method in METHODS:
        parts = [backtest_mase(t, bt, method, all(by_id[s]["nonneg"] for s in t.ids)) for t in measured]
        parts = [p for p in parts if p is not None]
        if parts:
            scores[method] = pd.concat(parts, ignore_index=True)
    best, by_method = choose(scores, levels)
    if choice != "auto":
        method, info["chosen_by"] = choice, "params"
    elif best is None:
        method, info["chosen_by"] = "bottom_up", "no backtest to measure on: bottom-up"
    else:
        method, info["chosen_by"] = best, "lowest backtest MASE"
    out = {sid: dict(r) for sid, r in by_id.items()}
    for t, nn in zip(tree_list, nonneg, strict=True):
        m, errors = method, None
        if m in NEEDS_ERRORS:
            y, yh, _, _ = aligned(t, bt)
            if y.shape[1] == 0:
                m = "wls_struct"
                info["families"]["structural"].append(t.ids[0])   # the tree's top: no backtest errors
            else:
                errors = (y - yh).T
        base = np.vstack([frames[s]["yhat"].to_numpy(float) for s in t.ids])
        new = reconcile(base, t, error_weights(m, t, errors), nn)
        for i, sid in enumerate(t.ids):
            f = frames[sid]
            lo, hi = shift_bounds(base[i], new[i], f["yhat_lower"].to_numpy(float),
                                  f["yhat_upper"].to_numpy(float), by_id[sid]["nonneg"])
            out[sid]["frame"] = pd.DataFrame({"yhat": new[i], "yhat_lower": lo, "yhat_upper": hi}, index=f.index)
    s = scores.get(method)
    if s is not None:
        per = s.assign(level=s["series_id"].map(levels)).groupby("level")[["base", "reconciled"]].mean()
        info["backtest_mase"] = {lv: {k: round(float(per.loc[lv, k]), 6) for k in ("base", "reconciled")}
                                 for lv in LEVELS if lv in per.index}
    info["by_method"] = {k: round(v, 6) for k, v in by_method.items()}
    info["method"] = method
    new_frames = {sid: r["frame"] for sid, r in out.items() if r["frame"] is not None}
    info["gap_after"] = round(_gap(new_frames, status, parent), 6)
    return [out[r["series_id"]] for r in done], info
