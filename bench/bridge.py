"""Benchmark: what the revenue bridge and the movers add to the kpis stage; time, next to the KPIs themselves.

Run: .venv/bin/python bench/bridge.py [n_customers] [copies]   (default 5,000 customers, 4 copies)

- Data: the sample company (datastory.sample, default params but n_customers), cleaned by ingest, then
  stacked `copies` times with renamed customers and orders, so the log has `copies` times the lines and
  customers over the same three years.
- Timed, median of 3 runs each, monthly periods: kpis.compute (the reference, in the same run, so the ratio
  means something on a noisy shared machine), bridge.compute and bridge.movers.
- Also printed: the largest gap between the sum of the bridge's steps and the change in total, in cents
  (it must be 0), over every segment.
Not a test: timings depend on the machine.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import pandas as pd

from datastory import bridge, config, ingest, kpis, sample, schema


def log(n_customers: int, copies: int) -> pd.DataFrame:
    tx = ingest.clean(sample.generate(config.SampleParams(n_customers=n_customers)), "sample")[0]
    parts = [tx.assign(customer_id=f"{k}-" + tx["customer_id"], order_id=f"{k}-" + tx["order_id"])
             for k in range(copies)]
    return schema.conform(pd.concat(parts, ignore_index=True), schema.TRANSACTIONS, "transactions")


def timed(fn) -> float:
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    copies = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    tx = log(n, copies)
    end = tx["timestamp"].max()
    print(f"{len(tx):,} lines, {tx['customer_id'].nunique():,} customers, {tx['region'].nunique()} regions")
    ref = timed(lambda: kpis.compute(tx, "M"))
    steps = timed(lambda: bridge.compute(tx, "M", end))
    top = timed(lambda: bridge.movers(tx, "M", end))
    print(f"kpis.compute     {ref:7.2f} s")
    print(f"bridge.compute   {steps:7.2f} s  ({steps / ref:.2f} x kpis.compute)")
    print(f"bridge.movers    {top:7.2f} s  ({top / ref:.2f} x kpis.compute)")
    b = bridge.compute(tx, "M", end)
    worst = 0
    for _, rows in b.groupby("region"):
        c = dict(zip(rows["part"], np.rint(rows["amount"].to_numpy() * 100).astype(int), strict=True))
        worst = max(worst, abs(sum(c[k] for k in bridge.STEPS) - (c["current"] - c["previous"])))
    print(f"largest gap between the steps and the change: {worst} cent(s) over {b['region'].nunique()} segments")


if __name__ == "__main__":
    main()
