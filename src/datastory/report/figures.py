"""Report figures as PNG bytes: one colour-blind-safe palette, readable at print size, stable bytes.

Each function draws on its own `matplotlib.figure.Figure` with an Agg canvas (no pyplot, so no
global backend switch and no figure registry), saves at a fixed dpi with the 'Software'
metadata removed, and drops the figure. Same pack in, same bytes out.
"""

from __future__ import annotations

import io as _io
import math

import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..errors import DataError
from ..pack import Pack
from .narrative import MONTHS, fmt_money, require_pack, series_name

# Okabe & Ito (2008), safe for the common colour-vision deficiencies.
OKABE_ITO = {
    "blue": "#0072B2", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000",
    "grey": "#999999",
}
ACTUAL, FORECAST, BAND, RISK = OKABE_ITO["blue"], OKABE_ITO["orange"], "#F5D9A6", OKABE_ITO["vermillion"]
DPI = 150
WIDTH_IN = 7.0  # the printable width of an A4/Letter page with 2 cm margins, at 1:1

RC = {
    "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.color": "#DDDDDD", "grid.linewidth": 0.6,
    "axes.axisbelow": True, "svg.hashsalt": "datastory", "path.simplify": True,
}

_money_axis = FuncFormatter(lambda v, _pos: fmt_money(v) if math.isfinite(v) else "")


def _png(fig: Figure) -> bytes:
    """Render with Agg at the fixed dpi; no 'Software' chunk, so the bytes depend on the drawing only."""
    FigureCanvasAgg(fig)
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches=None)
    fig.clear()
    return buf.getvalue()


def _need(df: pd.DataFrame, what: str) -> None:
    if df.empty:
        raise DataError(f"nothing to plot: {what} has no rows", fix="check the pack's audience and inputs")


def partial_periods(periods: pd.Series, start: str, end: str, freq: str = "M") -> list[bool]:
    """Per KPI period start: is the period only partly covered by the data (from `start` to `end`)?"""
    offset = pd.offsets.QuarterEnd(0) if freq == "Q" else pd.offsets.MonthEnd(0)
    try:
        first, last = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    except ValueError:
        return [False] * len(periods)
    return [bool(pd.Timestamp(d) < first or pd.Timestamp(d) + offset > last) for d in periods]


def revenue_by_period(p: Pack) -> bytes:
    """Bars of revenue per KPI period for the headline region; the latest complete period highlighted, a
    period the data covers only in part hatched and labelled 'to date' (or 'part'), never a collapse."""
    require_pack(p)
    rows = p.kpis[p.kpis["region"] == p.headline_region].sort_values("period", kind="stable")
    _need(rows, f"KPIs of {p.headline_region}")
    gaps = rows["period"].drop_duplicates().diff().dropna()
    freq = "Q" if len(gaps) and gaps.min() > pd.Timedelta(days=31) else "M"
    partial = partial_periods(rows["period"], p.provenance.period_start, p.provenance.period_end, freq)
    complete = [i for i, part in enumerate(partial) if not part]
    latest = complete[-1] if complete else None
    with rc_context(RC):
        fig = Figure(figsize=(WIDTH_IN, 2.6), layout="constrained")
        ax = fig.add_subplot()
        x = list(range(len(rows)))
        colours = [ACTUAL if i == latest else OKABE_ITO["sky"] for i in x]
        bars = ax.bar(x, rows["revenue"].to_numpy(), color=colours, width=0.75)
        for bar, part in zip(bars, partial, strict=True):
            if part:
                bar.set_facecolor("white")
                bar.set_edgecolor(OKABE_ITO["sky"])
                bar.set_hatch("////")
        labels = []
        for i, d in enumerate(rows["period"]):
            t = pd.Timestamp(d)
            text = f"{t.year}-Q{t.quarter}" if freq == "Q" else f"{MONTHS[t.month - 1][:3]} {t.year}"
            labels.append(text + ((" (to date)" if i == len(partial) - 1 else " (part)") if partial[i] else ""))
        step = max(1, math.ceil(len(rows) / 9))
        ticks = sorted(set(x[::step]) | {i for i, part in enumerate(partial) if part})
        ax.set_xticks(ticks, [labels[i] for i in ticks])
        ax.yaxis.set_major_formatter(_money_axis)
        ax.set_ylabel(f"Revenue ({p.currency})")
        ax.grid(axis="x", visible=False)
        title = f"Revenue per period: {series_name(p.headline_region)}"
        if any(partial):
            title += " (hatched: the data covers only part of that period)"
        ax.set_title(title, loc="left")
        return _png(fig)


def _series(p: Pack, series_id: str, history_points: int) -> pd.DataFrame:
    """One forecast series by date: its last `history_points` actuals, then every forecast row."""
    s = p.forecast[p.forecast["series_id"] == series_id].sort_values("ds", kind="stable")
    return pd.concat([s[~s["is_forecast"]].tail(history_points), s[s["is_forecast"]]])


def _draw_series(ax, s: pd.DataFrame, small: bool) -> None:
    hist, fut = s[~s["is_forecast"]], s[s["is_forecast"]]
    ax.fill_between(fut["ds"], fut["yhat_lower"], fut["yhat_upper"], color=BAND, linewidth=0,
                    label="Forecast range")
    ax.plot(hist["ds"], hist["y"], color=ACTUAL, linewidth=1.0 if small else 1.4, label="Actual")
    ax.plot(fut["ds"], fut["yhat"], color=FORECAST, linewidth=1.2 if small else 1.8, label="Forecast")
    ax.yaxis.set_major_formatter(_money_axis)
    locator = AutoDateLocator(minticks=2, maxticks=4 if small else 8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))


def forecast_chart(p: Pack, series_id: str | None = None, history_points: int = 104) -> bytes:
    """Actuals, forecast and its interval band for one series (default: the headline series)."""
    require_pack(p)
    sid = series_id or p.headline_region
    s = _series(p, sid, history_points)
    _need(s, f"forecast series {sid!r}")
    with rc_context(RC):
        fig = Figure(figsize=(WIDTH_IN, 2.8), layout="constrained")
        ax = fig.add_subplot()
        _draw_series(ax, s, small=False)
        ax.set_ylabel(f"Revenue ({p.currency})")
        ax.set_title(f"Revenue forecast: {series_name(sid)}", loc="left")
        ax.legend(loc="upper left", frameon=False, ncols=3)
        return _png(fig)


def segment_ids(p: Pack) -> list[str]:
    """The forecast series other than the headline, sorted."""
    require_pack(p)
    return sorted(sid for sid in set(p.forecast["series_id"]) if sid != p.headline_region)


def segment_multiples(p: Pack, series_ids: list[str] | None = None, history_points: int = 52,
                      ncols: int = 3) -> bytes:
    """Small multiples: one panel per series (default: every segment), sharing the x axis.

    Keep `series_ids` to ~9 per figure so it fits on one printed page (sections.py chunks them).
    """
    require_pack(p)
    ids = segment_ids(p) if series_ids is None else list(series_ids)
    if not ids:
        raise DataError("nothing to plot: the pack has no segment series besides the headline",
                        fix="only call segment_multiples when there are segments")
    unknown = sorted(set(ids) - set(p.forecast["series_id"]))
    if unknown:
        raise DataError(f"unknown forecast series {unknown}", column="series_id",
                        fix="pick series ids from the pack's forecast")
    nrows = math.ceil(len(ids) / ncols)
    with rc_context({**RC, "axes.titlesize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7}):
        fig = Figure(figsize=(WIDTH_IN, 1.7 * nrows + 0.3), layout="constrained")
        axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False).ravel()
        for ax, sid in zip(axes, ids, strict=False):
            _draw_series(ax, _series(p, sid, history_points), small=True)
            ax.set_title(series_name(sid), loc="left")
        for ax in axes[len(ids):]:
            ax.set_visible(False)
        for i, ax in enumerate(axes[: len(ids)]):
            if i + ncols >= len(ids):  # nothing visible below it: show its dates
                ax.tick_params(axis="x", labelbottom=True)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper right", ncols=3, frameon=False)
        return _png(fig)


def churn_risk(p: Pack) -> bytes:
    """Left: distribution of churn probabilities (red-listed in vermillion). Right: revenue at risk by region."""
    require_pack(p)
    cs = p.churn_scores
    _need(cs, "churn scores")
    with rc_context(RC):
        fig = Figure(figsize=(WIDTH_IN, 2.6), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=[1.2, 1])
        bins = [i / 20 for i in range(21)]
        left.hist([cs.loc[~cs["red"], "probability"], cs.loc[cs["red"], "probability"]], bins=bins,
                  stacked=True, color=[OKABE_ITO["sky"], RISK], label=["Other customers", "Red list"])
        left.set_xlabel("Probability of leaving")
        left.set_ylabel("Customers")
        left.set_xlim(0, 1)
        left.yaxis.set_major_locator(MaxNLocator(integer=True))
        left.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncols=2)
        left.set_title("Churn risk distribution", loc="left")
        by = cs.groupby("region", sort=True, observed=True)["revenue_at_risk"].sum()
        red_by = cs[cs["red"]].groupby("region", sort=True, observed=True)["revenue_at_risk"].sum()
        red_by = red_by.reindex(by.index, fill_value=0.0)
        y = list(range(len(by)))
        right.barh(y, by.to_numpy(), color=OKABE_ITO["grey"], label="All customers")
        right.barh(y, red_by.to_numpy(), color=RISK, label="Red list")
        right.set_yticks(y, [str(r) for r in by.index])
        right.invert_yaxis()
        right.xaxis.set_major_formatter(_money_axis)
        right.set_xlabel(f"Revenue at risk ({p.currency})")
        right.grid(axis="y", visible=False)
        right.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncols=2)
        right.set_title("Revenue at risk by region", loc="left")
        return _png(fig)
