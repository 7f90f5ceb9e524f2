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
    same figures with `_period_sums`)."""
    # the ids as numbers (NaN for a missing one, which nunique skips): the company's copy of each row is small
    both = with_all(pd.DataFrame({"region": tx["region"], "period": tx["timestamp"].dt.to_period(period).dt.start_time,
                                  "amount": tx["amount"], "order_id": _codes(tx["order_id"]),
                                  "customer_id": _codes(tx["customer_id"])}))
    pos = both["amount"] > 0
    keys = ["region", "period"]

    g = both.groupby(keys, observed=True)
    out = pd.DataFrame({"revenue": g["amount"].sum()})
    sales = both[pos].groupby(keys, observed=True)
    out["gross"] = sales["amount"].sum()
    out["orders"] = sales["order_id"].nunique()
    out["active_customers"] = sales["customer_id"].nunique()
    out["returned"] = -both[~pos].groupby(keys, observed=True)["amount"].sum()
    del both, g, sales
    # a customer is new in the period of their first purchase, in that purchase's region
    first = tx.loc[tx["amount"] > 0, ["customer_id", "region", "timestamp", "order_id"]] \
        .sort_values(["timestamp", "order_id"], kind="stable").drop_duplicates("customer_id") \
        .assign(period=lambda f: f["timestamp"].dt.to_period(period).dt.start_time)
    out["new_customers"] = with_all(first).groupby(keys, observed=True).size()
    return out


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


SUMMED = {c: schema.TRANSACTIONS[c] for c in ("order_id", "customer_id", "timestamp", "region", "amount")}  # _sums'


def compute_file(path: str | os.PathLike, period: str, rows: int = 1_000_000,
                 history: History | None = None) -> pd.DataFrame:
    """compute(read_parquet(path), period), the same table, in memory for one period's rows at a time: the
    transactions (ingest's output, in time order; only the columns `_sums` reads, SUMMED) are read `rows` at a
    time and each period is summed once all its rows are in (by `_period_sums`, which the time order lets count
    without sorting). The active customers, and each customer's first sale, which makes them new, come from
    `history` (default: file_history(path), one pass). A file out of time order is refused."""
    freq = check_period(period)
    parts: list[pd.DataFrame] = []
    history = file_history(path) if history is None else history
    known = (history.firsts, history.active[period])
    held: list[pd.DataFrame] = []   # rows of periods not known to be whole yet (each with its period)
    last = None
    for frame in streaming.column_batches(path, list(SUMMED), rows):
        chunk = schema.conform(frame, SUMMED, "transactions", copy=False)
        del frame
        ts = chunk["timestamp"]
        if len(ts) and ((last is not None and ts.iloc[0] < last) or not ts.is_monotonic_increasing):
            raise DataError("transactions are not in time order", file=str(path), column="timestamp",
                            fix="write them with the ingest stage (it sorts them), or use kpis.compute")
        if not len(ts):
            continue
        last = ts.iloc[-1]
        begins = starts(ts, period)
        chunk = chunk.assign(_period=begins)
        # each period the chunk closes (its lines all in: a later period starts in the chunk) is summed alone,
        # its lines concatenated once; the chunk's last period is held
        if held and held[-1]["_period"].iloc[-1] != begins[0]:    # the chunk starts a period
            parts.append(_period_sums(pd.concat(held, ignore_index=True), known))
            held = []
        bounds = [0, *(np.flatnonzero(begins[1:] != begins[:-1]) + 1)]
        for a, b in zip(bounds, bounds[1:], strict=False):
            whole = pd.concat([*held, chunk.iloc[a:b]], ignore_index=True) if held else \
                chunk.iloc[a:b].reset_index(drop=True)
            held = []
            parts.append(_period_sums(whole, known))
            del whole
        held.append(chunk.iloc[bounds[-1]:])
        del chunk, ts
    if held:
        parts.append(_period_sums(pd.concat(held, ignore_index=True), known))
    if not parts:
        raise DataError("no transactions to compute KPIs from", file="transactions",
                        fix="check the ingest stage's data-quality report (rows_kept)")
    return _finish(pd.concat(parts), freq)


def starts(ts: pd.Series, period: str) -> np.ndarray:
    """The first day of each timestamp's period (M or Q; datetime64[ns], NaT kept): ts.dt.to_period(period)
    .dt.start_time, without pandas' Period objects."""
    months = ts.to_numpy(dtype="datetime64[ns]").astype("datetime64[M]")
    if period == "Q":
        n = months.astype("int64")
        months = np.where(np.isnat(months), months, (n - n % 3).astype("datetime64[M]"))
    return months.astype("datetime64[ns]")


@dataclass(frozen=True)
class History:
    """What one DuckDB pass over the transactions file gives the KPIs read from it (`file_history`)."""
    firsts: tuple[pa.Array, np.ndarray]    # first_sales: each customer's first sale
    pairs: pa.Table                        # region, customer_id, first: the first sale per region (null: none)
    active: dict[str, pd.Series]           # per grain: distinct customers with a sale per (region, period), ALL too
    first_ts: pd.Timestamp                 # the first and last line's time
    last_ts: pd.Timestamp


def file_history(path: str | os.PathLike) -> History:
    """One pass (DuckDB: bounded memory, its hash tables partitioned for the cache) groups the sales by region,
    customer and year, with a bit per month they bought in; the rest is read from those groups:
    - each customer's first sale (first_sales), and their first sale per region (the kpis stage's bridge asks
      which customers had bought in a region before a day);
    - the distinct customers with a sale per (region, period) at each grain (kpis.GRAINS: months, quarters,
      years), as `active` counts them: a line without a region counts for ALL only, a line without a customer
      not at all."""
    with streaming.duckdb(path) as con:
        first_ts, last_ts = (pd.Timestamp(t) for t in
                             con.execute('SELECT min("timestamp"), max("timestamp") FROM tx').fetchone())
        con.execute(f"""CREATE TEMP TABLE years AS
            SELECT region, customer_id, year("timestamp") AS year, bit_or(1 << (month("timestamp") - 1)) AS months,
                   min("timestamp") AS first
            FROM tx WHERE {streaming.SALE} AND customer_id IS NOT NULL GROUP BY ALL""")
        con.execute("CREATE TEMP TABLE pairs AS SELECT region, customer_id, min(first) AS first FROM years GROUP BY ALL")
        table = con.sql("SELECT customer_id, min(first) AS first FROM pairs GROUP BY customer_id "
                        "ORDER BY first, customer_id").to_arrow_table()
        firsts = (table["customer_id"].combine_chunks().cast(pa.large_string()),
                  table["first"].cast(pa.timestamp("ns")).to_numpy().astype("datetime64[ns]"))
        counts = con.execute(f"""
            WITH company AS (SELECT customer_id, year, bit_or(months) AS months FROM years GROUP BY ALL)
            SELECT region, year, count(*) AS Y,
                   {", ".join(f"sum((months >> {m}) & 1) AS M{m}" for m in range(12))},
                   {", ".join(f"sum(CASE WHEN (months >> {3 * q}) & 7 <> 0 THEN 1 ELSE 0 END) AS Q{q}" for q in range(4))}
            FROM (SELECT region, year, months FROM years WHERE region IS NOT NULL
                  UNION ALL SELECT $all AS region, year, months FROM company)
            GROUP BY ALL""", {"all": schema.ALL}).df()
        pairs = con.sql("FROM pairs").to_arrow_table()
    years = counts["year"].to_numpy(dtype="int64")
    active = {"M": pd.concat([_counts(counts["region"], years, 1 + m, counts[f"M{m}"]) for m in range(12)]),
              "Q": pd.concat([_counts(counts["region"], years, 1 + 3 * q, counts[f"Q{q}"]) for q in range(4)]),
              "Y": _counts(counts["region"], years, 1, counts["Y"])}
    return History(firsts, pairs, active, first_ts, last_ts)


def _counts(regions: pd.Series, years: np.ndarray, month: int, n: pd.Series) -> pd.Series:
    """(region, period) -> n where n > 0, the period starting in `month` of each of `years`."""
    keep = n.to_numpy(dtype="int64") > 0
    periods = pd.to_datetime(pd.DataFrame({"year": years[keep], "month": month, "day": 1}))
    index = pd.MultiIndex.from_arrays([regions[keep].astype(str).to_numpy(), periods.to_numpy(dtype="datetime64[ns]")],
                                      names=["region", "period"])
    return pd.Series(n.to_numpy(dtype="int64")[keep], index=index)


def first_sales(path: str | os.PathLike) -> tuple[pa.Array, np.ndarray]:
    """Each customer's first sale time in the transactions file at `path` (a line with amount > 0): their ids
    (large_string) and the times (datetime64[ns]), sorted by time, then id (file_history's pass)."""
    return file_history(path).firsts


def _period_sums(tx: pd.DataFrame, known: tuple[tuple[pa.Array, np.ndarray], pd.Series]) -> pd.DataFrame:
    """`_sums(tx, period)` for whole periods' rows `tx` in time order with their period's first day in
    column `_period`; `known`: first_sales of the file (a customer is new where their first sale is) and the
    active customers per (region, period) at the period (History.active).

    The same figures, counted with integer codes instead of pandas' string groupby, nunique and sort (their cost
    per line grows with the number of distinct ids, which grows with the file):
    - group g = period code x (regions + 1) + region code, the last region code being schema.ALL;
    - sums: pandas' groupby sum of each group's lines in their order (so the same rounding as `_sums`);
    - distinct orders with a sale: one mark per (group, order code), counted per group;
    - the active customers: `known`'s counts (the file's one pass, grouped by customer in DuckDB: no hash table
      of a period's customers here, the largest of all);
    - the new customers: those whose first sale (`known`) is in these rows; only their lines are coded, in order
      of first appearance, and the lines are in time order, so their first sale is at their code's first line;
      when the customer has other sale lines at that very time in another region, the order_id decides as in
      `_sums` (sorted by timestamp, order_id, stable)."""
    amount = tx["amount"].to_numpy(dtype="float64")
    pos = amount > 0
    pcode, pvals = pd.factorize(tx["_period"].to_numpy())
    rcode, rvals = pd.factorize(tx["region"])
    width = len(rvals) + 1
    own, every = pcode * width + rcode, pcode * width + (width - 1)
    has_region, has_period = (rcode >= 0) & (pcode >= 0), pcode >= 0
    n_groups = len(pvals) * width

    def sums(mask: np.ndarray, values: np.ndarray) -> pd.Series:
        keys = np.concatenate([own[mask & has_region], every[mask & has_period]])
        both = np.concatenate([values[mask & has_region], values[mask & has_period]])
        return pd.Series(both).groupby(keys).sum()

    out = pd.DataFrame({"revenue": sums(np.ones(len(tx), dtype=bool), amount)})
    out["gross"] = sums(pos, amount)
    sale = pos & has_period
    s_own, s_every, s_has_region = own[sale], every[sale], has_region[sale]
    orders, heads, _ = run_codes(tx["order_id"], sale, s_own)
    out["orders"] = _distinct_per_group(orders[heads], s_own[heads], s_every[heads], s_has_region[heads], n_groups)
    out["active_customers"] = np.nan      # from `known`, once the groups are (region, period)
    out["returned"] = -sums(~pos, amount)

    (first_ids, first_times), active = known
    begin = tx["_period"].to_numpy(dtype="datetime64[ns]").min()
    end = tx["timestamp"].to_numpy(dtype="datetime64[ns]").max()
    lo, hi = np.searchsorted(first_times, begin, "left"), np.searchsorted(first_times, end, "right")
    ids = pa.array(tx["customer_id"], from_pandas=True).cast(pa.large_string())
    run = runs(ids)                            # looked up once per run of one customer's lines
    fresh = pc.is_in(ids.take(pa.array(np.flatnonzero(run))), value_set=first_ids[lo:hi])
    fresh = spread(fresh.to_numpy(zero_copy_only=False), run)
    lines = np.flatnonzero(sale & fresh)      # the sale lines of the customers whose first sale is in these rows
    customers, _ = pd.factorize(tx["customer_id"].iloc[lines])
    first_line = _first_lines(customers)       # per customer code, its first line (of `lines`)
    region = _first_regions(tx["timestamp"].to_numpy(dtype="datetime64[ns]")[lines], tx["order_id"], lines,
                            customers, first_line, rcode[lines])
    line = lines[first_line]
    groups = np.concatenate([(own[line] - rcode[line] + region)[region >= 0], every[line]])
    out["new_customers"] = pd.Series(np.bincount(groups, minlength=n_groups)).loc[lambda c: c > 0]
    index = pd.MultiIndex.from_arrays(
        [pd.Index([*map(str, rvals), schema.ALL] * len(pvals))[out.index],
         pd.DatetimeIndex(np.repeat(pvals, width))[out.index]], names=["region", "period"])
    out = out.set_axis(index)
    out["active_customers"] = active.reindex(index).to_numpy()
    return out


def run_codes(values: pd.Series, keep: np.ndarray | None = None, groups: np.ndarray | None = None,
              sort: bool = False) -> tuple[np.ndarray, np.ndarray, Any]:
    """pd.factorize(values[keep]) (`keep`: a mask of the lines; None: every line): a code per kept line (-1 where
    missing) in order of first appearance, and the distinct values; hashing only the first line of each run of
    equal values (the lines of an order, and so of its customer, follow each other in the file: ingest keeps an
    invoice's lines together), and taking no other line's text. Plus the kept lines that begin a run of (value, group) (`groups`:
    a number per kept line; None: one group), which are all the distinct-per-group counts need.

    A hash table as large as a period's ids outgrows the processor's caches, so each hashed line costs more the
    more ids there are; hashing the runs' first lines alone does that less often. And not at all when the runs'
    values increase (ordered by length, then byte by byte, as invoice numbers given in time order do): then each
    run is a new value, numbered as it comes. `sort`: as pd.factorize(values[keep], sort=True), the codes
    numbering the distinct values in their sorted order."""
    text = pa.array(values, from_pandas=True)
    change = runs(text)                 # a line whose value is not the previous line's, or follows one not kept
    if keep is None:
        starts, first = change, np.flatnonzero(change)
    else:
        change[1:] |= ~keep[:-1]
        starts, first = change[keep], np.flatnonzero(change & keep)
    if not sort and increasing(text.take(pa.array(first, type=pa.int64()))):
        codes, uniques = np.arange(len(first)), pd.Index(values.iloc[first].array)
    else:
        codes, uniques = pd.factorize(values.iloc[first], sort=sort)
    codes = spread(codes, starts)
    heads = starts.copy()
    if groups is not None:
        heads[1:] |= groups[1:] != groups[:-1]
    return codes, heads, uniques


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


def increasing(text: pa.Array) -> bool:
    """Whether every value of `text` is after the one before it, ordered by length, then byte by byte (so "O9"
    before "O10"); no value missing. Then no two are the same."""
    if text.null_count or not pa.types.is_string(text.type) and not pa.types.is_large_string(text.type):
        return False
    if len(text) < 2:
        return True
    size = pc.binary_length(text).to_numpy(zero_copy_only=False)
    less = pc.less(text[:-1], text[1:]).to_numpy(zero_copy_only=False)
    return bool(np.all((size[:-1] < size[1:]) | ((size[:-1] == size[1:]) & less)))


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


def _first_lines(codes: np.ndarray) -> np.ndarray:
    """Per code (0..max, as pd.factorize numbers them: in order of first appearance), the position of its first
    line; -1 for none."""
    n = int(codes.max()) + 1 if len(codes) else 0
    out = np.full(n, -1, dtype="int64")
    if n:
        running = np.maximum.accumulate(codes)
        firsts = np.flatnonzero(np.concatenate([[codes[0] >= 0], running[1:] > running[:-1]]))
        if len(firsts) != n:         # not numbered in order of appearance after all: find them by hashing
            firsts = pd.Series(codes).drop_duplicates().loc[lambda c: c >= 0].index.to_numpy()
        out[codes[firsts]] = firsts
    return out


def _first_regions(ts: np.ndarray, order_ids: pd.Series, lines: np.ndarray, codes: np.ndarray,
                   first_line: np.ndarray, rcode: np.ndarray) -> np.ndarray:
    """Per customer code, the region code (-1: none) of their first sale: the region of their first line, unless
    another of their lines at that time is in another region; then `_sums`' rule (timestamp, order_id, stable).
    `ts`, `codes` (0 to n - 1, as pd.factorize numbers them; none missing), `rcode`: per line; `first_line`: per
    code, its first line; `lines`: the lines' positions among all lines of `order_ids`."""
    region = rcode[first_line].copy()
    tied = np.flatnonzero(ts == ts[first_line[codes]])      # at the very time of their customer's first line
    other = tied[rcode[tied] != region[codes[tied]]]
    if len(other):
        mixed = np.unique(codes[other])
        rows = tied[np.isin(codes[tied], mixed)]
        pick = pd.DataFrame({"code": codes[rows], "region": rcode[rows], "timestamp": ts[rows],
                             "order_id": order_ids.iloc[lines[rows]].reset_index(drop=True)}) \
            .sort_values(["timestamp", "order_id"], kind="stable").drop_duplicates("code").set_index("code")
        region[pick.index.to_numpy()] = pick["region"].to_numpy()
    return region


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
