"""The data-quality summary that `datastory check-data` prints: pure, from ingest's quality record and the
kept transactions' profile (`profile.Profile`, counted by either engine)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from .ingest import OTHER
from .profile import Profile

MAX_SEGMENTS_SHOWN = 8


def monthly_net_revenue(parts: Iterable[pd.DataFrame]) -> pd.Series:
    """Net revenue (the amounts summed) per calendar month, indexed 'YYYY-MM', every month from the first line's
    to the last one's (0 where none), from the kept lines' timestamp and amount: the whole frame, or the
    transactions file's batches (streaming.column_batches), summed part by part in memory of one part."""
    def month(ts: pd.Series) -> np.ndarray:   # months since 1970-01, as integers
        return ts.to_numpy(dtype="datetime64[ns]").astype("datetime64[M]").astype("int64")

    sums = [p["amount"].astype("float64").groupby(month(p["timestamp"])).sum() for p in parts if len(p)]
    if not sums:
        return pd.Series([], dtype="float64", name="amount", index=pd.Index([], dtype=object))
    total = pd.concat(sums).groupby(level=0).sum()
    months = np.arange(total.index.min(), total.index.max() + 1)
    out = total.reindex(months, fill_value=0.0)
    out.index = pd.Index([str(np.datetime64(int(m), "M")) for m in months], dtype=object)
    return out.rename("amount")


def set_aside_rows(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Rows set aside per (disposition, reason), as a `rows` column, sorted by both: the whole rejected frame,
    or the rejected file's batches, counted part by part."""
    keys = ["disposition", "reason"]
    counts = [p.groupby(keys, observed=True, dropna=False).size() for p in parts if len(p)]
    if not counts:
        return pd.DataFrame({"rows": pd.Series([], dtype="int64")},
                            index=pd.MultiIndex.from_arrays([[], []], names=keys))
    return pd.concat(counts).groupby(level=keys, dropna=False).sum().rename("rows").to_frame()


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def summary(quality: dict[str, Any], kept: Profile, source_name: str) -> list[str]:
    """Short human-readable lines: rows in and where they went, period, customers, segments, warnings."""
    q = quality
    n = int(q["rows_read"])
    lines = [f"source        {source_name} ({q['source']}, on_bad_rows: {q['on_bad_rows']})",
             f"rows read     {n:,}",
             f"kept          {q['rows_kept']:,} ({_pct(q['rows_kept'], n)})",
             f"duplicates    {q['duplicates_removed']:,} exact repeats set aside"]
    for title, key in (("excluded", "excluded"), ("rejected", "rejected")):
        counts = q.get(key) or {}
        total = sum(counts.values())
        lines.append(f"{title:<13} {total:,} ({_pct(total, n)})")
        lines += [f"  {reason}: {count:,}" for reason, count in sorted(counts.items(), key=lambda kv: -kv[1])]
    lines += [f"period        {q['period_start']} to {q['period_end']}",
              f"customers     {q['n_customers']:,}; orders {q['n_orders']:,}; currency {q['currency']}",
              *([] if q.get("order_ids", "column") == "column" else
                [f"orders        one per {q['order_ids']} (no order id column)"]),
              f"returns       {q['return_lines']:,} lines (of which {q['cancelled_lines']:,} cancellations)",
              f"regions filled from the customer's other lines: {q['missing_region_filled']:,}"]
    # by revenue to the cent, then by name: two engines' float sums of a tie differ in the last bits, never in cents
    seg = kept.segments.assign(cents=kept.segments["sum"].round(2)).sort_values("cents", ascending=False,
                                                                              kind="stable")
    shown = "; ".join(f"{r} {int(s):,} lines" for r, s in seg["size"].head(MAX_SEGMENTS_SHOWN).items())
    more = f"; and {len(seg) - MAX_SEGMENTS_SHOWN} more" if len(seg) > MAX_SEGMENTS_SHOWN else ""
    lines.append(f"segments      {len(seg)}: {shown}{more}")
    lines.append(f"product lines {kept.product_lines}")
    empty = q.get("empty_periods") or []
    if empty:
        lines.append(f"warning: no rows in {len(empty)} month(s) inside the period: {', '.join(empty[:6])}")
    unmapped = q.get("unmapped_countries") or {}
    if unmapped:
        named = ", ".join(f"{c} ({k:,} line{'s' if k != 1 else ''})" for c, k in unmapped.items())
        lines.append(f"warning: {len(unmapped)} countr{'ies are' if len(unmapped) != 1 else 'y is'} not in "
                     f"rules.country_regions and {'go' if len(unmapped) != 1 else 'goes'} to the region {OTHER}: "
                     f"{named}; add them to country_regions to place them in a sales region")
    rejected = sum((q.get("rejected") or {}).values())
    if rejected:
        lines.append(f"warning: {rejected:,} rows were rejected and set aside in the rejected rows file; "
                     "fix them at the source")
    return lines
