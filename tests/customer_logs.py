"""Generators of real customer-log shapes for the churn stage's tests (schema.TRANSACTIONS, seeded).

- mostly one-time buyers: most customers buy on one day and never again (a CD shop, a gift site);
- heavy-tailed B2B: a handful of accounts make most of the revenue, one of them about 10% of it, and it
  bought the day before the data ends;
- short: nine months of history;
- several orders on one day: a customer's first visit can be two or three orders on the same day.
Customers buy at their own pace until they leave for good; some come back after a quiet spell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from datastory import schema

REGIONS = ("North", "South", "East")


def customer_log(n_customers: int = 600, seed: int = 1, start: str = "2024-01-01", end: str = "2025-12-31",
                 one_time_share: float = 0.3, whale_share: float = 0.0, same_day_orders: float = 0.1) -> pd.DataFrame:
    """A log of `n_customers`; `one_time_share` of them buy on one day only; with `whale_share` > 0 one extra
    account makes about that share of all revenue and buys until the day before the end."""
    rng = np.random.default_rng(seed)
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    span = (t1 - t0).days + 1
    rows: list[tuple] = []
    for i in range(n_customers):
        first = rng.uniform(0, span * 0.85)
        if rng.random() < one_time_share:
            days = np.array([first])
        else:
            life = rng.exponential(span * 0.6)
            gaps = rng.exponential(rng.lognormal(np.log(30), 0.6), size=300)
            days = first + np.concatenate([[0.0], np.cumsum(gaps)])
            days = days[days < min(span, first + life)]
        size = rng.lognormal(4.5, 0.8)
        for k, d in enumerate(days):
            n_orders = 1 + int(rng.random() < same_day_orders) * int(rng.integers(1, 3))
            for j in range(n_orders):
                rows.append((f"O{i:05d}-{k}-{j}", f"C{i:05d}", f"Customer {i}", t0 + pd.Timedelta(days=float(d)),
                             REGIONS[i % 3], ("Hardware", "Software")[(i + k) % 2],
                             round(float(size * rng.lognormal(0, 0.3)), 2)))
    if whale_share > 0:
        total = sum(r[-1] for r in rows)
        weekly = np.arange(0, span - 1, 7.0)
        per = total * whale_share / (1 - whale_share) / len(weekly)
        for k, d in enumerate(weekly):
            rows.append((f"W-{k}", "WHALE", "Whale Holdings", t0 + pd.Timedelta(days=float(d)), "North",
                         "Hardware", round(per, 2)))
        rows.append(("W-last", "WHALE", "Whale Holdings", t1 - pd.Timedelta(days=1), "North", "Hardware",
                     round(per, 2)))
    df = pd.DataFrame(rows, columns=["order_id", "customer_id", "customer_name", "timestamp", "region",
                                     "product_line", "amount"])
    df = df[df["timestamp"] <= t1 + pd.Timedelta(hours=23)]
    df = df.assign(quantity=1.0, discount=0.0, is_return=False)
    return schema.conform(df.sort_values(["timestamp", "order_id"], kind="stable"), schema.TRANSACTIONS, "log")
