"""The revenue bridge as a waterfall figure (PNG bytes), in the house theme, with stable bytes.

`bars(change)` is the pure core: one floating bar per row of present.change's section (the previous
period's revenue, each part, the latest period's revenue), so that each part starts where the one before
ended and the last part ends at the latest revenue. `waterfall(pack)` draws them with seaborn's theme
(present.theme) on a Figure of its own with an Agg canvas, never through pyplot, and saves the PNG at a
fixed dpi without the 'Software' metadata, as present.figures does: same pack in, same bytes out. With a
price/volume/mix split, a second panel shows returning customers' change split that way.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..errors import DataError
from ..pack import Pack
from .change import Change, Row, what_changed
from .figures import _png
from .theme import ACTUAL, NEUTRAL, OKABE_ITO, WIDTH_IN, theme
from .words import fmt_money, require_pack

UP, DOWN = OKABE_ITO["green"], OKABE_ITO["vermillion"]
# The bars' names under the axis, short enough to sit side by side; the report's table gives the full words.
SHORT = {"new": "New", "reactivated": "Won back", "lost": "Lost", "growth": "Buying more",
         "decline": "Buying less", "returns": "Returns"}
_money_axis = FuncFormatter(lambda v, _pos: fmt_money(v) if math.isfinite(v) else "")


@dataclass(frozen=True)
class Bar:
    label: str
    bottom: float
    height: float      # signed: a fall is a negative height from `bottom`
    colour: str
    text: str          # the value written on the bar, as present.change words it

    @property
    def top(self) -> float:
        return self.bottom + self.height


def bars(change: Change) -> list[Bar]:
    """Floating bars of the bridge: totals from zero, each part from where the running total stands."""
    out: list[Bar] = []
    level = 0.0
    for r in change.rows:
        if r.kind == "total":
            out.append(Bar(textwrap.fill(r.label, 9), 0.0, r.amount, ACTUAL, r.text))
            level = r.amount
        else:
            out.append(Bar(SHORT.get(r.part, r.label).replace(" ", "\n"), level, r.amount,
                           UP if r.amount >= 0 else DOWN, r.text))
            level += r.amount
    return out


def _axis_floor(bs: list[Bar]) -> float:
    """Where the value axis starts: zero, unless the parts would be slivers on bars that tall; then a round
    level below the lowest point the parts reach (the caption says the axis is cut)."""
    ends = [v for b in bs[1:-1] for v in (b.bottom, b.top)] or [0.0]
    low, high = min(ends), max(max(ends), bs[0].top, bs[-1].top)
    span = high - low
    if low <= 0 or span <= 0 or span > 0.5 * high:
        return 0.0
    step = 10 ** math.floor(math.log10(span))
    return max(0.0, math.floor((low - 0.6 * span) / step) * step)


def axis_cut(change: Change) -> bool:
    """Whether the waterfall's value axis starts above zero (the totals' bars are then cut)."""
    return bool(change.rows) and _axis_floor(bars(change)) > 0


def _draw(ax, bs: list[Bar], floor: float) -> None:
    x = list(range(len(bs)))
    ax.bar(x, [b.height for b in bs], bottom=[b.bottom for b in bs], color=[b.colour for b in bs], width=0.7)
    for i in range(len(bs) - 1):  # the connector from one bar's end to the next bar's start
        ax.plot([i + 0.35, i + 0.65], [bs[i].top] * 2, color=NEUTRAL, linewidth=0.7)
    ax.set_xticks(x, [b.label for b in bs])
    ax.tick_params(axis="x", length=0, labelsize=7.5)
    ax.yaxis.set_major_formatter(_money_axis)
    ax.grid(axis="x", visible=False)
    lo, hi = ax.get_ylim()
    ax.set_ylim(floor if floor > 0 else lo, hi + 0.06 * (hi - (floor or lo)))
    for i, b in enumerate(bs):
        y = max(b.bottom, b.top)
        ax.annotate(b.text, (i, y), xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                    fontsize=7.5)


def _split(ax, rows: list[Row]) -> None:
    x = list(range(len(rows)))
    ax.bar(x, [r.amount for r in rows], color=[UP if r.amount >= 0 else DOWN for r in rows], width=0.6)
    ax.axhline(0, color=NEUTRAL, linewidth=0.8)
    ax.set_xticks(x, [r.label for r in rows])
    ax.tick_params(axis="x", length=0, labelsize=7.5)
    ax.yaxis.set_major_formatter(_money_axis)
    ax.grid(axis="x", visible=False)
    lo, hi = ax.get_ylim()
    pad = 0.12 * (hi - lo)
    ax.set_ylim(lo - (pad if lo < 0 else 0), hi + pad)
    for i, r in enumerate(rows):
        ax.annotate(r.text, (i, r.amount), xytext=(0, 2 if r.amount >= 0 else -2), textcoords="offset points",
                    ha="center", va="bottom" if r.amount >= 0 else "top", fontsize=7.5)
    ax.set_title("Price, volume, mix", loc="left")


def waterfall(p: Pack, change: Change | None = None) -> bytes:
    """The revenue bridge of pack `p`'s headline segment (`change`: what_changed(p), if already made)."""
    require_pack(p)
    change = change or what_changed(p)
    if not change.rows:
        raise DataError(f"nothing to plot: {change.where} has no previous period to compare with",
                        fix="show present.change's message instead of the figure")
    bs = bars(change)
    with theme():
        fig = Figure(figsize=(WIDTH_IN, 3.0), layout="constrained")
        if change.split:
            left, right = fig.subplots(1, 2, width_ratios=[3.4, 1])
        else:
            left, right = fig.add_subplot(), None
        _draw(left, bs, _axis_floor(bs))
        left.set_ylabel(f"Revenue ({p.currency})")
        left.set_title(f"Revenue bridge, {change.previous_period} to {change.period}", loc="left")
        if right is not None:
            _split(right, change.split)
        return _png(fig)
