"""Benchmark: does making the forecasts add up cost accuracy? Base vs reconciled MASE per level, held out.

Run: .venv/bin/python bench/forecast_reconcile.py [SET ...] [--models M ...] [--freq W] [--horizon 13]
     SET: sample, dominant_sparse, late_launch, even; default: all of them.

- Hierarchies (company -> region -> region / product line), built from transaction logs by build_series:
  `sample`: the embedded sample company (datastory.sample, cleaned as ingest does); `dominant_sparse`: one region
  with 75% of revenue, a product line selling on 8% of days (tests/shapes.py hierarchy_log); `late_launch`: the
  same with a line launched 16 weeks before the end (a recent-level forecast without backtest);
  `even`: two regions x two lines of similar size (shapes.daily_log).
- Split: the last `horizon` periods of every series are held out (test). The engine runs on what is left: its
  rolling-origin backtests (the validation part) choose each series' model and the reconciliation method
  (`reconcile: auto`). The held-out part only reports.
- Printed per set: the method auto chose and the backtest figure of every method (validation: mean over levels
  of the per-level mean MASE, each fold reconciled with the covariance estimated on the other folds); then, per
  level, the held-out MASE of the base forecasts, of the chosen method and of every method (MASE = mean |y - yhat|
  over the held-out periods / the training history's mean |y_t - y_{t-m}|, m: one season when two are known), and
  the share of held-out actuals inside the ranges, base and reconciled (ranges are per series, moved with the
  forecast).
- Models: the pipeline's default list without Prophet (--models to change it), engine local; the figures
  compare reconciliations of the same base forecasts, so the model list matters little.
Not a test: the figures depend on the data and library versions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's generators of real log shapes
import shapes  # noqa: E402

from datastory import config, ingest, sample  # noqa: E402
from datastory.forecast import build_series, engine  # noqa: E402
from datastory.forecast import history as hs  # noqa: E402
from datastory.forecast import reconcile as rc  # noqa: E402
from datastory.forecast.scoring import naive_scale  # noqa: E402
from datastory.forecast.series import split  # noqa: E402

MODELS = ["seasonal_naive", "theta", "ets", "ces", "combination"]
LATE = (("Hardware", 1.0, 0), ("Services", 0.08, 0), ("Software", 1.0, 3 * 365 - 112))
SETS = {
    "sample": lambda: ingest.clean(sample.generate(config.SampleParams()), "sample")[0],
    "dominant_sparse": lambda: shapes.hierarchy_log(),
    "late_launch": lambda: shapes.hierarchy_log(lines=LATE, seed=9),
    "even": lambda: shapes.daily_log("2023-01-01", 3 * 365, seed=3),
}


def held_out(series_long: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training part, the last `horizon` periods) of every series."""
    cut = np.sort(series_long["ds"].unique())[-horizon]
    return series_long[series_long["ds"] < cut], series_long[series_long["ds"] >= cut]


def test_mase(frames: dict[str, pd.DataFrame | None], train: dict[str, pd.Series], test: dict[str, pd.Series],
              freq: str) -> dict[str, float]:
    """series_id -> held-out MASE of its forecast frame (NaN without a forecast or a scale)."""
    out = {}
    for sid, f in frames.items():
        y = test[sid]
        scale = naive_scale(hs.usable(train[sid].fillna(0.0)).to_numpy(float), freq)
        if f is None or not np.isfinite(scale) or scale == 0:
            out[sid] = float("nan")
            continue
        yhat = f["yhat"].reindex(y.index).to_numpy(float)
        out[sid] = float(np.nanmean(np.abs(y.to_numpy(float) - yhat)) / scale)
    return out


def coverage(frames: dict[str, pd.DataFrame | None], test: dict[str, pd.Series]) -> float:
    """Share of held-out actuals inside their series' range, over every series and period."""
    inside = []
    for sid, f in frames.items():
        if f is not None:
            y = test[sid].to_numpy(float)
            g = f.reindex(test[sid].index)
            inside.extend((g["yhat_lower"].to_numpy() <= y) & (y <= g["yhat_upper"].to_numpy()))
    return float(np.mean(inside)) if inside else float("nan")


def per_level(mase: dict[str, float], levels: dict[str, str]) -> dict[str, float]:
    s = pd.Series(mase)
    return {lv: float(s[[sid for sid in s.index if levels[sid] == lv]].mean()) for lv in rc.LEVELS}


def bench_set(name: str, cfg: config.ForecastParams) -> None:
    series_long = build_series(SETS[name](), cfg.freq)
    train_long, test_long = held_out(series_long, cfg.horizon)
    train, test = split(train_long), split(test_long)
    labels = {str(sid): (str(g["region"].iloc[0]), str(g["product_line"].iloc[0]))
              for sid, g in train_long.groupby("series_id", sort=True)}
    levels = {sid: rc.level(*lab) for sid, lab in labels.items()}
    done, _ = engine.finish(engine._fan_out(train, cfg, False, None), cfg)
    rows = {"base": per_level(test_mase({r["series_id"]: r["frame"] for r in done}, train, test, cfg.freq), levels)}
    chosen, info = rc.apply(done, labels, "auto")
    rows[f"auto = {info['method']}"] = per_level(
        test_mase({r["series_id"]: r["frame"] for r in chosen}, train, test, cfg.freq), levels)
    print_coverage = (f"held-out share inside the {cfg.interval_width:.0%} range: base "
                      f"{coverage({r['series_id']: r['frame'] for r in done}, test):.3f}, reconciled by "
                      f"{info['method']} {coverage({r['series_id']: r['frame'] for r in chosen}, test):.3f}")
    for method in rc.METHODS:
        rec, _ = rc.apply(done, labels, method)
        rows[method] = per_level(test_mase({r["series_id"]: r["frame"] for r in rec}, train, test, cfg.freq), levels)
    counts = pd.Series(levels).value_counts()
    print(f"\n== {name}: {len(labels)} series ({', '.join(f'{counts.get(lv, 0)} {lv}' for lv in rc.LEVELS)}), "
          f"{train_long['ds'].nunique()} training periods, horizon {cfg.horizon} {cfg.freq}")
    print(f"families reconciled: {info['families']['reconciled']}; left out: {info['families']['left_out'] or 'none'}; "
          f"largest gap before: {info['gap_before']:.1%}, after: {info['gap_after']:.2g}")
    print("validation (backtest) mean MASE per method: "
          + ", ".join(f"{k} {v:.4f}" for k, v in info.get("by_method", {}).items()) + f" -> {info['method']}")
    if "backtest_mase" in info:
        print("validation base vs reconciled per level: " + ", ".join(
            f"{lv} {v['base']:.4f} -> {v['reconciled']:.4f}" for lv, v in info["backtest_mase"].items()))
    table = pd.DataFrame(rows).T
    table["mean"] = table.mean(axis=1)
    print("held-out (test) MASE:")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(print_coverage)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="*", help=f"any of {', '.join(SETS)} (default: all)")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--freq", default="W")
    ap.add_argument("--horizon", type=int, default=13)
    ap.add_argument("--folds", type=int, default=3)
    args = ap.parse_args(argv)
    unknown = [s for s in args.sets if s not in SETS]
    if unknown:
        ap.error(f"unknown set {unknown[0]!r}; choose from {', '.join(SETS)}")
    cfg = config.ForecastParams(freq=args.freq, horizon=args.horizon, folds=args.folds, models=args.models,
                                engine="local")
    for name in args.sets or list(SETS):
        bench_set(name, cfg)


if __name__ == "__main__":
    main()
