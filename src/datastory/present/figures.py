"""Figures as PNG bytes, drawn with seaborn in the house theme (present.theme): stable bytes, print size.

Axes-level plots (histplot, lineplot) draw on a `matplotlib.figure.Figure` of our own with an Agg
canvas. The small multiples use seaborn's figure-level FacetGrid, which makes its figure through
pyplot: that figure is saved and closed at once, so no figure is left in pyplot's registry (nor shown a
second time by a notebook). Every figure is saved at a fixed dpi with the 'Software' metadata removed:
same pack in, same bytes out. Seaborn is imported by the figures that call it (`seaborn()`: a second, or half
that without scipy.stats): the email's revenue bars need matplotlib only.
"""

from __future__ import annotations

import io as _io
import math
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .. import config
from ..errors import DataError
from ..pack import Pack
from .theme import ACTUAL, BAND, CALM, DPI, FORECAST, NEUTRAL, OKABE_ITO, RISK, WIDTH_IN, theme
from .words import MONTHS, fmt_money, require_pack, series_name

__all__ = ["ACTUAL", "BAND", "DPI", "FORECAST", "OKABE_ITO", "RISK", "WIDTH_IN", "churn_calibration",
           "churn_risk", "forecast_chart", "partial_periods", "revenue_by_period", "segment_ids",
           "segment_multiples"]

_money_axis = FuncFormatter(lambda v, _pos: fmt_money(v) if math.isfinite(v) else "")


def _png(fig: Figure) -> bytes:
    """Render with Agg at the fixed dpi; no 'Software' chunk, so the bytes depend on the drawing only."""
    FigureCanvasAgg(fig)
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches=None)
    fig.clear()
    return buf.getvalue()


def _png_pyplot(fig: Figure) -> bytes:
    """_png of a figure made through pyplot (seaborn's figure-level functions), then closed in pyplot."""
    import matplotlib.pyplot as plt  # only here: importing pyplot picks a backend

    try:
        return _png(fig)
    finally:
        plt.close(fig)


def seaborn() -> Any:
    """The seaborn module, imported without scipy.stats when neither is loaded yet.

    Seaborn asks scipy.stats for one thing only, the kernel density estimate of its kde plots, and uses its own
    copy of it when scipy.stats cannot be imported. No figure here draws a density, and scipy.stats is half of
    seaborn's import time (about 0.3 s of each report's kernel). So, for seaborn's import only, scipy.stats is
    marked absent (None in sys.modules: the import system's own way to make an import fail), and the mark is
    taken away after it: a later `import scipy.stats` loads it as usual.
    """
    import sys

    if "seaborn" in sys.modules or "scipy.stats" in sys.modules:
        import seaborn as sns

        return sns
    sys.modules["scipy.stats"] = None
    try:
        import seaborn as sns
    finally:
        if "scipy.stats" in sys.modules and sys.modules["scipy.stats"] is None:
            del sys.modules["scipy.stats"]
    return sns


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
    with theme():
        fig = Figure(figsize=(WIDTH_IN, 2.6), layout="constrained")
        ax = fig.add_subplot()
        x = list(range(len(rows)))
        colours = [ACTUAL if i == latest else CALM for i in x]
        bars = ax.bar(x, rows["revenue"].to_numpy(), color=colours, width=0.75)
        for bar, part in zip(bars, partial, strict=True):
            if part:
                bar.set_facecolor("white")
                bar.set_edgecolor(CALM)
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
    with theme():
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
    """Small multiples with seaborn's FacetGrid: one panel per series (default: every segment), shared dates.

    Keep `series_ids` to ~9 per figure so it fits on one printed page (report sections chunk them).
    """
    sns = seaborn()  # here, not at import: see the module's docstring

    require_pack(p)
    ids = segment_ids(p) if series_ids is None else list(series_ids)
    if not ids:
        raise DataError("nothing to plot: the pack has no segment series besides the headline",
                        fix="only call segment_multiples when there are segments")
    unknown = sorted(set(ids) - set(p.forecast["series_id"]))
    if unknown:
        raise DataError(f"unknown forecast series {unknown}", column="series_id",
                        fix="pick series ids from the pack's forecast")
    long = pd.concat([_series(p, sid, history_points).assign(segment=series_name(sid)) for sid in ids],
                     ignore_index=True)
    names = [series_name(sid) for sid in ids]
    ncols = max(1, min(ncols, len(ids)))
    nrows = math.ceil(len(ids) / ncols)
    with theme(**{"axes.titlesize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7}):
        grid = _grid(sns)(long, col="segment", col_order=names, col_wrap=ncols if len(ids) > ncols else None,
                             sharex=True, sharey=False, height=1.7, aspect=WIDTH_IN / ncols / 1.7,
                             despine=True)
        grid.map_dataframe(_facet)
        grid.set_titles("{col_name}", loc="left")
        grid.set_axis_labels("", "")
        for ax in grid.axes.flat:
            ax.yaxis.set_major_formatter(_money_axis)
            locator = AutoDateLocator(minticks=2, maxticks=4)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
            ax.tick_params(axis="x", labelbottom=True)
        handles, labels = grid.axes.flat[0].get_legend_handles_labels()
        fig = grid.figure
        fig.set_size_inches(WIDTH_IN, 1.7 * nrows + 0.45)
        fig.set_layout_engine("constrained")
        fig.legend(handles, labels, loc="outside upper right", ncols=3, frameon=False)
        return _png_pyplot(fig)


def _grid(sns) -> type:
    """seaborn's FacetGrid without its own tight layouts: the figure is laid out once, by its constrained engine
    when saved. FacetGrid runs a tight layout when made and again after drawing; each measures every label (a
    third of the figure's time), and the constrained layout replaces both."""

    class Grid(sns.FacetGrid):
        def tight_layout(self, *args, **kwargs):
            return self

    return Grid


def _facet(data: pd.DataFrame, **_kw) -> None:
    """Draw one FacetGrid panel: its segment's actuals, forecast and band."""
    import matplotlib.pyplot as plt

    _draw_series(plt.gca(), data, small=True)


def churn_risk(p: Pack) -> bytes:
    """Left: distribution of churn probabilities (seaborn histplot; red list in vermillion). Right: revenue at
    risk by region for the company, by call list for one region (a one-bar chart of its own region says
    nothing)."""
    sns = seaborn()  # here, not at import: see the module's docstring

    require_pack(p)
    cs = p.churn_scores
    _need(cs, "churn scores")
    group = cs["red"].astype(bool).map({True: "Red list", False: "Other customers"})
    data = pd.DataFrame({"probability": cs["probability"].to_numpy(), "group": group.to_numpy()})
    with theme():
        fig = Figure(figsize=(WIDTH_IN, 2.6), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=[1.2, 1])
        sns.histplot(data, x="probability", hue="group", hue_order=["Other customers", "Red list"],
                     multiple="stack", bins=[i / 20 for i in range(21)], palette=[CALM, RISK], linewidth=0.3,
                     ax=left, legend=True)
        left.set_xlabel("Probability of leaving")
        left.set_ylabel("Customers")
        left.set_xlim(0, 1)
        left.yaxis.set_major_locator(MaxNLocator(integer=True))
        sns.move_legend(left, "upper center", bbox_to_anchor=(0.5, -0.32), ncols=2, frameon=False, title=None)
        left.set_title("Churn risk distribution", loc="left")
        if p.is_company:
            key, title = cs["region"].astype(str), "Revenue at risk by region"
        else:
            key, title = cs["list"].astype(str).replace("", "not on a list"), f"Revenue at risk by list, {p.regions[0]}"
        by = cs["revenue_at_risk"].groupby(key, sort=True).sum()
        red_by = cs.loc[cs["red"].astype(bool), "revenue_at_risk"].groupby(key, sort=True).sum()
        red_by = red_by.reindex(by.index, fill_value=0.0)
        y = list(range(len(by)))
        right.barh(y, by.to_numpy(), color=NEUTRAL, label="Every scored customer")
        right.barh(y, red_by.to_numpy(), color=RISK, label="Red list (revenue at risk)")
        right.set_yticks(y, [str(r) for r in by.index])
        right.invert_yaxis()
        right.xaxis.set_major_formatter(_money_axis)
        right.set_xlabel(f"Expected loss ({p.currency})")
        right.grid(axis="y", visible=False)
        right.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncols=1)
        right.set_title(title, loc="left")
        return _png(fig)


def churn_calibration(p: Pack) -> bytes:
    """Left: reliability curve of the churn model on held-out customers (the churn record's "calibration"),
    predicted probability per bin against the share who really left; on the diagonal means well calibrated.
    Right: the pack's own customers' probabilities as an ECDF per call list (seaborn ecdfplot)."""
    sns = seaborn()  # here, not at import: see the module's docstring

    require_pack(p)
    cm = p.churn_metrics or {}
    calibration = cm.get("calibration") or {}
    bins = calibration.get(str(cm.get("scorer") or "model")) or calibration.get("model")
    if not bins:
        raise DataError("nothing to plot: the churn metrics hold no calibration bins", file=config.where("churn_metrics"),
                        column="calibration", fix="re-run the churn stage")
    cal = pd.DataFrame(bins)
    cal = cal[pd.to_numeric(cal["count"], errors="coerce").fillna(0) > 0].astype(
        {"mean_predicted": float, "observed": float})
    cs = p.churn_scores
    _need(cs, "churn scores")
    lists = cs["list"].astype(str).replace("", "not on a list")
    data = pd.DataFrame({"probability": cs["probability"].to_numpy(), "list": lists.to_numpy()})
    order = [x for x in ("win back", "second purchase", "not on a list") if x in set(data["list"])]
    order += sorted(set(data["list"]) - set(order))
    with theme():
        fig = Figure(figsize=(WIDTH_IN, 2.6), layout="constrained")
        left, right = fig.subplots(1, 2)
        left.plot([0, 1], [0, 1], color=NEUTRAL, linewidth=0.8, linestyle="--", label="Perfect calibration")
        sns.lineplot(cal, x="mean_predicted", y="observed", marker="o", color=RISK, ax=left, label="Churn model",
                     errorbar=None, sort=True)
        left.set_xlim(0, 1)
        left.set_ylim(0, 1)
        left.set_xlabel("Predicted probability of leaving")
        left.set_ylabel("Share who really left")
        left.legend(frameon=False, loc="upper left")
        left.set_title("Calibration (held-out customers)", loc="left")
        sns.ecdfplot(data, x="probability", hue="list", hue_order=order, ax=right,
                     palette=[ACTUAL, FORECAST, NEUTRAL, *OKABE_ITO.values()][:len(order)])
        right.set_xlim(0, 1)
        right.set_xlabel("Probability of leaving")
        right.set_ylabel("Share of customers")
        sns.move_legend(right, "lower right", frameon=False, title=None)
        right.set_title("Risk by call list" + ("" if p.is_company else f", {p.regions[0]}"), loc="left")
        return _png(fig)
