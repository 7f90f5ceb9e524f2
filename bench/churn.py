"""Benchmark: score 1 million customers (features, calibrated model, red list with reasons); time and memory.

Run: .venv/bin/python bench/churn.py [n_customers]   (default 1,000,000)

- Data: a synthetic transaction log made with numpy (seeded). Each customer is acquired at a random
  day of a two-year period, buys at its own Poisson rate (mean gap about 45 days) until it leaves
  (exponential lifetime); about 3% of lines are returned later. The regions and product lines are
  those of the sample company, so the model trained there applies.
- Model: trained on the sample company (datastory.sample, default params) exactly as the churn stage
  trains it (stacked training cutoffs, boosting + isotonic calibration); training is not timed.
- Timed at the scoring date (the day after the log ends), for every customer active in the last 365 days:
  features_at, predict (predict_proba of the calibrated model), red_list (incl. reasons for everyone).
  Cheap steps: median of 3 runs; features_at: 1 run (it is the slow one; said in the output).
- Reference in the same run, so the figure means something on a noisy shared machine: the recency
  baseline's scoring (last purchase per customer by a pandas groupby, then its isotonic probability map).
- Memory: peak resident set size of the process (bench/_proc.peak_mb: VmHWM, a high-water mark that
  includes the log itself), printed after each phase.
Not a test: timings depend on the machine.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

try:
    import numpy as np
    import pandas as pd
    from _proc import peak_mb  # bench/_proc.py (bench/ is on the path of a bench script)

    from datastory import config, ingest, sample, schema
    from datastory.churn import features_at, red_list
    from datastory.churn.model import fit, fit_score_calibrator, labelled_at, plan_cutoffs, predict
    from datastory.churn.redlist import floors_from
except ImportError as exc:  # e.g. no scikit-learn
    print(f"bench/churn.py skipped: {exc}")
    sys.exit(0)

START, DAYS = np.datetime64("2024-10-01", "s"), 730     # the log covers two years
MEAN_GAP_DAYS, MEAN_LIFE_DAYS, RETURN_RATE = 45.0, 400.0, 0.03
LOOKBACK_DAYS = 365


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (bench/_proc.peak_mb)."""
    return peak_mb()


def draw_lines(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """The lines of `n` customers (0..n-1) as the module docstring describes, in customer order, purchases then
    returns: (cust: each purchase's customer, r_src: the purchases returned, all_cust: each line's customer,
    ts: each line's time, amount and discount: each purchase's). bench/churn_scale.py draws its chunks with it."""
    acq = rng.uniform(0, 0.8 * DAYS, n)
    leave = np.minimum(DAYS, acq + rng.exponential(MEAN_LIFE_DAYS, n))
    rate = np.exp(rng.normal(np.log(1 / MEAN_GAP_DAYS), 0.6, n))
    n_orders = 1 + np.minimum(rng.poisson(rate * (leave - acq)), 60)
    cust = np.repeat(np.arange(n), n_orders)
    day = acq[cust] + rng.uniform(0, 1, len(cust)) * (leave - acq)[cust]
    day[np.r_[0, np.cumsum(n_orders)[:-1]]] = acq            # the first order on the acquisition day
    ret = rng.random(len(cust)) < RETURN_RATE
    r_src = np.flatnonzero(ret)
    r_day = day[r_src] + rng.uniform(3, 45, len(r_src))
    keep = r_day < DAYS
    r_src, r_day = r_src[keep], r_day[keep]
    amount = np.round(rng.lognormal(5.0, 0.8, len(cust)), 2)
    discount = np.where(rng.random(len(cust)) < 0.3, np.round(rng.uniform(0, 0.4, len(cust)), 2), 0.0)
    all_cust = np.concatenate([cust, cust[r_src]])
    ts = START + (np.concatenate([day, r_day]) * 86400).astype("int64").astype("timedelta64[s]")
    return cust, r_src, all_cust, ts, amount, discount


def synthetic_log(n: int, regions: list[str], lines: list[str], seed: int = 0) -> pd.DataFrame:
    """A schema.TRANSACTIONS frame for `n` customers, built without a Python loop over customers."""
    rng = np.random.default_rng(seed)
    cust, r_src, all_cust, ts, amount, discount = draw_lines(rng, n)
    m = len(all_cust)
    ids = np.array([f"C{i:07d}" for i in range(n)], dtype=object)
    names = np.array([f"Customer {i} Ltd" for i in range(n)], dtype=object)
    region = np.array(regions, dtype=object)[rng.integers(0, len(regions), n)]
    line = np.array(lines, dtype=object)[rng.integers(0, len(lines), m)]
    frame = pd.DataFrame({
        "order_id": pd.Series(np.arange(m)).map("O{:09d}".format).to_numpy(dtype=object),
        "customer_id": ids[all_cust], "customer_name": names[all_cust], "timestamp": ts,
        "region": region[all_cust], "product_line": line,
        "quantity": np.concatenate([np.ones(len(cust)), -np.ones(len(r_src))]),
        "amount": np.concatenate([amount, -amount[r_src]]),
        "discount": np.concatenate([discount, discount[r_src]]),
        "is_return": np.r_[np.zeros(len(cust), bool), np.ones(len(r_src), bool)],
    })
    return schema.conform(frame, schema.TRANSACTIONS, "synthetic")


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """(median wall seconds over `runs` runs, result of the last run)."""
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(n: int = 1_000_000) -> None:
    cfg = config.ChurnParams()
    print(f"peak RSS (VmHWM, whole process, high-water mark) at start: {peak_rss_mib():,.0f} MiB")

    # --- train on the sample company, as the churn stage does (not timed)
    t0 = time.perf_counter()
    company, _ = ingest.clean(sample.generate(config.SampleParams()), "sample")
    cut = plan_cutoffs(company, cfg)
    lines = sorted(company["product_line"].astype(str).unique())
    regions = sorted(company["region"].astype(str).unique())
    train = pd.concat([labelled_at(company, c, cfg, lines, regions) for c in cut.train], ignore_index=True)
    fitted = fit(train, cfg.seed)
    recency_map = fit_score_calibrator(train["recency_days"].to_numpy(dtype="float64"),
                                       train["churned"].to_numpy(dtype="float64"))
    print(f"trained on the sample company: {len(train):,} customer-cutoff rows, {fitted.kind}, "
          f"{time.perf_counter() - t0:.1f} s (not part of the timings)")

    # --- the log
    t0 = time.perf_counter()
    tx = synthetic_log(n, regions, lines)
    score_date = tx["timestamp"].max().normalize() + pd.Timedelta(days=1)
    per = tx.groupby("customer_id", sort=False).size()
    print(f"synthetic log: {n:,} customers, {len(tx):,} lines ({int(tx['is_return'].sum()):,} returns) over "
          f"{DAYS} days, {per.mean():.1f} lines per customer (median {per.median():.0f}); "
          f"built in {time.perf_counter() - t0:.1f} s")
    print(f"peak RSS after building the log: {peak_rss_mib():,.0f} MiB")

    # --- the timed steps
    t_feat, feats = timed(lambda: features_at(tx, score_date, LOOKBACK_DAYS, product_lines=lines,
                                              regions=regions), runs=1)
    print(f"scored customers (active in the {LOOKBACK_DAYS} days before {score_date.date()}): {len(feats):,}")
    print(f"peak RSS after features: {peak_rss_mib():,.0f} MiB")
    t_pred, prob = timed(lambda: predict(fitted, feats), runs=3)
    print(f"peak RSS after predict: {peak_rss_mib():,.0f} MiB")
    floors = floors_from(train)   # each list's probability floor, from the training rows as the stage takes it
    t_red, scores = timed(lambda: red_list(feats, prob, cfg, floors), runs=3)
    print(f"peak RSS after red list: {peak_rss_mib():,.0f} MiB")

    def recency_baseline() -> np.ndarray:
        buys = tx.loc[~tx["is_return"] & (tx["timestamp"] < score_date), ["customer_id", "timestamp"]]
        last = buys.groupby("customer_id", sort=True)["timestamp"].max()
        last = last[last >= score_date - pd.Timedelta(days=LOOKBACK_DAYS)]
        return recency_map.predict((score_date - last).dt.days.to_numpy(dtype="float64"))

    t_base, base_prob = timed(recency_baseline, runs=3)
    if len(base_prob) != len(feats):
        raise SystemExit(f"the baseline scored {len(base_prob):,} customers, the model {len(feats):,}")
    total = t_feat + t_pred + t_red
    print(f"red: {int(scores['red'].sum()):,}; with at least one reason: {int((scores['reasons'] != '').sum()):,}")
    print(f"features_at (1 run):              {t_feat:7.2f} s")
    print(f"predict_proba (median of 3):      {t_pred:7.2f} s")
    print(f"red_list + reasons (median of 3): {t_red:7.2f} s")
    print(f"model scoring, total:             {total:7.2f} s")
    print(f"recency baseline scoring (groupby last purchase + isotonic map, median of 3): {t_base:.2f} s")
    print(f"ratio model scoring / recency baseline: {total / t_base:.1f}")
    print(f"peak RSS of the process (VmHWM): {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    arg = sys.argv[1] if len(sys.argv) > 1 else "1000000"
    if not arg.isdigit() or int(arg) < 1000:
        raise SystemExit(f"usage: python bench/churn.py [n_customers >= 1000], got {arg!r}")
    main(int(arg))
