"""Benchmark: forecast accuracy on the Tourism competition data (monthly h=24, quarterly h=8).

Run: .venv/bin/python bench/forecast_accuracy.py [monthly|quarterly|both] [--limit N]

- Data: read from $DATASTORY_BENCH_DATA/tourism, default <repo>/../shared/benchmarks/tourism (never copied
  into the repo); its README gives the formats and reference figures. Absent -> a skip message, exit 0.
- Methods, all in the same run, each scored on the held-out test horizon:
  seasonal naive; Prophet with default settings (no tuning; MAP fit, the reference's setup);
  our engine: rolling-origin backtest of the pipeline's models on the training part only, per-series
  selection (lowest backtest MASE), refit on all training data, forecast h; once with the pipeline's
  three models and once adding the "combination" candidate (which also backtests Theta; an inverse-MASE
  weighted average of the best backtested models, kept unless a single model backtests 10% better, see
  src/datastory/forecast/combine.py). Folds: 2 (the shortest training series, 67 months / 22 quarters,
  allows no more with h = 24 / 8).
- Metrics (README conventions): MASE = mean |y - yhat| / in-sample mean |y_t - y_{t-m}| (m = 12 / 4);
  MAPE = 100 mean |(y - yhat) / y|; sMAPE = 100 mean 2|y - yhat| / (|y| + |yhat|); means over series.
  coverage = share of the test actuals inside the shipped 80% interval (nominal 0.80; default Prophet is
  run without interval sampling, like the reference, so it has none).
- Engine: Dask LocalCluster of 2 single-threaded workers (the pipeline's default) for our engine and
  for default Prophet. --limit N keeps the first N series (a quick look; the table says so).
Not a test: the figures depend on library versions; timings on the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from datastory.forecast import engine, models
from datastory.forecast import file as ffile

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VARIANTS = ["seasonal_naive,ets,prophet", "seasonal_naive,ets,prophet,combination"]
SETS = {"monthly": {"freq": "M", "h": 24, "m": 12, "folds": 2},
        "quarterly": {"freq": "Q", "h": 8, "m": 4, "folds": 2}}
REFERENCE = {"monthly": "reference (README): seasonal naive 1.6309 / 22.56, default Prophet 2.2232 / 38.00, "
                        "AutoETS 1.5310 / 21.09 (MASE / MAPE)",
             "quarterly": "reference (README): seasonal naive 1.6990 / 16.46, ETS (R) 1.59 / 15.31 (MASE / MAPE)"}


def data_dir() -> Path:
    return Path(os.environ.get("DATASTORY_BENCH_DATA", ROOT.parent / "shared" / "benchmarks")) / "tourism"


def load(name: str, limit: int | None) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    """(train, test) per series id, from the long file (ds = first day of the period)."""
    df = pd.read_csv(data_dir() / f"tourism_{name}_long.csv", parse_dates=["ds"])
    ids = sorted(df["unique_id"].unique(), key=lambda s: int(s[1:]))[:limit]
    train, test = {}, {}
    for sid, g in df[df["unique_id"].isin(ids)].groupby("unique_id", sort=False):
        g = g.sort_values("ds")
        for part, out in (("train", train), ("test", test)):
            p = g[g["split"] == part]
            out[sid] = pd.Series(p["y"].to_numpy(float), index=pd.DatetimeIndex(p["ds"]), name=sid)
    return train, test


def scores(train: pd.Series, test: pd.Series, fc: dict[str, np.ndarray], m: int) -> tuple[float, ...]:
    """(MASE, MAPE %, sMAPE %, interval coverage) of one series' forecast (yhat and, if any, its band)."""
    y, tr, yhat = test.to_numpy(), train.to_numpy(), fc["yhat"]
    cov = float(np.mean((y >= fc["yhat_lower"]) & (y <= fc["yhat_upper"]))) if "yhat_lower" in fc else np.nan
    err = np.abs(y - yhat)
    scale = np.mean(np.abs(tr[m:] - tr[:-m]))
    with np.errstate(divide="ignore", invalid="ignore"):
        mape = 100 * np.mean(err / np.abs(y))
        den = np.abs(y) + np.abs(yhat)
        smape = 100 * np.mean(np.where(den == 0, 0.0, 2 * err / den))
    return float(np.mean(err) / scale), float(mape), float(smape), cov


def default_prophet(train: pd.Series, h: int, freq: str) -> np.ndarray:
    """Prophet() with every setting at its default (the README's reference), MAP fit, point forecast."""
    models._quiet_prophet()  # the pipeline's own silencing of prophet / cmdstanpy INFO lines
    from prophet import Prophet

    model = Prophet(uncertainty_samples=0)
    model.fit(pd.DataFrame({"ds": train.index, "y": train.to_numpy()}))
    future = models.future_index(train.index[-1], h, freq)
    return model.predict(pd.DataFrame({"ds": future}))["yhat"].to_numpy()


def run_default_prophet(train: dict[str, pd.Series], h: int, freq: str) -> dict[str, dict[str, np.ndarray]]:
    """Default Prophet on every series, over a 2-worker LocalCluster."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        futures = {sid: client.submit(default_prophet, y, h, freq, pure=False) for sid, y in train.items()}
        return {sid: {"yhat": fut.result()} for sid, fut in futures.items()}


def run_engine(train: dict[str, pd.Series], spec: dict, models_: list[str]) -> tuple[
        dict[str, dict[str, np.ndarray]], dict[str, int]]:
    """Our engine (backtest on the training part, select, refit, forecast h) with the Dask engine."""
    cfg = ffile.file_params(spec["freq"], spec["h"], spec["folds"], models_, "dask", 0)
    long = pd.concat([pd.DataFrame({"series_id": sid, "region": sid, "product_line": "", "ds": y.index,
                                    "y": y.to_numpy()}) for sid, y in train.items()], ignore_index=True)
    res = engine.run(long.astype({"series_id": "string", "region": "string", "product_line": "string"}), cfg,
                     progress=False)
    fut = res.frame[res.frame["is_forecast"]]
    out = {str(sid): {c: g.sort_values("ds")[c].to_numpy() for c in models.OUT_COLUMNS}
           for sid, g in fut.groupby("series_id")}
    return out, {k: v for k, v in res.metrics["wins"].items() if v}


def bench(name: str, limit: int | None, variants: list[list[str]]) -> None:
    spec = SETS[name]
    train, test = load(name, limit)
    h, m, freq = spec["h"], spec["m"], spec["freq"]
    fc: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    fc["seasonal naive"] = {sid: {c: v.to_numpy() for c, v in models.seasonal_naive(
        y, h, freq, ffile.file_params(freq, h)).items()} for sid, y in train.items()}
    secs["seasonal naive"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fc["Prophet (default)"] = run_default_prophet(train, h, freq)
    secs["Prophet (default)"] = time.perf_counter() - t0
    wins = {}
    for models_ in variants:
        t0 = time.perf_counter()
        label = f"engine ({'+'.join(models_)})"
        fc[label], wins[label] = run_engine(train, spec, models_)
        secs[label] = time.perf_counter() - t0
    rows = []
    for method, per in fc.items():
        s = np.array([scores(train[sid], test[sid], per[sid], m) for sid in train])
        rows.append({"method": method, "MASE": np.mean(s[:, 0]), "MAPE": np.mean(s[:, 1]),
                     "sMAPE": np.mean(s[:, 2]), "coverage": np.mean(s[:, 3]), "seconds": secs[method]})
    table = pd.DataFrame(rows)
    scope = f"first {len(train)} series" if limit else f"all {len(train)} series"
    print(f"\nTourism {name}: {scope}, h={h}, backtest folds={spec['folds']}, Dask LocalCluster 2 workers")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for label, w in wins.items():
        print(f"{label} selection wins: {w}")
    print(REFERENCE[name])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("which", nargs="?", default="both", choices=["monthly", "quarterly", "both"])
    ap.add_argument("--limit", type=int, default=None, help="only the first N series of each set")
    ap.add_argument("--models", action="append", default=None,
                    help="engine candidates, comma-separated; repeat for several engine rows "
                         f"(default: {' and '.join(DEFAULT_VARIANTS)})")
    args = ap.parse_args(argv)
    if not data_dir().is_dir():
        print(f"bench/forecast_accuracy.py skipped: no benchmark data at {data_dir()} "
              "(set DATASTORY_BENCH_DATA to the folder holding tourism/)")
        return 0
    for name in (["monthly", "quarterly"] if args.which == "both" else [args.which]):
        bench(name, args.limit, [[x.strip() for x in v.split(",") if x.strip()]
                                 for v in (args.models or DEFAULT_VARIANTS)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
