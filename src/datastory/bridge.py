"""What changed: the revenue bridge and the top movers from the previous complete period to the latest one.

The bridge splits each segment's change in net revenue (the company, schema.ALL, and each region) into parts
that add up exactly, to the cent. Customers are sorted by their sales (lines with a positive amount) within the
segment:
- new: bought in the latest period and never before it;
- reactivated: bought in the latest period, not in the previous one, but some time before;
- lost: bought in the previous period, not in the latest one (minus their previous sales);
- growth / decline: bought in both; the change of those whose sales rose / fell;
- returns: the change in return lines (negative amounts) of everyone, so no line counts twice.
Growth + decline is split again into price, volume and mix at customer x product line level, when every
order line involved has a quantity (see `pvm`).

The latest complete period is the last one that ends on or before the data's last day (as kpis.latest_change
decides), and it is compared with the period just before it. With no such pair the bridge has no rows.

`compute` and `movers` are the pure core (transactions in, schema.BRIDGE / schema.MOVERS out); the kpis stage
(datastory.kpis_stage) saves them. Amounts are summed as whole cents (integers), so the parts add up exactly.
Given a `Before` record, they need only the lines from the previous period's first day on: what they use of
the earlier history (the log's first period, its regions, who bought before, customers' names) is in it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import schema
from .errors import DataError
from .kpis import check_period, run_codes, starts

STEPS = ("new", "reactivated", "lost", "growth", "decline", "returns")
PVM = ("price", "volume", "mix")
UNSPLIT = "unsplit"   # the pvm row when returning customers' change cannot be split into price, volume and mix
MOVER_KINDS = ("customer", "product_line")
# what `compute` and `movers` read of each line, and what `names` reads (the kpis stage reads no more of the file)
LINES = {c: schema.TRANSACTIONS[c] for c in ("customer_id", "region", "product_line", "timestamp", "amount", "quantity")}
NAMED = {c: schema.TRANSACTIONS[c] for c in ("customer_id", "customer_name", "timestamp")}
CODED = ("region", "product_line")   # of LINES: may come as categoricals (the kpis stage reads them as codes)
FEW = 16   # `category` looks for each of this many categories or fewer in turn


@dataclass(frozen=True)
class Before:
    """What `compute` and `movers` use of the lines before the previous complete period, when the transactions
    they get start on its first day (`since`); see datastory.kpis_stage, which reads them from the file.

    - first: the first day of the log's first period (`periods` looks back to it);
    - regions: every region of the log (each one is a segment, whether it sold in the two periods or not);
    - buyers: (region, customer_id) rows of a sale before `since`, at least for every customer with a sale
      from `since` on (a customer who bought before is reactivated, not new).
    The movers' names are not part of it: `with_names` gives them to the few customers `movers` lists.
    """
    since: pd.Timestamp
    first: pd.Timestamp
    regions: tuple[str, ...]
    buyers: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"region": [], "customer_id": []}))


@dataclass(frozen=True)
class Lines:
    """The lines as `compute` and `movers` use them (`prepare`): `frame` with customer_id as a number (float64,
    NaN when missing) coding `customers`, the ids in order of first appearance, region and product
    line as categories, each line's period (`period`: M or Q) and its amount in whole cents; `end`: the last
    line's time (the default data end)."""
    frame: pd.DataFrame
    customers: pd.Index
    period: str
    end: pd.Timestamp


def prepare(tx: pd.DataFrame, period: str) -> Lines:
    """The transactions `tx` (bridge.LINES' columns at least) as `compute` and `movers` use them. Given the Lines
    instead of `tx`, the two share the work, and the caller may drop the lines (the kpis stage does: a quarter
    of a very large log is gigabytes of text). A segment's sums, marks and takes work on numbers, not text."""
    check_period(period)
    if tx is None or tx.empty:
        raise DataError("no transactions to compute the revenue bridge from", file="transactions",
                        fix="check the ingest stage's data-quality report (rows_kept)")
    # read, never changed: no copy of the lines; region and product line as text, or as categoricals (read so)
    tx = schema.conform(tx, {c: "category" if c in CODED and isinstance(tx[c].dtype, pd.CategoricalDtype) else t
                             for c, t in LINES.items()}, "transactions", copy=False)
    amount = tx["amount"].to_numpy(dtype="float64")
    bad = ~np.isfinite(amount)
    if bad.any():
        raise DataError(f"amount is missing or not a number in {int(bad.sum()):,} line(s), first at row "
                        f"{int(np.flatnonzero(bad)[0])}", file="transactions", column="amount",
                        fix="re-run the ingest stage, which refuses such rows")
    codes, customers = run_codes(tx["customer_id"])   # hashing only the first line of each run
    return Lines(pd.DataFrame({
        "customer_id": np.where(codes < 0, np.nan, codes.astype("float64")),
        # categories: a byte a line, not a string (each segment's copy of the lines, and pvm's groupby)
        "region": category(tx["region"]), "product_line": category(tx["product_line"]),
        "period": starts(tx["timestamp"], period),
        "cents": np.rint(amount * 100).astype("int64"),       # a whole number of cents per line
        "sale": amount > 0, "quantity": tx["quantity"].to_numpy(dtype="float64"),
    }, copy=False), pd.Index(customers), period, pd.Timestamp(tx["timestamp"].max()))   # no copy into blocks


def category(values: pd.Series) -> pd.Categorical:
    """`values` as pd.Categorical(text) makes them: categories the values present, sorted (as text). From text, or
    from a categorical (its codes kept: no text per line; a table of the few categories renumbers them)."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return pd.Categorical(values)
    codes = values.cat.codes.to_numpy()
    names = values.cat.categories.astype(str).to_numpy(dtype=object)
    if len(names) <= FEW:       # a pass over the codes per category: no copy of them as wide integers
        used = np.array([i for i in range(len(names)) if (codes == i).any()], dtype="int64")
    else:
        used = np.flatnonzero(np.bincount(codes.astype("int64") + 1, minlength=len(names) + 1)[1:])
    order = used[np.argsort(names[used], kind="stable")]               # the present ones, sorted
    table = np.full(len(names) + 1, -1, dtype="int8" if len(names) < 127 else "int32")   # the last: missing (-1)
    table[order] = np.arange(len(order))
    return pd.Categorical.from_codes(table[codes], categories=pd.array(names[order], dtype="string[pyarrow]"))


def _prepare(tx: pd.DataFrame | Lines, period: str) -> Lines:
    if isinstance(tx, Lines):
        if tx.period != period:
            raise DataError(f"lines prepared for period {tx.period!r}, asked for {period!r}", file="transactions",
                            fix="prepare them with the period asked for")
        return tx
    return prepare(tx, period)


def periods(starts: pd.Series, period: str, data_end: str | dt.date | pd.Timestamp) -> tuple[pd.Timestamp, ...]:
    """(latest complete period, the one before) as first days, or () when the data has no such pair.

    `starts`: the first day of each line's period. A period is complete when it ends on or before `data_end`.
    """
    check_period(period)
    if starts.empty:
        return ()
    first = pd.Timestamp(starts.min())
    end_of = pd.offsets.QuarterEnd(0) if period == "Q" else pd.offsets.MonthEnd(0)
    step = pd.DateOffset(months=3 if period == "Q" else 1)
    last = pd.Timestamp(starts.max())
    limit = pd.Timestamp(data_end).normalize()
    while last + end_of > limit and last >= first:
        last = last - step
    previous = last - step
    return (last, previous) if previous >= first else ()


def _segments(f: pd.DataFrame, before: Before | None) -> list[str]:
    regions = set(map(str, f["region"].dropna().unique())) | set(before.regions if before else ())
    return [schema.ALL, *sorted(regions)]


def _pair(lines: Lines, data_end: Any, before: Before | None) -> tuple:
    """`periods` of the lines (and the log's first period when `before` is given)."""
    f = lines.frame
    if before is not None and not (f["period"] >= before.since).all():
        raise DataError(f"lines before {before.since.date()} given with the history before it",
                        file="transactions", column="timestamp", fix="give only the lines from that day on")
    firsts = f["period"] if before is None else pd.concat([pd.Series([before.first]), f["period"]])
    return periods(firsts, lines.period, data_end if data_end is not None else lines.end)


def _empty(columns: dict[str, str], name: str) -> pd.DataFrame:
    return schema.conform(pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()}), columns, name)


def pvm(customer: np.ndarray, line: np.ndarray, current: np.ndarray, cents: np.ndarray,
        quantity: np.ndarray) -> tuple[dict[str, int], str]:
    """Returning customers' change in sales split into price, volume and mix (cents), or ({}, why not).

    The sales lines of the customers who bought in both periods, as arrays: `customer` (prepare's number),
    `line` (the product line's category code, -1: none), `current` (in the latest period, else the previous
    one), `cents`, `quantity`. Each customer x product line is a cell with amount a and quantity q, so unit
    price p = a / q. With P0 = A0 / Q0 the previous average unit price over all cells:
    - price = sum over cells bought in both periods of q1 x (p1 - p0): what the same cells cost more or less;
    - volume = (Q1 - Q0) x P0: more or fewer units at the previous average price;
    - mix = the rest, the change minus price minus volume: a shift towards dearer or cheaper cells, including
      the product lines a returning customer started or stopped buying.
    Price and volume are rounded to the cent, so the three add up exactly. Quantities of different product
    lines are added as plain units.
    """
    q = quantity.astype("float64", copy=False)
    bad = ~(np.isfinite(q) & (q > 0))
    if bad.any():
        return {}, (f"{int(bad.sum()):,} of {len(q):,} order lines of returning customers have no quantity "
                    "above zero: their change is not split into price, volume and mix")
    total = int(cents[current].sum()) - int(cents[~current].sum())
    if not len(q):
        return {"price": 0, "volume": 0, "mix": 0}, ""
    # a number per cell (a line without a product line is in no cell), 0 to m - 1: its sums per period are counted
    # in arrays of 2m (cell x 2 + current), each cell's lines added in their order; a cell without lines in a
    # period counts in neither (`has`)
    named = line >= 0
    width = int(line.max()) + 1 if named.any() else 1
    who = customer[named].astype("int64")
    seen = np.zeros(int(who.max()) + 1 if len(who) else 0, dtype=bool)
    seen[who] = True
    if (present := int(seen.sum())) * width <= len(who):   # cells as (customer, line): arrays no longer than the lines
        codes, m = (np.cumsum(seen) - 1)[who] * width + line[named], present * width
    else:                                   # many product lines: the cells with a line, numbered by hashing
        codes, cells = pd.factorize(who * width + line[named])
        m = len(cells)
    key = codes * 2 + current[named]
    a = _cent_sums(key, cents[named], 2 * m).reshape(m, 2)
    qs = np.bincount(key, weights=q[named], minlength=2 * m).reshape(m, 2)
    has = (np.bincount(key, minlength=2 * m) > 0).reshape(m, 2)
    a0, q0 = float(a[has[:, 0], 0].sum()), math.fsum(qs[has[:, 0], 0])
    q1 = math.fsum(qs[has[:, 1], 1])
    both = has[:, 0] & has[:, 1]
    x0, x1, y0, y1 = a[both, 0], a[both, 1], qs[both, 0], qs[both, 1]
    price = math.fsum(x1 - y1 * x0 / y0)
    volume = (q1 - q0) * a0 / q0 if q0 > 0 else 0.0
    price_c, volume_c = int(round(price)), int(round(volume))
    return {"price": price_c, "volume": volume_c, "mix": total - price_c - volume_c}, ""


def text(values: Any) -> pa.Array:
    """Text (ids) as one Arrow large_string array."""
    return pa.array(pd.Series(values, copy=False).astype("string[pyarrow]").array).cast(pa.large_string())


def _segment(f: pd.DataFrame, cur: pd.Timestamp, prev: pd.Timestamp, quantities: bool,
             earlier: np.ndarray) -> list[tuple]:
    # masks over the segment's lines, not copies of them (a quarter of a very large log is gigabytes)
    cust, cents = f["customer_id"].to_numpy(), f["cents"].to_numpy()
    period, sale, ret = f["period"].to_numpy(), f["sale"].to_numpy(), f["cents"].to_numpy() < 0
    at_prev, at_cur = period == prev.to_datetime64(), period == cur.to_datetime64()
    # per customer (prepare's numbers are dense, 0 to n - 1: arrays of n, no hash table as large as the
    # customers; a line without a customer counts for no one)
    known = ~np.isnan(cust)
    n = int(np.nanmax(cust)) + 1 if known.any() else 0
    sold = (known & sale & at_prev, known & sale & at_cur)
    sums = [_cent_sums(cust[m], cents[m], n) for m in sold]
    has = [np.bincount(cust[m].astype("int64"), minlength=n) > 0 for m in sold]
    ids = np.flatnonzero(has[0] | has[1])                  # the customers with a sale in either period
    v0, v1 = sums[0][ids], sums[1][ids]
    in0, in1 = has[0][ids], has[1][ids]
    seen = np.zeros(n, dtype=bool)                         # with a sale before the previous period
    early = np.concatenate([cust[known & sale & (period < prev.to_datetime64())], earlier[~np.isnan(earlier)]])
    seen[early[early < n].astype("int64")] = True
    before = seen[ids]
    change = v1 - v0
    groups = {"new": in1 & ~in0 & ~before, "reactivated": in1 & ~in0 & before, "lost": in0 & ~in1,
              "growth": in0 & in1 & (change > 0), "decline": in0 & in1 & (change < 0)}
    r0, r1 = int(cents[ret & at_prev].sum()), int(cents[ret & at_cur].sum())
    parts = {k: int(change[m].sum()) for k, m in groups.items()}
    parts["returns"] = r1 - r0
    counts = {k: int(m.sum()) for k, m in groups.items()}
    counts["returns"] = int(np.unique(cust[known & ret & at_cur]).size)

    rows = [("total", "previous", int(v0.sum()) + r0, int(in0.sum()), "")]
    rows += [("step", k, parts[k], counts[k], "") for k in STEPS]
    rows += [("total", "current", int(v1.sum()) + r1, int(in1.sum()), "")]
    returning = parts["growth"] + parts["decline"]
    n_returning = int((in0 & in1).sum())   # those whose sales did not change at all included
    if not quantities:
        split, note = {}, "the data has no quantities: returning customers' change is not split into price, volume and mix"
    else:
        again = np.zeros(n, dtype=bool)                   # the returning customers
        again[ids[in0 & in1]] = True
        both = sale & (at_prev | at_cur) & known & again[np.where(known, cust, 0).astype("int64")]
        split, note = pvm(cust[both], f["product_line"].cat.codes.to_numpy()[both], at_cur[both], cents[both],
                          f["quantity"].to_numpy()[both])
    if split:
        rows += [("pvm", k, split[k], n_returning, "") for k in PVM]
    else:
        rows += [("pvm", UNSPLIT, returning, n_returning, note)]
    return rows


def _buyers(before: Before | None, customers: pd.Index) -> pd.DataFrame:
    """`before.buyers` with customer_id as `_prepare`'s number (those not among `customers` left out)."""
    if before is None or before.buyers.empty:
        return pd.DataFrame({"region": pd.Series(dtype=object), "customer_id": pd.Series(dtype="float64")})
    b = before.buyers
    where = pc.index_in(text(b["customer_id"]), value_set=text(customers)).to_numpy(zero_copy_only=False)
    where = np.asarray(where, dtype="float64")
    keep = ~np.isnan(where)
    return pd.DataFrame({"region": b["region"].to_numpy()[keep], "customer_id": where[keep]})


def _earlier(buyers: pd.DataFrame, region: str) -> np.ndarray:
    """The customers (numbers) of `buyers` with a sale in `region` (any region for schema.ALL)."""
    return (buyers["customer_id"] if region == schema.ALL else
            buyers.loc[buyers["region"] == region, "customer_id"]).to_numpy(dtype="float64")


def compute(tx: pd.DataFrame | Lines, period: str, data_end: str | dt.date | pd.Timestamp | None = None,
            quantities: bool = True, before: Before | None = None) -> pd.DataFrame:
    """schema.BRIDGE rows for the company and each region; no rows without a previous complete period.

    `data_end`: the data's last day (data_quality["period_end"]); default the last line's day.
    `quantities`: False when the source has no quantity column (ingest then counts each line as one unit).
    `before`: the history before `before.since` when `tx` holds only the lines from that day on.
    `tx`: the transactions, or their `prepare`d Lines.
    """
    lines = _prepare(tx, period)
    pair = _pair(lines, data_end, before)
    if not pair:
        return _empty(schema.BRIDGE, "bridge")
    cur, prev = pair
    f = lines.frame
    buyers = _buyers(before, lines.customers)
    rows = []
    for region in _segments(f, before):
        seg = f if region == schema.ALL else f[f["region"] == region]
        rows += [(region, cur, prev, *r) for r in _segment(seg, cur, prev, quantities, _earlier(buyers, region))]
    out = pd.DataFrame(rows, columns=["region", "period", "previous_period", "kind", "part", "cents",
                                      "customers", "note"])
    out["amount"] = out["cents"].to_numpy(dtype="float64") / 100
    return schema.conform(out, schema.BRIDGE, "bridge")


def names(tx: pd.DataFrame) -> pd.Series:
    """customer_id -> the customer's latest non-empty name in `tx` (columns customer_id, customer_name,
    timestamp); a customer without one is not in it (movers then shows the id)."""
    tx = schema.conform(tx, NAMED, "transactions", copy=False)
    named = tx[tx["customer_name"].fillna("").str.strip() != ""].sort_values("timestamp", kind="stable")
    return named.drop_duplicates("customer_id", keep="last").set_index("customer_id")["customer_name"]


def movers(tx: pd.DataFrame | Lines, period: str, data_end: str | dt.date | pd.Timestamp | None = None,
           top: int = 5, before: Before | None = None, named: pd.Series | None = None) -> pd.DataFrame:
    """schema.MOVERS: per segment, the `top` customers and product lines whose net revenue rose most, and
    the `top` that fell most, from the previous complete period to the latest one (ties by key).
    `before`: the history before `before.since` when `tx` holds only the lines from that day on. `tx`: the
    transactions, or their `prepare`d Lines (names then come from `named`, `names` of the same transactions;
    without it a customer's name is their id, which `with_names` can replace later)."""
    if top < 1:
        raise DataError(f"movers must be at least 1, got {top}", file="params/kpis.yaml", column="movers",
                        fix="set movers: 5 (how many rises and falls to list)")
    lines = _prepare(tx, period)
    pair = _pair(lines, data_end, before)
    if not pair:
        return _empty(schema.MOVERS, "movers")
    cur, prev = pair
    f, customers = lines.frame, lines.customers
    given = isinstance(tx, pd.DataFrame) and "customer_name" in tx.columns
    named = names(tx) if given else named if named is not None else pd.Series(dtype="string")
    regions = _segments(f, before)
    two = f["period"].isin([prev, cur]).to_numpy()
    f = f if two.all() else f[two]       # the kpis stage gives the two periods' lines only: no copy of them
    rows = []
    for region in regions:
        seg = f if region == schema.ALL else f[f["region"] == region]
        for kind in ("customer", "product_line"):
            t = _per_customer(seg, prev, cur, len(customers)) if kind == "customer" else _per_line(seg, cur)
            for direction, sign in (("rise", 1), ("fall", -1)):
                pick = _top(t, sign, top, customers if kind == "customer" else None)
                for rank, r in enumerate(pick.itertuples(index=False), start=1):
                    rows.append((region, cur, prev, kind, direction, rank, r.key, r.key,
                                 r.previous, r.current, r.change))
    cols = ["region", "period", "previous_period", "kind", "direction", "rank", "key", "name",
            "previous", "current", "change"]
    if not rows:
        return _empty(schema.MOVERS, "movers")
    out = pd.DataFrame(rows, columns=cols)
    for c in ("previous", "current", "change"):
        out[c] = out[c].to_numpy(dtype="float64") / 100
    return with_names(schema.conform(out, schema.MOVERS, "movers"), named)


def customer_keys(table: pd.DataFrame) -> list[str]:
    """The customers a movers table (schema.MOVERS) lists, each once, in order."""
    return list(dict.fromkeys(table.loc[table["kind"] == "customer", "key"].astype(str)))


def with_names(table: pd.DataFrame, named: pd.Series) -> pd.DataFrame:
    """The movers `table` (schema.MOVERS) with each customer's name from `named` (customer_id -> their latest
    non-empty name: `names`); a customer not in it keeps the name they have (`movers` gives their id)."""
    if table.empty or not len(named):
        return table
    given = named[~named.index.duplicated(keep="last")]
    name = [given.get(k, n) if kind == "customer" else n
            for kind, k, n in zip(table["kind"], table["key"], table["name"], strict=True)]
    return schema.conform(table.assign(name=name), schema.MOVERS, "movers")


def _per_line(seg: pd.DataFrame, cur: pd.Timestamp) -> pd.DataFrame:
    """Per product line with a line in `seg` (prepare's lines of two periods, `cur` the later): key (the product
    line), previous, current (cents), change; in the categories' (sorted) order."""
    values = seg["product_line"]
    k = len(values.cat.categories)
    codes, cents = values.cat.codes.to_numpy(), seg["cents"].to_numpy()
    key = codes.astype("int32") * 2 + (seg["period"].to_numpy() == cur.to_datetime64())
    ok = codes >= 0
    if not ok.all():                    # a line without a product line is in none
        key, cents = key[ok], cents[ok]
    lines = np.bincount(key, minlength=2 * k).reshape(k, 2)
    sums = _cent_sums(key, cents, 2 * k).reshape(k, 2)
    present = np.flatnonzero(lines.sum(axis=1))
    return pd.DataFrame({"key": values.cat.categories[present], "previous": sums[present, 0],
                         "current": sums[present, 1], "change": sums[present, 1] - sums[present, 0]})


def _top(t: pd.DataFrame, sign: int, top: int, ids: pd.Index | None) -> pd.DataFrame:
    """The `top` rows of `t` (key, previous, current, change) whose change is above zero times `sign`, the
    largest first, ties by key (`ids`: the customer id of each number key, which becomes the key). Only the rows
    that can be among them (a partial sort finds them) are sorted."""
    change = t["change"].to_numpy()
    pick = t[sign * change > 0]
    order = -sign * pick["change"].to_numpy()
    if len(pick) > top:
        cut = np.partition(order, top - 1)[top - 1]
        pick, order = pick[order <= cut], order[order <= cut]
    if ids is not None:
        pick = pick.assign(key=ids.take(pick["key"].to_numpy().astype("int64")).to_numpy())
    return pick.assign(order=order).sort_values(["order", "key"], kind="stable").head(top)


def _per_customer(seg: pd.DataFrame, prev: pd.Timestamp, cur: pd.Timestamp, n: int) -> pd.DataFrame:
    """Per customer of `seg` (prepare's lines of periods `prev` and `cur`) with a nonzero change: key (their
    number), previous, current (cents), change; sorted by key. The numbers are dense (0 to n - 1), so the sums
    are counted in arrays of n, not in a hash table as large as the customers."""
    codes, cents = seg["customer_id"].to_numpy(dtype="float64"), seg["cents"].to_numpy()
    at_cur = seg["period"].to_numpy() == cur.to_datetime64()
    ok = ~np.isnan(codes)
    before, now = (_cent_sums(codes[ok & m], cents[ok & m], n) for m in (~at_cur, at_cur))
    key = np.flatnonzero(now != before)
    return pd.DataFrame({"key": key.astype("float64"), "previous": before[key], "current": now[key],
                         "change": now[key] - before[key]})


def _cent_sums(codes: np.ndarray, cents: np.ndarray, n: int) -> np.ndarray:
    """Whole cents summed per number `codes` (0 to n - 1), exactly: in float64 while every sum stays below
    2**52 cents (float64 adds whole numbers exactly up to 2**53), else in Python integers."""
    idx = codes.astype("int64", copy=False)
    if not len(cents) or max(-float(cents.min()), float(cents.max())) * len(cents) < 2.0 ** 52:   # no copy
        return np.rint(np.bincount(idx, weights=cents, minlength=n)).astype("int64")
    out = np.zeros(n, dtype=object)
    np.add.at(out, idx, cents.astype(object))
    return out.astype("int64")


def segment(bridge: pd.DataFrame, region: str) -> dict[str, Any] | None:
    """One segment's bridge as plain values for a renderer, or None when there is no previous period.

    {"period", "previous_period" (ISO dates), "previous", "current", "change", "steps": {part: amount},
    "pvm": {part: amount} (empty when not split), "note", "customers": {part: count}}.
    """
    rows = bridge[bridge["region"] == region]
    if rows.empty:
        return None
    amount = dict(zip(rows["part"].astype(str), rows["amount"].astype(float), strict=True))
    count = dict(zip(rows["part"].astype(str), rows["customers"].astype(int), strict=True))
    cents = {k: round(v * 100) for k, v in amount.items()}
    return {"period": rows["period"].iloc[0].date().isoformat(),
            "previous_period": rows["previous_period"].iloc[0].date().isoformat(),
            "previous": amount["previous"], "current": amount["current"],
            "change": (cents["current"] - cents["previous"]) / 100,
            "steps": {k: amount[k] for k in STEPS},
            "pvm": {k: amount[k] for k in PVM if k in amount},
            "note": str(rows.loc[rows["kind"] == "pvm", "note"].iloc[0]) if (rows["kind"] == "pvm").any() else "",
            "customers": count}


def has_quantities(data: Any) -> bool:
    """Whether the transactions carry real quantities: the sample does; a source only when columns.quantity
    is mapped (without it ingest gives every line quantity 1, which would make volume a count of lines)."""
    return data.source == "sample" or bool(data.columns.quantity)
