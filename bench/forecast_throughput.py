"""Benchmark: forecast engine throughput, Dask LocalCluster vs a plain sequential loop, same settings, same run.

Run: .venv/bin/python bench/forecast_throughput.py [N] [--repeats R] [--total T]
     defaults: N = 24 series (0 = skip), R = 3 (median of R runs per engine), T = 1000 (total wall time,
     Dask; 0 = skip)

- Data: N synthetic daily series of 2 years (730 days), seeded: level x (trend + weekly + yearly
  seasonality) x lognormal noise.
- Work per series: the full forecast of the pipeline (engine.run): a rolling-origin backtest of
  seasonal naive, ETS and Prophet (3 folds, horizon 28 days), selection, refit, forecast.
- Timed: engine.run end to end (cluster start and stop included, as the pipeline pays them), once with
  engine "local" (one process, a plain loop) and once with engine "dask" (LocalCluster of 2
  single-threaded workers), alternating, median of R runs; both results must be byte-identical.
- Then the wall time of one Dask run over T series (T given on the command line, so the table says
  which T was run).
Not a test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd

from datastory.config import ForecastParams
from datastory.forecast import engine

DAYS, HORIZON, FOLDS = 730, 28, 3


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


def compare(n: int, times: dict[str, list[float]], frames: dict[str, pd.DataFrame]) -> None:
    """Print the speed-up table of the alternating runs."""
    same = frames["local loop"].equals(frames["dask (2 workers)"])
    rows = [{"engine": label, "median s": statistics.median(ts), "series/s": n / statistics.median(ts),
             "runs s": " ".join(f"{t:.1f}" for t in ts)} for label, ts in times.items()]
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    speedup = statistics.median(times["local loop"]) / statistics.median(times["dask (2 workers)"])
    print(f"speed-up dask / local: {speedup:.2f}x (target >= 1.8x); outputs identical: {same}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=24, help="series in the speed-up comparison (0 = skip)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--total", type=int, default=1000, help="series in the total-wall-time run (0 = skip)")
    args = ap.parse_args(argv)
    base = {"freq": "D", "horizon": HORIZON, "folds": FOLDS, "n_workers": 2, "seed": 0,
            "models": ["seasonal_naive", "ets", "prophet"]}
    local, dask = ForecastParams(engine="local", **base), ForecastParams(engine="dask", **base)
    print(f"daily series x {DAYS} days; models {'+'.join(base['models'])}, {FOLDS} folds x horizon {HORIZON}; "
          f"{os.cpu_count()} CPUs")
    if args.n > 0 and args.repeats > 0:
        series = synthetic(args.n)
        print(f"speed-up on {args.n} series, median of {args.repeats} alternating runs:")
        times: dict[str, list[float]] = {"local loop": [], "dask (2 workers)": []}
        frames = {}
        for _ in range(args.repeats):
            for label, cfg in (("local loop", local), ("dask (2 workers)", dask)):
                sec, frames[label] = timed(series, cfg)
                times[label].append(sec)
        compare(args.n, times, frames)
    if args.total > 0:
        sec, _ = timed(synthetic(args.total, seed=1), dask)
        print(f"total wall time, {args.total} series, dask (2 workers): {sec:.1f} s "
              f"({args.total / sec:.2f} series/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
