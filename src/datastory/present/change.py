"""What changed, in words: the revenue bridge and the top movers of a pack, as rows, labels and sentences.

Pure: a Pack in, plain values and strings out. Every renderer (the report, the workbook, the email) takes
the section from `what_changed(pack)`, so an amount reads the same in each: levels through
`words.fmt_money`, changes through `signed_money` (a '+' or a typographic minus, then fmt_money).

The section is about the pack's headline segment (`pack.headline_region`): the company for a company
pack, the region itself for a regional pack, never the other's figures. Without a previous complete
period (no bridge rows for that segment) the section holds no rows and `message` says so in a sentence;
when returning customers' change cannot be split into price, volume and mix, `split` is empty and
`split_note` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .. import bridge
from ..pack import Pack
from .words import MINUS, fmt_count, fmt_money, fmt_pct, period_label, require_pack, series_name, trend

NO_PREVIOUS_PERIOD = ("No previous complete period to compare with: the data holds fewer than two complete "
                      "periods, so there is no revenue bridge yet.")
LABELS = {
    "new": "New customers", "reactivated": "Won back", "lost": "Lost customers",
    "growth": "Existing customers buying more", "decline": "Existing customers buying less",
    "returns": "Returns", "price": "Price", "volume": "Volume", "mix": "Mix",
}
EXPLAIN = {
    "new": "first order ever in the latest period",
    "reactivated": "bought before, not in the previous period, again in the latest",
    "lost": "bought in the previous period, not in the latest",
    "growth": "bought in both periods, more in the latest",
    "decline": "bought in both periods, less in the latest",
    "returns": "change in returned goods (credit lines), all customers",
    "price": "the same products at a different unit price",
    "volume": "more or fewer units at the previous average price",
    "mix": "a shift towards dearer or cheaper products",
}
KIND_LABELS = {"customer": "Customers", "product_line": "Product lines"}
DIRECTION_LABELS = {"rise": "Rise", "fall": "Fall"}
DRIVERS = 3  # parts the email names


def signed_money(x: float) -> str:
    """A change of an amount: '+1.2 k', '−950', '0' (the magnitude is fmt_money's)."""
    text = fmt_money(abs(float(x)))
    if text == "0":
        return "0"
    return f"+{text}" if x > 0 else f"{MINUS}{text}"


@dataclass(frozen=True)
class Row:
    """One bar of the bridge: a total (a level) or a part (a change), with its words."""
    part: str          # previous | new | reactivated | lost | growth | decline | returns | current | price | ...
    kind: str          # total | step | pvm
    label: str
    amount: float      # the level (total) or the change (step, pvm), exact to the cent
    customers: int
    text: str          # the amount as every format writes it
    customers_text: str
    explain: str = ""


@dataclass(frozen=True)
class Mover:
    kind: str          # Customers | Product lines
    direction: str     # Rise | Fall
    rank: int
    name: str
    previous: float
    current: float
    change: float
    previous_text: str
    current_text: str
    change_text: str


@dataclass(frozen=True)
class Change:
    region: str
    where: str                          # 'Whole company' or the region
    title: str                          # 'What changed: September 2026 vs August 2026'
    message: str                        # the plain sentence when there is nothing to show, else ""
    sentence: str = ""
    period: str = ""                    # 'September 2026'
    previous_period: str = ""           # 'August 2026'
    rows: list[Row] = field(default_factory=list)      # previous, the six steps, current
    split: list[Row] = field(default_factory=list)     # price, volume, mix; empty when not split
    split_note: str = ""
    movers: list[Mover] = field(default_factory=list)

    @property
    def steps(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "step"]

    @property
    def change(self) -> float:
        return (round(self.rows[-1].amount * 100) - round(self.rows[0].amount * 100)) / 100 if self.rows else 0.0

    @property
    def change_text(self) -> str:
        return signed_money(self.change)

    def drivers(self, n: int = DRIVERS) -> list[Row]:
        """The `n` parts that moved revenue most (largest first, ties in bridge order); zeros left out."""
        moved = [r for r in self.steps if signed_money(r.amount) != "0"]
        return sorted(moved, key=lambda r: -abs(r.amount))[:n]


def freq_of(period: pd.Timestamp, previous: pd.Timestamp) -> str:
    """'Q' when the bridge compares quarters, else 'M' (the bridge only knows these two)."""
    return "Q" if (pd.Timestamp(period) - pd.Timestamp(previous)).days > 31 else "M"


def _row(part: str, kind: str, label: str, amount: float, customers: int) -> Row:
    text = fmt_money(amount) if kind == "total" else signed_money(amount)
    return Row(part, kind, label, float(amount), int(customers), text, fmt_count(customers), EXPLAIN.get(part, ""))


def sentence(rows: list[Row], period: str, previous_period: str, currency: str) -> str:
    """'Revenue rose from 9.8 M EUR in August 2026 to 11 M EUR in September 2026 (+1.3 M, +14%). Largest
    driver: existing customers buying more (+3.1 M); against it: existing customers buying less (−2.6 M).'"""
    first, last = rows[0], rows[-1]
    change = (round(last.amount * 100) - round(first.amount * 100)) / 100
    rel = change / first.amount if first.amount > 0 else None
    how = "rose" if change > 0 else "fell"
    if signed_money(change) == "0":
        head = (f"Revenue was unchanged at {first.text} {currency} from {previous_period} to {period}")
    else:
        pct = f", {fmt_pct(rel, signed=True)}" if rel is not None and trend(rel) != "flat" else ""
        head = (f"Revenue {how} from {first.text} {currency} in {previous_period} to {last.text} {currency} "
                f"in {period} ({signed_money(change)}{pct})")
    moved = [r for r in rows if r.kind == "step" and signed_money(r.amount) != "0"]
    if not moved:
        return head + "."
    top = max(moved, key=lambda r: abs(r.amount))
    text = f"{head}. Largest driver: {top.label.lower()} ({top.text})"
    against = [r for r in moved if (r.amount > 0) != (top.amount > 0)]
    if against:
        other = max(against, key=lambda r: abs(r.amount))
        text += f"; against it: {other.label.lower()} ({other.text})"
    return text + "."


def _movers(p: Pack, region: str) -> list[Mover]:
    m = p.movers[p.movers["region"] == region]
    order = {k: i for i, k in enumerate(KIND_LABELS)}
    m = m.assign(_k=m["kind"].astype(str).map(order), _d=(m["direction"].astype(str) == "fall").astype(int))
    m = m.sort_values(["_k", "_d", "rank"], kind="stable")
    return [Mover(KIND_LABELS.get(str(r.kind), str(r.kind)), DIRECTION_LABELS.get(str(r.direction), str(r.direction)),
                  int(r.rank), str(r.name), float(r.previous), float(r.current), float(r.change),
                  fmt_money(float(r.previous)), fmt_money(float(r.current)), signed_money(float(r.change)))
            for r in m.itertuples(index=False)]


def what_changed(p: Pack) -> Change:
    """The 'What changed' section of pack `p`, for its headline segment."""
    require_pack(p)
    region = p.headline_region
    where = series_name(region)
    seg = bridge.segment(p.bridge, region)
    if seg is None:
        return Change(region, where, "What changed", NO_PREVIOUS_PERIOD)
    freq = freq_of(seg["period"], seg["previous_period"])
    now, before = period_label(seg["period"], freq), period_label(seg["previous_period"], freq)
    n = seg["customers"]
    rows = [_row("previous", "total", before, seg["previous"], n["previous"])]
    rows += [_row(k, "step", LABELS[k], seg["steps"][k], n[k]) for k in bridge.STEPS]
    rows.append(_row("current", "total", now, seg["current"], n["current"]))
    split = [_row(k, "pvm", LABELS[k], seg["pvm"][k], n[k]) for k in bridge.PVM if k in seg["pvm"]]
    why = str(seg["note"] or "returning customers' change is not split into price, volume and mix")
    note = "" if split else f"{why[0].upper()}{why[1:]}."
    return Change(region, where, f"What changed: {now} vs {before}", "", sentence(rows, now, before, p.currency),
                  now, before, rows, split, note, _movers(p, region))
