"""Run the forecast of every series (backtest, select, forecast), fanned out with Dask, and save it.

Per series: each model in cfg.models is backtested; a model that raises is skipped for that series
and its error recorded; with "combination" listed, Theta is backtested too and an inverse-MASE weighted
average of the best backtested models is a further candidate, kept unless a single model backtests
clearly better (combine.py); otherwise the lowest mean MASE wins (ties -> simpler model), so when every
other model fails, seasonal naive is chosen. The winner is refit on the whole history to forecast
cfg.horizon periods, and its interval is rescaled on its own backtest errors (intervals.py). History
rows of the output frame carry y only (yhat NaN): the shipped accuracy is the out-of-sample backtest,
not an in-sample fit.

Metrics per series (metrics/forecast.json): the chosen model's backtest MASE/sMAPE; coverage = backtest
coverage of the shipped (rescaled) interval, leave-one-fold-out; raw_coverage = that of the model's own
band; interval_factor = the rescaling factor (> 1 widened). "overall" holds their means over series.

Outputs are ordered by series_id and rounded to 6 decimals, so their bytes do not depend on which
worker finished first or on last-digit float noise.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import io, schema
from ..config import ForecastParams, Paths
from ..errors import DataError
from . import combine as cb
from . import intervals as iv
from . import models as m
from . import views
from .scoring import backtest, check_length, score
from .series import split

NAIVE = "seasonal_naive"
DECIMALS = 6
BACKTEST_CSV_COLUMNS = ["series_id", "model", "fold", "ds", "y", "yhat"]


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


def forecast_series(sid: str, y: pd.Series, cfg: ForecastParams,
                    fitters: dict[str, m.Fitter] | None = None) -> dict[str, Any]:
    """Backtest every model on one series, select the best, forecast with it. Never raises for a model.

    Returns a plain dict (cheap to ship back from a worker): series_id, model, scores, backtest,
    future, errors (model -> message) and pid.
    """
    errors: dict[str, str] = {}
    bts, scores = [], []
    for name in cb.candidates(cfg.models):
        try:
            bt = backtest(y, cfg, [name], fitters)
            sc = score(bt, y, cfg)
        except Exception as exc:  # isolation: one model's failure must not stop the series
            errors[name] = _describe(exc)
            continue
        bts.append(bt)
        scores.append(sc)
    score_df = pd.concat(scores, ignore_index=True) if scores else pd.DataFrame(
        columns=["model", "mase", "smape", "coverage"])
    weights: dict[str, float] = {}
    if cb.NAME in cfg.models and len(score_df):
        weights = cb.weights(score_df)
        if weights:  # the combination's backtest: the members' fold forecasts, weighted
            bt = cb.combine({b["model"].iloc[0]: b.reset_index(drop=True) for b in bts}, weights)
            bts.append(bt)
            score_df = pd.concat([score_df, score(bt, y, cfg)], ignore_index=True)
    chosen = cb.select(score_df) if len(score_df) else None
    future = None
    while chosen is not None:
        try:
            if chosen == cb.NAME:
                future = cb.combine({name: m.get(name, fitters)(y, cfg.horizon, cfg.freq, cfg)
                                     for name in weights}, weights)
            else:
                future = m.get(chosen, fitters)(y, cfg.horizon, cfg.freq, cfg)
            break
        except Exception as exc:  # refit on the full history failed: fall back to the baseline
            errors[chosen] = _describe(exc)
            chosen = NAIVE if chosen != NAIVE and NAIVE in set(score_df["model"]) else None
    backtest_all = pd.concat(bts, ignore_index=True) if bts else None
    calibration: dict[str, float] = {}
    if future is not None and backtest_all is not None:
        # The shipped band: the chosen model's band shape, rescaled on its own backtest errors.
        own = backtest_all[backtest_all["model"] == chosen]
        factor, absolute = iv.fit(own, cfg.interval_width)
        future = iv.apply(future, factor, absolute)
        calibration = {"interval_factor": factor, "coverage": iv.cv_coverage(own, cfg.interval_width)}
    return {"series_id": sid, "model": chosen, "scores": score_df, "backtest": backtest_all,
            "future": future, "errors": errors, "calibration": calibration, "pid": os.getpid()}


# Heavy modules imported once by the forkserver, so each LocalCluster worker forks with them loaded
# (cuts worker start from ~3-6 s of imports to ~0.1 s). warm.py imports Prophet with its notices silenced.
PRELOAD = ["numpy", "pandas", "scipy.stats", "matplotlib.pyplot", "holidays", "cmdstanpy",
           "statsmodels.tsa.exponential_smoothing.ets", "statsmodels.tsa.forecasting.theta",
           "statsmodels.tsa.seasonal", "datastory.forecast.engine", "datastory.forecast.warm"]
# Dask's statistical profiler samples every worker thread's stack each 10 ms; nothing reads it here.
DASK_CONFIG = {"distributed.worker.profile.enabled": False}


@contextlib.contextmanager
def _local_cluster(cfg: ForecastParams) -> Iterator[Any]:
    """A LocalCluster of cfg.n_workers single-threaded worker processes (0: one per CPU core this process may
    use), forked from a warm forkserver where the platform has one (Linux, macOS), else spawned as Dask does."""
    import dask
    from dask.system import CPU_COUNT
    from distributed import LocalCluster

    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # distributed sets its loggers to INFO on import: ~30 lines of start/stop chatter per run.
        logging.getLogger("distributed").setLevel(logging.WARNING)

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    with dask.config.set({"distributed.worker.multiprocessing-method": method, **DASK_CONFIG}):
        if method == "forkserver":
            from distributed.utils import get_mp_context

            ctx = get_mp_context()  # sets Dask's own preload list; extend it before the server starts
            ctx.set_forkserver_preload(["distributed", *PRELOAD])
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

    address = cfg.scheduler_address or os.environ.get("DASK_SCHEDULER_ADDRESS", "")
    if address:
        with Client(address) as client:
            yield client
        return
    with _local_cluster(cfg) as cluster, Client(cluster) as client:
        yield client


def _fan_out(series: dict[str, pd.Series], cfg: ForecastParams, progress: bool,
             fitters: dict[str, m.Fitter] | None) -> list[dict[str, Any]]:
    from tqdm import tqdm

    # No elapsed time or rate, and one refresh per series: the bar's text (which papermill keeps in the
    # executed notebook) is then the same on every run.
    bar = tqdm(total=len(series), desc=f"forecast ({cfg.engine})", file=sys.stderr, disable=not progress,
               bar_format="{desc}: {n_fmt}/{total_fmt} series |{bar:20}|", mininterval=0, miniters=1)
    out = []
    with bar:
        if cfg.engine == "local":
            for sid, y in series.items():
                out.append(forecast_series(sid, y, cfg, fitters))
                bar.update(1)
        else:
            from distributed import as_completed

            with _client(cfg) as client:
                futures = [client.submit(forecast_series, sid, y, cfg, fitters, pure=False)
                           for sid, y in series.items()]
                for fut in as_completed(futures):
                    out.append(fut.result())
                    bar.update(1)
    return sorted(out, key=lambda r: r["series_id"])


def _round(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in df.columns:
        if pd.api.types.is_float_dtype(df[col]):
            df[col] = df[col].round(DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    return df


def _metric(scores: pd.DataFrame, model: str | None, col: str) -> float:
    row = scores[scores["model"] == model]
    return float(row[col].iloc[0]) if len(row) else float("nan")


def _assemble(results: list[dict[str, Any]], series: dict[str, pd.Series], labels: dict[str, tuple[str, str]],
              cfg: ForecastParams) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    frames, bts, per_series = [], [], {}
    for r in results:
        sid, y, chosen = r["series_id"], series[r["series_id"]], r["model"]
        region, line = labels[sid]
        model_label = chosen or "none"
        frames.append(pd.DataFrame({"series_id": sid, "region": region, "product_line": line, "ds": y.index,
                                    "y": y.to_numpy(), "yhat": np.nan, "yhat_lower": np.nan,
                                    "yhat_upper": np.nan, "model": model_label, "is_forecast": False}))
        if r["future"] is not None:
            fut = r["future"]
            frames.append(pd.DataFrame({"series_id": sid, "region": region, "product_line": line,
                                        "ds": fut.index, "y": np.nan, "yhat": fut["yhat"].to_numpy(),
                                        "yhat_lower": fut["yhat_lower"].to_numpy(),
                                        "yhat_upper": fut["yhat_upper"].to_numpy(), "model": model_label,
                                        "is_forecast": True}))
        if r["backtest"] is not None:
            bts.append(r["backtest"].assign(series_id=sid))
        sc = r["scores"]
        errors = "; ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items())) or None
        cal = r.get("calibration") or {}
        per_series[sid] = {"region": region, "product_line": line, "model": chosen,
                           "mase": _metric(sc, chosen, "mase"), "smape": _metric(sc, chosen, "smape"),
                           "coverage": float(cal.get("coverage", np.nan)),
                           "raw_coverage": _metric(sc, chosen, "coverage"),
                           "interval_factor": float(cal.get("interval_factor", np.nan)),
                           "naive_mase": _metric(sc, NAIVE, "mase"), "naive_smape": _metric(sc, NAIVE, "smape"),
                           "error": errors}
    frame = _round(schema.conform(pd.concat(frames, ignore_index=True), schema.FORECAST, "forecast"))
    bt = (pd.concat(bts, ignore_index=True) if bts else pd.DataFrame(columns=BACKTEST_CSV_COLUMNS))
    bt = _round(bt.loc[:, BACKTEST_CSV_COLUMNS].sort_values(["series_id", "model", "fold", "ds"], kind="stable")
                .reset_index(drop=True))

    def mean(key: str) -> float:
        vals = np.array([s[key] for s in per_series.values()], dtype=float)
        return float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")

    wins = {name: 0 for name in [*cfg.models, *cb.candidates(cfg.models)]}
    for s in per_series.values():
        if s["model"]:
            wins[s["model"]] = wins.get(s["model"], 0) + 1
    metrics = {"freq": cfg.freq, "horizon": cfg.horizon, "folds": cfg.folds,
               "interval_width": cfg.interval_width,
               "overall": {k: round(mean(k), DECIMALS) for k in ("mase", "smape", "coverage", "raw_coverage",
                                                                  "naive_mase", "naive_smape")},
               "series": {sid: {k: (round(v, DECIMALS) if isinstance(v, float) else v) for k, v in s.items()}
                          for sid, s in per_series.items()},
               "wins": wins}
    return frame, metrics, bt


def run(series_long: pd.DataFrame, cfg: ForecastParams, progress: bool = True,
        fitters: dict[str, m.Fitter] | None = None) -> ForecastResult:
    """Backtest, select and forecast every series of `series_long` (from build_series).

    cfg.engine 'dask' fans the series out over a Dask cluster (cfg.scheduler_address, else env
    DASK_SCHEDULER_ADDRESS, else a LocalCluster of cfg.n_workers started and closed here); 'local'
    loops in this process. `fitters` overrides model functions by name (tests inject failures).
    """
    series = split(series_long)
    if not series:
        raise DataError("no series to forecast", fix="check the transactions input")
    for sid, y in series.items():
        check_length(len(y), cfg, f"series {sid!r}")
        m.check_train(y, cfg.horizon, cfg.freq)
    labels = {str(sid): (str(g["region"].iloc[0]), str(g["product_line"].iloc[0]))
              for sid, g in series_long.groupby("series_id", sort=True)}
    results = _fan_out(series, cfg, progress, fitters)
    frame, metrics, bt = _assemble(results, series, labels, cfg)
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
    """Write the forecast parquet, the metrics JSON, the backtest CSV (every series, model and fold) and
    the readable backtest plot CSV of the company total atomically; return their paths."""
    return [io.write_parquet(result.frame, paths.forecast),
            io.write_json(result.metrics, paths.forecast_metrics),
            io.write_text(backtest_csv(result.backtest), paths.forecast_backtest),
            io.write_text(plot_csv(result), paths.forecast_backtest_plot)]
