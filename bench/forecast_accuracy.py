"""Benchmark: forecast accuracy and range coverage on Tourism (monthly, quarterly) and real daily series.

Run: .venv/bin/python bench/forecast_accuracy.py [SET ...] [--split test|validation] [--limit N]
     SET: tourism_monthly, tourism_quarterly, daily (every set of bench/daily_sets.py installed here), or
     one daily set by name; default: all of them.

- Data. Tourism from $DATASTORY_BENCH_DATA/tourism (default <repo>/../shared/benchmarks/tourism; never copied
  into the repo; absent -> a skip line). Daily sets from data files inside PyPI packages (bench/daily_sets.py;
  a set whose package is absent is skipped with the pip line that installs it). Daily histories are cut to
  the last --history-days days (default 3 years) before the held-out part, so Prophet's fits stay affordable;
  missing days stay missing (the engine interpolates them and never scores them, as forecast-file does).
- Splits. `test` (the default) scores on the held-out part: Tourism's official test horizon (24 months, 8
  quarters), the last h days of each daily series. `validation` removes that part and holds out the last h
  periods of what remains instead. Every choice in the engine (candidate models, the selection margin's
  candidates, the range method) was made on `validation` figures; `test` only reports. Inside one run the
  engine makes its own choices (the margin, the weights, the model per series) on its rolling-origin
  backtests of the training part only.
- Methods, each in the same run: seasonal naive (the season when two are known, as the engine's baseline);
  Prophet with every setting at its default (MAP fit, point forecast: the reference's setup); our engine with
  the pipeline's default models (or --models), one engine run per set, so its ranges pool that set's series,
  and with the public holidays of the country each daily set comes from (HOLIDAYS; --no-holidays to drop).
- Metrics, means over series: MASE = mean |y - yhat| / in-sample mean |y_t - y_{t-m}| (m = 12, 4, 7);
  sMAPE in %; coverage = share of held-out actuals inside the engine's 80% range (nominal 0.80), over all
  points of the set; width = mean range width / the MASE scale (a range's size in units of a naive error).
- Totals: the range of each series' total over the held-out horizon (the report's "X to Y over the next h
  periods"), made two ways in the same engine run: the engine's own (intervals.fit_total: conformal bounds of
  the backtest's totals) and the per-step bounds summed (what the report showed before). Printed per set:
  coverage = share of series whose held-out total falls inside (nominal 0.80; only series with every held-out
  actual known), width = mean (upper - lower) / central total; and the engine's out-of-fold backtest figure.
  A third way, from the same fits: the totals' range always read from the pooled totals, every total counted as
  independent (what the effective count guards against).
  No constant was chosen for it (the fewest totals, 20 at 80%, follows from the conformal rank).
- --no-reference skips default Prophet (the slowest method) when only the engine's figures are wanted.
- Engine: Dask LocalCluster of 2 single-threaded workers (the pipeline's default).
Not a test: the figures depend on library versions; timings on the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import daily_sets  # noqa: E402  (the bench folder's own loader)

from datastory.forecast import engine, intervals, models  # noqa: E402
from datastory.forecast import file as ffile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOURISM = {"tourism_monthly": {"file": "monthly", "freq": "M", "h": 24, "m": 12},
           "tourism_quarterly": {"file": "quarterly", "freq": "Q", "h": 8, "m": 4}}
FOLDS = 3
# Where each daily set was recorded: the engine's Prophet learns that country's public holidays (forecast-file
# --holidays), as a user who knows their calendar would set it. electricity mixes Victoria and England: none.
HOLIDAYS = {"births_us": "US", "chicago_l": "US", "nyc_flights": "US", "nyc_flights_sparse": "US",
            "bank_calls": "US", "airquality": "US", "akl_pedestrians": "NZ"}
COVERAGE_POINTS: dict[str, tuple[float, float]] = {}  # set -> (held-out points inside the range, points)
TOTALS: list[dict] = []  # per set: coverage and width of the total's range, made each way
REFERENCE = {"tourism_monthly": "reference (data README): seasonal naive 1.6309, default Prophet 2.2232, "
                                "statsforecast AutoETS 1.5310, R ETS 1.54 (MASE, test)",
             "tourism_quarterly": "reference (data README): seasonal naive 1.6990, R ETS 1.59 (MASE, test)"}


def data_dir() -> Path:
    return Path(os.environ.get("DATASTORY_BENCH_DATA", ROOT.parent / "shared" / "benchmarks")) / "tourism"


def tourism(name: str, limit: int | None) -> pd.DataFrame:
    """Long frame unique_id, ds, y, split (train/test) of one Tourism set."""
    df = pd.read_csv(data_dir() / f"tourism_{TOURISM[name]['file']}_long.csv", parse_dates=["ds"])
    ids = sorted(df["unique_id"].unique(), key=lambda s: int(s[1:]))[:limit]
    return df[df["unique_id"].isin(ids)]


def daily(name: str, limit: int | None, history_days: int) -> pd.DataFrame:
    """A daily set as unique_id, ds, y, split: the last h days of each series' range are the test part."""
    h = daily_sets.SETS[name].horizon
    df = daily_sets.load(name)
    ids = sorted(df["unique_id"].unique())[:limit]
    parts = []
    for _sid, g in df[df["unique_id"].isin(ids)].groupby("unique_id", sort=True):
        last = g["ds"].max()
        cut = last - pd.Timedelta(days=h)
        g = g[g["ds"] > cut - pd.Timedelta(days=history_days)]
        parts.append(g.assign(split=np.where(g["ds"] > cut, "test", "train")))
    return pd.concat(parts, ignore_index=True)


def validation(df: pd.DataFrame, h: int, freq: str) -> pd.DataFrame:
    """The training part only, its last h periods relabelled as the held-out part."""
    parts = []
    for _sid, g in df[df["split"] == "train"].groupby("unique_id", sort=True):
        last = g["ds"].max()
        cut = pd.date_range(end=last, periods=h + 1, freq=ffile.OFFSET[freq])[0]
        parts.append(g.assign(split=np.where(g["ds"] > cut, "test", "train")))
    return pd.concat(parts, ignore_index=True)


def mase_scale(train: pd.Series, m: int) -> float:
    """In-sample mean |y_t - y_{t-m}| over pairs of known values, on the full period grid."""
    y = train.to_numpy(float)
    d = np.abs(y[m:] - y[:-m])
    return float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")


def on_grid(g: pd.DataFrame, freq: str) -> pd.Series:
    idx = pd.date_range(g["ds"].min(), g["ds"].max(), freq=ffile.OFFSET[freq])
    return pd.Series(g["y"].to_numpy(float), index=pd.DatetimeIndex(g["ds"])).reindex(idx)


def default_prophet(train: pd.Series, future: pd.DatetimeIndex) -> np.ndarray:
    """Prophet() with every setting at its default, MAP fit, point forecast."""
    models._quiet_prophet()
    from prophet import Prophet

    known = train.dropna()
    model = Prophet(uncertainty_samples=0)
    model.fit(pd.DataFrame({"ds": known.index, "y": known.to_numpy()}))
    return model.predict(pd.DataFrame({"ds": future}))["yhat"].to_numpy()


def run_default_prophet(train: dict[str, pd.Series], future: dict[str, pd.DatetimeIndex]) -> dict[str, dict]:
    """Default Prophet on every series, on the engine's own kind of LocalCluster (2 warm, quiet workers)."""
    from distributed import Client

    with engine._local_cluster(ffile.file_params("D", 1, engine_name="dask").model_copy(
            update={"n_workers": 2})) as cluster, Client(cluster) as client:
        futures = {sid: client.submit(default_prophet, y, future[sid], pure=False) for sid, y in train.items()}
        return {sid: {"yhat": fut.result()} for sid, fut in futures.items()}


def run_engine(train: dict[str, pd.Series], freq: str, h: int, models_: list[str] | None,
               holidays: str | None) -> tuple[dict[str, dict], dict, dict]:
    """Our engine on the training parts (one run, as forecast-file does): backtest, select, refit, forecast.
    Also the metrics of the same fits with every backtest total counted as independent (the totals' range
    always read from the pooled totals), for the totals' table: the fits are reused, only `finish` reruns."""
    cfg = ffile.file_params(freq, h, FOLDS, models_, "dask", 0, holidays=holidays)
    long = pd.concat([pd.DataFrame({"unique_id": sid, "ds": y.index, "y": y.to_numpy()})
                      for sid, y in train.items()], ignore_index=True).dropna(subset=["y"])
    fits: dict[str, list] = {}
    fan_out = engine._fan_out

    def once(*args: object) -> list:
        fits.setdefault("results", fan_out(*args))
        return fits["results"]

    with mock.patch.object(engine, "_fan_out", once):
        res = engine.run(ffile.to_series_long(long, freq), cfg, progress=False)
        with mock.patch.object(intervals, "effective_totals", lambda tot: (float(len(tot)), 0.0)):
            pooled = engine.run(ffile.to_series_long(long, freq), cfg, progress=False).metrics
    fut = res.frame[res.frame["is_forecast"]]
    out = {str(sid): {c: g.sort_values("ds")[c].to_numpy() for c in ("yhat", "yhat_lower", "yhat_upper")} | {
        "ds": pd.DatetimeIndex(g.sort_values("ds")["ds"])} for sid, g in fut.groupby("series_id")}
    return out, res.metrics, pooled


def score(test: pd.Series, fc: dict, scale: float) -> dict[str, float]:
    """MASE, sMAPE %, coverage counts and scaled width of one series on its held-out actuals."""
    yhat = pd.Series(fc["yhat"], index=fc["ds"]).reindex(test.index).to_numpy(float)
    y = test.to_numpy(float)
    ok = np.isfinite(y)
    y, yhat = y[ok], yhat[ok]
    err = np.abs(y - yhat)
    den = np.abs(y) + np.abs(yhat)
    out = {"MASE": float(np.mean(err) / scale),
           "sMAPE": float(100 * np.mean(np.where(den == 0, 0.0, 2 * err / np.where(den == 0, 1, den))))}
    if "yhat_lower" in fc:
        lo = pd.Series(fc["yhat_lower"], index=fc["ds"]).reindex(test.index).to_numpy(float)[ok]
        hi = pd.Series(fc["yhat_upper"], index=fc["ds"]).reindex(test.index).to_numpy(float)[ok]
        out |= {"inside": float(np.sum((y >= lo) & (y <= hi))), "points": float(len(y)),
                "width": float(np.mean(hi - lo) / scale)}
    return out


def total_ranges(label: str, test: dict[str, pd.Series], fc: dict[str, dict], metrics: dict,
                 pooled: dict) -> dict:
    """Held-out coverage and relative width of each series' total range: as the engine ships it, read from the
    pooled totals whatever their effective count (`pooled`: metrics of the same fits), and the summed per-step."""
    rows = []
    for sid, te in test.items():
        rec, f = (metrics.get("series") or {}).get(sid) or {}, fc.get(sid)
        alt = (pooled.get("series") or {}).get(sid) or {}
        y = te.to_numpy(float)
        if f is None or not np.isfinite(y).all() or rec.get("total") is None or len(y) != len(f["yhat"]):
            continue   # a total is only known when every held-out actual is
        actual, mid = float(y.sum()), float(rec["total"])
        if mid <= 0:
            continue
        ways = {"engine": (rec["total_lower"], rec["total_upper"]),
                "pooled": (alt.get("total_lower", np.nan), alt.get("total_upper", np.nan)),
                "summed": (float(np.sum(f["yhat_lower"])), float(np.sum(f["yhat_upper"])))}
        rows.append({k: v for way, (lo, hi) in ways.items()
                     for k, v in ((f"{way} cov", lo <= actual <= hi), (f"{way} width", (hi - lo) / mid))})
    t = pd.DataFrame(rows)
    tr, tp = metrics.get("total_range") or {}, pooled.get("total_range") or {}
    out = {"set": label, "series": len(t), "totals": tr.get("totals"), "effective": tr.get("effective_totals"),
           "between": tr.get("between_folds"), "engine how": "backtested" if tr.get("how") == "backtested" else "summed",
           "backtest cov": (metrics.get("overall") or {}).get("total_coverage"),
           "pooled backtest cov": (pooled.get("overall") or {}).get("total_coverage")}
    if tp.get("how") != "backtested":
        t["pooled cov"], t["pooled width"] = np.nan, np.nan   # too few totals even counted as independent
    for col in ("engine cov", "engine width", "pooled cov", "pooled width", "summed cov", "summed width"):
        out[col] = t[col].astype(float).mean() if len(t) else np.nan
    return out


def bench(label: str, df: pd.DataFrame, freq: str, h: int, m: int, models_: list[str] | None,
          holidays: str | None = None, reference: bool = True) -> pd.DataFrame:
    train, test, future, scales = {}, {}, {}, {}
    for sid, g in df.groupby("unique_id", sort=True):
        tr = on_grid(g[g["split"] == "train"], freq)
        idx = pd.date_range(tr.index[-1], periods=h + 1, freq=ffile.OFFSET[freq])[1:]
        te = pd.Series(g.loc[g["split"] == "test", "y"].to_numpy(float),
                       index=pd.DatetimeIndex(g.loc[g["split"] == "test", "ds"])).reindex(idx)
        scale = mase_scale(tr, m)
        if not np.isfinite(scale) or scale == 0 or te.notna().sum() == 0:
            continue  # no MASE for a series whose training part has no seasonal change, or no test actual
        train[sid], test[sid], future[sid], scales[sid] = tr, te, idx, scale
    fc: dict[str, dict[str, dict]] = {}
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    cfg = ffile.file_params(freq, h)
    fc["seasonal naive"] = {sid: {"yhat": models.seasonal_naive(y, h, freq, cfg).to_numpy(), "ds": future[sid]}
                            for sid, y in train.items()}
    secs["seasonal naive"] = time.perf_counter() - t0
    if reference:
        t0 = time.perf_counter()
        fc["Prophet (default)"] = {sid: v | {"ds": future[sid]}
                                   for sid, v in run_default_prophet(train, future).items()}
        secs["Prophet (default)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fc["engine"], metrics, pooled = run_engine(train, freq, h, models_, holidays)
    secs["engine"] = time.perf_counter() - t0
    TOTALS.append(total_ranges(label, test, fc["engine"], metrics, pooled))
    rows = []
    COVERAGE_POINTS[label] = tuple(sum(score(test[sid], fc["engine"][sid], scales[sid])[k] for sid in train)
                                   for k in ("inside", "points"))
    for method, per in fc.items():
        s = [score(test[sid], per[sid], scales[sid]) for sid in train if sid in per]
        row = {"set": label, "method": method, "series": len(s),
               "MASE": np.mean([x["MASE"] for x in s]), "sMAPE": np.mean([x["sMAPE"] for x in s])}
        if "inside" in s[0]:
            row |= {"coverage": sum(x["inside"] for x in s) / sum(x["points"] for x in s),
                    "width": np.mean([x["width"] for x in s])}
        rows.append(row | {"seconds": secs[method]})
    wins = {k: v for k, v in metrics["wins"].items() if v}
    print(f"  {label}: engine wins {wins}, selection margin {metrics['selection_margin']}, "
          f"backtest coverage {metrics['overall']['coverage']:.3f}", flush=True)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="*", default=["tourism_monthly", "tourism_quarterly", "daily"])
    ap.add_argument("--split", choices=["test", "validation"], default="test")
    ap.add_argument("--limit", type=int, default=None, help="only the first N series of each set")
    ap.add_argument("--history-days", type=int, default=3 * 365, help="daily history kept before the held-out part")
    ap.add_argument("--models", default=None, help="engine candidates, comma-separated (default: the pipeline's)")
    ap.add_argument("--no-reference", action="store_true", help="skip default Prophet (engine figures only)")
    ap.add_argument("--no-holidays", action="store_true", help="run the engine without the daily sets' holidays")
    args = ap.parse_args(argv)
    models_ = [x.strip() for x in args.models.split(",")] if args.models else None
    names = []
    for s in args.sets:
        names += daily_sets.available() if s == "daily" else [s]
    tables = []
    for name in names:
        if name in TOURISM:
            if not data_dir().is_dir():
                print(f"{name} skipped: no benchmark data at {data_dir()} (set DATASTORY_BENCH_DATA to the "
                      "folder holding tourism/)")
                continue
            spec = TOURISM[name]
            df, freq, h, m = tourism(name, args.limit), spec["freq"], spec["h"], spec["m"]
        elif name in daily_sets.SETS:
            h, freq, m = daily_sets.SETS[name].horizon, "D", 7
            df = daily(name, args.limit, args.history_days)
        else:
            ap.error(f"unknown set {name!r}")
        if args.split == "validation":
            df = validation(df, h, freq)
        tables.append(bench(name, df, freq, h, m, models_, None if args.no_holidays else HOLIDAYS.get(name),
                            reference=not args.no_reference))
    if not tables:
        return 0
    table = pd.concat(tables, ignore_index=True)
    print(f"\nsplit: {args.split}; engine folds {FOLDS}; 80% ranges; Dask LocalCluster 2 workers")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    dailies = table[~table["set"].isin(list(TOURISM))]
    if len(dailies):
        w = dailies.pivot_table(index="method", values="MASE", aggfunc="mean")
        per_series = dailies.assign(total=dailies["MASE"] * dailies["series"]).groupby("method")[
            ["total", "series"]].sum()
        print("\ndaily sets: mean MASE over sets / over series")
        print(pd.concat([w["MASE"], per_series["total"] / per_series["series"]], axis=1,
                        keys=["per set", "per series"]).to_string(float_format=lambda v: f"{v:.4f}"))
        eng = dailies[dailies["method"] == "engine"]
        inside, points = (sum(COVERAGE_POINTS[s][k] for s in eng["set"]) for k in (0, 1))
        pooled_daily = inside / points
        print(f"engine coverage per daily set: {', '.join(f'{c:.3f}' for c in eng['coverage'])}; "
              f"over all daily points: {pooled_daily:.3f}")
    totals = pd.DataFrame(TOTALS)
    print("\nrange of each series' total over the held-out horizon (80%): as the engine ships it, pooled, and the "
          "per-step bounds summed; cov = share of totals inside, width = mean width / central total")
    print(totals.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("pooled: the same fits, every backtest total counted as independent (no effective-count fallback)")
    for name in names:
        if name in REFERENCE and args.split == "test":
            print(REFERENCE[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
