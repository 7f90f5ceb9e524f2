"""Benchmark: a styled 100,000-row churn sheet vs pandas.DataFrame.to_excel of the same data, unstyled.

Run: .venv/bin/python bench/workbook.py [n_rows]. Prints the median of 3 interleaved runs of each, the
speed-up pandas_time / our_time and whether it meets the project's target (>= 1.5x). Both write to memory
(no disk I/O); ours builds the whole five-sheet workbook, pandas only the one sheet.
Not a test: timings depend on the machine.
"""

from __future__ import annotations

import dataclasses
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import make_pack  # noqa: E402

from datastory import schema, workbook  # noqa: E402

TARGET = 1.5


def big_scores(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    prob = rng.random(n)
    value = rng.gamma(2.0, 800.0, n).round(2)
    df = pd.DataFrame({
        "customer_id": [f"C{i:07d}" for i in range(n)],
        "customer_name": [f"Customer {i} Ltd" for i in range(n)],
        "region": rng.choice(["North", "South"], n),
        "probability": prob, "red": prob >= 0.8, "annual_value": value,
        "revenue_at_risk": prob * value, "recency_days": rng.integers(0, 400, n),
        "frequency": rng.integers(1, 40, n),
        "last_order": pd.Timestamp("2025-05-31") - pd.to_timedelta(rng.integers(0, 400, n), unit="D"),
        "reasons": np.where(prob >= 0.8, "no order for 120 days (usually every 30)", ""),
        "rank_in_region": np.arange(1, n + 1), "newly_red": (prob >= 0.8) & (np.arange(n) % 5 == 0),
        "list": np.where(rng.random(n) < 0.7, "win back", "second purchase"),
        "status": np.where(prob >= 0.8, "call", np.where(prob >= 0.6, "watch", "")),
    })
    return schema.conform(df, schema.CHURN_SCORES, "churn_scores")


def seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(n: int = 100_000) -> None:
    scores = big_scores(n)
    pack = dataclasses.replace(make_pack(), churn_scores=scores)

    def pandas_plain() -> None:
        scores.to_excel(io.BytesIO(), engine="openpyxl", index=False, sheet_name="Churn risk")

    runs = []
    for _ in range(3):  # interleaved, so a change in machine load hits both sides alike
        runs.append((seconds(lambda: workbook.build(pack)), seconds(pandas_plain)))
    ours = statistics.median(r[0] for r in runs)
    theirs = statistics.median(r[1] for r in runs)
    print(f"rows: {n:,}")
    print(f"datastory.workbook.build (styled, table, all sheets): {ours:.2f} s (median of 3)")
    print(f"pandas.DataFrame.to_excel(engine='openpyxl'), unstyled: {theirs:.2f} s (median of 3)")
    speedup = theirs / ours
    print(f"speed-up (pandas time / our time): {speedup:.2f}x; target >= {TARGET}x: "
          f"{'met' if speedup >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
