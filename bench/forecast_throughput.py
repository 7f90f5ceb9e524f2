"""Benchmark: forecast engine throughput, Dask LocalCluster vs a plain sequential loop, and against statsforecast.

Run: .venv/bin/python bench/forecast_throughput.py [N] [--repeats R] [--total T] [--series S] [--peer-repeats P]
                                                   [--fresh F]
     defaults: N = 24 series (0 = skip), R = 3 (median of R runs per engine), T = 1000 (total wall time,
     Dask; 0 = skip), S = 366 Tourism monthly series (all; 0 = skip the peer), P = 1, F = 3 (0 = skip)

- Data: N synthetic daily series of 2 years (730 days), seeded: level x (trend + weekly + yearly
  seasonality) x lognormal noise.
- Work per series: the full forecast of the pipeline (engine.run): a rolling-origin backtest of
  seasonal naive, ETS and Prophet (3 folds, horizon 28 days), selection, refit, forecast.
- Timed: engine.run end to end, alternating, median of R runs, all three results byte-identical: with engine
  "local" (one process, a plain loop); with engine "dask" as the stage runs it alone, the run starting and
  stopping a LocalCluster of 2 single-threaded workers (while the workers' forkserver imports, this process fits
  series; the server stays up for the process, so here, after the running cluster below has started it, the
  run's own cluster starts in about 0.1 s and gets every series; a first run in a new process, as a stage's,
  also waits on the server's imports: --fresh); and with
  engine "dask" sent to a cluster already running (the same LocalCluster, started once before the timed runs:
  its workers warm, as a cluster the pipeline is pointed at with DASK_SCHEDULER_ADDRESS, every series fitted
  there).
  The engine sends the series in a few batches per worker (one task each), and workers fork from a server that
  has already imported Prophet and statsforecast.
- Beside it, the machine's own ceiling in the same run (before and after the alternating runs): the
  throughput of 2 processes burning the same fixed CPU loop at once, over 1 process alone. On an idle
  2-core machine it is 2.0; on a shared one it says how much of a second core was there to be had.
- Then the wall time of one Dask run over T series (T given on the command line, so the table says
  which T was run).
- Peer, on Tourism monthly (the first S series by number, training part; from $DATASTORY_BENCH_DATA/tourism,
  default <repo>/../shared/benchmarks/tourism; absent -> a skip line): statsforecast's AutoETS + AutoTheta +
  SeasonalNaive (season 12), StatsForecast(n_jobs=2: the same 2 processes as our 2 workers), with the same
  rolling-origin folds and horizon as our engine (horizon 24, 3 folds of 24 months, fewer where the engine
  planned fewer for a short series: the peer's cross_validation uses each series' fold count from the engine's
  run) plus the refit on the whole history and its forecast. Against it, in the same run: our engine (Dask, 2
  workers) with Prophet off (seasonal naive, theta, ETS, CES and their combination) and the whole engine (the
  pipeline's default models, Prophet included). Each time is wall time end to end (pools and clusters started
  and stopped included), after one untimed run of each on 2 series (this process's one-off imports and
  compiles); the ratios engine / statsforecast are printed against their targets (1.5x, 4x).
Not a test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from datastory.config import ForecastParams
from datastory.forecast import engine
from datastory.forecast import file as ffile

DAYS, HORIZON, FOLDS = 730, 28, 3
ROOT = Path(__file__).resolve().parents[1]
TOURISM_H, SEASON, N_JOBS = 24, 12, 2
PROPHET_OFF = ["seasonal_naive", "theta", "ets", "ces", "combination"]
TARGETS = {"engine, Prophet off": 1.5, "whole engine": 4.0}
COLD = "dask, cluster started by the run"
WARM = "dask, a running cluster"


def synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    """The engine's series frame for n daily series of 2 years."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2023-01-02", periods=DAYS, freq="D")
    t = np.arange(DAYS)
    parts = []
    for i in range(n):
        level = rng.uniform(50, 500)
        shape = (1 + rng.uniform(-0.2, 0.4) * t / DAYS
                 + rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * (t + rng.integers(7)) / 7)
                 + rng.uniform(0.0, 0.3) * np.sin(2 * np.pi * (t + rng.integers(365)) / 365.25))
        y = level * shape * rng.lognormal(0, 0.15, DAYS)
        sid = f"s{i:05d}"
        parts.append(pd.DataFrame({"series_id": sid, "region": sid, "product_line": "", "ds": ds,
                                   "y": y.round(2)}))
    return pd.concat(parts, ignore_index=True).astype({"series_id": "string", "region": "string",
                                                       "product_line": "string"})


def timed(series: pd.DataFrame, cfg: ForecastParams) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    res = engine.run(series, cfg, progress=False)
    return time.perf_counter() - t0, res.frame


def _burn(n: int = 4_000_000) -> float:
    """A fixed pure-Python CPU loop; its own wall time."""
    t0 = time.perf_counter()
    acc = 0
    for i in range(n):
        acc += i * i % 7
    return time.perf_counter() - t0


def parallel_ceiling() -> float:
    """Throughput of 2 processes running _burn at once over 1 running it alone (2.0 on an idle 2-core machine)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_burn, [1000, 1000]))                  # both processes up before timing
        one = statistics.median(pool.submit(_burn).result() for _ in range(3))
        t0 = time.perf_counter()
        list(pool.map(_burn, [4_000_000] * 2))
        both = time.perf_counter() - t0
    return 2 * one / both


def compare(n: int, times: dict[str, list[float]], frames: dict[str, pd.DataFrame]) -> None:
    """Print the speed-up table of the alternating runs."""
    same = all(frames["local loop"].equals(f) for f in frames.values())
    rows = [{"engine": label, "median s": statistics.median(ts), "series/s": n / statistics.median(ts),
             "runs s": " ".join(f"{t:.1f}" for t in ts)} for label, ts in times.items()]
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for label in (COLD, WARM):
        speedup = statistics.median(times["local loop"]) / statistics.median(times[label])
        print(f"speed-up {label} / local: {speedup:.2f}x (target >= 1.9x)")
    print(f"outputs identical: {same}")


def fresh(n: int, repeats: int) -> None:
    """Print the speed-up of a first run in a new process (as a stage's): local against a LocalCluster whose
    forkserver starts cold. Each child imports the engine, builds the series, then times engine.run alone."""
    import subprocess

    times: dict[str, list[float]] = {"local": [], "dask": []}
    for _ in range(repeats):
        for name in times:
            out = subprocess.run([sys.executable, __file__, str(n), "--child", name], capture_output=True, text=True,
                                 check=True).stdout.split()
            times[name].append(float(out[-1]))
    med = {k: statistics.median(v) for k, v in times.items()}
    runs = "; ".join(f"{k} " + " ".join(f"{t:.1f}" for t in v) for k, v in times.items())
    print(f"first run in a new process, {n} series, median of {repeats}: local {med['local']:.2f} s, dask "
          f"{med['dask']:.2f} s (the forkserver's imports included): {med['local'] / med['dask']:.2f}x ({runs})")


def tourism(n: int) -> pd.DataFrame | None:
    """The training part of the first n Tourism monthly series (unique_id, ds, y); None when the data is absent."""
    path = Path(os.environ.get("DATASTORY_BENCH_DATA", ROOT.parent / "shared" / "benchmarks")) / "tourism"
    file = path / "tourism_monthly_long.csv"
    if not file.is_file():
        print(f"peer: skipped, no Tourism data at {path} (set DATASTORY_BENCH_DATA)")
        return None
    df = pd.read_csv(file, parse_dates=["ds"])
    ids = sorted(df["unique_id"].unique(), key=lambda s: int(s[1:]))[:n]
    return df[df["unique_id"].isin(ids) & (df["split"] == "train")].loc[:, ["unique_id", "ds", "y"]]


def run_engine(df: pd.DataFrame, models: list[str] | None) -> tuple[float, dict[str, int]]:
    """Wall time of our engine (Dask, 2 workers) on the long frame; the folds it planned per series."""
    cfg = ffile.file_params("M", TOURISM_H, FOLDS, models, "dask", 0).model_copy(update={"n_workers": N_JOBS})
    t0 = time.perf_counter()
    res = engine.run(ffile.to_series_long(df, "M"), cfg, progress=False)
    sec = time.perf_counter() - t0
    return sec, {sid: int(s["folds"]) for sid, s in res.metrics["series"].items()}


def run_statsforecast(df: pd.DataFrame, folds: dict[str, int]) -> float:
    """Wall time of statsforecast's AutoETS + AutoTheta + SeasonalNaive: each series' rolling-origin backtest
    (its engine fold count, folds of TOURISM_H months) and the forecast from its whole history."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive

    def sf() -> StatsForecast:
        return StatsForecast(models=[AutoETS(season_length=SEASON), AutoTheta(season_length=SEASON),
                                     SeasonalNaive(season_length=SEASON)], freq="MS", n_jobs=N_JOBS)

    t0 = time.perf_counter()
    by_folds = pd.Series(folds).reindex(df["unique_id"].unique()).fillna(0).astype(int)
    for k, ids in by_folds.groupby(by_folds):
        if k > 0:
            sf().cross_validation(df=df[df["unique_id"].isin(ids.index)], h=TOURISM_H, n_windows=int(k),
                                  step_size=TOURISM_H)
    sf().forecast(df=df, h=TOURISM_H)
    return time.perf_counter() - t0


def peer(n: int, repeats: int) -> None:
    """Print statsforecast's time, our engine's with Prophet off and whole, and the two ratios."""
    df = tourism(n)
    if df is None:
        return
    series = df["unique_id"].nunique()
    print(f"\npeer on Tourism monthly, {series} series (training part), horizon {TOURISM_H}, up to {FOLDS} folds; "
          f"{N_JOBS} processes each, median of {repeats} run(s):")
    times: dict[str, list[float]] = {"statsforecast ETS+Theta+SNaive": [], "engine, Prophet off": [],
                                     "whole engine": []}
    warm = df[df["unique_id"].isin(df["unique_id"].unique()[:2])]   # one-off imports and compiles, untimed
    run_statsforecast(warm, run_engine(warm, None)[1])
    for r in range(repeats):
        sec, folds = run_engine(df, PROPHET_OFF)
        times["engine, Prophet off"].append(sec)
        times["statsforecast ETS+Theta+SNaive"].append(run_statsforecast(df, folds))
        times["whole engine"].append(run_engine(df, None)[0])
        print(f"  run {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = [{"method": k, "median s": med[k], "series/s": series / med[k], "runs s": " ".join(f"{t:.1f}" for t in v)}
            for k, v in times.items()]
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    base = med["statsforecast ETS+Theta+SNaive"]
    for label, target in TARGETS.items():
        ratio = med[label] / base
        print(f"{label} / statsforecast: {ratio:.2f}x (target <= {target:g}x): {'met' if ratio <= target else 'not met'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=24, help="series in the speed-up comparison (0 = skip)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--total", type=int, default=1000, help="series in the total-wall-time run (0 = skip)")
    ap.add_argument("--series", type=int, default=366, help="Tourism monthly series in the peer comparison (0 = skip)")
    ap.add_argument("--peer-repeats", type=int, default=1)
    ap.add_argument("--fresh", type=int, default=3,
                    help="also F alternating first runs in new processes, local and dask (0 = skip)")
    ap.add_argument("--child", choices=["local", "dask"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    base = {"freq": "D", "horizon": HORIZON, "folds": FOLDS, "n_workers": 2, "seed": 0,
            "models": ["seasonal_naive", "ets", "prophet"]}
    local, dask = ForecastParams(engine="local", **base), ForecastParams(engine="dask", **base)
    if args.child:   # one timed run in this new process (--fresh): its seconds
        print(f"{timed(synthetic(args.n), local if args.child == 'local' else dask)[0]:.3f}")
        return 0
    print(f"daily series x {DAYS} days; models {'+'.join(base['models'])}, {FOLDS} folds x horizon {HORIZON}; "
          f"{os.cpu_count()} CPUs")
    if args.n > 0 and args.repeats > 0:
        series = synthetic(args.n)
        print(f"speed-up on {args.n} series, median of {args.repeats} alternating runs:")
        before = parallel_ceiling()
        times: dict[str, list[float]] = {"local loop": [], COLD: [], WARM: []}
        frames = {}
        with engine._local_cluster(dask) as running:     # the workers a warm run sends to, started untimed
            warm = ForecastParams(engine="dask", scheduler_address=running.scheduler_address, **base)
            for _ in range(args.repeats):
                for label, cfg in (("local loop", local), (COLD, dask), (WARM, warm)):
                    sec, frames[label] = timed(series, cfg)
                    times[label].append(sec)
                    print(f"  {label}: {sec:.1f} s", flush=True)
        compare(args.n, times, frames)
        print(f"the machine's ceiling, 2 processes over 1 on a fixed CPU loop: {before:.2f}x before, "
              f"{parallel_ceiling():.2f}x after (2.00x on an idle 2-core machine)")
    if args.n > 0 and args.fresh > 0:
        fresh(args.n, args.fresh)
    if args.total > 0:
        sec, _ = timed(synthetic(args.total, seed=1), dask)
        print(f"total wall time, {args.total} series, dask (2 workers): {sec:.1f} s "
              f"({args.total / sec:.2f} series/s)")
    if args.series > 0 and args.peer_repeats > 0:
        peer(args.series, args.peer_repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
