"""Run the forecast of every series (plan, backtest, select, forecast, range), fanned out with Dask, and save it.

Per series, on a worker (`forecast_series`): history.prepare trims it to its usable span, fills its gaps
as the policy says, applies the closures calendar and plans the backtest (fewer folds for a short
history). Each configured model is then backtested on those folds and refit on the whole history; a model
that raises is skipped for that series and its error recorded. A history too short for one fold is
forecast from its recent level; one too short for anything gets no forecast and a note. One series never
stops the run.

Across series, in this process (`finish`), everything the backtests must decide:
- the selection margin, chosen on the run's own backtests (combine.choose_margin);
- per series, the combination's weights and the chosen model (combine.select);
- the range of every forecast, from the pooled backtest errors per horizon step (intervals.py), with
  its coverage measured out of fold; and the range of each forecast's total over the horizon, from the same
  backtest's totals (not the sum of the per-step ranges), with its own out-of-fold coverage;
- coherence: the future forecasts of the hierarchy (company -> region -> product line) reconciled so they
  add up, with the method chosen on the backtests (reconcile.py; "reconciliation" in the metrics). Each
  series' model and backtest accuracy stay those of its own chosen forecast.

History rows of the output frame carry y only (yhat NaN): the shipped accuracy is the out-of-sample
backtest, not an in-sample fit. Metrics per series (metrics/forecast.json): status, folds, the chosen
model's backtest MASE/sMAPE next to the baseline's (named: seasonal naive, or naive when fewer than two
seasons are known), the out-of-fold coverage of its range, its total over the horizon with that total's
range (total, total_lower, total_upper, how in total_range, after reconciliation), and notes in plain words. Outputs are ordered
by series_id and rounded to 6 decimals, so their bytes do not depend on which worker finished first.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import cluster, io, schema
from ..config import ForecastParams, Paths
from ..errors import DataError
from . import calendar, views
from . import combine as cb
from . import history as hs
from . import intervals as iv
from . import models as m
from . import reconcile as rc
from .scoring import backtest, fold_scales, naive_scale, origins
from .series import check_freq, split

NAIVE = m.BASELINE
DECIMALS = 6
BACKTEST_CSV_COLUMNS = ["series_id", "model", "fold", "ds", "y", "yhat"]
BASELINE_WORDS = {True: "seasonal naive", False: "naive"}


@dataclass(frozen=True)
class ForecastResult:
    """The stage's outputs: forecast frame (schema.FORECAST), metrics dict, backtest long frame."""

    frame: pd.DataFrame
    metrics: dict[str, Any]
    backtest: pd.DataFrame
    workers: dict[str, int] = field(default_factory=dict)  # series_id -> pid that ran it; never saved


def _describe(exc: BaseException) -> str:
    """One deterministic line naming the exception (no traceback, capped length)."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}"[:300]


def _ship(prep: hs.Prepared, yhat: pd.Series, cfg: ForecastParams) -> pd.Series:
    """A model's future as it ships (history.ship with the future periods' open share)."""
    share = calendar.open_share(yhat.index, cfg.freq, cfg.closures)
    return pd.Series(hs.ship(yhat.to_numpy(float), share, prep.nonneg), index=yhat.index, name="yhat")


def forecast_series(sid: str, y: pd.Series, cfg: ForecastParams,
                    fitters: dict[str, m.Fitter] | None = None) -> dict[str, Any]:
    """Plan, backtest and refit every model on one series. Never raises for a model or a short history.

    Returns a plain dict (cheap to ship back from a worker): series_id, plan, nonneg, scale (the whole
    history's naive error), scales (per fold), backtest (every model), futures (model -> shipped forecast),
    fallback (the forecast when no model could be backtested), errors (model -> message) and pid.
    """
    prep = hs.prepare(y, cfg.freq, cfg.horizon, cfg.folds, cfg.fill, cfg.closures)
    p = prep.plan
    errors: dict[str, str] = {}
    bts, futures = [], {}
    fallback = None
    if p.status == "backtested":
        for name in cb.candidates(cfg.models):
            try:
                bt = backtest(prep, cfg, name, fitters)
                future = _ship(prep, m.get(name, fitters)(prep.model_y, cfg.horizon, cfg.freq, cfg), cfg)
            except Exception as exc:  # isolation: one model's failure must not stop the series
                errors[name] = _describe(exc)
                continue
            bts.append(bt)
            futures[name] = future
    if not futures and p.status in ("backtested", "recent_level"):
        try:
            fallback = ("recent_level", _ship(prep, m.recent_level(prep.model_y, cfg.horizon, cfg.freq, cfg), cfg))
        except Exception as exc:
            errors["recent_level"] = _describe(exc)
    elif p.status == "all_zero":
        last = y.index[-1]
        fallback = ("zero", pd.Series(0.0, index=m.future_index(last, cfg.horizon, cfg.freq), name="yhat"))
    actual = prep.actual.to_numpy(float)
    scales, bt = fold_scales(prep, cfg) if p.folds else {}, pd.concat(bts, ignore_index=True) if bts else None
    return {"series_id": sid, "plan": p, "nonneg": prep.nonneg,
            "scale": naive_scale(actual, cfg.freq) if len(actual) else float("nan"),
            "scales": scales, "backtest": bt, "scores": scores(bt, scales, cfg), "futures": futures,
            "fallback": fallback, "errors": errors, "pid": os.getpid()}


def scores(backtest: pd.DataFrame | None, scales: dict[int, float], cfg: ForecastParams) -> dict[str, Any]:
    """What `finish` needs of one series' backtest that no other series changes: the hold-out MASE per margin
    (combine.holdout_outcomes; None: not scorable), and the mean scores and combination weights over all its folds
    (combine.scored). forecast_series works it out where the series is fitted, a worker on a cluster: the run's
    serial end, after the last fit, is shorter by it (about 0.2 s for 24 daily series)."""
    if backtest is None:
        return {"outcomes": None, "means": None, "weights": {}}
    with_combo = cb.NAME in cfg.models
    _, means, w = cb.scored(backtest, scales, sorted(int(k) for k in backtest["fold"].unique()), with_combo)
    return {"outcomes": cb.holdout_outcomes(backtest, scales, with_combo), "means": means, "weights": w}


# Heavy modules imported once by the forkserver, so each LocalCluster worker forks with them loaded
# (cuts worker start from ~3-6 s of imports to ~0.1 s). warm.py imports Prophet with its notices silenced.
WARM = "datastory.forecast.warm"
PRELOAD = ["numpy", "pandas", "matplotlib.pyplot", "holidays", "cmdstanpy", "statsforecast.models",
           "datastory.forecast.engine", WARM]
# Dask's statistical profiler samples every worker thread's stack each 10 ms; nothing reads it here.
DASK_CONFIG = {"distributed.worker.profile.enabled": False}


def _start_method() -> str:
    """How LocalCluster workers start: forked from a warm forkserver where the platform has one (Linux, macOS), else
    spawned as Dask does."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


@contextlib.contextmanager
def _worker_config() -> Iterator[Any]:
    """Dask's config for LocalCluster workers, and their multiprocessing context: from the forkserver, whose preload
    list (Dask's own, extended with PRELOAD) is set here, before the server starts."""
    import dask

    method = _start_method()
    with dask.config.set({"distributed.worker.multiprocessing-method": method, **DASK_CONFIG}):
        from distributed.utils import get_mp_context

        ctx = get_mp_context()  # sets Dask's own preload list on its first call
        if method == "forkserver":
            _preload(ctx)
        yield ctx


def _preload(ctx: Any) -> None:
    """The forkserver's preload list: Dask's own module, then PRELOAD (used when the server starts)."""
    ctx.set_forkserver_preload(["distributed", *PRELOAD])


def warm_forkserver() -> None:
    """Start the forkserver LocalCluster workers fork from, if it is not running yet, and return once it has imported
    PRELOAD (2-3 s of its own CPU on a first start): a child forked from it that exits at once. Meanwhile this
    thread imports distributed, which the cluster's start needs. Waiting for the child blocks in a read, so other
    threads of this process run meanwhile. Nothing to do where workers spawn."""
    if _start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    _preload(ctx)
    forkserver.ensure_running()      # its imports begin, in a process of their own
    import distributed  # noqa: F401
    child = ctx.Process(target=os.getpid, name="datastory-forkserver-warm", daemon=True)
    child.start()
    child.join()


@contextlib.contextmanager
def _local_cluster(cfg: ForecastParams) -> Iterator[Any]:
    """A LocalCluster of cfg.n_workers single-threaded worker processes (0: one per CPU core this process may
    use), their start method as _worker_config sets it."""
    from dask.system import CPU_COUNT
    from distributed import LocalCluster

    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # distributed sets its loggers to INFO on import: ~30 lines of start/stop chatter per run.
        logging.getLogger("distributed").setLevel(logging.WARNING)

    with _worker_config():
        with warnings.catch_warnings():
            # The scheduler's HTTP server falls back to a free port when 8787 is taken (another
            # cluster on the machine); nothing here uses that port, so the notice is noise.
            warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
            cluster = LocalCluster(n_workers=cfg.n_workers or CPU_COUNT, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        with cluster:
            yield cluster


@contextlib.contextmanager
def _client(cfg: ForecastParams) -> Iterator[Any]:
    """A distributed Client: the configured/env scheduler, else a LocalCluster closed on exit."""
    from distributed import Client

    address = cluster.address(cfg.scheduler_address)
    if address:
        with cluster.connect(address) as client:
            # every worker imports Prophet and statsforecast (quietly) now, all at once, not on its first fit;
            # a no-op on workers started with --preload datastory.forecast.warm or warmed by an earlier run
            client.run(importlib.import_module, WARM)
            yield client
        return
    with _local_cluster(cfg) as local, Client(local) as client:
        yield client


def forecast_batch(batch: list[tuple[str, pd.Series]], cfg: ForecastParams,
                   fitters: dict[str, m.Fitter] | None = None) -> list[dict[str, Any]]:
    """forecast_series on each (series_id, history) of a batch: one Dask task for several series."""
    return [forecast_series(sid, y, cfg, fitters) for sid, y in batch]


TASKS_PER_WORKER = 8   # at least this many batches per worker, to even out a slow batch at the end
MAX_BATCH = 4          # at most this many series per task: a slow last batch leaves the other workers idle less
TASK_PREFIX = "forecast-batch"   # the scheduler names the tasks by it (its task prefixes)


def _on_cluster(client: Any, series: dict[str, pd.Series], cfg: ForecastParams,
                fitters: dict[str, m.Fitter] | None) -> Iterator[list[dict[str, Any]]]:
    """Each batch's results as it finishes. The series, longest history first (the costliest start first), are
    dealt into a few batches per worker, each shipped once with its task; only forecasts and backtests come
    back (no fitted model)."""
    import uuid

    from distributed import as_completed

    if not series:
        return
    n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
    run_id = uuid.uuid4().hex  # task keys only: never in an output
    futures = [client.submit(forecast_batch, batch, cfg, fitters, key=f"{TASK_PREFIX}-{run_id}-{i}")
               for i, batch in enumerate(cluster.batches(by_cost(series), n_workers, TASKS_PER_WORKER, MAX_BATCH))]
    for fut in as_completed(futures):
        yield fut.result()


def by_cost(series: dict[str, pd.Series]) -> list[tuple[str, pd.Series]]:
    """The series, the costliest first: the longest history, then the id."""
    return sorted(series.items(), key=lambda kv: (-len(kv[1]), kv[0]))


HEAD_START = 0.2   # seconds `start` has alone before this process fits: a warm forkserver's child takes ~0.02 s


def while_starting(start: Any, series: dict[str, pd.Series],
                   fit: Any) -> tuple[Any, list[dict[str, Any]], dict[str, pd.Series]]:
    """Fit series here while `start()` readies a cluster in a thread: the cheapest series first, one at a time,
    until it is done (or every series is). Returns what `start` returned, the results fitted here and the series
    left for the cluster. A LocalCluster's workers take seconds to start (the forkserver, or each spawned worker,
    imports Prophet first); this process would otherwise wait them out. A series gives the same result wherever
    it is fitted, so the split changes only where the time goes.

    `start` should mostly wait on other processes: a fit keeps the GIL busy, so Python work in the thread crawls.
    A LocalCluster came up in ~1.2 s beside a fit, against ~0.1 s alone, once its forkserver was warm."""
    from concurrent.futures import ThreadPoolExecutor, wait

    todo = by_cost(series)
    here: list[dict[str, Any]] = []
    with ThreadPoolExecutor(1, thread_name_prefix="cluster-start") as pool:
        started = pool.submit(start)
        wait([started], timeout=HEAD_START)   # a forkserver already warm answers first: then nothing is fitted here
        while todo and not started.done():
            sid, y = todo.pop()
            here.append(fit(sid, y))
        up = started.result()
    return up, here, dict(todo)


def _fan_out(series: dict[str, pd.Series], cfg: ForecastParams, progress: bool,
             fitters: dict[str, m.Fitter] | None) -> list[dict[str, Any]]:
    from ..progress import Progress

    out = []
    with Progress(len(series), f"forecast ({cfg.engine})", enabled=progress) as bar:
        def here(sid: str, y: pd.Series) -> dict[str, Any]:
            r = forecast_series(sid, y, cfg, fitters)
            bar.update(1)
            return r

        if cfg.engine == "local":
            out = [here(sid, y) for sid, y in series.items()]
        else:
            with contextlib.ExitStack() as stack:
                if cluster.address(cfg.scheduler_address):   # a running cluster: connect, send everything
                    client, left = stack.enter_context(_client(cfg)), series
                else:   # a LocalCluster to start: fit here while its workers' imports run elsewhere
                    from distributed import Client

                    if _start_method() == "forkserver":   # then start it here: ~0.1 s once the server is warm
                        _, out, left = while_starting(warm_forkserver, series, here)
                        local = stack.enter_context(_local_cluster(cfg))
                    else:   # spawned workers import for seconds each: the whole start in the thread
                        local, out, left = while_starting(lambda: stack.enter_context(_local_cluster(cfg)), series,
                                                          here)
                    client = stack.enter_context(Client(local))   # made here: a client is bound to its thread
                for done in _on_cluster(client, left, cfg, fitters):
                    out.extend(done)
                    for _ in done:   # one step per series: batches finish in any order and size, and the
                        bar.update(1)  # notebook's bar must read the same on every run
        for r in sorted(out, key=lambda r: r["series_id"]):   # what really failed: one line per series
            if r["errors"]:
                bar.note(f"forecast: series {r['series_id']!r}: " + "; ".join(
                    f"{k} failed ({v})" for k, v in sorted(r["errors"].items())))
    return sorted(out, key=lambda r: r["series_id"])


def _round(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in df.columns:
        if pd.api.types.is_float_dtype(df[col]):
            df[col] = df[col].round(DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    return df


def _pool_rows(sid: str, chosen_bt: pd.DataFrame, scales: dict[int, float], folds: int) -> pd.DataFrame:
    """The chosen forecast's backtest errors, scaled, with folds counted from the latest (0 = latest)."""
    scale = chosen_bt["fold"].map(scales).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (chosen_bt["y"].to_numpy(float) - chosen_bt["yhat"].to_numpy(float)) / scale
    keep = np.isfinite(e) & (scale > 0)
    return pd.DataFrame({"series_id": sid, "fold": folds - 1 - chosen_bt["fold"].to_numpy(int)[keep],
                         "step": chosen_bt["step"].to_numpy(int)[keep], "e": e[keep]})


def _value(means: pd.DataFrame, model: str | None, col: str) -> float:
    row = means[means["model"] == model]
    return float(row[col].iloc[0]) if len(row) else float("nan")


def finish(results: list[dict[str, Any]], cfg: ForecastParams) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The cross-series decisions: margin, selection, combination and ranges.

    Returns one dict per series (forecasts_series' keys plus model, frame (yhat, yhat_lower, yhat_upper) or
    None, chosen_bt and metrics) and the run's own figures (margin, by_margin, coverage, band_backtested).
    """
    own = [r.get("scores") or scores(r["backtest"], r["scales"], cfg) for r in results]   # as forecast_series gave
    margin, by_margin = cb.choose_margin([s["outcomes"] for r, s in zip(results, own, strict=True)
                                          if r["backtest"] is not None])
    done, pools = [], []
    for r, s in zip(results, own, strict=True):
        p: hs.Plan = r["plan"]
        chosen, future, chosen_bt = None, None, None
        means = pd.DataFrame(columns=["model", "mase", "smape"])
        if r["backtest"] is not None:
            means, w = s["means"], s["weights"]
            chosen = cb.select(means, margin)
            if chosen == cb.NAME:
                future = cb.combine_future(r["futures"], w)
                chosen_bt = cb.combine_backtest(r["backtest"], w)
            else:
                future = r["futures"][chosen]
                chosen_bt = r["backtest"][r["backtest"]["model"] == chosen]
            pools.append(_pool_rows(r["series_id"], chosen_bt, r["scales"], p.folds))
        elif r["fallback"] is not None:
            chosen, future = r["fallback"]
        done.append({**r, "model": chosen, "future": future, "chosen_bt": chosen_bt, "means": means})
    pool = pd.concat(pools, ignore_index=True) if pools else pd.DataFrame(columns=iv.POOL_COLUMNS)
    band = iv.fit(pool, cfg.horizon, cfg.interval_width)
    inside = iv.out_of_fold_inside(pool, cfg.horizon, cfg.interval_width) if len(pool) else np.array([])
    coverage = pd.Series(inside, index=pool["series_id"].to_numpy(), dtype=float).groupby(level=0).mean()
    tot = iv.totals(pool, cfg.horizon)
    total_band = iv.fit_total(tot, cfg.interval_width, band)
    t_inside = iv.total_out_of_fold_inside(tot, pool, cfg.horizon, cfg.interval_width)
    t_coverage = pd.Series(t_inside, index=tot["series_id"].to_numpy(), dtype=float).groupby(level=0).mean()
    out = []
    for r in done:
        sid, p = r["series_id"], r["plan"]
        notes = list(p.notes)
        if p.status == "backtested" and r["model"] == "recent_level":
            notes.append("every model failed on this series: forecast from the recent level")
        frame = None
        if r["future"] is not None:
            yhat = r["future"].to_numpy(float)
            lower, upper = iv.apply(yhat, r["scale"], band, r["nonneg"])
            frame = pd.DataFrame({"yhat": yhat, "yhat_lower": lower, "yhat_upper": upper}, index=r["future"].index)
            if r["model"] != "zero" and (not band.backtested or r["chosen_bt"] is None):
                notes.append("range not backtested: it spans the history's period-to-period changes"
                             if not band.backtested else
                             "range from the backtest errors of the run's other series")
        seasonal = p.season > 1 and p.folds > 0 and all(
            hs.season_length(o, cfg.freq) > 1 for o in origins(p.n, p.folds, cfg.horizon))
        metrics = {"model": r["model"], "status": p.status if r["future"] is not None else "no_forecast",
                   "history": p.n, "folds": p.folds,
                   "mase": _value(r["means"], r["model"], "mase"), "smape": _value(r["means"], r["model"], "smape"),
                   "naive_mase": _value(r["means"], NAIVE, "mase"),
                   "naive_smape": _value(r["means"], NAIVE, "smape"),
                   "baseline": BASELINE_WORDS[seasonal] if p.folds else None,
                   "coverage": float(coverage.get(sid, np.nan)),
                   "total_coverage": float(t_coverage.get(sid, np.nan)),
                   "notes": "; ".join(notes) or None,
                   "error": "; ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items())) or None}
        out.append({**r, "frame": frame, "metrics": metrics})
    overall_cov = float(np.nanmean(inside)) if np.isfinite(inside).any() else float("nan")
    total_cov = float(np.nanmean(t_inside)) if np.isfinite(t_inside).any() else float("nan")
    return out, {"margin": margin, "by_margin": by_margin, "coverage": overall_cov,
                 "band_backtested": band.backtested, "total_band": total_band, "total_coverage": total_cov}


def with_totals(done: list[dict[str, Any]], total_band: iv.TotalBand) -> list[dict[str, Any]]:
    """Each series' metrics with the range of its forecast's total over the horizon (its final, reconciled
    forecast: the central estimate is its sum): total_periods, total, total_lower, total_upper, total_range.
    The range is the total's backtested band (intervals.fit_total), else the per-period ranges summed."""
    out = []
    for r in done:
        f = r["frame"]
        if f is None:
            out.append(r)
            continue
        if total_band.backtested:
            lo, mid, hi = iv.apply_total(f["yhat"].to_numpy(float), r["scale"], total_band, r["nonneg"])
        else:
            lo, mid, hi = (float(f[c].sum()) for c in ("yhat_lower", "yhat", "yhat_upper"))
        out.append({**r, "metrics": {**r["metrics"], "total_periods": len(f), "total": mid, "total_lower": lo,
                                     "total_upper": hi, "total_range": iv.TOTAL_HOW[total_band.how]}})
    return out


def _assemble(done: list[dict[str, Any]], run_info: dict[str, Any], series: dict[str, pd.Series],
              labels: dict[str, tuple[str, str]], cfg: ForecastParams) -> tuple[
        pd.DataFrame, dict[str, Any], pd.DataFrame]:
    frames, bts, per_series = [], [], {}
    for r in done:
        sid, y = r["series_id"], series[r["series_id"]]
        region, line = labels[sid]
        model_label = r["model"] or "none"
        frames.append(pd.DataFrame({"series_id": sid, "region": region, "product_line": line, "ds": y.index,
                                    "y": y.to_numpy(), "yhat": np.nan, "yhat_lower": np.nan,
                                    "yhat_upper": np.nan, "model": model_label, "is_forecast": False}))
        if r["frame"] is not None:
            fut = r["frame"]
            frames.append(pd.DataFrame({"series_id": sid, "region": region, "product_line": line,
                                        "ds": fut.index, "y": np.nan, "yhat": fut["yhat"].to_numpy(),
                                        "yhat_lower": fut["yhat_lower"].to_numpy(),
                                        "yhat_upper": fut["yhat_upper"].to_numpy(), "model": model_label,
                                        "is_forecast": True}))
        parts = [b for b in (r["backtest"], r["chosen_bt"] if r["model"] == cb.NAME else None) if b is not None]
        bts.extend(b.assign(series_id=sid) for b in parts)
        per_series[sid] = {"region": region, "product_line": line, **r["metrics"]}
    frame = _round(schema.conform(pd.concat(frames, ignore_index=True), schema.FORECAST, "forecast"))
    bt = (pd.concat(bts, ignore_index=True) if bts else pd.DataFrame(columns=BACKTEST_CSV_COLUMNS))
    bt = _round(bt.loc[:, BACKTEST_CSV_COLUMNS].sort_values(["series_id", "model", "fold", "ds"], kind="stable")
                .reset_index(drop=True))

    def mean(key: str) -> float:
        vals = np.array([s[key] for s in per_series.values()], dtype=float)
        return float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")

    wins = {name: 0 for name in [*cfg.models]}
    for s in per_series.values():
        if s["model"]:
            wins[s["model"]] = wins.get(s["model"], 0) + 1
    overall = {k: round(mean(k), DECIMALS) for k in ("mase", "smape", "naive_mase", "naive_smape")}
    overall["coverage"] = round(run_info["coverage"], DECIMALS)
    overall["total_coverage"] = round(run_info["total_coverage"], DECIMALS)
    tb: iv.TotalBand = run_info["total_band"]
    metrics = {"freq": cfg.freq, "horizon": cfg.horizon, "folds": cfg.folds,
               "interval_width": cfg.interval_width, "fill": cfg.fill,
               "selection_margin": run_info["margin"],
               "overall": overall,
               "reconciliation": run_info["reconciliation"],
               "total_range": {"how": iv.TOTAL_HOW[tb.how], "totals": tb.n,
                               "effective_totals": round(tb.effective, 2),
                               "between_folds": round(tb.between, DECIMALS) if np.isfinite(tb.between) else None,
                               "min_totals": iv.min_totals(cfg.interval_width),
                               "lower": round(tb.lower, DECIMALS), "upper": round(tb.upper, DECIMALS)},
               "series": {sid: {k: (round(v, DECIMALS) if isinstance(v, float) else v) for k, v in s.items()}
                          for sid, s in per_series.items()},
               "wins": wins}
    return frame, metrics, bt


def run(series_long: pd.DataFrame, cfg: ForecastParams, progress: bool = True,
        fitters: dict[str, m.Fitter] | None = None) -> ForecastResult:
    """Plan, backtest, select and forecast every series of `series_long` (from build_series).

    cfg.engine 'dask' fans the series out over a Dask cluster (cfg.scheduler_address, else env
    DASK_SCHEDULER_ADDRESS, else a LocalCluster of cfg.n_workers started and closed here); 'local'
    loops in this process. `fitters` overrides model functions by name (tests inject failures).
    A series that cannot be forecast gets a note, never an error; a DataError only when none can be.
    """
    check_freq(cfg.freq)
    series = split(series_long)
    if not series:
        raise DataError("no series to forecast", fix="check the transactions input")
    labels = {str(sid): (str(g["region"].iloc[0]), str(g["product_line"].iloc[0]))
              for sid, g in series_long.groupby("series_id", sort=True)}
    results = _fan_out(series, cfg, progress, fitters)
    done, run_info = finish(results, cfg)
    done, run_info["reconciliation"] = rc.apply(done, labels, cfg.reconcile)
    done = with_totals(done, run_info["total_band"])
    if all(r["frame"] is None for r in done):
        first = done[0]
        why = first["metrics"]["notes"] or first["metrics"]["error"] or "no model could forecast it"
        raise DataError(f"no series could be forecast ({len(done)} series); {first['series_id']!r}: {why}",
                        fix="load more history, lower horizon in params/forecast.yaml, or use a finer freq")
    frame, metrics, bt = _assemble(done, run_info, series, labels, cfg)
    return ForecastResult(frame=frame, metrics=metrics, backtest=bt,
                          workers={r["series_id"]: r["pid"] for r in results})


def backtest_csv(bt: pd.DataFrame) -> str:
    """The backtest frame as CSV text with fixed float and date formats (for `dvc plots`)."""
    out = bt.loc[:, BACKTEST_CSV_COLUMNS].copy()
    out["ds"] = pd.to_datetime(out["ds"]).dt.strftime("%Y-%m-%d")
    return out.to_csv(index=False, float_format=f"%.{DECIMALS}f", lineterminator="\n")


def plot_csv(result: ForecastResult, series_id: str = schema.ALL) -> str:
    """CSV text (ds, value, line) of one series' actuals vs each model's backtest forecast, for `dvc plots`.

    The company total by default; the first series in id order when there is no total (a file run).
    """
    ids = sorted(result.backtest["series_id"].astype(str).unique())
    if not ids:  # no model could backtest any series: an empty plot, not a failed save
        return ",".join(views.PLOT_COLUMNS) + "\n"
    if series_id not in ids:
        series_id = ids[0]
    out = _round(views.backtest_plot(result.frame, result.backtest, series_id))
    out["ds"] = out["ds"].dt.strftime("%Y-%m-%d")
    return out.to_csv(index=False, float_format=f"%.{DECIMALS}f", lineterminator="\n")


def save(result: ForecastResult, paths: Paths) -> list[Path]:
    """Write the forecast parquet, the metrics (record, per-series CSV, headline JSON), the backtest CSV (every series, model and fold) and
    the readable backtest plot CSV of the company total atomically; return their paths."""
    from .. import metrics

    return [io.write_parquet(result.frame, paths.forecast),
            *metrics.save_forecast(result.metrics, paths),
            io.write_text(backtest_csv(result.backtest), paths.forecast_backtest),
            io.write_text(plot_csv(result), paths.forecast_backtest_plot)]
