"""What `datastory check-data` reads from the kept transactions: a few counts and two small frames, whatever
the number of lines, so that either ingest engine can count them (pandas from the frame, `of`; DuckDB out of
core, `ingest_stream.check`) and the summary and the verdict read the same thing.

- lines, sales (amount > 0) and negative lines; product lines; whether a region or product line is named
  `schema.ALL`, the label of totals;
- `segments`: kept lines (`size`) and revenue (`sum`) per region, in the regions' code-point order;
- `days`: one row per customer, day and is_return, the timestamp at midnight, as schema.TRANSACTIONS columns
  (the others empty or zero), sorted. The churn stage's cutoffs fall at midnight and the forecast counts whole days,
  so their plans and labels read the same from it as from every line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from . import schema

DAY_COLUMNS = ["customer_id", "timestamp", "is_return"]


@dataclass(frozen=True)
class Profile:
    lines: int
    sales: int
    negatives: int
    product_lines: int
    named_all: bool
    segments: pd.DataFrame   # index region; columns size (lines), sum (revenue)
    days: pd.DataFrame       # schema.TRANSACTIONS; one row per customer_id, day and is_return


def make(*, lines: int, sales: int, negatives: int, product_lines: int, named_all: bool, segments: pd.DataFrame,
         days: pd.DataFrame) -> Profile:
    """A Profile in its one form, from what an engine counted: `segments` with index region and columns size and
    sum (any order), `days` with DAY_COLUMNS (distinct; timestamps at midnight; any order)."""
    seg = pd.DataFrame({"size": segments["size"].to_numpy(dtype=np.int64),
                        "sum": segments["sum"].to_numpy(dtype=np.float64)},
                       index=pd.Index(segments.index.astype(str), name="region")).sort_index()
    d = pd.DataFrame({"customer_id": days["customer_id"].astype("string[pyarrow]"),
                      "timestamp": days["timestamp"].astype("datetime64[ns]"),
                      "is_return": days["is_return"].astype(bool)})
    d = d.sort_values(DAY_COLUMNS, kind="stable", ignore_index=True)
    n = len(d)
    empty = pd.arrays.ArrowStringArray(pa.nulls(n, pa.string()))   # a validity bitmap, no values
    zero = np.zeros(n)   # one array for the three numbers the rules never read
    frame = pd.DataFrame({"order_id": empty, "customer_id": d["customer_id"], "customer_name": d["customer_id"],
                          "timestamp": d["timestamp"], "region": empty, "product_line": empty, "quantity": zero,
                          "amount": zero, "discount": zero, "is_return": d["is_return"]}, copy=False)
    return Profile(lines=int(lines), sales=int(sales), negatives=int(negatives), product_lines=int(product_lines),
                   named_all=bool(named_all), segments=seg,
                   days=schema.conform(frame, schema.TRANSACTIONS, "profile days", copy=False))


def of(tx: pd.DataFrame) -> Profile:
    """The profile of cleaned transactions (schema.TRANSACTIONS), in memory."""
    amount = tx["amount"]
    named_all = bool((tx["region"] == schema.ALL).any() or (tx["product_line"] == schema.ALL).any())
    days = pd.DataFrame({"customer_id": tx["customer_id"], "timestamp": tx["timestamp"].dt.normalize(),
                         "is_return": tx["is_return"].astype(bool)}).drop_duplicates()
    return make(lines=len(tx), sales=int((amount > 0).sum()), negatives=int((amount < 0).sum()),
                product_lines=tx["product_line"].nunique(), named_all=named_all,
                segments=tx.groupby("region", observed=True)["amount"].agg(["size", "sum"]), days=days)
