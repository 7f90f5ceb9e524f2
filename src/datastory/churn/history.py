"""What the churn model reads of the transactions: the data's span, its product lines and regions, the features
and the labels at a cutoff. Two histories give the same answers, so `churn.run` and `churn.run_file` share
every line of the modelling code (`churn._run` takes a history):
- `InMemory(tx)`: the transactions frame, through features_at and labels_at (the calls the stage always made);
- `FromFile(path)`: the transactions Parquet file (ingest's output) in bounded memory: the features shard of
  customers by shard (shards.features_from_file; at several cutoffs from one split of the file,
  features_many), the span, the distinct product lines and regions, the active customers and the labels'
  buyer sets from DuckDB (streaming.duckdb: working memory streaming.MEMORY_LIMIT, spilling beyond
  it). Memory then holds the features frames (one row per active customer and cutoff), not the lines.
Both check what features_at and labels_at check, in their order, with their messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .. import streaming
from . import shards
from .features import as_cutoff, check_lookback, check_transactions, data_span, features_at
from .labels import check_window_in, labels_at
from .sampling import Pick, rows


class History(Protocol):
    how: str                                              # said in the notebook: how the transactions are read

    def check(self) -> None: ...                          # check_transactions' errors
    @property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp]: ...  # data_span: (first day, day after the last)
    @property
    def product_lines(self) -> list[str]: ...             # every product line, sorted (the pl_ columns)
    @property
    def regions(self) -> list[str]: ...                   # every region, sorted (the region_ columns)
    def size(self) -> tuple[int, int]: ...                # (lines, distinct customers)
    def active(self, start: object, end: object) -> int: ...  # customers with a purchase in [start, end)
    def features(self, when: object, lookback_days: int, product_lines: list[str],
                 regions: list[str]) -> pd.DataFrame: ...  # features_at's frame
    def features_many(self, whens: list[object], lookback_days: int, product_lines: list[str], regions: list[str],
                      picks: list[Pick | None] | None = None) -> list[pd.DataFrame]: ...
    # features_at's frame at each cutoff; with picks, a cutoff's pick (not None) applied to its frame
    def labels(self, when: object, window_days: int, lookback_days: int) -> pd.DataFrame: ...  # labels_at's


@dataclass(frozen=True, eq=False)
class InMemory:
    """The history of the transactions frame `tx` (schema.TRANSACTIONS)."""
    tx: pd.DataFrame
    how: str = "with the transactions in memory"

    def check(self) -> None:
        check_transactions(self.tx)

    @property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return data_span(self.tx)

    @property
    def product_lines(self) -> list[str]:
        return sorted(self.tx["product_line"].astype(str).unique())

    @property
    def regions(self) -> list[str]:
        return sorted(self.tx["region"].astype(str).unique())

    def size(self) -> tuple[int, int]:
        return len(self.tx), int(self.tx["customer_id"].nunique())

    def active(self, start: object, end: object) -> int:
        stamp = self.tx["timestamp"]
        buys = ~self.tx["is_return"].astype(bool) & (stamp >= as_cutoff(start)) & (stamp < as_cutoff(end))
        return int(self.tx.loc[buys, "customer_id"].nunique())

    def features(self, when: object, lookback_days: int, product_lines: list[str],
                 regions: list[str]) -> pd.DataFrame:
        return features_at(self.tx, when, lookback_days, product_lines=product_lines, regions=regions)

    def features_many(self, whens: list[object], lookback_days: int, product_lines: list[str], regions: list[str],
                      picks: list[Pick | None] | None = None) -> list[pd.DataFrame]:
        frames = [self.features(w, lookback_days, product_lines, regions) for w in whens]
        return [rows(f, p) for f, p in zip(frames, picks or [None] * len(whens), strict=True)]

    def labels(self, when: object, window_days: int, lookback_days: int) -> pd.DataFrame:
        return labels_at(self.tx, when, window_days, lookback_days)


def _text(value: Any) -> str:
    return "<NA>" if value is None else str(value)   # pandas' astype(str) of a missing string


@dataclass(frozen=True, eq=False)
class FromFile:
    """The history of the transactions Parquet file at `path`; `per_shard`: lines per features shard (default
    shards.rows_per_shard())."""
    path: Path
    per_shard: int | None = None
    how: str = "read from the file shard by shard (bounded memory)"

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        with streaming.duckdb(self.path) as con:
            return con.execute(sql, params or {}).fetchall()

    def check(self) -> None:
        shards.check_file(self.path)

    @cached_property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        (first, last), = self._rows('SELECT min("timestamp"), max("timestamp") FROM tx')
        return pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize() + pd.Timedelta(days=1)

    def _distinct(self, column: str) -> list[str]:
        return sorted(_text(v) for (v,) in self._rows(f"SELECT DISTINCT {column} FROM tx"))

    @cached_property
    def product_lines(self) -> list[str]:
        return self._distinct("product_line")

    @cached_property
    def regions(self) -> list[str]:
        return self._distinct("region")

    def size(self) -> tuple[int, int]:
        (lines, customers), = self._rows("SELECT count(*), count(DISTINCT customer_id) FROM tx")
        return int(lines), int(customers)

    def active(self, start: object, end: object) -> int:
        (n,), = self._rows("""SELECT count(DISTINCT customer_id) FROM tx
                              WHERE NOT is_return AND "timestamp" >= $lo AND "timestamp" < $hi""",
                           {"lo": as_cutoff(start).to_pydatetime(), "hi": as_cutoff(end).to_pydatetime()})
        return int(n)

    def features(self, when: object, lookback_days: int, product_lines: list[str],
                 regions: list[str]) -> pd.DataFrame:
        return shards.features_from_file(self.path, when, lookback_days, product_lines=product_lines,
                                         regions=regions, per_shard=self.per_shard)

    def features_many(self, whens: list[object], lookback_days: int, product_lines: list[str], regions: list[str],
                      picks: list[Pick | None] | None = None) -> list[pd.DataFrame]:
        """The features at every cutoff from one split of the file into shards (shards.features_many_from_file;
        a cutoff's pick applied to each shard's lines: only the picked customers' features are computed)."""
        return shards.features_many_from_file(self.path, whens, lookback_days, product_lines=product_lines,
                                              regions=regions, per_shard=self.per_shard, picks=picks)

    def labels(self, when: object, window_days: int, lookback_days: int) -> pd.DataFrame:
        """labels_at's frame: the customers with a purchase (a line that is not a return) in the lookback
        before `when`, churned when they have none in the window from it; sorted by id as Python sorts."""
        cutoff = as_cutoff(when)
        check_window_in(*self.span, cutoff, window_days)
        check_lookback(lookback_days)
        bounds = {"lo": (cutoff - pd.Timedelta(days=lookback_days)).to_pydatetime(), "c": cutoff.to_pydatetime(),
                  "hi": (cutoff + pd.Timedelta(days=window_days)).to_pydatetime()}
        rows = sorted(self._rows("""
            WITH before AS (SELECT DISTINCT customer_id FROM tx
                            WHERE NOT is_return AND "timestamp" >= $lo AND "timestamp" < $c),
                 after AS (SELECT DISTINCT customer_id FROM tx
                           WHERE NOT is_return AND "timestamp" >= $c AND "timestamp" < $hi)
            SELECT b.customer_id, a.customer_id IS NULL FROM before b LEFT JOIN after a USING (customer_id)""",
                                    bounds))
        return pd.DataFrame({"customer_id": pd.array([c for c, _ in rows], dtype="string"),
                             "churned": np.array([x for _, x in rows], dtype=bool)})


def open_file(path: str | os.PathLike, per_shard: int | None = None) -> FromFile:
    return FromFile(Path(path), per_shard)
