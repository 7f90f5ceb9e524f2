"""KPIs per period and region, plus the company total (region == schema.ALL).

`compute` is the pure core (transactions in, schema.KPIS out). `latest_change` turns the table
into the headline tiles ("Revenue 1.2 M, +8% vs previous"), comparing complete periods only, so a
half-finished month is never reported as a collapse. `compute_file` gives `compute`'s table from the
transactions file, a period at a time. The stage itself is datastory.kpis_stage.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import schema, streaming
from .errors import DataError

GRAINS = {"M": "MS", "Q": "QS", "Y": "YS"}  # the grains `active` counts distinct customers at
PERIODS = {g: GRAINS[g] for g in ("M", "Q")}  # the reporting periods (params/kpis.yaml period)
UNIT = 10 ** 6    # money is added in millionths of the currency unit, as whole numbers: exactly (to_units, exact_sums)
SPLIT = 2 ** 26   # exact_sums' split of a value into whole parts
PROBE = 1024      # run_codes looks at this many runs' values before it checks whether none of them decreases
MEASURES = ["revenue", "orders", "active_customers", "new_customers", "avg_order_value", "return_rate"]


def check_period(period: str) -> str:
    """The pandas frequency of the KPI period `period` (M or Q); a DataError names params/kpis.yaml otherwise."""
    if period not in PERIODS:
        raise DataError(f"unknown period {period!r}; allowed: {', '.join(PERIODS)}",
                        file="params/kpis.yaml", column="period", fix="set period: M (month) or Q (quarter)")
    return PERIODS[period]


def compute(tx: pd.DataFrame, period: str) -> pd.DataFrame:
    """One row per period and region (and ALL), every period from first to last, sorted (region, period)."""
    freq = check_period(period)
    if tx is None or tx.empty:
        raise DataError("no transactions to compute KPIs from", file="transactions",
                        fix="check the ingest stage's data-quality report (rows_kept)")
    tx = schema.conform(tx, schema.TRANSACTIONS, "transactions")
    return _finish(_sums(tx, period), freq)


def _sums(tx: pd.DataFrame, period: str) -> pd.DataFrame:
    """The sums and counts per (region, period) of `tx` (ALL included): the definitions (compute_file gets the
    same figures with `_money`, `Orders` and file_history)."""
    # the ids as numbers (NaN for a missing one, which nunique skips): the company's copy of each row is small;
    # the money in whole millionths, added exactly (to_units, exact_sums: the same sums in any order or parts)
    amount = tx["amount"].to_numpy(dtype="float64")
    both = with_all(pd.DataFrame({"region": tx["region"], "period": tx["timestamp"].dt.to_period(period).dt.start_time,
                                  "units": to_units(amount), "order_id": _codes(tx["order_id"]),
                                  "customer_id": _codes(tx["customer_id"])}))
    pos = np.concatenate([amount > 0, amount > 0])
    keys = ["region", "period"]

    g = both.groupby(keys, observed=True)
    group = g.ngroup().to_numpy(dtype="float64")       # NaN: a row without a region or period, in no group
    ok = ~np.isnan(group)
    code, units, sale = group[ok].astype("int64"), both["units"].to_numpy()[ok], pos[ok]
    revenue, gross = exact_sums(code, units, g.ngroups), exact_sums(code, units * sale, g.ngroups)
    out = pd.DataFrame({"revenue": money_of(revenue), "gross": money_of(gross),
                        "returned": money_of(gross - revenue)}, index=g.size().index)
    sales = both[pos].groupby(keys, observed=True)
    out["orders"] = sales["order_id"].nunique()
    out["active_customers"] = sales["customer_id"].nunique()
    del both, g, sales
    # a customer is new in the period of their first purchase, in that purchase's region (a line without a
    # customer id makes nobody new, as it makes nobody active)
    first = tx.loc[(tx["amount"] > 0) & tx["customer_id"].notna(), ["customer_id", "region", "timestamp", "order_id"]] \
        .sort_values(["timestamp", "order_id"], kind="stable").drop_duplicates("customer_id") \
        .assign(period=lambda f: f["timestamp"].dt.to_period(period).dt.start_time)
    out["new_customers"] = with_all(first).groupby(keys, observed=True).size()
    return out


def to_units(amount: np.ndarray) -> np.ndarray:
    """`amount` (currency units) in UNIT-ths, rounded to whole numbers (float64): exact for amounts of up to six
    decimals (a price of 0.001 included). A missing amount adds nothing, as pandas' sums skip it."""
    a = np.asarray(amount, dtype="float64")
    return np.rint(np.where(np.isfinite(a), a, 0.0) * UNIT)


def exact_sums(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Whole numbers `values` (float64) added exactly per number `codes` (0 to n - 1), as Python ints (an object
    array): whatever their order and size, so sums of parts add up to the sum of the whole. Each value is split
    into a high and a low part (both whole, exactly); each part is added with np.bincount in float64 over as many
    lines as keep every partial sum below 2**53, where float64 adds whole numbers exactly."""
    hi = np.floor(values / SPLIT)
    lo = values - hi * SPLIT                      # 0 <= lo < SPLIT
    top = float(np.abs(hi).max()) if len(hi) else 0.0
    step = int(min(SPLIT, 2.0 ** 53 // (top + 1)))
    out = np.zeros(n, dtype=object)
    for a in range(0, len(values), step):
        part = codes[a:a + step]
        for weights, scale in ((hi, SPLIT), (lo, 1)):
            out += np.bincount(part, weights=weights[a:a + step], minlength=n).astype("int64").astype(object) * scale
    return out


def money_of(units: Any) -> np.ndarray:
    """Exact sums in UNIT-ths (Python ints) as currency units: the float nearest to each (int / int division)."""
    return np.array([int(u) / UNIT for u in units], dtype="float64")


def _codes(ids: pd.Series) -> np.ndarray:
    """A number per distinct id (float64; NaN where the id is missing)."""
    codes = pd.factorize(ids)[0]
    return np.where(codes < 0, np.nan, codes.astype("float64"))


def with_all(rows: pd.DataFrame) -> pd.DataFrame:
    """Each row twice: once for its own region, once for the company (region schema.ALL)."""
    return pd.concat([rows, rows.assign(region=schema.ALL)], ignore_index=True)


def _finish(out: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Every region and period from first to last (missing ones 0), the ratios, schema.KPIS."""
    regions = sorted(out.index.get_level_values("region").unique())
    periods = out.index.get_level_values("period")
    periods = pd.date_range(periods.min(), periods.max(), freq=freq)
    grid = pd.MultiIndex.from_product([regions, periods], names=["region", "period"])
    out = out.reindex(grid).fillna(0.0)
    orders = out["orders"].to_numpy()
    gross = out["gross"].to_numpy()
    out["avg_order_value"] = np.divide(gross, orders, out=np.zeros_like(gross), where=orders > 0)
    out["return_rate"] = np.divide(out["returned"].to_numpy(), gross, out=np.zeros_like(gross), where=gross > 0)
    for col in ("orders", "active_customers", "new_customers"):
        out[col] = out[col].round().astype("int64")
    return schema.conform(out.reset_index(), schema.KPIS, "kpis")


def check_grains(grains: tuple[str, ...]) -> None:
    """A DataError unless every one of `grains` is a key of GRAINS."""
    unknown = [g for g in grains if g not in GRAINS]
    if unknown:
        raise DataError(f"unknown grain(s) {unknown}; allowed: {', '.join(GRAINS)}", file="kpis", column="grain",
                        fix="use M (month), Q (quarter) or Y (year)")


def active(tx: pd.DataFrame, grains: tuple[str, ...] = tuple(GRAINS)) -> pd.DataFrame:
    """schema.ACTIVE: distinct customers with a sale per period at each of `grains`, per region and ALL.

    Counted as `compute` counts active customers (a line with a positive amount), so at the KPI period the two
    agree; every period from first to last is present (0 when nobody bought). Sorted (grain, region, period)."""
    check_grains(grains)
    if tx is None or tx.empty:
        raise DataError("no transactions to count active customers in", file="transactions",
                        fix="check the ingest stage's data-quality report (rows_kept)")
    tx = schema.conform(tx, schema.TRANSACTIONS, "transactions")
    both = with_all(tx[tx["amount"] > 0])
    counts = {g: both.groupby(["region", both["timestamp"].dt.to_period(g).dt.start_time.rename("period")],
                              observed=True)["customer_id"].nunique() for g in grains}
    return active_table(counts, tx["region"].unique(), tx["timestamp"].min(), tx["timestamp"].max())


def active_table(counts: dict[str, pd.Series], regions: Any, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    """schema.ACTIVE from `counts`: per grain, the distinct customers per (region, period) index (ALL included,
    periods as first days), on the grid of `regions` (without ALL) and ALL x every period from the one of
    `first` (the first line's time) to the one of `last`; a missing cell is 0."""
    regions = sorted([*regions, schema.ALL])
    frames = []
    for g, count in counts.items():
        start, end = (pd.Timestamp(t).to_period(g).start_time for t in (first, last))
        grid = pd.MultiIndex.from_product([regions, pd.date_range(start, end, freq=GRAINS[g])],
                                          names=["region", "period"])
        frames.append(count.reindex(grid, fill_value=0).rename("active_customers").reset_index().assign(grain=g))
    return schema.conform(pd.concat(frames, ignore_index=True), schema.ACTIVE, "active")


def transactions_frame(data: Any) -> pd.DataFrame:
    """schema.TRANSACTIONS from an Arrow table or record batch of the transactions file, its text kept in Arrow
    (pandas' "string[pyarrow]": no Python object per value)."""
    frame = data.to_pandas(types_mapper=streaming.arrow_strings)
    return schema.conform(frame, schema.TRANSACTIONS, "transactions", copy=False)


COUNTED = {c: schema.TRANSACTIONS[c] for c in ("order_id", "timestamp", "amount")}   # compute_file's, and the region


def compute_file(path: str | os.PathLike, period: str, rows: int = 1_000_000,
                 history: History | None = None) -> pd.DataFrame:
    """compute(read_parquet(path), period), the same table, a batch of rows at a time: the
    transactions (ingest's output, in time order; only the columns COUNTED and the region, read as codes) are read
    `rows` at a time. The money per (region, period) is added up per batch (`_money`, exactly: the sums do not
    depend on where a batch ends); the orders as they come (`Orders`: per batch, the few lines a period's count
    needs, which the time order lets count without sorting). The active and the new customers come from `history`
    (default: file_history(path), one pass). A file out of time order is refused."""
    freq = check_period(period)
    money: list[pd.DataFrame] = []
    history = file_history(path) if history is None else history
    labels: dict[str, int] = {}     # region -> its number, in order of first appearance
    orders = Orders()
    last = None
    for frame in streaming.column_batches(path, [*COUNTED, "region"], rows, coded=("region",)):
        region = region_codes(frame.pop("region"), labels)
        chunk = schema.conform(frame, COUNTED, "transactions", copy=False)
        del frame
        ts = chunk["timestamp"]
        if len(ts) and ((last is not None and ts.iloc[0] < last) or not ts.is_monotonic_increasing):
            raise DataError("transactions are not in time order", file=str(path), column="timestamp",
                            fix="write them with the ingest stage (it sorts them), or use kpis.compute")
        if not len(ts):
            continue
        last = ts.iloc[-1]
        pvals, bounds = period_bounds(ts.to_numpy(dtype="datetime64[ns]"), period)
        amount = chunk["amount"].to_numpy(dtype="float64")
        money.append(_money(pvals, bounds, region, amount, list(labels)))
        orders.add(pa.array(chunk["order_id"], from_pandas=True), region, amount > 0, pvals, bounds, list(labels))
        del chunk, ts
    if not money:
        raise DataError("no transactions to compute KPIs from", file="transactions",
                        fix="check the ingest stage's data-quality report (rows_kept)")
    units = pd.concat(money).groupby(["region", "period"]).sum()       # Python ints: exact
    out = pd.DataFrame({"revenue": money_of(units["revenue"]), "gross": money_of(units["gross"]),
                        "returned": money_of(units["gross"] - units["revenue"])}, index=units.index)
    out["orders"] = orders.table(list(labels)).reindex(units.index).to_numpy()
    out["new_customers"] = history.new[period].reindex(units.index).to_numpy()
    # the active customers: the one pass's counts (grouped by customer in DuckDB: no hash table of a period's
    # customers here, the largest of all)
    out["active_customers"] = history.active[period].reindex(units.index).to_numpy()
    return _finish(out, freq)


def region_codes(regions: pd.Series, labels: dict[str, int]) -> np.ndarray:
    """A number per line's region (-1: none), from `labels` (region -> number), to which a region new to it is
    added (numbered in order of first appearance). `regions`: text, or categorical (its codes are used, and its
    categories added in their order)."""
    if isinstance(regions.dtype, pd.CategoricalDtype):
        codes, uniques = regions.cat.codes.to_numpy(dtype="int64"), regions.cat.categories
    else:
        codes, uniques = pd.factorize(regions)
    if not len(uniques):
        return np.full(len(regions), -1, dtype="int64")
    table = np.array([labels.setdefault(str(u), len(labels)) for u in uniques], dtype="int64")
    return np.where(codes < 0, -1, table[codes])


def period_bounds(ts: np.ndarray, period: str) -> tuple[np.ndarray, np.ndarray]:
    """The periods (M or Q) of times `ts` in time order, none missing: their first days (datetime64[ns]), those
    with a line, and where their lines begin, plus len(ts) (ts[bounds[i]:bounds[i + 1]] is period i's)."""
    lo, hi = starts(pd.Series(ts[[0, -1]]), period)
    edges = pd.date_range(lo, hi, freq=GRAINS[period]).to_numpy(dtype="datetime64[ns]")
    bounds = np.concatenate([[0], np.searchsorted(ts, edges[1:], "left"), [len(ts)]])
    keep = np.diff(bounds) > 0
    return edges[keep], np.concatenate([bounds[:-1][keep], [len(ts)]])


def _money(pvals: np.ndarray, bounds: np.ndarray, region: np.ndarray, amount: np.ndarray,
           labels: list[str]) -> pd.DataFrame:
    """Per (region, period) with a line, of some lines in time order, ALL included: the exact sums (exact_sums,
    Python ints) of the money of all of them (revenue) and of the sales (gross), in UNIT-ths. `pvals`, `bounds`: their
    periods (period_bounds); `region`: each line's region's number in `labels` (-1: none, in ALL only)."""
    width = len(labels) + 1                   # per period: slot 0 the lines without a region, then each region
    key = np.repeat(np.arange(len(pvals)) * width, np.diff(bounds)) + (region + 1)
    n = len(pvals) * width
    units = to_units(amount)
    lines = np.bincount(key, minlength=n).reshape(-1, width)
    revenue = exact_sums(key, units, n).reshape(-1, width)
    gross = exact_sums(key, units * (amount > 0), n).reshape(-1, width)
    # each region's own (slots 1 on), then the company's: all slots
    table = [(lines[:, 1:], revenue[:, 1:], gross[:, 1:]), (lines.sum(1)[:, None], revenue.sum(1)[:, None],
                                                             gross.sum(1)[:, None])]
    names = [np.array(labels, dtype=object), np.array([schema.ALL], dtype=object)]
    frames = []
    for (count, rev, gro), name in zip(table, names, strict=True):
        p, r = np.nonzero(count)
        frames.append(pd.DataFrame({"region": name[r], "period": pvals[p], "revenue": rev[p, r], "gross": gro[p, r]}))
    return pd.concat(frames, ignore_index=True)


def starts(ts: pd.Series, period: str) -> np.ndarray:
    """The first day of each timestamp's period (M or Q; datetime64[ns], NaT kept): ts.dt.to_period(period)
    .dt.start_time, without pandas' Period objects. Times in order (a file's lines, as the kpis stage reads them)
    are cut where each period begins (period_bounds), with no calendar arithmetic per line."""
    values = ts.to_numpy(dtype="datetime64[ns]")
    if len(values) > 2 and ts.is_monotonic_increasing:       # no NaT either
        pvals, bounds = period_bounds(values, period)
        return np.repeat(pvals, np.diff(bounds))
    months = values.astype("datetime64[M]")
    if period == "Q":
        n = months.astype("int64")
        months = np.where(np.isnat(months), months, (n - n % 3).astype("datetime64[M]"))
    return months.astype("datetime64[ns]")


@dataclass(frozen=True)
class History:
    """What one DuckDB pass over the transactions file gives the KPIs read from it (`file_history`)."""
    pairs: pa.Table                        # region, customer_id, first: the first sale per region (null: none)
    active: dict[str, pd.Series]           # per grain: distinct customers with a sale per (region, period), ALL too
    new: dict[str, pd.Series]              # per grain: customers whose first sale is in (region, period), ALL too
    first_ts: pd.Timestamp                 # the first and last line's time
    last_ts: pd.Timestamp


def file_history(path: str | os.PathLike) -> History:
    """One pass (DuckDB: bounded memory, its hash tables partitioned for the cache) groups the sales by region,
    customer and year, with a bit per month they bought in (the month of the time floored to the microsecond,
    floor_us); the rest is read from those groups:
    - each customer's first sale per region (the kpis stage's bridge asks which customers had bought in a region
      before a day);
    - the distinct customers with a sale per (region, period) at each grain (kpis.GRAINS: months, quarters,
      years), as `active` counts them: a line without a region counts for ALL only, a line without a customer
      not at all;
    - the new customers per (region, period) at each grain, as `_sums` counts them: each customer in the region
      and period of their first sale (a line without a region: ALL only; `_first_sales`)."""
    with streaming.duckdb(path, rows=True) as con:   # the lines' places: for first sales at one time
        first_ts, last_ts = (pd.Timestamp(t) for t in
                             con.execute('SELECT min("timestamp"), max("timestamp") FROM tx').fetchone())
        con.execute(f"""CREATE TEMP TABLE years AS
            SELECT region, customer_id, year({floor_us('"timestamp"')}) AS year,
                   bit_or(1 << (month({floor_us('"timestamp"')}) - 1)) AS months,
                   min("timestamp") AS first
            FROM tx WHERE {streaming.SALE} AND customer_id IS NOT NULL GROUP BY ALL""")
        con.execute("CREATE TEMP TABLE pairs AS SELECT region, customer_id, min(first) AS first FROM years GROUP BY ALL")
        counts = con.execute(f"""
            WITH company AS (SELECT customer_id, year, bit_or(months) AS months FROM years GROUP BY ALL)
            SELECT region, year, count(*) AS Y,
                   {", ".join(f"sum((months >> {m}) & 1) AS M{m}" for m in range(12))},
                   {", ".join(f"sum(CASE WHEN (months >> {3 * q}) & 7 <> 0 THEN 1 ELSE 0 END) AS Q{q}" for q in range(4))}
            FROM (SELECT region, year, months FROM years WHERE region IS NOT NULL
                  UNION ALL SELECT $all AS region, year, months FROM company)
            GROUP BY ALL""", {"all": schema.ALL}).df()
        fresh = _first_sales(con)
        pairs = con.sql("SELECT region, customer_id, first FROM pairs").to_arrow_table()
    years = counts["year"].to_numpy(dtype="int64")
    active = {"M": pd.concat([_counts(counts["region"], years, 1 + m, counts[f"M{m}"]) for m in range(12)]),
              "Q": pd.concat([_counts(counts["region"], years, 1 + 3 * q, counts[f"Q{q}"]) for q in range(4)]),
              "Y": _counts(counts["region"], years, 1, counts["Y"])}
    return History(pairs, active, _new(fresh), first_ts, last_ts)


def _first_sales(con: Any) -> pd.DataFrame:
    """region (None: none), year, month, n: the customers whose first sale is in that region and month, from
    file_history's table `pairs` (region, customer_id, first: their first sale per region). A customer whose
    first sale is in two regions at one time (rare) is placed as `_sums` places them: by order_id, then line, from
    their lines at that time."""
    con.execute("""CREATE TEMP TABLE firsts AS SELECT customer_id, min(first) AS first,
                   arg_min_null(region, first) AS region FROM pairs GROUP BY customer_id""")
    tied = con.execute("""SELECT p.customer_id FROM pairs p JOIN firsts f ON p.customer_id = f.customer_id
                          AND p.first = f.first GROUP BY p.customer_id HAVING count(*) > 1""").fetchall()
    if tied:
        con.execute(f"""UPDATE firsts SET region = placed.region FROM (
            SELECT f.customer_id, arg_min_null(t.region, {{'t': t."timestamp", 'o': t.order_id, 'n': t.file_row_number}})
                   AS region
            FROM tx t JOIN firsts f ON t.customer_id = f.customer_id AND t."timestamp" = f.first
            WHERE {streaming.SALE} AND f.customer_id IN (SELECT * FROM UNNEST($tied)) GROUP BY f.customer_id) placed
            WHERE firsts.customer_id = placed.customer_id""", {"tied": [t[0] for t in tied]})
    return con.execute(f"""SELECT region, year(day) AS year, month(day) AS month, count(*) AS n
                           FROM (SELECT region, {floor_us("first")} AS day FROM firsts) GROUP BY ALL""").df()


def floor_us(ns: str) -> str:
    """SQL: the time `ns` (a DuckDB expression) to the microsecond below, as TIMESTAMP. DuckDB's year() and
    month() of a nanosecond time round it to the nearest microsecond, which can move a sale at the very end of
    a month into the next one."""
    return f"make_timestamp(epoch_ns({ns}) // 1000 - CASE WHEN epoch_ns({ns}) % 1000 < 0 THEN 1 ELSE 0 END)"


def _new(fresh: pd.DataFrame) -> dict[str, pd.Series]:
    """Per grain (M, Q, Y), (region, period) -> new customers (ALL included: every region and none), from
    `fresh`: region (None: none), year, month, n."""
    months = pd.to_datetime(pd.DataFrame({"year": fresh["year"], "month": fresh["month"], "day": 1}))
    out = {}
    for grain in GRAINS:
        period = months.dt.to_period(grain).dt.start_time if len(fresh) else months
        rows = pd.DataFrame({"region": fresh["region"], "period": period, "n": fresh["n"].astype("int64")})
        mine = rows.dropna(subset=["region"]).astype({"region": str}).groupby(["region", "period"])["n"].sum()
        every = rows.groupby("period")["n"].sum()
        every.index = pd.MultiIndex.from_arrays([[schema.ALL] * len(every), every.index], names=["region", "period"])
        out[grain] = pd.concat([mine, every]).rename(None)
    return out


def _counts(regions: pd.Series, years: np.ndarray, month: int, n: pd.Series) -> pd.Series:
    """(region, period) -> n where n > 0, the period starting in `month` of each of `years`."""
    keep = n.to_numpy(dtype="int64") > 0
    periods = pd.to_datetime(pd.DataFrame({"year": years[keep], "month": month, "day": 1}))
    index = pd.MultiIndex.from_arrays([regions[keep].astype(str).to_numpy(), periods.to_numpy(dtype="datetime64[ns]")],
                                      names=["region", "period"])
    return pd.Series(n.to_numpy(dtype="int64")[keep], index=index)


class Orders:
    """The orders of `_sums(tx, period)`, counted as a file's lines come, batch after batch, in time order:
    (region, period) -> distinct orders with a sale, where there are any (`add` each batch, then `table`).

    What a period's count needs of its lines is only the sales that begin a run of equal (order, region): the
    first of an order's lines, and a line whose region is not the sale's before. Those (head) lines' order ids and
    regions are kept, a few per order; the lines themselves are let go with their batch, so a period's lines are
    never held together. When the period closes, its heads' ids are numbered (as run_codes numbers them: in order
    when they never decrease, as invoice numbers given in time order do, else by hashing) and counted per region
    and for the company (`_distinct_per_group`)."""

    def __init__(self) -> None:
        self.parts: list[pd.Series] = []
        self.period: Any = None            # the period being counted (its first day), None before the first line
        self.last: Any = None              # the line before's order id (None: missing, or no line yet)
        self.kept = False                  # whether the line before was a sale
        self.region: int | None = None     # the region of the period's last sale so far (None: no sale yet)
        self.ids: list[pa.Array] = []      # the period's heads so far: their order ids and regions
        self.regions: list[np.ndarray] = []

    def add(self, ids: pa.Array, region: np.ndarray, sale: np.ndarray, pvals: np.ndarray, bounds: np.ndarray,
            labels: list[str]) -> None:
        """A batch's lines: their order `ids` (text), `region` numbers (region_codes: -1 none; `labels` the regions
        so far) and `sale` mask, in periods `pvals` starting at `bounds` (period_bounds). A period the batch starts
        closes the one before."""
        for p, a, b in zip(pvals, bounds[:-1], bounds[1:], strict=True):
            if p != self.period:
                self.close(labels)
                self.period, self.last, self.kept, self.region = p, None, False, None
            self._heads(ids[a:b], region[a:b], sale[a:b])

    def _heads(self, ids: pa.Array, region: np.ndarray, sale: np.ndarray) -> None:
        change = runs(ids)                         # a value not the one before (a missing one always)
        first = ids[0].as_py()                     # add gives each period's part of a batch: never empty
        change[0] = self.last is None or first is None or first != self.last
        change[1:] |= ~sale[:-1]                   # after a line not kept, a run begins
        change[0] |= not self.kept
        at = np.flatnonzero(sale)
        if not len(at):
            self.last, self.kept = ids[-1].as_py(), False
            return
        own = region[at]
        heads = change[at]
        heads[1:] |= own[1:] != own[:-1]
        heads[0] |= self.region is None or own[0] != self.region
        self.ids.append(take(ids, at[heads]))
        self.regions.append(own[heads])
        self.last, self.kept, self.region = ids[-1].as_py(), bool(sale[-1]), int(own[-1])

    def close(self, labels: list[str]) -> None:
        """Count the period being counted (no more of its lines to come)."""
        if self.period is None or not self.ids:
            self.ids, self.regions = [], []
            return
        ids = pa.concat_arrays(self.ids) if len(self.ids) > 1 else self.ids[0]
        region = np.concatenate(self.regions)
        self.ids, self.regions = [], []
        codes, _ = _numbers(ids)
        width = len(labels) + 1
        counts = _distinct_per_group(codes, region, np.full(len(region), width - 1), region >= 0, width)
        index = pd.MultiIndex.from_arrays([pd.Index([*labels, schema.ALL])[counts.index],
                                           pd.DatetimeIndex([self.period] * len(counts))], names=["region", "period"])
        self.parts.append(counts.set_axis(index))

    def table(self, labels: list[str]) -> pd.Series:
        """(region, period) -> orders, every period added so far (the last one closed)."""
        self.close(labels)
        self.period = None
        return pd.concat(self.parts) if self.parts else pd.Series(dtype="int64")


def _numbers(ids: pa.Array) -> tuple[np.ndarray, pd.Index]:
    """pd.factorize(ids): a number per value of `ids` (text), equal values the same, -1 where missing, and the
    distinct values in order of appearance; numbered as they come when no value is before the one before it
    (`ordered`), else by hashing them."""
    if (new := in_order(ids)) is not None:
        return np.cumsum(new) - 1, pd.Index(pd.arrays.ArrowStringArray(ids.filter(new)))
    values = pd.arrays.ArrowStringArray(ids) if pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type) \
        else ids.to_pandas()
    return pd.factorize(pd.Series(values))


def in_order(text: pa.Array) -> np.ndarray | None:
    """When no value of `text` is before the one before it (`ordered`: a look at the first PROBE, then all), each
    value's mark: whether it is new (not the one before it; equal values then follow each other). Else None."""
    return runs(text) if ordered(text[:PROBE]) and ordered(text) else None


def run_codes(values: pd.Series) -> tuple[np.ndarray, Any]:
    """pd.factorize(values): a code per line (-1 where missing) in order of first appearance, and the distinct
    values; hashing only the first line of each run of equal values (the lines of an order, and so of its
    customer, follow each other in the file: ingest keeps an invoice's lines together), and taking no other
    line's text.

    A hash table as large as a period's ids outgrows the processor's caches, so each hashed line costs more the
    more ids there are; hashing the runs' first lines alone does that less often. And not at all when the runs'
    values never decrease (ordered by length, then byte by byte, as invoice numbers given in time order are): then
    each run is a new value, numbered as it comes."""
    text = pa.array(values, from_pandas=True)
    starts = runs(text)                 # a line whose value is not the previous line's
    codes, uniques = _numbers(take(text, np.flatnonzero(starts)))   # each run's value, numbered
    return spread(codes, starts), uniques


def take(text: pa.Array | pa.ChunkedArray, at: np.ndarray) -> pa.Array:
    """text[at] for positions `at` in increasing order, one array; from a chunked array (a frame put together
    from batches) chunk by chunk, copying only the values taken (Arrow's take would join the chunks first)."""
    if not isinstance(text, pa.ChunkedArray):
        return text.take(pa.array(at, type=pa.int64()))
    ends = np.cumsum([0, *(len(c) for c in text.chunks)])
    cuts = np.searchsorted(at, ends)
    parts = [c.take(pa.array(at[a:b] - start, type=pa.int64()))
             for c, start, a, b in zip(text.chunks, ends, cuts, cuts[1:], strict=False) if b > a]
    return pa.concat_arrays(parts) if parts else pa.array([], type=text.type)


def spread(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each run's value over its lines (`values`: one per run, in order; `starts`: per line, whether it begins a
    run, the first line always): values[np.cumsum(starts) - 1], without a running count as long as the lines."""
    at = np.flatnonzero(starts)
    return np.repeat(values, np.diff(at, append=len(starts)))


def runs(text: pa.Array) -> np.ndarray:
    """Per value of `text`, whether it begins a run: it is the first, or not the one before it (a missing value
    always begins one)."""
    change = np.ones(len(text), dtype=bool)
    if len(text) > 1:
        change[1:] = ~pc.equal(text[1:], text[:-1]).fill_null(False).to_numpy(zero_copy_only=False)
    return change


def ordered(text: pa.Array) -> bool:
    """Whether no value of `text` is before the one before it, ordered by length, then byte by byte (so "O9"
    before "O10"); no value missing. Then equal values follow each other."""
    if text.null_count or not pa.types.is_string(text.type) and not pa.types.is_large_string(text.type):
        return False
    if len(text) < 2:
        return True
    size = pc.binary_length(text).to_numpy(zero_copy_only=False)
    up = pc.less_equal(text[:-1], text[1:]).to_numpy(zero_copy_only=False)
    return bool(np.all((size[:-1] < size[1:]) | ((size[:-1] == size[1:]) & up)))


def _distinct_per_group(codes: np.ndarray, own: np.ndarray, every: np.ndarray, has_region: np.ndarray,
                        n_groups: int) -> pd.Series:
    """Distinct codes (>= 0) per group: own group of the lines with a region, and their company group."""
    ok = codes >= 0
    n = int(codes.max()) + 1 if len(codes) else 0
    keys = np.concatenate([own[ok & has_region], every[ok]]).astype("int64") * n + \
        np.concatenate([codes[ok & has_region], codes[ok]])
    if n_groups * n <= 1 << 26:            # a mark per (group, code): no hashing
        marks = np.zeros(n_groups * n, dtype=bool)
        marks[keys] = True
        counts = marks.reshape(n_groups, n).sum(axis=1) if n else np.zeros(n_groups, dtype="int64")
    else:
        counts = np.bincount(pd.unique(keys) // n, minlength=n_groups)
    return pd.Series(counts).loc[lambda c: c > 0]


def infer_period(periods: pd.DatetimeIndex) -> str:
    """The KPI period (M or Q) a table was computed at, from the gaps between its sorted period starts."""
    if len(periods) > 1 and pd.Series(periods).diff().dropna().min() > pd.Timedelta(days=31):
        return "Q"
    return "M"


def latest_change(kpis: pd.DataFrame, region: str, data_end: str | dt.date | None = None) -> dict[str, Any]:
    """Each KPI of the last complete period next to the one before, with the relative change.

    A period is complete when it ends on or before `data_end` (the data's last day, e.g.
    data_quality["period_end"]); so when the data stops mid-period, the two periods before the
    partial one are compared. Without `data_end` every period in the table counts as complete.
    Returns {"region", "freq", "period", "previous_period", "label", "previous_label",
    "kpis": {kpi: {"value", "previous", "change"}}}; change is relative, None when previous is 0.
    """
    if kpis is None or kpis.empty:
        raise DataError("no KPI rows", file="kpis", fix="run the kpis stage first")
    rows = kpis[kpis["region"] == region].sort_values("period", kind="stable")
    if rows.empty:
        known = ", ".join(sorted(map(str, kpis["region"].unique())))
        raise DataError(f"no KPIs for region {region!r}; known: {known}", file="kpis", column="region",
                        fix="use one of the known regions (or schema.ALL for the company)")
    freq = infer_period(pd.DatetimeIndex(kpis["period"].drop_duplicates().sort_values()))
    if data_end is not None:
        ends = rows["period"] + (pd.offsets.QuarterEnd(0) if freq == "Q" else pd.offsets.MonthEnd(0))
        rows = rows[ends <= pd.Timestamp(data_end).normalize()]
    if len(rows) < 2:
        raise DataError(f"need two complete periods for region {region!r}, have {len(rows)}", file="kpis",
                        fix="use a longer data period or a shorter reporting period (period: M)")
    cur, prev = rows.iloc[-1], rows.iloc[-2]
    tiles: dict[str, dict[str, float | None]] = {}
    for m in MEASURES:
        v, pv = float(cur[m]), float(prev[m])
        tiles[m] = {"value": v, "previous": pv, "change": (v - pv) / abs(pv) if pv else None}
    label = (lambda t: f"{t.year}-Q{t.quarter}") if freq == "Q" else (lambda t: t.strftime("%Y-%m"))
    return {"region": region, "freq": freq, "period": cur["period"].date().isoformat(),
            "previous_period": prev["period"].date().isoformat(),
            "label": label(cur["period"]), "previous_label": label(prev["period"]), "kpis": tiles}
